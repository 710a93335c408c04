// What the issue asks of the web UI that the other checks do not cover, in a real browser
// (Chromium, driven by playwright-core), on a phone (390 px):
// - the chat room loads older history when its list is scrolled to the top (70 messages
//   seeded through the API, more than the 50 the room opens with), keeping them in order;
// - team badges in the room follow the page's language (English page, English names);
// - an unknown page is a page in the visitor's language, not JSON.
// Run by scripts/browser, which starts the server (demo data) and passes BASE_URL.
"use strict";
const { run, base } = require("./lib/harness.cjs");

const ROOM = "hanwha";
const SEEDED = 70;

async function api(path, body, token) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Token ${token}`;
  const response = await fetch(base + path, { method: "POST", headers, body: JSON.stringify(body) });
  const text = await response.text();
  if (!response.ok) throw new Error(`POST ${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}

// 14 fans of LG, 5 messages each (the room lets a fan send a burst of 5), numbered in order.
async function seed(stamp) {
  let n = 0;
  for (let fan = 0; n < SEEDED; fan += 1) {
    const name = `hist_${stamp}_${fan}`;
    const { user } = await api("/api/users", {
      user: { username: name, email: `${name}@example.com`, password: "password123" },
    });
    await fetch(`${base}/api/user`, {
      method: "PUT",
      headers: { "content-type": "application/json", authorization: `Token ${user.token}` },
      body: JSON.stringify({ user: { team: "lg" } }),
    });
    for (let i = 0; i < 5 && n < SEEDED; i += 1, n += 1) {
      await api(`/api/teams/${ROOM}/chat/messages`, { message: { body: `history ${stamp} #${n}` } }, user.token);
    }
  }
}

run("polish check", async (h, browser) => {
  const stamp = Date.now().toString(36);
  await seed(stamp);
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: "en-US" });
  const page = await phone.newPage();
  h.watch(page, "page", { ignore: /status of 404/ });

  // Older history on scroll.
  await page.goto(`${base}/teams/${ROOM}`);
  await page.locator("#status").filter({ hasText: /^(Live|실시간)$/ }).waitFor({ timeout: 10000 });
  const mine = page.locator("#messages li", { hasText: `history ${stamp}` });
  const first = await mine.count();
  h.check(first === 50, `the room opens with the newest 50 messages (saw ${first})`);
  await page.$eval("#messages", (list) => { list.scrollTop = 0; list.dispatchEvent(new Event("scroll")); });
  await page.waitForFunction(
    (s) => [...document.querySelectorAll("#messages li")].filter((li) => li.textContent.includes(`history ${s}`)).length >= 70,
    stamp, { timeout: 10000 },
  ).catch(() => {});
  const all = await mine.allInnerTexts();
  h.check(all.length === SEEDED, `scrolling to the top loads the older ones (saw ${all.length} of ${SEEDED})`);
  const numbers = all.map((t) => Number((t.match(/#(\d+)/) || [])[1]));
  h.check(numbers.every((n, i) => i === 0 || n > numbers[i - 1]), `older messages come in order: ${numbers.slice(0, 5)}`);
  h.check(numbers[0] === 0, `the oldest message is the first one sent (saw #${numbers[0]})`);

  // Badges in the page's language: an English page names LG's fans' team in English.
  const badge = mine.first().locator(".badge");
  await page.waitForFunction(() => {
    const b = document.querySelector("#messages .badge");
    return b && b.title;
  }, null, { timeout: 5000 }).catch(() => {});
  h.check((await badge.innerText()) === "LG", `the badge shows the team's short name (${await badge.innerText()})`);
  h.check(/Twins/.test((await badge.getAttribute("title")) || ""), `an English page names the team in English: ${await badge.getAttribute("title")}`);
  h.check(/^\/teams\/lg$/.test((await badge.getAttribute("href")) || ""), "the badge links to the team's page");

  // An unknown page: HTML in English, not the API's JSON.
  const missing = await page.goto(`${base}/no/such/page`);
  h.check(missing.status() === 404, `an unknown page is a 404 (${missing.status()})`);
  h.check((missing.headers()["content-type"] || "").startsWith("text/html"), "an unknown page is HTML");
  h.check((await page.getAttribute("html", "lang")) === "en", "the error page is in the visitor's language");
  h.check(await page.locator("main a[href='/']").isVisible(), "the error page links home");
}, (h) => `${h.checks} checks passed (older chat history on scroll, badges' language, error pages)`);
