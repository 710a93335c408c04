//! A stadium store for order tests: an owner, two menu items and a fan, created through the
//! database as the demo seeding does. Included by each binary that needs it with
//! `#[path = "../support/shop.rs"] mod shop;` (it uses that binary's `helpers::TestApp`).
#![allow(dead_code)]

use ballpark::db::Db;
use ballpark::{on_read, on_write};
use serde_json::{json, Value};

use crate::helpers::TestApp;

/// A store with an owner and two menu items, and a fan to order.
pub struct Shop {
    pub db: Db,
    pub store_id: i64,
    /// 3,000 won, 5 in stock.
    pub hotdog: i64,
    /// 4,500 won, 100 in stock.
    pub beer: i64,
    pub fan: String,
    pub owner: String,
}

/// Creates the shop through the database, as the demo seeding and the catalogue do.
pub async fn open_shop(app: &TestApp) -> Shop {
    let db = Db::connect(&app.database_url, 2).await.expect("test db");
    let fan = app.register("fan").await;
    let owner = app.register("owner").await;
    ballpark::community::store::users::set_role(&db, "owner", "store_owner")
        .await
        .unwrap();
    let now = ballpark::db::now();
    let (store_id, hotdog, beer) = on_write!(&db, pool => {
        sqlx::query("INSERT INTO stadiums (key, name_ko, name_en, address_ko, lat, lon) \
                     VALUES ('jamsil', '잠실야구장', 'Jamsil Baseball Stadium', '서울', 37.5, 127.07) \
                     ON CONFLICT (key) DO NOTHING")
            .execute(pool).await.unwrap();
        let store_id: i64 = sqlx::query_scalar(
            "INSERT INTO stores (stadium, name, location, inside, owner_id, created_at) \
             VALUES ('jamsil', '테스트 매점', '1루', TRUE, (SELECT id FROM users WHERE username = 'owner'), $1) \
             RETURNING id")
            .bind(now).fetch_one(pool).await.unwrap();
        let mut ids = Vec::new();
        for (name, price, stock) in [("핫도그", 3000_i64, 5_i64), ("맥주", 4500, 100)] {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO menu_items (store_id, name, price_won, stock, available, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, TRUE, $5, $5) RETURNING id")
                .bind(store_id).bind(name).bind(price).bind(stock).bind(now)
                .fetch_one(pool).await.unwrap();
            ids.push(id);
        }
        (store_id, ids[0], ids[1])
    });
    Shop {
        db,
        store_id,
        hotdog,
        beer,
        fan,
        owner,
    }
}

impl Shop {
    pub async fn stock(&self, item: i64) -> i64 {
        on_read!(&self.db, pool => sqlx::query_scalar::<_, i64>("SELECT stock FROM menu_items WHERE id = $1")
            .bind(item).fetch_one(pool).await.unwrap())
    }

    pub async fn count(&self, sql: &str) -> i64 {
        on_read!(&self.db, pool => sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await.unwrap())
    }

    /// What the simulated gateway's books say: money charged minus money refunded.
    pub async fn gateway_balance(&self) -> i64 {
        self.count(
            "SELECT CAST(COALESCE(SUM(CASE kind WHEN 'charge' THEN amount_won ELSE -amount_won END), 0) \
             AS BIGINT) FROM sim_gateway_transactions WHERE outcome = 'approved'",
        )
        .await
    }

    pub fn order(&self, lines: &[(i64, i64)]) -> Value {
        let items: Vec<Value> = lines
            .iter()
            .map(|(id, q)| json!({"menuItemId": id, "quantity": q}))
            .collect();
        json!({"order": {"storeId": self.store_id, "items": items}})
    }
}
