// Every page of the site, in a real browser (Chromium, driven by playwright-core), as a guest
// and signed in where that applies, at 1280 px and at 390 px (a phone). Each page: the
// expected status, no console errors or Content-Security-Policy violations, no serious or
// critical axe-core violation, nothing wider than a 390 px screen, and under 100 KB
// transferred with its scripts and stylesheet (compressed, cache disabled; counted from the
// DevTools protocol's Network.loadingFinished encodedDataLength). Prints each page's weight.
// SCREENSHOTS=<dir> also saves <dir>/page-<name>-{desktop,phone}.png (README's table).
// Run by scripts/browser, which starts the server (demo data) and passes BASE_URL.
//
// To add a page, add an entry to PAGES: `path` is a string or an async function of the
// demo data's ids (`ids` below) that returns one; `as` lists who opens it ("guest", "fan":
// the demo's jamsil_bear); `status` defaults to 200; `screenshot: false` leaves it out of
// the README's screenshots (taken as the last in `as`).
"use strict";
const { chromium } = require("playwright-core");
const AxeBuilder = require("@axe-core/playwright").default || require("@axe-core/playwright");

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base) throw new Error("BASE_URL is not set");

const BUDGET = 100 * 1024;
const FAN = { email: "jamsil_bear@demo.ballpark.invalid", password: "demo-password" };
const BOTH = ["guest", "fan"];

const PAGES = [
  { name: "home", path: "/", as: BOTH },
  { name: "board", path: "/?board=baseball&sort=views", as: BOTH },
  { name: "board-food", path: "/?board=food", as: ["guest"], screenshot: false },
  { name: "search", path: "/?q=%EC%95%BC%EA%B5%AC", as: BOTH },
  { name: "tag", path: (ids) => `/?tag=${encodeURIComponent(ids.tag)}`, as: ["guest"], screenshot: false },
  { name: "article", path: (ids) => `/articles/${encodeURIComponent(ids.article)}`, as: BOTH },
  { name: "profile", path: "/profiles/jamsil_bear", as: BOTH },
  { name: "team", path: "/teams/doosan", as: BOTH },
  { name: "stadiums", path: "/stadiums", as: BOTH },
  { name: "stadium", path: "/stadiums/jamsil", as: BOTH },
  { name: "store", path: (ids) => `/stores/${ids.store}`, as: BOTH },
  { name: "login", path: "/login", as: ["guest"] },
  { name: "register", path: "/register", as: ["guest"] },
  { name: "editor", path: "/editor", as: ["fan"] },
  { name: "settings", path: "/settings", as: ["fan"] },
  { name: "orders", path: "/orders", as: ["fan"] },
  { name: "reviews-tag", path: "/reviews?tag=%EC%B9%98%EB%A7%A5", as: BOTH, screenshot: false },
  { name: "error", path: "/no-such-page", as: BOTH, status: 404 },
  { name: "bad-query", path: "/?page=abc", as: ["guest"], status: 400, screenshot: false },
];

const WIDTHS = [
  { label: "desktop", width: 1280, height: 900 },
  { label: "phone", width: 390, height: 844 },
];

// Ids the demo data decides: an article, one of its tags, a store at Jamsil.
async function demoIds() {
  const articles = await (await fetch(`${base}/api/articles?limit=20`)).json();
  const withTag = articles.articles.find((a) => a.tagList.length) || articles.articles[0];
  const stadium = await (await fetch(`${base}/stadiums/jamsil`)).text();
  const store = (stadium.match(/href="\/stores\/(\d+)"/) || [])[1];
  return { article: articles.articles[0].slug, tag: (withTag.tagList[0] || "kbo"), store };
}

async function main() {
  const problems = [];
  let checks = 0;
  const weights = [];
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });

  function check(ok, what) {
    checks += 1;
    if (!ok) problems.push(what);
  }

  // The fan's session, signed in once through the form and shared by both widths.
  async function fanState() {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/login`);
    await page.fill("input[name=email]", FAN.email);
    await page.fill("input[name=password]", FAN.password);
    await Promise.all([page.waitForURL((url) => !url.pathname.startsWith("/login")), page.click("main form button")]);
    const state = await context.storageState();
    await context.close();
    return state;
  }

  // Opens `path`, checks it, and returns its weight in bytes.
  async function visit(context, who, entry, path, size) {
    const page = await context.newPage();
    const where = `${who} ${size.label} ${path}`;
    page.on("console", (message) => {
      if (message.type() === "error") {
        // An expected error status is logged by Chromium as a failed resource load.
        if (entry.status && /status of (4|5)\d\d/.test(message.text())) return;
        problems.push(`${where}: console: ${message.text()}`);
      }
    });
    page.on("pageerror", (error) => problems.push(`${where}: ${error.message}`));
    const cdp = await context.newCDPSession(page);
    await cdp.send("Network.enable");
    await cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    let bytes = 0;
    cdp.on("Network.loadingFinished", (event) => { bytes += event.encodedDataLength; });
    const response = await page.goto(base + path, { waitUntil: "load" });
    await page.waitForTimeout(400); // the scripts' own requests (the chat's team names)
    const expected = entry.status || 200;
    check(response && response.status() === expected, `${where}: status ${response && response.status()}, expected ${expected}`);
    check(bytes < BUDGET, `${where}: ${(bytes / 1024).toFixed(1)} KB transferred (budget 100 KB)`);
    if (size.width < 500) {
      const wide = await page.evaluate(() => document.documentElement.scrollWidth);
      check(wide <= size.width, `${where}: the page is ${wide}px wide on a ${size.width}px screen`);
    }
    const axe = await new AxeBuilder({ page }).analyze();
    const bad = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    check(bad.length === 0, `${where}: axe: ${bad.map((v) => `${v.id} (${v.nodes.length}: ${v.nodes[0].target})`).join("; ")}`);
    if (shots && entry.screenshot !== false && who === entry.as[entry.as.length - 1]) {
      await page.screenshot({ path: `${shots}/page-${entry.name}-${size.label}.png` });
    }
    await page.close();
    return bytes;
  }

  try {
    const ids = await demoIds();
    const states = { guest: undefined, fan: await fanState() };
    for (const size of WIDTHS) {
      const contexts = {};
      for (const who of Object.keys(states)) {
        contexts[who] = await browser.newContext({
          viewport: { width: size.width, height: size.height },
          storageState: states[who],
          locale: "ko-KR",
        });
      }
      for (const entry of PAGES) {
        const path = typeof entry.path === "function" ? await entry.path(ids) : entry.path;
        for (const who of entry.as) {
          const bytes = await visit(contexts[who], who, entry, path, size);
          weights.push([entry.name, who, size.label, bytes]);
        }
      }
      for (const context of Object.values(contexts)) await context.close();
    }
  } catch (error) {
    problems.push(`failed: ${error.stack || error.message}`);
  } finally {
    await browser.close();
  }

  // The weights, heaviest first, desktop (the phone's are the same bytes).
  const table = weights.filter(([, , size]) => size === "desktop").sort((a, b) => b[3] - a[3]);
  for (const [name, who, , bytes] of table) {
    console.log(`  ${(bytes / 1024).toFixed(1).padStart(6)} KB  ${name} (${who})`);
  }
  if (problems.length) {
    console.error(`pages check: ${problems.length} problem(s)`);
    for (const problem of problems) console.error(`  - ${problem}`);
    process.exit(1);
  }
  console.log(`pages check: ${checks} checks passed on ${weights.length} page visits, every page under 100 KB`);
}

main().catch((error) => {
  console.error(`pages check: ${error.stack || error}`);
  process.exit(1);
});
