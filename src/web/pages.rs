//! The page handlers and their templates' data. Each handler reads through the stores the
//! API uses and fills one template struct (`templates/<page>.html`).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Html;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::Deserialize;

use super::forms::PageQuery;
use super::i18n::Lang;
use super::layout::Layout;
use super::markdown::to_safe_html;
use super::PageError;
use crate::app::AppState;
use crate::catalog::domain::Page as CatalogPage;
use crate::catalog::repo;
use crate::chat::domain::{ChatMessage, BACKLOG};
use crate::community::articles::Article;
use crate::community::domain::{self, Category};
use crate::community::store::articles::{self, ArticleFilter, ArticleOrder};
use crate::community::store::{comments, users};
use crate::error::AppError;

/// Articles per page on the home page.
const ARTICLES_PER_PAGE: i64 = 20;
/// Comments shown under an article (the newest; a reply whose comment is older than these
/// is not shown either).
const COMMENTS_SHOWN: i64 = 500;
/// Stores listed for one stadium (the catalogue's largest page).
const STORES_SHOWN: i64 = 100;
/// Fans' articles listed on a team page.
const TEAM_ARTICLES: i64 = 10;

type PageResult = Result<Html<String>, PageError>;

pub fn render(page: &impl Template) -> PageResult {
    page.render()
        .map(Html)
        .map_err(|err| PageError::from(AppError::Internal(anyhow::anyhow!("template: {err}"))))
}

/// What a path segment or query value keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment or query value, percent-encoded (slugs and tags may hold Hangul).
pub fn segment(value: &str) -> String {
    utf8_percent_encode(value, UNRESERVED).to_string()
}

/// `12345` → `12,345`.
pub(crate) fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

pub struct TeamLink {
    pub key: String,
    pub name: String,
    pub color: String,
}

/// The KBO teams, named in `lang`.
pub async fn team_links(state: &AppState, lang: Lang) -> Result<Vec<TeamLink>, PageError> {
    Ok(users::teams(&state.db)
        .await?
        .into_iter()
        .map(|team| TeamLink {
            key: team.key,
            name: match lang {
                Lang::Ko => team.name_ko,
                Lang::En => team.name_en,
            },
            color: team.color,
        })
        .collect())
}

/// A fan's team beside their name (`templates/badge.html`): the team's colour behind its
/// short name, so the team reads as text, not only as a colour (the colours are dark enough
/// for white text at 4.5:1), and its full name as the link's title.
pub struct TeamBadge {
    pub key: String,
    /// `LG`, `두산` / `Doosan`: the name's first word, in the page's language.
    pub short: String,
    pub name: String,
}

/// The teams, named in one language, to give each author a [`TeamBadge`].
pub struct Badges(Vec<TeamLink>);

impl Badges {
    pub async fn load(state: &AppState, lang: Lang) -> Result<Badges, PageError> {
        Ok(Badges(team_links(state, lang).await?))
    }

    /// The badge of a fan of `team` (none for a user without a team, or an unknown key).
    pub fn of(&self, team: Option<&str>) -> Option<TeamBadge> {
        let team = self.0.iter().find(|t| Some(t.key.as_str()) == team)?;
        Some(TeamBadge {
            key: team.key.clone(),
            short: team
                .name
                .split_whitespace()
                .next()
                .unwrap_or(&team.name)
                .to_string(),
            name: team.name.clone(),
        })
    }
}

pub struct ArticleCard {
    pub href: String,
    pub title: String,
    pub description: String,
    pub author: String,
    pub badge: Option<TeamBadge>,
    pub category: String,
    pub created: DateTime<Utc>,
    pub tags: Vec<String>,
    pub favorites: i64,
    pub views: i64,
    pub comments: i64,
    /// The cover's thumbnail (or the original while it is processed).
    pub cover: Option<String>,
}

/// Cards for a list of articles, with their comment counts (one query for the page).
pub async fn article_cards(
    state: &AppState,
    lang: Lang,
    list: Vec<Article>,
) -> Result<Vec<ArticleCard>, PageError> {
    let ids: Vec<i64> = list.iter().map(|a| a.id).collect();
    let counts = comments::counts(&state.db, &ids).await?;
    let badges = Badges::load(state, lang).await?;
    Ok(list
        .into_iter()
        .map(|a| ArticleCard {
            href: format!("/articles/{}", segment(&a.slug)),
            comments: counts
                .iter()
                .find(|(id, _)| *id == a.id)
                .map_or(0, |(_, n)| *n),
            views: a.view_count + state.views.unflushed(a.id),
            title: a.title,
            description: a.description,
            badge: badges.of(a.author.team.as_deref()),
            author: a.author.username,
            category: a.category,
            created: a.created_at,
            tags: a.tag_list,
            favorites: a.favorites_count,
            cover: a.cover_image.and_then(|c| c.thumbnail_url.or(c.url)),
        })
        .collect())
}

/// A link in a row of numbered pages.
pub struct PageLink {
    pub number: i64,
    pub href: String,
    pub current: bool,
}

/// `?page=` as a number from 1; anything else is a 400 page.
pub fn page_number(raw: Option<&str>) -> Result<i64, PageError> {
    match raw.map(str::trim) {
        None | Some("") => Ok(1),
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=MAX_PAGE_NUMBER).contains(&n) => Ok(n),
            _ => Err(PageError::bad_request(format!(
                "page must be a number from 1 to {MAX_PAGE_NUMBER}"
            ))),
        },
    }
}

/// The highest `?page=` accepted: deep offsets cost the database a scan for nothing.
pub const MAX_PAGE_NUMBER: i64 = 1000;

/// Up to ten numbered pages around `current`; `base` ends in `?` or `&`.
pub fn page_numbers(base: &str, current: i64, total: i64, per_page: i64) -> Vec<PageLink> {
    let last = ((total + per_page - 1) / per_page).clamp(1, MAX_PAGE_NUMBER);
    let first = (current - 4).max(1);
    let end = (first + 9).min(last);
    (first..=end)
        .map(|number| PageLink {
            number,
            href: format!("{base}page={number}"),
            current: number == current,
        })
        .collect()
}

pub struct Tab {
    pub label: String,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub layout: Layout,
    pub title: String,
    pub teams: Vec<TeamLink>,
    pub tags: Vec<String>,
    pub tag: Option<String>,
    pub q: String,
    pub board: String,
    pub sort: String,
    pub boards: Vec<Tab>,
    pub sorts: Vec<Tab>,
    pub articles: Vec<ArticleCard>,
    pub total: i64,
    pub pages: Vec<PageLink>,
    /// The next page, if any (also reachable through the numbers).
    pub next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    tag: Option<String>,
    /// The API's full-text `q`.
    q: Option<String>,
    /// A board (category) key.
    board: Option<String>,
    /// `new` (default), `views` or `comments`.
    sort: Option<String>,
    page: Option<String>,
}

fn parse_sort(raw: &str) -> Result<ArticleOrder, PageError> {
    match raw {
        "" | "new" => Ok(ArticleOrder::Newest),
        "views" => Ok(ArticleOrder::MostViewed),
        "comments" => Ok(ArticleOrder::MostCommented),
        _ => Err(PageError::bad_request(
            "sort must be new, views or comments",
        )),
    }
}

/// A home-page address with these parameters (empty ones left out); ends so that another
/// `name=value` can be appended.
fn home_href(params: &[(&str, &str)]) -> String {
    let mut href = String::from("/?");
    for (name, value) in params {
        if !value.is_empty() {
            href.push_str(&format!("{name}={}&", segment(value)));
        }
    }
    href
}

/// `/`: the boards. A search box (`q`), board tabs, sort by newest / most viewed / most
/// commented, numbered pages; the tags and team rooms beside.
pub async fn home(
    State(state): State<AppState>,
    layout: Layout,
    PageQuery(query): PageQuery<HomeQuery>,
) -> PageResult {
    let tag = query.tag.filter(|t| !t.trim().is_empty());
    let q = query.q.unwrap_or_default().trim().to_string();
    if q.chars().count() > domain::MAX_TITLE {
        return Err(PageError::bad_request(format!(
            "the search is longer than {} characters",
            domain::MAX_TITLE
        )));
    }
    let board = query.board.unwrap_or_default().trim().to_string();
    let category = match board.as_str() {
        "" => None,
        key => Some(
            Category::parse(key)
                .map_err(|_| PageError::bad_request(format!("no board named {key}")))?
                .key()
                .to_string(),
        ),
    };
    let sort = query.sort.unwrap_or_default();
    let order = parse_sort(&sort)?;
    let page = page_number(query.page.as_deref())?;
    let filter = ArticleFilter {
        tag: tag.clone(),
        category,
        search: Some(q.clone()).filter(|q| !q.is_empty()),
        limit: ARTICLES_PER_PAGE,
        offset: (page - 1) * ARTICLES_PER_PAGE,
        ..ArticleFilter::default()
    };
    let viewer = layout.user.as_ref().map_or(0, |u| u.id);
    let (list, total) = {
        let _consistent = state.views.read_gate().await;
        articles::list_ordered(&state.db, &filter, order, None, viewer).await?
    };
    if list.is_empty() && page > 1 {
        return Err(AppError::NotFound("page").into());
    }
    let tag_text = tag.clone().unwrap_or_default();
    let base = home_href(&[
        ("q", &q),
        ("board", &board),
        ("tag", &tag_text),
        ("sort", &sort),
    ]);
    let pages = page_numbers(&base, page, total, ARTICLES_PER_PAGE);
    let next = (page * ARTICLES_PER_PAGE < total).then(|| format!("{base}page={}", page + 1));
    let mut boards = vec![Tab {
        label: layout.t("board.all").into_owned(),
        href: home_href(&[("q", &q), ("sort", &sort)]),
        current: board.is_empty(),
    }];
    boards.extend(Category::ALL.iter().map(|c| Tab {
        label: layout.t(&format!("board.{}", c.key())).into_owned(),
        href: home_href(&[("q", &q), ("board", c.key()), ("sort", &sort)]),
        current: board == c.key(),
    }));
    let sorts = [
        ("new", ArticleOrder::Newest),
        ("views", ArticleOrder::MostViewed),
        ("comments", ArticleOrder::MostCommented),
    ]
    .into_iter()
    .map(|(key, o)| Tab {
        label: layout.t(&format!("sort.{key}")).into_owned(),
        href: home_href(&[
            ("q", &q),
            ("board", &board),
            ("tag", &tag_text),
            ("sort", key),
        ]),
        current: o == order,
    })
    .collect();
    let teams = team_links(&state, layout.lang).await?;
    let cards = article_cards(&state, layout.lang, list).await?;
    render(&HomePage {
        title: layout.t("home.title").into_owned(),
        layout,
        teams,
        tags: articles::tags(&state.db).await?,
        tag,
        q,
        board,
        sort,
        boards,
        sorts,
        articles: cards,
        total,
        pages,
        next,
    })
}

/// A comment and, for a top-level one, its replies (oldest first, like a conversation).
pub struct CommentView {
    pub id: i64,
    pub author: String,
    pub badge: Option<TeamBadge>,
    pub created: DateTime<Utc>,
    pub body: String,
    pub own: bool,
    /// Its author or an admin (`community::moderation`) sees a delete button.
    pub can_delete: bool,
    pub replies: Vec<CommentView>,
}

#[derive(Template)]
#[template(path = "article.html")]
pub struct ArticlePage {
    pub layout: Layout,
    pub title: String,
    pub slug: String,
    pub author: String,
    pub badge: Option<TeamBadge>,
    pub own: bool,
    /// An admin sees a delete button on anyone's article.
    pub can_delete: bool,
    pub following: bool,
    pub category: String,
    pub created: DateTime<Utc>,
    pub tags: Vec<String>,
    pub favorites: i64,
    pub favorited: bool,
    pub views: i64,
    pub cover: Option<String>,
    /// Markdown rendered and sanitised: the one field the template does not escape.
    pub body_html: String,
    pub comments: Vec<CommentView>,
    pub comment_count: usize,
}

/// `/articles/{slug}`: one article (counted as a view), its body rendered, its comments
/// threaded one level deep, and the forms to favourite, follow and comment.
pub async fn article(
    State(state): State<AppState>,
    layout: Layout,
    Path(slug): Path<String>,
) -> PageResult {
    let viewer = layout.user.as_ref().map_or(0, |u| u.id);
    let actor = layout.user.as_ref().map(super::community::actor);
    let may_delete = |author_id: i64| {
        actor.is_some_and(|actor| crate::community::moderation::may_delete(author_id, actor))
    };
    let (article, views) = {
        let _consistent = state.views.read_gate().await;
        let article = articles::by_slug(&state.db, &slug, viewer)
            .await?
            .ok_or(AppError::NotFound("article"))?;
        let views = article.view_count + state.views.record(article.id);
        (article, views)
    };
    let rows = comments::list(&state.db, article.id, viewer, COMMENTS_SHOWN, 0).await?;
    let comment_count = rows.len();
    let badges = Badges::load(&state, layout.lang).await?;
    let view = |c: comments::CommentRow| CommentView {
        badge: badges.of(c.author_team.as_deref()),
        own: c.author_id == viewer,
        can_delete: may_delete(c.author_id),
        id: c.id,
        author: c.author_username,
        created: c.created_at,
        body: c.body,
        replies: Vec::new(),
    };
    // Newest threads first; replies under their comment, oldest first.
    let (replies, top): (Vec<_>, Vec<_>) = rows.into_iter().partition(|c| c.parent_id.is_some());
    let mut threads: Vec<CommentView> = top.into_iter().map(view).collect();
    for reply in replies.into_iter().rev() {
        let parent = reply.parent_id;
        if let Some(thread) = threads.iter_mut().find(|t| Some(t.id) == parent) {
            thread.replies.push(view(reply));
        }
    }
    let own = article.author.username == layout.user.as_ref().map_or("", |u| u.username.as_str());
    render(&ArticlePage {
        body_html: to_safe_html(article.body.as_deref().unwrap_or("")),
        can_delete: own || actor.is_some_and(|a| a.admin),
        own,
        layout,
        title: article.title,
        slug: article.slug,
        following: article.author.following,
        badge: badges.of(article.author.team.as_deref()),
        author: article.author.username,
        category: article.category,
        created: article.created_at,
        tags: article.tag_list,
        favorites: article.favorites_count,
        favorited: article.favorited,
        views,
        cover: article.cover_image.and_then(|c| c.url),
        comments: threads,
        comment_count,
    })
}

pub struct MessageView {
    pub author: String,
    pub badge: Option<TeamBadge>,
    pub created: DateTime<Utc>,
    pub body: String,
}

#[derive(Template)]
#[template(path = "team.html")]
pub struct TeamPage {
    pub layout: Layout,
    pub title: String,
    pub key: String,
    /// The team's name in the other language, beside the title.
    pub other_name: String,
    pub color: String,
    /// The room's recent messages, oldest first; the script adds new ones live.
    pub messages: Vec<MessageView>,
    /// The newest articles by the team's fans.
    pub articles: Vec<ArticleCard>,
    pub fans_articles: i64,
}

/// `/teams/{team}`: the team's chat room.
pub async fn team(
    State(state): State<AppState>,
    layout: Layout,
    Path(key): Path<String>,
) -> PageResult {
    let team = users::teams(&state.db)
        .await?
        .into_iter()
        .find(|t| t.key == key)
        .ok_or(AppError::NotFound("team"))?;
    let mut rows = crate::chat::store::page(&state.db, &key, None, BACKLOG).await?;
    rows.reverse();
    let filter = ArticleFilter {
        limit: TEAM_ARTICLES,
        ..ArticleFilter::default()
    };
    let viewer = layout.user.as_ref().map_or(0, |u| u.id);
    let (list, fans_articles) =
        articles::list_ordered(&state.db, &filter, ArticleOrder::Newest, Some(&key), viewer)
            .await?;
    let cards = article_cards(&state, layout.lang, list).await?;
    let badges = Badges::load(&state, layout.lang).await?;
    let (name, other_name) = match layout.lang {
        Lang::Ko => (team.name_ko, team.name_en),
        Lang::En => (team.name_en, team.name_ko),
    };
    render(&TeamPage {
        title: format!("{name} {}", layout.t("team.chat")),
        other_name,
        layout,
        articles: cards,
        fans_articles,
        key: team.key,
        color: team.color,
        messages: rows
            .into_iter()
            .map(ChatMessage::from)
            .map(|m| MessageView {
                badge: badges.of(m.author.team.as_deref()),
                author: m.author.username,
                created: m.created_at,
                body: m.body,
            })
            .collect(),
    })
}

pub struct StadiumLink {
    pub key: String,
    pub name: String,
    pub name_en: String,
    pub address: String,
    pub stores: i64,
}

#[derive(Template)]
#[template(path = "stadiums.html")]
pub struct StadiumsPage {
    pub layout: Layout,
    pub title: String,
    pub stadiums: Vec<StadiumLink>,
}

/// `/stadiums`: the ballparks and how many stores each has.
pub async fn stadiums(State(state): State<AppState>, layout: Layout) -> PageResult {
    let stadiums = repo::stadiums::list(&state.db)
        .await?
        .into_iter()
        .map(|s| StadiumLink {
            key: s.key,
            name: s.name_ko,
            name_en: s.name_en,
            address: s.address_ko,
            stores: s.stores_count,
        })
        .collect();
    render(&StadiumsPage {
        title: layout.t("stadiums.title").into_owned(),
        layout,
        stadiums,
    })
}

pub struct StoreLink {
    pub id: i64,
    pub name: String,
    pub location: String,
    pub inside: bool,
    pub rating: Option<String>,
}

#[derive(Template)]
#[template(path = "stadium.html")]
pub struct StadiumPage {
    pub layout: Layout,
    pub title: String,
    pub name_en: String,
    pub address: String,
    pub stores: Vec<StoreLink>,
    pub total: i64,
}

/// `/stadiums/{key}`: a stadium's stores.
pub async fn stadium(
    State(state): State<AppState>,
    layout: Layout,
    Path(key): Path<String>,
) -> PageResult {
    let stadium = repo::stadiums::by_key(&state.db, &key)
        .await?
        .ok_or(AppError::NotFound("stadium"))?;
    let filter = repo::stores::StoreFilter {
        stadium: Some(key),
        inside: None,
        page: CatalogPage {
            limit: STORES_SHOWN,
            offset: 0,
        },
    };
    let (rows, total) = repo::stores::list(&state.db, &filter).await?;
    render(&StadiumPage {
        layout,
        title: stadium.name_ko,
        name_en: stadium.name_en,
        address: stadium.address_ko,
        total,
        stores: rows
            .into_iter()
            .map(|s| StoreLink {
                id: s.id,
                rating: (s.rating_count > 0).then(|| {
                    format!(
                        "{:.1} ({})",
                        s.rating_sum as f64 / s.rating_count as f64,
                        s.rating_count
                    )
                }),
                name: s.name,
                location: s.location,
                inside: s.inside,
            })
            .collect(),
    })
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub title: String,
    pub status: u16,
    pub message: String,
    pub request_id: String,
}

#[cfg(test)]
mod tests {
    use super::{segment, thousands};

    #[test]
    fn prices_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(3000), "3,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(thousands(-4500), "-4,500");
    }

    #[test]
    fn slugs_are_percent_encoded_in_links() {
        assert_eq!(
            segment("직관-후기"),
            "%EC%A7%81%EA%B4%80-%ED%9B%84%EA%B8%B0"
        );
        assert_eq!(segment("a b/c?d"), "a%20b%2Fc%3Fd");
    }
}
