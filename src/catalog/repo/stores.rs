//! SQL for stores: lists with their rating, one store, creating one, its owner, who may
//! manage it, and the demo seed.
//!
//! A store's rating (sum and count of its reviews) is computed when read, by correlated
//! subqueries over the `reviews_store` index, so a page of stores is one statement and the
//! average can never drift from the reviews it summarises.

use std::collections::HashMap;

use sqlx::FromRow;

use crate::catalog::domain::{Page, Stock, Won};
use crate::db::{now, Db};
use crate::error::Result;
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct StoreRow {
    pub id: i64,
    pub stadium: String,
    pub name: String,
    pub location: String,
    pub inside: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// Seeded from the demo data (it has a `source_pk`): prices and stock are made up.
    pub demo: bool,
    pub owner: Option<String>,
    pub rating_sum: i64,
    pub rating_count: i64,
}

/// `CAST(SUM(..) AS BIGINT)`: PostgreSQL sums a BIGINT column into NUMERIC otherwise.
const SELECT_STORES: &str = "SELECT s.id, s.stadium, s.name, s.location, s.inside, s.lat, s.lon, \
      s.source_pk IS NOT NULL AS demo, u.username AS owner, \
      COALESCE((SELECT CAST(SUM(r.rating) AS BIGINT) FROM reviews r WHERE r.store_id = s.id), 0) AS rating_sum, \
      (SELECT COUNT(*) FROM reviews r WHERE r.store_id = s.id) AS rating_count \
    FROM stores s LEFT JOIN users u ON u.id = s.owner_id";

/// Absent filters match every store.
const FILTER: &str = "WHERE ($1 IS NULL OR s.stadium = $1) AND ($2 IS NULL OR s.inside = $2)";

#[derive(Debug, Clone)]
pub struct StoreFilter {
    pub stadium: Option<String>,
    pub inside: Option<bool>,
    pub page: Page,
}

/// One page of stores, by id, and how many match the filter in all.
pub async fn list(db: &Db, filter: &StoreFilter) -> Result<(Vec<StoreRow>, i64)> {
    let page_sql = format!("{SELECT_STORES} {FILTER} ORDER BY s.id LIMIT $3 OFFSET $4");
    let count_sql = format!("SELECT COUNT(*) FROM stores s {FILTER}");
    let rows = on_read!(db, pool => sqlx::query_as::<_, StoreRow>(&page_sql)
        .bind(&filter.stadium)
        .bind(filter.inside)
        .bind(filter.page.limit)
        .bind(filter.page.offset)
        .fetch_all(pool)
        .await)?;
    let total = on_read!(db, pool => sqlx::query_scalar::<_, i64>(&count_sql)
        .bind(&filter.stadium)
        .bind(filter.inside)
        .fetch_one(pool)
        .await)?;
    Ok((rows, total))
}

pub async fn by_id(db: &Db, id: i64) -> Result<Option<StoreRow>> {
    let sql = format!("{SELECT_STORES} WHERE s.id = $1");
    Ok(on_read!(db, pool => sqlx::query_as::<_, StoreRow>(&sql)
        .bind(id)
        .fetch_optional(pool)
        .await)?)
}

/// The stores `user_id` owns, by id (whether they may still manage them is
/// [`crate::catalog::check_manager`]'s question).
pub async fn owned_by(db: &Db, user_id: i64) -> Result<Vec<StoreRow>> {
    let sql = format!("{SELECT_STORES} WHERE s.owner_id = $1 ORDER BY s.id");
    Ok(on_read!(db, pool => sqlx::query_as::<_, StoreRow>(&sql)
        .bind(user_id)
        .fetch_all(pool)
        .await)?)
}

pub struct NewStore {
    pub stadium: String,
    pub name: String,
    pub location: String,
    pub inside: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub owner_id: Option<i64>,
}

pub async fn insert(db: &Db, store: NewStore) -> Result<i64> {
    Ok(on_write!(db, pool => sqlx::query_scalar::<_, i64>(
        "INSERT INTO stores (stadium, name, location, inside, lat, lon, owner_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id")
        .bind(&store.stadium)
        .bind(&store.name)
        .bind(&store.location)
        .bind(store.inside)
        .bind(store.lat)
        .bind(store.lon)
        .bind(store.owner_id)
        .bind(now())
        .fetch_one(pool)
        .await)?)
}

/// Sets (or, with `None`, clears) the store's owner. `false` if there is no such store.
pub async fn set_owner(db: &Db, id: i64, owner_id: Option<i64>) -> Result<bool> {
    let changed = on_write!(db, pool => sqlx::query("UPDATE stores SET owner_id = $2 WHERE id = $1")
        .bind(id)
        .bind(owner_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}

/// What decides whether a user may manage a store.
#[derive(Debug, Clone, FromRow)]
pub struct Access {
    pub owner_id: Option<i64>,
    /// The user's role; `None` if the user no longer exists.
    pub role: Option<String>,
}

/// The store's owner and `user_id`'s role, in one round trip; `None` if there is no such
/// store.
pub async fn access(db: &Db, store_id: i64, user_id: i64) -> Result<Option<Access>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, Access>(
        "SELECT s.owner_id, (SELECT u.role FROM users u WHERE u.id = $2) AS role \
         FROM stores s WHERE s.id = $1")
        .bind(store_id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?)
}

pub async fn exists(db: &Db, id: i64) -> Result<bool> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS(SELECT 1 FROM stores WHERE id = $1)")
        .bind(id)
        .fetch_one(pool)
        .await)?)
}

/// A store of the demo data, with its menu.
pub struct SeedStore {
    pub source_pk: i64,
    pub stadium: String,
    pub name: String,
    pub location: String,
    pub inside: bool,
    pub lat: f64,
    pub lon: f64,
    pub menu: Vec<SeedItem>,
}

pub struct SeedItem {
    pub name: String,
    pub price: Won,
    pub stock: Stock,
}

/// Rows per multi-row INSERT: far below both backends' limits on bound parameters.
const SEED_CHUNK: usize = 200;

/// Inserts the stores whose `source_pk` is not in the database yet, and the menus of those
/// stores only: a store seeded before keeps whatever its owner has made of its menu. One
/// transaction of a few multi-row INSERTs, so a start with the demo on stays fast. Returns
/// how many stores were new.
pub async fn insert_seed(db: &Db, stores: &[SeedStore]) -> Result<usize> {
    let by_source: HashMap<i64, &SeedStore> = stores.iter().map(|s| (s.source_pk, s)).collect();
    let at = now();
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        let mut new_ids: Vec<(i64, i64)> = Vec::new();
        for chunk in stores.chunks(SEED_CHUNK) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO stores (stadium, name, location, inside, lat, lon, source_pk, created_at) ",
            );
            insert.push_values(chunk, |mut row, store| {
                row.push_bind(&store.stadium)
                    .push_bind(&store.name)
                    .push_bind(&store.location)
                    .push_bind(store.inside)
                    .push_bind(store.lat)
                    .push_bind(store.lon)
                    .push_bind(store.source_pk)
                    .push_bind(at);
            });
            insert.push(" ON CONFLICT (source_pk) DO NOTHING RETURNING id, source_pk");
            new_ids.extend(
                insert
                    .build_query_as::<(i64, i64)>()
                    .fetch_all(&mut *tx)
                    .await?,
            );
        }
        let items: Vec<(i64, &SeedItem)> = new_ids
            .iter()
            .filter_map(|(id, source_pk)| by_source.get(source_pk).map(|s| (*id, *s)))
            .flat_map(|(id, store)| store.menu.iter().map(move |item| (id, item)))
            .collect();
        for chunk in items.chunks(SEED_CHUNK) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO menu_items (store_id, name, price_won, stock, available, created_at, updated_at) ",
            );
            insert.push_values(chunk, |mut row, (store_id, item)| {
                row.push_bind(*store_id)
                    .push_bind(&item.name)
                    .push_bind(item.price.get())
                    .push_bind(item.stock.get())
                    .push_bind(true)
                    .push_bind(at)
                    .push_bind(at);
            });
            insert.push(" ON CONFLICT (store_id, name) DO NOTHING");
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(new_ids.len())
    })
}

/// The id of the demo store with this `source_pk`, if it was seeded.
pub async fn id_by_source(db: &Db, source_pk: i64) -> Result<Option<i64>> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT id FROM stores WHERE source_pk = $1")
        .bind(source_pk)
        .fetch_optional(pool)
        .await)?)
}

/// The id and role of the user called `username`, to check a would-be owner.
pub async fn user_by_name(db: &Db, username: &str) -> Result<Option<(i64, String)>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, (i64, String)>(
        "SELECT id, role FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(pool)
        .await)?)
}
