//! The storage providers a job reads its input from and writes its outputs to, as the
//! service's `storage_providers` declare them: MinIO and S3 through aws-sdk-s3, WebDAV servers
//! (dCache among them) and Onedata's CDMI interface over HTTP. Every transfer streams, so a
//! file of any size needs a few buffers of memory.
//!
//! A location is `bucket/key` as for S3: for WebDAV the bucket is the first folder of the
//! path under the server's root, for Onedata the first folder inside the space.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use model::function::Report;
use model::function::config::{FunctionConfig, Provider};
use model::service::PLATFORM_STORE;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use reqwest::{Method, StatusCode};

use crate::storage;

/// Why a transfer failed, and whether trying again could help.
#[derive(Debug)]
pub enum Failure {
    /// The provider or the network may recover: the platform retries the job.
    Transient(String),
    /// The provider refused what was asked (credentials, permissions, a bad path): the job
    /// fails, with the reason, and is not retried.
    Refused(String),
}

impl Failure {
    /// How the job ends, with what was uploaded before.
    pub fn report(self, outputs: Vec<String>) -> Report {
        match self {
            Self::Transient(reason) => Report::Error { reason },
            Self::Refused(reason) => Report::Failed {
                exit_code: None,
                reason,
                outputs,
            },
        }
    }
}

/// A connected storage provider.
pub enum Remote {
    S3(aws_sdk_s3::Client),
    Http(Http),
}

impl Remote {
    /// The provider `provider_id` (`kind.id`) names, with its credentials: for the platform's
    /// store from `<providers_dir>/minio.default/{accessKey,secretKey}`, for any other from
    /// the service's definition.
    pub fn connect(
        providers_dir: &Path,
        config: &FunctionConfig,
        provider_id: &str,
    ) -> Result<Self, String> {
        let provider_id = if provider_id.is_empty() {
            PLATFORM_STORE
        } else {
            provider_id
        };
        let kind = provider_id.split('.').next().unwrap_or_default();
        let provider = config.provider(provider_id).cloned().unwrap_or_default();
        let missing = |field: &str| {
            format!("storage provider {provider_id}: no {field} in the service's storage_providers")
        };
        match kind {
            "minio" | "s3" => {
                let endpoint = match (provider.endpoint.as_str(), kind) {
                    ("", "s3") => format!(
                        "https://s3.{}.amazonaws.com",
                        if provider.region.is_empty() {
                            "us-east-1"
                        } else {
                            &provider.region
                        }
                    ),
                    ("", _) => return Err(missing("endpoint")),
                    (endpoint, _) => endpoint.to_string(),
                };
                let mounted = providers_dir.join(provider_id);
                let read = |name: &str| {
                    std::fs::read_to_string(mounted.join(name))
                        .ok()
                        .map(|v| v.trim().to_string())
                };
                let (access, secret) = match (read("accessKey"), read("secretKey")) {
                    (Some(access), Some(secret)) => (access, secret),
                    _ if !provider.access_key.is_empty() && !provider.secret_key.is_empty() => {
                        (provider.access_key.clone(), provider.secret_key.clone())
                    }
                    _ => {
                        return Err(format!(
                            "storage provider {provider_id}: no credentials (neither {} nor access_key/secret_key in the service)",
                            mounted.display()
                        ));
                    }
                };
                Ok(Self::S3(storage::client(
                    &endpoint,
                    &provider.region,
                    &access,
                    &secret,
                )))
            }
            "webdav" => {
                let host = provider.field("hostname");
                if host.is_empty() {
                    return Err(missing("hostname"));
                }
                let auth = match (
                    provider.field("login"),
                    provider.field("password"),
                    provider.field("token"),
                ) {
                    (_, _, token) if !token.is_empty() => Auth::Bearer(token.to_string()),
                    ("", _, _) => Auth::None,
                    (login, password, _) => Auth::Basic(login.to_string(), password.to_string()),
                };
                Http::new(
                    provider_id,
                    root_url(host),
                    auth,
                    Dialect::WebDav,
                    &provider,
                )
                .map(Self::Http)
            }
            "onedata" => {
                let (host, token, space) = (
                    provider.field("oneprovider_host"),
                    provider.field("token"),
                    provider.field("space"),
                );
                for (field, value) in [
                    ("oneprovider_host", host),
                    ("token", token),
                    ("space", space),
                ] {
                    if value.is_empty() {
                        return Err(missing(field));
                    }
                }
                let root = format!("{}/cdmi/{}", root_url(host), encode(space));
                Http::new(
                    provider_id,
                    root,
                    Auth::Token(token.to_string()),
                    Dialect::Cdmi,
                    &provider,
                )
                .map(Self::Http)
            }
            _ => Err(format!(
                "storage provider {provider_id}: {kind} is not a provider this platform reaches (minio, s3, webdav, onedata)"
            )),
        }
    }

    pub async fn download(&self, bucket: &str, key: &str, to: &Path) -> Result<(), Failure> {
        match self {
            Self::S3(client) => storage::download(client, bucket, key, to)
                .await
                .map_err(Failure::Transient),
            Self::Http(http) => http.download(&format!("{bucket}/{key}"), to).await,
        }
    }

    pub async fn upload(&self, bucket: &str, key: &str, from: &Path) -> Result<(), Failure> {
        match self {
            Self::S3(client) => storage::upload(client, bucket, key, from)
                .await
                .map_err(Failure::Transient),
            Self::Http(http) => http.upload(&format!("{bucket}/{key}"), from).await,
        }
    }
}

/// `host` as upstream writes it (no scheme: HTTPS), or a whole URL (`http://` for a server on
/// a private network or loopback).
fn root_url(host: &str) -> String {
    let host = host.trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        format!("https://{host}")
    }
}

/// What a path segment keeps unencoded: unreserved characters only.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}')
    .add(b'&')
    .add(b'+')
    .add(b';')
    .add(b'=')
    .add(b'\'');

fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// How the server wants the caller named.
enum Auth {
    None,
    Basic(String, String),
    Bearer(String),
    /// Onedata's access token header.
    Token(String),
}

/// Which protocol the server speaks on top of HTTP.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    /// RFC 4918: folders made with MKCOL, files with PUT.
    WebDav,
    /// CDMI 1.1.1 as Onedata serves it: folders made by a CDMI container PUT, files with a
    /// plain HTTP PUT of their content.
    Cdmi,
}

/// A WebDAV or CDMI server: every path is below `root`.
pub struct Http {
    provider: String,
    client: reqwest::Client,
    root: String,
    auth: Auth,
    dialect: Dialect,
    /// Folders made (or found) by this job, so that each output does not make them again.
    folders: Mutex<HashSet<String>>,
}

impl Http {
    fn new(
        provider: &str,
        root: String,
        auth: Auth,
        dialect: Dialect,
        settings: &Provider,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(120))
            .danger_accept_invalid_certs(settings.verify == Some(false))
            .build()
            .map_err(|e| format!("storage provider {provider}: {e}"))?;
        Ok(Self {
            provider: provider.to_string(),
            client,
            root,
            auth,
            dialect,
            folders: Mutex::new(HashSet::new()),
        })
    }

    /// The URL of `path` (`a/b/c`), each segment encoded; `folder` adds the trailing slash
    /// folders take.
    fn url(&self, path: &str, folder: bool) -> String {
        let mut url = self.root.clone();
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            url.push('/');
            url.push_str(&encode(segment));
        }
        if folder {
            url.push('/');
        }
        url
    }

    fn request(&self, method: Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.client.request(method, url);
        match &self.auth {
            Auth::None => request,
            Auth::Basic(login, password) => request.basic_auth(login, Some(password)),
            Auth::Bearer(token) => request.bearer_auth(token),
            Auth::Token(token) => request.header("X-Auth-Token", token),
        }
    }

    /// An answer other than success: a refusal unless the server asked to be tried later or
    /// failed itself.
    fn failed(&self, what: &str, path: &str, status: StatusCode) -> Failure {
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                ": the server refused the provider's credentials"
            }
            _ => "",
        };
        let reason = format!(
            "cannot {what} {path} in {}: the server answered {status}{hint}",
            self.provider
        );
        let transient = status.is_server_error()
            || matches!(
                status,
                StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
            );
        if transient {
            Failure::Transient(reason)
        } else {
            Failure::Refused(reason)
        }
    }

    fn unreachable(&self, what: &str, path: &str, err: &reqwest::Error) -> Failure {
        Failure::Transient(format!(
            "cannot {what} {path} in {}: {}",
            self.provider,
            storage::describe(err)
        ))
    }

    async fn download(&self, path: &str, to: &Path) -> Result<(), Failure> {
        use tokio::io::AsyncWriteExt;
        let mut response = self
            .request(Method::GET, &self.url(path, false))
            .send()
            .await
            .map_err(|e| self.unreachable("download", path, &e))?;
        if response.status() != StatusCode::OK {
            return Err(self.failed("download", path, response.status()));
        }
        let local =
            |e: std::io::Error| Failure::Transient(format!("cannot write {}: {e}", to.display()));
        let mut file = tokio::fs::File::create(to).await.map_err(local)?;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.unreachable("download", path, &e))?
        {
            file.write_all(&chunk).await.map_err(local)?;
        }
        file.flush().await.map_err(local)
    }

    async fn upload(&self, path: &str, from: &Path) -> Result<(), Failure> {
        let mut folder = String::new();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        for segment in segments.iter().take(segments.len().saturating_sub(1)) {
            if !folder.is_empty() {
                folder.push('/');
            }
            folder.push_str(segment);
            self.make_folder(&folder).await?;
        }
        let local =
            |e: std::io::Error| Failure::Transient(format!("cannot read {}: {e}", from.display()));
        let file = tokio::fs::File::open(from).await.map_err(local)?;
        let size = file.metadata().await.map_err(local)?.len();
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
        let response = self
            .request(Method::PUT, &self.url(path, false))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, size)
            .body(body)
            .send()
            .await
            .map_err(|e| self.unreachable("upload", path, &e))?;
        match response.status() {
            StatusCode::OK | StatusCode::CREATED | StatusCode::NO_CONTENT => Ok(()),
            status => Err(self.failed("upload", path, status)),
        }
    }

    /// Makes `folder` unless it exists; its parent exists already.
    async fn make_folder(&self, folder: &str) -> Result<(), Failure> {
        if self.known(folder) {
            return Ok(());
        }
        let url = self.url(folder, true);
        let request = match self.dialect {
            Dialect::WebDav => self.request(
                Method::from_bytes(b"MKCOL").expect("MKCOL is a valid method"),
                &url,
            ),
            Dialect::Cdmi => self
                .request(Method::PUT, &url)
                .header("X-CDMI-Specification-Version", "1.1.1")
                .header(reqwest::header::CONTENT_TYPE, "application/cdmi-container"),
        };
        let response = request
            .send()
            .await
            .map_err(|e| self.unreachable("make the folder", folder, &e))?;
        let made = match (self.dialect, response.status()) {
            (_, StatusCode::CREATED) => true,
            // RFC 4918 §9.3.1: MKCOL on an existing resource is 405.
            (Dialect::WebDav, StatusCode::METHOD_NOT_ALLOWED) => true,
            // CDMI: a container PUT on an existing container updates it.
            (Dialect::Cdmi, StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT) => true,
            _ => false,
        };
        if !made {
            return Err(self.failed("make the folder", folder, response.status()));
        }
        self.folders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(folder.to_string());
        Ok(())
    }

    fn known(&self, folder: &str) -> bool {
        self.folders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(folder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_without_a_scheme_are_https_as_upstream() {
        assert_eq!(
            root_url("dcache.example.org:2880"),
            "https://dcache.example.org:2880"
        );
        assert_eq!(root_url("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    }

    #[test]
    fn every_segment_is_encoded_and_folders_end_in_a_slash() {
        let http = Http::new(
            "webdav.x",
            "https://h/dav".into(),
            Auth::None,
            Dialect::WebDav,
            &Provider::default(),
        )
        .unwrap();
        assert_eq!(
            http.url("out/with space/ü?#.txt", false),
            "https://h/dav/out/with%20space/%C3%BC%3F%23.txt"
        );
        assert_eq!(http.url("out/sub", true), "https://h/dav/out/sub/");
    }

    #[test]
    fn unknown_kinds_and_missing_fields_are_named() {
        let config: FunctionConfig = serde_norway::from_str(
            "storage_providers:\n  webdav:\n    d: {login: u}\n  onedata:\n    o: {oneprovider_host: h, token: t}\n",
        )
        .unwrap();
        let dir = Path::new("/nonexistent");
        let err = |id: &str| match Remote::connect(dir, &config, id) {
            Err(e) => e,
            Ok(_) => panic!("{id} connected"),
        };
        assert!(
            err("webdav.d").contains("no hostname"),
            "{}",
            err("webdav.d")
        );
        assert!(
            err("onedata.o").contains("no space"),
            "{}",
            err("onedata.o")
        );
        assert!(err("rucio.r").contains("rucio is not a provider"));
    }
}
