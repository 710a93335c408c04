//! The API's OpenAPI 3.1 document: generated from the handlers' `#[utoipa::path]`
//! annotations and the input and output types, then finished here with what annotations
//! cannot say (served by [`crate::ops`] at `/api/openapi.json`).
//!
//! Two decisions a newcomer must know:
//! - The statuses every operation of a given shape can answer come from the layers and
//!   extractors all handlers share (`ApiJson`, `ApiQuery`, the token extractors, the
//!   timeout), not from the handler. They are added here, by shape, so no annotation can
//!   forget one: a JSON body can be malformed (400), too large (413), of another type (415)
//!   or invalid (422); a query string can be unparsable (400) or invalid (422); a path
//!   parameter can name nothing (404) or not be a number (400); a token can be missing,
//!   malformed or expired (401); any request can time out (408) or fail inside (500).
//!   Every error answer has the one [`ErrorBody`](crate::error::ErrorBody) shape.
//! - Input limits come from the constants the parsers use ([`text`]), so the document
//!   cannot drift from what the server enforces.

pub mod text;

use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{Object, Schema, SchemaType, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::openapi::{Content, License, OpenApi, Ref, RefOr, Required};
use utoipa::{PartialSchema, ToSchema};

use crate::error::ErrorBody;

/// Completes the generated document: metadata, query parameters, the statuses and error
/// bodies every operation shares, and the token scheme.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info.title = "ballpark".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Community server for baseball fans: a superset of the RealWorld (Conduit) API. \
         Every error answers `{\"errors\": {field: [message]}, \"requestId\": id}`."
            .into(),
    );
    // utoipa-axum starts the document from its own crate's metadata: its author as contact,
    // its licence. Ours has no public contact, and its licence is the one in Cargo.toml.
    doc.info.contact = None;
    let mut license = License::new(env!("CARGO_PKG_LICENSE"));
    license.identifier = Some(env!("CARGO_PKG_LICENSE").into());
    doc.info.license = Some(license);

    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            query_parameters_without_null(operation);
            add_shared_statuses(operation);
            describe_errors(operation);
        }
    }

    let components = doc.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    components.add_security_scheme(
        "token",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "Authorization",
            "`Token <jwt>` (RealWorld) or `Bearer <jwt>`",
        ))),
    );
    doc
}

/// A query string cannot carry a null, so an optional query parameter's type loses its
/// `null` (utoipa gives an `Option` one): absent is how a client says "none".
fn query_parameters_without_null(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in == ParameterIn::Query && drop_null(parameter) {
            parameter.required = Required::False;
        }
    }
}

/// Removes `null` from the parameter's type; true if it was there.
fn drop_null(parameter: &mut Parameter) -> bool {
    let Some(RefOr::T(Schema::Object(object))) = &mut parameter.schema else {
        return false;
    };
    match &object.schema_type {
        SchemaType::Array(types) if types.contains(&Type::Null) => {
            let rest: Vec<Type> = types
                .iter()
                .filter(|t| **t != Type::Null)
                .cloned()
                .collect();
            object.schema_type = match rest.as_slice() {
                [one] => SchemaType::Type(one.clone()),
                _ => SchemaType::Array(rest),
            };
            true
        }
        SchemaType::Type(Type::Null) | SchemaType::AnyValue => true,
        _ => false,
    }
}

/// What an operation is made of, as far as the shared layers care.
struct Shape {
    body: Option<String>,
    query: bool,
    path: bool,
    integer_path: bool,
    token: bool,
}

impl Shape {
    fn of(operation: &Operation) -> Shape {
        let parameters = operation.parameters.as_deref().unwrap_or_default();
        let path_parameters = || {
            parameters
                .iter()
                .filter(|p| p.parameter_in == ParameterIn::Path)
        };
        Shape {
            body: operation
                .request_body
                .as_ref()
                .and_then(|body| body.content.keys().next().cloned()),
            query: parameters
                .iter()
                .any(|p| p.parameter_in == ParameterIn::Query),
            path: path_parameters().next().is_some(),
            integer_path: path_parameters().any(|p| {
                matches!(&p.schema, Some(RefOr::T(Schema::Object(o)))
                    if o.schema_type == SchemaType::Type(Type::Integer))
            }),
            token: operation.security.iter().flatten().any(|requirement| {
                serde_json::to_value(requirement).is_ok_and(|value| value.get("token").is_some())
            }),
        }
    }
}

/// Adds the statuses the shared extractors and layers give, unless the annotation already
/// describes them more precisely.
fn add_shared_statuses(operation: &mut Operation) {
    let shape = Shape::of(operation);
    let mut shared: Vec<(&str, String)> = Vec::new();
    if let Some(content_type) = &shape.body {
        shared.push((
            "400",
            "the body could not be parsed (malformed JSON)".into(),
        ));
        shared.push((
            "413",
            "the body is larger than the server's limit (`body_limit_bytes`)".into(),
        ));
        shared.push((
            "415",
            format!("the body's `Content-Type` is not `{content_type}`"),
        ));
        shared.push((
            "422",
            "a field is missing, of the wrong type, or invalid; `errors` names it".into(),
        ));
    }
    if shape.query {
        shared.push((
            "400",
            "a query parameter could not be parsed (as a number, say)".into(),
        ));
        shared.push((
            "422",
            "a query parameter is out of range or invalid; `errors` names it".into(),
        ));
    }
    if shape.integer_path {
        shared.push(("400", "a path parameter is not a valid number".into()));
    }
    if shape.path {
        shared.push(("404", "nothing by that name or id".into()));
    }
    if shape.token {
        shared.push((
            "401",
            "the `Authorization` token is missing, malformed or expired".into(),
        ));
    }
    shared.push((
        "408",
        "the request took longer than the server's timeout".into(),
    ));
    shared.push((
        "500",
        "the server failed; the body carries only the request id to report".into(),
    ));
    let responses = &mut operation.responses.responses;
    for (status, description) in shared {
        responses
            .entry(status.to_string())
            .or_insert_with(|| RefOr::T(Response::new(description)));
    }
}

/// Every error answer carries an [`ErrorBody`]; 401 names the scheme to use and 429 when to
/// come back.
fn describe_errors(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else {
            continue;
        };
        if response.description.is_empty() {
            response.description = default_description(status).into();
        }
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if response.content.is_empty() {
            response.content.insert(
                "application/json".into(),
                Content::new(Some(Ref::from_schema_name(ErrorBody::name()))),
            );
        }
        match status.as_str() {
            "401" => {
                response.headers.insert(
                    "WWW-Authenticate".into(),
                    header("always `Token`: send `Authorization: Token <jwt>`"),
                );
            }
            "429" => {
                let seconds = Object::builder()
                    .schema_type(Type::Integer)
                    .minimum(Some(1))
                    .build();
                let mut retry_after = Header::new(seconds);
                retry_after.description = Some("seconds to wait before trying again".into());
                response.headers.insert("Retry-After".into(), retry_after);
            }
            _ => {}
        }
    }
}

fn header(description: &str) -> Header {
    let mut header = Header::new(String::schema());
    header.description = Some(description.into());
    header
}

fn default_description(status: &str) -> &str {
    match status {
        "400" => "the request could not be parsed",
        "401" => "the `Authorization` token is missing, malformed or expired",
        "402" => "the payment was declined",
        "403" => "not allowed for this user",
        "404" => "nothing by that name or id",
        "409" => "the request conflicts with the resource's state",
        "413" => "the body is larger than the server's limit",
        "415" => "the body is of an unsupported content type",
        "422" => "a field is missing or invalid; `errors` names it",
        "429" => "too many requests; see `Retry-After`",
        other => other
            .parse::<axum::http::StatusCode>()
            .ok()
            .and_then(|status| status.canonical_reason())
            .unwrap_or("error"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn document() -> Value {
        let (_, doc) = crate::community::router().split_for_parts();
        serde_json::to_value(finish(doc)).unwrap()
    }

    fn statuses(doc: &Value, path: &str, method: &str) -> Vec<String> {
        doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("no {method} {path}"))
            .keys()
            .cloned()
            .collect()
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
    fn query_parameters_are_documented_in_the_query_and_optional_ones_are_not_nullable() {
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
        assert_eq!(tag["schema"]["type"], "string", "{tag}");
        let limit = parameters.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["type"], "integer", "{limit}");
        assert_eq!(slug["in"], "path", "{slug}");
        assert_eq!(slug["required"], true, "{slug}");
    }

    #[test]
    fn a_json_body_brings_the_statuses_its_extractor_gives() {
        // Act
        let doc = document();

        // Assert
        let statuses = statuses(&doc, "/api/users", "post");
        for status in ["201", "400", "408", "413", "415", "422", "500"] {
            assert!(
                statuses.contains(&status.to_string()),
                "{status}: {statuses:?}"
            );
        }
        assert!(!statuses.contains(&"401".to_string()), "{statuses:?}");
    }

    #[test]
    fn a_token_brings_401_with_the_scheme_to_use() {
        // Act
        let doc = document();
        let unauthorized = &doc["paths"]["/api/user"]["get"]["responses"]["401"];

        // Assert
        assert!(
            unauthorized["headers"]["WWW-Authenticate"].is_object(),
            "{unauthorized}"
        );
        assert_eq!(
            unauthorized["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/ErrorBody"
        );
    }

    #[test]
    fn an_optional_token_still_brings_401_for_a_bad_one() {
        // Act
        let doc = document();

        // Assert
        let statuses = statuses(&doc, "/api/articles/{slug}", "get");
        assert!(statuses.contains(&"401".to_string()), "{statuses:?}");
        assert!(statuses.contains(&"404".to_string()), "{statuses:?}");
    }

    #[test]
    fn every_error_answer_has_the_error_body() {
        // Act
        let doc = document();

        // Assert
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with('4') || status.starts_with('5') {
                        assert!(
                            response["content"]["application/json"]["schema"].is_object(),
                            "{method} {path} {status}: {response}"
                        );
                    }
                }
            }
        }
        let error = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(
            error["required"],
            serde_json::json!(["errors", "requestId"])
        );
    }
}
