//! The S3-compatible object store of embedded mode: s3s-fs over a directory, served on a TCP
//! listener. The rest of the platform reaches it only through aws-sdk-s3, exactly as it reaches
//! an external MinIO, so embedded and production mode differ only in configuration.
//!
//! Requests must be signed with the root keys or with a key the platform issued to a person
//! or a running job ([`KeyRing`]); those reach only the buckets the platform allows them.
//!
//! Like MinIO's bucket notifications, every object created (PutObject, CopyObject,
//! CompleteMultipartUpload) is reported to a [`Notifier`]; unlike MinIO's webhook, the
//! client's request is answered only once the platform has taken the report, so an
//! acknowledged upload always has its job queued.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use s3s::service::{S3Service, S3ServiceBuilder};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

mod keys;
mod markers;
pub use keys::{KeyRing, Keys, Reach, UPLOADER, object_key};

/// How long in-flight S3 requests may take to finish once shutdown starts.
/// Stored files are the users' own, and the store answers on the dashboard's site: a
/// browser must never sniff them into another type, nor run them as a page with an origin
/// (`sandbox`). PDFs are the exception: Chrome refuses to start its viewer in any sandbox,
/// and a response typed `application/pdf` without sniffing renders as a PDF or not at all.
fn harmless(headers: &mut http::HeaderMap) {
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        http::HeaderValue::from_static("nosniff"),
    );
    let pdf = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.eq_ignore_ascii_case("application/pdf"));
    if !pdf {
        headers.insert(
            http::header::CONTENT_SECURITY_POLICY,
            http::HeaderValue::from_static("sandbox"),
        );
    }
}

const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How long an upload's answer waits for the platform to take its notification; after that
/// the platform's reconciler finds the object instead.
const NOTIFY_WAIT: Duration = Duration::from_secs(10);

/// An object was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectCreated {
    /// `Put`, `Copy` or `CompleteMultipartUpload`, as in MinIO's `s3:ObjectCreated:*` names.
    pub event_name: &'static str,
    pub bucket: String,
    pub key: String,
    /// The access key that signed the request, unless it was the root key (the platform's own).
    pub signer: Option<String>,
}

/// A notification and the channel to say it has been handled.
#[derive(Debug)]
pub struct Notification {
    pub object: ObjectCreated,
    pub handled: oneshot::Sender<()>,
}

pub type Notifier = mpsc::Sender<Notification>;

/// A running embedded S3 server. Dropping it without [`EmbeddedS3::shutdown`] aborts it.
pub struct EmbeddedS3 {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl EmbeddedS3 {
    /// Serves the objects under `root` (created when missing) on `listener`, accepting only
    /// requests signed with `keys`, reporting created objects to `notify`.
    pub fn start(
        listener: TcpListener,
        root: &Path,
        keys: Keys,
        notify: Option<Notifier>,
    ) -> anyhow::Result<Self> {
        let root_key = keys.root_access_key.clone();
        let service = service(root, keys)?;

        let addr = listener.local_addr()?;
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let http = ConnBuilder::new(TokioExecutor::new());
            let graceful = GracefulShutdown::new();
            loop {
                let socket = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((socket, _)) => socket,
                        Err(err) => {
                            tracing::warn!(%err, "embedded S3: accept failed");
                            continue;
                        }
                    },
                    _ = stopped.changed() => break,
                };
                // Answers go out in several writes (headers, streamed bodies): no Nagle delay.
                if let Err(err) = socket.set_nodelay(true) {
                    tracing::warn!(%err, "embedded S3: cannot set TCP_NODELAY");
                }
                let (service, notify) = (service.clone(), notify.clone());
                let root_key = root_key.clone();
                let notifying =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let created = object_created(req.method(), req.uri(), req.headers()).map(
                            |mut object| {
                                // Verified by the store before the response succeeds.
                                object.signer =
                                    signer(req.uri(), req.headers()).filter(|key| *key != root_key);
                                object
                            },
                        );
                        let (service, notify) = (service.clone(), notify.clone());
                        async move {
                            let mut response = hyper::service::Service::call(&service, req).await?;
                            harmless(response.headers_mut());
                            if let (Some(object), Some(notify), true) =
                                (created, notify, response.status().is_success())
                            {
                                report(&notify, object).await;
                            }
                            Ok::<_, s3s::HttpError>(response)
                        }
                    });
                let conn = http.serve_connection(TokioIo::new(socket), notifying);
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(err) = conn.await {
                        tracing::debug!(%err, "embedded S3: connection ended with an error");
                    }
                });
            }
            if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
                .await
                .is_err()
            {
                tracing::warn!("embedded S3: connections still open after the grace period");
            }
        });
        tracing::info!(%addr, root = %root.display(), "embedded S3 server listening");
        Ok(Self {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// The address the server listens on (useful when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL clients use (path-style addressing).
    pub fn endpoint_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// The S3 service [`EmbeddedS3::start`] serves: s3s-fs over `root` (created when missing),
/// accepting only requests signed with `keys`. The fuzz targets drive it in-process.
pub fn service(root: &Path, keys: Keys) -> anyhow::Result<S3Service> {
    std::fs::create_dir_all(root)
        .with_context(|| format!("cannot create S3 data directory {}", root.display()))?;
    let fs = s3s_fs::FileSystem::new(root)
        // s3s_fs::Error does not implement std::error::Error.
        .map_err(|e| anyhow::anyhow!("cannot open S3 data directory {}: {e:?}", root.display()))?;
    let adopted = markers::adopt_empty_directories(root)
        .with_context(|| format!("cannot record the folders in {}", root.display()))?;
    if adopted > 0 {
        tracing::info!(
            folders = adopted,
            "empty folders of an earlier store recorded"
        );
    }
    let mut builder = S3ServiceBuilder::new(keys::Scoped {
        fs,
        root: root.to_path_buf(),
        keys: keys.clone(),
    });
    builder.set_auth(keys.clone());
    builder.set_access(keys);
    Ok(builder.build())
}

/// The object a request creates if it succeeds, from its method and path-style URI.
// Public for the fuzz targets (fuzz/), not part of the API.
#[doc(hidden)]
pub fn object_created(
    method: &http::Method,
    uri: &http::Uri,
    headers: &http::HeaderMap,
) -> Option<ObjectCreated> {
    // Decoded whole, then split, as s3s does: an escaped slash (`%2F`) is still a slash.
    let path = percent_encoding::percent_decode_str(uri.path())
        .decode_utf8()
        .ok()?;
    let (bucket, key) = path.strip_prefix('/')?.split_once('/')?;
    // Folder markers (`folder/`) are not files: nothing to report.
    if key.is_empty() || key.ends_with('/') {
        return None;
    }
    let query: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or_default())
        .collect();
    let has = |name: &str| query.contains(&name);
    let event_name = match *method {
        // Parts, tags, ACLs and retention settings create no object.
        http::Method::PUT
            if ![
                "partNumber",
                "uploadId",
                "tagging",
                "acl",
                "retention",
                "legal-hold",
            ]
            .iter()
            .any(|q| has(q)) =>
        {
            if headers.contains_key("x-amz-copy-source") {
                "Copy"
            } else {
                "Put"
            }
        }
        http::Method::POST if has("uploadId") => "CompleteMultipartUpload",
        _ => return None,
    };
    Some(ObjectCreated {
        event_name,
        bucket: bucket.to_string(),
        key: key.to_string(),
        signer: None,
    })
}

/// The access key of a SigV4 request: `Credential=<key>/<scope>` in the Authorization header,
/// or `X-Amz-Credential` in a presigned URL's query.
// Public for the fuzz targets (fuzz/), not part of the API.
#[doc(hidden)]
pub fn signer(uri: &http::Uri, headers: &http::HeaderMap) -> Option<String> {
    let from_header = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split_once("Credential=")
                .map(|(_, rest)| rest.to_string())
        });
    let credential = from_header.or_else(|| {
        uri.query()?.split('&').find_map(|pair| {
            let value = pair.strip_prefix("X-Amz-Credential=")?;
            Some(
                percent_encoding::percent_decode_str(value)
                    .decode_utf8_lossy()
                    .into_owned(),
            )
        })
    })?;
    let key = credential.split('/').next()?;
    (!key.is_empty()).then(|| key.to_string())
}

async fn report(notify: &Notifier, object: ObjectCreated) {
    let (handled, done) = oneshot::channel();
    let sent = notify.send(Notification { object, handled }).await;
    if sent.is_ok() && tokio::time::timeout(NOTIFY_WAIT, done).await.is_err() {
        tracing::warn!(
            "embedded S3: a notification was not handled in time; the reconciler will find the object"
        );
    }
}

impl Drop for EmbeddedS3 {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(method: &str, uri: &str, copy: bool) -> Option<(&'static str, String, String)> {
        let mut headers = http::HeaderMap::new();
        if copy {
            headers.insert("x-amz-copy-source", "b/k".parse().unwrap());
        }
        object_created(&method.parse().unwrap(), &uri.parse().unwrap(), &headers)
            .map(|o| (o.event_name, o.bucket, o.key))
    }

    #[test]
    fn the_signer_comes_from_the_authorization_header_or_a_presigned_query() {
        let mut headers = http::HeaderMap::new();
        let uri: http::Uri = "/b/k".parse().unwrap();
        assert_eq!(signer(&uri, &headers), None);
        headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=OSCUABC/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00"
                .parse()
                .unwrap(),
        );
        assert_eq!(signer(&uri, &headers).as_deref(), Some("OSCUABC"));
        let presigned: http::Uri =
            "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=OSCJ-s-1%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
                .parse()
                .unwrap();
        assert_eq!(
            signer(&presigned, &http::HeaderMap::new()).as_deref(),
            Some("OSCJ-s-1")
        );
    }

    #[test]
    fn only_requests_that_create_objects_are_reported() {
        let put = Some(("Put", "b".to_string(), "in/a b.txt".to_string()));
        assert_eq!(created("PUT", "/b/in/a%20b.txt?x-id=PutObject", false), put);
        assert_eq!(created("PUT", "/b/in/a%20b.txt", true).unwrap().0, "Copy");
        assert_eq!(
            created("POST", "/b/big.bin?uploadId=1", false).unwrap().0,
            "CompleteMultipartUpload"
        );
        assert_eq!(
            created("PUT", "/b/big.bin?partNumber=1&uploadId=1", false),
            None
        );
        assert_eq!(created("POST", "/b/big.bin?uploads", false), None);
        assert_eq!(created("PUT", "/b/k?tagging", false), None);
        assert_eq!(created("PUT", "/b", false), None);
        assert_eq!(created("PUT", "/b/", false), None);
        assert_eq!(created("PUT", "/b/in/", false), None);
        // s3s decodes the path before splitting it (seen reading the code, then with the fuzz
        // target `object_keys`).
        assert_eq!(created("PUT", "/b/in%2F", false), None);
        let split = Some(("Put", "b".to_string(), "in/a.txt".to_string()));
        assert_eq!(created("PUT", "/b%2Fin/a.txt", false), split);
        assert_eq!(created("GET", "/b/k", false), None);
        assert_eq!(created("DELETE", "/b/k", false), None);
    }

    /// Requests from the fuzz target `multipart_uploads` (fuzz/) that the store answered with
    /// 500 or that wrote outside their bucket, sent to the service `start` serves.
    mod hostile_requests {
        use std::time::SystemTime;

        use aws_sigv4::http_request::{
            PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest,
            SigningSettings, UriPathNormalizationMode, sign,
        };

        use super::super::{Keys, service};

        const ACCESS_KEY: &str = "root";
        const SECRET_KEY: &str = "root-secret";

        struct Store {
            service: s3s::service::S3Service,
            dir: tempfile::TempDir,
        }

        impl Store {
            fn new() -> Self {
                let dir = tempfile::tempdir().unwrap();
                for bucket in ["fuzz", "other"] {
                    std::fs::create_dir_all(dir.path().join("store").join(bucket)).unwrap();
                }
                let keys = Keys {
                    root_access_key: ACCESS_KEY.into(),
                    root_secret_key: SECRET_KEY.into(),
                    ring: None,
                };
                let service = service(&dir.path().join("store"), keys).unwrap();
                Self { service, dir }
            }

            /// Sends `method target` signed with the root keys: the status and the answer.
            async fn send(&self, method: &str, target: &str, body: &str) -> (u16, String) {
                self.send_with(method, target, &[], body).await
            }

            async fn send_with(
                &self,
                method: &str,
                target: &str,
                headers: &[(&str, &str)],
                body: &str,
            ) -> (u16, String) {
                let mut request = http::Request::builder()
                    .method(method)
                    .uri(target)
                    .header("host", "localhost")
                    .header("content-length", body.len())
                    .body(s3s::Body::from(body.to_string()))
                    .unwrap();
                for (name, value) in headers {
                    request.headers_mut().insert(
                        http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        value.parse().unwrap(),
                    );
                }
                let identity = aws_credential_types::Credentials::new(
                    ACCESS_KEY, SECRET_KEY, None, None, "test",
                )
                .into();
                let mut settings = SigningSettings::default();
                settings.percent_encoding_mode = PercentEncodingMode::Single;
                settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
                settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
                let params = aws_sigv4::sign::v4::SigningParams::builder()
                    .identity(&identity)
                    .region("us-east-1")
                    .name("s3")
                    .time(SystemTime::now())
                    .settings(settings)
                    .build()
                    .unwrap()
                    .into();
                let headers: Vec<(String, String)> = request
                    .headers()
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                    .collect();
                let signable = SignableRequest::new(
                    method,
                    format!("http://localhost{target}"),
                    headers.iter().map(|(n, v)| (n.as_str(), v.as_str())),
                    SignableBody::Bytes(body.as_bytes()),
                )
                .unwrap();
                let (instructions, _) = sign(signable, &params).unwrap().into_parts();
                instructions.apply_to_request_http1x(&mut request);
                let response = self.service.call(request).await.unwrap();
                let status = response.status().as_u16();
                let mut body = response.into_body();
                let body = body.store_all_limited(1 << 20).await.unwrap();
                (status, String::from_utf8_lossy(&body).into_owned())
            }

            async fn create_upload(&self, key: &str) -> String {
                let (status, body) = self.send("POST", &format!("/fuzz/{key}?uploads"), "").await;
                assert_eq!(status, 200, "{body}");
                let start = body.find("<UploadId>").unwrap() + "<UploadId>".len();
                let end = body.find("</UploadId>").unwrap();
                body[start..end].to_string()
            }
        }

        fn complete(parts: &[u32]) -> String {
            let parts: String = parts
                .iter()
                .map(|n| format!("<Part><PartNumber>{n}</PartNumber><ETag>x</ETag></Part>"))
                .collect();
            format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
        }

        #[tokio::test]
        async fn completing_with_a_part_never_uploaded_is_invalid_and_keeps_the_upload() {
            let store = Store::new();
            let upload = store.create_upload("k").await;
            let target = format!("/fuzz/k?uploadId={upload}");
            let (status, body) = store.send("POST", &target, &complete(&[1, 2])).await;
            assert_eq!(status, 400, "{body}");
            assert!(body.contains("<Code>InvalidPart</Code>"), "{body}");

            let part = format!("/fuzz/k?partNumber=1&uploadId={upload}");
            assert_eq!(store.send("PUT", &part, "hello").await.0, 200);
            let (status, body) = store.send("POST", &target, &complete(&[1])).await;
            assert_eq!(status, 200, "{body}");
            let (status, body) = store.send("GET", "/fuzz/k", "").await;
            assert_eq!((status, body.as_str()), (200, "hello"));
        }

        #[tokio::test]
        async fn objects_cannot_sit_inside_objects_or_where_folders_are() {
            let store = Store::new();
            assert_eq!(store.send("PUT", "/fuzz/p", "file").await.0, 200);
            // Found by the fuzzer: `p/p` after `p` (s3s-fs answered 500).
            for (method, target) in [("PUT", "/fuzz/p/p"), ("POST", "/fuzz/p/p?uploads")] {
                let (status, body) = store.send(method, target, "").await;
                assert_eq!(status, 400, "{method} {target}: {body}");
                assert!(body.contains("<Code>XMinioParentIsObject</Code>"), "{body}");
            }
            // An upload started before `p` was stored cannot complete inside it.
            let upload = store.create_upload("q/r").await;
            assert_eq!(store.send("PUT", "/fuzz/q", "file").await.0, 200);
            let part = format!("/fuzz/q/r?partNumber=1&uploadId={upload}");
            assert_eq!(store.send("PUT", &part, "x").await.0, 200);
            let done = format!("/fuzz/q/r?uploadId={upload}");
            let (status, body) = store.send("POST", &done, &complete(&[1])).await;
            assert_eq!(status, 400, "{body}");
            assert!(body.contains("<Code>XMinioParentIsObject</Code>"), "{body}");
            let copy = [("x-amz-copy-source", "fuzz/p")];
            let (status, body) = store.send_with("PUT", "/fuzz/p/q/r", &copy, "").await;
            assert_eq!(status, 400, "{body}");
            let (status, body) = store.send("PUT", "/fuzz/p/", "").await;
            assert_eq!(status, 400, "a folder named like an object: {body}");

            // The other way round: an object named like a folder.
            assert_eq!(store.send("PUT", "/fuzz/dir/x", "x").await.0, 200);
            assert_eq!(store.send("PUT", "/fuzz/marker/", "").await.0, 200);
            for target in ["/fuzz/dir", "/fuzz/marker"] {
                let (status, body) = store.send("PUT", target, "x").await;
                assert_eq!(status, 409, "{target}: {body}");
                assert!(
                    body.contains("<Code>XMinioObjectExistsAsDirectory</Code>"),
                    "{body}"
                );
            }
            // What was there is untouched, and neighbours are fine.
            assert_eq!(store.send("GET", "/fuzz/p", "").await, (200, "file".into()));
            assert_eq!(
                store.send("GET", "/fuzz/dir/x", "").await,
                (200, "x".into())
            );
            assert_eq!(store.send("PUT", "/fuzz/dir/y/z", "z").await.0, 200);
            assert_eq!(store.send("PUT", "/fuzz/pq", "x").await.0, 200);
            // A folder is no object: 404 as in MinIO (s3s-fs answered 500, which rclone
            // retries for every folder it mounts).
            for (method, target) in [("HEAD", "/fuzz/dir"), ("GET", "/fuzz/marker")] {
                let (status, body) = store.send(method, target, "").await;
                assert_eq!(status, 404, "{method} {target}: {body}");
            }
        }

        #[tokio::test]
        async fn keys_cannot_leave_their_bucket() {
            let store = Store::new();
            for key in ["../other/x", "a/../../other/x", "a/./b", "/abs"] {
                let (status, body) = store
                    .send("POST", &format!("/fuzz/{key}?uploads"), "")
                    .await;
                assert_eq!(status, 400, "{key}: {body}");
                assert!(body.contains("<Code>InvalidArgument</Code>"), "{body}");
                let put = store.send("PUT", &format!("/fuzz/{key}"), "escape").await;
                assert_eq!(put.0, 400, "{key}: {}", put.1);
            }
            // The copy source too: reading another bucket through `fuzz/..`.
            std::fs::write(store.dir.path().join("store/other/secret"), "s").unwrap();
            let upload = store.create_upload("k").await;
            let part = format!("/fuzz/k?partNumber=1&uploadId={upload}");
            let copy = [("x-amz-copy-source", "fuzz/../other/secret")];
            let (status, body) = store.send_with("PUT", &part, &copy, "").await;
            assert_eq!(status, 400, "{body}");
            // Keys in a DeleteObjects body: a file and a whole (empty) bucket of another.
            for key in ["../other/secret", "../other/", "a/../../other/secret"] {
                let body = format!("<Delete><Object><Key>{key}</Key></Object></Delete>");
                let (status, answer) = store.send("POST", "/fuzz?delete", &body).await;
                assert_eq!(status, 400, "{key}: {answer}");
                assert!(answer.contains("<Code>InvalidArgument</Code>"), "{answer}");
            }
            assert!(store.dir.path().join("store/other/secret").exists());
            std::fs::remove_file(store.dir.path().join("store/other/secret")).unwrap();
            let (status, answer) = store
                .send(
                    "POST",
                    "/fuzz?delete",
                    "<Delete><Object><Key>../other/</Key></Object></Delete>",
                )
                .await;
            assert_eq!(status, 400, "{answer}");
            assert!(store.dir.path().join("store/other").is_dir());
            let other = store.dir.path().join("store/other");
            assert_eq!(std::fs::read_dir(other).unwrap().count(), 0);
            let root: Vec<_> = std::fs::read_dir(store.dir.path().join("store"))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|name| !name.starts_with('.'))
                .collect();
            assert_eq!(root.len(), 2, "{root:?}");
        }

        #[tokio::test]
        async fn keys_too_long_for_the_store_are_refused_not_failed() {
            let store = Store::new();
            for key in ["a".repeat(200), "a/".repeat(100), "\u{FFFD}".repeat(64)] {
                const PATH: &percent_encoding::AsciiSet =
                    &percent_encoding::NON_ALPHANUMERIC.remove(b'/');
                let escaped = percent_encoding::utf8_percent_encode(&key, PATH);
                let target = format!("/fuzz/{escaped}?uploads");
                let (status, body) = store.send("POST", &target, "").await;
                assert_eq!(status, 400, "{body}");
                assert!(body.contains("<Code>KeyTooLongError</Code>"), "{body}");
            }
            // What fits is stored.
            let key = "k".repeat(120);
            let upload = store.create_upload(&key).await;
            let part = format!("/fuzz/{key}?partNumber=1&uploadId={upload}");
            assert_eq!(store.send("PUT", &part, "x").await.0, 200);
            let done = format!("/fuzz/{key}?uploadId={upload}");
            assert_eq!(store.send("POST", &done, &complete(&[1])).await.0, 200);
            assert_eq!(
                store
                    .send("PUT", &format!("/fuzz/{}", "p".repeat(160)), "x")
                    .await
                    .0,
                200
            );
        }
    }
}
