// Drives the harvest dashboard in Debian's headless Chromium: node dashboard.mjs URL OUT_DIR
//
// The service under test is the one harvest/tests/dashboard.rs starts: the embedded demo (plc,
// meter-1, meter-2) plus "faulty", whose only point lies past its simulator's registers so
// every read and write is answered with exception 02.
//
// Checks, each wait bounded: every device the API lists gets a card with its status; the event
// stream is live and values and counters move without a reload; trends are drawn, from the
// history API alone when the stream is blocked; the faulty device shows its error, a bad point
// and counted exceptions; writes through the page's controls (a number refused before sending,
// the set-point, the pump coil, an exception answer) show the device's answer; a device is
// disconnected (values go stale) and connected again from its card; a phone-sized screen needs
// no horizontal scrolling and keeps text readable; nothing is asked of any other host and no
// asset is missing. Saves dashboard.png and dashboard-phone.png in OUT_DIR and prints one JSON
// line of what it saw; exits non-zero with the reason on the first failed check.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node dashboard.mjs URL OUT_DIR");
  process.exit(2);
}
/** Longest wait for any one thing the page or the service does. */
const WAIT = 15_000;
/** The whole run; the Rust test kills this process a little later than that. */
const DEADLINE = 100_000;
const SETPOINT = 42.5;
const PHONE = { width: 390, height: 844 };

const card = (name) => `section[data-device="${name}"]`;
const row = (device, point) => `${card(device)} tr[data-point="${point}"]`;
const bounded = { timeout: WAIT };

const profile = mkdtempSync(join(tmpdir(), "harvest-chromium-"));
const deadline = setTimeout(() => {
  console.error(`dashboard check failed: not done in ${DEADLINE / 1000} s`);
  // Playwright kills the browser it launched as the process exits.
  process.exit(1);
}, DEADLINE);
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run"],
});
const seen = {};
let failure = null;
try {
  const page = context.pages()[0] ?? await context.newPage();
  // Clicks, fills, screenshots and reloads are bounded like every explicit wait.
  context.setDefaultTimeout(WAIT);
  context.setDefaultNavigationTimeout(WAIT);
  const origin = new URL(url).origin;
  const foreign = [];
  const failed = [];
  let streamBlocked = false;
  page.on("request", (request) => {
    const target = new URL(request.url());
    // data: and blob: URLs never leave the page.
    if (!["data:", "blob:"].includes(target.protocol) && target.origin !== origin) foreign.push(request.url());
  });
  page.on("response", (response) => {
    if (response.status() >= 400) failed.push(`${response.status()} ${response.request().method()} ${new URL(response.url()).pathname}`);
  });
  page.on("requestfailed", (request) => {
    const path = new URL(request.url()).pathname;
    // The stream is cut on purpose while checking history, and at every reload.
    if (path === "/api/events" && (streamBlocked || request.failure()?.errorText === "net::ERR_ABORTED")) return;
    failed.push(`${request.failure()?.errorText} ${request.method()} ${path}`);
  });
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));

  const text = (selector) => page.$eval(selector, (node) => node.textContent);
  const raw = (device, point) => page.$eval(`${row(device, point)} .v`, (v) => JSON.parse(v.dataset.raw ?? "null"));
  const quality = (device, point) => text(`${row(device, point)} .quality`);
  const polls = (device) => page.$eval(`${card(device)} .counters`, (counters) =>
    Number(/polls (\d+)/.exec(counters.textContent)?.[1]));
  const waitText = (selector, want, what) => page.waitForFunction(
    ([sel, expected]) => document.querySelector(sel)?.textContent === expected, [selector, want], bounded)
    .catch((error) => { throw new Error(`${what}: ${error.message.split("\n")[0]}`); });
  const trendPoints = (device, point) => page.$eval(`${row(device, point)} svg.spark`, (svg) =>
    svg.querySelector("polyline")?.getAttribute("points").split(" ").length ?? 0);
  const allCardsShown = async () => {
    for (const name of seen.apiDevices) {
      await page.waitForFunction((sel) => {
        const badge = document.querySelector(`${sel} h2 .status`);
        return badge && badge.textContent !== "" && !badge.classList.contains("connecting");
      }, card(name), bounded).catch(() => { throw new Error(`no card with a status for ${name}`); });
    }
  };

  // Every device the API lists, each with a settled status.
  const listed = await page.request.get(new URL("/api/devices", url).href, { timeout: WAIT });
  seen.apiDevices = (await listed.json()).devices.map((d) => d.name);
  await page.goto(url, bounded);
  await allCardsShown();
  seen.devices = await page.$$eval("section[data-device]", (cards) => cards.map((c) => c.dataset.device));
  seen.status = Object.fromEntries(await Promise.all(seen.devices.map(async (name) =>
    [name, await page.$eval(`${card(name)} h2 .status`, (b) => b.className.replace("badge status ", ""))])));
  await waitText("#stream", "live", "the event stream badge never said live");
  seen.streamBadge = await text("#stream");

  // Values and counters move without a reload: the ramp counts 50 per second, the PLC is
  // polled twice a second and the page refreshes counters every 2 s.
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.raw, `${row("plc", "ramp")} .v`, bounded);
  const before = { ramp: await raw("plc", "ramp"), level: await raw("plc", "level"), polls: await polls("plc"), at: Date.now() };
  await page.waitForTimeout(2500);
  await page.waitForFunction(([sel, first]) => JSON.parse(document.querySelector(sel).dataset.raw) !== first,
    [`${row("plc", "ramp")} .v`, before.ramp], bounded);
  await page.waitForFunction(([sel, first]) => Number(/polls (\d+)/.exec(document.querySelector(sel).textContent)?.[1]) > first,
    [`${card("plc")} .counters`, before.polls], bounded);
  const after = { ramp: await raw("plc", "ramp"), level: await raw("plc", "level"), polls: await polls("plc"), at: Date.now() };
  seen.ramp = [before.ramp, after.ramp];
  seen.level = [before.level, after.level];
  seen.polls = [before.polls, after.polls];
  seen.secondsApart = (after.at - before.at) / 1000;
  // The value and its text in one read: a sample arriving between two reads would move one.
  const shown = await page.$eval(`${row("plc", "ramp")} .v`, (v) => [JSON.parse(v.dataset.raw ?? "null"), v.textContent]);
  seen.ramp[1] = shown[0];
  seen.rampShown = shown[1];
  await page.waitForFunction((sel) => (document.querySelector(sel)?.getAttribute("points") ?? "").split(" ").length >= 3,
    `${row("plc", "ramp")} svg.spark polyline`, bounded);
  seen.trendPoints = await trendPoints("plc", "ramp");

  // The faulty device: its error, the bad point, the exceptions counted.
  await page.waitForFunction((sel) => /exceptions [1-9]/.test(document.querySelector(sel)?.textContent ?? ""),
    `${card("faulty")} .counters`, bounded);
  seen.faulty = {
    status: await page.$eval(`${card("faulty")} h2 .status`, (b) => b.className.replace("badge status ", "")),
    error: await text(`${card("faulty")} .error-text`),
    exceptions: await page.$eval(`${card("faulty")} .counters`, (c) => Number(/exceptions (\d+)/.exec(c.textContent)[1])),
    value: await text(`${row("faulty", "beyond")} .v`),
    quality: await quality("faulty", "beyond"),
    reason: await page.$eval(`${row("faulty", "beyond")} .quality`, (q) => q.title),
  };

  // Trends come from the history API: with the stream blocked, a reloaded page still draws them.
  streamBlocked = true;
  await page.route("**/api/events", (route) => route.abort());
  await page.reload(bounded);
  await allCardsShown();
  seen.historyTrendPoints = await trendPoints("plc", "ramp");
  seen.blockedStreamBadge = await text("#stream");
  await page.unroute("**/api/events");
  await page.reload(bounded);
  streamBlocked = false;
  await allCardsShown();
  await waitText("#stream", "live", "the stream did not come back after a reload");

  // Writes through the page. Text in a number's field is refused before anything is sent.
  const setpoint = row("plc", "setpoint");
  await page.fill(`${setpoint} input[data-write="setpoint"]`, "not a number");
  await page.click(`${setpoint} button[data-set="setpoint"]`);
  await page.waitForSelector(`${setpoint} .answer.fail`, bounded);
  seen.refusedAnswer = await text(`${setpoint} .answer`);
  // The set-point: typed, Enter pressed, the device's read-back shown, then the next poll.
  await page.fill(`${setpoint} input[data-write="setpoint"]`, String(SETPOINT));
  await page.press(`${setpoint} input[data-write="setpoint"]`, "Enter");
  await page.waitForSelector(`${setpoint} .answer.ok`, bounded);
  seen.writeAnswer = await text(`${setpoint} .answer`);
  await page.waitForFunction(([sel, want]) => JSON.parse(document.querySelector(sel).dataset.raw) === want,
    [`${setpoint} .v`, SETPOINT], bounded);
  seen.setpointShown = await text(`${setpoint} .v`);
  // The pump coil: Off.
  const pump = row("plc", "pump");
  await page.click(`${pump} button[data-value="off"]`);
  await page.waitForSelector(`${pump} .answer.ok`, bounded);
  seen.pumpAnswer = await text(`${pump} .answer`);
  // A write the device refuses: its exception is shown.
  const beyond = row("faulty", "beyond");
  await page.fill(`${beyond} input[data-write="beyond"]`, "7");
  await page.click(`${beyond} button[data-set="beyond"]`);
  await page.waitForSelector(`${beyond} .answer.fail`, bounded);
  seen.exceptionAnswer = await text(`${beyond} .answer`);

  // Disconnect and connect a device from its card; its values go stale, then good again.
  const meter = card("meter-1");
  await page.click(`${meter} button.toggle-connection`);
  await page.waitForSelector(`${meter} h2 .status.disconnected`, bounded);
  seen.disconnectedLabel = await text(`${meter} button.toggle-connection`);
  await waitText(`${row("meter-1", "voltage")} .quality`, "stale", "meter-1's values did not go stale");
  seen.disconnectedQualities = await page.$$eval(`${meter} .quality`, (qs) => [...new Set(qs.map((q) => q.textContent))]);
  await page.click(`${meter} button.toggle-connection`);
  await page.waitForSelector(`${meter} h2 .status.connected`, bounded);
  await waitText(`${row("meter-1", "voltage")} .quality`, "good", "meter-1's values did not come back");
  seen.connectedLabel = await text(`${meter} button.toggle-connection`);

  await page.screenshot({ path: join(outDir, "dashboard.png"), fullPage: true });

  // Phone-sized: nothing wider than the screen, text large enough to read, buttons to tap.
  await page.setViewportSize(PHONE);
  await page.waitForFunction((width) => window.innerWidth === width, PHONE.width, bounded);
  seen.phone = await page.evaluate(() => {
    const width = window.innerWidth;
    const describe = (node) => `${node.tagName.toLowerCase()}${node.className && typeof node.className === "string" ? `.${node.className.split(" ").join(".")}` : ""}`;
    const outside = [];
    let smallestFont = Infinity;
    let smallestTap = Infinity;
    for (const node of document.body.querySelectorAll("*")) {
      const box = node.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (box.right > width + 1 || box.left < -1) outside.push(`${describe(node)} ${Math.round(box.left)}–${Math.round(box.right)}`);
      const ownText = [...node.childNodes].some((child) => child.nodeType === Node.TEXT_NODE && child.textContent.trim());
      if (ownText) smallestFont = Math.min(smallestFont, parseFloat(getComputedStyle(node).fontSize));
      if (node.matches("button, input")) smallestTap = Math.min(smallestTap, box.height);
    }
    return {
      overflow: document.scrollingElement.scrollWidth - width,
      outside: outside.slice(0, 10),
      smallestFontPx: smallestFont,
      smallestTapPx: Math.round(smallestTap),
    };
  });
  await page.screenshot({ path: join(outDir, "dashboard-phone.png"), fullPage: true });

  seen.foreignRequests = foreign;
  seen.failedRequests = failed;
  seen.pageErrors = pageErrors;
  const problems = [];
  if (seen.ramp[0] === seen.ramp[1]) problems.push("the ramp did not move");
  if (seen.phone.overflow > 1 || seen.phone.outside.length) problems.push(`the phone layout overflows: ${JSON.stringify(seen.phone)}`);
  if (foreign.length) problems.push(`requests to other hosts: ${foreign.join(", ")}`);
  if (pageErrors.length) problems.push(`page errors: ${pageErrors.join("; ")}`);
  if (problems.length) failure = problems.join("\n");
} catch (error) {
  failure = `dashboard check failed: ${error.message}`;
} finally {
  console.log(JSON.stringify(seen));
  await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(deadline);
}
if (failure) {
  console.error(failure);
  process.exitCode = 1;
}
