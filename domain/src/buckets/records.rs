//! The `buckets` table, and the only code that reads or writes it: who owns each bucket, the
//! service whose creation made it, and who it is shared with.

use crate::access::{ADMIN_OWNER, Caller};
use crate::db::Database;
use model::columns::JsonList;
use model::service::Visibility;
use model::{AppResult, Timestamp};

/// What the platform records about a bucket.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BucketRecord {
    pub name: String,
    pub owner: String,
    /// The service whose creation made it.
    #[sqlx(rename = "created_by")]
    pub service: Option<String>,
    pub visibility: Visibility,
    #[sqlx(try_from = "JsonList")]
    pub allowed_users: Vec<String>,
}

/// The record of a bucket; buckets made outside the platform count as the admin's.
pub async fn record(db: &Database, bucket: &str) -> AppResult<BucketRecord> {
    let row = sqlx::query_as(
        "SELECT name, owner, created_by, visibility, allowed_users FROM buckets WHERE name = $1",
    )
    .bind(bucket)
    .fetch_optional(db.pool())
    .await?;
    Ok(match row {
        Some(record) => record,
        None => BucketRecord {
            name: bucket.to_string(),
            owner: ADMIN_OWNER.into(),
            service: None,
            visibility: Visibility::Private,
            allowed_users: Vec::new(),
        },
    })
}

impl BucketRecord {
    pub fn usable_by(&self, caller: &Caller) -> bool {
        caller.may_use(&self.owner, self.visibility, &self.allowed_users)
    }
}

/// Who may use a bucket besides its owner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sharing {
    pub visibility: Visibility,
    pub allowed_users: Vec<String>,
}

impl Sharing {
    fn allowed_users_column(&self) -> JsonList {
        JsonList(self.allowed_users.clone())
    }
}

/// Records a new bucket; false (and nothing written) when it has a record already.
pub async fn insert(
    db: &Database,
    bucket: &str,
    owner: &str,
    created_by: Option<&str>,
    sharing: &Sharing,
    now: Timestamp,
) -> AppResult<bool> {
    let done = sqlx::query(
        "INSERT INTO buckets (name, owner, created_by, created_at, visibility, allowed_users)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(bucket)
    .bind(owner)
    .bind(created_by)
    .bind(now)
    .bind(sharing.visibility)
    .bind(sharing.allowed_users_column())
    .execute(db.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Sets a bucket's sharing, recording it for `owner` if it had no record (made outside the
/// platform).
pub async fn set_sharing(
    db: &Database,
    bucket: &str,
    owner: &str,
    sharing: &Sharing,
    now: Timestamp,
) -> AppResult<()> {
    sqlx::query(
        "INSERT INTO buckets (name, owner, created_by, created_at, visibility, allowed_users)
         VALUES ($1, $2, NULL, $3, $4, $5)
         ON CONFLICT (name) DO UPDATE SET visibility = $4, allowed_users = $5",
    )
    .bind(bucket)
    .bind(owner)
    .bind(now)
    .bind(sharing.visibility)
    .bind(sharing.allowed_users_column())
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Shares every bucket a service made as the service itself is shared.
pub async fn share_like_service(db: &Database, service: &str, sharing: &Sharing) -> AppResult<()> {
    sqlx::query("UPDATE buckets SET visibility = $1, allowed_users = $2 WHERE created_by = $3")
        .bind(sharing.visibility)
        .bind(sharing.allowed_users_column())
        .bind(service)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn owner_of(db: &Database, bucket: &str) -> AppResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT owner FROM buckets WHERE name = $1")
            .bind(bucket)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Buckets the service's creation made.
pub async fn created_by(db: &Database, service: &str) -> AppResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT name FROM buckets WHERE created_by = $1 ORDER BY name")
            .bind(service)
            .fetch_all(db.pool())
            .await?,
    )
}

/// Forgets which service made `bucket`: no service deletion removes it any more.
pub async fn release(db: &Database, bucket: &str) -> AppResult<()> {
    sqlx::query("UPDATE buckets SET created_by = NULL WHERE name = $1")
        .bind(bucket)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Records `service` as the creator of `bucket`, so deleting that service removes it.
pub async fn hand_over(db: &Database, bucket: &str, service: &str) -> AppResult<()> {
    sqlx::query("UPDATE buckets SET created_by = $1 WHERE name = $2")
        .bind(service)
        .bind(bucket)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn delete(db: &Database, bucket: &str) -> AppResult<()> {
    sqlx::query("DELETE FROM buckets WHERE name = $1")
        .bind(bucket)
        .execute(db.pool())
        .await?;
    Ok(())
}
