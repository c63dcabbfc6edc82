//! Hostile multipart uploads against the embedded object store, in-process: the s3s service
//! `embedded_s3::service` builds for `EmbeddedS3::start` (s3s-fs over a temporary directory,
//! the platform's `Keys`), driven with requests signed (SigV4, aws-sigv4 as the SDKs sign)
//! with the root keys.
//!
//! The input is a list of requests separated by `\n---\n`, each
//!
//! ```text
//! METHOD /fuzz/<key>?<query>
//! header: value
//!
//! body
//! ```
//!
//! `{upload}` anywhere in a request stands for the upload id the last CreateMultipartUpload
//! answered. Only multipart requests (a query with `uploads` or `uploadId`) to the bucket
//! `fuzz` are sent. The store must never panic, never answer 5xx (but 501 for what it does not
//! implement) and never put anything outside the bucket the request named (the bucket `other`
//! stays empty). `OSCAR_FUZZ_LOG=1` prints every request and answer.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use embedded_s3::{Keys, object_created, signer};
use libfuzzer_sys::fuzz_target;
use s3s::service::S3Service;

const ACCESS_KEY: &str = "oscar-fuzz-root";
const SECRET_KEY: &str = "oscar-fuzz-root-secret";
const BUCKETS: [&str; 2] = ["fuzz", "other"];
const MAX_REQUESTS: usize = 12;

struct Store {
    runtime: tokio::runtime::Runtime,
    service: S3Service,
    root: PathBuf,
    identity: Identity,
    _dir: tempfile::TempDir,
}

static STORE: LazyLock<Store> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("temporary directory");
    let root = dir.path().join("store");
    let keys = Keys {
        root_access_key: ACCESS_KEY.into(),
        root_secret_key: SECRET_KEY.into(),
        ring: None,
    };
    let service = embedded_s3::service(&root, keys).expect("embedded S3 service");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let identity =
        aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "fuzz").into();
    Store {
        runtime,
        service,
        root,
        identity,
        _dir: dir,
    }
});

/// One request of the input, `{upload}` replaced.
struct Request {
    method: http::Method,
    target: String,
    headers: Vec<(http::HeaderName, http::HeaderValue)>,
    body: Vec<u8>,
}

fn replace(bytes: &[u8], upload: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    if !text.contains("{upload}") {
        return bytes.to_vec();
    }
    text.replace("{upload}", upload).into_bytes()
}

impl Request {
    fn parse(raw: &[u8], upload: &str) -> Option<Self> {
        let raw = replace(raw, upload);
        let (head, body) = match find(&raw, b"\n\n") {
            Some(at) => (&raw[..at], raw[at + 2..].to_vec()),
            None => (&raw[..], Vec::new()),
        };
        let head = std::str::from_utf8(head).ok()?;
        let mut lines = head.lines();
        let (method, target) = lines.next()?.split_once(' ')?;
        let method = http::Method::from_bytes(method.as_bytes()).ok()?;
        let target = target.trim_end().to_string();
        // Multipart requests to the bucket `fuzz` only.
        let (path, query) = target.split_once('?')?;
        if !(path == "/fuzz" || path.starts_with("/fuzz/")) {
            return None;
        }
        let multipart = query
            .split('&')
            .any(|pair| matches!(pair.split('=').next(), Some("uploads" | "uploadId")));
        if !multipart {
            return None;
        }
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line.split_once(':')?;
            let name = http::HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
            // The signature and the framing are the client's (and hyper's) business.
            let reserved = name == http::header::AUTHORIZATION
                || name == http::header::HOST
                || name == http::header::CONTENT_LENGTH
                || name == http::header::TRANSFER_ENCODING
                || name.as_str().starts_with("x-amz-date")
                || name.as_str().starts_with("x-amz-content-sha256")
                || name.as_str().starts_with("x-amz-security-token");
            if reserved {
                continue;
            }
            headers.push((name, http::HeaderValue::from_str(value.trim()).ok()?));
        }
        Some(Self {
            method,
            target,
            headers,
            body,
        })
    }

    /// The request as hyper hands it to the service, signed with the root keys.
    fn signed(&self, identity: &Identity) -> Option<http::Request<s3s::Body>> {
        let mut request = http::Request::builder()
            .method(self.method.clone())
            .uri(self.target.parse::<http::Uri>().ok()?)
            .header(http::header::HOST, "localhost")
            .header(http::header::CONTENT_LENGTH, self.body.len())
            .body(s3s::Body::from(Bytes::from(self.body.clone())))
            .ok()?;
        for (name, value) in &self.headers {
            request.headers_mut().append(name.clone(), value.clone());
        }
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let params = v4::SigningParams::builder()
            .identity(identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()
            .ok()?
            .into();
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect::<Option<Vec<_>>>()?;
        let signable = SignableRequest::new(
            self.method.as_str(),
            format!("http://localhost{}", self.target),
            headers.into_iter(),
            SignableBody::Bytes(&self.body),
        )
        .ok()?;
        let (instructions, _) = sign(signable, &params).ok()?.into_parts();
        instructions.apply_to_request_http1x(&mut request);
        Some(request)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn split_requests(data: &[u8]) -> Vec<&[u8]> {
    let mut requests = Vec::new();
    let mut rest = data;
    while let Some(at) = find(rest, b"\n---\n") {
        requests.push(&rest[..at]);
        rest = &rest[at + 5..];
    }
    requests.push(rest);
    requests
}

/// Empties the store: each input starts from the two buckets and nothing else.
fn reset(root: &Path) {
    for entry in std::fs::read_dir(root).expect("store directory") {
        let path = entry.expect("store entry").path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).expect("remove a bucket");
        } else {
            std::fs::remove_file(&path).expect("remove a file");
        }
    }
    for bucket in BUCKETS {
        std::fs::create_dir(root.join(bucket)).expect("create a bucket");
    }
}

/// What the store keeps at its root besides buckets: s3s-fs's own hidden files.
fn check_layout(root: &Path, log: &[String]) {
    for entry in std::fs::read_dir(root).expect("store directory") {
        let name = entry.expect("store entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            name.starts_with('.') || BUCKETS.contains(&name.as_ref()),
            "{name:?} was created outside the buckets by:\n{}",
            log.join("\n")
        );
    }
    let other = std::fs::read_dir(root.join("other"))
        .expect("bucket other")
        .count();
    assert_eq!(
        other,
        0,
        "requests to the bucket fuzz wrote into the bucket other:\n{}",
        log.join("\n")
    );
}

fn upload_id(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<UploadId>")? + "<UploadId>".len();
    let end = start + text[start..].find("</UploadId>")?;
    Some(text[start..end].to_string())
}

fuzz_target!(|data: &[u8]| {
    let store = &*STORE;
    reset(&store.root);
    let mut upload = String::from("00000000-0000-4000-8000-000000000000");
    let mut log = Vec::new();
    for raw in split_requests(data).into_iter().take(MAX_REQUESTS) {
        let Some(request) = Request::parse(raw, &upload) else {
            continue;
        };
        let Some(signed) = request.signed(&store.identity) else {
            continue;
        };
        // What `EmbeddedS3::start` asks of every request before it serves it.
        let created = object_created(signed.method(), signed.uri(), signed.headers());
        assert_eq!(
            signer(signed.uri(), signed.headers()).as_deref(),
            Some(ACCESS_KEY)
        );
        let described = format!(
            "{} {} {:?} body {:?}",
            request.method,
            request.target,
            request.headers,
            String::from_utf8_lossy(&request.body)
        );
        let (status, body) = store.runtime.block_on(async {
            let response = match store.service.call(signed).await {
                Ok(response) => response,
                Err(err) => panic!("the store failed on {described}: {err:?}"),
            };
            let status = response.status();
            let mut body = response.into_body();
            let body = body
                .store_all_limited(1 << 20)
                .await
                .unwrap_or_else(|err| panic!("unreadable answer to {described}: {err}"));
            (status, body)
        });
        log.push(format!("{described} -> {status}"));
        if std::env::var_os("OSCAR_FUZZ_LOG").is_some() {
            eprintln!(
                "{described} -> {status}\n{}",
                String::from_utf8_lossy(&body)
            );
        }
        // 501 is the answer for an operation the store does not offer (ListMultipartUploads),
        // whatever the request holds; any other 5xx is the store failing.
        assert!(
            !status.is_server_error() || status == http::StatusCode::NOT_IMPLEMENTED,
            "{status} for {described}: {}\nafter:\n{}",
            String::from_utf8_lossy(&body),
            log.join("\n")
        );
        if status.is_success() {
            if let Some(id) = upload_id(&body) {
                upload = id;
            }
            if let Some(object) = created {
                assert_eq!(object.bucket, "fuzz");
            }
        }
    }
    check_layout(&store.root, &log);
});
