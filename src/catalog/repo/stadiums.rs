//! SQL for stadiums (reference data, loaded by [`crate::demo::load_reference_data`]) and the
//! teams that call them home.

use sqlx::FromRow;

use crate::db::Db;
use crate::error::Result;
use crate::on_read;

#[derive(Debug, Clone, FromRow)]
pub struct StadiumRow {
    pub key: String,
    pub name_ko: String,
    pub name_en: String,
    pub address_ko: String,
    pub lat: f64,
    pub lon: f64,
    pub stores_count: i64,
}

const SELECT_STADIUMS: &str =
    "SELECT st.key, st.name_ko, st.name_en, st.address_ko, st.lat, st.lon, \
      (SELECT COUNT(*) FROM stores s WHERE s.stadium = st.key) AS stores_count \
    FROM stadiums st";

pub async fn list(db: &Db) -> Result<Vec<StadiumRow>> {
    let sql = format!("{SELECT_STADIUMS} ORDER BY st.key");
    Ok(on_read!(db, pool => sqlx::query_as::<_, StadiumRow>(&sql).fetch_all(pool).await)?)
}

pub async fn by_key(db: &Db, key: &str) -> Result<Option<StadiumRow>> {
    let sql = format!("{SELECT_STADIUMS} WHERE st.key = $1");
    Ok(on_read!(db, pool => sqlx::query_as::<_, StadiumRow>(&sql)
        .bind(key)
        .fetch_optional(pool)
        .await)?)
}

pub async fn exists(db: &Db, key: &str) -> Result<bool> {
    Ok(on_read!(db, pool => sqlx::query_scalar::<_, bool>(
        "SELECT EXISTS(SELECT 1 FROM stadiums WHERE key = $1)")
        .bind(key)
        .fetch_one(pool)
        .await)?)
}

/// (team key, stadium key) for every team, by team key. The teams table is where a home
/// stadium is recorded, so a stadium's home teams are not stored twice.
pub async fn home_teams(db: &Db) -> Result<Vec<(String, String)>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, (String, String)>(
        "SELECT key, stadium FROM teams ORDER BY key")
        .fetch_all(pool)
        .await)?)
}
