//! Keys to the embedded store for people and jobs, so that nobody but the platform holds the
//! root keys. A user's key reaches the buckets they may use (`buckets::BucketRecord::usable_by`);
//! a job's key reaches its service's buckets, and only while the job runs. Secrets are derived
//! from the root secret and the access key, never stored. External stores (MinIO, RustFS)
//! manage their own users: there jobs get the configured keys and users none.

use embedded_s3::Reach;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::access::Caller;
use super::buckets;
use super::db::Database;
use super::jobs::executor::StorageAccess;
use super::services::ServiceRow;
use super::storage;
use model::service::Service;
use model::service::federation::Replica;
use model::system::{StoreCredentials, StoreKeyKind};
use model::{AppError, AppResult, Timestamp};

/// User keys: `OSCU` and 16 random characters, like the 20-character keys of AWS.
const USER_KEY: &str = "OSCU";
/// Job keys: `OSCJ-` and the job's name.
const JOB_KEY: &str = "OSCJ-";
/// Federation keys: `OSCF-`, a tag of the member and the service's name (`for_member`).
const FEDERATION_KEY: &str = "OSCF-";
/// Instance keys: `OSCI-` and the service's name (`for_instances`).
const INSTANCE_KEY: &str = "OSCI-";

/// The secret of an access key issued by this platform.
pub fn secret_of(root_secret: &str, access_key: &str) -> String {
    // HMAC accepts keys of any length.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(root_secret.as_bytes()).expect("HMAC takes any key");
    mac.update(b"oscar store key\0");
    mac.update(access_key.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The keys a job gets for `minio.default`: its own when the store is the embedded one.
pub fn for_job(storage: &StorageAccess, job: &str) -> (String, String) {
    if storage.scoped_keys {
        let access_key = format!("{JOB_KEY}{job}");
        let secret = secret_of(&storage.secret_key, &access_key);
        (access_key, secret)
    } else {
        (storage.access_key.clone(), storage.secret_key.clone())
    }
}

/// The keys `member`'s copy of `service` reaches this store with (the embedded store only;
/// none for an external one, whose users the platform does not manage): like a job's, they
/// reach the service's own buckets and nothing else, and only while that member is in its
/// federation. Their secret changes when the service is made anew.
pub fn for_member(
    storage: &StorageAccess,
    service: &Service,
    member: &Replica,
) -> Option<(String, String)> {
    storage.scoped_keys.then(|| {
        let key = format!("{FEDERATION_KEY}{}-{}", member_tag(member), service.name);
        let secret = federation_secret(&storage.secret_key, &key, &service.token);
        (key, secret)
    })
}

/// The keys the instances of `service` (an exposed service's, warm workers) mount its
/// platform-store `mount` with: their own when the store is the embedded one. They live as
/// long as the instances, so unlike a job's they are not tied to a run: they reach the
/// mounted bucket alone, while the service has instances and a mount there and the bucket is
/// its owner's; their secret changes when the service is made anew.
pub fn for_instances(storage: &StorageAccess, service: &Service) -> (String, String) {
    if storage.scoped_keys {
        let key = format!("{INSTANCE_KEY}{}", service.name);
        let secret = federation_secret(&storage.secret_key, &key, &service.token);
        (key, secret)
    } else {
        (storage.access_key.clone(), storage.secret_key.clone())
    }
}

/// The bucket an instance key of `service` reaches: its mount's, while it has instances.
fn instances_bucket(service: &Service) -> Option<String> {
    let mount = model::service::mount::Mount::of_instances(service)?;
    Some(mount.platform_bucket()?.to_string())
}

/// A member's short name in its key: the start of a digest of `cluster/service` or its URL.
fn member_tag(member: &Replica) -> String {
    use sha2::Digest;
    hex::encode(&Sha256::digest(member.label().as_bytes())[..4])
}

fn federation_secret(root_secret: &str, access_key: &str, token: &str) -> String {
    secret_of(root_secret, &format!("{access_key}\0{token}"))
}

/// The keys the caller uses with the store: the root keys for the admin, their own (made on
/// first use) for a user of the embedded store, none for a user of an external store.
pub async fn for_caller(
    db: &Database,
    storage: &StorageAccess,
    caller: &Caller,
) -> AppResult<StoreCredentials> {
    let (kind, access_key) = if caller.admin {
        (StoreKeyKind::Root, storage.access_key.clone())
    } else if storage.scoped_keys {
        let key = match key_of(db, &caller.id).await? {
            Some(key) => key,
            None => {
                // Two first requests at once: one key wins, both read it.
                sqlx::query(
                    "INSERT INTO store_keys (access_key, owner, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (owner) DO NOTHING",
                )
                .bind(new_user_key())
                .bind(&caller.id)
                .bind(Timestamp::now())
                .execute(db.pool())
                .await?;
                key_of(db, &caller.id)
                    .await?
                    .ok_or_else(|| AppError::internal("store key", "not recorded"))?
            }
        };
        (StoreKeyKind::Personal, key)
    } else {
        (StoreKeyKind::NotIssued, String::new())
    };
    Ok(credentials(storage, kind, access_key))
}

/// Signs the caller's share and upload links with their own key, so that the store checks
/// their rights when a link is used and rotating the key revokes every link they made. The
/// admin's links, and everyone's on an external store (no user keys there), carry the root
/// keys' signature.
pub async fn link_signer(
    db: &Database,
    storage: &StorageAccess,
    s3: &aws_sdk_s3::Client,
    caller: &Caller,
) -> AppResult<aws_sdk_s3::Client> {
    let credentials = for_caller(db, storage, caller).await?;
    if !matches!(credentials.kind, StoreKeyKind::Personal) {
        return Ok(s3.clone());
    }
    let config = s3
        .config()
        .to_builder()
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            credentials.access_key,
            credentials.secret_key,
            None,
            None,
            "oscar-user-key",
        ))
        .build();
    Ok(aws_sdk_s3::Client::from_conf(config))
}

async fn key_of(db: &Database, owner: &str) -> AppResult<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT access_key FROM store_keys WHERE owner = $1")
            .bind(owner)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Replaces the caller's key; the old one stops working at once.
pub async fn rotate(
    db: &Database,
    storage: &StorageAccess,
    caller: &Caller,
) -> AppResult<StoreCredentials> {
    if caller.admin || !storage.scoped_keys {
        return Err(AppError::bad_request(
            "store_keys",
            "only keys issued by the embedded store can be rotated here; the root keys are set in the server's configuration",
        ));
    }
    let access_key = new_user_key();
    sqlx::query(
        "INSERT INTO store_keys (access_key, owner, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (owner) DO UPDATE SET access_key = excluded.access_key, created_at = excluded.created_at",
    )
    .bind(&access_key)
    .bind(&caller.id)
    .bind(Timestamp::now())
    .execute(db.pool())
    .await?;
    Ok(credentials(storage, StoreKeyKind::Personal, access_key))
}

fn credentials(
    storage: &StorageAccess,
    kind: StoreKeyKind,
    access_key: String,
) -> StoreCredentials {
    let secret_key = match kind {
        StoreKeyKind::Root => storage.secret_key.clone(),
        StoreKeyKind::Personal => secret_of(&storage.secret_key, &access_key),
        StoreKeyKind::NotIssued => String::new(),
    };
    StoreCredentials {
        endpoint: storage.public_endpoint.clone(),
        region: storage.region.clone(),
        kind,
        access_key,
        secret_key,
    }
}

fn new_user_key() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{USER_KEY}{tail}")
}

/// Who holds a key this platform issued.
enum Holder {
    User(String),
    /// A running job, with its service.
    Job(Box<Service>),
    /// A federated service's members.
    Members(Box<Service>),
    /// The instances of a service that mount a folder of this store.
    Instances(Box<Service>),
}

async fn holder(db: &Database, access_key: &str) -> AppResult<Option<Holder>> {
    if let Some(job) = access_key.strip_prefix(JOB_KEY) {
        let row: Option<ServiceRow> = sqlx::query_as(
            "SELECT s.definition, s.owner, s.token FROM jobs j JOIN services s ON s.name = j.service
             WHERE j.name = $1 AND j.state = 'running'",
        )
        .bind(job)
        .fetch_optional(db.pool())
        .await?;
        return row
            .map(|row| Ok(Holder::Job(Box::new(row.into_service()?))))
            .transpose();
    }
    if let Some((tag, name)) = access_key
        .strip_prefix(FEDERATION_KEY)
        .and_then(|rest| rest.split_once('-'))
    {
        let service = crate::services::get(db, name).await?;
        let is_member = |service: &Service| {
            service
                .federation()
                .is_some_and(|f| f.members.iter().any(|m| member_tag(m) == tag))
        };
        return Ok(service
            .filter(is_member)
            .map(|s| Holder::Members(Box::new(s))));
    }
    if let Some(name) = access_key.strip_prefix(INSTANCE_KEY) {
        let service = crate::services::get(db, name).await?;
        return Ok(service
            .filter(|s| instances_bucket(s).is_some())
            .map(|s| Holder::Instances(Box::new(s))));
    }
    if !access_key.starts_with(USER_KEY) {
        return Ok(None);
    }
    let owner: Option<String> =
        sqlx::query_scalar("SELECT owner FROM store_keys WHERE access_key = $1")
            .bind(access_key)
            .fetch_optional(db.pool())
            .await?;
    Ok(owner.map(Holder::User))
}

/// The user a key belongs to (`None` for jobs' keys and keys nobody was issued).
pub async fn user_of(db: &Database, access_key: &str) -> AppResult<Option<String>> {
    Ok(match holder(db, access_key).await? {
        Some(Holder::User(owner)) => Some(owner),
        _ => None,
    })
}

/// The secret of a key the store was shown, when the key exists and works now.
pub async fn secret(
    db: &Database,
    root_secret: &str,
    access_key: &str,
) -> AppResult<Option<String>> {
    Ok(holder(db, access_key).await?.map(|holder| match holder {
        Holder::Members(service) | Holder::Instances(service) => {
            federation_secret(root_secret, access_key, &service.token)
        }
        _ => secret_of(root_secret, access_key),
    }))
}

/// What the holder of a key may do with the objects of `bucket`: the same rights as the
/// dashboard and the REST API give its user (`buckets::may_replace`); a job acts for its
/// service's owner on the service's buckets.
pub async fn reach(db: &Database, access_key: &str, bucket: &str) -> AppResult<Reach> {
    Ok(match holder(db, access_key).await? {
        Some(Holder::User(user)) => {
            let record = buckets::record(db, bucket).await?;
            let caller = Caller::user(&user, Vec::new());
            if caller.manages(&record.owner) {
                Reach::Full {
                    uploader: Some(user),
                }
            } else if record.usable_by(&caller) {
                Reach::Shared { uploader: user }
            } else {
                Reach::None
            }
        }
        Some(Holder::Job(service)) if storage::buckets_of(&service).contains(bucket) => {
            Reach::Full { uploader: None }
        }
        // Long-lived keys in another cluster: the service's buckets as long as they are its
        // owner's (a bucket deleted and made again by someone else is not).
        Some(Holder::Members(service))
            if storage::buckets_of(&service).contains(bucket)
                && buckets::record(db, bucket).await?.owner == service.owner =>
        {
            Reach::Full { uploader: None }
        }
        Some(Holder::Instances(service))
            if instances_bucket(&service).as_deref() == Some(bucket)
                && buckets::record(db, bucket).await?.owner == service.owner =>
        {
            Reach::Full { uploader: None }
        }
        _ => Reach::None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(scoped_keys: bool) -> StorageAccess {
        StorageAccess {
            endpoint: "http://127.0.0.1:9000".into(),
            public_endpoint: "http://127.0.0.1:9000".into(),
            region: "us-east-1".into(),
            access_key: "root".into(),
            secret_key: "root-secret".into(),
            scoped_keys,
        }
    }

    #[test]
    fn secrets_depend_on_the_root_secret_and_the_key() {
        let secret = secret_of("root-secret", "OSCUABC");
        assert_eq!(secret.len(), 64);
        assert_eq!(secret, secret_of("root-secret", "OSCUABC"));
        assert_ne!(secret, secret_of("other-secret", "OSCUABC"));
        assert_ne!(secret, secret_of("root-secret", "OSCUABD"));
    }

    #[test]
    fn jobs_get_their_own_keys_from_the_embedded_store_only() {
        let (key, secret) = for_job(&storage(true), "svc-1");
        assert_eq!(key, "OSCJ-svc-1");
        assert_eq!(secret, secret_of("root-secret", "OSCJ-svc-1"));
        assert_eq!(
            for_job(&storage(false), "svc-1"),
            ("root".to_string(), "root-secret".to_string())
        );
    }

    #[test]
    fn instance_keys_change_with_the_service_and_reach_only_its_mount() {
        let service = |token: &str, mount: serde_json::Value, min_scale: u32| {
            let mut service = Service::from_json(serde_json::json!({
                "name": "web", "image": "i", "script": "s", "mount": mount,
                "output": [{"storage_provider": "minio", "path": "out-bucket"}],
                "synchronous": {"min_scale": min_scale}}))
            .unwrap();
            service.token = token.into();
            service
        };
        let mounted = json_mount("site/www");
        let (key, secret) = for_instances(&storage(true), &service("t1", mounted.clone(), 1));
        assert_eq!(key, "OSCI-web");
        assert_ne!(
            secret,
            for_instances(&storage(true), &service("t2", mounted.clone(), 1)).1
        );
        assert_eq!(
            for_instances(&storage(false), &service("t1", mounted.clone(), 1)),
            ("root".to_string(), "root-secret".to_string())
        );
        assert_eq!(
            instances_bucket(&service("t1", mounted.clone(), 1)).as_deref(),
            Some("site")
        );
        // No instances, or no mount in this store: the key reaches nothing.
        assert_eq!(instances_bucket(&service("t1", mounted, 0)), None);
        assert_eq!(
            instances_bucket(&service("t1", serde_json::json!({}), 1)),
            None
        );
    }

    fn json_mount(path: &str) -> serde_json::Value {
        serde_json::json!({"storage_provider": "minio", "path": path})
    }

    #[test]
    fn user_keys_look_like_s3_keys() {
        let key = new_user_key();
        assert_eq!(key.len(), 20);
        assert!(key.starts_with(USER_KEY));
        assert_ne!(key, new_user_key());
    }
}
