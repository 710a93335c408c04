// The admin pages in a real browser (Chromium, playwright-core), at 390 px and at 1280 px, as
// the demo admin: the queue dashboard with the demo's dead jobs (Retry at 390 px, Discard at
// 1280 px), and moderation: a fan's chat message deleted from /admin/moderation disappears
// live from the fan's open chat tab; a muted fan's message is refused until the admin
// unmutes them. Every admin page: no console errors or CSP violations, nothing wider than
// the screen, buttons at least 44 px high, no serious or critical axe-core violation, and the
// page with its script and stylesheet under 100 KB transferred.
// Run by scripts/browser (BASE_URL set; demo data). SCREENSHOTS=<dir> also saves the
// dashboard and the moderation page there (web-admin-<width>.png, web-moderation-<width>.png).
"use strict";
const { run, base, shots } = require("./lib/harness.cjs");

run("admin browser check", async (h) => {
  // The address a button's redirect comes back to: `path?notice=<word>` (any word for "*").
  function notice(path, word) {
    return (url) => url.pathname === path && (word === "*" ? url.searchParams.has("notice") : url.searchParams.get("notice") === word);
  }

  // A signed-in page in Korean; confirm() dialogs are accepted.
  function signedIn(username, next, viewport) {
    return h.signedIn(username, next, { viewport, locale: "ko-KR" }, { who: (page) => `${username} ${page.url()}`, dialogs: true });
  }

  // Layout, accessibility and weight of the page now open (reloaded to measure it).
  async function audit(page, width, at) {
    const meter = h.sizes(page);
    await page.reload();
    await page.waitForLoadState("networkidle");
    meter.stop();
    const path = new URL(page.url()).pathname;
    const total = meter.total();
    h.check(meter.files() >= 3 && total < 100 * 1024,
      `${at} ${path}: page + script + stylesheet ${total} bytes over ${meter.files()} files`);
    console.log(`admin ${at} ${path}: page, script and stylesheet ${total} bytes (${meter.files()} files)`);
    await h.layout(page, `${at} ${path}`, width);
  }

  const runs = [[390, 844, "retry"], [1280, 800, "discard"]];
  for (const [width, height, action] of runs) {
    const viewport = { width, height };
    const at = `${width}px`;
    const admin = await signedIn("demo_admin", "/admin", viewport);

    // The dashboard: the demo queue's lines, Korean first, the header link.
    h.check(await admin.locator('header a[href="/admin"]').count() === 1, `${at}: the header links to /admin`);
    h.check(await admin.locator("h1", { hasText: "작업 큐 현황" }).count() === 1, `${at}: the dashboard is in Korean`);
    h.check(await admin.locator('tr[data-queue="demo"]').count() >= 1, `${at}: the demo queue has a line`);
    await audit(admin, width, at);
    if (shots) await admin.screenshot({ path: `${shots}/web-admin-${width}.png`, fullPage: true });

    // A dead job: retried or discarded with its button, then gone from the list.
    const job = admin.locator(".dead-job").first();
    const id = await job.getAttribute("id");
    const button = action === "retry" ? "다시 실행" : "버리기";
    await Promise.all([admin.waitForURL(notice("/admin", "*")), job.locator("button", { hasText: button }).click()]);
    h.check(await admin.locator(`#${id}`).count() === 0, `${at}: ${action} removed ${id} from the dead jobs`);
    h.check(await admin.locator("p.notice[role=status]").count() === 1, `${at}: ${action} says what it did`);

    // Moderation: a fan in the Doosan room says something; the admin deletes it live.
    const fan = await signedIn("jamsil_bear", "/teams/doosan", viewport);
    await fan.locator("#send").waitFor({ state: "visible", timeout: 10000 });
    const text = `지워질 메시지 ${at} ${Date.now()}`;
    await fan.fill("#send input[name=body]", text);
    await fan.click("#send button");
    const line = fan.locator("#messages li", { hasText: text });
    await line.waitFor({ timeout: 10000 });
    await admin.goto(`${base}/admin/moderation`);
    await audit(admin, width, at);
    const item = admin.locator(".chat-moderation li", { hasText: text });
    await Promise.all([admin.waitForURL(notice("/admin/moderation", "deleted")), item.locator("button").click()]);
    await line.waitFor({ state: "detached", timeout: 10000 });
    if (shots) await admin.screenshot({ path: `${shots}/web-moderation-${width}.png`, fullPage: true });
    h.check(await line.count() === 0, `${at}: the deleted message left the fan's open chat`);

    // Mute: the fan's next message is refused and stays in the input; unmute lifts it.
    await admin.fill("#mute-username", "jamsil_bear");
    await admin.fill("#mute-minutes", "5");
    await Promise.all([admin.waitForURL(notice("/admin/moderation", "muted")), admin.click("form[action='/admin/moderation/mute'] button")]);
    const muted = `조용히 ${at} ${Date.now()}`;
    await fan.fill("#send input[name=body]", muted);
    await fan.click("#send button");
    await fan.waitForFunction(() => /muted/.test(document.getElementById("status").textContent), null, { timeout: 10000 });
    h.check(await fan.inputValue("#send input[name=body]") === muted, `${at}: a muted fan's message stays in the input`);
    h.check(await fan.locator("#messages li", { hasText: muted }).count() === 0, `${at}: a muted fan's message is not shown`);
    const unmute = admin.locator(".mutes li", { hasText: "jamsil_bear" }).locator("button");
    await Promise.all([admin.waitForURL(notice("/admin/moderation", "unmuted")), unmute.click()]);
    h.check(await admin.locator(".mutes li", { hasText: "jamsil_bear" }).count() === 0, `${at}: unmuted`);
    await fan.click("#send button");
    await fan.locator("#messages li", { hasText: muted }).waitFor({ timeout: 10000 });

    await fan.context().close();
    await admin.context().close();
  }

  // A fan gets the 403 page.
  const fan = await signedIn("sajik_seagull", "/", { width: 390, height: 844 });
  // (Through the context's request API: a 403 navigation would log a console error.)
  const refused = await fan.context().request.get(`${base}/admin`, { maxRedirects: 0 });
  h.check(refused.status() === 403, `a fan gets ${refused.status()} from /admin`);
  await fan.context().close();
}, (h) => `${h.checks} checks passed at 390 px and 1280 px`);
