// The community in a real browser (Chromium, driven by playwright-core), at 1280 px and at
// 390 px (a phone): sign up, log out and in, write an article with a photo (uploaded by the
// editor's script with a progress bar), comment and reply, favourite, follow, with two users.
// Every page: no console errors or CSP violations, nothing wider than the screen, header
// links and buttons at least 44 px high, no serious or critical axe-core violation.
// Run by scripts/browser, which starts the server (demo data) and passes BASE_URL.
// SCREENSHOTS=<dir> also saves phone and desktop screenshots there.
"use strict";
const { chromium } = require("playwright-core");
const AxeBuilder = require("@axe-core/playwright").default || require("@axe-core/playwright");

const base = process.env.BASE_URL;
const shots = process.env.SCREENSHOTS;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!base) throw new Error("BASE_URL is not set");

// An 8x8 red PNG, so the test needs no image file.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGM4IaeBFTEMLQkAiE5DgcTIHLQAAAAASUVORK5CYII=",
  "base64",
);

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

  // Layout checks for the page as it is now.
  async function layout(page, who, width) {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= width, `${who} ${page.url()}: the page is ${wide}px wide on a ${width}px screen`);
    const small = await page.evaluate(() =>
      [...document.querySelectorAll("header a, header button, .tabs a, .pages a, form button")]
        .filter((el) => el.offsetParent !== null)
        .map((el) => [el.textContent.trim(), el.getBoundingClientRect().height])
        .filter(([, h]) => h < 44));
    check(small.length === 0, `${who} ${page.url()}: tap targets under 44px: ${JSON.stringify(small)}`);
    // Accessibility: axe-core finds no serious or critical violation.
    const axe = await new AxeBuilder({ page }).analyze();
    const bad = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    check(bad.length === 0, `${who} ${page.url()}: axe: ${bad.map((v) => `${v.id} (${v.nodes.length}: ${v.nodes[0].target})`).join("; ")}`);
  }

  async function register(page, name) {
    await page.goto(base + "/register");
    await page.fill("#username", name);
    await page.fill("#email", `${name}@example.com`);
    await page.fill("#password", "password123");
    await page.selectOption("#team", "doosan");
    await Promise.all([page.waitForNavigation(), page.click("form.stack button")]);
    check((await page.locator("header .me").innerText()) === name, `${name} is signed in after signing up`);
  }

  try {
    // The desktop browser asks for English, the phone for Korean: both languages are used.
    const desktop = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US" });
    const phone = await browser.newContext({
      viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2,
      locale: "ko-KR",
    });
    const writerName = `writer_${stamp}`;
    const readerName = `reader_${stamp}`;

    // The writer signs up on a desktop, logs out and back in.
    const writer = await desktop.newPage();
    watch(writer, "writer");
    await register(writer, writerName);
    await Promise.all([writer.waitForNavigation(), writer.click("header form button")]);
    check(await writer.locator('header a[href^="/login"]').isVisible(), "logging out shows the login link");
    await writer.goto(base + "/login");
    await writer.fill("#email", `${writerName}@example.com`);
    await writer.fill("#password", "password123");
    await Promise.all([writer.waitForNavigation(), writer.click("form.stack button")]);
    check((await writer.locator("header .me").innerText()) === writerName, "logging in again works");

    // An article with a photo: the script uploads it and puts it into the text and the cover.
    await writer.goto(base + "/editor");
    await layout(writer, "writer", 1280);
    await writer.selectOption("#category", "food");
    await writer.fill("#title", `잠실 치킨 ${stamp}`);
    await writer.fill("#description", "직관 먹거리 후기");
    await writer.fill("#body", "**바삭**했다.");
    await writer.fill("#tags", "치킨 잠실");
    await writer.setInputFiles("#photo", { name: "chicken.png", mimeType: "image/png", buffer: PNG });
    await writer.waitForFunction(() => document.getElementById("cover").value !== "", null, { timeout: 60000 });
    check((await writer.inputValue("#body")).includes("/media/"), "the photo is put into the text");
    check((await writer.locator("#photo-progress").getAttribute("value")) === "100", "the progress bar ends full");
    if (shots) await writer.screenshot({ path: `${shots}/web-editor.png` });
    await Promise.all([writer.waitForNavigation(), writer.click("#editor > button")]);
    const articleUrl = writer.url();
    check(articleUrl.includes("/articles/"), `publishing shows the article (${articleUrl})`);
    check((await writer.locator(".full .body img").count()) === 1, "the photo is in the article");
    check((await writer.locator(".cover-full").count()) === 1, "the cover is shown");

    // The reader, on a phone: signs up, comments, favourites, follows.
    const reader = await phone.newPage();
    watch(reader, "reader");
    await register(reader, readerName);
    await layout(reader, "reader", 390);
    await reader.goto(articleUrl);
    await layout(reader, "reader", 390);
    await reader.fill("#new-comment", "맛있어 보여요");
    await Promise.all([reader.waitForNavigation(), reader.click("#comments > form button")]);
    check((await reader.locator(".comment .text", { hasText: "맛있어 보여요" }).count()) === 1, "the comment is shown");
    await Promise.all([reader.waitForNavigation(), reader.click(`form[action$="/favorite"] button`)]);
    check((await reader.locator(`form[action$="/favorite"] button`).innerText()).includes("좋아요 취소"), "favourited");
    await Promise.all([reader.waitForNavigation(), reader.click(`form[action$="/follow"] button`)]);
    check((await reader.locator("h1").innerText()) === writerName, "following shows the writer's profile");
    check((await reader.locator(`form[action$="/follow"] button`).innerText()).includes("팔로우 취소"), "followed");
    await layout(reader, "reader", 390);
    if (shots) await reader.screenshot({ path: `${shots}/web-profile-phone.png` });

    // The writer replies to the comment.
    await writer.goto(articleUrl);
    await writer.click(".comment details.reply summary");
    await writer.fill(".comment details.reply textarea", "감사합니다!");
    await Promise.all([writer.waitForNavigation(), writer.click(".comment details.reply button")]);
    check((await writer.locator(".reply-comment .text", { hasText: "감사합니다!" }).count()) === 1, "the reply sits under the comment");
    if (shots) await writer.screenshot({ path: `${shots}/web-article.png`, fullPage: true });

    // The boards and the home page at both widths.
    await reader.goto(base + "/?board=food&sort=comments");
    await layout(reader, "reader", 390);
    check((await reader.locator("article.card h3 a").first().innerText()).includes(stamp), "the commented article leads the food board");
    if (shots) await reader.screenshot({ path: `${shots}/web-home-phone.png` });
    await writer.goto(base + "/");
    await layout(writer, "writer", 1280);
    if (shots) await writer.screenshot({ path: `${shots}/web-home.png` });
    await reader.goto(base + "/teams/doosan");
    await layout(reader, "reader", 390);
    check((await reader.locator(".fans article.card").count()) >= 1, "the team page lists its fans' articles");
  } catch (error) {
    problems.push(`failed: ${error.message}`);
  } finally {
    await browser.close();
  }

  if (problems.length) {
    console.error(`community browser check: ${problems.length} problem(s)`);
    for (const problem of problems) console.error(`  - ${problem}`);
    process.exit(1);
  }
  console.log(`community browser check: ${checks} checks passed at 1280 and 390 px, no console errors`);
}

main().catch((error) => {
  console.error(`community browser check: ${error.stack || error}`);
  process.exit(1);
});
