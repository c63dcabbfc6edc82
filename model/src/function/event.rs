//! The events a job receives (oscar-api.md §5.2-5.3): storage notifications in MinIO/S3
//! shape, wrappers around them, or any other payload, which becomes the input file itself.
//! The platform builds its own notifications with [`minio_event`], so one parser serves events
//! from the embedded store, from MinIO webhooks and from `POST /job`.

use base64::Engine;
use serde_json::{Value, json};

/// A storage notification: which object was created, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageEvent {
    /// The storage provider the object lives in, e.g. `minio.default`.
    pub provider: String,
    pub bucket: String,
    /// The object key, decoded.
    pub key: String,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub size: Option<u64>,
    /// `eventTime` of the record.
    pub time: Option<String>,
    /// `eventName`, e.g. `s3:ObjectCreated:Put`.
    pub name: Option<String>,
}

impl StorageEvent {
    /// Whether the record reports a new object (not a deletion or another change).
    pub fn is_created(&self) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| n.contains("ObjectCreated"))
    }

    /// What identifies this version of the object, for "one job per object version": the
    /// version id when the store keeps versions, else the ETag, else the event time.
    pub fn object_version(&self) -> String {
        let version = self
            .version_id
            .as_deref()
            .filter(|v| !v.is_empty() && *v != "null")
            .map(|v| format!("v:{v}"))
            .or_else(|| {
                self.etag
                    .as_deref()
                    .filter(|e| !e.is_empty())
                    .map(|e| format!("e:{}", e.trim_matches('"')))
            })
            .or_else(|| self.time.as_deref().map(|t| format!("t:{t}")))
            .unwrap_or_default();
        // Another provider's bucket may share a name with one of the platform's.
        let provider = match self.provider.as_str() {
            DEFAULT_PROVIDER => String::new(),
            other => format!("{other}:"),
        };
        format!("{provider}{}/{}#{version}", self.bucket, self.key)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Storage(StorageEvent),
    /// Anything else: the payload becomes the input file (see [`payload_bytes`]).
    Unknown(Vec<u8>),
}

const DEFAULT_PROVIDER: &str = "minio.default";

/// Larger events are payloads whatever they hold: a notification is a few KiB, and the
/// platform can then tell a storage event from a payload without reading a large body whole.
pub const STORAGE_EVENT_LIMIT: usize = 1024 * 1024;

impl Event {
    /// Reads an event the way OSCAR's supervisor does: delegation and API-gateway wrappers are
    /// unwrapped, storage records recognised by `eventSource`, everything else is a payload.
    pub fn parse(raw: &[u8]) -> Self {
        if raw.len() > STORAGE_EVENT_LIMIT {
            return Self::Unknown(raw.to_vec());
        }
        parse_with_provider(raw, DEFAULT_PROVIDER)
    }

    /// The event as the script sees it in `$EVENT`: storage events as JSON, payloads as sent.
    pub fn storage(&self) -> Option<&StorageEvent> {
        match self {
            Self::Storage(event) => Some(event),
            Self::Unknown(_) => None,
        }
    }
}

/// Whether `raw` wraps its event with the store it names (`{"storage_provider", "event"}`):
/// such an event keeps that store, an unwrapped one is the platform's (or, routed, another's).
pub fn is_wrapped(raw: &[u8]) -> bool {
    serde_json::from_slice::<Value>(raw).is_ok_and(|v| v.get("storage_provider").is_some())
}

fn parse_with_provider(raw: &[u8], provider: &str) -> Event {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(raw) else {
        return Event::Unknown(raw.to_vec());
    };
    // Delegation wrapper: {"storage_provider": "minio.x", "event": "<original event>"}.
    if let Some(inner) = object.get("event") {
        let provider = object
            .get("storage_provider")
            .and_then(Value::as_str)
            .unwrap_or(provider);
        return match inner {
            Value::String(text) => parse_with_provider(text.as_bytes(), provider),
            other => parse_with_provider(other.to_string().as_bytes(), provider),
        };
    }
    // API gateway: the body is the event.
    if object.contains_key("httpMethod") {
        let body = object.get("body").and_then(Value::as_str).unwrap_or("");
        return parse_with_provider(body.as_bytes(), provider);
    }
    let record = object
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first());
    match record.and_then(|r| storage_record(r, provider)) {
        Some(event) => Event::Storage(event),
        None => Event::Unknown(raw.to_vec()),
    }
}

fn storage_record(record: &Value, provider: &str) -> Option<StorageEvent> {
    let source = record.get("eventSource")?.as_str()?;
    if !matches!(source, "minio:s3" | "aws:s3") {
        return None;
    }
    let s3 = record.get("s3")?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    let object = s3.get("object")?;
    Some(StorageEvent {
        provider: provider.to_string(),
        bucket: text(s3.get("bucket").and_then(|b| b.get("name")))?,
        key: decode_key(object.get("key")?.as_str()?),
        etag: text(object.get("eTag")),
        version_id: text(object.get("versionId")),
        size: object.get("size").and_then(Value::as_u64),
        time: text(record.get("eventTime")),
        name: text(record.get("eventName")),
    })
}

/// Object keys in notifications are query-escaped: `%2F` is a slash and `+` a space.
pub fn decode_key(key: &str) -> String {
    form_urlencoded::parse(format!("k={key}").as_bytes())
        .next()
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default()
}

/// Escapes a key the way MinIO does in notifications (the inverse of [`decode_key`]).
pub fn encode_key(key: &str) -> String {
    form_urlencoded::byte_serialize(key.as_bytes()).collect()
}

/// A MinIO `s3:ObjectCreated:*` notification for one object, as MinIO posts it to a webhook.
pub fn minio_event(
    event_name: &str,
    bucket: &str,
    key: &str,
    etag: Option<&str>,
    size: Option<u64>,
    event_time: &str,
) -> Value {
    let name = format!("s3:ObjectCreated:{event_name}");
    json!({
        "EventName": name,
        "Key": format!("{bucket}/{key}"),
        "Records": [{
            "eventVersion": "2.0",
            "eventSource": "minio:s3",
            "awsRegion": "",
            "eventTime": event_time,
            "eventName": name,
            "userIdentity": {"principalId": ""},
            "requestParameters": {"principalId": "", "region": "", "sourceIPAddress": ""},
            "responseElements": {},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "Config",
                "bucket": {"name": bucket, "ownerIdentity": {"principalId": ""}, "arn": format!("arn:aws:s3:::{bucket}")},
                "object": {"key": encode_key(key), "size": size, "eTag": etag.unwrap_or_default(), "userMetadata": {}},
            },
        }],
    })
}

/// The bytes a payload event writes to the input file: JSON as sent, anything else
/// base64-decoded (as upstream); a payload that is neither is kept as sent.
pub fn payload_bytes(raw: &[u8]) -> Vec<u8> {
    if serde_json::from_slice::<Value>(raw).is_ok() {
        return raw.to_vec();
    }
    let compact: Vec<u8> = raw
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .unwrap_or_else(|_| raw.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIO: &str = r#"{"EventName":"s3:ObjectCreated:Put","Key":"grayify/in/cat photo.jpg",
      "Records":[{"eventVersion":"2.0","eventSource":"minio:s3","eventTime":"2026-01-01T10:00:00.000Z",
      "s3":{"bucket":{"name":"grayify"},"object":{"key":"in%2Fcat+photo+%C3%A9t%C3%A9.jpg","size":1024,"eTag":"abc","versionId":""}}}]}"#;

    #[test]
    fn minio_events_give_the_decoded_key() {
        let Event::Storage(event) = Event::parse(MINIO.as_bytes()) else {
            panic!("not a storage event")
        };
        assert_eq!(event.bucket, "grayify");
        assert_eq!(event.key, "in/cat photo été.jpg");
        assert_eq!(event.size, Some(1024));
        assert_eq!(event.object_version(), "grayify/in/cat photo été.jpg#e:abc");
        assert_eq!(event.time.as_deref(), Some("2026-01-01T10:00:00.000Z"));
    }

    #[test]
    fn delegation_and_gateway_wrappers_are_unwrapped() {
        let delegated = json!({"storage_provider": "minio.edge", "event": MINIO}).to_string();
        let Event::Storage(event) = Event::parse(delegated.as_bytes()) else {
            panic!("not a storage event")
        };
        assert_eq!(event.provider, "minio.edge");
        let gateway = json!({"httpMethod": "POST", "body": MINIO}).to_string();
        assert!(matches!(
            Event::parse(gateway.as_bytes()),
            Event::Storage(_)
        ));
    }

    #[test]
    fn other_payloads_are_unknown() {
        assert_eq!(
            Event::parse(b"{\"a\":1}"),
            Event::Unknown(b"{\"a\":1}".to_vec())
        );
        assert!(matches!(Event::parse(b"aGVsbG8="), Event::Unknown(_)));
        let padded = format!("{MINIO}{}", " ".repeat(STORAGE_EVENT_LIMIT));
        assert!(
            matches!(Event::parse(padded.as_bytes()), Event::Unknown(_)),
            "a notification padded past the limit is a payload"
        );
        let foreign = br#"{"Records":[{"eventSource":"other"}]}"#;
        assert!(matches!(Event::parse(foreign), Event::Unknown(_)));
    }

    #[test]
    fn payloads_are_json_or_base64() {
        assert_eq!(payload_bytes(b"{\"a\": 1}"), b"{\"a\": 1}");
        assert_eq!(payload_bytes(b"aGVs\nbG8=\n"), b"hello");
        assert_eq!(payload_bytes(b"not base64!"), b"not base64!");
    }

    #[test]
    fn built_events_parse_back() {
        let built = minio_event(
            "Put",
            "b",
            "in/a b+c%.txt",
            Some("\"e1\""),
            Some(3),
            "2026-11-22T00:00:00Z",
        );
        let Event::Storage(event) = Event::parse(built.to_string().as_bytes()) else {
            panic!("not a storage event")
        };
        assert_eq!(event.key, "in/a b+c%.txt");
        assert_eq!(event.object_version(), "b/in/a b+c%.txt#e:e1");
    }

    /// Property tests: keys of any text survive the escaping of notifications.
    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Any unicode, and often the characters escaping gets wrong.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[a-zA-Z0-9 +%/&=?#.~*_\\\\:;,é€😀\u{0}\n-]{0,40}",
            ]
        }

        proptest! {
            #[test]
            fn keys_decode_to_what_was_encoded(key in text()) {
                let encoded = encode_key(&key);
                prop_assert!(
                    encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"*-._+%".contains(&b)),
                    "{:?}",
                    encoded
                );
                prop_assert_eq!(decode_key(&encoded), key);
            }

            #[test]
            fn built_events_parse_back_to_their_object(
                bucket in text(),
                key in text(),
                name in prop_oneof![Just("Put"), Just("Copy"), Just("CompleteMultipartUpload")],
                etag in proptest::option::of("[0-9a-f]{32}"),
                size in proptest::option::of(any::<u64>()),
            ) {
                let built = minio_event(name, &bucket, &key, etag.as_deref(), size, "2026-11-22T00:00:00Z");
                let parsed = Event::parse(built.to_string().as_bytes());
                let Some(event) = parsed.storage() else {
                    return Err(TestCaseError::fail(format!("not a storage event: {built}")));
                };
                prop_assert_eq!(&event.bucket, &bucket);
                prop_assert_eq!(&event.key, &key);
                prop_assert_eq!(event.size, size);
                prop_assert!(event.is_created());
                prop_assert_eq!(event.name.clone(), Some(format!("s3:ObjectCreated:{name}")));
            }
        }
    }
}
