//! Reference and demo data, from `assets/demo/kbo.json` (facts about the KBO: teams, colours,
//! stadiums, food stands; compiled into the binary so a fresh machine needs nothing else).
//!
//! Reference data (the 10 teams) is loaded on every start, idempotently: a fan's `team` must
//! name one, with or without the demo. Demo content (a few fans, articles and comments, all
//! visibly made up) is loaded once, when the database has no users yet and `demo` is on.

use anyhow::Context;
use serde::Deserialize;

use crate::auth::Passwords;
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
        tx.commit().await?;
        Ok::<_, sqlx::Error>(())
    })
    .context("while loading the KBO teams")
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

pub async fn load_demo_content(db: &Db, passwords: &Passwords) -> anyhow::Result<()> {
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
    Ok(())
}
