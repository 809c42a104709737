// The console's softphone in headless Debian chromium, driven by
// playwright-core. Run by tests/softphone_browser.rs, which owns the engine.
// Chromium's fake microphone plays IVR_CALLER_WAV (a caller's utterance from
// the speech test set, then silence, looped). The page calls Nordby's flow;
// this script checks what the page shows and prints `ok <what>` per check,
// `STATE <json>` with the final debugger view, and `DONE`.
// Environment: IVR_BASE, IVR_USER, IVR_PASSWORD, IVR_SHOTS, IVR_PROFILE, IVR_CALLER_WAV.
import { chromium } from "playwright-core";
import path from "node:path";

const env = process.env;
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
    "--autoplay-policy=no-user-gesture-required",
    // The engine's candidate is on loopback in the test.
    "--allow-loopback-in-peer-connection"],
  viewport: { width: 1280, height: 900 },
  permissions: ["microphone"],
});
const page = ctx.pages()[0] || (await ctx.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
await page.route("**/*", (r) => (r.request().url().startsWith(env.IVR_BASE) ? r.continue() : r.abort()));
const shot = (name) => page.screenshot({ path: path.join(env.IVR_SHOTS, `${name}.png`), fullPage: true });
// Hanging up in the page ends the call there at once; on a loaded machine
// the page may answer late. On failure, say what the page shows and what
// went wrong in it.
const hangUp = async () => {
  await page.click("#hangup");
  await page
    .waitForFunction(() => window.softphone.state.startsWith("ended"), null, { timeout: 20000 })
    .catch(async (e) => {
      const state = await page.evaluate(() => window.softphone.state).catch(() => "?");
      throw new Error(`${e.message} (state "${state}"; page errors: ${errors.join("; ") || "none"})`);
    });
};

try {
  await page.goto(`${env.IVR_BASE}/console/login`);
  await page.fill("input[name=username]", env.IVR_USER);
  await page.fill("input[name=password]", env.IVR_PASSWORD);
  await page.click("button[type=submit]");
  await page.waitForURL("**/console/live");
  await page.goto(`${env.IVR_BASE}/console/call`);
  await page.waitForSelector("#dial");
  await shot("softphone-01-idle");
  await page.click("#dial");
  await page.waitForFunction(() => window.softphone && window.softphone.state === "connected", null, { timeout: 20000 });
  check(true, "the browser call connects (ICE, DTLS-SRTP) and the flow starts");
  // The bot greets: its audio reaches the page's analyser.
  await page.waitForFunction(() => window.softphone.peak > 0.01, null, { timeout: 20000 });
  check(true, "the page receives the bot's audio (analyser peak above 0.01)");
  await shot("softphone-02-greeting");
  // The caller's utterance (fake microphone) routes the call by what was heard.
  await page.waitForFunction(() => document.querySelector("#dbg-intent").textContent !== "", null, { timeout: 90000 });
  const view = await page.evaluate(() => ({
    intent: window.softphone.events.filter((e) => e.kind === "flow").flatMap((e) => e.intents)[0],
    shown: document.querySelector("#dbg-intent").textContent,
    step: document.querySelector("#dbg-step").textContent,
    codec: document.querySelector("#dbg-codec").textContent,
    peak: window.softphone.peak,
  }));
  say(`STATE ${JSON.stringify(view)}`);
  // The debugger, live over server-sent events: what was heard, the intent
  // scores, the turn's timings.
  await page.waitForFunction(() => window.softphone.events.some((e) => e.kind === "turn"), null, { timeout: 20000 });
  const dbg = await page.evaluate(() => {
    const ev = window.softphone.events;
    return {
      heard: ev.filter((e) => e.kind === "heard").map((e) => ({ confidence: e.confidence, lang: e.lang, words: e.text.split(/\s+/).filter(Boolean).length })),
      explanations: ev.filter((e) => e.kind === "flow").flatMap((e) => e.explanations),
      steps: ev.filter((e) => e.kind === "flow").map((e) => e.step),
      turns: ev.filter((e) => e.kind === "turn"),
      shownHeard: document.querySelectorAll("#dbg-heard li").length,
      shownTurns: document.querySelectorAll("#dbg-turns tbody tr").length,
    };
  });
  say(`DEBUG ${JSON.stringify(dbg)}`);
  await shot("softphone-03-routed");
  check(errors.length === 0, `no script errors ${errors.join("; ")}`);
  await hangUp();
  check(true, "hanging up in the page ends the call");
  await shot("softphone-04-ended");
  // A second call with the microphone muted: the keypad's "2" answers the
  // menu (RFC 4733 events from RTCDTMFSender through the peer connection).
  // The page starts the new call with an empty debugger.
  await page.check("#muted");
  await page.click("#dial");
  await page.waitForFunction(() => window.softphone.state === "connected", null, { timeout: 20000 });
  await page.waitForFunction(() => document.querySelector("#dbg-step").textContent === "main/menu", null, { timeout: 30000 });
  say(`info canInsertDTMF ${await page.evaluate(() => window.softphone.canInsertDTMF())}`);
  await page.click('#keypad button[data-key="2"]');
  await page.waitForFunction(() => window.softphone.events.some((e) => e.kind === "flow" && e.intents.length), null, { timeout: 20000 });
  const keyed = await page.evaluate(() => {
    const flow = window.softphone.events.filter((e) => e.kind === "flow" && e.intents.length);
    return {
      intent: flow[0].intents[0],
      step: flow[0].step,
      keys: window.softphone.events.filter((e) => e.kind === "key").map((e) => e.key).join(""),
      heard: window.softphone.events.filter((e) => e.kind === "heard").length,
      shownHeard: document.querySelectorAll("#dbg-heard li").length,
    };
  });
  say(`KEYED ${JSON.stringify(keyed)}`);
  await shot("softphone-05-keyed");
  await hangUp();
  say("DONE");
} catch (e) {
  await shot("softphone-99-failure").catch(() => {});
  say(`FAIL ${e.message}`);
  process.exitCode = 1;
} finally {
  await ctx.close();
}
