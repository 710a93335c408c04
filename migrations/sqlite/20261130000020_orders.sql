-- Orders from the stadium stores, their payments and their history. See src/orders.rs for
-- the state machine these columns hold.
CREATE TABLE orders (
    id          TEXT PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES users(id),
    store_id    INTEGER NOT NULL REFERENCES stores(id),
    -- What the customer sees: placed, paid, accepted, preparing, ready, picked_up,
    -- payment_failed, cancelled, refunded.
    status      TEXT NOT NULL,
    -- The two processes that run side by side after placing: paying, and the vendor.
    payment     TEXT NOT NULL,
    vendor      TEXT NOT NULL,
    cancelled   BOOLEAN NOT NULL DEFAULT FALSE,
    total_won   INTEGER NOT NULL CHECK (total_won > 0),
    vendor_ref  TEXT,
    charge_ref  TEXT,
    reason      TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX orders_customer ON orders(customer_id, created_at);
CREATE INDEX orders_store ON orders(store_id, created_at);

CREATE TABLE order_items (
    order_id       TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    menu_item_id   INTEGER NOT NULL REFERENCES menu_items(id),
    name           TEXT NOT NULL,
    unit_price_won INTEGER NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, menu_item_id)
);

-- Every transition, in order. Live updates read it by id after a cursor.
CREATE TABLE order_history (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    order_id TEXT NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    store_id INTEGER NOT NULL,
    event    TEXT NOT NULL,
    status   TEXT NOT NULL,
    detail   TEXT,
    at       TEXT NOT NULL
);
CREATE INDEX order_history_order ON order_history(order_id, id);
CREATE INDEX order_history_store ON order_history(store_id, id);

-- Responses to POST /api/orders by (user, Idempotency-Key), replayed for 24 hours.
CREATE TABLE idempotency_keys (
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code  INTEGER NOT NULL,
    response     TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys(created_at);

-- Our books: at most one charge and one refund per order, as the gateway confirmed them.
CREATE TABLE payments (
    order_id    TEXT NOT NULL REFERENCES orders(id),
    kind        TEXT NOT NULL CHECK (kind IN ('charge', 'refund')),
    amount_won  INTEGER NOT NULL CHECK (amount_won > 0),
    gateway_ref TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (order_id, kind)
);

-- The bundled *simulated* payment gateway keeps its own records here, written outside the
-- app's transactions as an outside party's would be. A real gateway does not use this table.
CREATE TABLE sim_gateway_transactions (
    idempotency_key TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    reference       TEXT NOT NULL UNIQUE,
    order_id        TEXT NOT NULL,
    amount_won      INTEGER NOT NULL,
    outcome         TEXT NOT NULL,
    created_at      TEXT NOT NULL
);
