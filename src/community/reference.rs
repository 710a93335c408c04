//! Reference lists clients build menus from: tags in use, KBO teams, board categories.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::Category;
use super::store::articles as article_store;
use super::store::users::{self as user_store, TeamRow};
use crate::app::AppState;
use crate::error::Result;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tags))
        .routes(routes!(teams))
        .routes(routes!(categories))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TagList {
    pub tags: Vec<String>,
}

/// Tags used by at least one article, alphabetically.
#[utoipa::path(get, path = "/api/tags", tag = "reference", responses((status = 200, body = TagList)))]
async fn tags(State(state): State<AppState>) -> Result<Json<TagList>> {
    Ok(Json(TagList {
        tags: article_store::tags(&state.db).await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamList {
    pub teams: Vec<TeamRow>,
}

/// The 10 KBO teams with their colours; `key` is what `team` on a user refers to.
#[utoipa::path(get, path = "/api/teams", tag = "reference", responses((status = 200, body = TeamList)))]
async fn teams(State(state): State<AppState>) -> Result<Json<TeamList>> {
    Ok(Json(TeamList {
        teams: user_store::teams(&state.db).await?,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryItem {
    pub key: &'static str,
    pub ko: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CategoryList {
    pub categories: Vec<CategoryItem>,
}

/// The board categories an article can be posted in.
#[utoipa::path(get, path = "/api/categories", tag = "reference", responses((status = 200, body = CategoryList)))]
async fn categories() -> Json<CategoryList> {
    Json(CategoryList {
        categories: Category::ALL
            .iter()
            .map(|c| CategoryItem {
                key: c.key(),
                ko: c.label_ko(),
            })
            .collect(),
    })
}
