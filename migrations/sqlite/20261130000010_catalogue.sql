-- The stadium catalogue: stadiums (reference data), the stores inside and around them, their
-- menus with prices in won and stock, and fans' reviews with hashtags.
CREATE TABLE stadiums (
    key        TEXT PRIMARY KEY,
    name_ko    TEXT NOT NULL,
    name_en    TEXT NOT NULL,
    address_ko TEXT NOT NULL,
    lat        REAL NOT NULL,
    lon        REAL NOT NULL
);

CREATE TABLE stores (
    id         INTEGER PRIMARY KEY,
    stadium    TEXT NOT NULL REFERENCES stadiums(key),
    name       TEXT NOT NULL,
    location   TEXT NOT NULL DEFAULT '',
    inside     BOOLEAN NOT NULL,
    lat        REAL,
    lon        REAL,
    -- The store owner who manages the menu (role store_owner); admins may too.
    owner_id   INTEGER REFERENCES users(id) ON DELETE SET NULL,
    -- The stand's id in the demo data (kbo.json), so seeding is idempotent.
    source_pk  INTEGER UNIQUE,
    created_at TEXT NOT NULL
);
CREATE INDEX stores_stadium ON stores(stadium);
CREATE INDEX stores_owner ON stores(owner_id);

CREATE TABLE menu_items (
    id         INTEGER PRIMARY KEY,
    store_id   INTEGER NOT NULL REFERENCES stores(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    price_won  INTEGER NOT NULL CHECK (price_won > 0),
    -- Units left. The CHECK is the last line against overselling: a reservation is
    -- `stock = stock - n WHERE stock >= n`, and the database refuses to go below zero.
    stock      INTEGER NOT NULL CHECK (stock >= 0),
    available  BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (store_id, name)
);

CREATE TABLE reviews (
    id         INTEGER PRIMARY KEY,
    store_id   INTEGER NOT NULL REFERENCES stores(id) ON DELETE CASCADE,
    author_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    -- One review per fan and store; writing again replaces it.
    UNIQUE (store_id, author_id)
);
CREATE INDEX reviews_store ON reviews(store_id, created_at);

CREATE TABLE review_hashtags (
    review_id INTEGER NOT NULL REFERENCES reviews(id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (review_id, tag)
);
CREATE INDEX review_hashtags_tag ON review_hashtags(tag);
