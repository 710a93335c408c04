//! What `templates/base.html` needs on every page: the language and its strings, the
//! signed-in user for the header, the CSRF token for forms, and the current address for the
//! language links. Every page struct has a `layout: Layout` field.

use std::borrow::Cow;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use chrono::{DateTime, Utc};

use super::i18n::{self, Lang};
use super::pages::segment;
use super::session::{WebContext, WebUser, REQUEST_LANG};
use super::PageError;
use crate::app::AppState;

pub struct Layout {
    pub lang: Lang,
    pub user: Option<WebUser>,
    /// The token every form on the page carries in its `csrf` field (and scripts send as
    /// `X-CSRF-Token`); also in the page's `csrf-token` meta element.
    pub csrf: String,
    /// This page's path and query, for the language links to come back to.
    pub here: String,
    now: DateTime<Utc>,
}

impl Layout {
    /// A layout for an error page rendered outside a handler: the request's language (from
    /// the session middleware's task-local), no user, no forms.
    pub fn for_error() -> Layout {
        Layout {
            lang: REQUEST_LANG.try_with(|l| *l).unwrap_or_default(),
            user: None,
            csrf: String::new(),
            here: "/".into(),
            now: Utc::now(),
        }
    }

    pub fn t<'k>(&self, key: &'k str) -> Cow<'k, str> {
        self.lang.t(key)
    }

    /// A board's (category's) name.
    pub fn board(&self, key: &str) -> String {
        self.lang.t(&format!("board.{key}")).into_owned()
    }

    /// A time, relative while recent, else in Korea time.
    pub fn when(&self, at: &DateTime<Utc>) -> String {
        i18n::when(self.lang, *at, self.now)
    }

    pub fn korea_time(&self, at: &DateTime<Utc>) -> String {
        i18n::korea_time(*at)
    }

    /// `GET /lang/{code}`, which sets the `lang` cookie and comes back to this page.
    pub fn lang_href(&self, code: &str) -> String {
        format!("/lang/{code}?back={}", segment(&self.here))
    }

    pub fn team_label(&self) -> Option<&str> {
        self.user.as_ref().and_then(|u| u.team_label(&self.lang))
    }
}

impl FromRequestParts<AppState> for Layout {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let context = WebContext::from_request_parts(parts, state).await?;
        Ok(Layout {
            lang: context.lang,
            user: context.user,
            csrf: context.csrf,
            here: parts
                .uri
                .path_and_query()
                .map_or("/", |pq| pq.as_str())
                .to_string(),
            now: Utc::now(),
        })
    }
}
