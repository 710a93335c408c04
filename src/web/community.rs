//! Writing in the community from the browser: articles (board, tags, photos, cover), comments
//! and one level of replies, favourites, follows, profiles and the settings page.
//!
//! Every write goes through the same parsers (`community::domain`), upload checks
//! (`community::images`) and store functions as the JSON API, so the rules are the API's;
//! what differs is the answer: a redirect to the page that shows the result, or the form
//! again with the problems next to what was typed (422).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::forms::{field_errors, FieldError, PageForm, PageQuery};
use super::layout::Layout;
use super::pages::{
    article_cards, page_numbers, render, segment, team_links, ArticleCard, PageLink, TeamLink,
};
use super::session::WebUser;
use super::PageError;
use crate::app::AppState;
use crate::community::domain::{self, Category, Problems};
use crate::community::images;
use crate::community::moderation::{may_delete, Actor};
use crate::community::store::articles::{
    self, ArticleChanges, ArticleFilter, ArticleOrder, NewArticle,
};
use crate::community::store::{comments, users};
use crate::error::AppError;

/// Slugs carry a random suffix; a few tries make a collision impossible in practice (as in
/// the API).
const SLUG_ATTEMPTS: usize = 5;
/// Articles per page on a profile.
const PROFILE_ARTICLES: i64 = 10;

fn article_href(slug: &str) -> String {
    format!("/articles/{}", segment(slug))
}

pub struct BoardOption {
    pub key: &'static str,
    pub selected: bool,
}

fn board_options(selected: &str) -> Vec<BoardOption> {
    Category::ALL
        .iter()
        .map(|c| BoardOption {
            key: c.key(),
            selected: c.key() == selected,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "editor.html")]
pub struct EditorPage {
    pub layout: Layout,
    pub title: String,
    /// Where the form posts: `/editor` or `/editor/{slug}`.
    pub action: String,
    pub boards: Vec<BoardOption>,
    pub form: ArticleForm,
    pub errors: Vec<FieldError>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ArticleForm {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub body: String,
    /// Tags separated by spaces or commas (`#` optional).
    #[serde(default)]
    pub tags: String,
    #[serde(default)]
    pub category: String,
    /// An upload id, or empty for no cover.
    #[serde(default)]
    pub cover: String,
}

impl ArticleForm {
    fn tag_list(&self) -> Vec<String> {
        self.tags
            .split([' ', ',', '\n', '\t'])
            .map(|t| t.trim().trim_start_matches('#').to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    fn cover(&self) -> Option<&str> {
        Some(self.cover.trim()).filter(|c| !c.is_empty())
    }
}

fn editor(
    layout: Layout,
    action: String,
    form: ArticleForm,
    errors: Vec<FieldError>,
) -> Result<Response, PageError> {
    let title = layout.t("editor.title").into_owned();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let boards = board_options(if form.category.is_empty() {
        "free"
    } else {
        &form.category
    });
    let page = render(&EditorPage {
        layout,
        title,
        action,
        boards,
        form,
        errors,
    })?;
    Ok((status, page).into_response())
}

/// `GET /editor`: a new article.
pub async fn new_article(_user: WebUser, layout: Layout) -> Result<Response, PageError> {
    editor(layout, "/editor".into(), ArticleForm::default(), Vec::new())
}

/// `GET /editor/{slug}`: the author's own article, to edit.
pub async fn edit_article(
    State(state): State<AppState>,
    user: WebUser,
    layout: Layout,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let article = articles::by_slug(&state.db, &slug, user.id)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    if article.author.username != user.username {
        return Err(AppError::Forbidden.into());
    }
    let form = ArticleForm {
        title: article.title,
        description: article.description,
        body: article.body.unwrap_or_default(),
        tags: article.tag_list.join(" "),
        category: article.category,
        cover: article.cover_image.map(|c| c.id).unwrap_or_default(),
    };
    editor(
        layout,
        format!("/editor/{}", segment(&slug)),
        form,
        Vec::new(),
    )
}

/// The checks `POST /api/articles` makes, for a form; `Err` carries every problem at once.
async fn parse_article(
    state: &AppState,
    author_id: i64,
    form: &ArticleForm,
) -> Result<(NewArticle, images::ImageChanges), AppError> {
    let mut problems = Problems::default();
    let title = problems.check(
        "title",
        domain::required_text(Some(&form.title), domain::MAX_TITLE),
    );
    let description = problems.check(
        "description",
        domain::required_text(Some(&form.description), domain::MAX_DESCRIPTION),
    );
    let body = problems.check(
        "body",
        domain::required_text(Some(&form.body), domain::MAX_BODY),
    );
    let tags = problems.check("tagList", domain::parse_tags(&form.tag_list()));
    let category = problems.check(
        "category",
        Category::parse(if form.category.trim().is_empty() {
            "free"
        } else {
            form.category.trim()
        }),
    );
    let images = images::check(
        &state.db,
        author_id,
        &mut problems,
        Some(form.cover()),
        body.as_deref(),
    )
    .await?;
    problems.finish()?;
    let (Some(title), Some(description), Some(body), Some(tags), Some(category)) =
        (title, description, body, tags, category)
    else {
        unreachable!("problems.finish() returns early when a field is invalid");
    };
    let article = NewArticle {
        slug: domain::slugify(&title),
        title,
        description,
        body,
        tags,
        category: category.key().to_string(),
        author_id,
        images: images.clone(),
    };
    Ok((article, images))
}

/// `POST /editor`: publishes, then shows the article.
pub async fn create_article(
    State(state): State<AppState>,
    user: WebUser,
    layout: Layout,
    PageForm(form): PageForm<ArticleForm>,
) -> Result<Response, PageError> {
    let mut article = match parse_article(&state, user.id, &form).await {
        Ok((article, _)) => article,
        Err(error) => {
            let errors = field_errors(layout.lang, error)?;
            return editor(layout, "/editor".into(), form, errors);
        }
    };
    for _ in 0..SLUG_ATTEMPTS {
        if articles::insert(&state.db, article.clone())
            .await?
            .is_some()
        {
            return Ok(Redirect::to(&article_href(&article.slug)).into_response());
        }
        article.slug = domain::slugify(&article.title);
    }
    Err(AppError::Internal(anyhow::anyhow!(
        "no free slug after {SLUG_ATTEMPTS} attempts"
    ))
    .into())
}

/// The signed-in user as [`crate::community::moderation`] sees them.
pub fn actor(user: &WebUser) -> Actor {
    Actor {
        id: user.id,
        admin: user.is_admin(),
    }
}

/// The article's id and title if `user` wrote it: 404 before 403, as in the API.
async fn owned_article(
    state: &AppState,
    slug: &str,
    user: &WebUser,
) -> Result<(i64, String), PageError> {
    let (id, author_id, title) = articles::owner(&state.db, slug)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    if author_id != user.id {
        return Err(AppError::Forbidden.into());
    }
    Ok((id, title))
}

/// `POST /editor/{slug}`: saves the author's changes; a new title gives a new slug.
pub async fn update_article(
    State(state): State<AppState>,
    user: WebUser,
    layout: Layout,
    Path(slug): Path<String>,
    PageForm(form): PageForm<ArticleForm>,
) -> Result<Response, PageError> {
    let (id, current_title) = owned_article(&state, &slug, &user).await?;
    let (parsed, images) = match parse_article(&state, user.id, &form).await {
        Ok(parsed) => parsed,
        Err(error) => {
            let errors = field_errors(layout.lang, error)?;
            return editor(layout, format!("/editor/{}", segment(&slug)), form, errors);
        }
    };
    let retitled = parsed.title != current_title;
    let mut changes = ArticleChanges {
        title: Some(parsed.title.clone()),
        description: Some(parsed.description),
        body: Some(parsed.body),
        tags: Some(parsed.tags),
        category: Some(parsed.category),
        images,
        ..ArticleChanges::default()
    };
    for _ in 0..SLUG_ATTEMPTS {
        changes.slug = retitled.then(|| domain::slugify(&parsed.title));
        if articles::update(&state.db, id, &changes).await? {
            let slug = changes.slug.as_deref().unwrap_or(&slug);
            return Ok(Redirect::to(&article_href(slug)).into_response());
        }
    }
    Err(AppError::Internal(anyhow::anyhow!(
        "no free slug after {SLUG_ATTEMPTS} attempts"
    ))
    .into())
}

/// `POST /articles/{slug}/delete` (its author or an admin).
pub async fn delete_article(
    State(state): State<AppState>,
    user: WebUser,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let (id, author_id, _) = articles::owner(&state.db, &slug)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    if !may_delete(author_id, actor(&user)) {
        return Err(AppError::Forbidden.into());
    }
    articles::delete(&state.db, id).await?;
    Ok(Redirect::to("/").into_response())
}

#[derive(Debug, Deserialize)]
pub struct CommentForm {
    #[serde(default)]
    body: String,
    /// The top-level comment this replies to; empty for a new thread.
    #[serde(default)]
    parent: String,
}

async fn article_id(state: &AppState, slug: &str) -> Result<i64, PageError> {
    Ok(articles::owner(&state.db, slug)
        .await?
        .map(|(id, _, _)| id)
        .ok_or(AppError::NotFound("article"))?)
}

/// A comment's text, or a 422 page naming the problem.
fn comment_text(body: &str) -> Result<String, PageError> {
    domain::required_text(Some(body), domain::MAX_COMMENT)
        .map_err(|message| AppError::invalid("comment", message).into())
}

/// `POST /articles/{slug}/comments`: a comment, or a reply when `parent` is set.
pub async fn add_comment(
    State(state): State<AppState>,
    user: WebUser,
    Path(slug): Path<String>,
    PageForm(form): PageForm<CommentForm>,
) -> Result<Response, PageError> {
    let article_id = article_id(&state, &slug).await?;
    let text = comment_text(&form.body)?;
    let id = match form.parent.trim() {
        "" => comments::insert(&state.db, article_id, user.id, &text).await?,
        parent => {
            let parent: i64 = parent
                .parse()
                .map_err(|_| PageError::bad_request("parent is not a comment id"))?;
            comments::insert_reply(&state.db, article_id, user.id, parent, &text)
                .await?
                .ok_or(AppError::NotFound("comment"))?
        }
    };
    Ok(Redirect::to(&format!("{}#comment-{id}", article_href(&slug))).into_response())
}

/// The comment's id if `user` wrote it, on this article: 404 before 403.
async fn owned_comment(
    state: &AppState,
    slug: &str,
    comment_id: &str,
    user: &WebUser,
) -> Result<i64, PageError> {
    let article_id = article_id(state, slug).await?;
    let comment_id: i64 = comment_id
        .parse()
        .map_err(|_| AppError::NotFound("comment"))?;
    let author = comments::author_of(&state.db, article_id, comment_id)
        .await?
        .ok_or(AppError::NotFound("comment"))?;
    if author != user.id {
        return Err(AppError::Forbidden.into());
    }
    Ok(comment_id)
}

/// `POST /articles/{slug}/comments/{id}/edit` (author only).
pub async fn edit_comment(
    State(state): State<AppState>,
    user: WebUser,
    Path((slug, comment_id)): Path<(String, String)>,
    PageForm(form): PageForm<CommentForm>,
) -> Result<Response, PageError> {
    let id = owned_comment(&state, &slug, &comment_id, &user).await?;
    let text = comment_text(&form.body)?;
    comments::update(&state.db, id, &text).await?;
    Ok(Redirect::to(&format!("{}#comment-{id}", article_href(&slug))).into_response())
}

/// `POST /articles/{slug}/comments/{id}/delete` (its author or an admin; its replies go
/// with it).
pub async fn delete_comment(
    State(state): State<AppState>,
    user: WebUser,
    Path((slug, comment_id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let article_id = article_id(&state, &slug).await?;
    let id: i64 = comment_id
        .parse()
        .map_err(|_| AppError::NotFound("comment"))?;
    let author = comments::author_of(&state.db, article_id, id)
        .await?
        .ok_or(AppError::NotFound("comment"))?;
    if !may_delete(author, actor(&user)) {
        return Err(AppError::Forbidden.into());
    }
    comments::delete(&state.db, id).await?;
    Ok(Redirect::to(&format!("{}#comments", article_href(&slug))).into_response())
}

#[derive(Debug, Deserialize)]
pub struct ToggleForm {
    /// `1` to turn on, `0` to turn off.
    #[serde(default)]
    on: String,
}

impl ToggleForm {
    fn on(&self) -> Result<bool, PageError> {
        match self.on.as_str() {
            "1" => Ok(true),
            "0" => Ok(false),
            _ => Err(PageError::bad_request("on must be 1 or 0")),
        }
    }
}

/// `POST /articles/{slug}/favorite` with `on=1|0`.
pub async fn favorite(
    State(state): State<AppState>,
    user: WebUser,
    Path(slug): Path<String>,
    PageForm(form): PageForm<ToggleForm>,
) -> Result<Response, PageError> {
    let on = form.on()?;
    let id = article_id(&state, &slug).await?;
    articles::set_favorite(&state.db, user.id, id, on).await?;
    Ok(Redirect::to(&article_href(&slug)).into_response())
}

/// `POST /profiles/{username}/follow` with `on=1|0`.
pub async fn follow(
    State(state): State<AppState>,
    user: WebUser,
    Path(username): Path<String>,
    PageForm(form): PageForm<ToggleForm>,
) -> Result<Response, PageError> {
    let on = form.on()?;
    let profile = users::profile(&state.db, &username, user.id)
        .await?
        .ok_or(AppError::NotFound("profile"))?;
    if profile.id == user.id {
        return Err(PageError::bad_request("you cannot follow yourself"));
    }
    if on {
        users::follow(&state.db, user.id, profile.id).await?;
    } else {
        users::unfollow(&state.db, user.id, profile.id).await?;
    }
    Ok(Redirect::to(&format!("/profiles/{}", segment(&username))).into_response())
}

#[derive(Template)]
#[template(path = "profile.html")]
pub struct ProfilePage {
    pub layout: Layout,
    pub title: String,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub team: Option<TeamLink>,
    pub following: bool,
    pub own: bool,
    pub articles: Vec<ArticleCard>,
    pub total: i64,
    pub pages: Vec<PageLink>,
}

#[derive(Debug, Deserialize)]
pub struct ProfileQuery {
    page: Option<String>,
}

/// `GET /profiles/{username}`: avatar, bio, team, follow button and the user's articles.
pub async fn profile(
    State(state): State<AppState>,
    layout: Layout,
    Path(username): Path<String>,
    PageQuery(query): PageQuery<ProfileQuery>,
) -> Result<Response, PageError> {
    let page = super::pages::page_number(query.page.as_deref())?;
    let viewer = layout.user.as_ref().map_or(0, |u| u.id);
    let row = users::profile(&state.db, &username, viewer)
        .await?
        .ok_or(AppError::NotFound("profile"))?;
    let filter = ArticleFilter {
        author: Some(row.username.clone()),
        limit: PROFILE_ARTICLES,
        offset: (page - 1) * PROFILE_ARTICLES,
        ..ArticleFilter::default()
    };
    let (list, total) =
        articles::list_ordered(&state.db, &filter, ArticleOrder::Newest, None, viewer).await?;
    if list.is_empty() && page > 1 {
        return Err(AppError::NotFound("page").into());
    }
    let base = format!("/profiles/{}?", segment(&row.username));
    let pages = page_numbers(&base, page, total, PROFILE_ARTICLES);
    let team = match &row.team {
        Some(key) => team_links(&state, layout.lang)
            .await?
            .into_iter()
            .find(|t| &t.key == key),
        None => None,
    };
    let cards = article_cards(&state, layout.lang, list).await?;
    Ok(render(&ProfilePage {
        title: row.username.clone(),
        own: viewer == row.id,
        layout,
        username: row.username,
        bio: row.bio,
        image: row.image,
        team,
        following: row.following,
        articles: cards,
        total,
        pages,
    })?
    .into_response())
}

#[derive(Template)]
#[template(path = "settings.html")]
pub struct SettingsPage {
    pub layout: Layout,
    pub title: String,
    pub form: SettingsForm,
    pub teams: Vec<TeamLink>,
    pub errors: Vec<FieldError>,
    pub saved: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsForm {
    #[serde(default)]
    pub bio: String,
    /// A picture URL (the upload button fills it in).
    #[serde(default)]
    pub image: String,
    #[serde(default)]
    pub team: String,
}

#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    saved: Option<String>,
}

async fn settings_page(
    state: &AppState,
    layout: Layout,
    form: SettingsForm,
    errors: Vec<FieldError>,
    saved: bool,
) -> Result<Response, PageError> {
    let title = layout.t("settings.title").into_owned();
    let teams = team_links(state, layout.lang).await?;
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = render(&SettingsPage {
        layout,
        title,
        form,
        teams,
        errors,
        saved,
    })?;
    Ok((status, page).into_response())
}

/// `GET /settings`
pub async fn settings(
    State(state): State<AppState>,
    user: WebUser,
    layout: Layout,
    PageQuery(query): PageQuery<SavedQuery>,
) -> Result<Response, PageError> {
    let row = users::find_by_id(&state.db, user.id)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    let form = SettingsForm {
        bio: row.bio.unwrap_or_default(),
        image: row.image.unwrap_or_default(),
        team: row.team.unwrap_or_default(),
    };
    settings_page(&state, layout, form, Vec::new(), query.saved.is_some()).await
}

/// `POST /settings`: bio, picture and team, with the API's rules (`PUT /api/user`).
pub async fn save_settings(
    State(state): State<AppState>,
    user: WebUser,
    layout: Layout,
    PageForm(form): PageForm<SettingsForm>,
) -> Result<Response, PageError> {
    let mut problems = Problems::default();
    let mut changes = users::UserChanges {
        bio: problems.check("bio", domain::parse_optional(&form.bio, domain::MAX_BIO)),
        image: problems.check(
            "image",
            domain::parse_optional(&form.image, domain::MAX_IMAGE_URL),
        ),
        ..users::UserChanges::default()
    };
    match form.team.trim() {
        "" => changes.team = Some(None),
        key if users::team_exists(&state.db, key).await? => {
            changes.team = Some(Some(key.to_string()))
        }
        _ => problems.add("team", "is not a KBO team key"),
    }
    if let Err(error) = problems.finish() {
        let errors = field_errors(layout.lang, error)?;
        return settings_page(&state, layout, form, errors, false).await;
    }
    users::update(&state.db, user.id, changes)
        .await?
        .ok_or(AppError::NotFound("user"))?;
    Ok(Redirect::to("/settings?saved=1").into_response())
}
