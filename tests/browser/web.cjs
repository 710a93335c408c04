// The web UI in a real browser (Chromium, driven by playwright-core): pages render without
// console errors or Content-Security-Policy violations, and the chat page's script works end
// to end: a guest sees a message that a signed-in fan sends from another tab, live.
// Run by scripts/browser, which starts the server (demo data) and passes BASE_URL.
// SCREENSHOTS=<dir> also saves screenshots of the main pages there.
"use strict";
// CommonJS, so that NODE_PATH (tools/node/node_modules) finds playwright-core.
const { chromium } = require("playwright-core");

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base) throw new Error("BASE_URL is not set");

async function main() {
  const problems = [];
  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  let checks = 0;

  async function open(context, path) {
    const page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(`${path}: console: ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`${path}: ${error.message}`));
    const response = await page.goto(base + path);
    if (!response || response.status() !== 200) {
      problems.push(`${path}: status ${response && response.status()}`);
    }
    return page;
  }

  function check(ok, what) {
    checks += 1;
    if (!ok) problems.push(what);
  }

  try {
    const guest = await browser.newContext({ viewport: { width: 1100, height: 800 } });
    const fan = await browser.newContext({ viewport: { width: 1100, height: 800 } });

    const home = await open(guest, "/");
    check((await home.locator("article.card").count()) >= 5, "/: the demo articles are listed");
    if (shots) await home.screenshot({ path: `${shots}/web-home.png` });

    const firstArticle = await home.locator("article.card h3 a").first().getAttribute("href");
    const article = await open(guest, firstArticle);
    check((await article.locator(".full .body").count()) === 1, "an article page has a body");

    const stores = await open(guest, "/stadiums/jamsil");
    const storeHref = await stores.locator("ul.list a").first().getAttribute("href");
    const store = await open(guest, storeHref);
    check((await store.locator("table.menu tbody tr").count()) >= 1, "a store page has a menu");
    if (shots) await store.screenshot({ path: `${shots}/web-store.png` });

    // The chat: a guest watches the Doosan room; a fan logs in (the session signs the room's
    // socket in, no second sign-in) and posts.
    const watcher = await open(guest, "/teams/doosan");
    await watcher.locator("#status").filter({ hasText: /^(Live|실시간)$/ }).waitFor({ timeout: 10000 });
    const login = await open(fan, "/login?next=/teams/doosan");
    await login.fill("input[name=email]", "jamsil_bear@demo.ballpark.invalid");
    await login.fill("input[name=password]", "demo-password");
    await Promise.all([login.waitForURL("**/teams/doosan"), login.click("main form button")]);
    const poster = login;
    await poster.locator("#send").waitFor({ state: "visible", timeout: 10000 });
    const text = `허슬두 <b>${Date.now()}</b>`;
    await poster.fill("#send input[name=body]", text);
    await poster.click("#send button");
    const seen = watcher.locator("#messages li", { hasText: text });
    await seen.waitFor({ timeout: 10000 });
    check((await seen.locator(".who").innerText()) === "jamsil_bear", "the message shows its author");
    // Shown as text: the <b> the fan typed is not an element.
    check((await watcher.locator("#messages b").count()) === 0, "a message's markup stays text");
    if (shots) await watcher.screenshot({ path: `${shots}/web-chat.png` });
  } catch (error) {
    problems.push(`failed: ${error.message}`);
  } finally {
    await browser.close();
  }

  if (problems.length) {
    console.error(`browser check: ${problems.length} problem(s)`);
    for (const problem of problems) console.error(`  - ${problem}`);
    process.exit(1);
  }
  console.log(`browser check: ${checks} checks passed, no console errors, live chat between two tabs works`);
}

main().catch((error) => {
  console.error(`browser check: ${error.stack || error}`);
  process.exit(1);
});
