//! Reading forms and query strings for pages: like axum's `Form` and `Query`, but a request
//! that cannot be read is a 400 *page* (the API's extractors answer JSON), and field errors
//! are kept for the form to show next to what the user typed.

use std::collections::BTreeMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::i18n::Lang;
use super::PageError;
use crate::error::AppError;

/// `axum::extract::Query`, rejected with a 400 page.
pub struct PageQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for PageQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| PageQuery(q.0))
            .map_err(|rejection| PageError::bad_request(rejection.body_text()))
    }
}

/// `axum::Form` (urlencoded), rejected with a 400 page.
pub struct PageForm<T>(pub T);

impl<S, T> FromRequest<S> for PageForm<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|f| PageForm(f.0))
            .map_err(|rejection| match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => PageError::from(AppError::PayloadTooLarge),
                _ => PageError::bad_request(rejection.body_text()),
            })
    }
}

/// One field's problem, as a form shows it: the field's label in the page's language and
/// the domain's message.
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// The field errors of a 422 (`AppError::Unprocessable`), labelled for `lang`; any other
/// error is passed back to become an error page.
pub fn field_errors(lang: Lang, error: AppError) -> Result<Vec<FieldError>, PageError> {
    match error {
        AppError::Unprocessable(errors) => Ok(labelled(lang, errors)),
        other => Err(other.into()),
    }
}

fn labelled(lang: Lang, errors: BTreeMap<String, Vec<String>>) -> Vec<FieldError> {
    errors
        .into_iter()
        .flat_map(|(field, messages)| {
            let label = lang.t(&format!("field.{field}")).into_owned();
            messages.into_iter().map(move |message| FieldError {
                field: label.clone(),
                message,
            })
        })
        .collect()
}

/// A single message for the top of a form (wrong password, ...).
pub fn form_error(lang: Lang, key: &str) -> Vec<FieldError> {
    vec![FieldError {
        field: String::new(),
        message: lang.t(key).into_owned(),
    }]
}
