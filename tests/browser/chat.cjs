// The chat room on a phone (390 px) and a desktop (1280 px), two fans in the room: both log in
// once (the session signs the socket in), see each other in the room's presence list with
// their team badges, see each other's messages live, long words wrap inside the room, links
// are anchors, a message refused by the rate limit stays in the input, the room starts near
// the top of a phone's screen, and the page with its script and stylesheet stays under 100 KB.
// Run by scripts/browser (BASE_URL set; demo data).
"use strict";
const { run } = require("./lib/harness.cjs");

run("chat browser check", async (h) => {
  // A fan's browser, logged in through the form and back on the room's page.
  async function fan(username, room, viewport) {
    const page = await h.signedIn(username, `/teams/${room}`, { viewport });
    await page.locator("#send").waitFor({ state: "visible", timeout: 10000 });
    return page;
  }

  async function say(page, text) {
    await page.fill("#send input[name=body]", text);
    await page.click("#send button");
  }

  // The poster changes between the two runs so that the 390 px run's rate-limit check does
  // not leave the 1280 px run's poster without a quota.
  const runs = [
    [390, 844, "lotte", "sajik_seagull", "jamsil_bear"],
    [1280, 800, "kia", "jamsil_bear", "sajik_seagull"],
  ];
  for (const [width, height, room, poster, reader] of runs) {
    const viewport = { width, height };
    const at = `${width}px`;
    // Transfer size of the page with its script and stylesheet, measured by the browser.
    const one = await fan(poster, room, viewport);
    const meter = h.sizes(one);
    await one.reload();
    await one.locator("#send").waitFor({ state: "visible", timeout: 10000 });
    const two = await fan(reader, room, viewport);

    // Presence: each sees both, with a team badge.
    for (const page of [one, two]) {
      await page.locator("#present li", { hasText: "jamsil_bear" }).waitFor({ timeout: 10000 });
      await page.locator("#present li", { hasText: "sajik_seagull" }).waitFor({ timeout: 10000 });
      h.check((await page.locator("#present li .badge").count()) === 2, `${at}: presence shows team badges`);
    }

    // A long word wraps inside the room; a link is an anchor; markup stays text.
    const long = "화이팅".repeat(60) + Date.now();
    await say(one, long);
    await two.locator("#messages li", { hasText: long }).waitFor({ timeout: 10000 });
    const overflow = await two.$eval("#messages", (list) => list.scrollWidth - list.clientWidth);
    h.check(overflow <= 1, `${at}: a long line wraps (overflow ${overflow}px)`);
    const link = `https://example.com/ticket/${Date.now()}`;
    await say(one, `표 여기 ${link}. <i>x</i>`);
    const anchor = two.locator(`#messages a[href="${link}"]`);
    await anchor.waitFor({ timeout: 10000 });
    h.check((await anchor.getAttribute("rel")).includes("noopener"), `${at}: links open safely`);
    h.check((await two.locator("#messages i").count()) === 0, `${at}: markup in a message stays text`);
    h.check(
      (await two.locator("#messages li", { hasText: link }).locator(".badge").count()) === 1,
      `${at}: a message shows its author's team badge`,
    );

    if (width === 390) {
      // The room near the top; the input on screen without scrolling.
      const list = await one.locator("#messages").boundingBox();
      const input = await one.locator("#send").boundingBox();
      h.check(list.y < height * 0.3, `390px: the room starts near the top (y=${list.y})`);
      h.check(input.y + input.height <= height, `390px: the input is on screen (bottom=${input.y + input.height})`);

      // Past the burst, a refused message stays in the input.
      let refused = null;
      for (let i = 0; i < 8 && !refused; i++) {
        const text = `빠르게 ${i} ${Date.now()}`;
        await say(one, text);
        await one.waitForFunction(
          () => document.querySelector("#send input").value === "" ||
            /s\.|초 뒤에/.test(document.getElementById("status").textContent),
          null, { timeout: 10000 });
        if (await one.inputValue("#send input[name=body]")) refused = text;
      }
      h.check(refused !== null, "390px: the rate limit refused a message");
      h.check(refused !== null && (await one.inputValue("#send input[name=body]")) === refused,
        "390px: the refused message is still in the input");
    }

    const total = meter.total();
    h.check(meter.files() >= 4 && total < 100 * 1024,
      `${at}: page + scripts + stylesheet ${total} bytes over ${meter.files()} files`);
    console.log(`chat ${at}: page, scripts and stylesheet ${total} bytes (${meter.files()} files)`);

    // Leaving: the other fan drops out of the list.
    await two.context().close();
    await one.locator("#present li", { hasText: reader }).waitFor({ state: "detached", timeout: 10000 });
    await one.context().close();
  }
}, (h) => `${h.checks} checks passed at 390 px and 1280 px, two fans`);
