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

/// One file a listing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The key inside the bucket (the path below the first folder for WebDAV).
    pub key: String,
    /// Without quotes; None when the server gives none.
    pub etag: Option<String>,
    pub size: Option<u64>,
    /// Seconds since the epoch.
    pub modified: Option<i64>,
}

/// The most files one listing of an input folder returns: a folder is listed on every poll,
/// and one holding more belongs in a store that sends events.
pub const LIST_LIMIT: usize = 100_000;

/// The largest answer to one WebDAV listing request.
const LISTING_BYTES: usize = 16 << 20;
/// The most folders one listing visits, each a request.
const LIST_FOLDERS: usize = 1_000;

/// Why a transfer failed, and whether trying again could help.
#[derive(Debug)]
pub enum Failure {
    /// The provider or the network may recover: the platform retries the job.
    Transient(String),
    /// The provider refused what was asked (credentials, permissions, a bad path): the job
    /// fails, with the reason, and is not retried.
    Refused(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transient(reason) | Self::Refused(reason) => f.write_str(reason),
        }
    }
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
    /// The provider `provider_id` (`kind.id`) names, with its credentials: from
    /// `<providers_dir>/<provider_id>/{accessKey,secretKey}` when the job has them there (the
    /// platform's store), else from the service's definition.
    pub fn connect(
        providers_dir: Option<&Path>,
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
                let mounted = providers_dir.map(|dir| dir.join(provider_id));
                let read = |name: &str| {
                    std::fs::read_to_string(mounted.as_ref()?.join(name))
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
                            "storage provider {provider_id}: no credentials (no access_key and secret_key in the service{})",
                            mounted
                                .map(|m| format!(", nothing in {}", m.display()))
                                .unwrap_or_default()
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

    /// Every file under `prefix` (a folder, `folder/`, or empty for the whole bucket) of
    /// `bucket`, at any depth, up to [`LIST_LIMIT`].
    pub async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, Failure> {
        match self {
            Self::S3(client) => list_s3(client, bucket, prefix).await,
            Self::Http(http) => http.list(bucket, prefix).await,
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

async fn list_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Listed>, Failure> {
    let mut pages = client
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    let mut listed = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let reason = format!("cannot list {bucket}/{prefix}: {}", storage::describe(&e));
            match e.raw_response().map(|r| r.status().as_u16()) {
                Some(401 | 403 | 404) => Failure::Refused(reason),
                _ => Failure::Transient(reason),
            }
        })?;
        for object in page.contents() {
            let key = object.key().unwrap_or_default();
            if key.ends_with('/') {
                continue;
            }
            listed.push(Listed {
                key: key.to_string(),
                etag: object.e_tag().map(|e| e.trim_matches('"').to_string()),
                size: object.size().and_then(|s| u64::try_from(s).ok()),
                modified: object.last_modified().map(|t| t.secs()),
            });
            if listed.len() >= LIST_LIMIT {
                return Ok(listed);
            }
        }
    }
    Ok(listed)
}

/// `host` as upstream writes it (no scheme: HTTPS), or a whole URL (`http://` for a server on
/// a private network or loopback).
pub fn root_url(host: &str) -> String {
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
            // A redirect would carry the credentials to wherever the server points.
            .redirect(reqwest::redirect::Policy::none())
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
    /// folders take. `.` and `..` are refused: URLs resolve them (encoded too), which would
    /// leave the folder the path names.
    fn url(&self, path: &str, folder: bool) -> Result<String, Failure> {
        let mut url = self.root.clone();
        if model::service::validate::has_dot_segment(path) {
            return Err(Failure::Refused(format!(
                "{path:?} in {}: a path may not hold '.' or '..'",
                self.provider
            )));
        }
        for segment in path.split('/').filter(|s| !s.is_empty()) {
            url.push('/');
            url.push_str(&encode(segment));
        }
        if folder {
            url.push('/');
        }
        Ok(url)
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
            .request(Method::GET, &self.url(path, false)?)
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

    /// Walks the folders below `bucket/prefix` one level at a time (`Depth: 1`, which every
    /// server allows, where `infinity` is often refused).
    async fn list(&self, bucket: &str, prefix: &str) -> Result<Vec<Listed>, Failure> {
        if self.dialect != Dialect::WebDav {
            return Err(Failure::Refused(format!(
                "{}: this provider is written to only, never listed",
                self.provider
            )));
        }
        let decode = |path: &str| {
            percent_encoding::percent_decode_str(path)
                .decode_utf8_lossy()
                .into_owned()
        };
        // Hrefs are paths from the server's root, whatever the provider's root URL holds.
        let root_path = reqwest::Url::parse(&self.root)
            .map(|u| decode(u.path().trim_end_matches('/')))
            .unwrap_or_default();
        let bucket_path = format!("{root_path}/{bucket}/");
        let mut listed = Vec::new();
        let mut folders = vec![prefix.trim_end_matches('/').to_string()];
        let mut visited = 0;
        while let Some(folder) = folders.pop() {
            visited += 1;
            if visited > LIST_FOLDERS {
                return Err(Failure::Refused(format!(
                    "cannot list {bucket}/{prefix} in {}: more than {LIST_FOLDERS} folders",
                    self.provider
                )));
            }
            let path = format!("{bucket}/{folder}");
            let body = match self.propfind(&path).await? {
                Some(body) => body,
                // Not made yet: nothing to process.
                None => continue,
            };
            for entry in multistatus(&body).map_err(|e| {
                Failure::Transient(format!("cannot list {path} in {}: {e}", self.provider))
            })? {
                let path = decode(entry.path());
                let Some(key) = path.strip_prefix(&bucket_path) else {
                    continue;
                };
                let key = key.trim_end_matches('/');
                if key == folder || key.is_empty() {
                    continue;
                }
                if entry.folder {
                    folders.push(key.to_string());
                } else {
                    listed.push(Listed {
                        key: key.to_string(),
                        etag: entry.etag,
                        size: entry.size,
                        modified: entry.modified,
                    });
                    if listed.len() >= LIST_LIMIT {
                        return Ok(listed);
                    }
                }
            }
        }
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(listed)
    }

    /// The multistatus of a `Depth: 1` PROPFIND on a folder, None when there is no folder.
    async fn propfind(&self, folder: &str) -> Result<Option<String>, Failure> {
        const PROPERTIES: &str = r#"<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getetag/><D:getcontentlength/><D:getlastmodified/></D:prop></D:propfind>"#;
        let response = self
            .request(
                Method::from_bytes(b"PROPFIND").expect("PROPFIND is a valid method"),
                &self.url(folder, true)?,
            )
            .header("Depth", "1")
            .header(reqwest::header::CONTENT_TYPE, "application/xml")
            .body(PROPERTIES)
            .send()
            .await
            .map_err(|e| self.unreachable("list", folder, &e))?;
        let mut response = match response.status() {
            StatusCode::MULTI_STATUS => response,
            StatusCode::NOT_FOUND => return Ok(None),
            status => return Err(self.failed("list", folder, status)),
        };
        // The server is the service owner's choice: its answer is read only up to a bound.
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.unreachable("list", folder, &e))?
        {
            if body.len() + chunk.len() > LISTING_BYTES {
                return Err(Failure::Refused(format!(
                    "cannot list {folder} in {}: the listing is larger than {} MiB",
                    self.provider,
                    LISTING_BYTES >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(String::from_utf8_lossy(&body).into_owned()))
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
            .request(Method::PUT, &self.url(path, false)?)
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
        let url = self.url(folder, true)?;
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

/// One `<response>` of a WebDAV multistatus.
#[derive(Debug, Default)]
struct Entry {
    href: String,
    folder: bool,
    etag: Option<String>,
    size: Option<u64>,
    modified: Option<i64>,
}

impl Entry {
    /// The href's path, whether the server wrote it as a path or a whole URL.
    fn path(&self) -> &str {
        match self.href.find("://") {
            Some(scheme) => {
                let rest = &self.href[scheme + 3..];
                rest.find('/').map_or("/", |slash| &rest[slash..])
            }
            None => &self.href,
        }
    }
}

/// The entries of a multistatus body (RFC 4918 §14.16), by element names whatever their
/// namespace prefix.
fn multistatus(body: &str) -> Result<Vec<Entry>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let mut entries = Vec::new();
    let mut entry: Option<Entry> = None;
    // The element whose text is being read, and that text.
    let mut reading: Option<(Vec<u8>, String)> = None;
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("not a WebDAV listing: {e}"))?
        {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_vec();
                match name.as_slice() {
                    b"response" => entry = Some(Entry::default()),
                    b"collection" => {
                        if let Some(entry) = entry.as_mut() {
                            entry.folder = true;
                        }
                    }
                    b"href" | b"getetag" | b"getcontentlength" | b"getlastmodified" => {
                        reading = Some((name, String::new()));
                    }
                    _ => {}
                }
            }
            Event::Empty(e) if e.local_name().as_ref() == b"collection" => {
                if let Some(entry) = entry.as_mut() {
                    entry.folder = true;
                }
            }
            Event::Text(text) => {
                if let Some((_, value)) = reading.as_mut() {
                    value.push_str(&text.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some((_, value)) = reading.as_mut() {
                    let name = reference.decode().map_err(|e| e.to_string())?;
                    match reference.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => value.push(c),
                        None => value.push_str(
                            quick_xml::escape::resolve_predefined_entity(&name).unwrap_or(""),
                        ),
                    }
                }
            }
            Event::End(e) => match e.local_name().as_ref() {
                b"response" => entries.extend(entry.take()),
                name => {
                    if let (Some((reading_name, value)), Some(entry)) = (&reading, entry.as_mut())
                        && reading_name == name
                    {
                        let value = value.trim();
                        match name {
                            b"href" => entry.href = value.to_string(),
                            b"getetag" => {
                                entry.etag = Some(value.trim_matches('"').to_string())
                                    .filter(|e| !e.is_empty());
                            }
                            b"getcontentlength" => entry.size = value.parse().ok(),
                            _ => {
                                entry.modified = httpdate::parse_http_date(value)
                                    .ok()
                                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                                    .and_then(|d| i64::try_from(d.as_secs()).ok());
                            }
                        }
                        reading = None;
                    }
                }
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(entries)
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
            http.url("out/with space/ü?#.txt", false).unwrap(),
            "https://h/dav/out/with%20space/%C3%BC%3F%23.txt"
        );
        assert_eq!(http.url("out/sub", true).unwrap(), "https://h/dav/out/sub/");
        for escaping in ["in/../private/x", "in/./x", ".."] {
            assert!(http.url(escaping, false).is_err(), "{escaping}");
        }
    }

    #[test]
    fn multistatus_bodies_are_read_whatever_the_prefixes() {
        // dCache's form: default namespace, whole URLs, an entity in a name.
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<multistatus xmlns="DAV:"><response><href>https://dcache.example.org:2880/data/in/</href>
<propstat><prop><resourcetype><collection/></resourcetype></prop><status>HTTP/1.1 200 OK</status></propstat></response>
<response><href>https://dcache.example.org:2880/data/in/a%20b&amp;c.txt</href><propstat><prop>
<resourcetype/><getetag>"0000A1B2"</getetag><getcontentlength>12</getcontentlength>
<getlastmodified>Sun, 06 Dec 2026 12:47:24 GMT</getlastmodified></prop></propstat></response></multistatus>"#;
        let entries = multistatus(body).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(entries[0].folder && entries[0].path() == "/data/in/");
        let file = &entries[1];
        assert!(!file.folder);
        assert_eq!(file.path(), "/data/in/a%20b&c.txt");
        assert_eq!(file.etag.as_deref(), Some("0000A1B2"));
        assert_eq!(file.size, Some(12));
        assert_eq!(file.modified, Some(1_796_561_244));
        assert!(multistatus("<multistatus><response></href>").is_err());
    }

    #[test]
    fn unknown_kinds_and_missing_fields_are_named() {
        let config: FunctionConfig = serde_norway::from_str(
            "storage_providers:\n  webdav:\n    d: {login: u}\n  onedata:\n    o: {oneprovider_host: h, token: t}\n",
        )
        .unwrap();
        let err = |id: &str| match Remote::connect(None, &config, id) {
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
