// One round trip through the API with nothing but the client generated from
// /api/openapi.json: register, the current user, an article and a comment, the stores and a
// menu, an order placed, read back and paid. Run by scripts/client, which generates the
// client into target/client/generated, compiles this file with it (tsc --strict) and runs it
// as `node roundtrip.js BASE_URL` against a fresh server with the demo data.
//
// The point is that the generated types are enough. Where the document is wrong or
// incomplete and this file has to step around it, the place is marked `// DOC:` and says
// what the document lacks; a document that gets more precise must not break the build.

import { client } from "../../target/client/generated/client.gen";
import {
  addComment,
  createArticle,
  currentUser,
  getOrder,
  getStore,
  listComments,
  listStores,
  payOrder,
  placeOrder,
  register,
} from "../../target/client/generated";
import type { MenuItem, Store } from "../../target/client/generated";

/** What every generated function resolves to when it does not throw on errors. */
type Outcome<T> = { data?: T; error?: unknown; response: Response };

let calls = 0;

/**
 * Awaits one SDK call and checks its status is one of `expected` (the statuses the
 * document promises for this step); returns the typed body and the status. Anything else
 * throws with the status and the body the server sent, which is the whole diagnosis.
 */
async function call<T>(
  step: string,
  expected: number[],
  request: Promise<Outcome<T>>,
): Promise<{ data: T; status: number }> {
  calls += 1;
  const { data, error, response } = await request;
  if (!expected.includes(response.status)) {
    const body = error === undefined ? JSON.stringify(data) : JSON.stringify(error);
    throw new Error(
      `${step}: ${response.status} instead of ${expected.join(" or ")}; body: ${body}`,
    );
  }
  if (data === undefined) {
    throw new Error(`${step}: ${response.status} without the documented body`);
  }
  return { data, status: response.status };
}

/** Throws `step: what` unless `ok`: a field the next steps rely on is not as expected. */
function check(ok: boolean, step: string, what: string): void {
  if (!ok) {
    throw new Error(`${step}: ${what}`);
  }
}

/** The first item of the first stores (in id order) that can be ordered right now. */
async function orderableItem(): Promise<{ store: Store; item: MenuItem }> {
  const { data: list } = await call("list stores", [200], listStores({ query: { limit: 20 } }));
  check(list.stores.length > 0, "list stores", "no stores (is the demo data loaded?)");
  check(list.storesCount >= list.stores.length, "list stores", "storesCount below the page");
  for (const store of list.stores) {
    const step = `get store ${store.id}`;
    const { data } = await call(step, [200], getStore({ path: { id: store.id } }));
    check(data.store.id === store.id, step, `answered store ${data.store.id}`);
    const item = data.store.menu.find((i) => i.available && i.stock > 0);
    if (item !== undefined) {
      return { store, item };
    }
  }
  throw new Error("list stores: none of the first stores has an item in stock");
}

async function main(): Promise<void> {
  const baseUrl = process.argv[2];
  if (!baseUrl) {
    throw new Error("usage: node roundtrip.js BASE_URL");
  }
  client.setConfig({ baseUrl });

  // --- a new user, and the token that authenticates them.
  const username = `client${Date.now()}${Math.floor(Math.random() * 1000)}`;
  const email = `${username}@example.com`;
  const { data: registered } = await call(
    "register",
    [201],
    register({ body: { user: { username, email, password: "client-roundtrip-1" } } }),
  );
  check(registered.user.username === username, "register", `username ${registered.user.username}`);
  check(registered.user.token.length > 0, "register", "no token");
  // The scheme is an API key in the Authorization header, so the client sends the value as
  // given: the RealWorld prefix is ours to add.
  const token = registered.user.token;
  client.setConfig({ auth: () => `Token ${token}` });

  const { data: me } = await call("current user", [200], currentUser());
  check(me.user.username === username, "current user", `is ${me.user.username}`);
  check(me.user.email === email, "current user", `email ${me.user.email}`);

  // --- an article and a comment on it.
  const title = `Generated client ${username}`;
  const { data: created } = await call(
    "create article",
    [201],
    createArticle({
      body: {
        article: {
          title,
          description: "written by tests/client/roundtrip.ts",
          body: "Every call of this article went through the generated client.",
          tagList: ["client"],
        },
      },
    }),
  );
  const slug = created.article.slug;
  check(slug.length > 0, "create article", "empty slug");
  check(created.article.title === title, "create article", `title ${created.article.title}`);
  check(created.article.author.username === username, "create article", "someone else's");

  const text = "The generated client can comment.";
  const { data: commented } = await call(
    "add comment",
    [200],
    addComment({ path: { slug }, body: { comment: { body: text } } }),
  );
  check(commented.comment.body === text, "add comment", `body ${commented.comment.body}`);

  const { data: comments } = await call("list comments", [200], listComments({ path: { slug } }));
  const listed = comments.comments.find((c) => c.id === commented.comment.id);
  check(listed !== undefined, "list comments", `comment ${commented.comment.id} missing`);
  check(listed?.author.username === username, "list comments", "the comment lost its author");

  // --- an order from the demo stores, read back and paid.
  const { store, item } = await orderableItem();
  const { data: placed } = await call(
    "place order",
    [201],
    placeOrder({
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { order: { storeId: store.id, items: [{ menuItemId: item.id, quantity: 1 }] } },
    }),
  );
  const order = placed.order;
  check(order.storeId === store.id, "place order", `store ${order.storeId}`);
  check(order.totalWon === item.priceWon, "place order", `total ${order.totalWon}`);
  check(order.items.some((i) => i.menuItemId === item.id), "place order", "the item is missing");
  check(order.payment === "unpaid", "place order", `payment ${order.payment}`);
  check(placed.payment?.amountWon === order.totalWon, "place order", "no payment due");

  const { data: read } = await call("get order", [200], getOrder({ path: { id: order.id } }));
  check(read.order.id === order.id, "get order", `answered order ${read.order.id}`);
  check(read.order.history.length > 0, "get order", "no history");

  // 200 when the (simulated) gateway approved; 202 when it did not answer in time, which the
  // document allows and a queued job settles.
  const { data: paid, status } = await call(
    "pay order",
    [200, 202],
    payOrder({ path: { id: order.id } }),
  );
  const payment = status === 200 ? "paid" : "charging";
  check(paid.order.payment === payment, "pay order", `${status}, payment ${paid.order.payment}`);

  console.log(`client: ${calls} calls, all as documented`);
}

main().catch((err: unknown) => {
  console.error(`client: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
