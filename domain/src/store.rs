//! The platform's object store: an aws-sdk-s3 client (embedded s3s or external MinIO /
//! RustFS), and for external stores the webhook target that reports new objects.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::DisplayErrorContext;
use aws_sdk_s3::types::{
    Event, FilterRule, FilterRuleName, NotificationConfiguration, NotificationConfigurationFilter,
    QueueConfiguration, S3KeyFilter,
};

use model::service::Service;
use model::{AppError, AppResult};

#[derive(Clone)]
pub struct Store {
    pub client: Client,
    /// ARN of the store's webhook target pointing at `/system/store-events` (external stores;
    /// the embedded store reports objects itself).
    pub notify_arn: Option<String>,
    /// What the store's webhook sends as `Authorization: Bearer …`: its own secret, so a
    /// leaked service token cannot forge storage events.
    pub webhook_token: Option<String>,
    /// Largest upload accepted through the dashboard, in bytes.
    pub upload_limit: u64,
    /// Tells open bucket pages that a bucket's objects changed.
    pub changes: BucketChanges,
}

impl Store {
    /// Objects of `bucket` were created or deleted: pages showing it reload.
    pub fn changed(&self, bucket: &str) {
        // Nobody listening is not an error.
        let _ = self.changes.0.send(bucket.to_string());
    }

    /// The names of buckets as their objects change, on this server.
    pub fn subscribe_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.0.subscribe()
    }
}

/// Bucket names as their objects change: what the embedded store reports, an external store's
/// webhook and the dashboard's own deletions. Per server; a page that missed some reloads.
#[derive(Clone)]
pub struct BucketChanges(tokio::sync::broadcast::Sender<String>);

impl Default for BucketChanges {
    fn default() -> Self {
        Self(tokio::sync::broadcast::channel(256).0)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("notify_arn", &self.notify_arn)
            .field(
                "webhook_token",
                &self.webhook_token.as_ref().map(|_| "<redacted>"),
            )
            .field("upload_limit", &self.upload_limit)
            .finish_non_exhaustive()
    }
}

/// A time the store reports (an object's last modification) as the platform's, to the
/// millisecond where the store gives one.
pub fn time_of(at: &aws_sdk_s3::primitives::DateTime) -> model::Timestamp {
    at.to_millis().map_or_else(
        |_| model::Timestamp::from_secs(at.secs()),
        model::Timestamp::from_millis,
    )
}

/// The store could not be reached: users can only retry later; the server log keeps the cause.
pub fn unavailable(err: impl std::fmt::Display) -> AppError {
    AppError::unavailable("the object store", err)
}

/// A store request that failed. What the store refused because of what was asked (an object
/// where a folder is, a missing bucket) is the user's to fix, with the store's reason on
/// `field`; a store unreachable or answering "try again" (5xx) is [`unavailable`]; any other
/// answer (a denied request) is a fault of ours or of the store, logged with its cause.
pub fn refused<E>(field: &str, err: aws_sdk_s3::error::SdkError<E>) -> AppError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_s3::error::SdkError;
    let error = match &err {
        SdkError::ServiceError(refusal) => {
            let reason = refusal
                .err()
                .message()
                .unwrap_or("refused by the object store");
            match refusal.raw().status().as_u16() {
                400 | 422 => AppError::bad_request(field, reason),
                404 => AppError::NotFound(format!("{field}: {reason}")),
                409 => AppError::Conflict(format!("{field}: {reason}")),
                // Overloaded or starting (SlowDown, a proxy's 502/504): S3 clients retry these.
                500 | 502 | 503 | 504 => unavailable(DisplayErrorContext(err)),
                _ => AppError::internal("the object store", DisplayErrorContext(err)),
            }
        }
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) | SdkError::ResponseError(_) => {
            unavailable(DisplayErrorContext(err))
        }
        _ => AppError::internal("a store request", DisplayErrorContext(err)),
    };
    crate::metrics::store_error(match &error {
        AppError::Unavailable(_) => "unavailable",
        AppError::Internal(_) => "internal",
        _ => "refused",
    });
    error
}

/// [`refused`] for a request on a whole bucket: the bucket is what the user is told about.
pub fn refused_in<E>(bucket: &str, err: aws_sdk_s3::error::SdkError<E>) -> AppError
where
    E: aws_sdk_s3::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    refused(&format!("bucket {bucket:?}"), err)
}

/// The id of a notification rule this platform manages for a service.
fn rule_id(service: &str, index: usize) -> String {
    format!("oscar-{service}-{index}")
}

fn is_rule_of(id: Option<&str>, service: &str) -> bool {
    id.and_then(|id| id.strip_prefix(&format!("oscar-{service}-")))
        .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
}

/// The platform-store input folders of a service, by bucket: `bucket` → [`folder/`, …].
fn input_prefixes(service: &Service) -> Vec<(String, Vec<String>)> {
    let mut by_bucket: Vec<(String, Vec<String>)> = Vec::new();
    for input in service.input.iter().filter(|i| i.in_platform_store()) {
        let bucket = input.bucket_and_folder().0;
        let prefix = input.folder_prefix();
        match by_bucket.iter_mut().find(|(b, _)| b == bucket) {
            Some((_, prefixes)) => prefixes.push(prefix),
            None => by_bucket.push((bucket.to_string(), vec![prefix])),
        }
    }
    by_bucket
}

/// Subscribes the service's input folders to the webhook: one queue configuration per folder
/// (`s3:ObjectCreated:*`, prefix `folder/`), replacing this service's earlier ones and keeping
/// every other rule of the bucket. No store restart, unlike upstream.
pub async fn subscribe(store: &Store, service: &Service) -> AppResult<()> {
    let Some(arn) = &store.notify_arn else {
        return Ok(());
    };
    for (bucket, prefixes) in input_prefixes(service) {
        let rules = prefixes
            .iter()
            .enumerate()
            .map(|(i, prefix)| {
                QueueConfiguration::builder()
                    .id(rule_id(&service.name, i))
                    .queue_arn(arn)
                    .events(Event::from("s3:ObjectCreated:*"))
                    .filter(
                        NotificationConfigurationFilter::builder()
                            .key(
                                S3KeyFilter::builder()
                                    .filter_rules(
                                        FilterRule::builder()
                                            .name(FilterRuleName::Prefix)
                                            .value(prefix)
                                            .build(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| AppError::internal("notification rule", e))?;
        replace_rules(store, &bucket, &service.name, rules).await?;
    }
    Ok(())
}

/// Removes the service's rules from these buckets (those that still exist).
pub async fn unsubscribe(store: &Store, service: &str, buckets: &[String]) -> AppResult<()> {
    if store.notify_arn.is_none() {
        return Ok(());
    }
    for bucket in buckets {
        replace_rules(store, bucket, service, Vec::new()).await?;
    }
    Ok(())
}

async fn replace_rules(
    store: &Store,
    bucket: &str,
    service: &str,
    rules: Vec<QueueConfiguration>,
) -> AppResult<()> {
    let current = store
        .client
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
        .map_err(|e| refused_in(bucket, e))?;
    let mut queues: Vec<QueueConfiguration> = current
        .queue_configurations()
        .iter()
        .filter(|q| !is_rule_of(q.id(), service))
        .cloned()
        .collect();
    queues.extend(rules);
    let configuration = NotificationConfiguration::builder()
        .set_queue_configurations(Some(queues))
        .set_topic_configurations(current.topic_configurations.clone())
        .set_lambda_function_configurations(current.lambda_function_configurations.clone())
        .set_event_bridge_configuration(current.event_bridge_configuration.clone())
        .build();
    store
        .client
        .put_bucket_notification_configuration()
        .bucket(bucket)
        .notification_configuration(configuration)
        .send()
        .await
        .map_err(|e| refused_in(bucket, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_answers_map_to_what_the_user_can_do() {
        use aws_sdk_s3::config::http::HttpResponse;
        use aws_sdk_s3::error::{ErrorMetadata, SdkError};
        use aws_sdk_s3::operation::put_object::PutObjectError;
        use aws_sdk_s3::primitives::SdkBody;
        let answer = |status: u16| {
            let err = PutObjectError::generic(ErrorMetadata::builder().message("why").build());
            let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
            refused("key", SdkError::service_error(err, raw))
        };
        assert!(
            matches!(answer(400), AppError::BadRequest { field, message } if field == "key" && message == "why")
        );
        assert!(matches!(answer(404), AppError::NotFound(m) if m == "key: why"));
        assert!(matches!(answer(409), AppError::Conflict(m) if m == "key: why"));
        for status in [500, 502, 503, 504] {
            assert!(
                matches!(answer(status), AppError::Unavailable(_)),
                "{status}"
            );
        }
        assert!(matches!(answer(403), AppError::Internal(_)));
    }

    #[test]
    fn only_this_services_rules_are_replaced() {
        assert!(is_rule_of(Some("oscar-grayify-0"), "grayify"));
        assert!(!is_rule_of(Some("oscar-grayify-extra-0"), "grayify"));
        assert!(!is_rule_of(Some("user-rule"), "grayify"));
        assert!(!is_rule_of(None, "grayify"));
    }

    #[test]
    fn inputs_are_grouped_by_bucket_with_folder_prefixes() {
        let service = Service::from_json(serde_json::json!({
            "name": "s",
            "input": [
                {"storage_provider": "minio.default", "path": "b/in"},
                {"storage_provider": "minio.default", "path": "b/more/"},
                {"storage_provider": "minio.default", "path": "c"},
                {"storage_provider": "s3.aws", "path": "elsewhere/in"}
            ]
        }))
        .unwrap();
        assert_eq!(
            input_prefixes(&service),
            vec![
                (
                    "b".to_string(),
                    vec!["in/".to_string(), "more/".to_string()]
                ),
                ("c".to_string(), vec![String::new()]),
            ]
        );
    }
}
