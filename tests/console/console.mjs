// The operator console in headless Debian chromium, driven by playwright-core.
// Run by tests/console_browser.rs, which owns the engine and the SIPp call and
// talks to this script over lines: this script prints `ok <what>` for every
// check, `STEP <name>` when the test must act, and reads `GO <...>` back.
// Environment: IVR_BASE (http://127.0.0.1:port), IVR_USER, IVR_PASSWORD,
// IVR_SHOTS (folder for screenshots), IVR_PROFILE (fresh user-data dir).
import { chromium } from "playwright-core";
import readline from "node:readline";
import path from "node:path";

const { IVR_BASE: base, IVR_USER: user, IVR_PASSWORD: password, IVR_SHOTS: shots, IVR_PROFILE: profile } = process.env;
const ANNOUNCEMENT_DA = "Vigtig besked: vandforsyningen er afbrudt i hele Nordby i dag.";
const ANNOUNCEMENT_EN = "Important: the water supply is cut off in all of Nordby today.";

const input = readline.createInterface({ input: process.stdin });
const pending = [];
let waiting = null;
input.on("line", (l) => (waiting ? (waiting(l), (waiting = null)) : pending.push(l)));
const nextLine = () => (pending.length ? Promise.resolve(pending.shift()) : new Promise((r) => (waiting = r)));
const say = (m) => process.stdout.write(`${m}\n`);
function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  say(`ok ${what}`);
}
async function step(name) {
  say(`STEP ${name}`);
  const l = await nextLine();
  if (!l.startsWith("GO")) throw new Error(`expected GO after ${name}, got ${l}`);
  return l.slice(2).trim();
}

const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const page = ctx.pages()[0] || (await ctx.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
// Offline: nothing but the engine may be fetched.
await page.route("**/*", (r) => (r.request().url().startsWith(base) ? r.continue() : r.abort()));
const shot = (name) => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
const visit = async (p) => {
  await page.goto(`${base}/console/${p}`);
  await page.waitForLoadState("networkidle");
};

try {
  // Not logged in: every page sends you to the login.
  await page.goto(`${base}/console/live`);
  await page.waitForURL("**/console/login");
  check(true, "an anonymous visitor is sent to the login page");
  await shot("01-login");
  await page.fill("input[name=username]", user);
  await page.fill("input[name=password]", "wrong password!");
  await page.click("button[type=submit]");
  await page.waitForSelector("#err:not(:empty)");
  check((await page.textContent("#err")).includes("log in"), "a wrong password is refused on the page");
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForURL("**/console/live");
  check(true, "the operator logs in");

  // Only Nordby.
  await page.waitForSelector("#muni option", { state: "attached" });
  const munis = await page.$$eval("#muni option", (os) => os.map((o) => o.value));
  check(JSON.stringify(munis) === '["nordby"]', `the municipality picker offers only nordby (${munis})`);
  const api = await page.evaluate(async () => (await fetch("/api/v1/municipalities/sydhavn/kpis")).status);
  check(api === 404, "the browser session gets 404 for Sydhavn's KPIs");

  // Every page renders without script errors.
  for (const [i, p] of ["live", "kpis", "callbacks", "calls", "flows", "announcement", "audit", "account"].entries()) {
    await visit(p);
    if (p === "flows") await page.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
    await shot(`${String(i + 2).padStart(2, "0")}-${p}`);
    check(errors.length === 0, `page ${p} renders without script errors ${errors.join("; ")}`);
  }

  // An API token for scripts: shown once, works, revoked.
  await visit("account");
  await page.fill("#tokform input[name=name]", "kpi export script");
  await page.click("#tokform button[type=submit]");
  await page.waitForSelector("#newtoken .notice");
  const secret = (await page.textContent("#newtoken .mono")).trim();
  check(secret.startsWith("ivr_"), "an API token is issued and shown once");
  await shot("09-account-token");
  const byToken = await page.evaluate(async (t) => (await fetch("/api/v1/municipalities/nordby/kpis", { credentials: "omit", headers: { Authorization: `Bearer ${t}` } })).status, secret);
  check(byToken === 200, "the token reads Nordby's KPIs without the session");
  await page.click("button[data-revoke]");
  await page.waitForFunction(() => document.querySelector("#content").textContent.includes("No tokens."));
  check(true, "the token is revoked");

  // The crisis announcement.
  await visit("announcement");
  await page.fill("textarea[name=text_da]", ANNOUNCEMENT_DA);
  await page.fill("textarea[name=text_en]", ANNOUNCEMENT_EN);
  await page.fill("input[name=minutes]", "30");
  await page.click("#annform button[type=submit]");
  await page.waitForSelector(".notice");
  check((await page.textContent(".notice")).includes(ANNOUNCEMENT_DA), "the announcement is in force on the page");
  await shot("10-announcement-set");

  // The test places a real call now; it must show on the live page.
  await step("announced");
  await visit("live");
  await page.waitForFunction(() => Number(document.querySelector("#live-count")?.textContent) > 0, null, { timeout: 20000 });
  const row = await page.textContent("#live table");
  check(row.includes("nordby") && row.includes("••"), "the call shows on the live page with its number masked");
  await page.waitForFunction(() => !document.querySelector("#live table").textContent.includes("(starting)"), null, { timeout: 10000 });
  await shot("11-live-call");

  // The call has ended: the KPIs count it.
  const calls = await step("seen-live");
  await visit("kpis");
  await page.waitForFunction((n) => document.querySelector("#kpi-calls .value")?.textContent === n, calls, { timeout: 10000 });
  check(true, `the KPI page counts ${calls} call(s)`);
  await shot("12-kpis-after-call");

  // Its transcript: the announcement was said before the menu.
  await visit("calls");
  await page.click("a[data-call]");
  await page.waitForSelector("#transcript table");
  const said = await page.$$eval("#transcript tbody tr:first-child td:last-child", (tds) => tds[0].innerText);
  check(said.startsWith(ANNOUNCEMENT_DA), `the call's first words were the announcement (${said.split("\n")[0]})`);
  await shot("13-transcript");

  // Clear it.
  await visit("announcement");
  await page.click("#clear");
  await page.waitForSelector("#none");
  check(true, "the announcement is cleared");
  await shot("14-announcement-cleared");
  await visit("audit");
  const audit = await page.textContent("#content");
  check(audit.includes("announcement.set") && audit.includes("announcement.clear") && audit.includes("transcript.view"),
    "the audit log shows the announcement set and cleared and the transcript viewed");
  await shot("15-audit");
  // The test places a second call, which orders a callback.
  const total = await step("cleared");
  await visit("kpis");
  await page.waitForFunction((n) => document.querySelector("#kpi-calls .value")?.textContent === n, total, { timeout: 10000 });
  const resolved = await page.textContent("#kpi-resolved .value");
  check(resolved.startsWith("1 (50.0 %)"), `the KPI page counts ${total} calls, one resolved by the bot (${resolved})`);
  await shot("16-kpis-two-calls");
  await visit("callbacks");
  const cb = await page.textContent("#cbs table");
  check(cb.includes("requested") && cb.includes("••") && !cb.includes("87654321"), "the callback is listed with its number masked");
  await page.click("button[data-act=done]");
  await page.waitForFunction(() => document.querySelector("#cbs table")?.textContent.includes("nordby-op"), null, { timeout: 10000 });
  check((await page.textContent("#cbs table")).includes("done"), "the operator marks the callback done and is named beside it");
  await shot("17-callback-done");
  say("DONE");
} catch (e) {
  await shot("failure").catch(() => {});
  say(`FAIL ${e.message}`);
  process.exitCode = 1;
} finally {
  await ctx.close();
  input.close();
}
