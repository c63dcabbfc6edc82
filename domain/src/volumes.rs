//! Managed volumes: storage that outlives the jobs writing it, attached to services at a
//! mount path (a service's `volume`, upstream's `/system/volumes`). Each user names their own;
//! the executor keeps the storage (a directory of the data dir locally, a
//! PersistentVolumeClaim on Kubernetes). Which services use a volume is read from the
//! catalog, so an attachment cannot outlive its service.

use model::service::{Service, quantity};
use model::volumes::{
    Attachment, MADE_BY_API, MADE_BY_SERVICE, NewVolume, ServiceVolume, Volume, VolumeStatus,
};
use model::{AppError, AppResult, Timestamp};

use crate::access::Caller;
use crate::db::Database;
use crate::jobs::executor::{Executor, JobVolume};
use crate::services::Catalog;

/// What one user may have: how many volumes and how large each (`OSCAR_VOLUMES_PER_USER`,
/// `OSCAR_VOLUME_MAX_SIZE`; upstream's `VOLUME_MAX` and `VOLUME_MAX_DISK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub per_user: u64,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_user: 5,
            max_bytes: 5 << 30,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    owner: String,
    name: String,
    size: String,
    creation_mode: String,
    lifecycle_policy: String,
    created_by_service: String,
    size_bytes: i64,
}

const COLUMNS: &str =
    "owner, name, size, creation_mode, lifecycle_policy, created_by_service, size_bytes";

/// The caller's volumes with the services using them.
pub async fn list(
    db: &Database,
    catalog: &Catalog,
    executor: &dyn Executor,
    caller: &Caller,
) -> AppResult<Vec<Volume>> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM volumes WHERE owner = $1 ORDER BY name"
    ))
    .bind(&caller.id)
    .fetch_all(db.pool())
    .await?;
    let services = catalog.list(db).await?;
    let mut volumes = Vec::with_capacity(rows.len());
    for row in rows {
        volumes.push(volume(row, &services, executor).await);
    }
    Ok(volumes)
}

/// One of the caller's volumes; 404 when they have none of that name.
pub async fn get(
    db: &Database,
    catalog: &Catalog,
    executor: &dyn Executor,
    caller: &Caller,
    name: &str,
) -> AppResult<Volume> {
    let row = find(db, &caller.id, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    let services = catalog.list(db).await?;
    Ok(volume(row, &services, executor).await)
}

/// `POST /system/volumes`: a volume kept until deleted.
pub async fn create(
    db: &Database,
    catalog: &Catalog,
    executor: &dyn Executor,
    caller: &Caller,
    new: NewVolume,
) -> AppResult<Volume> {
    if let Err(why) = model::service::validate::dns_label(&new.name, 63) {
        return Err(AppError::bad_request("name", why));
    }
    make(
        db, executor, &caller.id, &new.name, &new.size, None, "retain",
    )
    .await?;
    get(db, catalog, executor, caller, &new.name).await
}

/// Deletes one of the caller's volumes and what it holds; refused while a service uses it.
pub async fn delete(
    db: &Database,
    catalog: &Catalog,
    executor: &dyn Executor,
    caller: &Caller,
    name: &str,
) -> AppResult<()> {
    let found = get(db, catalog, executor, caller, name).await?;
    if !found.attachments.is_empty() {
        let users: Vec<_> = found
            .attachments
            .iter()
            .map(|a| a.service_name.as_str())
            .collect();
        return Err(AppError::bad_request(
            "name",
            format!(
                "volume {name:?} is attached to {}: delete or change those services first",
                users.join(", ")
            ),
        ));
    }
    remove(db, executor, &caller.id, name).await
}

/// Before a service is stored: its `volume.size` makes the volume unless it exists, its
/// `volume.name` alone must name one of the owner's. A service may not change its volume
/// once made (`current`), as upstream.
pub async fn prepare_for(
    db: &Database,
    executor: &dyn Executor,
    service: &Service,
    current: Option<&Service>,
) -> AppResult<()> {
    let wanted = ServiceVolume::of(service);
    if let Some(current) = current
        && wanted != ServiceVolume::of(current)
    {
        return Err(AppError::bad_request(
            "volume",
            "cannot change once the service is created: delete and create the service again",
        ));
    }
    let Some(wanted) = wanted else {
        return Ok(());
    };
    let name = wanted.volume_name(&service.name);
    if find(db, &service.owner, &name).await?.is_some() {
        return Ok(());
    }
    if wanted.size.is_empty() {
        return Err(AppError::bad_request(
            "volume.name",
            format!("there is no volume named {name:?}: give a size to make it"),
        ));
    }
    make(
        db,
        executor,
        &service.owner,
        &name,
        &wanted.size,
        Some(&service.name),
        wanted.lifecycle(),
    )
    .await
}

/// After a service is deleted: the volume it made goes with it unless it is to be retained or
/// another service uses it.
pub async fn release(
    db: &Database,
    catalog: &Catalog,
    executor: &dyn Executor,
    service: &Service,
) -> AppResult<()> {
    let Some(wanted) = ServiceVolume::of(service) else {
        return Ok(());
    };
    let name = wanted.volume_name(&service.name);
    let Some(row) = find(db, &service.owner, &name).await? else {
        return Ok(());
    };
    let others = catalog.list(db).await?;
    let used = others
        .iter()
        .any(|s| s.name != service.name && attachment(s, &row.owner, &row.name).is_some());
    if row.lifecycle_policy == "delete" && row.created_by_service == service.name && !used {
        remove(db, executor, &service.owner, &name).await?;
    }
    Ok(())
}

/// The volume a job of `service` mounts, or why there is none: a service stored before volumes
/// were acted on may name one never made, and the job cannot run as its service says.
pub async fn for_job(
    db: &Database,
    service: &Service,
) -> AppResult<Result<Option<JobVolume>, String>> {
    let Some(wanted) = ServiceVolume::of(service) else {
        return Ok(Ok(None));
    };
    let name = wanted.volume_name(&service.name);
    Ok(match find(db, &service.owner, &name).await? {
        Some(row) => Ok(Some(JobVolume {
            name,
            mount_path: wanted.mount_path,
            bytes: row.size_bytes.max(0) as u64,
        })),
        None => Err(format!(
            "the service's volume {name:?} does not exist: create it (POST /system/volumes) or change the service"
        )),
    })
}

async fn make(
    db: &Database,
    executor: &dyn Executor,
    owner: &str,
    name: &str,
    size: &str,
    by_service: Option<&str>,
    lifecycle: &str,
) -> AppResult<()> {
    let limits = executor.volume_limits();
    let field = if by_service.is_some() {
        "volume.size"
    } else {
        "size"
    };
    let bytes = quantity::parse(size).map_err(|why| AppError::bad_request(field, why))?;
    if bytes < 1.0 || bytes > limits.max_bytes as f64 {
        return Err(AppError::bad_request(
            field,
            format!(
                "{size:?} must be between 1 byte and {} GiB",
                limits.max_bytes >> 30
            ),
        ));
    }
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM volumes WHERE owner = $1")
        .bind(owner)
        .fetch_one(db.pool())
        .await?;
    if count as u64 >= limits.per_user {
        return Err(AppError::bad_request(
            field,
            format!(
                "you have {count} volumes, the most one user may have ({})",
                limits.per_user
            ),
        ));
    }
    let inserted = sqlx::query(
        "INSERT INTO volumes (owner, name, size, size_bytes, creation_mode, lifecycle_policy,
         created_by_service, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (owner, name) DO NOTHING",
    )
    .bind(owner)
    .bind(name)
    .bind(size.trim())
    .bind(bytes as i64)
    .bind(if by_service.is_some() {
        MADE_BY_SERVICE
    } else {
        MADE_BY_API
    })
    .bind(lifecycle)
    .bind(by_service.unwrap_or_default())
    .bind(Timestamp::now())
    .execute(db.pool())
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict(format!(
            "a volume named {name:?} already exists"
        )));
    }
    if let Err(reason) = executor.create_volume(owner, name, bytes as u64).await {
        // Nothing half-made stays behind.
        sqlx::query("DELETE FROM volumes WHERE owner = $1 AND name = $2")
            .bind(owner)
            .bind(name)
            .execute(db.pool())
            .await?;
        return Err(AppError::Unavailable(reason));
    }
    tracing::info!(%owner, volume = %name, %size, "volume created");
    Ok(())
}

async fn remove(db: &Database, executor: &dyn Executor, owner: &str, name: &str) -> AppResult<()> {
    // Storage first: a cluster that refuses leaves the volume listed for another try.
    executor
        .delete_volume(owner, name)
        .await
        .map_err(AppError::Unavailable)?;
    sqlx::query("DELETE FROM volumes WHERE owner = $1 AND name = $2")
        .bind(owner)
        .bind(name)
        .execute(db.pool())
        .await?;
    tracing::info!(%owner, volume = %name, "volume deleted");
    Ok(())
}

async fn find(db: &Database, owner: &str, name: &str) -> AppResult<Option<Row>> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM volumes WHERE owner = $1 AND name = $2"
    ))
    .bind(owner)
    .bind(name)
    .fetch_optional(db.pool())
    .await?)
}

fn not_found(name: &str) -> AppError {
    AppError::NotFound(format!("no volume named {name:?}"))
}

/// Where `service` mounts the volume `owner`/`name`, when it does.
fn attachment(service: &Service, owner: &str, name: &str) -> Option<Attachment> {
    let wanted = ServiceVolume::of(service)?;
    (service.owner == owner && wanted.volume_name(&service.name) == name).then(|| Attachment {
        service_name: service.name.clone(),
        mount_path: wanted.mount_path,
    })
}

async fn volume(row: Row, services: &[Service], executor: &dyn Executor) -> Volume {
    let attachments: Vec<Attachment> = services
        .iter()
        .filter_map(|s| attachment(s, &row.owner, &row.name))
        .collect();
    let (namespace, pvc_name) = executor.volume_location(&row.owner, &row.name);
    let (phase, message) = executor.volume_phase(&row.owner, &row.name).await;
    Volume {
        pvc_name,
        namespace,
        status: VolumeStatus {
            phase,
            message,
            attachment_count: attachments.len(),
        },
        attachments,
        name: row.name,
        size: row.size,
        owner_user: row.owner,
        created_by_service: row.created_by_service,
        creation_mode: row.creation_mode,
        lifecycle_policy: row.lifecycle_policy,
    }
}
