// A store owner and a fan, live: the demo owner (jamsil_stand) watches their stand's manage
// page at 1280 px while a fan (jamsil_bear) orders from it at 390 px. The order appears on the
// owner's page without a reload, and its status changes in place when it is paid; the owner
// changes the item's stock through the menu form and the fan sees it on the store's page; a
// dropped stream comes back with a fresh ticket and still shows a later order. axe-core finds
// no serious or critical violation on /owner and /stores/{id}/manage at 1280 and 390 px, and
// the manage page with its scripts and stylesheets stays under 100 KB.
// Run by scripts/browser (BASE_URL set; demo data).
"use strict";
const { run, base } = require("./lib/harness.cjs");

run("owner browser check", async (h) => {
  h.step = "start";
  // The fan orders one unit of `item` through the API, as the signed-in fan's page would.
  async function order(fan, store, item, key) {
    return fan.evaluate(async ({ store, item, key }) => {
      const token = await window.ballpark.apiToken();
      const response = await fetch("/api/orders", {
        method: "POST",
        headers: { Authorization: "Token " + token, "Content-Type": "application/json", "Idempotency-Key": key },
        body: JSON.stringify({ order: { storeId: store, items: [{ menuItemId: item, quantity: 1 }] } }),
      });
      if (response.status !== 201) throw new Error("order: " + response.status + " " + (await response.text()));
      return (await response.json()).order.id;
    }, { store, item, key });
  }

  async function connected(owner) {
    await owner.waitForFunction(() => {
      const live = document.getElementById("live");
      return live && live.textContent === live.dataset.live;
    }, null, { timeout: 15000 });
  }

  // The owner's list of stores, then the first store's page.
  const owner = await h.signedIn("jamsil_stand", "/owner", { viewport: { width: 1280, height: 800 } });
  h.check((await owner.locator("header a[href='/owner']").count()) === 1, "the header links an owner to /owner");
  await h.axe(owner, "1280px /owner", { detail: true });
  const meter = h.sizes(owner, { key: "path" });
  await Promise.all([owner.waitForURL("**/manage"), owner.click("main .owner-stores a.button >> nth=0")]);
  const store = Number(new URL(owner.url()).pathname.split("/")[2]);
  await connected(owner);
  await h.axe(owner, "1280px manage page", { detail: true });
  const total = meter.total((path) => !path.startsWith("/api/"));
  h.check(meter.files() >= 5 && total < 100 * 1024,
    `manage page + scripts + stylesheets ${total} bytes over ${meter.files()} files`);
  console.log(`owner manage page: page, scripts and stylesheets ${total} bytes (${meter.files()} files)`);
  await owner.evaluate(() => { window.notReloaded = true; });

  h.step = "fan logs in";
  // The fan, on a phone, on the store's page; picks an item in stock.
  const fan = await h.signedIn("jamsil_bear", `/stores/${store}`, { viewport: { width: 390, height: 844 } });
  const item = await fan.evaluate(async (store) => {
    const body = await (await fetch(`/api/stores/${store}`)).json();
    return body.store.menu.find((i) => i.available && i.stock >= 5);
  }, store);
  h.check(!!item, "the demo owner's store has an item in stock");

  h.step = "first order";
  // An order appears live on the owner's page.
  const first = await order(fan, store, item.id, `owner-check-1-${Date.now()}`);
  const row = owner.locator(`tr[data-order="${first}"]`);
  await row.waitFor({ timeout: 15000 });
  h.check(await owner.evaluate(() => window.notReloaded === true), "the order arrived without a reload");
  h.check((await row.locator(".pickup").textContent()) === first.slice(-4).toUpperCase(), "the row shows the pickup number");
  h.check((await row.textContent()).includes(item.name), "the row lists the item");
  h.check((await owner.locator("#order-news").textContent()).includes(first.slice(-4).toUpperCase()),
    "the new order is announced with its pickup number");
  const placedLabel = await row.locator(".status").textContent();

  h.step = "payment";
  // Paying changes its status in place.
  await fan.evaluate(async (id) => {
    const token = await window.ballpark.apiToken();
    await fetch(`/api/orders/${id}/payment`, { method: "POST", headers: { Authorization: "Token " + token, "Content-Type": "application/json" }, body: "{}" });
  }, first);
  await owner.waitForFunction((id) => {
    const r = document.querySelector(`tr[data-order="${id}"]`);
    return r && r.dataset.status !== "placed";
  }, first, { timeout: 15000 });
  h.check((await row.locator(".status").textContent()) !== placedLabel, "the status changed in place");
  h.check(await owner.evaluate(() => window.notReloaded === true), "the status changed without a reload");

  h.step = "stock change";
  // The owner changes the stock; the fan sees it.
  const form = owner.locator(`li:has(#item-${item.id}) form.item-edit`);
  await form.locator("input[name=stock]").fill("3");
  await Promise.all([owner.waitForURL("**saved=1**"), form.locator("button").click()]);
  h.check((await owner.locator(".saved").count()) === 1, "the owner sees the change saved");
  await fan.reload();
  const fanRow = fan.locator("main tr", { hasText: item.name }).first();
  h.check(/(^|\D)3(\D|$)/.test(await fanRow.textContent()), `the fan sees the new stock (${await fanRow.textContent()})`);

  h.step = "reconnect";
  // A dropped stream comes back with a fresh ticket; an order placed meanwhile shows up.
  await connected(owner);
  await owner.evaluate(() => { window.notReloaded = true; window.ballparkOwner.drop(); });
  h.check(await owner.locator("#live.down").count() === 1, "the page says it is reconnecting");
  const second = await order(fan, store, item.id, `owner-check-2-${Date.now()}`);
  await owner.locator(`tr[data-order="${second}"]`).waitFor({ timeout: 40000 });
  await connected(owner);
  h.check(await owner.evaluate(() => window.notReloaded === true), "after a reconnect, without a reload");
  const third = await order(fan, store, item.id, `owner-check-3-${Date.now()}`);
  await owner.locator(`tr[data-order="${third}"]`).waitFor({ timeout: 15000 });

  h.step = "390 px";
  // The phone width: both owner pages again.
  await owner.setViewportSize({ width: 390, height: 844 });
  await h.axe(owner, "390px manage page", { detail: true });
  const overflow = await owner.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  h.check(overflow <= 1, `390px: the manage page does not scroll sideways (${overflow}px)`);
  await owner.goto(`${base}/owner`);
  await h.axe(owner, "390px /owner", { detail: true });
  await fan.context().close();
  await owner.context().close();
}, (h) => `${h.checks} checks passed, owner at 1280 px and fan at 390 px`);
