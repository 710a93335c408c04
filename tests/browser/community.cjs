// The community in a real browser (Chromium, driven by playwright-core), at 1280 px and at
// 390 px (a phone): sign up, log out and in, write an article with a photo (uploaded by the
// editor's script with a progress bar), comment and reply, favourite, follow, with two users.
// Every page: no console errors or CSP violations, nothing wider than the screen, header
// links and buttons at least 44 px high, no serious or critical axe-core violation.
// Run by scripts/browser, which starts the server (demo data) and passes BASE_URL.
// SCREENSHOTS=<dir> also saves phone and desktop screenshots there.
"use strict";
const { run, base, shots } = require("./lib/harness.cjs");

// An 8x8 red PNG, so the test needs no image file.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEUlEQVR4nGM4IaeBFTEMLQkAiE5DgcTIHLQAAAAASUVORK5CYII=",
  "base64",
);

run("community browser check", async (h, browser) => {
  const stamp = Date.now().toString(36);

  // Layout checks for the page as it is now: nothing wider than the screen, tap targets (also
  // the tabs and the page links), and axe-core finds no serious or critical violation.
  async function layout(page, who, width) {
    await h.layout(page, `${who} ${page.url()}`, width, { targets: "header a, header button, .tabs a, .pages a, form button" });
  }

  async function register(page, name) {
    await h.register(page, name);
    h.check((await page.locator("header .me").innerText()) === name, `${name} is signed in after signing up`);
  }

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
  h.watch(writer, (p) => `writer ${p.url()}`);
  await register(writer, writerName);
  await Promise.all([writer.waitForNavigation(), writer.click("header form button")]);
  h.check(await writer.locator('header a[href^="/login"]').isVisible(), "logging out shows the login link");
  await writer.goto(base + "/login");
  await writer.fill("#email", `${writerName}@example.com`);
  await writer.fill("#password", "password123");
  await Promise.all([writer.waitForNavigation(), writer.click("form.stack button")]);
  h.check((await writer.locator("header .me").innerText()) === writerName, "logging in again works");

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
  h.check((await writer.inputValue("#body")).includes("/media/"), "the photo is put into the text");
  h.check((await writer.locator("#photo-progress").getAttribute("value")) === "100", "the progress bar ends full");
  if (shots) await writer.screenshot({ path: `${shots}/web-editor.png` });
  await Promise.all([writer.waitForNavigation(), writer.click("#editor > button")]);
  const articleUrl = writer.url();
  h.check(articleUrl.includes("/articles/"), `publishing shows the article (${articleUrl})`);
  h.check((await writer.locator(".full .body img").count()) === 1, "the photo is in the article");
  h.check((await writer.locator(".cover-full").count()) === 1, "the cover is shown");

  // The reader, on a phone: signs up, comments, favourites, follows.
  const reader = await phone.newPage();
  h.watch(reader, (p) => `reader ${p.url()}`);
  await register(reader, readerName);
  await layout(reader, "reader", 390);
  await reader.goto(articleUrl);
  await layout(reader, "reader", 390);
  await reader.fill("#new-comment", "맛있어 보여요");
  await Promise.all([reader.waitForNavigation(), reader.click("#comments > form button")]);
  h.check((await reader.locator(".comment .text", { hasText: "맛있어 보여요" }).count()) === 1, "the comment is shown");
  await Promise.all([reader.waitForNavigation(), reader.click(`form[action$="/favorite"] button`)]);
  h.check((await reader.locator(`form[action$="/favorite"] button`).innerText()).includes("좋아요 취소"), "favourited");
  await Promise.all([reader.waitForNavigation(), reader.click(`form[action$="/follow"] button`)]);
  h.check((await reader.locator("h1").innerText()) === writerName, "following shows the writer's profile");
  h.check((await reader.locator(`form[action$="/follow"] button`).innerText()).includes("팔로우 취소"), "followed");
  await layout(reader, "reader", 390);
  if (shots) await reader.screenshot({ path: `${shots}/web-profile-phone.png` });

  // The writer replies to the comment.
  await writer.goto(articleUrl);
  await writer.click(".comment details.reply summary");
  await writer.fill(".comment details.reply textarea", "감사합니다!");
  await Promise.all([writer.waitForNavigation(), writer.click(".comment details.reply button")]);
  h.check((await writer.locator(".reply-comment .text", { hasText: "감사합니다!" }).count()) === 1, "the reply sits under the comment");
  if (shots) await writer.screenshot({ path: `${shots}/web-article.png`, fullPage: true });

  // The boards and the home page at both widths.
  await reader.goto(base + "/?board=food&sort=comments");
  await layout(reader, "reader", 390);
  h.check((await reader.locator("article.card h3 a").first().innerText()).includes(stamp), "the commented article leads the food board");
  if (shots) await reader.screenshot({ path: `${shots}/web-home-phone.png` });
  await writer.goto(base + "/");
  await layout(writer, "writer", 1280);
  await reader.goto(base + "/teams/doosan");
  await layout(reader, "reader", 390);
  h.check((await reader.locator(".fans article.card").count()) >= 1, "the team page lists its fans' articles");
}, (h) => `${h.checks} checks passed at 1280 and 390 px, no console errors`);
