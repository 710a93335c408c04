//! Every error a browser meets on the web UI's paths is a page in its language, including
//! the answers axum and tower make before (or instead of) a handler: no route (404), a wrong
//! method (405, keeping its `Allow`), an unreadable path segment (400), the timeout (408), a
//! body over the limit (413). The machines' paths keep their own answers: JSON under `/api`
//! and `/session/token`, plain text from the probes, `/metrics` and `/media`.
//!
//! Decision: this is a middleware that looks at the *answer*, outside the router and the
//! timeout, rather than a fallback plus per-extractor rejections: a rejection added later
//! (a new extractor, a new layer) is covered without anyone remembering to. It sits inside
//! `http::json_errors`, which lets HTML answers through, so the two never fight.

use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;

use super::i18n::Lang;
use super::session::REQUEST_LANG;
use super::PageError;

/// Paths whose answers are for programs, not people; each also covers what is below it.
const MACHINE_PATHS: &[&str] = &[
    "/api",
    "/healthz",
    "/readyz",
    "/metrics",
    "/media",
    "/session/token",
];

/// Whether `path` belongs to a machine interface (and keeps its own error answers).
pub fn for_machines(path: &str) -> bool {
    MACHINE_PATHS.iter().any(|prefix| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// Middleware: on the web UI's paths, replaces an error answer that is not already a page
/// with the error page for its status, in the request's language.
pub async fn pages_for_errors(request: Request, next: Next) -> Response {
    if for_machines(request.uri().path()) {
        return next.run(request).await;
    }
    let lang = Lang::of_request(
        request.headers(),
        &CookieJar::from_headers(request.headers()),
    );
    // Scoped here too (not only by the session middleware), so that answers made where no
    // route matched are in the visitor's language.
    let response = REQUEST_LANG.scope(lang, next.run(request)).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_page(response.headers()) {
        return response;
    }
    let mut page = REQUEST_LANG
        .scope(lang, async move {
            PageError::for_status(status).into_response()
        })
        .await;
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            page.headers_mut().insert(name, value.clone());
        }
    }
    page
}

fn is_page(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route("/page", get(|| async { "a page" }))
            .route("/api/thing", get(|| async { "a thing" }))
            .route(
                "/healthz",
                get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
            )
            // What the timeout and the body limit answer: a bare status.
            .route("/slow", get(|| async { StatusCode::REQUEST_TIMEOUT }))
            .route(
                "/big",
                get(|| async { (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded") }),
            )
            .fallback(|| async { crate::error::AppError::NotFound("route") })
            .layer(axum::middleware::from_fn(pages_for_errors))
    }

    async fn send(method: &str, uri: &str, lang: &str) -> (StatusCode, HeaderMap, String) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::ACCEPT_LANGUAGE, lang)
            .body(Body::empty())
            .unwrap();
        let response = app().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        (
            parts.status,
            parts.headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
    }

    #[test]
    fn machine_paths_are_the_prefixes_and_what_is_below_them() {
        assert!(for_machines("/api"));
        assert!(for_machines("/api/articles"));
        assert!(for_machines("/media/1/x.jpg"));
        assert!(for_machines("/session/token"));
        assert!(!for_machines("/apiary"));
        assert!(!for_machines("/"));
        assert!(!for_machines("/articles/api"));
        assert!(!for_machines("/session"));
    }

    #[tokio::test]
    async fn an_unknown_web_path_is_a_404_page_in_the_visitors_language() {
        let (status, headers, body) = send("GET", "/nowhere", "en-US,en;q=0.9").await;

        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(is_page(&headers), "{headers:?}");
        assert!(body.contains("There is no such page."), "{body}");
        assert!(body.contains(r#"<html lang="en">"#), "{body}");
    }

    #[tokio::test]
    async fn a_wrong_method_is_a_405_page_that_keeps_its_allow_header() {
        let (status, headers, body) = send("DELETE", "/page", "ko").await;

        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert!(is_page(&headers), "{headers:?}");
        assert!(headers[header::ALLOW].to_str().unwrap().contains("GET"));
        assert!(
            body.contains("이 페이지는 그런 요청을 받지 않습니다."),
            "{body}"
        );
    }

    #[tokio::test]
    async fn the_timeouts_408_and_the_body_limits_413_are_pages() {
        let (slow, slow_headers, slow_body) = send("GET", "/slow", "en").await;
        let (big, big_headers, big_body) = send("GET", "/big", "en").await;

        assert_eq!(slow, StatusCode::REQUEST_TIMEOUT);
        assert!(is_page(&slow_headers), "{slow_headers:?}");
        assert!(
            slow_body.contains("The request took too long."),
            "{slow_body}"
        );
        assert_eq!(big, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(is_page(&big_headers), "{big_headers:?}");
        assert!(
            big_body.contains("What you sent is too large."),
            "{big_body}"
        );
    }

    #[tokio::test]
    async fn machine_paths_keep_their_own_answers() {
        let (api_status, api_headers, api_body) = send("GET", "/api/nowhere", "en").await;
        let (probe_status, probe_headers, _) = send("GET", "/healthz", "en").await;

        assert_eq!(api_status, StatusCode::NOT_FOUND);
        assert!(!is_page(&api_headers), "{api_body}");
        assert!(api_body.contains("route not found"), "{api_body}");
        assert_eq!(probe_status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!is_page(&probe_headers));
    }

    #[tokio::test]
    async fn a_successful_answer_passes_untouched() {
        let (status, _, body) = send("GET", "/page", "en").await;

        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "a page");
    }
}
