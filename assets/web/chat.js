// The team page's live room: opens the room's WebSocket, appends messages as they come,
// signs in through the JSON API and keeps the token in this tab's sessionStorage only.
// Messages are added as text nodes, never as HTML.
(function () {
  "use strict";
  const room = document.getElementById("chat");
  if (!room) return;
  const team = room.dataset.team;
  const list = document.getElementById("messages");
  const status = document.getElementById("status");
  const login = document.getElementById("login");
  const send = document.getElementById("send");
  const title = room.querySelector(".team-title");
  if (title && /^#[0-9a-fA-F]{3,8}$/.test(title.dataset.color || "")) {
    title.style.borderLeftColor = title.dataset.color;
  }
  let socket = null;
  let retry = 1000;
  const shown = new Set();

  function token() { return sessionStorage.getItem("ballpark.token"); }

  function add(message) {
    if (shown.has(message.id)) return;
    shown.add(message.id);
    const item = document.createElement("li");
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = message.author.username;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = " " + message.body + " ";
    const time = document.createElement("time");
    time.textContent = new Date(message.createdAt).toLocaleTimeString();
    item.append(who, text, time);
    list.append(item);
    list.scrollTop = list.scrollHeight;
  }

  function signedIn(name) {
    status.textContent = "Live · signed in as " + name;
    login.classList.add("hidden");
    send.classList.remove("hidden");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    socket = new WebSocket(scheme + "//" + location.host + "/api/teams/" + encodeURIComponent(team) + "/chat");
    socket.onopen = function () {
      retry = 1000;
      status.textContent = "Live";
      if (token()) socket.send(JSON.stringify({ type: "auth", token: token() }));
      else login.classList.remove("hidden");
    };
    socket.onmessage = function (event) {
      const frame = JSON.parse(event.data);
      if (frame.type === "hello") {
        list.replaceChildren();
        shown.clear();
        frame.messages.forEach(add);
      } else if (frame.type === "message") {
        add(frame.message);
      } else if (frame.type === "authenticated") {
        signedIn(frame.username);
      } else if (frame.type === "error") {
        if (frame.code === "unauthorized") {
          sessionStorage.removeItem("ballpark.token");
          login.classList.remove("hidden");
          send.classList.add("hidden");
        }
        status.textContent = frame.message;
      }
    };
    socket.onclose = function () {
      status.textContent = "Disconnected; reconnecting…";
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }

  login.addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = new FormData(login);
    const response = await fetch("/api/users/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: { email: form.get("email"), password: form.get("password") } }),
    });
    if (!response.ok) { status.textContent = "Sign-in failed"; return; }
    const body = await response.json();
    sessionStorage.setItem("ballpark.token", body.user.token);
    socket.send(JSON.stringify({ type: "auth", token: body.user.token }));
  });

  send.addEventListener("submit", function (event) {
    event.preventDefault();
    const input = send.elements.body;
    if (!input.value.trim()) return;
    socket.send(JSON.stringify({ type: "send", body: input.value }));
    input.value = "";
  });

  connect();
})();
