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
