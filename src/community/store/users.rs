//! SQL for users, profiles and follows.

use sqlx::FromRow;

use crate::db::{now, Db};
use crate::error::{AppError, Result};
use crate::{on_read, on_write};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub team: Option<String>,
    pub role: String,
}

#[derive(Debug, Clone, FromRow)]
pub struct ProfileRow {
    pub id: i64,
    pub username: String,
    pub bio: Option<String>,
    pub image: Option<String>,
    pub team: Option<String>,
    pub following: bool,
}

pub struct NewUser<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub team: Option<&'a str>,
    pub role: &'a str,
}

/// Fields to change; `None` leaves a field as it is, `Some(None)` clears a nullable one.
#[derive(Default)]
pub struct UserChanges {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub bio: Option<Option<String>>,
    pub image: Option<Option<String>>,
    pub team: Option<Option<String>>,
}

const USER_COLUMNS: &str = "id, username, email, password_hash, bio, image, team, role";

pub async fn insert(db: &Db, user: NewUser<'_>) -> Result<UserRow> {
    let sql = format!(
        "INSERT INTO users (username, email, password_hash, team, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {USER_COLUMNS}"
    );
    let now = now();
    on_write!(db, pool => sqlx::query_as::<_, UserRow>(&sql)
        .bind(user.username)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(user.team)
        .bind(user.role)
        .bind(now)
        .fetch_one(pool)
        .await)
    .map_err(map_user_unique)
}

/// Names the field whose unique constraint failed, so a race between two registrations with
/// the same name still answers 422 on the right field.
fn map_user_unique(err: sqlx::Error) -> AppError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            let on_email = db.message().contains("email")
                || db.constraint().is_some_and(|c| c.contains("email"));
            let field = if on_email { "email" } else { "username" };
            return AppError::invalid(field, "has already been taken");
        }
    }
    err.into()
}

pub async fn find_by_email(db: &Db, email: &str) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
    Ok(
        on_read!(db, pool => sqlx::query_as::<_, UserRow>(&sql).bind(email).fetch_optional(pool).await)?,
    )
}

pub async fn find_by_id(db: &Db, id: i64) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    Ok(
        on_read!(db, pool => sqlx::query_as::<_, UserRow>(&sql).bind(id).fetch_optional(pool).await)?,
    )
}

/// Does a user with this id exist? A primary-key probe: the auth extractors run it on every
/// authenticated request.
pub async fn exists(db: &Db, id: i64) -> Result<bool> {
    Ok(
        on_read!(db, pool => sqlx::query_scalar::<_, i64>("SELECT id FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await)?
        .is_some(),
    )
}

/// Is `name` (a username or an email) taken by someone other than `except_id`?
pub async fn is_taken(db: &Db, column: TakenColumn, value: &str, except_id: i64) -> Result<bool> {
    let sql = match column {
        TakenColumn::Username => {
            "SELECT EXISTS(SELECT 1 FROM users WHERE username = $1 AND id <> $2)"
        }
        TakenColumn::Email => "SELECT EXISTS(SELECT 1 FROM users WHERE email = $1 AND id <> $2)",
    };
    Ok(
        on_read!(db, pool => sqlx::query_scalar::<_, bool>(sql).bind(value).bind(except_id).fetch_one(pool).await)?,
    )
}

#[derive(Clone, Copy)]
pub enum TakenColumn {
    Username,
    Email,
}

pub async fn update(db: &Db, id: i64, changes: UserChanges) -> Result<Option<UserRow>> {
    // COALESCE keeps the old value where no change was given; the `*_set` flags let a nullable
    // field be cleared to NULL explicitly.
    let sql = format!(
        "UPDATE users SET \
           username = COALESCE($2, username), \
           email = COALESCE($3, email), \
           password_hash = COALESCE($4, password_hash), \
           bio = CASE WHEN $5 THEN $6 ELSE bio END, \
           image = CASE WHEN $7 THEN $8 ELSE image END, \
           team = CASE WHEN $9 THEN $10 ELSE team END, \
           updated_at = $11 \
         WHERE id = $1 RETURNING {USER_COLUMNS}"
    );
    let (bio_set, bio) = split_nullable(changes.bio);
    let (image_set, image) = split_nullable(changes.image);
    let (team_set, team) = split_nullable(changes.team);
    on_write!(db, pool => sqlx::query_as::<_, UserRow>(&sql)
        .bind(id)
        .bind(&changes.username)
        .bind(&changes.email)
        .bind(&changes.password_hash)
        .bind(bio_set)
        .bind(&bio)
        .bind(image_set)
        .bind(&image)
        .bind(team_set)
        .bind(&team)
        .bind(now())
        .fetch_optional(pool)
        .await)
    .map_err(map_user_unique)
}

fn split_nullable(change: Option<Option<String>>) -> (bool, Option<String>) {
    match change {
        Some(value) => (true, value),
        None => (false, None),
    }
}

pub async fn profile(db: &Db, username: &str, viewer_id: i64) -> Result<Option<ProfileRow>> {
    let sql = "SELECT u.id, u.username, u.bio, u.image, u.team, \
               EXISTS(SELECT 1 FROM follows f WHERE f.follower_id = $2 AND f.followee_id = u.id) AS following \
               FROM users u WHERE u.username = $1";
    Ok(
        on_read!(db, pool => sqlx::query_as::<_, ProfileRow>(sql).bind(username).bind(viewer_id).fetch_optional(pool).await)?,
    )
}

pub async fn follow(db: &Db, follower_id: i64, followee_id: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query(
        "INSERT INTO follows (follower_id, followee_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(follower_id)
        .bind(followee_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn unfollow(db: &Db, follower_id: i64, followee_id: i64) -> Result<()> {
    on_write!(db, pool => sqlx::query("DELETE FROM follows WHERE follower_id = $1 AND followee_id = $2")
        .bind(follower_id)
        .bind(followee_id)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub async fn team_exists(db: &Db, key: &str) -> Result<bool> {
    Ok(
        on_read!(db, pool => sqlx::query_scalar::<_, bool>("SELECT EXISTS(SELECT 1 FROM teams WHERE key = $1)")
        .bind(key)
        .fetch_one(pool)
        .await)?,
    )
}

#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TeamRow {
    pub key: String,
    pub name_ko: String,
    pub name_en: String,
    pub color: String,
    pub stadium: String,
}

pub async fn teams(db: &Db) -> Result<Vec<TeamRow>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, TeamRow>(
        "SELECT key, name_ko, name_en, color, stadium FROM teams ORDER BY key")
        .fetch_all(pool)
        .await)?)
}

/// Sets a user's role (`fan`, `store_owner` or `admin`). `false` if there is no such user.
pub async fn set_role(db: &Db, username: &str, role: &str) -> Result<bool> {
    let changed = on_write!(db, pool => sqlx::query("UPDATE users SET role = $2, updated_at = $3 WHERE username = $1")
        .bind(username)
        .bind(role)
        .bind(now())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(changed == 1)
}

/// The roles a user can have.
pub const ROLES: [&str; 3] = ["fan", "store_owner", "admin"];
