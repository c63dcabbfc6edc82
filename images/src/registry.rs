//! Where an image is pulled from: its registry, or first the mirrors configured for it, over
//! HTTPS except for registries on this machine or declared insecure. The registry protocol
//! itself is oci-client's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// A registry that serves another one's images (`OSCAR_REGISTRY_MIRRORS`), tried before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    /// The registry mirrored, as in image references (`docker.io`, `ghcr.io`).
    pub registry: String,
    /// The mirror's `host[:port]`.
    pub host: String,
    /// Reached over plain HTTP (`http://` given).
    pub insecure: bool,
}

impl Mirror {
    /// `registry=https://host[:port]` or `registry=http://host[:port]`.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (registry, url) = entry
            .split_once('=')
            .ok_or_else(|| format!("{entry:?} is not registry=URL"))?;
        let (insecure, host) = if let Some(host) = url.strip_prefix("http://") {
            (true, host)
        } else if let Some(host) = url.strip_prefix("https://") {
            (false, host)
        } else {
            return Err(format!("{url:?} must start with http:// or https://"));
        };
        let host = host.trim_end_matches('/');
        if registry.is_empty() || host.is_empty() || host.contains('/') {
            return Err(format!("{entry:?} is not registry=http(s)://host[:port]"));
        }
        Ok(Self {
            registry: registry.to_string(),
            host: host.to_string(),
            insecure,
        })
    }
}

/// A user name and password for a registry (from a service's `image_pull_secrets`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, …)", self.username)
    }
}

/// The registry an image reference names, as credentials are matched to it (`docker.io` for
/// Docker Hub).
pub fn registry_of(image: &str) -> Result<String, String> {
    let reference: Reference = image
        .parse()
        .map_err(|e| format!("{image:?} is not an image reference: {e}"))?;
    Ok(reference.registry().to_string())
}

/// The repository an image reference names, with its registry: `docker.io/library/alpine`
/// for `alpine:3`, `ghcr.io/grycap/cowsay` for `ghcr.io/grycap/cowsay@sha256:…`.
pub fn repository_of(image: &str) -> Result<String, String> {
    let reference: Reference = image
        .parse()
        .map_err(|e| format!("{image:?} is not an image reference: {e}"))?;
    Ok(format!(
        "{}/{}",
        reference.registry(),
        reference.repository()
    ))
}

/// A registry address as people write it (`https://index.docker.io/v1/`, `ghcr.io`,
/// `harbor.lan:8443/`) as [`registry_of`] names it.
pub fn registry_host(server: &str) -> String {
    let host = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = host
        .split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// A registry host and the credentials used there.
type ClientKey = (String, Option<Credentials>);

pub(crate) struct Registries {
    mirrors: Vec<Mirror>,
    /// `host[:port]`s reached over plain HTTP besides loopback and insecure mirrors.
    insecure: Vec<String>,
    /// One client per registry host and credentials: a client keeps the first credentials
    /// (and tokens) it is given for a registry, which must never serve another user's pull.
    clients: Mutex<HashMap<ClientKey, Arc<Client>>>,
}

/// One place to pull from: a reference naming that registry, and how to sign in there.
pub(crate) struct Source {
    pub reference: Reference,
    pub auth: RegistryAuth,
    pub client: Arc<Client>,
}

impl Registries {
    pub fn new(mirrors: Vec<Mirror>, insecure: Vec<String>) -> Self {
        Self {
            mirrors,
            insecure,
            clients: Mutex::default(),
        }
    }

    /// Where to try `reference`, in order: its mirrors (anonymously), then its registry.
    pub fn sources(&self, reference: &Reference, credentials: Option<&Credentials>) -> Vec<Source> {
        let mut sources: Vec<Source> = self
            .mirrors
            .iter()
            .filter(|m| m.registry == reference.registry())
            .map(|mirror| Source {
                reference: on(reference, &mirror.host),
                auth: RegistryAuth::Anonymous,
                client: self.client(&mirror.host, None),
            })
            .collect();
        sources.push(Source {
            reference: reference.clone(),
            auth: credentials.map_or(RegistryAuth::Anonymous, |c| {
                RegistryAuth::Basic(c.username.clone(), c.password.clone())
            }),
            client: self.client(reference.resolve_registry(), credentials),
        });
        sources
    }

    fn client(&self, host: &str, credentials: Option<&Credentials>) -> Arc<Client> {
        let mut clients = self.clients.lock().expect("registry clients");
        clients
            .entry((host.to_string(), credentials.cloned()))
            .or_insert_with(|| {
                let http = is_loopback(host)
                    || self.insecure.iter().any(|h| h == host)
                    || self.mirrors.iter().any(|m| m.insecure && m.host == host);
                Arc::new(Client::new(ClientConfig {
                    protocol: if http {
                        ClientProtocol::Http
                    } else {
                        ClientProtocol::Https
                    },
                    connect_timeout: Some(Duration::from_secs(10)),
                    read_timeout: Some(Duration::from_secs(60)),
                    ..ClientConfig::default()
                }))
            })
            .clone()
    }
}

/// The same image on another registry host.
fn on(reference: &Reference, host: &str) -> Reference {
    let repository = reference.repository().to_string();
    match (reference.digest(), reference.tag()) {
        (Some(digest), _) => Reference::with_digest(host.into(), repository, digest.into()),
        (None, tag) => Reference::with_tag(host.into(), repository, tag.unwrap_or("latest").into()),
    }
}

/// Registries on this machine are spoken to over HTTP, as Docker does.
fn is_loopback(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name == "localhost"
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_are_parsed_with_their_scheme() {
        assert_eq!(
            Mirror::parse("docker.io=http://127.0.0.1:5000/"),
            Ok(Mirror {
                registry: "docker.io".into(),
                host: "127.0.0.1:5000".into(),
                insecure: true
            })
        );
        assert!(
            !Mirror::parse("ghcr.io=https://mirror.example")
                .unwrap()
                .insecure
        );
        assert!(Mirror::parse("docker.io=mirror.example").is_err());
        assert!(Mirror::parse("docker.io").is_err());
        assert!(Mirror::parse("docker.io=https://mirror.example/path").is_err());
    }

    #[test]
    fn mirrors_come_first_and_only_the_registry_gets_credentials() {
        let registries = Registries::new(
            vec![Mirror::parse("docker.io=http://127.0.0.1:5000").unwrap()],
            vec![],
        );
        let reference: Reference = "busybox:1.36".parse().unwrap();
        let credentials = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let sources = registries.sources(&reference, Some(&credentials));
        let places: Vec<_> = sources
            .iter()
            .map(|s| {
                (
                    s.reference.whole(),
                    matches!(s.auth, RegistryAuth::Anonymous),
                )
            })
            .collect();
        assert_eq!(
            places,
            [
                ("127.0.0.1:5000/library/busybox:1.36".to_string(), true),
                ("docker.io/library/busybox:1.36".to_string(), false),
            ]
        );
        let other: Reference = "ghcr.io/grycap/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
            .parse()
            .unwrap();
        assert_eq!(registries.sources(&other, None).len(), 1);
    }

    #[test]
    fn credentials_match_the_registry_an_image_names() {
        assert_eq!(registry_of("alpine").unwrap(), "docker.io");
        assert_eq!(registry_of("ghcr.io/grycap/cowsay:1").unwrap(), "ghcr.io");
        assert_eq!(
            registry_of("harbor.lan:8443/x/y").unwrap(),
            "harbor.lan:8443"
        );
        assert!(registry_of("UPPER/Case").is_err());
        assert_eq!(registry_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(registry_host("GHCR.io"), "ghcr.io");
        assert_eq!(registry_host("http://harbor.lan:8443/"), "harbor.lan:8443");
    }

    #[test]
    fn only_loopback_registries_are_plain_http_by_default() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example:5000"));
        assert!(!is_loopback("docker.io"));
    }
}
