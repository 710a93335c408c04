//! Admins in the browser: the queue dashboard (`GET /admin`) and moderation
//! (`GET /admin/moderation`). Everything here is for users whose role is `admin`; anyone else
//! signed in gets a 403 page and a visitor is sent to log in ([`AdminUser`]).
//!
//! - **Dashboard**: per queue and kind, the depth now (queued, scheduled, running, retrying,
//!   dead), jobs done and failed runs over the last 5 and 60 minutes, run times over 60
//!   (read by [`crate::queue::dashboard`], not here), the newest dead jobs with their last
//!   error and Retry / Discard buttons, and, when RabbitMQ runs the jobs, the broker's own
//!   message counts (read with a short timeout; "unavailable" rather than a failed page).
//! - **Moderation**: mute and unmute a user in chat (every room, as the API's mutes), the
//!   mutes in force, and the 50 newest chat messages of every room with Delete buttons; a
//!   deleted message leaves the open pages of its room live ([`crate::chat::hub`]).
//!
//! The buttons are forms (POST with the page's CSRF token, as every form here) answered with
//! a 303 back to the page and a `notice` naming what happened: one of a fixed set of words,
//! each shown through its `admin.notice.*` string, never the raw query text. The rules are
//! the API's ([`crate::admin`], [`crate::chat::moderation`]); handlers only shape pages.

use std::time::Duration;

use askama::Template;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::forms::{PageForm, PageQuery};
use super::layout::Layout;
use super::pages::render;
use super::session::WebUser;
use super::PageError;
use crate::app::AppState;
use crate::chat::moderation::{self, MuteMinutes};
use crate::error::AppError;
use crate::queue::{self, dashboard, RetryDead};

/// How long the dashboard waits for RabbitMQ's counts.
const BROKER_TIMEOUT: Duration = Duration::from_secs(2);
/// Chat messages listed on the moderation page (the newest, every room).
pub const MESSAGES_SHOWN: i64 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard_page))
        .route("/admin/jobs/{id}/retry", post(retry_job))
        .route("/admin/jobs/{id}/discard", post(discard_job))
        .route("/admin/moderation", get(moderation_page))
        .route("/admin/moderation/mute", post(mute))
        .route("/admin/moderation/unmute", post(unmute))
        .route("/admin/chat/{id}/delete", post(delete_message))
}

/// A signed-in admin. A visitor is redirected to log in (as for [`WebUser`]); a signed-in
/// user who is not an admin gets a 403 page.
pub struct AdminUser(pub WebUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let user = WebUser::from_request_parts(parts, state).await?;
        if user.is_admin() {
            Ok(AdminUser(user))
        } else {
            Err(PageError::from(AppError::Forbidden).into_response())
        }
    }
}

/// What a button did, shown above the page after its redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notice {
    Retried,
    Discarded,
    NotDead,
    Duplicate,
    Muted,
    Unmuted,
    NoUser,
    BadMinutes,
    Deleted,
    NoMessage,
}

impl Notice {
    fn word(self) -> &'static str {
        match self {
            Notice::Retried => "retried",
            Notice::Discarded => "discarded",
            Notice::NotDead => "not_dead",
            Notice::Duplicate => "duplicate",
            Notice::Muted => "muted",
            Notice::Unmuted => "unmuted",
            Notice::NoUser => "no_user",
            Notice::BadMinutes => "bad_minutes",
            Notice::Deleted => "deleted",
            Notice::NoMessage => "no_message",
        }
    }

    /// Its message key.
    pub fn key(self) -> String {
        format!("admin.notice.{}", self.word())
    }

    /// Whether it reports something that did not happen (shown as an alert).
    pub fn is_problem(self) -> bool {
        matches!(
            self,
            Notice::NotDead
                | Notice::Duplicate
                | Notice::NoUser
                | Notice::BadMinutes
                | Notice::NoMessage
        )
    }
}

/// A job's or message's id from the path; anything else is a 404 page.
fn id_in_path(raw: &str) -> Result<i64, PageError> {
    raw.parse()
        .map_err(|_| PageError::from(AppError::NotFound("id")))
}

fn back(page: &str, notice: Notice) -> Response {
    Redirect::to(&format!("{page}?notice={}", notice.word())).into_response()
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    notice: Option<Notice>,
}

/// One queue and kind's line, formatted.
pub struct KindRow {
    pub queue: String,
    pub kind: String,
    pub queued: i64,
    pub scheduled: i64,
    pub running: i64,
    pub retrying: i64,
    pub dead: i64,
    pub done_short: i64,
    pub failed_short: i64,
    pub done_long: i64,
    pub failed_long: i64,
    /// Jobs done per minute over the short window.
    pub rate: String,
    pub p50: String,
    pub p95: String,
    pub max: String,
}

pub struct DeadRow {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub attempts: i32,
    pub error: String,
    pub at: DateTime<Utc>,
}

pub struct BrokerRow {
    pub name: String,
    pub messages: u32,
    pub consumers: u32,
}

#[derive(Template)]
#[template(path = "admin.html")]
pub struct DashboardPage {
    pub layout: Layout,
    pub title: String,
    pub notice: Option<Notice>,
    pub kinds: Vec<KindRow>,
    pub dead: Vec<DeadRow>,
    pub short_minutes: u64,
    pub long_minutes: u64,
    /// Whether RabbitMQ runs the jobs.
    pub broker_configured: bool,
    /// Its counts; `None` when it did not answer in time.
    pub broker: Option<Vec<BrokerRow>>,
}

/// `1.2 ms`, `3.40 s`, `-` when nothing ran.
fn run_time(duration: Option<Duration>) -> String {
    match duration {
        None => "-".into(),
        Some(d) if d < Duration::from_secs(1) => format!("{:.1} ms", d.as_secs_f64() * 1000.0),
        Some(d) => format!("{:.2} s", d.as_secs_f64()),
    }
}

/// `GET /admin`: the queue dashboard.
pub async fn dashboard_page(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    layout: Layout,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> Result<Html<String>, PageError> {
    let board = dashboard::dashboard(&state.db).await.map_err(|err| {
        AppError::Internal(anyhow::Error::new(err).context("reading the queue dashboard"))
    })?;
    let short_minutes = dashboard::SHORT_WINDOW.as_secs() / 60;
    let kinds = board
        .lines
        .into_iter()
        .map(|line| {
            let c = line.counts;
            KindRow {
                rate: format!("{:.1}", c.done_short as f64 / short_minutes.max(1) as f64),
                p50: run_time(line.run_p50),
                p95: run_time(line.run_p95),
                max: run_time(line.run_max),
                queue: c.queue,
                kind: c.kind,
                queued: c.queued,
                scheduled: c.scheduled,
                running: c.running,
                retrying: c.retrying,
                dead: c.dead,
                done_short: c.done_short,
                failed_short: c.failed_short,
                done_long: c.done_long,
                failed_long: c.failed_long,
            }
        })
        .collect();
    let dead = board
        .dead
        .into_iter()
        .map(|job| DeadRow {
            id: job.id,
            queue: job.queue,
            kind: job.kind,
            attempts: job.attempts,
            error: job.last_error.unwrap_or_default(),
            at: job.finished_at.unwrap_or(job.created_at),
        })
        .collect();
    let broker_configured = state.config.broker.is_some();
    let broker = broker_counts(&state).await;
    render(&DashboardPage {
        title: layout.t("admin.title").into_owned(),
        layout,
        notice: query.notice,
        kinds,
        dead,
        short_minutes,
        long_minutes: dashboard::LONG_WINDOW.as_secs() / 60,
        broker_configured,
        broker,
    })
}

/// RabbitMQ's counts of the app's two queues and their dead-letter queues; `None` without a
/// broker, or when it does not answer within [`BROKER_TIMEOUT`] (logged).
async fn broker_counts(state: &AppState) -> Option<Vec<BrokerRow>> {
    let url = state.config.broker.as_ref()?.expose().to_string();
    let queues = [
        state.config.images_queue.clone(),
        state.config.orders_queue.clone(),
    ];
    match queue::amqp::queue_depths(&url, &queues, BROKER_TIMEOUT).await {
        Ok(depths) => Some(
            depths
                .into_iter()
                .map(|q| BrokerRow {
                    name: q.name,
                    messages: q.messages,
                    consumers: q.consumers,
                })
                .collect(),
        ),
        Err(err) => {
            tracing::warn!(
                error = format!("{err:#}"),
                "admin: RabbitMQ counts unavailable"
            );
            None
        }
    }
}

/// `POST /admin/jobs/{id}/retry`: a dead job back in its queue with fresh attempts.
pub async fn retry_job(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = id_in_path(&id)?;
    let notice = match queue::retry_dead(&state.db, id)
        .await
        .map_err(AppError::from)?
    {
        RetryDead::Requeued => {
            if let Some(wakeup) = &state.queue_wakeup {
                wakeup.wake();
            }
            Notice::Retried
        }
        RetryDead::NotDead => Notice::NotDead,
        RetryDead::Duplicate => Notice::Duplicate,
    };
    Ok(back("/admin", notice))
}

/// `POST /admin/jobs/{id}/discard`: a dead job deleted for good.
pub async fn discard_job(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = id_in_path(&id)?;
    let discarded = queue::discard_dead(&state.db, id)
        .await
        .map_err(AppError::from)?;
    Ok(back(
        "/admin",
        if discarded {
            Notice::Discarded
        } else {
            Notice::NotDead
        },
    ))
}

pub struct MessageLine {
    pub id: i64,
    pub team: String,
    pub author: String,
    pub body: String,
    pub at: DateTime<Utc>,
}

pub struct MuteLine {
    pub username: String,
    pub until: DateTime<Utc>,
}

#[derive(Template)]
#[template(path = "admin_moderation.html")]
pub struct ModerationPage {
    pub layout: Layout,
    pub title: String,
    pub notice: Option<Notice>,
    pub max_minutes: i64,
    pub mutes: Vec<MuteLine>,
    pub messages: Vec<MessageLine>,
}

/// `GET /admin/moderation`: the mute forms, the mutes in force and the newest chat messages.
pub async fn moderation_page(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    layout: Layout,
    PageQuery(query): PageQuery<NoticeQuery>,
) -> Result<Html<String>, PageError> {
    let mutes = moderation::active(&state.db)
        .await?
        .into_iter()
        .map(|m| MuteLine {
            username: m.username,
            until: m.until,
        })
        .collect();
    let messages = crate::chat::store::recent(&state.db, MESSAGES_SHOWN)
        .await?
        .into_iter()
        .map(|m| MessageLine {
            id: m.id,
            team: m.team,
            author: m.author_username,
            body: m.body,
            at: m.created_at,
        })
        .collect();
    render(&ModerationPage {
        title: layout.t("admin.moderation").into_owned(),
        layout,
        notice: query.notice,
        max_minutes: moderation::MAX_MUTE_MINUTES,
        mutes,
        messages,
    })
}

#[derive(Debug, Deserialize)]
pub struct MuteForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    minutes: String,
}

/// `POST /admin/moderation/mute`: mutes a user in every room for a number of minutes.
pub async fn mute(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    PageForm(form): PageForm<MuteForm>,
) -> Result<Response, PageError> {
    let Ok(minutes) = MuteMinutes::parse(form.minutes.trim().parse().ok()) else {
        return Ok(back("/admin/moderation", Notice::BadMinutes));
    };
    let muted = moderation::mute(&state.db, form.username.trim(), minutes, admin.id).await?;
    Ok(back(
        "/admin/moderation",
        if muted.is_some() {
            Notice::Muted
        } else {
            Notice::NoUser
        },
    ))
}

#[derive(Debug, Deserialize)]
pub struct UnmuteForm {
    #[serde(default)]
    username: String,
}

/// `POST /admin/moderation/unmute`: lifts a user's mute.
pub async fn unmute(
    State(state): State<AppState>,
    AdminUser(_): AdminUser,
    PageForm(form): PageForm<UnmuteForm>,
) -> Result<Response, PageError> {
    let known = moderation::unmute(&state.db, form.username.trim()).await?;
    Ok(back(
        "/admin/moderation",
        if known {
            Notice::Unmuted
        } else {
            Notice::NoUser
        },
    ))
}

/// `POST /admin/chat/{id}/delete`: deletes a chat message, from open pages too.
pub async fn delete_message(
    State(state): State<AppState>,
    AdminUser(admin): AdminUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = id_in_path(&id)?;
    let deleted = moderation::delete_message(&state, id, admin.id).await?;
    Ok(back(
        "/admin/moderation",
        if deleted {
            Notice::Deleted
        } else {
            Notice::NoMessage
        },
    ))
}
