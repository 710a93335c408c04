//! Operations endpoints: liveness (`/healthz`), readiness (`/readyz`: the database answers),
//! the OpenAPI 3.1 document ([`crate::openapi`]) at `/api/openapi.json`
//! and a Swagger UI to browse it (`/api/docs`). The UI's assets are vendored in `assets/` and
//! compiled into the binary: no CDN, so the docs work offline and leak nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use utoipa::openapi::OpenApi;

use crate::app::AppState;
use crate::db::Db;

const SWAGGER_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const SWAGGER_CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ballpark API</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: "/api/openapi.json", dom_id: "#ui" });</script>
</body></html>"##;

pub fn router(openapi: Arc<OpenApi>) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/api/openapi.json",
            get(move || openapi_json(openapi.clone())),
        )
        .route("/api/docs", get(|| async { Html(DOCS_HTML) }))
        .route(
            "/api/docs/swagger-ui-bundle.js",
            get(|| asset(SWAGGER_JS, "text/javascript")),
        )
        .route(
            "/api/docs/swagger-ui.css",
            get(|| asset(SWAGGER_CSS, "text/css")),
        )
}

async fn openapi_json(doc: Arc<OpenApi>) -> impl IntoResponse {
    Json(doc.as_ref().clone())
}

async fn asset(bytes: &'static [u8], content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
}

/// The process is up and serving HTTP.
async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// `/healthz` and `/readyz` alone, for a process that serves no API (`ballpark worker`, on
/// `metrics_bind`), so that it is supervised the same way as `serve`.
pub fn probes<S>(db: Db) -> Router<S> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(|State(db): State<Db>| database_ready(db)))
        .with_state(db)
}

/// The process can do useful work: the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    database_ready(state.db).await
}

async fn database_ready(db: Db) -> impl IntoResponse {
    match db.ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
    }
}
