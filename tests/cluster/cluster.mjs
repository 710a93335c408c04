// The checks of scripts/cluster, made through nginx only. Run by that script (which starts
// the topology and passes its addresses in the environment); not on its own.
//
//   node --experimental-websocket tests/cluster/cluster.mjs functional
//   node --experimental-websocket tests/cluster/cluster.mjs load   (until $STOP_FILE exists)
//
// Which node served a request is read from the nodes' own JSON logs: every request the
// script wants to place carries a unique `probe` query parameter, which the node logs with
// the URI. That way nothing in the proxy or the server is changed for the test.
import { readFileSync, existsSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { deflateSync } from "node:zlib";

const BASE = process.env.BASE_URL; // nginx
const NODE_LOGS = Object.fromEntries(
  process.env.NODE_LOGS.split(",").map((pair) => pair.split("=")),
); // {a: path, b: path}
const run = randomUUID().slice(0, 8);

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`  ok: ${message}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function api(method, path, { token, body, headers = {} } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Token ${token}`;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(BASE + path, init);
  const text = await response.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: response.status, body: json, text };
}

async function register(name) {
  const { status, body, text } = await api("POST", "/api/users", {
    body: { user: { username: name, email: `${name}@example.com`, password: "password123" } },
  });
  if (status !== 201) throw new Error(`register ${name}: ${status} ${text}`);
  return body.user.token;
}

/** The node whose log shows `probe`, waiting a little for the line to be written. */
async function nodeOf(probe) {
  for (let i = 0; i < 50; i++) {
    for (const [node, path] of Object.entries(NODE_LOGS)) {
      if (readFileSync(path, "utf8").includes(`probe=${probe}"`)) return node;
    }
    await sleep(100);
  }
  throw new Error(`no node logged probe=${probe}`);
}

let probes = 0;
const probe = () => `${run}-${++probes}`;

/** Repeats `attempt(probe)` until a node other than `not` served it; returns its result. */
async function onAnotherNode(not, attempt) {
  for (let i = 0; i < 10; i++) {
    const p = probe();
    const result = await attempt(p);
    const node = await nodeOf(p);
    if (node !== not) return { node, result };
  }
  throw new Error(`10 requests in a row went to node ${not}: is the other one in the upstream?`);
}

function openSocket(team, p) {
  const url = `${BASE.replace(/^http/, "ws")}/api/teams/${team}/chat?probe=${p}`;
  const ws = new WebSocket(url);
  const frames = [];
  const waiters = [];
  ws.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    frames.push(frame);
    for (const waiter of waiters.splice(0)) waiter();
  };
  const next = async (predicate, ms = 10000) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = frames.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) return null;
      await new Promise((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  const opened = new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`the socket ${url} failed`));
  });
  return { ws, next, opened };
}

/** A tiny valid PNG (solid colour), so the upload needs no fixture file. */
function png(width, height) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, "ascii");
    data.copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(width * 3, 0x7f)]);
  const pixels = deflateSync(Buffer.concat(Array(height).fill(row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", header),
    chunk("IDAT", pixels),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

async function poll(what, ms, attempt) {
  const deadline = Date.now() + ms;
  for (;;) {
    const result = await attempt();
    if (result) return result;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(200);
  }
}

/** An admin's store with one menu item; returns {store, item}. */
async function openStore(admin) {
  const store = await api("POST", "/api/stores", {
    token: admin,
    body: { store: { stadium: "jamsil", name: `Cluster stand ${run}`, location: "1루", inside: true } },
  });
  if (store.status !== 201) throw new Error(`create store: ${store.status} ${store.text}`);
  const storeId = store.body.store.id;
  const item = await api("POST", `/api/stores/${storeId}/menu`, {
    token: admin,
    body: { item: { name: "핫도그", priceWon: 3000, stock: 100000 } },
  });
  if (item.status !== 201) throw new Error(`add menu item: ${item.status} ${item.text}`);
  return { store: storeId, item: item.body.item.id };
}

function makeAdmin(name) {
  // The same binary and settings as the nodes (the environment scripts/cluster exported).
  execFileSync(process.env.BALLPARK_BIN, ["user", "set-role", name, "admin"], { stdio: "ignore" });
}

async function functional() {
  const alice = await register(`alice${run}`);
  const boss = `boss${run}`;
  const bossToken = await register(boss);
  makeAdmin(boss);

  console.log("behind nginx: the node logs the client's address and the request's id");
  const seen = probe();
  await fetch(`${BASE}/api/articles?probe=${seen}`, {
    headers: { "x-forwarded-for": "203.0.113.7", "x-request-id": `cluster-${seen}` },
  });
  const line = readFileSync(NODE_LOGS[await nodeOf(seen)], "utf8")
    .split("\n")
    .find((l) => l.includes(`probe=${seen}"`));
  check(line.includes('"client":"203.0.113.7"'), "the client address came from X-Forwarded-For (nginx is trusted)");
  check(line.includes(`"request_id":"cluster-${seen}"`), "nginx passed the client's X-Request-Id on");

  console.log("chat: a message posted on a socket of one node reaches a socket of the other");
  const first = openSocket("lg", probe());
  await first.opened;
  const firstNode = await nodeOf(`${run}-${probes}`);
  const { node: secondNode, result: second } = await onAnotherNode(firstNode, async (p) => {
    const socket = openSocket("lg", p);
    await socket.opened;
    return socket;
  });
  check(firstNode !== secondNode, `the sockets are on node ${firstNode} and node ${secondNode}`);
  first.ws.send(JSON.stringify({ type: "auth", token: alice }));
  check(await first.next((f) => f.type === "authenticated"), "the sender's socket signed in with an auth frame");
  const text = `hello across nodes ${run}`;
  first.ws.send(JSON.stringify({ type: "send", body: text }));
  const delivered = await second.next((f) => f.type === "message" && f.message.body === text);
  check(delivered, `the message reached node ${secondNode}'s socket`);
  first.ws.close();
  second.ws.close();

  console.log("uploads: stored in S3 through one node, served through the other");
  const form = new FormData();
  form.append("file", new Blob([png(64, 48)], { type: "image/png" }), "cluster.png");
  const uploadProbe = probe();
  const uploaded = await fetch(`${BASE}/api/uploads?probe=${uploadProbe}`, {
    method: "POST",
    headers: { authorization: `Token ${alice}` },
    body: form,
  });
  const uploadBody = await uploaded.json();
  check(uploaded.status === 202, `the upload was accepted (${uploaded.status})`);
  const uploadNode = await nodeOf(uploadProbe);
  const id = uploadBody.upload.id;
  const ready = await poll("the upload processed by a worker", 30000, async () => {
    const { body } = await api("GET", `/api/uploads/${id}`);
    return body.upload.status === "pending" ? null : body.upload;
  });
  check(ready.status === "ready", `a worker processed the upload (${ready.status})`);
  const path = new URL(ready.url, BASE).pathname;
  const { node: servedBy, result: served } = await onAnotherNode(uploadNode, async (p) => {
    const response = await fetch(`${BASE}${path}?probe=${p}`);
    return { status: response.status, type: response.headers.get("content-type"), bytes: (await response.arrayBuffer()).byteLength };
  });
  check(
    served.status === 200 && served.type.startsWith("image/") && served.bytes > 0,
    `uploaded through node ${uploadNode}, served through node ${servedBy} (${served.status}, ${served.type})`,
  );

  console.log("orders: placed and paid through a node, handed to the vendor and picked up by the workers");
  const shop = await openStore(bossToken);
  const orderProbe = probe();
  const placed = await api("POST", `/api/orders?probe=${orderProbe}`, {
    token: alice,
    headers: { "idempotency-key": randomUUID() },
    body: { order: { storeId: shop.store, items: [{ menuItemId: shop.item, quantity: 2 }] } },
  });
  check(placed.status === 201, `the order was placed through node ${await nodeOf(orderProbe)} (${placed.status})`);
  const orderId = placed.body.order.id;
  const paid = await api("POST", `/api/orders/${orderId}/payment`, { token: alice });
  check(paid.status === 200 && paid.body.order.payment === "paid", `the order was paid (${paid.status})`);
  const done = await poll("the order picked up", 30000, async () => {
    const { body } = await api("GET", `/api/orders/${orderId}`, { token: alice });
    return body.order.status === "picked_up" ? body.order : null;
  });
  check(done.vendor === "picked_up", "the vendor's webhooks, through nginx, took it to picked_up");
  const jobsDone = async (kind) => {
    let total = 0;
    for (const url of process.env.WORKER_METRICS.split(",")) {
      const text = await (await fetch(url, { headers: { authorization: `Bearer ${process.env.BALLPARK_METRICS_TOKEN}` } })).text();
      for (const line of text.split("\n")) {
        if (line.startsWith("ballpark_queue_jobs_completed_total{") && line.includes(`kind="${kind}"`)) {
          total += Number(line.split(" ").pop());
        }
      }
    }
    return total;
  };
  check((await jobsDone("order.hand_over")) >= 1 && (await jobsDone("image.optimize")) >= 1,
    "the worker processes ran the hand-off and the image jobs (their /metrics)");
  const webhooks = readFileSync(process.env.NGINX_ACCESS_LOG, "utf8")
    .split("\n")
    .filter((line) => line.includes("POST /api/vendor/webhooks") && /" 20[0-4] /.test(line));
  check(webhooks.length >= 3, `nginx passed ${webhooks.length} vendor webhooks to the nodes`);
}

/**
 * Bounded load for the rolling restart: until $STOP_FILE exists (or 120 s, or 20,000
 * requests), CONCURRENCY loops of reads (must never fail: nginx retries them on the other
 * node), orders (POST with an Idempotency-Key, retried by this client with the same key,
 * then paid, also safe to retry) and articles (plain POSTs, never retried: counted).
 */
async function load() {
  const concurrency = Number(process.env.CONCURRENCY ?? 4);
  const stopFile = process.env.STOP_FILE;
  const started = Date.now();
  const boss = `loadboss${run}`;
  const bossToken = await register(boss);
  makeAdmin(boss);
  const shop = await openStore(bossToken);
  const fan = await register(`loadfan${run}`);
  const stats = {
    reads: 0, readFailures: [],
    orders: 0, orderAttemptFailures: 0, orderFailures: [], payments: 0, paymentAttemptFailures: 0,
    articles: 0, articleFailures: [],
  };
  const keys = [];
  const ok = (r) => r.status < 500;
  const attempt = async (fn) => {
    try {
      return await fn();
    } catch (err) {
      return { status: 0, text: String(err.cause?.code ?? err) };
    }
  };
  const stop = () => existsSync(stopFile) || Date.now() - started > 120000 || stats.reads + stats.orders + stats.articles > 20000;
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    for (let i = 0; !stop(); i++) {
      const kind = i % 4;
      if (kind < 2) {
        const r = await attempt(() => api("GET", kind === 0 ? "/api/articles?limit=5" : `/api/stores/${shop.store}`));
        stats.reads++;
        if (!ok(r) || r.status !== 200) stats.readFailures.push(`${r.status} ${r.text.slice(0, 100)}`);
      } else if (kind === 2) {
        const key = randomUUID();
        keys.push(key);
        const body = { order: { storeId: shop.store, items: [{ menuItemId: shop.item, quantity: 1 }] } };
        let placed;
        for (let tries = 0; tries < 10; tries++) {
          placed = await attempt(() => api("POST", "/api/orders", { token: fan, headers: { "idempotency-key": key }, body }));
          if (placed.status === 201) break;
          stats.orderAttemptFailures++;
          await sleep(300);
        }
        stats.orders++;
        if (placed.status !== 201) {
          stats.orderFailures.push(`${placed.status} ${placed.text.slice(0, 100)}`);
          continue;
        }
        for (let tries = 0; tries < 10; tries++) {
          const paid = await attempt(() => api("POST", `/api/orders/${placed.body.order.id}/payment`, { token: fan }));
          if (paid.status === 200) {
            stats.payments++;
            break;
          }
          stats.paymentAttemptFailures++;
          await sleep(300);
        }
      } else {
        const r = await attempt(() => api("POST", "/api/articles", {
          token: fan,
          body: { article: { title: `load ${run} ${worker} ${i}`, description: "d", body: "b", tagList: [] } },
        }));
        stats.articles++;
        if (r.status !== 201) stats.articleFailures.push(`${r.status} ${r.text.slice(0, 100)}`);
      }
    }
  }));
  stats.seconds = (Date.now() - started) / 1000;

  // No order lost or doubled: one stored order per key placed, and every one picked up by
  // the workers and the vendor. Read from the database: the API lists only the last 50.
  stats.keysPlaced = keys.length - stats.orderFailures.length;
  const count = (where) =>
    Number(execFileSync("psql", ["-tAq", process.env.BALLPARK_DATABASE_URL, "-c",
      `SELECT count(*) FROM orders WHERE store_id = ${shop.store}${where}`]).toString().trim());
  stats.ordersStored = count("");
  await poll("every order picked up", 60000, async () => count(" AND status <> 'picked_up'") === 0)
    .catch((err) => { stats.unsettled = String(err); });
  stats.ordersPickedUp = count(" AND status = 'picked_up'");
  writeFileSync(process.env.LOAD_RESULT, JSON.stringify(stats, null, 2));
}

const mode = process.argv[2];
try {
  if (mode === "functional") await functional();
  else if (mode === "load") await load();
  else throw new Error(`unknown mode ${mode}`);
} catch (err) {
  console.error(`error: ${err.stack ?? err}`);
  process.exit(1);
}
process.exit(0);
