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
const { run, base, shots } = require("./lib/harness.cjs");

run("shop check", async (h, browser) => {
  const stamp = Date.now().toString(36);

  // The page's weight, loaded fresh (no cache) in the fan's context: the document, scripts and
  // stylesheet from this server.
  async function weigh(context, path, who) {
    const page = await context.newPage();
    const meter = h.sizes(page);
    await page.goto(base + path, { waitUntil: "load" });
    await page.waitForTimeout(300);
    await page.close();
    const total = meter.total();
    h.check(total < 100 * 1024, `${who} ${path}: ${total} bytes over ${meter.files()} files`);
    console.log(`shop ${who} ${path.replace(/\/orders\/.*/, "/orders/{id}")}: ${total} bytes (${meter.files()} files)`);
  }

  for (const [width, height, locale] of [[1280, 900, "en-US"], [390, 844, "ko-KR"]]) {
    const who = `${width}px`;
    const options = width === 390
      ? { viewport: { width, height }, isMobile: true, hasTouch: true, deviceScaleFactor: 2, locale }
      : { viewport: { width, height }, locale };
    const context = await browser.newContext(options);
    const page = await context.newPage();
    h.watch(page, (p) => `${who} ${p.url()}`);
    await h.register(page, `shopper_${width}_${stamp}`);
    h.check((await page.locator('header a[href="/orders"]').count()) === 1, `${who}: the header links to my orders`);

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
    h.check(itemId !== null, `${who}: the store has an item in stock`);
    await page.locator(`#${itemId}`).fill("2");
    const total = await page.locator("#cart-total").innerText();
    h.check(/[0-9,]+원/.test(total), `${who}: the cart shows a running total (${JSON.stringify(total)})`);
    await h.layout(page, `${who} ${page.url()}`, width);
    if (shots) await page.screenshot({ path: `${shots}/shop-store-${width}.png`, fullPage: true });

    // Order, then pay.
    await Promise.all([page.waitForURL("**/orders/**"), page.click("form.cart button[type=submit]")]);
    const orderPath = new URL(page.url()).pathname;
    h.check(/^\/orders\/[0-9a-f-]{36}$/.test(orderPath), `${who}: ordering shows the order page (${orderPath})`);
    h.check((await page.locator("#order-live").getAttribute("data-status")) === "placed", `${who}: the new order awaits payment`);
    await h.layout(page, `${who} ${page.url()}`, width);
    await Promise.all([page.waitForNavigation(), page.click("#order-live form button")]);
    h.check(new URL(page.url()).pathname === orderPath, `${who}: paying comes back to the order page`);

    // Live: the simulated vendor accepts, prepares and makes it ready; the page follows
    // without a reload (a marker set on the window survives).
    await page.evaluate(() => { window.__sameDocument = true; });
    await page.locator('#order-live[data-status="ready"]').waitFor({ timeout: 30000 });
    h.check(await page.evaluate(() => window.__sameDocument === true), `${who}: the order page updated without a reload`);
    const pickup = await page.locator(".pickup-number").innerText().catch(() => "");
    h.check(pickup.trim().length > 0, `${who}: the ready order shows a pickup number`);
    if (shots) await page.screenshot({ path: `${shots}/shop-order-${width}.png`, fullPage: true });
    await weigh(context, orderPath, who);

    // My orders links to the order.
    await page.goto(base + "/orders");
    h.check((await page.locator(`a[href="${orderPath}"]`).count()) === 1, `${who}: my orders links to the order`);

    // A review with stars and a hashtag.
    const tag = `치맥_${width}_${stamp}`;
    await page.goto(base + storePath);
    await page.check('input[name=rating][value="4"]');
    await page.fill("#review-body", `줄이 짧아요 #${tag}`);
    await Promise.all([page.waitForNavigation(), page.click(".review-form button[type=submit]")]);
    const link = page.locator("a.hashtag", { hasText: `#${tag}` }).first();
    h.check((await link.count()) === 1, `${who}: the review's hashtag is a link`);
    h.check((await page.locator('.review .stars[role="img"][aria-label]').count()) >= 1, `${who}: stars have a text alternative`);
    await h.layout(page, `${who} ${page.url()}`, width);
    await weigh(context, storePath, who);
    await Promise.all([page.waitForNavigation(), link.click()]);
    h.check(new URL(page.url()).pathname === "/reviews", `${who}: the hashtag leads to its reviews`);
    h.check((await page.locator(".review", { hasText: "줄이 짧아요" }).count()) >= 1, `${who}: the tag's page lists the review`);
    await h.layout(page, `${who} ${page.url()}`, width);
    await weigh(context, new URL(page.url()).pathname + new URL(page.url()).search, who);
    await context.close();
  }
}, (h) => `${h.checks} checks passed at 1280 and 390 px`);
