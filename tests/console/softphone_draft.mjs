// A draft called from the browser while a phone call gets the published
// flow. Run by tests/softphone_browser.rs (the draft test), which places the
// SIPp call: this script makes a draft of Nordby with a new welcome (through
// /api/v1 with the page's session), calls the draft with the microphone
// muted, prints `CALL <call_ref>`, waits for `GO` (the SIP call is up at the
// same time), hangs up and prints `DONE`.
// Environment: IVR_BASE, IVR_USER, IVR_PASSWORD, IVR_SHOTS, IVR_PROFILE,
// IVR_CALLER_WAV, IVR_DRAFT_WELCOME.
import { chromium } from "playwright-core";
import readline from "node:readline";
import path from "node:path";

const env = process.env;
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

const ctx = await chromium.launchPersistentContext(env.IVR_PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
    `--use-file-for-fake-audio-capture=${env.IVR_CALLER_WAV}`,
    "--autoplay-policy=no-user-gesture-required", "--allow-loopback-in-peer-connection"],
  viewport: { width: 1280, height: 900 },
  permissions: ["microphone"],
});
const page = ctx.pages()[0] || (await ctx.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
await page.route("**/*", (r) => (r.request().url().startsWith(env.IVR_BASE) ? r.continue() : r.abort()));
const shot = (name) => page.screenshot({ path: path.join(env.IVR_SHOTS, `${name}.png`), fullPage: true });

try {
  await page.goto(`${env.IVR_BASE}/console/login`);
  await page.fill("input[name=username]", env.IVR_USER);
  await page.fill("input[name=password]", env.IVR_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL("**/console/live");
  // The draft, through the API as the Draft flows page does it.
  const draft = await page.evaluate(async (welcome) => {
    const me = await (await fetch("/api/v1/session")).json();
    const h = { "X-CSRF-Token": me.csrf_token, "Content-Type": "application/json" };
    const base = "/api/v1/municipalities/nordby/draft";
    const created = await (await fetch(base, { method: "POST", headers: h })).json();
    const main = created.files.find((f) => f.name === "main.toml").text;
    const text = main.replace(/^text\.da = "Velkommen[^"]*"/m, `text.da = "${welcome}"`);
    const r = await fetch(`${base}/files/main.toml`, { method: "PUT", headers: h, body: JSON.stringify({ text }) });
    const v = await r.json();
    return { status: r.status, changed: text !== main, ok: v.check && v.check.ok, errors: v.check ? v.check.errors : [] };
  }, env.IVR_DRAFT_WELCOME);
  check(draft.status === 200 && draft.changed && draft.ok, `a draft with a new welcome checks clean ${JSON.stringify(draft)}`);
  await page.goto(`${env.IVR_BASE}/console/draft`);
  await page.waitForSelector("#check-ok");
  await shot("draft-01-page");
  await page.goto(`${env.IVR_BASE}/console/call`);
  await page.waitForSelector("#dial");
  await page.check("#muted");
  await page.check("#use-draft");
  await page.click("#dial");
  await page.waitForFunction(() => window.softphone && window.softphone.state === "connected", null, { timeout: 20000 });
  check(true, "the draft call connects");
  say(`CALL ${await page.evaluate(() => window.softphone.callRef)}`);
  const go = await nextLine();
  if (!go.startsWith("GO")) throw new Error(`expected GO, got ${go}`);
  await page.waitForFunction(() => window.softphone.peak > 0.01, null, { timeout: 20000 });
  await shot("draft-02-calling");
  await page.click("#hangup");
  await page.waitForFunction(() => window.softphone.state.startsWith("ended"), null, { timeout: 20000 });
  check(errors.length === 0, `no script errors ${errors.join("; ")}`);
  say("DONE");
} catch (e) {
  await shot("draft-99-failure").catch(() => {});
  say(`FAIL ${e.message}`);
  process.exitCode = 1;
} finally {
  // stdin's reader would keep node alive after the browser closes.
  input.close();
  await ctx.close();
}
