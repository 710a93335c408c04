// Ordering in a real browser (Chromium, driven by playwright-core), at 1280 px (English) and
// at 390 px (a phone, Korean): a fan signs up, fills the cart on a demo store's page (the
// script shows a running total), orders, pays, and watches the order page move to "ready"
// with a pickup number live, without a reload (the simulated vendor accepts and steps on by
// itself); then writes a review with stars and a hashtag and follows the hashtag's link.
// Every page: no console errors or CSP violations, nothing wider than the screen, no serious or
// critical axe-core violation, and page + scripts + stylesheet under 100 KB (decoded sizes,
// an upper bound of what is transferred).
// Run by scripts/browser, which starts the server (demo data) and passes BASE_URL.
"use strict";
const { chromium } = require("playwright-core");
const AxeBuilder = require("@axe-core/playwright").default || require("@axe-core/playwright");

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base) throw new Error("BASE_URL is not set");

async function main() {
  const problems = [];
  let checks = 0;
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  const stamp = Date.now().toString(36);

  function check(ok, what) {
    checks += 1;
    if (!ok) problems.push(what);
  }

  function watch(page, who) {
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`${who} ${page.url()}: console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`${who} ${page.url()}: ${error.message}`));
  }

  async function layout(page, who, width) {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= width, `${who} ${page.url()}: the page is ${wide}px wide on a ${width}px screen`);
    const small = await page.evaluate(() =>
      [...document.querySelectorAll("header a, header button, form button")]
        .filter((el) => el.offsetParent !== null)
        .map((el) => [el.textContent.trim(), el.getBoundingClientRect().height])
        .filter(([, h]) => h < 44));
    check(small.length === 0, `${who} ${page.url()}: tap targets under 44px: ${JSON.stringify(small)}`);
    const axe = await new AxeBuilder({ page }).analyze();
    const bad = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    check(bad.length === 0, `${who} ${page.url()}: axe: ${bad.map((v) => `${v.id} (${v.nodes.length}: ${v.nodes[0].target})`).join("; ")}`);
  }

  // The page's weight, loaded fresh (no cache) in the fan's context: the document, scripts and
  // stylesheet from this server.
  async function weigh(context, path, who) {
    const page = await context.newPage();
    const sizes = {};
    page.on("response", async (response) => {
      const type = response.request().resourceType();
      if (["document", "script", "stylesheet"].includes(type) && response.url().startsWith(base)) {
        try { sizes[response.url()] = (await response.body()).length; } catch (_) { /* redirect */ }
      }
    });
    await page.goto(base + path, { waitUntil: "load" });
    await page.waitForTimeout(300);
    await page.close();
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    check(total < 100 * 1024, `${who} ${path}: ${total} bytes over ${Object.keys(sizes).length} files`);
    console.log(`shop ${who} ${path.replace(/\/orders\/.*/, "/orders/{id}")}: ${total} bytes (${Object.keys(sizes).length} files)`);
  }

  async function register(page, name) {
    await page.goto(base + "/register");
    await page.fill("#username", name);
    await page.fill("#email", `${name}@example.com`);
    await page.fill("#password", "password123");
    await page.selectOption("#team", "doosan");
    await Promise.all([page.waitForNavigation(), page.click("form.stack button")]);
  }

  try {
    for (const [width, height, locale] of [[1280, 900, "en-US"], [390, 844, "ko-KR"]]) {
      const who = `${width}px`;
      const options = width === 390
        ? { viewport: { width, height }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale }
        : { viewport: { width, height }, locale };
      const context = await browser.newContext(options);
      const page = await context.newPage();
      watch(page, who);
      await register(page, `shopper_${width}_${stamp}`);
      check((await page.locator('header a[href="/orders"]').count()) === 1, `${who}: the header links to my orders`);

      // A demo store with a menu: the first store of Jamsil.
      await page.goto(base + "/stadiums/jamsil");
      const storePath = await page.locator("ul.list a").first().getAttribute("href");
      await page.goto(base + storePath);
      // An item with stock to spare (other checks on the same server change menus).
      const itemId = await page.evaluate(() => {
        const row = [...document.querySelectorAll("table.menu tbody tr")].find((tr) =>
          tr.querySelector("input.qty") && parseInt(tr.cells[2].textContent, 10) >= 10);
        return row ? row.querySelector("input.qty").id : null;
      });
      check(itemId !== null, `${who}: the store has an item in stock`);
      await page.locator(`#${itemId}`).fill("2");
      const total = await page.locator("#cart-total").innerText();
      check(/[0-9,]+원/.test(total), `${who}: the cart shows a running total (${JSON.stringify(total)})`);
      await layout(page, who, width);
      if (shots) await page.screenshot({ path: `${shots}/shop-store-${width}.png`, fullPage: true });

      // Order, then pay.
      await Promise.all([page.waitForURL("**/orders/**"), page.click("form.cart button[type=submit]")]);
      const orderPath = new URL(page.url()).pathname;
      check(/^\/orders\/[0-9a-f-]{36}$/.test(orderPath), `${who}: ordering shows the order page (${orderPath})`);
      check((await page.locator("#order-live").getAttribute("data-status")) === "placed", `${who}: the new order awaits payment`);
      await layout(page, who, width);
      await Promise.all([page.waitForNavigation(), page.click("#order-live form button")]);
      check(new URL(page.url()).pathname === orderPath, `${who}: paying comes back to the order page`);

      // Live: the simulated vendor accepts, prepares and makes it ready; the page follows
      // without a reload (a marker set on the window survives).
      await page.evaluate(() => { window.__sameDocument = true; });
      await page.locator('#order-live[data-status="ready"]').waitFor({ timeout: 30000 });
      check(await page.evaluate(() => window.__sameDocument === true), `${who}: the order page updated without a reload`);
      const pickup = await page.locator(".pickup-number").innerText().catch(() => "");
      check(pickup.trim().length > 0, `${who}: the ready order shows a pickup number`);
      if (shots) await page.screenshot({ path: `${shots}/shop-order-${width}.png`, fullPage: true });
      await weigh(context, orderPath, who);

      // My orders links to the order.
      await page.goto(base + "/orders");
      check((await page.locator(`a[href="${orderPath}"]`).count()) === 1, `${who}: my orders links to the order`);

      // A review with stars and a hashtag.
      const tag = `치맥_${width}_${stamp}`;
      await page.goto(base + storePath);
      await page.check('input[name=rating][value="4"]');
      await page.fill("#review-body", `줄이 짧아요 #${tag}`);
      await Promise.all([page.waitForNavigation(), page.click(".review-form button[type=submit]")]);
      const link = page.locator("a.hashtag", { hasText: `#${tag}` }).first();
      check((await link.count()) === 1, `${who}: the review's hashtag is a link`);
      check((await page.locator('.review .stars[role="img"][aria-label]').count()) >= 1, `${who}: stars have a text alternative`);
      await layout(page, who, width);
      await weigh(context, storePath, who);
      await Promise.all([page.waitForNavigation(), link.click()]);
      check(new URL(page.url()).pathname === "/reviews", `${who}: the hashtag leads to its reviews`);
      check((await page.locator(".review", { hasText: "줄이 짧아요" }).count()) >= 1, `${who}: the tag's page lists the review`);
      await layout(page, who, width);
      await weigh(context, new URL(page.url()).pathname + new URL(page.url()).search, who);
      await context.close();
    }
  } catch (error) {
    problems.push(`failed: ${error.message}`);
  } finally {
    await browser.close();
  }

  if (problems.length) {
    console.error(`shop check: ${problems.length} problem(s)`);
    for (const problem of problems) console.error(`  - ${problem}`);
    process.exit(1);
  }
  console.log(`shop check: ${checks} checks passed at 1280 and 390 px`);
}

main().catch((error) => {
  console.error(`shop check: ${error.stack || error}`);
  process.exit(1);
});
