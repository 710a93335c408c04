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
// demo data's ids (`ids` below) that returns one; `as` lists who opens it ("guest"; "fan":
// the demo's jamsil_bear; "owner": jamsil_stand, who runs stores at Jamsil; "admin":
// demo_admin); `status` defaults to 200; `screenshot: false` leaves it out of the README's
// screenshots (taken as the last in `as`). The order page is a fresh order of the fan's
// (placed through the JSON API, not paid); the manage page is the first store on /owner.
"use strict";
const { run, base, shots, BUDGET, DEMO_PASSWORD, demoEmail } = require("./lib/harness.cjs");

const BOTH = ["guest", "fan"];
// Who opens pages: the demo's usernames (guest: nobody).
const USERS = { fan: "jamsil_bear", owner: "jamsil_stand", admin: "demo_admin" };

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
  { name: "order", path: (ids) => `/orders/${ids.order}`, as: ["fan"] },
  { name: "owner", path: "/owner", as: ["owner"], screenshot: false },
  { name: "manage", path: (ids) => `/stores/${ids.manage}/manage`, as: ["owner"] },
  { name: "admin", path: "/admin", as: ["admin"] },
  { name: "moderation", path: "/admin/moderation", as: ["admin"], screenshot: false },
  { name: "reviews-tag", path: "/reviews?tag=%EC%B9%98%EB%A7%A5", as: BOTH, screenshot: false },
  { name: "error", path: "/no-such-page", as: BOTH, status: 404 },
  { name: "bad-query", path: "/?page=abc", as: ["guest"], status: 400, screenshot: false },
];

const WIDTHS = [
  { label: "desktop", width: 1280, height: 900 },
  { label: "phone", width: 390, height: 844 },
];

async function json(path, init) {
  const response = await fetch(base + path, init);
  const text = await response.text();
  if (!response.ok) throw new Error(`${(init && init.method) || "GET"} ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

// Ids the demo data decides: an article, one of its tags, a store at Jamsil, the first store
// on the owner's /owner page, and a new order of the fan's at the Jamsil store (through the
// JSON API: the fan's token, an item in stock, an Idempotency-Key).
async function demoIds(browser, states) {
  const articles = await json("/api/articles?limit=20");
  const withTag = articles.articles.find((a) => a.tagList.length) || articles.articles[0];
  const stadium = await (await fetch(`${base}/stadiums/jamsil`)).text();
  const store = (stadium.match(/href="\/stores\/(\d+)"/) || [])[1];

  const owner = await browser.newContext({ storageState: states.owner });
  const mine = await (await owner.request.get(`${base}/owner`)).text();
  await owner.close();
  const manage = (mine.match(/href="\/stores\/(\d+)\/manage"/) || [])[1];
  if (!manage) throw new Error("/owner links to no store's manage page");

  const { user } = await json("/api/users/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: { email: demoEmail(USERS.fan), password: DEMO_PASSWORD } }),
  });
  const { store: menu } = await json(`/api/stores/${store}`);
  const item = menu.menu.find((i) => i.available && (i.stock === null || i.stock >= 1));
  if (!item) throw new Error(`store ${store} has nothing in stock`);
  const { order } = await json("/api/orders", {
    method: "POST",
    headers: {
      "content-type": "application/json",
      authorization: `Token ${user.token}`,
      "idempotency-key": `pages-check-${Date.now()}`,
    },
    body: JSON.stringify({ order: { storeId: Number(store), items: [{ menuItemId: item.id, quantity: 1 }] } }),
  });
  return { article: articles.articles[0].slug, tag: (withTag.tagList[0] || "kbo"), store, manage, order: order.id };
}

run("pages check", async (h, browser) => {
  const weights = [];
  h.weights = weights;

  // Opens `path`, checks it, and returns its weight in bytes.
  async function visit(context, who, entry, path, size) {
    const page = await context.newPage();
    const where = `${who} ${size.label} ${path}`;
    // An expected error status is logged by Chromium as a failed resource load.
    h.watch(page, where, { ignore: entry.status ? /status of (4|5)\d\d/ : undefined });
    const meter = await h.transferred(context, page);
    const response = await page.goto(base + path, { waitUntil: "load" });
    await page.waitForTimeout(400); // the scripts' own requests (the chat's team names)
    const expected = entry.status || 200;
    h.check(response && response.status() === expected, `${where}: status ${response && response.status()}, expected ${expected}`);
    const bytes = meter.bytes;
    h.check(bytes < BUDGET, `${where}: ${(bytes / 1024).toFixed(1)} KB transferred (budget 100 KB)`);
    if (size.width < 500) await h.notWider(page, size.width, where);
    await h.axe(page, where);
    if (shots && entry.screenshot !== false && who === entry.as[entry.as.length - 1]) {
      await page.screenshot({ path: `${shots}/page-${entry.name}-${size.label}.png` });
    }
    await page.close();
    return bytes;
  }

  try {
    // Each user's session, signed in once through the form and shared by both widths.
    const states = { guest: undefined };
    for (const [who, username] of Object.entries(USERS)) states[who] = await h.sessionOf(username);
    const ids = await demoIds(browser, states);
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
  } finally {
    // The weights, heaviest first, desktop (the phone's are the same bytes).
    const table = weights.filter(([, , size]) => size === "desktop").sort((a, b) => b[3] - a[3]);
    for (const [name, who, , bytes] of table) {
      console.log(`  ${(bytes / 1024).toFixed(1).padStart(6)} KB  ${name} (${who})`);
    }
  }
}, (h) => `${h.checks} checks passed on ${h.weights.length} page visits, every page under 100 KB`);
