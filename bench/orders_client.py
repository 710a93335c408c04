#!/usr/bin/env python3
"""The client side of bench/orders: seeding a store to order from, and the end-to-end run.

Standard library only, so it runs wherever python3 does. Everything goes through the HTTP
API (as bench/seed.py does), except one call to `ballpark user set-role`, because only an
admin may create a store and nobody can become admin over HTTP.

  seed  registers an admin and a fan, creates one store with ITEMS menu items of 100,000
        units each (the catalogue's cap per item), and prints
        {"token": <fan's JWT>, "storeId": N, "itemIds": [...], ...} on stdout.

  e2e   places N orders with C threads (one keep-alive connection each) and pays each right
        after placing it, then polls every order not yet finished until all are `picked_up`
        or TIMEOUT passes. Prints one JSON object with the figures. Exits 1 if a request
        fails or any order ends in another state (or not at all): that is a broken run.

Timing in e2e. The throughput is N / (last `picked_up` − first order's `createdAt`), both
read from the orders' own history (server clock, millisecond timestamps), so how often we
poll does not change it. Per order, "placed → picked_up" is the `at` of the history row
that made it `picked_up` minus its `createdAt`.

Usage: bench/orders_client.py seed --base-url URL --ballpark-bin BIN --database-url URL
       bench/orders_client.py e2e --base-url URL --token JWT --store-id N --item-ids 1,2,3
                                  [--orders 500] [--concurrency 32] [--timeout 120]
"""

import argparse
import http.client
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from datetime import datetime


class BenchError(Exception):
    pass


class Client:
    """One keep-alive HTTP connection (not shared between threads)."""

    def __init__(self, base_url, token=None):
        url = urllib.parse.urlsplit(base_url)
        self.host, self.port = url.hostname, url.port or 80
        self.token = token
        self.conn = None

    def call(self, method, path, body=None, headers=None, expect=(200, 201)):
        """Returns (status, decoded body); raises BenchError on a status not in expect."""
        data = None if body is None else json.dumps(body).encode()
        head = {"Accept": "application/json"}
        if data is not None:
            head["Content-Type"] = "application/json"
        if self.token:
            head["Authorization"] = "Token " + self.token
        head.update(headers or {})
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=data, headers=head)
                resp = self.conn.getresponse()
                status, raw = resp.status, resp.read()
                break
            except (http.client.HTTPException, OSError) as err:
                # A keep-alive connection the server closed while idle: reconnect once.
                # Only for the first attempt, and a POST that got no answer at all is safe
                # to resend here because every POST below carries an idempotency key.
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise BenchError(f"{method} {path}: {err}") from err
        if status not in expect:
            raise BenchError(f"{method} {path}: HTTP {status} (expected {expect}): "
                             f"{raw[:500].decode(errors='replace')}")
        try:
            return status, (json.loads(raw) if raw else None)
        except ValueError as err:
            raise BenchError(f"{method} {path}: HTTP {status}, body is not JSON: "
                             f"{raw[:200]!r}") from err


def field(doc, *keys, what):
    cur = doc
    for k in keys:
        if not isinstance(cur, dict) or k not in cur:
            raise BenchError(f"{what}: response has no {'.'.join(keys)}: "
                             f"{json.dumps(doc)[:300]}")
        cur = cur[k]
    return cur


def register(base, name):
    doc = Client(base).call("POST", "/api/users", {"user": {
        "username": name, "email": f"{name}@example.com", "password": "bench-password-1",
    }})[1]
    return field(doc, "user", "token", what=f"register {name}")


def seed(args):
    started = time.monotonic()
    run = f"{int(time.time())}{os.getpid() % 10000:04d}"
    admin_name, fan_name = f"benchadmin{run}", f"benchfan{run}"
    admin_token = register(args.base_url, admin_name)
    # Roles are read from the database on every request, so the token stays valid.
    done = subprocess.run(
        [args.ballpark_bin, "user", "set-role", admin_name, "admin",
         "--database-url", args.database_url],
        capture_output=True, text=True, env={**os.environ, "RUST_LOG": "warn"})
    if done.returncode != 0:
        raise BenchError(f"ballpark user set-role failed: {done.stderr.strip()[-500:]}")
    admin = Client(args.base_url, admin_token)
    store = admin.call("POST", "/api/stores", {"store": {
        "stadium": args.stadium, "name": f"Bench stand {run}", "location": "gate 1",
        "inside": True,
    }})[1]
    store_id = field(store, "store", "id", what="create store")
    item_ids = []
    for i in range(args.items):
        item = admin.call("POST", f"/api/stores/{store_id}/menu", {"item": {
            "name": f"Bench hot dog {i}", "priceWon": 4500, "stock": args.stock,
            "available": True,
        }})[1]
        item_ids.append(field(item, "item", "id", what=f"add menu item {i}"))
    json.dump({
        "token": register(args.base_url, fan_name),
        "username": fan_name,
        "storeId": store_id,
        "itemIds": item_ids,
        "stockPerItem": args.stock,
        "seconds": round(time.monotonic() - started, 2),
    }, sys.stdout)
    sys.stdout.write("\n")


# Statuses after which more is still to happen (the others are final).
OPEN_STATUSES = ("placed", "paid", "accepted", "preparing", "ready")


def parse_at(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def percentile(sorted_values, p):
    """Nearest-rank percentile (the value below which p % of the values fall)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def for_each(items, threads, make_client, work):
    """work(client, item) for every item, on `threads` threads with a client each. The first
    error stops the other threads (no hammering on a broken server) and is raised here."""
    todo = queue.Queue()
    for item in items:
        todo.put(item)
    errors = []
    stop = threading.Event()

    def worker():
        client = make_client()
        while not stop.is_set():
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                work(client, item)
            except Exception as err:  # noqa: BLE001 - raised below, in the main thread
                errors.append(err)
                stop.set()

    pool = [threading.Thread(target=worker) for _ in range(max(1, min(threads, len(items))))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]


def e2e(args):
    items = [int(x) for x in args.item_ids.split(",") if x]
    if not items:
        raise BenchError("--item-ids names no item")
    prefix = f"e2e-{int(time.time())}-{os.getpid()}"
    lock = threading.Lock()
    created = {}  # order id -> its createdAt
    settled_later = []  # orders whose payment answered 202 (a job settles it)

    def make_client():
        return Client(args.base_url, args.token)

    def place_and_pay(client, i):
        body = {"order": {"storeId": args.store_id,
                          "items": [{"menuItemId": items[i % len(items)], "quantity": 1}]}}
        _, placed = client.call("POST", "/api/orders", body,
                                headers={"Idempotency-Key": f"{prefix}-{i}"}, expect=(201,))
        order_id = field(placed, "order", "id", what="place order")
        at = parse_at(field(placed, "order", "createdAt", what="place order"))
        field(placed, "payment", "url", what="place order")
        status, _ = client.call("POST", f"/api/orders/{order_id}/payment", expect=(200, 202))
        with lock:
            created[order_id] = at
            if status == 202:
                settled_later.append(order_id)

    started = time.monotonic()
    for_each(range(args.orders), args.concurrency, make_client, place_and_pay)
    submitted = time.monotonic() - started

    # Poll what is not finished yet; a finished order is not asked again.
    finished = {}  # order id -> (status, when it became picked_up, or None)

    def poll(client, order_id):
        _, doc = client.call("GET", f"/api/orders/{order_id}", expect=(200,))
        status = field(doc, "order", "status", what="get order")
        if status in OPEN_STATUSES:
            return
        at = next((parse_at(row["at"]) for row in field(doc, "order", "history", what="get order")
                   if row.get("status") == "picked_up"), None)
        with lock:
            finished[order_id] = (status, at)

    deadline = started + args.timeout
    polls = 0
    while len(finished) < len(created) and time.monotonic() < deadline:
        if polls:
            time.sleep(args.poll_interval)
        for_each([i for i in created if i not in finished], args.concurrency, make_client, poll)
        polls += 1
    elapsed = time.monotonic() - started

    others = {}
    for status, _ in finished.values():
        if status != "picked_up":
            others[status] = others.get(status, 0) + 1
    still_open = len(created) - len(finished)
    if still_open or others:
        raise BenchError(
            f"{len(finished) - sum(others.values())} of {len(created)} orders picked up; "
            f"ended otherwise: {others or 'none'}; still open after {args.timeout:.0f} s: "
            f"{still_open}")

    first = min(created.values())
    last = max(at for _, at in finished.values())
    span = (last - first).total_seconds()
    lat = sorted((finished[i][1] - at).total_seconds() * 1000 for i, at in created.items())
    json.dump({
        "orders": len(created),
        "concurrency": args.concurrency,
        "seconds": round(span, 3),
        "ordersPerSecond": round(len(created) / span, 1) if span > 0 else None,
        "submitSeconds": round(submitted, 3),
        "clientSeconds": round(elapsed, 3),
        "polls": polls,
        "paymentsSettledLater": len(settled_later),
        "pickedUpMs": {
            "mean": round(sum(lat) / len(lat), 1),
            "p50": round(percentile(lat, 50), 1),
            "p99": round(percentile(lat, 99), 1),
            "max": round(lat[-1], 1),
        },
    }, sys.stdout)
    sys.stdout.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("seed")
    s.add_argument("--base-url", required=True)
    s.add_argument("--ballpark-bin", required=True)
    s.add_argument("--database-url", required=True)
    s.add_argument("--stadium", default="jamsil")
    s.add_argument("--items", type=int, default=8)
    s.add_argument("--stock", type=int, default=100_000)
    e = sub.add_parser("e2e")
    e.add_argument("--base-url", required=True)
    e.add_argument("--token", required=True)
    e.add_argument("--store-id", type=int, required=True)
    e.add_argument("--item-ids", required=True)
    e.add_argument("--orders", type=int, default=500)
    e.add_argument("--concurrency", type=int, default=32)
    e.add_argument("--timeout", type=float, default=120)
    e.add_argument("--poll-interval", type=float, default=0.2)
    args = ap.parse_args()
    if args.command == "seed":
        seed(args)
    else:
        if args.orders < 1 or args.concurrency < 1:
            ap.error("--orders and --concurrency must be at least 1")
        e2e(args)


if __name__ == "__main__":
    try:
        main()
    except BenchError as err:
        print(f"orders_client.py: FAILED: {err}", file=sys.stderr)
        sys.exit(1)
