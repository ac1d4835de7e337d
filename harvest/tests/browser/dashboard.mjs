// Drives the harvest dashboard in Debian's headless Chromium: node dashboard.mjs URL OUT_DIR
//
// Checks that the page shows every device, that a moving value changes without a reload, that
// trends are drawn, that a write through the page's control is answered, that a phone-sized
// screen needs no horizontal scrolling, and that the page asks nothing of any host but the
// service. Saves dashboard.png and dashboard-phone.png in OUT_DIR and prints one JSON line of
// what it saw; exits non-zero with the reason on the first failed check.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, outDir] = process.argv.slice(2);
if (!url || !outDir) {
  console.error("usage: node dashboard.mjs URL OUT_DIR");
  process.exit(2);
}
const DEVICES = ["plc", "meter-1", "meter-2"];
const WAIT = 15_000;
const SETPOINT = 42.5;

const profile = mkdtempSync(join(tmpdir(), "harvest-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1280, height: 900 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run"],
});
const seen = {};
try {
  const page = context.pages()[0] ?? await context.newPage();
  const origin = new URL(url).origin;
  const foreign = [];
  page.on("request", (request) => {
    if (new URL(request.url()).origin !== origin) foreign.push(request.url());
  });
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));

  await page.goto(url, { timeout: WAIT });
  for (const name of DEVICES) {
    await page.waitForSelector(`section[data-device="${name}"] .status.connected`, { timeout: WAIT });
  }
  seen.devices = await page.$$eval("section[data-device]", (cards) => cards.map((c) => c.dataset.device));

  // The ramp counts up 50 per second: two readings a couple of seconds apart must differ.
  const ramp = 'section[data-device="plc"] tr[data-point="ramp"] .v';
  await page.waitForFunction((sel) => document.querySelector(sel)?.dataset.raw, ramp, { timeout: WAIT });
  const first = await page.$eval(ramp, (v) => v.dataset.raw);
  await page.waitForFunction(([sel, before]) => document.querySelector(sel)?.dataset.raw !== before,
    [ramp, first], { timeout: WAIT });
  seen.ramp = [JSON.parse(first), JSON.parse(await page.$eval(ramp, (v) => v.dataset.raw))];

  // A trend line with at least two points, drawn from history and the stream.
  await page.waitForFunction(() => {
    const line = document.querySelector('tr[data-point="ramp"] svg.spark polyline');
    return line && line.getAttribute("points").split(" ").length >= 2;
  }, null, { timeout: WAIT });
  seen.trendPoints = await page.$eval('tr[data-point="ramp"] svg.spark polyline',
    (line) => line.getAttribute("points").split(" ").length);

  // A write through the page: type the set-point, press Set, wait for the device's answer.
  const row = 'section[data-device="plc"] tr[data-point="setpoint"]';
  await page.fill(`${row} input[data-write="setpoint"]`, String(SETPOINT));
  await page.click(`${row} button[data-set="setpoint"]`);
  await page.waitForSelector(`${row} .answer.ok`, { timeout: WAIT });
  seen.writeAnswer = await page.$eval(`${row} .answer`, (a) => a.textContent);
  // Text in a number's field is refused by the page before anything is sent.
  await page.fill(`${row} input[data-write="setpoint"]`, "not a number");
  await page.click(`${row} button[data-set="setpoint"]`);
  await page.waitForSelector(`${row} .answer.fail`, { timeout: WAIT });
  seen.refusedAnswer = await page.$eval(`${row} .answer`, (a) => a.textContent);

  // Disconnect and connect a device from its card.
  const meter = 'section[data-device="meter-1"]';
  await page.click(`${meter} button.toggle-connection`);
  await page.waitForSelector(`${meter} .status.disconnected`, { timeout: WAIT });
  seen.disconnectedLabel = await page.$eval(`${meter} button.toggle-connection`, (b) => b.textContent);
  await page.click(`${meter} button.toggle-connection`);
  await page.waitForSelector(`${meter} .status.connected`, { timeout: WAIT });

  await page.screenshot({ path: join(outDir, "dashboard.png"), fullPage: true });

  // Phone-sized: nothing wider than the screen.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  seen.phoneOverflow = await page.evaluate(() =>
    document.scrollingElement.scrollWidth - window.innerWidth);
  await page.screenshot({ path: join(outDir, "dashboard-phone.png"), fullPage: true });

  seen.foreignRequests = foreign;
  seen.pageErrors = pageErrors;
  const failures = [];
  if (seen.ramp[0] === seen.ramp[1]) failures.push("the ramp did not move");
  if (seen.phoneOverflow > 1) failures.push(`the phone layout overflows by ${seen.phoneOverflow} px`);
  if (foreign.length) failures.push(`requests to other hosts: ${foreign.join(", ")}`);
  if (pageErrors.length) failures.push(`page errors: ${pageErrors.join("; ")}`);
  console.log(JSON.stringify(seen));
  if (failures.length) {
    console.error(failures.join("\n"));
    process.exitCode = 1;
  }
} catch (error) {
  console.log(JSON.stringify(seen));
  console.error(`dashboard check failed: ${error.message}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
