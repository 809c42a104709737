// The IVR console: every page is a shell (pages.rs) and this script fills it
// from /api/v1. No framework, no CDN. A page is one function in PAGES.
"use strict";

const $ = (sel, el = document) => el.querySelector(sel);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const ctx = { me: null, csrf: null };

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = ctx.csrf || "";
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401 && document.body.dataset.page !== "login") {
    location.href = "/console/login";
    throw new Error("unauthenticated");
  }
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = text; }
  if (!r.ok) throw new Error((data && data.error && data.error.message) || r.statusText);
  return data;
}

function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? esc(t) : d.toLocaleString("da-DK", { dateStyle: "short", timeStyle: "medium" });
}
function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
function pct(x) { return `${(100 * x).toFixed(1)} %`; }

function table(cols, rows, empty = "Nothing to show.") {
  if (!rows.length) return `<p class="empty">${esc(empty)}</p>`;
  const head = cols.map((c) => `<th>${esc(c[0])}</th>`).join("");
  const body = rows.map((r) => `<tr>${cols.map((c) => `<td>${c[1](r)}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

// A horizontal bar chart as inline SVG: [{label, value}].
function bars(title, data, opts = {}) {
  const w = opts.width || 420, row = 22, lw = opts.labelWidth || 150;
  const max = Math.max(1, ...data.map((d) => d.value));
  const h = Math.max(row, data.length * row) + 4;
  const items = data.map((d, i) => {
    const bw = Math.round(((w - lw - 50) * d.value) / max);
    const y = i * row + 2;
    return `<text x="${lw - 6}" y="${y + 15}" text-anchor="end">${esc(d.label)}</text>` +
      `<rect x="${lw}" y="${y + 3}" width="${bw}" height="${row - 6}" rx="2"></rect>` +
      `<text x="${lw + bw + 4}" y="${y + 15}">${esc(opts.fmt ? opts.fmt(d.value) : d.value)}</text>`;
  }).join("");
  const body = data.length ? `<svg class="chart" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">${items}</svg>` : `<p class="empty">No data.</p>`;
  return `<figure><figcaption>${esc(title)}</figcaption>${body}</figure>`;
}

// Vertical columns (a time series or the hours of a day).
function columns(title, data) {
  const w = Math.max(300, data.length * 26), h = 160, base = 130;
  const max = Math.max(1, ...data.map((d) => d.value));
  const cw = w / Math.max(1, data.length);
  const items = data.map((d, i) => {
    const bh = Math.round((100 * d.value) / max), x = Math.round(i * cw + 3);
    return `<rect x="${x}" y="${base - bh}" width="${Math.max(4, cw - 6)}" height="${bh}" rx="2"><title>${esc(d.label)}: ${d.value}</title></rect>` +
      (d.value ? `<text x="${x + (cw - 6) / 2}" y="${base - bh - 4}" text-anchor="middle">${d.value}</text>` : "") +
      `<text x="${x + (cw - 6) / 2}" y="${base + 16}" text-anchor="middle" class="tick">${esc(d.label)}</text>`;
  }).join("");
  const body = data.length ? `<svg class="chart" viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">${items}</svg>` : `<p class="empty">No data.</p>`;
  return `<figure><figcaption>${esc(title)}</figcaption>${body}</figure>`;
}

function card(label, value, id) {
  return `<div class="card"${id ? ` id="${id}"` : ""}><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div></div>`;
}

const muniPath = () => `/api/v1/municipalities/${encodeURIComponent(currentMuni())}`;
function currentMuni() { return $("#muni") ? $("#muni").value : ""; }

function flash(msg, bad) {
  const el = document.createElement("div");
  el.className = bad ? "flash bad" : "flash";
  el.textContent = msg;
  $("#content").prepend(el);
  setTimeout(() => el.remove(), 5000);
}

const PAGES = {};
let timer = null;

PAGES.login = async (main) => {
  main.innerHTML = `<form id="login" class="login">
    <label>User name <input name="username" autocomplete="username" required></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Log in</button><p id="err" class="error" role="alert"></p></form>`;
  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    try {
      await api("POST", "/api/v1/session", { username: f.get("username"), password: f.get("password") });
      location.href = "/console/live";
    } catch (err) { $("#err").textContent = err.message; }
  });
};

PAGES.live = async (main) => {
  main.innerHTML = `<p class="hint">Calls in progress in the municipalities you see. Refreshed every 2 seconds.</p><div id="live"></div>`;
  const draw = async () => {
    const calls = await api("GET", "/api/v1/live");
    $("#live").innerHTML = `<p class="count"><strong id="live-count">${calls.length}</strong> call(s) in progress</p>` + table([
      ["Municipality", (c) => esc(c.municipality)],
      ["Caller", (c) => `<span class="mono">${esc(c.caller)}</span>`],
      ["Language", (c) => esc(c.lang)],
      ["Step", (c) => `<span class="mono">${esc(c.step || "(starting)")}</span>`],
      ["Time in call", (c) => fmtDuration(1000 * c.seconds)],
      ["Last intent", (c) => esc(c.last_intent || "")],
    ], calls, "No calls right now.");
  };
  await draw();
  timer = setInterval(() => draw().catch(() => {}), 2000);
};

PAGES.kpis = async (main) => {
  const q = new Date();
  const quarter = `${q.getFullYear()}Q${Math.floor(q.getMonth() / 3) + 1}`;
  main.innerHTML = `<form id="kpiform" class="row">
      <label>Quarter <input name="quarter" value="${quarter}" size="8" pattern="[0-9]{4}Q[1-4]"></label>
      <label>Cut by <select name="period"><option value="day">day</option><option value="week">week</option><option value="month">month</option><option value="quarter">quarter</option></select></label>
      <label>Scope <select name="scope"><option value="muni">selected municipality</option><option value="all">all I see</option></select></label>
      <button type="submit">Show</button>
      <span class="exports">Export: <a id="csv" href="#">CSV</a> · <a id="json" href="#">JSON</a></span>
    </form><div id="kpis"></div>`;
  const draw = async () => {
    const f = new FormData($("#kpiform"));
    const qs = `quarter=${encodeURIComponent(f.get("quarter"))}&period=${f.get("period")}`;
    const all = f.get("scope") === "all";
    const base = all ? "/api/v1" : muniPath();
    $("#csv").href = `${base}/export?quarter=${encodeURIComponent(f.get("quarter"))}&format=csv`;
    $("#json").href = `${base}/export?quarter=${encodeURIComponent(f.get("quarter"))}&format=json`;
    const k = await api("GET", `${base}/kpis?${qs}`);
    const kv = (o) => Object.entries(o).map(([label, value]) => ({ label, value }));
    $("#kpis").innerHTML =
      `<div class="cards">` +
      card("Calls", k.calls, "kpi-calls") +
      card("Resolved by the bot", `${k.resolved_by_bot} (${pct(k.resolved_share)})`, "kpi-resolved") +
      card("Misunderstood turns", `${k.misunderstood_turns} of ${k.turns}`) +
      card("Turn latency p50 / p95", `${k.latency_p50_ms ?? "–"} / ${k.latency_p95_ms ?? "–"} ms`) +
      card("Callbacks ordered / handed off / served / failed", `${k.callbacks.ordered} / ${k.callbacks.handed_off} / ${k.callbacks.served} / ${k.callbacks.failed}`) +
      card("Median time to serve a callback", k.callbacks.median_time_to_serve_s == null ? "–" : fmtDuration(k.callbacks.median_time_to_serve_s * 1000)) +
      card("Mails sent / failed / pending", `${k.mails.sent} / ${k.mails.failed} / ${k.mails.pending}`) +
      `</div><div class="charts">` +
      columns(`Calls by ${k.period}`, k.series.map((b) => ({ label: b.label, value: b.calls }))) +
      bars("Outcomes", kv(k.outcomes)) +
      bars("Transfers per department", kv(k.transfers)) +
      bars("Language", kv(k.languages)) +
      columns("Busiest hours", k.busiest_hours.map((value, h) => ({ label: String(h), value }))) +
      `</div><h2>Where callers hang up</h2>` +
      table([["Step", (s) => `<span class="mono">${esc(s.step)}</span>`], ["Reached", (s) => s.reached], ["Hung up here", (s) => s.hung_up]], k.funnel) +
      `<h2>Misunderstood turns per question</h2>` +
      table([["Step", (s) => `<span class="mono">${esc(s.step)}</span>`], ["Turns", (s) => s.turns], ["Misunderstood", (s) => s.misunderstood], ["Share", (s) => pct(s.turns ? s.misunderstood / s.turns : 0)], ["Silences (no input)", (s) => s.no_input]], k.gather_steps);
  };
  $("#kpiform").addEventListener("submit", (e) => { e.preventDefault(); draw().catch((err) => flash(err.message, true)); });
  await draw();
};

PAGES.callbacks = async (main) => {
  main.innerHTML = `<form id="cbform" class="row"><label>State <select name="state"><option value="">any</option><option>requested</option><option>handed_off</option><option>done</option><option>failed</option></select></label></form>
    <h2>Callback requests</h2><div id="cbs"></div><h2>Mail outbox</h2><div id="mails"></div>`;
  const draw = async () => {
    const st = new FormData($("#cbform")).get("state");
    const cbs = await api("GET", `${muniPath()}/callbacks?limit=200${st ? `&state=${st}` : ""}`);
    const may = ctx.me.operator.role !== "viewer";
    $("#cbs").innerHTML = table([
      ["Ordered", (c) => fmtTime(c.created_at)],
      ["Call", (c) => `<span class="mono">${esc(c.call_ref)}</span>`],
      ["Number", (c) => `<span class="mono">${esc(c.phone)}</span>`],
      ["Topic", (c) => esc(c.topic)],
      ["Window", (c) => `${fmtTime(c.window_start)} – ${fmtTime(c.window_end)}`],
      ["State", (c) => `<span class="state ${esc(c.state)}">${esc(c.state)}</span>${c.last_error ? `<br><small>${esc(c.last_error)}</small>` : ""}`],
      ["By", (c) => esc(c.handled_by || "")],
      ["", (c) => may ? (c.state === "failed" ? `<button data-act="retry" data-ref="${esc(c.call_ref)}" data-kind="${esc(c.kind)}">Retry</button>` : "") +
        (c.state !== "done" ? `<button data-act="done" data-ref="${esc(c.call_ref)}" data-kind="${esc(c.kind)}">Mark done</button>` : "") : ""],
    ], cbs.items, "No callback requests.");
    const mails = await api("GET", `${muniPath()}/mails?limit=200`);
    $("#mails").innerHTML = table([
      ["Queued", (m) => fmtTime(m.created_at)],
      ["Kind", (m) => esc(m.kind)],
      ["To", (m) => esc(m.to)],
      ["Subject", (m) => esc(m.subject)],
      ["State", (m) => `<span class="state ${esc(m.state)}">${esc(m.state)}</span>${m.last_error ? `<br><small>${esc(m.last_error)}</small>` : ""}`],
      ["By", (m) => esc(m.handled_by || "")],
      ["", (m) => may && m.state === "failed" ? `<button data-act="mail" data-key="${esc(m.key)}">Retry</button>` : ""],
    ], mails.items, "No mails.");
  };
  main.addEventListener("click", async (e) => {
    const b = e.target.closest("button[data-act]");
    if (!b) return;
    try {
      if (b.dataset.act === "mail") await api("POST", `${muniPath()}/mails/${encodeURIComponent(b.dataset.key)}/retry`);
      else await api("POST", `${muniPath()}/callbacks/${encodeURIComponent(b.dataset.ref)}/${encodeURIComponent(b.dataset.kind)}/${b.dataset.act}`);
      await draw();
      flash("Done.");
    } catch (err) { flash(err.message, true); }
  });
  $("#cbform").addEventListener("change", () => draw());
  await draw();
};

// An operator's test call from the softphone (not counted in the KPIs).
const originBadge = (o) => o === "draft" ? ` <span class="state" title="operator's test call to the draft; not in the KPIs">draft test call</span>`
  : o === "browser" ? ` <span class="state" title="operator's test call from the browser; not in the KPIs">browser test call</span>` : "";

PAGES.calls = async (main) => {
  main.innerHTML = `<div id="calls"></div><div id="transcript"></div>`;
  let offset = 0;
  const draw = async () => {
    const p = await api("GET", `${muniPath()}/calls?limit=25&offset=${offset}`);
    $("#calls").innerHTML = table([
      ["Started", (c) => fmtTime(c.started_at)],
      ["Call", (c) => `<a href="#" data-call="${esc(c.call_ref)}" class="mono">${esc(c.call_ref)}</a>`],
      ["Caller", (c) => `<span class="mono">${esc(c.caller)}</span>` + originBadge(c.origin)],
      ["Outcome", (c) => esc(c.outcome) + (c.transferred_to ? ` → ${esc(c.transferred_to)}` : "")],
      ["Language", (c) => esc(c.lang)],
      ["Turns", (c) => c.turns],
      ["Talk", (c) => fmtDuration(c.talk_ms)],
      ["Transcript", (c) => c.has_transcript ? `kept until ${fmtTime(c.transcript_deleted_after)}` : "not kept"],
    ], p.items, "No calls recorded.") +
      `<p class="pager">${offset ? `<button id="prev">Newer</button>` : ""}${p.next_offset != null ? `<button id="next">Older</button>` : ""}</p>`;
    if ($("#prev")) $("#prev").onclick = () => { offset = Math.max(0, offset - 25); draw(); };
    if ($("#next")) $("#next").onclick = () => { offset = p.next_offset; draw(); };
  };
  main.addEventListener("click", async (e) => {
    const a = e.target.closest("a[data-call]");
    if (!a) return;
    e.preventDefault();
    const t = await api("GET", `${muniPath()}/calls/${encodeURIComponent(a.dataset.call)}`);
    $("#transcript").innerHTML = `<h2>Call <span class="mono">${esc(t.call.call_ref)}</span>${originBadge(t.call.origin)}</h2>
      <p class="hint">Every view of a transcript is written to the audit log. Personal data ${t.unmasked ? "is shown (your role may see it)" : "is masked for your role"}.</p>` +
      table([
        ["Input", (r) => esc(r.input)],
        ["Step", (r) => `<span class="mono">${esc(r.step)}</span>`],
        ["Heard", (r) => r.heard == null ? `<span class="empty">not kept</span>` : esc(r.heard)],
        ["Intent", (r) => esc(r.intent || "") + (r.input === "no_input" ? ` <span class="state">no input</span>` : r.misunderstood ? ` <span class="state failed">not understood</span>` : "")],
        ["Latency", (r) => r.latency_ms == null ? "" : `${r.latency_ms} ms`],
        ["Bot said", (r) => r.said.map(esc).join("<br>")],
      ], t.turns);
    $("#transcript").scrollIntoView();
  });
  await draw();
};

PAGES.flows = async (main) => {
  const f = await api("GET", `${muniPath()}/flows`);
  const st = f.status;
  main.innerHTML = `<div class="cards">${card("Municipality", f.name)}${card("Languages", f.languages.join(", "))}${card("Loaded", fmtTime(st.loaded_at))}${card("Version", st.version || "?")}${card("Last failed reload", st.failed_at ? fmtTime(st.failed_at) : "none")}</div>` +
    (st.errors.length ? `<h2>Errors of the last reload (the previous version keeps serving)</h2><pre class="errors">${st.errors.map(esc).join("\n")}</pre>` : "") +
    `<h2>Flows</h2>` + f.flows.map((n) => `<figure class="graph"><figcaption>${esc(n)}</figcaption><img alt="flow ${esc(n)}" src="${muniPath()}/flows/${encodeURIComponent(n)}/graph.svg"></figure>`).join("") +
    `<h2>Departments</h2><p>${f.departments.map(esc).join(", ")}</p>`;
};

PAGES.announcement = async (main) => {
  const draw = async () => {
    const a = await api("GET", `${muniPath()}/announcement`);
    const may = ctx.me.operator.role !== "viewer";
    main.innerHTML = `<div id="current">${a ? `<div class="notice"><strong>In force until ${fmtTime(a.expires_at)}</strong> (set by ${esc(a.set_by)} ${fmtTime(a.set_at)})<br>
        ${a.has_audio ? `<span class="lang">recording</span> a recorded message plays<br>` : ""}${a.text_da ? `<span class="lang">da</span> ${esc(a.text_da)}<br>` : ""}${a.text_en ? `<span class="lang">en</span> ${esc(a.text_en)}` : ""}</div>
        ${may ? `<button id="clear" class="danger">Clear announcement</button>` : ""}` : `<p id="none">No announcement in force.</p>`}</div>` +
      (may ? `<h2>Set an announcement</h2><form id="annform" class="stack">
        <label>Danish <textarea name="text_da" rows="3" maxlength="1000"></textarea></label>
        <label>English <textarea name="text_en" rows="3" maxlength="1000"></textarea></label>
        <label>Or a recording (WAV, MP3, OGG or FLAC, at most 8 MiB; plays instead of the text) <input name="audio" type="file" accept=".wav,.mp3,.ogg,.flac,audio/*"></label>
        <label class="inline">Plays for <input name="minutes" type="number" min="1" max="44640" value="60" size="6"> minutes</label>
        <button type="submit">Set announcement</button></form>
        <p class="hint">New calls hear it before the menu within seconds; it is synthesised at once. Every change is audited.</p>` : "");
    if ($("#clear")) $("#clear").onclick = async () => { await api("DELETE", `${muniPath()}/announcement`); await draw(); flash("Cleared."); };
    if ($("#annform")) $("#annform").addEventListener("submit", async (e) => {
      e.preventDefault();
      const f = new FormData(e.target);
      const body = { text_da: f.get("text_da"), text_en: f.get("text_en"), minutes: Number(f.get("minutes")) };
      const file = f.get("audio");
      if (file && file.size) {
        const url = await new Promise((ok, bad) => { const r = new FileReader(); r.onload = () => ok(r.result); r.onerror = bad; r.readAsDataURL(file); });
        body.audio_base64 = String(url).split(",")[1];
        body.audio_format = file.name.split(".").pop().toLowerCase();
      }
      try {
        await api("PUT", `${muniPath()}/announcement`, body);
        await draw();
        flash("Announcement set.");
      } catch (err) { flash(err.message, true); }
    });
  };
  await draw();
};

PAGES.audit = async (main) => {
  const p = await api("GET", `${muniPath()}/audit?limit=200`);
  main.innerHTML = table([
    ["When", (e) => fmtTime(e.at)],
    ["Who", (e) => esc(e.username)],
    ["What", (e) => esc(e.action)],
    ["On", (e) => `<span class="mono">${esc(e.target)}</span>`],
    ["Detail", (e) => esc(e.detail)],
  ], p.items, "Nothing audited yet.");
};

PAGES.account = async (main) => {
  const draw = async () => {
    const tokens = await api("GET", "/api/v1/tokens");
    const op = ctx.me.operator;
    const admin = op.scope === "central" && op.role === "supervisor";
    main.innerHTML = `<div class="cards">${card("User", op.username)}${card("Scope", typeof op.scope === "string" ? op.scope : op.scope.municipality)}${card("Role", op.role)}</div>
      <h2>API tokens</h2><p class="hint">For scripts: send <span class="mono">Authorization: Bearer &lt;token&gt;</span>; a token acts as you. The API is described at <a href="/api/v1/openapi.json">/api/v1/openapi.json</a>.</p>
      <div id="newtoken"></div>` +
      table([["Id", (t) => `<span class="mono">${esc(t.id)}</span>`], ["Name", (t) => esc(t.name)], ["Created", (t) => fmtTime(t.created_at)],
        ["", (t) => `<button data-revoke="${esc(t.id)}" class="danger">Revoke</button>`]], tokens, "No tokens.") +
      `<form id="tokform" class="row"><label>Name <input name="name" required maxlength="80"></label><button type="submit">Issue token</button></form>` +
      (admin ? `<h2>Accounts</h2><div id="users"></div><form id="userform" class="row">
        <label>User name <input name="username" required pattern="[a-z0-9_-]+"></label>
        <label>Password <input name="password" type="password" minlength="10" required></label>
        <label>Scope <input name="scope" value="central" required></label>
        <label>Role <select name="role"><option>viewer</option><option selected>operator</option><option>supervisor</option></select></label>
        <button type="submit">Add account</button></form>` : "");
    if (admin) {
      const users = await api("GET", "/api/v1/users");
      $("#users").innerHTML = table([["User", (u) => esc(u.username)], ["Scope", (u) => esc(typeof u.scope === "string" ? u.scope : u.scope.municipality)], ["Role", (u) => esc(u.role)], ["Created", (u) => fmtTime(u.created_at)]], users);
      $("#userform").addEventListener("submit", async (e) => {
        e.preventDefault();
        const f = new FormData(e.target);
        try {
          await api("POST", "/api/v1/users", { username: f.get("username"), password: f.get("password"), scope: f.get("scope"), role: f.get("role") });
          await draw();
          flash("Account added.");
        } catch (err) { flash(err.message, true); }
      });
    }
    $("#tokform").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const t = await api("POST", "/api/v1/tokens", { name: new FormData(e.target).get("name") });
        await draw();
        $("#newtoken").innerHTML = `<div class="notice">New token (shown once; copy it now): <span class="mono">${esc(t.secret)}</span></div>`;
      } catch (err) { flash(err.message, true); }
    });
    main.querySelectorAll("button[data-revoke]").forEach((b) => b.addEventListener("click", async () => {
      await api("DELETE", `/api/v1/tokens/${encodeURIComponent(b.dataset.revoke)}`);
      await draw();
      flash("Token revoked.");
    }));
  };
  await draw();
};

// "Call this flow": a WebRTC softphone into the selected municipality's flow
// (POST /api/v1/calls/webrtc), a keypad sending RFC 4733 events through
// RTCDTMFSender, and what the engine reports of the call. The bot's audio
// plays through an <audio> element and an AnalyserNode measures its level.
PAGES.call = async (main) => {
  const keys = "123456789*0#".split("");
  main.innerHTML = `<p class="hint">Call the selected municipality's flow from this browser, with your microphone, as a caller would.
      Transfers cannot leave a browser call: the page names the department instead.</p>
    <div class="row softbar"><button id="dial" type="button">Call this flow</button>
      <button id="hangup" type="button" class="danger" disabled>Hang up</button>
      <label class="inline-check"><input type="checkbox" id="muted"> Microphone muted</label>
      <label class="inline-check"><input type="checkbox" id="use-draft"> Call the draft (Draft flows page)</label>
      <span class="state" id="callstate">idle</span></div>
    <div class="softphone">
      <div class="keypad" id="keypad">${keys.map((k) => `<button type="button" data-key="${esc(k)}" disabled>${esc(k)}</button>`).join("")}</div>
      <section class="debugger" aria-label="Flow debugger"><h2>Flow debugger</h2><dl>
        <dt>Call</dt><dd class="mono" id="dbg-call"></dd>
        <dt>Codec</dt><dd id="dbg-codec"></dd>
        <dt>Step</dt><dd class="mono" id="dbg-step"></dd>
        <dt>Intent</dt><dd id="dbg-intent"></dd>
        <dt>Transfer</dt><dd id="dbg-transfer"></dd>
        <dt>Keys sent</dt><dd class="mono" id="dbg-keys"></dd>
        <dt>Bot audio</dt><dd><meter id="level" min="0" max="0.5" value="0"></meter> peak <span id="level-peak">0.000</span></dd>
      </dl>
      <h3>Heard</h3><ol id="dbg-heard" class="dbg-list"></ol>
      <h3>Intent scores and reasons</h3><ul id="dbg-explain" class="dbg-list mono"></ul>
      <h3>Variables</h3><div id="dbg-vars"><p class="empty">None set.</p></div>
      <h3>Integration calls</h3><ul id="dbg-integrations" class="dbg-list mono"></ul>
      <h3>Turn timings</h3><div id="dbg-turns"><p class="empty">No turn answered yet.</p></div>
      <p class="hint">Live from the engine (server-sent events). What was heard is your own test call's; it is not kept in the engine's log.</p></section>
    </div><audio id="remote" autoplay></audio>`;
  const phone = (window.softphone = { state: "idle", peak: 0, callRef: null, events: [] });
  let pc = null, mic = null, poll = null, meter = null, audioCtx = null, events = null;
  const turns = [];
  phone.canInsertDTMF = () => {
    const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    return !!(sender && sender.dtmf && sender.dtmf.canInsertDTMF);
  };
  const li = (html) => { const el = document.createElement("li"); el.innerHTML = html; return el; };
  const onEvent = (ev) => {
    phone.events.push(ev);
    if (ev.kind === "heard") {
      $("#dbg-heard").append(li(`${esc(ev.text)} <span class="state">${esc(ev.lang || "?")} · confidence ${Number(ev.confidence).toFixed(2)}</span>`));
    } else if (ev.kind === "key") {
      $("#dbg-heard").append(li(`<span class="state">key ${esc(ev.key)}</span>`));
    } else if (ev.kind === "flow") {
      $("#dbg-step").textContent = ev.step || "(starting)";
      if (ev.intents.length) $("#dbg-intent").textContent = ev.intents.join(" → ");
      ev.explanations.forEach((x) => $("#dbg-explain").append(li(esc(x))));
      if (ev.variables.length) $("#dbg-vars").innerHTML = table([["Variable", (v) => `<span class="mono">${esc(v.name)}</span>`], ["Value", (v) => esc(v.value)]], ev.variables);
    } else if (ev.kind === "integration") {
      $("#dbg-integrations").append(li(`→ ${esc(ev.request)}`));
    } else if (ev.kind === "integration_result") {
      $("#dbg-integrations").append(li(`← ${esc(ev.response)} (${ev.ms} ms)`));
    } else if (ev.kind === "turn") {
      turns.push(ev);
      const ms = (x) => (x < 0 ? "–" : `${x} ms`);
      $("#dbg-turns").innerHTML = table([["#", (t) => turns.indexOf(t) + 1], ["Reply after", (t) => ms(t.latency_ms)], ["STT", (t) => ms(t.stt_ms)],
        ["TTS", (t) => ms(t.tts_ms)], ["Pacing", (t) => ms(t.pacing_ms)], ["Eager", (t) => (t.eager ? "yes" : "")]], turns);
    }
  };
  // A new call starts with an empty debugger (the last call's stays on the
  // page until then).
  const resetDebugger = () => {
    phone.events = [];
    phone.peak = 0;
    turns.length = 0;
    for (const id of ["#dbg-call", "#dbg-codec", "#dbg-step", "#dbg-intent", "#dbg-transfer", "#dbg-keys"]) $(id).textContent = "";
    $("#level-peak").textContent = "0.000";
    for (const id of ["#dbg-heard", "#dbg-explain", "#dbg-integrations"]) $(id).innerHTML = "";
    $("#dbg-vars").innerHTML = `<p class="empty">None set.</p>`;
    $("#dbg-turns").innerHTML = `<p class="empty">No turn answered yet.</p>`;
    $("#level").value = 0;
  };
  const setState = (st) => { phone.state = st; $("#callstate").textContent = st; $("#callstate").className = `state ${st}`; };
  const buttons = (inCall) => {
    $("#dial").disabled = inCall; $("#hangup").disabled = !inCall;
    main.querySelectorAll("#keypad button").forEach((b) => (b.disabled = !inCall));
  };
  const teardown = (st) => {
    if (events) events.close();
    events = null;
    if (poll) clearInterval(poll);
    if (meter) clearInterval(meter);
    poll = meter = null;
    if (pc) pc.close();
    if (mic) mic.getTracks().forEach((t) => t.stop());
    pc = mic = null;
    buttons(false);
    setState(st);
  };
  const show = (s) => {
    $("#dbg-call").textContent = s.call_ref;
    $("#dbg-codec").textContent = s.codec || "";
    if (s.step) $("#dbg-step").textContent = s.step;
    $("#dbg-transfer").textContent = s.transfer_refused ? `would transfer to ${s.transfer_refused}` : "";
    if (s.state === "ended") teardown(`ended (${s.ended_by || "hangup"})`);
    else setState(s.state);
  };
  const measure = (stream) => {
    audioCtx = audioCtx || new AudioContext();
    const an = audioCtx.createAnalyser();
    an.fftSize = 2048;
    audioCtx.createMediaStreamSource(stream).connect(an);
    const buf = new Float32Array(an.fftSize);
    meter = setInterval(() => {
      an.getFloatTimeDomainData(buf);
      let sum = 0;
      for (const x of buf) sum += x * x;
      const rms = Math.sqrt(sum / buf.length);
      $("#level").value = rms;
      if (rms > phone.peak) { phone.peak = rms; $("#level-peak").textContent = rms.toFixed(3); }
    }, 50);
  };
  $("#dial").addEventListener("click", async () => {
    resetDebugger();
    buttons(true);
    setState("connecting");
    try {
      // Echo cancellation for operators on loudspeakers; no noise suppression
      // or gain control: the engine's VAD and recogniser want the voice as
      // a phone line would carry it.
      mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: false, autoGainControl: false } });
      pc = new RTCPeerConnection();
      mic.getAudioTracks().forEach((t) => { t.enabled = !$("#muted").checked; pc.addTrack(t, mic); });
      pc.addEventListener("track", (e) => {
        const stream = e.streams[0] || new MediaStream([e.track]);
        $("#remote").srcObject = stream;
        measure(stream);
      });
      await pc.setLocalDescription(await pc.createOffer());
      // The offer goes once, with the candidates gathered (at most 2 s).
      await new Promise((res) => {
        if (pc.iceGatheringState === "complete") return res();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && res());
        setTimeout(res, 2000);
      });
      const placed = await api("POST", "/api/v1/calls/webrtc", { municipality: currentMuni(), sdp: pc.localDescription.sdp, draft: $("#use-draft").checked });
      phone.callRef = placed.call_ref;
      await pc.setRemoteDescription({ type: "answer", sdp: placed.sdp });
      events = new EventSource(`/api/v1/calls/webrtc/${encodeURIComponent(placed.call_ref)}/events`);
      for (const k of ["heard", "key", "flow", "integration", "integration_result", "turn"]) {
        events.addEventListener(k, (m) => onEvent(JSON.parse(m.data)));
      }
      const tick = async () => show(await api("GET", `/api/v1/calls/webrtc/${encodeURIComponent(placed.call_ref)}`));
      await tick();
      poll = setInterval(() => tick().catch(() => {}), 500);
    } catch (err) {
      teardown("failed");
      flash(err.message, true);
    }
  });
  $("#muted").addEventListener("change", () => {
    if (mic) mic.getAudioTracks().forEach((t) => (t.enabled = !$("#muted").checked));
  });
  $("#hangup").addEventListener("click", async () => {
    const ref = phone.callRef;
    teardown("ended (you)");
    if (ref) await api("DELETE", `/api/v1/calls/webrtc/${encodeURIComponent(ref)}`).catch(() => {});
  });
  main.querySelectorAll("#keypad button").forEach((b) => b.addEventListener("click", () => {
    const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "audio");
    if (!sender || !sender.dtmf) return flash("this call cannot send keys", true);
    sender.dtmf.insertDTMF(b.dataset.key, 120, 70);
    $("#dbg-keys").textContent += b.dataset.key;
  }));
};

// Draft flows: edit a copy of the municipality's flow folder, check it as
// `ivr check` does, call it from "Call this flow", publish it (the flows
// reload now) or restore the version before the last publish. Audited.
PAGES.draft = async (main) => {
  const base = `${muniPath()}/draft`;
  const draw = async (view) => {
    view = view || (await api("GET", base));
    const check = view.check;
    const report = !check ? "" : check.ok
      ? `<p class="state done" id="check-ok">ivr check: no errors${check.warnings.length ? `, ${check.warnings.length} warning(s)` : ""}</p>`
      : `<div class="errors" id="check-errors"><strong>ivr check: errors</strong><ul>${check.errors.map((e) => `<li class="mono">${esc(e)}</li>`).join("")}</ul></div>`;
    main.innerHTML = `<p class="hint">A draft is a copy of this municipality's flow folder. Phone callers keep the published version until you publish; you can call the draft from "Call this flow".</p>
      <div class="row softbar">
        <button type="button" id="draft-new">${view.exists ? "Start over from the published version" : "Start a draft"}</button>
        ${view.exists ? `<button type="button" id="draft-publish"${check && check.ok ? "" : " disabled"}>Publish</button><button type="button" id="draft-discard" class="danger">Discard draft</button>` : ""}
        ${view.has_previous ? `<button type="button" id="draft-restore">Restore the version before the last publish</button>` : ""}
      </div>${report}
      ${view.exists ? `<form id="draft-form" class="stack">
        <label>File <select name="name" id="draft-file">${view.files.map((f) => `<option>${esc(f.name)}</option>`).join("")}</select></label>
        <label>Or a new file <input name="newname" placeholder="e.g. knowledge/extra.toml"></label>
        <textarea name="text" id="draft-text" rows="22" spellcheck="false" class="mono"></textarea>
        <div class="row"><button type="submit">Save and check</button>
        <label>Upload files <input type="file" id="draft-upload" multiple accept=".toml"></label></div>
      </form>` : ""}`;
    const byName = Object.fromEntries(view.files.map((f) => [f.name, f.text]));
    const sel = $("#draft-file");
    if (sel) {
      const show = () => ($("#draft-text").value = byName[sel.value] || "");
      sel.addEventListener("change", show);
      show();
      $("#draft-form").addEventListener("submit", async (e) => {
        e.preventDefault();
        const f = new FormData(e.target);
        const name = (f.get("newname") || "").trim() || f.get("name");
        try {
          await draw(await api("PUT", `${base}/files/${name.split("/").map(encodeURIComponent).join("/")}`, { text: f.get("text") }));
          flash(`Saved ${name}.`);
        } catch (err) { flash(err.message, true); }
      });
      $("#draft-upload").addEventListener("change", async (e) => {
        let view = null;
        try {
          for (const file of e.target.files) view = await api("PUT", `${base}/files/${encodeURIComponent(file.name)}`, { text: await file.text() });
          if (view) await draw(view);
          flash("Uploaded.");
        } catch (err) { flash(err.message, true); }
      });
    }
    const act = (id, method, path, msg) => $(id) && $(id).addEventListener("click", async () => {
      try {
        const r = await api(method, path);
        await draw(r || undefined);
        flash(msg);
      } catch (err) { flash(err.message, true); }
    });
    act("#draft-new", "POST", base, "Draft started from the published version.");
    act("#draft-publish", "POST", `${base}/publish`, "Published: new calls get it now.");
    act("#draft-discard", "DELETE", base, "Draft discarded.");
    act("#draft-restore", "POST", `${base}/restore`, "Restored the version before the last publish.");
  };
  await draw();
};

async function boot() {
  const page = document.body.dataset.page;
  const content = $("#content");
  if (page === "login") return PAGES.login(content);
  ctx.me = await api("GET", "/api/v1/session");
  ctx.csrf = ctx.me.csrf_token;
  $("#who").textContent = `${ctx.me.operator.username} (${ctx.me.operator.role})`;
  const sel = $("#muni");
  const saved = localStorage.getItem("ivr.muni");
  sel.innerHTML = ctx.me.municipalities.map((m) => `<option value="${esc(m.id)}"${m.id === saved ? " selected" : ""}>${esc(m.name)}</option>`).join("");
  sel.addEventListener("change", () => { localStorage.setItem("ivr.muni", sel.value); location.reload(); });
  $("#logout").addEventListener("click", async () => { await api("DELETE", "/api/v1/session"); location.href = "/console/login"; });
  if (timer) clearInterval(timer);
  try { await PAGES[page](content); } catch (err) { if (err.message !== "unauthenticated") flash(err.message, true); }
}

// Sent to the login page: nothing more to do here.
boot().catch((err) => { if (err.message !== "unauthenticated") flash(err.message, true); });
