// Small helpers every page loads (no framework). Pages work without them; they add:
// - ballpark.apiToken(): an API token for the signed-in user, asked from POST /session/token
//   with the page's CSRF token and kept in memory only (never in the HTML or in storage);
// - confirmation before a form marked data-confirm is sent (deleting an article or comment).
(function () {
  "use strict";
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = meta ? meta.content : "";
  let token = null;

  async function apiToken() {
    if (token) return token;
    const response = await fetch("/session/token", {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRF-Token": csrf },
    });
    if (!response.ok) throw new Error("not signed in");
    token = (await response.json()).token;
    return token;
  }

  window.ballpark = { apiToken: apiToken, csrf: csrf };

  document.addEventListener("submit", function (event) {
    const form = event.target;
    const question = form.dataset ? form.dataset.confirm : null;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();

// Photo uploads (the editor and the settings page): the file goes to POST /api/uploads as the
// signed-in user, with a progress bar; then its URL goes into the article's text as Markdown
// (and the first one becomes the cover), or into the profile picture field.
(function () {
  "use strict";
  function upload(input) {
    const file = input.files && input.files[0];
    if (!file) return;
    const progress = document.getElementById(input.id + "-progress");
    const status = document.getElementById(input.id + "-status");
    function say(text) { if (status) status.textContent = text; }
    window.ballpark.apiToken().then(function (token) {
      const form = new FormData();
      form.append("file", file);
      const request = new XMLHttpRequest();
      request.open("POST", "/api/uploads");
      request.setRequestHeader("Authorization", "Token " + token);
      request.upload.onprogress = function (event) {
        if (!event.lengthComputable || !progress) return;
        progress.hidden = false;
        progress.value = Math.round((event.loaded / event.total) * 100);
        say(input.dataset.progress + " " + progress.value + "%");
      };
      request.onload = function () {
        if (request.status !== 202 && request.status !== 200) {
          say(input.dataset.failed + " (" + request.status + ")");
          return;
        }
        // Processing takes a moment; the original's URL stops working once it is done, so
        // the text gets the optimised picture's URL, when it exists.
        const id = JSON.parse(request.responseText).upload.id;
        say(input.dataset.progress + " 100%");
        waitReady(id, token, 0).then(function (uploaded) {
          const url = new URL(uploaded.url, location.href).pathname;
          if (input.dataset.uploadInto) {
            const body = document.getElementById(input.dataset.uploadInto);
            body.value += (body.value ? "\n\n" : "") + "![](" + url + ")";
            const cover = document.getElementById(input.dataset.cover);
            if (cover && !cover.value) cover.value = uploaded.id;
          }
          if (input.dataset.uploadUrlInto) {
            document.getElementById(input.dataset.uploadUrlInto).value = url;
          }
          say(input.dataset.done);
          input.value = "";
        }, function (why) { say(input.dataset.failed + (why ? ": " + why : "")); });
      };
      request.onerror = function () { say(input.dataset.failed); };
      request.send(form);
    }, function () { say(input.dataset.failed); });
  }
  // Polls GET /api/uploads/{id} until the upload is ready (about a minute at most).
  function waitReady(id, token, tries) {
    return fetch("/api/uploads/" + encodeURIComponent(id), {
      headers: { Authorization: "Token " + token },
    }).then(function (response) { return response.json(); }).then(function (body) {
      const uploaded = body.upload;
      if (uploaded.status === "ready") return uploaded;
      if (uploaded.status === "failed") throw uploaded.error || "";
      if (tries >= 120) throw "";
      return new Promise(function (resolve) { setTimeout(resolve, 500); })
        .then(function () { return waitReady(id, token, tries + 1); });
    });
  }

  document.addEventListener("change", function (event) {
    const input = event.target;
    if (input.type === "file" && (input.dataset.uploadInto || input.dataset.uploadUrlInto)) upload(input);
  });
})();
