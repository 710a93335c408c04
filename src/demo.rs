//! Reference and demo data, from `assets/demo/kbo.json` (facts about the KBO: teams, colours,
//! stadiums, food stands; compiled into the binary so a fresh machine needs nothing else).
//!
//! Reference data (the 10 teams and 9 stadiums) is loaded on every start, idempotently: a
//! fan's `team` and a store's `stadium` must name one, with or without the demo.
//!
//! Demo content comes in two parts. The demo *stores* (the 239 stands of kbo.json with their
//! menus) are seeded on every start with `demo` on, idempotently by their `source_pk`: only
//! stands not in the database yet are added, so an owner's changes to a seeded menu are never
//! undone. kbo.json has no prices or stock, so those are made up ([`demo_price`],
//! [`DEMO_STOCK`]) and the stores say `demo: true`. The rest (a few fans, a store owner,
//! articles, comments and reviews, all visibly made up) is loaded once, when the database
//! has no users yet.

use anyhow::Context;
use serde::Deserialize;

use crate::auth::Passwords;
use crate::catalog::domain::{Rating, Stock, Won};
use crate::catalog::repo::reviews::{self as review_store, NewReview};
use crate::catalog::repo::stores::{self as catalog_store, SeedItem, SeedStore};
use crate::community::domain::slugify;
use crate::community::store::articles::{self as article_store, NewArticle};
use crate::community::store::comments as comment_store;
use crate::community::store::users::{self as user_store, NewUser};
use crate::db::Db;
use crate::{on_read, on_write};

const KBO_JSON: &str = include_str!("../assets/demo/kbo.json");

#[derive(Deserialize)]
struct Kbo {
    teams: Vec<Team>,
    stadiums: Vec<Stadium>,
    stores: Vec<KboStore>,
}

#[derive(Deserialize)]
struct Stadium {
    key: String,
    name_ko: String,
    name_en: String,
    address_ko: String,
    lat: f64,
    lon: f64,
}

/// A food stand, as kbo.json has it: a name and a list of item names, no prices or stock.
#[derive(Deserialize)]
struct KboStore {
    source_pk: i64,
    stadium: String,
    inside: bool,
    name: String,
    location: String,
    lat: f64,
    lon: f64,
    items: Vec<String>,
}

#[derive(Deserialize)]
struct Team {
    key: String,
    name_ko: String,
    name_en: String,
    color: String,
    stadium: String,
}

fn kbo() -> anyhow::Result<Kbo> {
    serde_json::from_str(KBO_JSON).context("while reading the embedded kbo.json")
}

/// The KBO team keys (reference data, loaded on every start), for the OpenAPI document.
pub fn team_keys() -> Vec<String> {
    kbo()
        .map(|kbo| kbo.teams.into_iter().map(|t| t.key).collect())
        .unwrap_or_default()
}

/// The stadium keys (reference data), for the OpenAPI document.
pub fn stadium_keys() -> Vec<String> {
    kbo()
        .map(|kbo| kbo.stadiums.into_iter().map(|s| s.key).collect())
        .unwrap_or_default()
}

/// An optional team key in a request: one of [`team_keys`], or `""` or null for none.
pub fn team_key_schema() -> utoipa::openapi::schema::Object {
    crate::openapi::text::optional_key(team_keys())
}

pub async fn load_reference_data(db: &Db) -> anyhow::Result<()> {
    let kbo = kbo()?;
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        for team in &kbo.teams {
            sqlx::query(
                "INSERT INTO teams (key, name_ko, name_en, color, stadium) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (key) DO UPDATE SET name_ko = excluded.name_ko, name_en = excluded.name_en, \
                 color = excluded.color, stadium = excluded.stadium")
                .bind(&team.key)
                .bind(&team.name_ko)
                .bind(&team.name_en)
                .bind(&team.color)
                .bind(&team.stadium)
                .execute(&mut *tx)
                .await?;
        }
        for stadium in &kbo.stadiums {
            sqlx::query(
                "INSERT INTO stadiums (key, name_ko, name_en, address_ko, lat, lon) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (key) DO UPDATE SET name_ko = excluded.name_ko, name_en = excluded.name_en, \
                 address_ko = excluded.address_ko, lat = excluded.lat, lon = excluded.lon")
                .bind(&stadium.key)
                .bind(&stadium.name_ko)
                .bind(&stadium.name_en)
                .bind(&stadium.address_ko)
                .bind(stadium.lat)
                .bind(stadium.lon)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    })
    .context("while loading the KBO teams and stadiums")
}

/// Stock of every seeded menu item. Made up, like the prices.
pub const DEMO_STOCK: i64 = 50;

/// A made-up price for a demo menu item: 1,000 to 10,000 won in 500-won steps, from a hash
/// of the item's name (FNV-1a, so it is the same on every machine and every start, and the
/// same item costs the same at every stand). kbo.json has no prices; these are not real.
pub fn demo_price(item_name: &str) -> Won {
    let hash = item_name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    let steps = i64::try_from(hash % 19).unwrap_or(0);
    Won::parse(1_000 + steps * 500).expect("1,000 to 10,000 won is a valid price")
}

/// Seeds the demo stores with their menus (see the module note); logs how many were new.
async fn load_demo_stores(db: &Db, kbo: &Kbo) -> anyhow::Result<()> {
    let stock = Stock::parse(DEMO_STOCK).expect("the demo stock is in range");
    let stores: Vec<SeedStore> = kbo
        .stores
        .iter()
        .map(|store| SeedStore {
            source_pk: store.source_pk,
            stadium: store.stadium.clone(),
            name: store.name.clone(),
            location: store.location.clone(),
            inside: store.inside,
            lat: store.lat,
            lon: store.lon,
            menu: store
                .items
                .iter()
                .map(|item| SeedItem {
                    name: item.clone(),
                    price: demo_price(item),
                    stock,
                })
                .collect(),
        })
        .collect();
    let added = catalog_store::insert_seed(db, &stores)
        .await
        .context("while seeding the demo stores")?;
    if added > 0 {
        tracing::info!(
            stores = added,
            "seeded demo stores (prices and stock are made up)"
        );
    }
    Ok(())
}

/// The password of every demo account, printed in the README. Demo only.
pub const DEMO_PASSWORD: &str = "demo-password";

struct DemoFan {
    username: &'static str,
    team: &'static str,
    bio: &'static str,
}

const FANS: &[DemoFan] = &[
    DemoFan {
        username: "jamsil_bear",
        team: "doosan",
        bio: "(데모 계정) 잠실 1루 응원석 단골",
    },
    DemoFan {
        username: "sajik_seagull",
        team: "lotte",
        bio: "(데모 계정) 사직 노래방 전문",
    },
    DemoFan {
        username: "gwangju_tiger",
        team: "kia",
        bio: "(데모 계정) 챔필 직관러",
    },
    DemoFan {
        username: "daejeon_eagle",
        team: "hanwha",
        bio: "(데모 계정) 보살팬",
    },
];

struct DemoArticle {
    author: usize,
    category: &'static str,
    title: &'static str,
    description: &'static str,
    body: &'static str,
    tags: &'static [&'static str],
}

const ARTICLES: &[DemoArticle] = &[
    DemoArticle {
        author: 0,
        category: "meetup",
        title: "잠실 직관 같이 가요",
        description: "토요일 두산 vs LG, 1루 응원석",
        body: "직관모집합니다! 토요일 경기 같이 보실 분 댓글 주세요. (데모 글)",
        tags: &["두산", "잠실", "직관"],
    },
    DemoArticle {
        author: 1,
        category: "food",
        title: "사직 야구장 먹거리 추천",
        description: "사직에서 꼭 먹어야 할 것들",
        body: "3루 쪽 매점 어묵이 제일 맛있어요. 가격은 데모 값이라 실제와 다릅니다.",
        tags: &["롯데", "사직", "먹거리"],
    },
    DemoArticle {
        author: 2,
        category: "baseball",
        title: "오늘 경기 복기",
        description: "9회말 역전의 순간",
        body: "불펜 운영이 아쉬웠지만 마지막 타석은 최고였습니다. (데모 글)",
        tags: &["기아", "경기후기"],
    },
    DemoArticle {
        author: 3,
        category: "question",
        title: "대전 구장 주차 질문",
        description: "주차장 몇 시에 차나요?",
        body: "저녁 경기 기준으로 몇 시쯤 가야 주차할 수 있을까요? (데모 글)",
        tags: &["한화", "대전"],
    },
    DemoArticle {
        author: 0,
        category: "free",
        title: "Welcome to ballpark",
        description: "What this demo is",
        body: "Everything here is demo content: the fans, the posts and the comments are made up.",
        tags: &["welcome"],
    },
];

/// The demo store owner, and the stands (by `source_pk`) they manage.
const DEMO_OWNER: DemoFan = DemoFan {
    username: "jamsil_stand",
    team: "lg",
    bio: "(데모 계정) 잠실 매점 사장님. 가격과 재고는 데모 값입니다",
};
const DEMO_OWNED_STORES: &[i64] = &[209, 213, 217];

struct DemoReview {
    author: usize,
    store: i64,
    rating: i64,
    body: &'static str,
    hashtags: &'static [&'static str],
}

const REVIEWS: &[DemoReview] = &[
    DemoReview {
        author: 0,
        store: 213,
        rating: 5,
        body: "경기 전에 김밥 한 줄 #가성비 (데모 리뷰)",
        hashtags: &["맛집"],
    },
    DemoReview {
        author: 1,
        store: 213,
        rating: 4,
        body: "줄이 길지만 #맛집 인정 (데모 리뷰)",
        hashtags: &[],
    },
    DemoReview {
        author: 2,
        store: 217,
        rating: 3,
        body: "든든한 한식 #직관 (데모 리뷰)",
        hashtags: &["한식"],
    },
    DemoReview {
        author: 3,
        store: 209,
        rating: 5,
        body: "생딸기우유 최고 #디저트 (데모 리뷰)",
        hashtags: &["맛집"],
    },
    DemoReview {
        author: 1,
        store: 34,
        rating: 4,
        body: "사직 떡볶이는 여기 #분식 #치맥 (데모 리뷰)",
        hashtags: &[],
    },
];

pub async fn load_demo_content(db: &Db, passwords: &Passwords) -> anyhow::Result<()> {
    let kbo = kbo()?;
    load_demo_stores(db, &kbo).await?;
    let users: i64 = on_read!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await)?;
    if users > 0 {
        return Ok(());
    }
    tracing::info!("empty database: loading demo content");
    let hash = passwords.hash(DEMO_PASSWORD.to_string()).await?;
    let mut ids = Vec::new();
    for fan in FANS {
        let email = format!("{}@demo.ballpark.invalid", fan.username);
        let row = user_store::insert(
            db,
            NewUser {
                username: fan.username,
                email: &email,
                password_hash: &hash,
                team: Some(fan.team),
                role: "fan",
            },
        )
        .await?;
        user_store::update(
            db,
            row.id,
            user_store::UserChanges {
                bio: Some(Some(fan.bio.to_string())),
                ..Default::default()
            },
        )
        .await?;
        ids.push(row.id);
    }
    for (i, article) in ARTICLES.iter().enumerate() {
        let mut tags: Vec<String> = article.tags.iter().map(|t| t.to_string()).collect();
        tags.sort();
        let new = NewArticle {
            slug: slugify(article.title),
            title: article.title.into(),
            description: article.description.into(),
            body: article.body.into(),
            tags,
            category: article.category.into(),
            author_id: ids[article.author],
            images: Default::default(),
        };
        let id = article_store::insert(db, new)
            .await?
            .context("demo slug collision")?;
        let commenter = ids[(article.author + 1 + i) % ids.len()];
        comment_store::insert(db, id, commenter, "좋은 글 감사합니다! (데모 댓글)").await?;
        article_store::set_favorite(db, commenter, id, true).await?;
    }
    user_store::follow(db, ids[1], ids[0]).await?;
    load_demo_owner_and_reviews(db, &hash, &ids).await?;
    load_demo_admin(db, &hash).await
}

/// The demo admin, who sees `/admin` (the queue dashboard and moderation).
pub const DEMO_ADMIN: &str = "demo_admin";
/// The queue the demo's dead jobs are in; no worker serves it, so they stay dead until an
/// admin retries (they then wait, queued) or discards them.
pub const DEMO_QUEUE: &str = "demo";

/// The demo admin and a few dead jobs in [`DEMO_QUEUE`], so the dashboard has something to
/// show: each failed once, permanently, with a made-up error.
async fn load_demo_admin(db: &Db, hash: &str) -> anyhow::Result<()> {
    use crate::queue::{self, store as job_store, Backoff, JobError, NewJob};

    let email = format!("{DEMO_ADMIN}@demo.ballpark.invalid");
    let admin = user_store::insert(
        db,
        NewUser {
            username: DEMO_ADMIN,
            email: &email,
            password_hash: hash,
            team: None,
            role: "admin",
        },
    )
    .await?;
    user_store::update(
        db,
        admin.id,
        user_store::UserChanges {
            bio: Some(Some("(데모 계정) 운영자 / demo admin".to_string())),
            ..Default::default()
        },
    )
    .await?;
    const DEAD: &[(&str, &str)] = &[
        (
            "demo.newsletter",
            "(데모) SMTP 서버가 응답하지 않음: connection refused",
        ),
        ("demo.newsletter", "(demo) mailbox full: 552 5.2.2"),
        (
            "demo.thumbnail",
            "(데모) 원본 이미지가 없음: uploads/missing.jpg",
        ),
    ];
    for (n, (kind, _)) in DEAD.iter().enumerate() {
        queue::enqueue(
            db,
            NewJob::new(DEMO_QUEUE, *kind, serde_json::json!({ "demo": n + 1 })),
        )
        .await?;
    }
    let kinds: Vec<String> = DEAD.iter().map(|(kind, _)| kind.to_string()).collect();
    let claimed = job_store::claim(
        db,
        DEMO_QUEUE,
        &kinds,
        "demo-loader",
        std::time::Duration::from_secs(60),
        DEAD.len(),
    )
    .await?;
    for job in &claimed {
        let error = DEAD
            .iter()
            .enumerate()
            .find(|(n, _)| job.payload["demo"] == serde_json::json!(n + 1))
            .map_or("(demo) failed", |(_, (_, error))| error);
        queue::fail(db, job, &JobError::permanent(error), &Backoff::default()).await?;
    }
    Ok(())
}

/// The demo store owner (with their stands) and the demo fans' reviews.
async fn load_demo_owner_and_reviews(db: &Db, hash: &str, fans: &[i64]) -> anyhow::Result<()> {
    let email = format!("{}@demo.ballpark.invalid", DEMO_OWNER.username);
    let owner = user_store::insert(
        db,
        NewUser {
            username: DEMO_OWNER.username,
            email: &email,
            password_hash: hash,
            team: Some(DEMO_OWNER.team),
            role: "store_owner",
        },
    )
    .await?;
    user_store::update(
        db,
        owner.id,
        user_store::UserChanges {
            bio: Some(Some(DEMO_OWNER.bio.to_string())),
            ..Default::default()
        },
    )
    .await?;
    for &source_pk in DEMO_OWNED_STORES {
        if let Some(store_id) = catalog_store::id_by_source(db, source_pk).await? {
            catalog_store::set_owner(db, store_id, Some(owner.id)).await?;
        }
    }
    for review in REVIEWS {
        let Some(store_id) = catalog_store::id_by_source(db, review.store).await? else {
            continue;
        };
        let given: Vec<String> = review.hashtags.iter().map(|t| t.to_string()).collect();
        let hashtags = crate::catalog::domain::review_hashtags(&given, review.body)
            .map_err(|e| anyhow::anyhow!("demo review hashtags: {e}"))?;
        review_store::write(
            db,
            NewReview {
                store_id,
                author_id: fans[review.author],
                rating: Rating::parse(review.rating).map_err(anyhow::Error::msg)?,
                body: review.body,
                hashtags: &hashtags,
            },
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_prices_are_round_steps_of_500_won_and_the_same_for_the_same_item() {
        for item in ["김밥", "치킨", "생맥주", "편의점", ""] {
            let price = demo_price(item).get();
            assert!((1_000..=10_000).contains(&price), "{item}: {price}");
            assert_eq!(price % 500, 0, "{item}: {price}");
            assert_eq!(demo_price(item), demo_price(item));
        }
    }

    #[test]
    fn the_embedded_data_has_nine_stadiums_and_239_stores_with_menus() {
        let kbo = kbo().unwrap();
        assert_eq!(kbo.stadiums.len(), 9);
        assert_eq!(kbo.stores.len(), 239);
        assert!(kbo.stores.iter().all(|s| !s.items.is_empty()));
    }
}
