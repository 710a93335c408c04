// A store's incoming orders, live (GET /stores/{id}/manage). No framework; the page works
// without it (reload to see new orders). It follows the store's order stream
// (GET /api/stores/{id}/orders/events) with a short-lived ticket asked with the page's API
// token, starting after the newest history id the page was rendered with (data-after):
// - a change to an order on the page updates that row's status;
// - a new order (events carry no lines) fetches the list again as an HTML fragment
//   (GET /stores/{id}/manage/orders), as every reconnect does, in case something was missed;
// - a dropped stream is reopened with a fresh ticket, waiting 1 s, 2 s, 4 s … up to 30 s.
(function () {
  "use strict";
  const box = document.getElementById("orders");
  const live = document.getElementById("live");
  const news = document.getElementById("order-news");
  if (!box || !live || !window.ballpark || !window.EventSource) return;
  const store = box.dataset.store;
  const labels = JSON.parse(box.dataset.labels || "{}");
  let after = Number(box.dataset.after) || 0;
  let source = null;
  let delay = 1000;
  let timer = null;
  let opened = false;
  let pending = null;
  let again = false;

  function say(text, ok) {
    live.textContent = text;
    live.classList.toggle("down", !ok);
  }

  function flash(row) {
    row.classList.remove("changed");
    void row.offsetWidth; // restart the highlight
    row.classList.add("changed");
  }

  // Fetches the list again; rows that were not on the page are marked new. Asked again while
  // a fetch is under way (which may have read the list before this order was written), it
  // fetches once more after that one.
  function refresh() {
    if (pending) { again = true; return pending; }
    const before = new Set(Array.from(box.querySelectorAll("tr[data-order]"), (r) => r.dataset.order));
    pending = fetch("/stores/" + store + "/manage/orders", { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) throw new Error(String(response.status));
        return response.text();
      })
      .then(function (html) {
        box.innerHTML = html;
        const fresh = Array.from(box.querySelectorAll("tr[data-order]")).filter((r) => !before.has(r.dataset.order));
        fresh.forEach(function (row) { row.classList.add("new"); flash(row); });
        if (fresh.length) {
          const numbers = fresh.map((r) => r.querySelector(".pickup").textContent).join(", ");
          if (news) news.textContent = news.dataset.new + ": " + numbers;
        }
      })
      .catch(function () { /* the next event or reconnect tries again */ })
      .finally(function () {
        pending = null;
        if (again) { again = false; refresh(); }
      });
    return pending;
  }

  function onOrder(event) {
    after = Math.max(after, Number(event.lastEventId) || 0);
    const change = JSON.parse(event.data);
    const row = box.querySelector('tr[data-order="' + CSS.escape(change.orderId) + '"]');
    if (!row) { refresh(); return; }
    row.dataset.status = change.status;
    row.querySelector(".status").textContent = labels[change.status] || change.status;
    flash(row);
  }

  function retry() {
    say(live.dataset.reconnecting, false);
    clearTimeout(timer);
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, 30000);
  }

  // Closes the stream and reconnects with backoff (also what a stream error does).
  function drop() {
    if (source) { source.close(); source = null; }
    retry();
  }

  function connect() {
    window.ballpark.apiToken().then(function (token) {
      return fetch("/api/stores/" + store + "/orders/events/ticket", {
        method: "POST",
        headers: { Authorization: "Token " + token },
      });
    }).then(function (response) {
      // A token that no longer works (expired, or signed out elsewhere): a fresh page load
      // gets a new one, or the login page.
      if (response.status === 401) { location.reload(); return; }
      if (!response.ok) throw new Error(String(response.status));
      return response.json().then(function (body) {
        source = new EventSource(body.url + "&after=" + after);
        source.addEventListener("order", onOrder);
        source.addEventListener("open", function () {
          delay = 1000;
          say(live.dataset.live, true);
          if (opened) refresh(); // back after a gap: show what happened meanwhile
          opened = true;
        });
        source.addEventListener("error", drop);
      });
    }).catch(retry);
  }

  // For tests and for a person debugging: drop the stream as a network failure would.
  window.ballparkOwner = { drop: drop };
  connect();
})();
