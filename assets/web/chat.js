// The team page's live room. It opens the room's WebSocket and, for a signed-in visitor,
// signs the socket in with an API token the session hands to this page's script
// (ballpark.apiToken() in app.js: kept in memory, never in the HTML, the URL or storage), so
// no tab asks for a password. It shows who is in the room, loads older messages when the list
// is scrolled to its top, keeps a refused (rate-limited) message in the input, and adds every
// message as text nodes and anchors, never as HTML.
(function () {
  "use strict";
  const room = document.getElementById("chat");
  if (!room) return;
  const team = room.dataset.team;
  const signedIn = room.dataset.signedIn === "yes";
  const text = room.dataset; // localised strings: data-t-*
  const list = document.getElementById("messages");
  const status = document.getElementById("status");
  const send = document.getElementById("send");
  const present = document.getElementById("present");
  const presentCount = document.getElementById("present-count");
  const title = room.querySelector(".team-title");
  if (title && /^#[0-9a-fA-F]{3,8}$/.test(title.dataset.color || "")) {
    title.style.borderLeftColor = title.dataset.color;
  }
  const PAGE = 50;
  let socket = null;
  let retry = 1000;
  let me = null;
  let pending = null; // the body last sent, cleared from the input once it comes back
  let oldest = null; // the lowest message id shown, to page back from
  let noOlder = false;
  let loadingOlder = false;
  let teamNames = {};
  const shown = new Set();

  // Team names in the page's language (the server's badges use the same words).
  const english = document.documentElement.lang === "en";
  fetch("/api/teams").then(function (r) { return r.ok ? r.json() : { teams: [] }; })
    .then(function (body) {
      body.teams.forEach(function (t) {
        teamNames[t.key] = (english ? t.name_en || t.nameEn : t.name_ko || t.nameKo) || t.key;
      });
      room.querySelectorAll(".badge[data-team]").forEach(nameBadge);
    }).catch(function () {});

  function nameBadge(a) {
    const name = teamNames[a.dataset.team];
    if (!name) return;
    a.textContent = name.split(/\s+/)[0];
    a.title = name;
  }

  // The team's badge next to a name, as the server draws it (templates): the team's short
  // name as text, its colour from the stylesheet (.team-<key>), a link to the team's page.
  function badge(key) {
    const a = document.createElement("a");
    const safe = key.replace(/[^a-z0-9_-]/g, "");
    a.className = "badge mini team-" + safe;
    a.href = "/teams/" + safe;
    a.dataset.team = safe;
    a.textContent = safe.toUpperCase();
    nameBadge(a);
    return a;
  }

  function who(author) {
    const span = document.createElement("span");
    span.className = "who";
    span.textContent = author.username;
    const parts = [span];
    if (author.team) parts.push(" ", badge(author.team));
    return parts;
  }

  // Plain text with http(s) links made clickable: text nodes and anchors only.
  const LINK = /https?:\/\/[^\s<>"']+/g;
  function linkify(body) {
    const nodes = [];
    let at = 0;
    for (const match of body.matchAll(LINK)) {
      let url = match[0].replace(/[.,!?)\]]+$/, "");
      if (match.index > at) nodes.push(document.createTextNode(body.slice(at, match.index)));
      const a = document.createElement("a");
      a.href = url;
      a.rel = "nofollow noopener ugc";
      a.target = "_blank";
      a.textContent = url;
      nodes.push(a);
      at = match.index + url.length;
    }
    if (at < body.length) nodes.push(document.createTextNode(body.slice(at)));
    return nodes;
  }

  function item(message) {
    const li = document.createElement("li");
    li.dataset.id = message.id;
    const body = document.createElement("span");
    body.className = "text";
    body.append.apply(body, linkify(message.body));
    const time = document.createElement("time");
    time.dateTime = message.createdAt;
    time.textContent = new Date(message.createdAt).toLocaleTimeString();
    li.append.apply(li, who(message.author).concat([" ", body, " ", time]));
    return li;
  }

  function add(message) {
    if (shown.has(message.id)) return;
    shown.add(message.id);
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.append(item(message));
    if (oldest === null || message.id < oldest) oldest = message.id;
    if (atBottom || (me && message.author.username === me)) list.scrollTop = list.scrollHeight;
    if (pending !== null && me && message.author.username === me && message.body === pending) {
      send.elements.body.value = "";
      pending = null;
    }
  }

  // Older messages above the oldest shown, keeping the visible ones where they are.
  async function loadOlder() {
    if (loadingOlder || noOlder || oldest === null) return;
    loadingOlder = true;
    try {
      const url = "/api/teams/" + encodeURIComponent(team) + "/chat/messages?limit=" + PAGE +
        "&before=" + oldest;
      const response = await fetch(url);
      if (!response.ok) return;
      const messages = (await response.json()).messages; // newest first
      if (messages.length < PAGE) noOlder = true;
      const before = list.scrollHeight;
      messages.forEach(function (message) {
        if (shown.has(message.id)) return;
        shown.add(message.id);
        list.prepend(item(message));
        if (message.id < oldest) oldest = message.id;
      });
      list.scrollTop += list.scrollHeight - before;
    } finally {
      loadingOlder = false;
    }
  }
  list.addEventListener("scroll", function () { if (list.scrollTop < 40) loadOlder(); });

  function showPresence(users) {
    present.replaceChildren.apply(present, users.map(function (user) {
      const li = document.createElement("li");
      li.append.apply(li, who(user));
      return li;
    }));
    presentCount.textContent = String(users.length);
  }

  async function signIn() {
    try {
      const token = await window.ballpark.apiToken();
      socket.send(JSON.stringify({ type: "auth", token: token }));
    } catch (err) {
      status.textContent = text.tSignedOut;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/api/teams/" + encodeURIComponent(team) + "/chat");
    socket.onopen = function () {
      retry = 1000;
      status.textContent = text.tLive;
      if (signedIn) signIn();
    };
    socket.onmessage = function (event) {
      const frame = JSON.parse(event.data);
      if (frame.type === "hello") {
        list.replaceChildren();
        shown.clear();
        oldest = null;
        noOlder = frame.messages.length < PAGE;
        frame.messages.forEach(add);
        list.scrollTop = list.scrollHeight;
      } else if (frame.type === "message") {
        add(frame.message);
      } else if (frame.type === "deleted") {
        // An admin removed it; its id stays in `shown`, so a late copy is not added back.
        const gone = list.querySelector('li[data-id="' + Number(frame.id) + '"]');
        if (gone) gone.remove();
      } else if (frame.type === "presence") {
        showPresence(frame.users);
      } else if (frame.type === "authenticated") {
        me = frame.username;
        status.textContent = text.tLive;
        send.classList.remove("hidden");
      } else if (frame.type === "error") {
        // The input keeps what was typed: nothing is lost to a refusal.
        pending = null;
        if (frame.code === "rate_limited") {
          const seconds = Math.ceil((frame.retryAfterMs || 1000) / 1000);
          status.textContent = text.tSlowDown.replace("%{n}", String(seconds));
        } else {
          status.textContent = frame.message;
        }
      }
    };
    socket.onclose = function () {
      status.textContent = text.tReconnecting;
      send.classList.add("hidden");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  send.addEventListener("submit", function (event) {
    event.preventDefault();
    const input = send.elements.body;
    const body = input.value.trim();
    if (!body || !socket || socket.readyState !== WebSocket.OPEN) return;
    pending = body;
    socket.send(JSON.stringify({ type: "send", body: input.value }));
  });

  connect();
})();
