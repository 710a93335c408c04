//! Operations endpoints: liveness (`/healthz`), readiness (`/readyz`: the database answers),
//! the OpenAPI 3.1 document generated from the handlers' annotations (`/api/openapi.json`)
//! and a Swagger UI to browse it (`/api/docs`). The UI's assets are vendored in `assets/` and
//! compiled into the binary: no CDN, so the docs work offline and leak nothing.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{License, OpenApi, RefOr, Required};

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

/// Completes the generated document with what annotations cannot say.
pub fn finish_openapi(mut doc: OpenApi) -> OpenApi {
    doc.info.title = "ballpark".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Community server for baseball fans: a superset of the RealWorld (Conduit) API.".into(),
    );
    // utoipa-axum starts the document from its own crate's metadata: its author as contact,
    // its licence. Ours has no public contact, and its licence is the one in Cargo.toml.
    doc.info.contact = None;
    let mut license = License::new(env!("CARGO_PKG_LICENSE"));
    license.identifier = Some(env!("CARGO_PKG_LICENSE").into());
    doc.info.license = Some(license);
    mark_query_parameters(&mut doc);
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "token",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`Token <jwt>` (RealWorld) or `Bearer <jwt>`",
        ))),
    );
    doc
}

/// Our handlers read query strings through `ApiQuery`, which utoipa's axum integration does
/// not recognise as a query extractor, so an `IntoParams` struct's fields come out as path
/// parameters, all required. A parameter the path template does not name is a query
/// parameter, required unless its type admits null (an `Option`).
fn mark_query_parameters(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                let in_template = path.contains(&format!("{{{}}}", parameter.name));
                if parameter.parameter_in == ParameterIn::Path && !in_template {
                    parameter.parameter_in = ParameterIn::Query;
                    parameter.required = if nullable(parameter) {
                        Required::False
                    } else {
                        Required::True
                    };
                }
            }
        }
    }
}

fn nullable(parameter: &Parameter) -> bool {
    match &parameter.schema {
        Some(RefOr::T(Schema::Object(object))) => match &object.schema_type {
            SchemaType::Array(types) => types.contains(&Type::Null),
            SchemaType::Type(kind) => *kind == Type::Null,
            SchemaType::AnyValue => true,
        },
        _ => false,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        let (_, doc) = crate::community::router().split_for_parts();
        serde_json::to_value(finish_openapi(doc)).unwrap()
    }

    #[test]
    fn the_document_carries_our_licence_and_no_one_elses_contact() {
        // Act
        let info = document()["info"].clone();

        // Assert
        assert_eq!(info["license"]["name"], "MIT", "{info}");
        assert_eq!(info["license"]["identifier"], "MIT", "{info}");
        assert!(info.get("contact").is_none(), "{info}");
    }

    #[test]
    fn query_parameters_are_documented_in_the_query_and_optional_when_nullable() {
        // Act
        let doc = document();
        let parameters = doc["paths"]["/api/articles"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .clone();
        let slug = &doc["paths"]["/api/articles/{slug}"]["get"]["parameters"][0];

        // Assert
        let tag = parameters.iter().find(|p| p["name"] == "tag").unwrap();
        assert_eq!(tag["in"], "query", "{tag}");
        assert_eq!(tag["required"], false, "{tag}");
        assert_eq!(slug["in"], "path", "{slug}");
        assert_eq!(slug["required"], true, "{slug}");
    }
}
