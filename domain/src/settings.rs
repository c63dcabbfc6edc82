//! Settings the admin changes at run time (`PUT /system/config`), stored in the platform's
//! database so every server applies the same: the image repositories services may use (and,
//! through [`read`] and [`write`], `quotas`' defaults).

use model::{AppError, AppResult};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::access::Caller;
use crate::db::Database;

const ALLOWED_IMAGES: &str = "allowed_image_repositories";

/// Entries at most, and characters per entry.
const MAX_ENTRIES: usize = 200;
const MAX_ENTRY: usize = 255;

/// The setting `name` as stored (JSON), or its default when it was never set.
pub(crate) async fn read<T: DeserializeOwned + Default>(db: &Database, name: &str) -> AppResult<T> {
    let stored: Option<String> =
        sqlx::query_scalar("SELECT value FROM platform_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(db.pool())
            .await?;
    Ok(stored
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default())
}

/// Stores the setting `name` (as JSON), replacing what was there.
pub(crate) async fn write<T: Serialize>(db: &Database, name: &str, value: &T) -> AppResult<()> {
    let json = serde_json::to_string(value).map_err(|e| AppError::internal(name, e))?;
    sqlx::query(
        "INSERT INTO platform_settings (name, value) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(name)
    .bind(json)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The repositories services may pull from; empty: any.
pub async fn allowed_images(db: &Database) -> AppResult<Vec<String>> {
    read(db, ALLOWED_IMAGES).await
}

/// Replaces the allowed repositories (the admin only); returns them as stored.
pub async fn set_allowed_images(
    db: &Database,
    caller: &Caller,
    entries: Vec<String>,
) -> AppResult<Vec<String>> {
    if !caller.admin {
        return Err(AppError::Forbidden(
            "only the admin may change the platform's configuration".into(),
        ));
    }
    if entries.len() > MAX_ENTRIES {
        return Err(AppError::bad_request(
            ALLOWED_IMAGES,
            format!("at most {MAX_ENTRIES} entries"),
        ));
    }
    let mut kept: Vec<String> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let entry = entry.trim().trim_end_matches('/').to_string();
        if entry.is_empty()
            || entry.len() > MAX_ENTRY
            || entry.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(AppError::bad_request(
                format!("{ALLOWED_IMAGES}[{i}]"),
                format!(
                    "must be a repository or prefix such as ghcr.io/grycap or docker.io/library \
                     (1-{MAX_ENTRY} characters, no spaces)"
                ),
            ));
        }
        if !kept.contains(&entry) {
            kept.push(entry);
        }
    }
    write(db, ALLOWED_IMAGES, &kept).await?;
    tracing::info!(repositories = ?kept, "allowed image repositories changed");
    Ok(kept)
}

/// Refuses an image outside the allowed repositories, naming it.
pub async fn check_image(db: &Database, image: &str) -> AppResult<()> {
    let allowed = allowed_images(db).await?;
    if allowed.is_empty() {
        return Ok(());
    }
    let repository = images::repository_of(image).map_err(|m| AppError::bad_request("image", m))?;
    if allowed.iter().any(|entry| within(&repository, entry)) {
        return Ok(());
    }
    Err(AppError::bad_request(
        "image",
        format!(
            "{image:?} is not from an allowed repository ({}); ask the admin",
            allowed.join(", ")
        ),
    ))
}

/// Whether `repository` (`registry/path`, as [`images::repository_of`] names it) is `entry`
/// or under it, on whole path segments: `ghcr.io/grycap` admits `ghcr.io/grycap/cowsay`, not
/// `ghcr.io/grycapx/…` (upstream's substring test would admit `evil.example/ghcr.io/grycap`).
/// An entry without a registry names Docker Hub: `grycap` is `docker.io/grycap`, and a single
/// name is also an official image (`alpine` admits `docker.io/library/alpine`).
fn within(repository: &str, entry: &str) -> bool {
    let first = entry.split('/').next().unwrap_or_default();
    let has_registry = first.contains(['.', ':']) || first == "localhost";
    let candidates: Vec<String> = if has_registry {
        vec![entry.to_string()]
    } else if entry.contains('/') {
        vec![format!("docker.io/{entry}")]
    } else {
        vec![
            format!("docker.io/{entry}"),
            format!("docker.io/library/{entry}"),
        ]
    };
    candidates.iter().any(|prefix| {
        repository == prefix
            || repository
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(image: &str, entry: &str) -> bool {
        within(&images::repository_of(image).unwrap(), entry)
    }

    #[test]
    fn entries_admit_whole_repositories_and_what_is_under_them() {
        assert!(allowed("ghcr.io/grycap/cowsay:1", "ghcr.io/grycap"));
        assert!(allowed(
            "ghcr.io/grycap/cowsay@sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ghcr.io/grycap/cowsay"
        ));
        assert!(allowed("ghcr.io/grycap/cowsay", "ghcr.io"));
        assert!(allowed(
            "harbor.lan:8443/team/model",
            "harbor.lan:8443/team"
        ));
        assert!(!allowed("ghcr.io/grycapx/cowsay", "ghcr.io/grycap"));
        assert!(!allowed(
            "evil.example/ghcr.io/grycap/cowsay",
            "ghcr.io/grycap"
        ));
        assert!(!allowed("ghcr.io/other/cowsay", "ghcr.io/grycap"));
    }

    #[test]
    fn entries_without_a_registry_name_docker_hub() {
        assert!(allowed("alpine:3", "alpine"));
        assert!(allowed("alpine:3", "docker.io/library"));
        assert!(allowed("grycap/cowsay", "grycap"));
        assert!(allowed("docker.io/grycap/cowsay", "grycap/cowsay"));
        assert!(!allowed("ghcr.io/grycap/cowsay", "grycap"));
        assert!(!allowed("grycap/cowsay", "alpine"));
    }
}
