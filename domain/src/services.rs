//! Services: create, read, update and delete, with their storage and their write-only secrets.
//! Callers (server functions, REST handlers) authorise first and pass who is acting.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::App;
use super::access::Caller;
use super::buckets::records;
use super::db::Database;
use super::jobs::executor::Executor;
use super::storage;
use super::store::{self, Store};
use model::service::{Service, validate};
pub use model::services::{Applied, DeletionPlan, ServiceSummary, ServicesPage};
use model::{AppError, AppResult, Timestamp};

/// Credential fields inside `storage_providers` and `clusters` entries: kept out of the stored
/// definition like `environment.secrets`.
const CREDENTIAL_KEYS: &[&str] = &[
    "secret_key",
    "password",
    "token",
    "refresh_token",
    "auth_password",
    "access_token",
];

/// Creates a service: validates it, prepares its buckets and folders, stores it with a fresh
/// token. Returns it as stored (secret values blanked). `vo_groups` are the VOs the platform
/// gates on (`OIDC_GROUPS`).
pub async fn create(
    db: &Database,
    s3: &Store,
    executor: &dyn Executor,
    caller: &Caller,
    vo_groups: &[String],
    mut service: Service,
    now: Timestamp,
) -> AppResult<Service> {
    validate::prepare(&mut service)?;
    if exists(db, &service.name).await? {
        return Err(AppError::Conflict(format!(
            "a service named {:?} already exists",
            service.name
        )));
    }
    settle_vo(caller, vo_groups, &mut service)?;
    service.owner = caller.id.clone();
    check_runs(db, executor, &service).await?;
    crate::volumes::prepare_for(db, executor, &service, None).await?;
    service.token = new_token();
    let secrets = take_secrets(&mut service);
    storage::prepare_for(db, s3, caller, &service, now).await?;
    storage::prepare_elsewhere(&service, &secrets).await?;
    prepare_runs(executor, &service, &secrets).await?;

    let mut tx = db.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO services (name, owner, definition, token, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&service.name)
    .bind(&service.owner)
    .bind(definition_json(&service)?)
    .bind(&service.token)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict(format!(
            "a service named {:?} already exists",
            service.name
        )));
    }
    store_secrets(&mut tx, &service.name, &secrets).await?;
    tx.commit().await?;
    tracing::info!(service = %service.name, owner = %service.owner, "service created");
    Ok(service)
}

/// Replaces a service's definition. Owner and token are kept; a secret sent with an empty
/// value keeps its stored value (forms never see secret values).
pub async fn update(
    db: &Database,
    s3: &Store,
    executor: &dyn Executor,
    caller: &Caller,
    vo_groups: &[String],
    mut service: Service,
    now: Timestamp,
) -> AppResult<Service> {
    validate::prepare(&mut service)?;
    let current = require_visible(db, caller, &service.name).await?;
    authorize_owner(caller, &current)?;
    // Like upstream, membership is checked again only when the VO changes.
    if service.vo != current.vo {
        check_vo(caller, vo_groups, &service.vo)?;
    }
    service.owner = current.owner.clone();
    check_runs(db, executor, &service).await?;
    crate::volumes::prepare_for(db, executor, &service, Some(&current)).await?;
    service.token = current.token.clone();
    let mut secrets = take_secrets(&mut service);
    let stored = load_secrets(db, &service.name).await?;
    for (path, value) in secrets.iter_mut() {
        if value.is_empty() {
            match stored.get(path) {
                Some(old) => *value = old.clone(),
                None => return Err(AppError::bad_request(path.clone(), "needs a value")),
            }
        }
    }
    // Input buckets the service no longer reads from stop notifying it.
    let kept = storage::buckets_in(&service.input);
    let dropped: Vec<String> = storage::buckets_in(&current.input)
        .difference(&kept)
        .cloned()
        .collect();
    store::unsubscribe(s3, &service.name, &dropped).await?;
    storage::prepare_for(db, s3, caller, &service, now).await?;
    storage::prepare_elsewhere(&service, &secrets).await?;
    prepare_runs(executor, &service, &secrets).await?;

    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE services SET definition = $1, updated_at = $2 WHERE name = $3")
        .bind(definition_json(&service)?)
        .bind(now)
        .bind(&service.name)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM service_secrets WHERE service = $1")
        .bind(&service.name)
        .execute(&mut *tx)
        .await?;
    store_secrets(&mut tx, &service.name, &secrets).await?;
    tx.commit().await?;
    tracing::info!(service = %service.name, "service updated");
    Ok(service)
}

/// The service as stored: secret values blank, token included (callers decide who sees it).
pub async fn get(db: &Database, name: &str) -> AppResult<Option<Service>> {
    let row: Option<ServiceRow> =
        sqlx::query_as("SELECT definition, owner, token FROM services WHERE name = $1")
            .bind(name)
            .fetch_optional(db.pool())
            .await?;
    row.map(ServiceRow::into_service).transpose()
}

/// Creates each service, or with `update_existing` creates or updates it like `oscar-cli
/// apply`; stops at the first failure.
pub async fn apply(
    app: &App,
    caller: &Caller,
    definitions: Vec<Service>,
    update_existing: bool,
    now: Timestamp,
) -> AppResult<Vec<Applied>> {
    let (db, s3, executor) = (&app.db, &app.s3, app.jobs.executor().as_ref());
    let vo_groups = app.vo_groups();
    // Creating only: nothing is made when one of the names is taken.
    if !update_existing {
        for service in &definitions {
            if exists(db, &service.name).await? {
                return Err(AppError::Conflict(format!(
                    "a service named {:?} already exists; edit it, or apply with updates allowed",
                    service.name
                )));
            }
        }
    }
    let mut applied = Vec::with_capacity(definitions.len());
    for service in definitions {
        let name = service.name.clone();
        // Creating only never updates, not even a name the same file defines twice.
        let created = !update_existing || !exists(db, &name).await?;
        let saved = if created {
            create(db, s3, executor, caller, vo_groups, service, now).await?
        } else {
            update(db, s3, executor, caller, vo_groups, service, now).await?
        };
        let federation = crate::federation::members::report(&app.federation(), &saved).await?;
        applied.push(Applied {
            name,
            created,
            federation,
        });
    }
    Ok(applied)
}

/// The service as stored, or 404.
pub async fn require(db: &Database, name: &str) -> AppResult<Service> {
    get(db, name).await?.ok_or_else(|| not_found(name))
}

/// The service if the caller may see it (owner, admin, or shared by its visibility); 404
/// otherwise, so private services do not reveal that they exist.
pub async fn require_visible(db: &Database, caller: &Caller, name: &str) -> AppResult<Service> {
    match get(db, name).await? {
        Some(service) if visible(caller, &service) => Ok(service),
        _ => Err(not_found(name)),
    }
}

pub fn visible(caller: &Caller, service: &Service) -> bool {
    caller.may_use(&service.owner, service.visibility, &service.allowed_users)
}

/// The services the caller may see, by name.
pub async fn list_visible(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
) -> AppResult<Vec<Service>> {
    let all = catalog.list(db).await?;
    Ok(all.iter().filter(|s| visible(caller, s)).cloned().collect())
}

/// Which of the services the caller may see feed which, laid out for the workflow view.
pub async fn workflow(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
) -> AppResult<model::workflow::Workflow> {
    let visible = list_visible(db, catalog, caller).await?;
    Ok(model::workflow::Workflow::of(&visible))
}

/// Rows on a page of the services list: enough to scan, few enough to render fast with
/// thousands of services.
pub const PER_PAGE: usize = 50;

/// A page of the services the caller may see whose name, image or owner contains `filter`
/// (ignoring case), with the job counts of those on it. Pages count from 1; one past the end
/// shows the last.
pub async fn page(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    filter: &str,
    page: usize,
) -> AppResult<ServicesPage> {
    // The shared parsed list, filtered by reference: a summary needs a few fields only.
    let all = catalog.list(db).await?;
    let wanted = filter.trim().to_lowercase();
    let matches = |s: &Service| {
        [&s.name, &s.image, &s.owner]
            .iter()
            .any(|field| field.to_lowercase().contains(&wanted))
    };
    let mut visible_to_caller = 0;
    let matching: Vec<&Service> = all
        .iter()
        .filter(|s| visible(caller, s))
        .inspect(|_| visible_to_caller += 1)
        .filter(|s| wanted.is_empty() || matches(s))
        .collect();
    let pages = ServicesPage::count_pages(matching.len(), PER_PAGE);
    let page = page.clamp(1, pages);
    let shown = &matching[(page - 1) * PER_PAGE..matching.len().min(page * PER_PAGE)];
    let names: Vec<&str> = shown.iter().map(|s| s.name.as_str()).collect();
    let mut activity = super::jobs::activity(db, caller, &names).await?;
    Ok(ServicesPage {
        services: shown
            .iter()
            .map(|s| ServiceSummary {
                activity: activity.remove(&s.name).unwrap_or_default(),
                ..ServiceSummary::from(*s)
            })
            .collect(),
        matching: matching.len(),
        visible: visible_to_caller,
        page,
        per_page: PER_PAGE,
    })
}

/// Upstream's VO rule for a user's new service: a VO the platform gates on needs membership,
/// any other is kept as given (FDLs written for other clusters name their own VOs); none means
/// the first gated VO the user is in. The admin's VO is taken as given.
fn settle_vo(caller: &Caller, vo_groups: &[String], service: &mut Service) -> AppResult<()> {
    if caller.admin || vo_groups.is_empty() || !service.vo.is_empty() {
        return check_vo(caller, vo_groups, &service.vo);
    }
    service.vo = vo_groups
        .iter()
        .find(|vo| caller.vos.contains(vo))
        .cloned()
        .ok_or_else(|| {
            AppError::bad_request(
                "vo",
                format!("must be one of your VOs among {}", vo_groups.join(", ")),
            )
        })?;
    Ok(())
}

/// A user may only name a gated VO they belong to (400 like upstream's; the admin any).
fn check_vo(caller: &Caller, vo_groups: &[String], vo: &str) -> AppResult<()> {
    if caller.admin || !vo_groups.iter().any(|g| g == vo) || caller.vos.iter().any(|v| v == vo) {
        Ok(())
    } else {
        Err(AppError::bad_request(
            "vo",
            format!("you are not a member of the VO {vo:?}"),
        ))
    }
}

/// Every service, parsed once per change and shared: every upload and every services page
/// needs them, and `services_version` (bumped by triggers on `services`, by any server) says
/// when the parsed copy is stale. One per platform (`App::services`).
#[derive(Debug, Default)]
pub struct Catalog(Mutex<Option<Parsed>>);

/// A `services_version` and the services read at it.
type Parsed = (i64, Arc<Vec<Service>>);

impl Catalog {
    /// Every service, by name.
    pub async fn list(&self, db: &Database) -> AppResult<Arc<Vec<Service>>> {
        // The version first: a change committed between the two reads makes the next call
        // reload.
        let version: i64 = sqlx::query_scalar("SELECT version FROM services_version")
            .fetch_one(db.pool())
            .await?;
        if let Some((seen, services)) = self.0.lock().unwrap().as_ref()
            && *seen == version
        {
            return Ok(services.clone());
        }
        let rows: Vec<ServiceRow> =
            sqlx::query_as("SELECT definition, owner, token FROM services ORDER BY name")
                .fetch_all(db.pool())
                .await?;
        let services = Arc::new(
            rows.into_iter()
                .map(ServiceRow::into_service)
                .collect::<AppResult<Vec<_>>>()?,
        );
        // Concurrent callers (the reconciler, uploads) finish in any order: the first copy of
        // a version is the one kept and shared, and an older read never replaces a newer one.
        let mut cached = self.0.lock().unwrap();
        match cached.as_ref() {
            Some((seen, kept)) if *seen == version => Ok(kept.clone()),
            // An older read, or a database restored to before what was seen (until its next
            // change, numbered past everything seen: migration 0009): right, but not kept.
            Some((seen, _)) if *seen > version => Ok(services),
            _ => {
                *cached = Some((version, services.clone()));
                Ok(services)
            }
        }
    }
}

/// What `delete` would remove.
pub async fn deletion_plan(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    name: &str,
) -> AppResult<DeletionPlan> {
    Ok(plan(db, catalog, caller, name).await?.0)
}

/// The plan, plus the created buckets other services still use, each with one such service.
async fn plan(
    db: &Database,
    catalog: &Catalog,
    caller: &Caller,
    name: &str,
) -> AppResult<(DeletionPlan, Vec<(String, String)>)> {
    let service = require_visible(db, caller, name).await?;
    authorize_owner(caller, &service)?;
    let all = catalog.list(db).await?;
    let others: Vec<&Service> = all.iter().filter(|s| s.name != name).collect();
    let mut buckets = Vec::new();
    let mut shared = Vec::new();
    for bucket in records::created_by(db, name).await? {
        match others
            .iter()
            .find(|other| storage::buckets_of(other).contains(&bucket))
        {
            Some(user) => shared.push((bucket, user.name.clone())),
            None => buckets.push(bucket),
        }
    }
    Ok((
        DeletionPlan {
            service: name.to_string(),
            buckets,
        },
        shared,
    ))
}

/// Deletes a service, its secrets, and the buckets it created that no other service uses
/// (unless `keep_buckets`: they stay, their owner's, made by nobody). A created bucket still
/// in use passes to a service using it, so the last user removes it. Returns what was
/// deleted.
pub async fn delete(
    db: &Database,
    catalog: &Catalog,
    s3: &Store,
    executor: &dyn Executor,
    caller: &Caller,
    name: &str,
    keep_buckets: bool,
) -> AppResult<DeletionPlan> {
    let (mut plan, shared) = plan(db, catalog, caller, name).await?;
    let service = require(db, name).await?;
    // First, so a cluster that refuses leaves the service whole for another try.
    executor
        .service_deleted(&service)
        .await
        .map_err(AppError::Unavailable)?;
    let inputs: Vec<String> = storage::buckets_in(&service.input).into_iter().collect();
    store::unsubscribe(s3, name, &inputs).await?;
    if keep_buckets {
        for bucket in std::mem::take(&mut plan.buckets) {
            records::release(db, &bucket).await?;
        }
    }
    for bucket in &plan.buckets {
        storage::remove_bucket(db, &s3.client, bucket).await?;
    }
    for (bucket, user) in &shared {
        records::hand_over(db, bucket, user).await?;
    }
    // Before the service goes: a cluster that refuses leaves it whole for another try.
    crate::volumes::release(db, catalog, executor, &service).await?;
    sqlx::query("DELETE FROM services WHERE name = $1")
        .bind(name)
        .execute(db.pool())
        .await?;
    super::jobs::forget_service(db, name).await?;
    tracing::info!(service = %name, buckets = ?plan.buckets, "service deleted");
    Ok(plan)
}

/// Refuses what the service may not use where its jobs run: an image outside the allowed
/// repositories, another user's pull Secret on Kubernetes, registry credentials its owner
/// does not have for the image executor.
async fn check_runs(db: &Database, executor: &dyn Executor, service: &Service) -> AppResult<()> {
    crate::settings::check_image(db, &service.image).await?;
    executor.check_service(service).await?;
    if executor.pulls_images() {
        crate::registry_credentials::check_names(db, &service.owner, &service.image_pull_secrets)
            .await?;
    }
    Ok(())
}

/// Where the service's jobs run is ready, with its current secrets, before the service is
/// stored: a cluster that refuses leaves the stored service as it was.
async fn prepare_runs(
    executor: &dyn Executor,
    service: &Service,
    secrets: &BTreeMap<String, String>,
) -> AppResult<()> {
    executor
        .service_saved(service, secrets)
        .await
        .map_err(AppError::Unavailable)
}

pub fn authorize_owner(caller: &Caller, service: &Service) -> AppResult<()> {
    if caller.admin || caller.id == service.owner {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!(
            "only the owner of {:?} may change it",
            service.name
        )))
    }
}

async fn exists(db: &Database, name: &str) -> AppResult<bool> {
    let found = sqlx::query("SELECT 1 FROM services WHERE name = $1")
        .bind(name)
        .fetch_optional(db.pool())
        .await?;
    Ok(found.is_some())
}

pub fn not_found(name: &str) -> AppError {
    AppError::NotFound(format!("no service named {name:?}"))
}

/// A `services` row: the definition as JSON, and the columns kept beside it.
#[derive(sqlx::FromRow)]
pub(crate) struct ServiceRow {
    definition: String,
    owner: String,
    token: String,
}

impl ServiceRow {
    pub(crate) fn into_service(self) -> AppResult<Service> {
        let mut service: Service = serde_json::from_str(&self.definition)
            .map_err(|e| AppError::internal("stored service definition", e))?;
        service.owner = self.owner;
        service.token = self.token;
        Ok(service)
    }
}

/// The definition to store: no token (it has its own column), secrets already blanked.
fn definition_json(service: &Service) -> AppResult<String> {
    let mut copy = service.clone();
    copy.token.clear();
    serde_json::to_string(&copy).map_err(|e| AppError::internal("serialising a service", e))
}

fn new_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Moves every secret value out of `service` (leaving its key with an empty value) and returns
/// them keyed by their path, e.g. `environment.secrets.API_KEY` or
/// `storage_providers.minio.other.secret_key`.
pub fn take_secrets(service: &mut Service) -> BTreeMap<String, String> {
    let mut secrets = BTreeMap::new();
    for (key, value) in service.environment.secrets.iter_mut() {
        secrets.insert(format!("environment.secrets.{key}"), std::mem::take(value));
    }
    for section in ["storage_providers", "clusters"] {
        if let Some(value) = service.inactive.get_mut(section) {
            take_credentials(value, section, &mut secrets);
        }
    }
    secrets
}

fn take_credentials(value: &mut Value, path: &str, secrets: &mut BTreeMap<String, String>) {
    if let Value::Object(map) = value {
        for (key, child) in map.iter_mut() {
            let child_path = format!("{path}.{key}");
            match child {
                Value::String(s) if CREDENTIAL_KEYS.contains(&key.as_str()) => {
                    secrets.insert(child_path, std::mem::take(s));
                }
                Value::Object(_) => take_credentials(child, &child_path, secrets),
                _ => {}
            }
        }
    }
}

async fn store_secrets(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    service: &str,
    secrets: &BTreeMap<String, String>,
) -> AppResult<()> {
    for (key, value) in secrets {
        sqlx::query("INSERT INTO service_secrets (service, key, value) VALUES ($1, $2, $3)")
            .bind(service)
            .bind(key)
            .bind(value)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// The secret values of a service, by path: only for running its jobs, never for display.
pub async fn load_secrets(db: &Database, service: &str) -> AppResult<BTreeMap<String, String>> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT key, value FROM service_secrets WHERE service = $1")
            .bind(service)
            .fetch_all(db.pool())
            .await?;
    Ok(rows.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_and_credentials_leave_the_definition() {
        let mut service = Service::from_json(json!({
            "name": "s",
            "environment": {"variables": {"A": "visible"}, "secrets": {"API_KEY": "planted-secret"}},
            "storage_providers": {"minio": {"other": {"endpoint": "https://m", "access_key": "ak", "secret_key": "planted-secret-2"}}},
            "clusters": {"c1": {"endpoint": "https://c", "auth_user": "u", "auth_password": "planted-secret-3"}}
        }))
        .unwrap();
        let secrets = take_secrets(&mut service);
        assert_eq!(secrets["environment.secrets.API_KEY"], "planted-secret");
        assert_eq!(
            secrets["storage_providers.minio.other.secret_key"],
            "planted-secret-2"
        );
        assert_eq!(secrets["clusters.c1.auth_password"], "planted-secret-3");
        let shown = serde_json::to_string(&service).unwrap();
        assert!(!shown.contains("planted-secret"), "{shown}");
        assert!(
            shown.contains("\"API_KEY\":\"\"") && shown.contains("\"access_key\":\"ak\""),
            "{shown}"
        );
    }
}
