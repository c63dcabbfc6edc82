//! Registry credentials users keep for their services' images. With the image executor, a
//! service's `image_pull_secrets` name its owner's credentials here, as on Kubernetes they
//! name Secrets of type `kubernetes.io/dockerconfigjson`. Passwords are stored like the
//! services' secrets and never answered back.

use model::registries::{NewRegistryCredential, RegistryCredential};
use model::service::validate::dns_subdomain;
use model::{AppError, AppResult};

use crate::access::Caller;
use crate::db::Database;

/// Longest user name or password kept; registries' tokens are well below it.
const MAX_SECRET: usize = 8 * 1024;

/// Stores (or replaces) the caller's credential `name`.
pub async fn save(
    db: &Database,
    caller: &Caller,
    name: &str,
    new: NewRegistryCredential,
) -> AppResult<RegistryCredential> {
    dns_subdomain(name).map_err(|why| AppError::bad_request("name", why))?;
    let server = images::registry_host(&new.server);
    if server.is_empty() || server.contains(char::is_whitespace) {
        return Err(AppError::bad_request(
            "server",
            format!("{:?} is not a registry address (host[:port])", new.server),
        ));
    }
    for (field, value) in [("username", &new.username), ("password", &new.password)] {
        if value.is_empty() || value.len() > MAX_SECRET {
            return Err(AppError::bad_request(
                field,
                format!("must be 1 to {MAX_SECRET} bytes"),
            ));
        }
    }
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM registry_credentials WHERE owner = $1 AND name = $2")
        .bind(&caller.id)
        .bind(name)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO registry_credentials (owner, name, server, username, password) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&caller.id)
    .bind(name)
    .bind(&server)
    .bind(&new.username)
    .bind(&new.password)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    tracing::info!(owner = %caller.id, %name, %server, "registry credentials saved");
    Ok(RegistryCredential {
        name: name.to_string(),
        server,
        username: new.username,
    })
}

/// The caller's credentials, without their passwords.
pub async fn list(db: &Database, caller: &Caller) -> AppResult<Vec<RegistryCredential>> {
    Ok(sqlx::query_as(
        "SELECT name, server, username FROM registry_credentials WHERE owner = $1 ORDER BY name",
    )
    .bind(&caller.id)
    .fetch_all(db.pool())
    .await?)
}

pub async fn delete(db: &Database, caller: &Caller, name: &str) -> AppResult<()> {
    let deleted = sqlx::query("DELETE FROM registry_credentials WHERE owner = $1 AND name = $2")
        .bind(&caller.id)
        .bind(name)
        .execute(db.pool())
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(AppError::NotFound(format!(
            "no registry credentials named {name:?}"
        )));
    }
    Ok(())
}

/// Refuses `image_pull_secrets` that name none of `owner`'s credentials, field by field.
pub async fn check_names(db: &Database, owner: &str, names: &[String]) -> AppResult<()> {
    for (i, name) in names.iter().enumerate() {
        let found =
            sqlx::query("SELECT 1 FROM registry_credentials WHERE owner = $1 AND name = $2")
                .bind(owner)
                .bind(name)
                .fetch_optional(db.pool())
                .await?;
        if found.is_none() {
            return Err(AppError::bad_request(
                format!("image_pull_secrets[{i}]"),
                format!(
                    "you have no registry credentials named {name:?} (PUT /system/registry-credentials/{name})"
                ),
            ));
        }
    }
    Ok(())
}

/// What a job of `owner`'s service signs in to its image's registry with: the first of the
/// named credentials for that registry. None: an anonymous pull.
pub async fn for_image(
    db: &Database,
    owner: &str,
    names: &[String],
    image: &str,
) -> AppResult<Option<images::Credentials>> {
    if names.is_empty() {
        return Ok(None);
    }
    let Ok(registry) = images::registry_of(image) else {
        return Ok(None); // the pull says why
    };
    for name in names {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT username, password FROM registry_credentials WHERE owner = $1 AND name = $2 AND server = $3",
        )
        .bind(owner)
        .bind(name)
        .bind(&registry)
        .fetch_optional(db.pool())
        .await?;
        if let Some((username, password)) = row {
            return Ok(Some(images::Credentials { username, password }));
        }
    }
    Ok(None)
}
