//! Stores: list (by stadium, inside or outside), one store with its menu, and the admin's
//! part: creating a store and giving it an owner.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::{self, Page, Problems};
use super::menu::{menu_item, MenuItem};
use super::repo::menu as menu_repo;
use super::repo::stadiums as stadium_repo;
use super::repo::stores::{self as repo, NewStore, StoreFilter, StoreRow};
use crate::admin::require_admin;
use crate::app::AppState;
use crate::auth::AuthUser;
use crate::community::domain::{bounded_text, required_text};
use crate::error::{AppError, Result};
use crate::http::{ApiJson, ApiQuery};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_stores, create_store))
        .routes(routes!(get_store))
        .routes(routes!(set_owner))
}

/// A store as lists show it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Store {
    pub id: i64,
    /// Key of the stadium (see `GET /api/stadiums`).
    pub stadium: String,
    pub name: String,
    /// Where in (or near) the stadium, as the stand signs it: `A01(1층)`, `외야`.
    pub location: String,
    /// Inside the stadium (a stand) or outside it (a restaurant nearby).
    pub inside: bool,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    /// True for stores seeded from the demo data: their prices and stock are MADE UP, not
    /// the stand's real ones.
    pub demo: bool,
    /// Username of the store owner who manages the menu, or null.
    pub owner: Option<String>,
    pub rating: RatingSummary,
}

/// The stars of a store's reviews.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingSummary {
    /// Mean stars, rounded to two decimals; null while there are no reviews.
    pub average: Option<f64>,
    pub count: i64,
}

impl RatingSummary {
    pub fn new(sum: i64, count: i64) -> Self {
        let average = (count > 0).then(|| (sum as f64 / count as f64 * 100.0).round() / 100.0);
        RatingSummary { average, count }
    }
}

/// A store with its menu.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreDetail {
    #[serde(flatten)]
    pub store: Store,
    /// Every item, available or not, in the order they were added.
    pub menu: Vec<MenuItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoreBody {
    pub store: StoreDetail,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoreList {
    pub stores: Vec<Store>,
    /// All stores matching the filters, not just this page.
    pub stores_count: i64,
}

pub fn store(row: StoreRow) -> Store {
    Store {
        id: row.id,
        stadium: row.stadium,
        name: row.name,
        location: row.location,
        inside: row.inside,
        lat: row.lat,
        lon: row.lon,
        demo: row.demo,
        owner: row.owner,
        rating: RatingSummary::new(row.rating_sum, row.rating_count),
    }
}

/// Reads a store and its menu for a response.
pub async fn store_body(state: &AppState, id: i64) -> Result<Json<StoreBody>> {
    let row = repo::by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("store"))?;
    let menu = menu_repo::list(&state.db, id).await?;
    Ok(Json(StoreBody {
        store: StoreDetail {
            store: store(row),
            menu: menu.into_iter().map(menu_item).collect(),
        },
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StoreQuery {
    /// Only stores at this stadium (a key from `GET /api/stadiums`; empty: all).
    #[param(schema_with = stadium_filter_schema, required = false)]
    stadium: Option<String>,
    /// Only stores inside (`true`) or outside (`false`) the stadium.
    inside: Option<bool>,
    /// Page size, 1-100 (default 20).
    #[param(schema_with = crate::community::domain::page_limit_schema, required = false)]
    limit: Option<i64>,
    /// Stores to skip (default 0).
    #[param(schema_with = crate::community::domain::offset_schema, required = false)]
    offset: Option<i64>,
}

fn stadium_filter_schema() -> utoipa::openapi::schema::Object {
    let mut keys = crate::demo::stadium_keys();
    keys.push(String::new());
    crate::openapi::text::described(
        crate::openapi::text::key(keys),
        "Only stores at this stadium (a key from `GET /api/stadiums`; empty: all).",
    )
}

fn stadium_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::key(crate::demo::stadium_keys())
}

fn store_name_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::required(domain::MAX_STORE_NAME)
}

fn location_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::nullable(domain::MAX_LOCATION)
}

fn latitude_schema() -> utoipa::openapi::schema::Object {
    degrees(90.0)
}

fn longitude_schema() -> utoipa::openapi::schema::Object {
    degrees(180.0)
}

fn degrees(bound: f64) -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::Object::builder()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            utoipa::openapi::schema::Type::Number,
            utoipa::openapi::schema::Type::Null,
        ]))
        .minimum(Some(-bound))
        .maximum(Some(bound))
        .build()
}

/// Stores, by id, with their rating, optionally filtered.
#[utoipa::path(get, path = "/api/stores", tag = "catalogue", params(StoreQuery),
    responses((status = 200, body = StoreList), (status = 400), (status = 422, description = "bad paging or unknown stadium")))]
async fn list_stores(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<StoreQuery>,
) -> Result<Json<StoreList>> {
    let mut problems = Problems::default();
    let page = Page::parse(&mut problems, query.limit, query.offset);
    // Keys are matched as sent, as the document lists them.
    let stadium = match query.stadium.as_deref() {
        Some(key) if !key.is_empty() => {
            problems.check("stadium", parse_stadium(&state, Some(key)).await?)
        }
        _ => None,
    };
    problems.finish()?;
    let filter = StoreFilter {
        stadium,
        inside: query.inside,
        page,
    };
    let (rows, total) = repo::list(&state.db, &filter).await?;
    Ok(Json(StoreList {
        stores: rows.into_iter().map(store).collect(),
        stores_count: total,
    }))
}

/// One store, with its menu, rating and owner.
#[utoipa::path(get, path = "/api/stores/{id}", tag = "catalogue", params(("id" = i64, Path)),
    responses((status = 200, body = StoreBody), (status = 404)))]
async fn get_store(State(state): State<AppState>, Path(id): Path<i64>) -> Result<Json<StoreBody>> {
    store_body(&state, id).await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewStoreBody {
    store: NewStoreInput,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewStoreInput {
    /// Stadium key.
    #[schema(schema_with = stadium_schema, required = true)]
    stadium: Option<String>,
    #[schema(schema_with = store_name_schema, required = true)]
    name: Option<String>,
    /// Where in or near the stadium (optional).
    #[schema(schema_with = location_schema)]
    location: Option<String>,
    #[schema(required = true, nullable = false)]
    inside: Option<bool>,
    /// Latitude and longitude, both or neither.
    #[schema(schema_with = latitude_schema)]
    lat: Option<f64>,
    #[schema(schema_with = longitude_schema)]
    lon: Option<f64>,
    /// Username of a user with the role `store_owner` (optional).
    owner: Option<String>,
}

/// The id of the user called `username`, who must be a store owner; the inner `Err` is the
/// message of a 422.
async fn parse_owner(state: &AppState, username: &str) -> Result<Result<i64, String>> {
    Ok(
        match repo::user_by_name(&state.db, username.trim()).await? {
            Some((id, role)) if role == "store_owner" => Ok(id),
            Some(_) => Err("must have the role store_owner".into()),
            None => Err("is not a user".into()),
        },
    )
}

/// A stadium key that exists; the inner `Err` is the message of a 422.
async fn parse_stadium(state: &AppState, key: Option<&str>) -> Result<Result<String, String>> {
    let key = key.unwrap_or("");
    if key.is_empty() {
        return Ok(Err("can't be empty".into()));
    }
    Ok(if stadium_repo::exists(&state.db, key).await? {
        Ok(key.to_string())
    } else {
        Err("is not a known stadium".into())
    })
}

/// Create a store (admins only).
#[utoipa::path(post, path = "/api/stores", tag = "catalogue", request_body = NewStoreBody,
    responses((status = 201, body = StoreBody), (status = 401), (status = 403), (status = 422)),
    security(("token" = [])))]
async fn create_store(
    State(state): State<AppState>,
    auth: AuthUser,
    ApiJson(body): ApiJson<NewStoreBody>,
) -> Result<(StatusCode, Json<StoreBody>)> {
    require_admin(&state, &auth).await?;
    let input = body.store;
    let mut problems = Problems::default();
    let stadium = problems.check(
        "stadium",
        parse_stadium(&state, input.stadium.as_deref()).await?,
    );
    let name = problems.check(
        "name",
        required_text(input.name.as_deref(), domain::MAX_STORE_NAME),
    );
    let location = problems.check(
        "location",
        bounded_text(
            input.location.as_deref().unwrap_or(""),
            domain::MAX_LOCATION,
        )
        .map(|location| location.trim().to_string()),
    );
    if input.inside.is_none() {
        problems.add("inside", "must be given: true (in the stadium) or false");
    }
    let (lat, lon) = match (input.lat, input.lon) {
        (Some(lat), Some(lon)) => (
            problems.check("lat", domain::parse_degrees(lat, 90.0)),
            problems.check("lon", domain::parse_degrees(lon, 180.0)),
        ),
        (None, None) => (None, None),
        _ => {
            problems.add("lat", "must be given together with lon");
            (None, None)
        }
    };
    let owner_id = match input.owner.as_deref() {
        Some(username) => problems.check("owner", parse_owner(&state, username).await?),
        None => None,
    };
    problems.finish()?;
    let (Some(stadium), Some(name), Some(location), Some(inside)) =
        (stadium, name, location, input.inside)
    else {
        unreachable!("problems.finish() returns early when a field is invalid");
    };
    let id = repo::insert(
        &state.db,
        NewStore {
            stadium,
            name,
            location,
            inside,
            lat,
            lon,
            owner_id,
        },
    )
    .await?;
    let body = store_body(&state, id).await?;
    Ok((StatusCode::CREATED, body))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct OwnerBody {
    /// Username of a user with the role `store_owner`, or null to leave the store without
    /// an owner.
    #[serde(default, deserialize_with = "crate::community::double_option")]
    #[schema(value_type = Option<String>, required = true)]
    owner: Option<Option<String>>,
}

/// Give a store its owner, or take it away (admins only). The owner must have the role
/// `store_owner` (`ballpark user set-role <username> store_owner`).
#[utoipa::path(put, path = "/api/stores/{id}/owner", tag = "catalogue", params(("id" = i64, Path)),
    request_body = OwnerBody,
    responses((status = 200, body = StoreBody), (status = 401), (status = 403), (status = 404), (status = 422)),
    security(("token" = [])))]
async fn set_owner(
    State(state): State<AppState>,
    auth: AuthUser,
    Path(id): Path<i64>,
    ApiJson(body): ApiJson<OwnerBody>,
) -> Result<Json<StoreBody>> {
    require_admin(&state, &auth).await?;
    if !repo::exists(&state.db, id).await? {
        return Err(AppError::NotFound("store"));
    }
    let owner_id = match body.owner {
        None => {
            return Err(AppError::invalid(
                "owner",
                "must be given: a username, or null for no owner",
            ))
        }
        Some(None) => None,
        Some(Some(username)) => Some(
            parse_owner(&state, &username)
                .await?
                .map_err(|msg| AppError::invalid("owner", msg))?,
        ),
    };
    if !repo::set_owner(&state.db, id, owner_id).await? {
        return Err(AppError::NotFound("store"));
    }
    store_body(&state, id).await
}
