// The set-up every browser check shares (tests/browser/*.cjs, run by scripts/browser): Chromium
// launched through playwright-core, a count of checks and a list of problems, pages watched for
// console errors and uncaught exceptions, axe-core scans (serious and critical violations),
// layout checks (nothing wider than the screen, 44 px tap targets), the weight of a page
// (decoded bytes of its document, scripts and stylesheets, or bytes transferred as DevTools
// counts them), signing in and signing up through the forms, and the report at the end.
//
//   const { run } = require("./lib/harness.cjs");
//   run("shop check", async (h, browser) => { ... h.check(ok, "what") ... },
//     (h) => `${h.checks} checks passed`);
//
// Lives in tests/browser/lib/ because scripts/browser runs every tests/browser/*.cjs as a check.
// CommonJS, so that NODE_PATH (tools/node/node_modules) finds playwright-core.
"use strict";
const { chromium } = require("playwright-core");

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base) throw new Error("BASE_URL is not set");

const BUDGET = 100 * 1024;
const DEMO_PASSWORD = "demo-password";
// Header links and buttons, and form buttons: what a thumb must hit.
const TAP_TARGETS = "header a, header button, form button";

function demoEmail(username) {
  return `${username}@demo.ballpark.invalid`;
}

let AxeBuilder;
function axeBuilder() {
  if (!AxeBuilder) {
    const module = require("@axe-core/playwright");
    AxeBuilder = module.default || module;
  }
  return AxeBuilder;
}

class Harness {
  constructor() {
    this.base = base;
    this.shots = shots;
    this.problems = [];
    this.checks = 0;
    this.step = null; // where a failure happened, when the check names its steps
    this.browser = null;
  }

  check(ok, what) {
    this.checks += 1;
    if (!ok) this.problems.push(what);
  }

  problem(what) {
    this.problems.push(what);
  }

  // Console errors and uncaught exceptions on `page` become problems. `who` prefixes them (a
  // string, or a function of the page); `ignore` is a pattern of console errors to let by.
  watch(page, who, { ignore } = {}) {
    const prefix = () => (typeof who === "function" ? who(page) : who);
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      if (ignore && ignore.test(message.text())) return;
      this.problems.push(`${prefix()}: console: ${message.text()}`);
    });
    page.on("pageerror", (error) => this.problems.push(`${prefix()}: ${error.message}`));
  }

  // A new page in `context`, watched, at `path`. A status other than `status` (200) is a
  // problem; with `counted`, it is one of the checks. Returns the page; its response is
  // `page.response`.
  async open(context, path, { who = path, status = 200, counted = false, ignore, goto } = {}) {
    const page = await context.newPage();
    this.watch(page, who, { ignore });
    const response = await page.goto(base + path, goto);
    const seen = response && response.status();
    const what = `${who}: status ${seen}${counted ? `, expected ${status}` : ""}`;
    if (counted) this.check(seen === status, what);
    else if (seen !== status) this.problem(what);
    page.response = response;
    return page;
  }

  // axe-core on the page as it is now: no serious or critical violation (one check). With
  // `detail`, each violation's first node's failure summary is reported too.
  async axe(page, what, { detail = false } = {}) {
    const Builder = axeBuilder();
    const result = await new Builder({ page }).analyze();
    const bad = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    const describe = (v) => `${v.id} (${v.nodes.length}: ${v.nodes[0].target}${detail ? ` ${v.nodes[0].failureSummary}` : ""})`;
    this.check(bad.length === 0, `${what}: axe: ${bad.map(describe).join("; ")}`);
  }

  // Nothing wider than a `width` px screen (one check).
  async notWider(page, width, what) {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    this.check(wide <= width, `${what}: the page is ${wide}px wide on a ${width}px screen`);
  }

  // Visible links and buttons matching `selector` at least 44 px high (one check).
  async tapTargets(page, what, selector = TAP_TARGETS) {
    const small = await page.evaluate((selector) =>
      [...document.querySelectorAll(selector)]
        .filter((el) => el.offsetParent !== null)
        .map((el) => [el.textContent.trim(), el.getBoundingClientRect().height])
        .filter(([, h]) => h < 44), selector);
    this.check(small.length === 0, `${what}: tap targets under 44px: ${JSON.stringify(small)}`);
  }

  // The three layout checks: width, tap targets, axe-core (three checks).
  async layout(page, what, width, { targets = TAP_TARGETS } = {}) {
    await this.notWider(page, width, what);
    await this.tapTargets(page, what, targets);
    await this.axe(page, what);
  }

  // Decoded sizes of the document, scripts and stylesheets from this server that `page`
  // receives from now on, keyed by URL (`key: "path"`: by path). `stop()` stops counting;
  // `total()` and `files()` sum them up.
  sizes(page, { key = "url" } = {}) {
    const sizes = {};
    const listener = async (response) => {
      const type = response.request().resourceType();
      if (["document", "script", "stylesheet"].includes(type) && response.url().startsWith(base)) {
        const name = key === "path" ? new URL(response.url()).pathname : response.url();
        try { sizes[name] = (await response.body()).length; } catch (_) { /* redirect */ }
      }
    };
    page.on("response", listener);
    return {
      sizes,
      stop: () => page.off("response", listener),
      total: (filter = () => true) => Object.entries(sizes).filter(([name]) => filter(name)).reduce((a, [, b]) => a + b, 0),
      files: () => Object.keys(sizes).length,
    };
  }

  // Bytes transferred for `page` from now on, cache disabled, as the DevTools protocol counts
  // them (Network.loadingFinished's encodedDataLength: compressed, headers included).
  async transferred(context, page) {
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    const meter = { bytes: 0 };
    cdp.on("Network.loadingFinished", (event) => { meter.bytes += event.encodedDataLength; });
    return meter;
  }

  // Signs in through the login form on `page`. With `next`, through /login?next=… and waits to
  // land there; without, waits to leave /login.
  async signIn(page, email, password, next) {
    await page.goto(next ? `${base}/login?next=${encodeURIComponent(next)}` : `${base}/login`);
    await this.submitLogin(page, email, password, next);
  }

  // Fills and sends the login form already open on `page`.
  async submitLogin(page, email, password, next) {
    await page.fill("input[name=email]", email);
    await page.fill("input[name=password]", password);
    const landed = next ? page.waitForURL(`**${next}`) : page.waitForURL((url) => !url.pathname.startsWith("/login"));
    await Promise.all([landed, page.click("main form button")]);
  }

  // A new context (`options`) with one watched page, signed in as the demo's `username`, at
  // `next`. `dialogs: true` accepts confirm() dialogs.
  async signedIn(username, next, options, { who = username, dialogs = false } = {}) {
    const context = await this.browser.newContext(options);
    const page = await context.newPage();
    this.watch(page, who);
    if (dialogs) page.on("dialog", (dialog) => dialog.accept());
    await this.signIn(page, demoEmail(username), DEMO_PASSWORD, next);
    return page;
  }

  // The session of the demo's `username` (its storage state), signed in once through the form.
  async sessionOf(username) {
    const context = await this.browser.newContext();
    const page = await context.newPage();
    await this.signIn(page, demoEmail(username), DEMO_PASSWORD);
    const state = await context.storageState();
    await context.close();
    return state;
  }

  // Signs up through /register as `name` (email name@example.com, password password123, a
  // Doosan fan).
  async register(page, name) {
    await page.goto(base + "/register");
    await page.fill("#username", name);
    await page.fill("#email", `${name}@example.com`);
    await page.fill("#password", "password123");
    await page.selectOption("#team", "doosan");
    await Promise.all([page.waitForNavigation(), page.click("form.stack button")]);
  }
}

// Runs a check: launches Chromium, calls `body(h, browser)`, closes the browser, and reports
// as `label`: the problems (exit 1), or `summary(h)` (a line beginning with the count).
function run(label, body, summary) {
  const h = new Harness();
  (async () => {
    h.browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
    try {
      await body(h, h.browser);
    } catch (error) {
      h.problem(`failed${h.step ? ` at ${h.step}` : ""}: ${error.stack || error.message}`);
    } finally {
      await h.browser.close();
    }
    if (h.problems.length) {
      console.error(`${label}: ${h.problems.length} problem(s)`);
      for (const problem of h.problems) console.error(`  - ${problem}`);
      process.exit(1);
    }
    console.log(`${label}: ${summary(h)}`);
  })().catch((error) => {
    console.error(`${label}: ${error.stack || error}`);
    process.exit(1);
  });
}

module.exports = { run, base, shots, BUDGET, DEMO_PASSWORD, demoEmail };
