//! Stadiums: the 9 KBO ballparks (reference data, loaded on every start), with the teams
//! that call each home. Jamsil is home to two, LG and Doosan.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::repo::stadiums::{self as repo, StadiumRow};
use crate::app::AppState;
use crate::error::{AppError, Result};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_stadiums))
        .routes(routes!(get_stadium))
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stadium {
    /// Stable key (`jamsil`, `sajik`…), what a store's `stadium` refers to.
    pub key: String,
    pub name_ko: String,
    pub name_en: String,
    pub address_ko: String,
    pub lat: f64,
    pub lon: f64,
    /// Keys of the teams that play their home games here (see `GET /api/teams`).
    pub home_teams: Vec<String>,
    /// Stores in the catalogue at this stadium.
    pub stores_count: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StadiumList {
    pub stadiums: Vec<Stadium>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StadiumBody {
    pub stadium: Stadium,
}

/// Team keys by stadium key, read once for any number of stadiums.
async fn home_teams(state: &AppState) -> Result<BTreeMap<String, Vec<String>>> {
    let mut by_stadium: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (team, stadium) in repo::home_teams(&state.db).await? {
        by_stadium.entry(stadium).or_default().push(team);
    }
    Ok(by_stadium)
}

fn stadium(row: StadiumRow, teams: &BTreeMap<String, Vec<String>>) -> Stadium {
    Stadium {
        home_teams: teams.get(&row.key).cloned().unwrap_or_default(),
        key: row.key,
        name_ko: row.name_ko,
        name_en: row.name_en,
        address_ko: row.address_ko,
        lat: row.lat,
        lon: row.lon,
        stores_count: row.stores_count,
    }
}

/// The KBO stadiums, by key, with their home teams.
#[utoipa::path(get, path = "/api/stadiums", tag = "catalogue",
    responses((status = 200, body = StadiumList)))]
async fn list_stadiums(State(state): State<AppState>) -> Result<Json<StadiumList>> {
    let teams = home_teams(&state).await?;
    let rows = repo::list(&state.db).await?;
    Ok(Json(StadiumList {
        stadiums: rows.into_iter().map(|row| stadium(row, &teams)).collect(),
    }))
}

/// One stadium, with its home teams.
#[utoipa::path(get, path = "/api/stadiums/{key}", tag = "catalogue", params(("key" = String, Path)),
    responses((status = 200, body = StadiumBody), (status = 404)))]
async fn get_stadium(
    State(state): State<AppState>,
    Path(key): Path<String>,
) -> Result<Json<StadiumBody>> {
    let row = repo::by_key(&state.db, &key)
        .await?
        .ok_or(AppError::NotFound("stadium"))?;
    let teams = home_teams(&state).await?;
    Ok(Json(StadiumBody {
        stadium: stadium(row, &teams),
    }))
}
