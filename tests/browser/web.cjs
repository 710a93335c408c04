// The web UI in a real browser (Chromium, driven by playwright-core): pages render without
// console errors or Content-Security-Policy violations, and the chat page's script works end
// to end: a guest sees a message that a signed-in fan sends from another tab, live.
// Run by scripts/browser, which starts the server (demo data) and passes BASE_URL.
// SCREENSHOTS=<dir> also saves the chat room there (web-chat.png; the home and store pages are
// in tests/browser/pages.cjs's page-*.png).
"use strict";
const { run, shots } = require("./lib/harness.cjs");

run("browser check", async (h, browser) => {
  const guest = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const fan = await browser.newContext({ viewport: { width: 1100, height: 800 } });

  const home = await h.open(guest, "/");
  h.check((await home.locator("article.card").count()) >= 5, "/: the demo articles are listed");

  const firstArticle = await home.locator("article.card h3 a").first().getAttribute("href");
  const article = await h.open(guest, firstArticle);
  h.check((await article.locator(".full .body").count()) === 1, "an article page has a body");

  const stores = await h.open(guest, "/stadiums/jamsil");
  const storeHref = await stores.locator("ul.list a").first().getAttribute("href");
  const store = await h.open(guest, storeHref);
  h.check((await store.locator("table.menu tbody tr").count()) >= 1, "a store page has a menu");

  // The chat: a guest watches the Doosan room; a fan logs in (the session signs the room's
  // socket in, no second sign-in) and posts.
  const watcher = await h.open(guest, "/teams/doosan");
  await watcher.locator("#status").filter({ hasText: /^(Live|실시간)$/ }).waitFor({ timeout: 10000 });
  const login = await h.open(fan, "/login?next=/teams/doosan");
  await h.submitLogin(login, "jamsil_bear@demo.ballpark.invalid", "demo-password", "/teams/doosan");
  const poster = login;
  await poster.locator("#send").waitFor({ state: "visible", timeout: 10000 });
  const text = `허슬두 <b>${Date.now()}</b>`;
  await poster.fill("#send input[name=body]", text);
  await poster.click("#send button");
  const seen = watcher.locator("#messages li", { hasText: text });
  await seen.waitFor({ timeout: 10000 });
  h.check((await seen.locator(".who").innerText()) === "jamsil_bear", "the message shows its author");
  // Shown as text: the <b> the fan typed is not an element.
  h.check((await watcher.locator("#messages b").count()) === 0, "a message's markup stays text");
  if (shots) await watcher.screenshot({ path: `${shots}/web-chat.png` });
}, (h) => `${h.checks} checks passed, no console errors, live chat between two tabs works`);
