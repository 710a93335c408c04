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
use crate::community::store::articles::{self, ArticleFilter};
use crate::community::store::{comments, users};
use crate::error::AppError;

/// Articles per page on the home page.
const ARTICLES_PER_PAGE: i64 = 20;
/// Comments shown under an article (the newest).
const COMMENTS_SHOWN: i64 = 100;
/// Stores listed for one stadium (the catalogue's largest page).
const STORES_SHOWN: i64 = 100;

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

pub struct ArticleCard {
    pub href: String,
    pub title: String,
    pub description: String,
    pub author: String,
    pub created: DateTime<Utc>,
    pub tags: Vec<String>,
    pub favorites: i64,
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub layout: Layout,
    pub title: String,
    pub teams: Vec<TeamLink>,
    pub tags: Vec<String>,
    pub tag: Option<String>,
    pub articles: Vec<ArticleCard>,
    /// The link to the next (older) page, if there is one.
    pub older: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct HomeQuery {
    tag: Option<String>,
    before: Option<i64>,
}

/// `/`: the newest articles (by tag with `?tag=`), the tags, the team rooms.
pub async fn home(
    State(state): State<AppState>,
    layout: Layout,
    PageQuery(query): PageQuery<HomeQuery>,
) -> PageResult {
    let tag = query.tag.filter(|t| !t.trim().is_empty());
    let filter = ArticleFilter {
        tag: tag.clone(),
        before_id: query.before,
        limit: ARTICLES_PER_PAGE,
        ..ArticleFilter::default()
    };
    let page = articles::list(&state.db, &filter, 0).await?;
    let older = page.next_cursor.map(|cursor| match &tag {
        Some(tag) => format!("/?tag={}&before={cursor}", segment(tag)),
        None => format!("/?before={cursor}"),
    });
    let cards = page
        .articles
        .into_iter()
        .map(|a| ArticleCard {
            href: format!("/articles/{}", segment(&a.slug)),
            title: a.title,
            description: a.description,
            author: a.author.username,
            created: a.created_at,
            tags: a.tag_list,
            favorites: a.favorites_count,
        })
        .collect();
    let teams = team_links(&state, layout.lang).await?;
    render(&HomePage {
        title: layout.t("home.title").into_owned(),
        layout,
        teams,
        tags: articles::tags(&state.db).await?,
        tag,
        articles: cards,
        older,
    })
}

pub struct CommentView {
    pub author: String,
    pub created: DateTime<Utc>,
    pub body: String,
}

#[derive(Template)]
#[template(path = "article.html")]
pub struct ArticlePage {
    pub layout: Layout,
    pub title: String,
    pub author: String,
    pub created: DateTime<Utc>,
    pub tags: Vec<String>,
    pub favorites: i64,
    /// Markdown rendered and sanitised: the one field the template does not escape.
    pub body_html: String,
    pub comments: Vec<CommentView>,
}

/// `/articles/{slug}`: one article, its body rendered, and its newest comments.
pub async fn article(
    State(state): State<AppState>,
    layout: Layout,
    Path(slug): Path<String>,
) -> PageResult {
    let article = articles::by_slug(&state.db, &slug, 0)
        .await?
        .ok_or(AppError::NotFound("article"))?;
    let rows = comments::list(&state.db, article.id, 0, COMMENTS_SHOWN, 0).await?;
    render(&ArticlePage {
        layout,
        body_html: to_safe_html(article.body.as_deref().unwrap_or("")),
        title: article.title,
        author: article.author.username,
        created: article.created_at,
        tags: article.tag_list,
        favorites: article.favorites_count,
        comments: rows
            .into_iter()
            .map(|c| CommentView {
                author: c.author_username,
                created: c.created_at,
                body: c.body,
            })
            .collect(),
    })
}

pub struct MessageView {
    pub author: String,
    pub created: DateTime<Utc>,
    pub body: String,
}

#[derive(Template)]
#[template(path = "team.html")]
pub struct TeamPage {
    pub layout: Layout,
    pub title: String,
    pub key: String,
    pub name_en: String,
    pub color: String,
    /// The room's recent messages, oldest first; the script adds new ones live.
    pub messages: Vec<MessageView>,
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
    render(&TeamPage {
        title: format!("{} {}", team.name_ko, layout.t("team.chat")),
        layout,
        key: team.key,
        name_en: team.name_en,
        color: team.color,
        messages: rows
            .into_iter()
            .map(ChatMessage::from)
            .map(|m| MessageView {
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

pub struct MenuLine {
    pub name: String,
    pub price: String,
    pub available: bool,
    pub stock: i64,
}

#[derive(Template)]
#[template(path = "store.html")]
pub struct StorePage {
    pub layout: Layout,
    pub title: String,
    pub stadium: String,
    pub stadium_name: String,
    pub location: String,
    /// Seeded demo store: its prices and stock are made up, and the page says so.
    pub demo: bool,
    pub menu: Vec<MenuLine>,
}

/// `/stores/{id}`: a store's menu.
pub async fn store(
    State(state): State<AppState>,
    layout: Layout,
    Path(id): Path<String>,
) -> PageResult {
    // Not `Path<i64>`: its rejection is a plain-text 400, and `/stores/abc` is a missing page.
    let id: i64 = id.parse().map_err(|_| AppError::NotFound("store"))?;
    let store = repo::stores::by_id(&state.db, id)
        .await?
        .ok_or(AppError::NotFound("store"))?;
    let menu = repo::menu::list(&state.db, id)
        .await?
        .into_iter()
        .map(|item| MenuLine {
            name: item.name,
            price: format!("{}원", thousands(item.price_won)),
            available: item.available && item.stock > 0,
            stock: item.stock,
        })
        .collect();
    let stadium_name = repo::stadiums::by_key(&state.db, &store.stadium)
        .await?
        .map_or_else(|| store.stadium.clone(), |s| s.name_ko);
    render(&StorePage {
        layout,
        title: store.name,
        stadium_name,
        stadium: store.stadium,
        location: store.location,
        demo: store.demo,
        menu,
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
