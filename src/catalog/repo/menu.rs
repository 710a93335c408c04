//! SQL for menu items: a store's menu, adding, changing and removing items.

use sqlx::FromRow;

use crate::catalog::domain::{Stock, Won};
use crate::db::{now, Db};
use crate::error::{AppError, Result};
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct MenuItemRow {
    pub id: i64,
    pub name: String,
    pub price_won: i64,
    pub stock: i64,
    pub available: bool,
}

const ITEM_COLUMNS: &str = "id, name, price_won, stock, available";

/// A store's menu, in the order the items were added.
pub async fn list(db: &Db, store_id: i64) -> Result<Vec<MenuItemRow>> {
    let sql = format!("SELECT {ITEM_COLUMNS} FROM menu_items WHERE store_id = $1 ORDER BY id");
    Ok(on_read!(db, pool => sqlx::query_as::<_, MenuItemRow>(&sql)
        .bind(store_id)
        .fetch_all(pool)
        .await)?)
}

pub struct NewMenuItem {
    pub name: String,
    pub price: Won,
    pub stock: Stock,
    pub available: bool,
}

/// Adds an item; a name the store already uses is a 422 on `name`.
pub async fn insert(db: &Db, store_id: i64, item: NewMenuItem) -> Result<MenuItemRow> {
    let sql = format!(
        "INSERT INTO menu_items (store_id, name, price_won, stock, available, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {ITEM_COLUMNS}"
    );
    on_write!(db, pool => sqlx::query_as::<_, MenuItemRow>(&sql)
        .bind(store_id)
        .bind(&item.name)
        .bind(item.price.get())
        .bind(item.stock.get())
        .bind(item.available)
        .bind(now())
        .fetch_one(pool)
        .await)
    .map_err(map_name_taken)
}

/// Fields to change; `None` keeps the current value.
#[derive(Default)]
pub struct MenuItemChanges {
    pub name: Option<String>,
    pub price: Option<Won>,
    pub stock: Option<Stock>,
    pub available: Option<bool>,
}

/// Applies the changes; `None` if the store has no such item.
pub async fn update(
    db: &Db,
    store_id: i64,
    item_id: i64,
    changes: MenuItemChanges,
) -> Result<Option<MenuItemRow>> {
    let sql = format!(
        "UPDATE menu_items SET name = COALESCE($3, name), price_won = COALESCE($4, price_won), \
           stock = COALESCE($5, stock), available = COALESCE($6, available), updated_at = $7 \
         WHERE store_id = $1 AND id = $2 RETURNING {ITEM_COLUMNS}"
    );
    on_write!(db, pool => sqlx::query_as::<_, MenuItemRow>(&sql)
        .bind(store_id)
        .bind(item_id)
        .bind(&changes.name)
        .bind(changes.price.map(Won::get))
        .bind(changes.stock.map(Stock::get))
        .bind(changes.available)
        .bind(now())
        .fetch_optional(pool)
        .await)
    .map_err(map_name_taken)
}

/// Menu item names are unique per store (`UNIQUE (store_id, name)`); the race between two
/// owners adding the same name still answers 422 on the right field.
fn map_name_taken(err: sqlx::Error) -> AppError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => AppError::invalid(
            "name",
            "has already been taken by another item of this store",
        ),
        _ => err.into(),
    }
}

/// What [`remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Deleted,
    /// Orders refer to the item, so it stays (their history must keep pointing at it) and is
    /// marked unavailable instead.
    MadeUnavailable,
    NotFound,
}

/// Deletes the item, or marks it unavailable if orders refer to it. The DELETE itself is
/// the check (the `order_items` foreign key refuses it), so an order placed a moment before
/// cannot slip between a check and the delete.
pub async fn remove(db: &Db, store_id: i64, item_id: i64) -> Result<Removed> {
    let deleted = on_write!(db, pool => sqlx::query(
        "DELETE FROM menu_items WHERE store_id = $1 AND id = $2")
        .bind(store_id)
        .bind(item_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()));
    match deleted {
        Ok(1) => Ok(Removed::Deleted),
        Ok(_) => Ok(Removed::NotFound),
        Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
            let changed = on_write!(db, pool => sqlx::query(
                "UPDATE menu_items SET available = FALSE, updated_at = $3 WHERE store_id = $1 AND id = $2")
                .bind(store_id)
                .bind(item_id)
                .bind(now())
                .execute(pool)
                .await
                .map(|r| r.rows_affected()))?;
            Ok(if changed == 1 {
                Removed::MadeUnavailable
            } else {
                Removed::NotFound
            })
        }
        Err(e) => Err(e.into()),
    }
}
