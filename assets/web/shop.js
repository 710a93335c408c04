// Ordering pages (src/web/shop.rs). Both work without this script; it adds:
// - on a store page, the cart's running total as quantities change;
// - on an order page, live status: it opens the API's event stream of the order (with a
//   short-lived ticket, so no login token goes in a URL) and, on each event, fetches the page
//   again and swaps its status region, so the words come from the server in the page's language.
(function () {
  "use strict";
  const total = document.getElementById("cart-total");
  if (total) {
    const inputs = Array.prototype.slice.call(document.querySelectorAll("input.qty[data-price]"));
    const update = function () {
      let sum = 0;
      inputs.forEach(function (input) {
        const n = parseInt(input.value, 10);
        if (n > 0) sum += n * parseInt(input.dataset.price, 10);
      });
      total.textContent = sum > 0 ? total.dataset.label + ": " + sum.toLocaleString("ko-KR") + "원" : "";
    };
    inputs.forEach(function (input) { input.addEventListener("input", update); });
    update();
  }

  const region = document.getElementById("order-live");
  if (!region || !region.dataset.live || !window.EventSource) return;
  const id = region.dataset.order;
  let lastId = 0;
  let source = null;
  // Waits before reopening a dropped stream: 2 s, doubling to a minute, reset by an event.
  let wait = 2000;

  function refresh() {
    return fetch(location.pathname, { credentials: "same-origin", cache: "no-store" })
      .then(function (response) { return response.text(); })
      .then(function (html) {
        const doc = new DOMParser().parseFromString(html, "text/html");
        const fresh = doc.getElementById("order-live");
        if (!fresh) return;
        region.innerHTML = fresh.innerHTML;
        region.dataset.status = fresh.dataset.status;
        if (!fresh.dataset.live) {
          delete region.dataset.live;
          if (source) source.close();
        }
      });
  }

  function open() {
    window.ballpark.apiToken()
      .then(function (token) {
        return fetch("/api/orders/" + encodeURIComponent(id) + "/events/ticket", {
          method: "POST",
          headers: { Authorization: "Token " + token },
        });
      })
      .then(function (response) {
        if (!response.ok) throw new Error("ticket " + response.status);
        return response.json();
      })
      .then(function (ticket) {
        source = new EventSource(ticket.url + (lastId ? "&after=" + lastId : ""));
        source.addEventListener("order", function (event) {
          lastId = parseInt(event.lastEventId, 10) || lastId;
          wait = 2000;
          refresh();
        });
        // The ticket is single-use in time: when the stream drops, ask for a new one.
        source.onerror = function () {
          source.close();
          refresh().then(function () {
            if (region.dataset.live) setTimeout(open, wait);
            wait = Math.min(wait * 2, 60000);
          });
        };
      })
      .catch(function () {
        setTimeout(open, wait);
        wait = Math.min(wait * 2, 60000);
      });
  }
  open();
})();
