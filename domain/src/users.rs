//! Users who signed in. The local admin and (later) OIDC users share one table.

use serde::{Deserialize, Serialize};

use super::db::Database;
use model::columns::JsonList;
use model::{AppResult, Timestamp};

/// Issuer recorded for the built-in admin account.
pub const LOCAL_ISSUER: &str = "local";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub issuer: String,
    pub subject: String,
    pub display_name: String,
    pub email: Option<String>,
    #[sqlx(try_from = "JsonList")]
    pub vos: Vec<String>,
    pub created_at: Timestamp,
    pub last_login_at: Timestamp,
}

/// What a sign-in tells us about a person.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub display_name: &'a str,
    pub email: Option<&'a str>,
    pub vos: &'a [String],
}

/// Records a sign-in: creates the user on first login, refreshes name, email and VOs after.
pub async fn record_login(db: &Database, who: &Identity<'_>, now: Timestamp) -> AppResult<User> {
    let user = sqlx::query_as::<_, User>(
        "INSERT INTO users (issuer, subject, display_name, email, vos, created_at, last_login_at)
         VALUES ($1, $2, $3, $4, $5, $6, $6)
         ON CONFLICT (issuer, subject) DO UPDATE
           SET display_name = excluded.display_name,
               email = excluded.email,
               vos = excluded.vos,
               last_login_at = excluded.last_login_at
         RETURNING id, issuer, subject, display_name, email, vos, created_at, last_login_at",
    )
    .bind(who.issuer)
    .bind(who.subject)
    .bind(who.display_name)
    .bind(who.email)
    .bind(JsonList(who.vos.to_vec()))
    .bind(now)
    .fetch_one(db.pool())
    .await?;
    Ok(user)
}

pub async fn find(db: &Database, id: i64) -> AppResult<Option<User>> {
    let user = sqlx::query_as::<_, User>(
        "SELECT id, issuer, subject, display_name, email, vos, created_at, last_login_at
         FROM users WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    Ok(user)
}
