//! Talking to federation members: another OSCAR cluster (this platform or upstream) reached
//! with the `clusters` credentials (Basic, or a bearer token from the owner's OIDC refresh
//! token), or a plain endpoint. Every call has a timeout (upstream's
//! 20 s), follows no redirect (the credentials go nowhere else) and reads a bounded answer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::db::Database;
use model::service::Service;
use model::service::federation::{Cluster, Replica};
use serde::Deserialize;
use supervisor::storage::describe;

/// How long a call to a member may take (upstream's delegation and federation clients).
const TIMEOUT: Duration = Duration::from_secs(20);
/// How long a member's load is trusted.
const LOAD_FRESH_FOR: Duration = Duration::from_secs(10);
/// Tokens and loads remembered at most (forgotten all at once past it, as upstream does).
const CACHE_ENTRIES: usize = 500;
/// The most of an answer read (a service definition, a status, an error).
const ANSWER_BYTES: usize = 4 << 20;

/// A member's answer to a hand-off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It holds the job now (201, or 200 from an endpoint).
    Accepted,
    /// It did not take it (it was unreachable, or answered an error): the next member may.
    Refused(String),
    /// The request may have arrived and been stored (the answer was lost): only this member
    /// can say, so it is asked again.
    Unknown(String),
}

/// How much room a member has, from its `/system/status`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Whether one of its nodes has the CPU and memory the service asks for.
    pub fits: bool,
    /// 0 (full) to 1 (idle): the geometric mean of its schedulable CPU and memory shares.
    pub room: f64,
}

/// Offers one server makes at once: each may wait on several members' timeouts.
const OFFERS_AT_ONCE: usize = 8;

/// How members are reached, and what is remembered of them.
pub struct Peers {
    offers: std::sync::Arc<tokio::sync::Semaphore>,
    /// Whether members may be on loopback, private or link-local addresses
    /// (`OSCAR_FEDERATION_PRIVATE_PEERS`). Otherwise any user could have the platform call
    /// its own network's services, a cloud's metadata endpoint among them.
    private: bool,
    /// Service tokens by endpoint, service and the credentials that read them: a token read
    /// with one service's credentials serves no other's.
    tokens: Mutex<HashMap<(String, String, String), String>>,
    loads: Mutex<HashMap<String, (Instant, StatusRead)>>,
    /// The platform's identity provider, which exchanges `clusters` refresh tokens.
    oidc: std::sync::OnceLock<crate::oidc::Oidc>,
    /// Access tokens by the digest of the refresh token they came from, until they expire.
    access: Mutex<HashMap<String, (String, Instant)>>,
    refreshing: tokio::sync::Mutex<()>,
    /// Where refresh tokens the provider rotated are saved, in place of the ones they replace.
    db: std::sync::OnceLock<Database>,
    /// Refresh tokens the provider rotated, by the digest of the one they replace: the
    /// definitions in hand still hold that one until they are read again.
    rotated: Mutex<HashMap<String, String>>,
}

impl Peers {
    pub fn new(private: bool) -> Self {
        Self {
            offers: std::sync::Arc::new(tokio::sync::Semaphore::new(OFFERS_AT_ONCE)),
            private,
            tokens: Mutex::default(),
            loads: Mutex::default(),
            oidc: Default::default(),
            access: Mutex::default(),
            refreshing: Default::default(),
            db: Default::default(),
            rotated: Mutex::default(),
        }
    }

    /// Lets `clusters` entries with a refresh token reach their members; refresh tokens the
    /// provider rotates are saved in `db`.
    pub fn use_oidc(&self, oidc: crate::oidc::Oidc, db: Database) {
        let _ = self.oidc.set(oidc);
        let _ = self.db.set(db);
    }
}

/// An access token is used up to this long before it expires.
const EXPIRY_MARGIN: Duration = Duration::from_secs(30);

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers").finish_non_exhaustive()
    }
}

/// `endpoint` + `/path/parts`, whatever slashes the endpoint ends with.
pub fn url(endpoint: &str, path: &str) -> String {
    format!("{}/{}", endpoint.trim().trim_end_matches('/'), path)
}

/// Loopback, private, shared (CGNAT), link-local and unspecified addresses: a network's own.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal(IpAddr::V4(v4)),
            None => {
                let segments = v6.segments();
                let first = segments[0];
                // NAT64 (64:ff9b::/96) reaches IPv4 addresses: the embedded one decides.
                if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                    let [a, b] = segments[6].to_be_bytes();
                    let [c, d] = segments[7].to_be_bytes();
                    return is_internal(IpAddr::from([a, b, c, d]));
                }
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

impl Peers {
    /// A client for one call to `url`: its host resolved and checked here, then pinned to the
    /// address checked, so a name that resolves elsewhere the second time changes nothing.
    async fn client(&self, url: &str, verify: bool) -> Result<reqwest::Client, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
        let port = parsed.port_or_known_default().unwrap_or(443);
        let host = parsed
            .host_str()
            .ok_or_else(|| format!("{url:?} has no host"))?;
        let (name, addresses) = match host.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => (None, vec![SocketAddr::new(ip, port)]),
            Err(_) => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
                    .await
                    .map_err(|e| format!("cannot resolve {host}: {e}"))?
                    .collect();
                if found.is_empty() {
                    return Err(format!("{host} has no address"));
                }
                (Some(host.to_string()), found)
            }
        };
        if !self.private
            && let Some(inside) = addresses.iter().find(|a| is_internal(a.ip()))
        {
            return Err(format!(
                "{host} is on a loopback, private or link-local address ({}); the platform's \
                 OSCAR_FEDERATION_PRIVATE_PEERS allows members there",
                inside.ip()
            ));
        }
        // No proxy: it would resolve the name again, past the check.
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .danger_accept_invalid_certs(!verify);
        if let Some(name) = name {
            builder = builder.resolve_to_addrs(&name, &addresses);
        }
        builder.build().map_err(|e| describe(&e))
    }

    /// Hands `event` to `member` as job `job` of `from`. Another OSCAR gets it on
    /// `/job/<service_name>` with its service token (fetched with the cluster credentials, and
    /// fetched again when refused); an endpoint gets it at its URL.
    pub async fn hand_off(
        &self,
        member: &Replica,
        cluster: Option<&Cluster>,
        event: &str,
        job: &str,
        from: &str,
    ) -> Answer {
        let (target, verify) = match (member.is_oscar(), cluster) {
            (true, Some(cluster)) => (
                url(&cluster.endpoint, &format!("job/{}", member.service_name)),
                cluster.ssl_verify,
            ),
            (true, None) => {
                return Answer::Refused(format!("cluster {:?} is not defined", member.cluster_id));
            }
            (false, _) => (member.url.clone(), member.ssl_verify),
        };
        let client = match self.client(&target, verify).await {
            Ok(client) => client,
            Err(why) => return Answer::Refused(why),
        };
        let mut fresh_token = false;
        loop {
            let mut request = client
                .post(&target)
                .header("Content-Type", "application/json")
                .header("X-Delegated-Job-ID", job)
                .header("X-Delegated-From", from)
                .body(event.to_string());
            for (name, value) in &member.headers {
                request = request.header(name, value);
            }
            if let Some(cluster) = cluster.filter(|_| member.is_oscar()) {
                match self.token(member, cluster, fresh_token).await {
                    Ok(token) => request = request.bearer_auth(token),
                    Err(why) => return Answer::Refused(why),
                }
            }
            let response = match request.send().await {
                Ok(response) => response,
                // Nothing was sent: the member cannot have it.
                Err(err) if err.is_connect() => {
                    return Answer::Refused(format!("cannot connect: {}", describe(&err)));
                }
                Err(err) => return Answer::Unknown(describe(&err)),
            };
            let status = response.status();
            let accepted = if member.is_oscar() {
                status == reqwest::StatusCode::CREATED
            } else {
                status.is_success()
            };
            if accepted {
                return Answer::Accepted;
            }
            if status == reqwest::StatusCode::UNAUTHORIZED && member.is_oscar() && !fresh_token {
                fresh_token = true;
                continue;
            }
            // A gateway's 502/504, a server's error: the job may have been stored there.
            if status.is_server_error() && member.is_oscar() {
                return Answer::Unknown(format!("{status}: {}", brief(response).await));
            }
            return Answer::Refused(format!("{status}: {}", brief(response).await));
        }
    }

    /// A request to the member cluster's `path`, with its credentials.
    async fn on_cluster(
        &self,
        cluster: &Cluster,
        method: reqwest::Method,
        path: &str,
    ) -> Result<reqwest::RequestBuilder, String> {
        let target = url(&cluster.endpoint, path);
        let client = self.client(&target, cluster.ssl_verify).await?;
        let request = client.request(method, target);
        if cluster.auth_user.is_empty() && !cluster.refresh_token.is_empty() {
            return Ok(request.bearer_auth(self.access_token(cluster).await?));
        }
        Ok(request.basic_auth(&cluster.auth_user, Some(&cluster.auth_password)))
    }

    /// An access token from the cluster's refresh token: remembered until shortly before it
    /// expires. A refresh token the provider rotates is saved in place of the old one, in every
    /// definition holding it, and used from then on.
    async fn access_token(&self, cluster: &Cluster) -> Result<String, String> {
        let key = credentials_digest(cluster);
        let remembered = || {
            self.access
                .lock()
                .expect("access tokens")
                .get(&key)
                .filter(|(_, until)| Instant::now() + EXPIRY_MARGIN < *until)
                .map(|(token, _)| token.clone())
        };
        if let Some(token) = remembered() {
            return Ok(token);
        }
        // One exchange at a time: offers waiting meanwhile take the token it got.
        let _one = self.refreshing.lock().await;
        if let Some(token) = remembered() {
            return Ok(token);
        }
        let oidc = self.oidc.get().ok_or(
            "a refresh token needs this platform's OIDC sign-in (OIDC_CLIENT_ID) to be exchanged",
        )?;
        let current = self.rotated.lock().expect("rotated").get(&key).cloned();
        let current = current.unwrap_or_else(|| cluster.refresh_token.clone());
        let refreshed = oidc.refresh(&current).await?;
        let until = Instant::now() + refreshed.lasts;
        let mut keys = vec![key.clone()];
        if let Some(next) = &refreshed.refresh_token {
            {
                let mut rotated = self.rotated.lock().expect("rotated");
                if rotated.len() >= CACHE_ENTRIES {
                    rotated.clear();
                }
                rotated.insert(key, next.clone());
            }
            // The old one may be dead already: a failure to save is no reason to fail now.
            if let Err(err) = self.save_rotated(&current, next).await {
                tracing::warn!(%err, "a rotated refresh token is kept in memory only");
            }
            // Definitions read from now on hold the new one: its access token is this one.
            keys.push(credentials_digest(&Cluster {
                refresh_token: next.clone(),
                ..cluster.clone()
            }));
        }
        let mut access = self.access.lock().expect("access tokens");
        if access.len() >= CACHE_ENTRIES {
            access.clear();
        }
        for key in keys {
            access.insert(key, (refreshed.access_token.clone(), until));
        }
        Ok(refreshed.access_token)
    }

    /// Puts the rotated refresh token `next` in place of `old` wherever a service keeps it.
    async fn save_rotated(&self, old: &str, next: &str) -> Result<(), sqlx::Error> {
        let Some(db) = self.db.get() else {
            return Ok(());
        };
        sqlx::query(
            "UPDATE service_secrets SET value = $1
             WHERE value = $2 AND key LIKE 'clusters.%' AND key LIKE '%.refresh_token'",
        )
        .bind(next)
        .bind(old)
        .execute(db.pool())
        .await
        .map(|_| ())
    }

    /// The member service's token: remembered, or read from its definition there.
    async fn token(
        &self,
        member: &Replica,
        cluster: &Cluster,
        fresh: bool,
    ) -> Result<String, String> {
        let key = (
            cluster.endpoint.trim_end_matches('/').to_string(),
            member.service_name.clone(),
            credentials_digest(cluster),
        );
        if !fresh && let Some(token) = self.tokens.lock().expect("token cache").get(&key) {
            return Ok(token.clone());
        }
        let path = format!("system/services/{}", member.service_name);
        let response = self
            .on_cluster(cluster, reqwest::Method::GET, &path)
            .await
            .map_err(|why| format!("cannot read the service there: {why}"))?
            .send()
            .await
            .map_err(|e| format!("cannot read the service there: {}", describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!(
                "cannot read the service there: {status}: {}",
                brief(response).await
            ));
        }
        let body = bounded(response).await?;
        let token = serde_json::from_slice::<Service>(&body)
            .map(|s| s.token)
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or("the service there has no token")?;
        let mut tokens = self.tokens.lock().expect("token cache");
        if tokens.len() >= CACHE_ENTRIES {
            tokens.clear();
        }
        tokens.insert(key, token.clone());
        Ok(token)
    }

    /// Whether the member has job `job` (this platform and upstream answer its log, or 404).
    pub async fn holds(&self, member: &Replica, cluster: Option<&Cluster>, job: &str) -> Answer {
        let Some(cluster) = cluster else {
            return Answer::Unknown(format!("cluster {:?} is not defined", member.cluster_id));
        };
        let path = format!("system/logs/{}/{job}", member.service_name);
        let request = match self.on_cluster(cluster, reqwest::Method::GET, &path).await {
            Ok(request) => request,
            Err(why) => return Answer::Unknown(why),
        };
        let response = request.send().await;
        match response {
            Ok(response) if response.status().is_success() => Answer::Accepted,
            Ok(response) if response.status() == reqwest::StatusCode::NOT_FOUND => {
                Answer::Refused("it has no job of that name".into())
            }
            Ok(response) => {
                Answer::Unknown(format!("{}: {}", response.status(), brief(response).await))
            }
            Err(err) => Answer::Unknown(describe(&err)),
        }
    }

    /// Permits for offers in flight (see `OFFERS_AT_ONCE`).
    pub fn offers(&self) -> std::sync::Arc<tokio::sync::Semaphore> {
        self.offers.clone()
    }

    /// How much room the member cluster has for `service` (its status, briefly remembered).
    pub async fn load(&self, cluster: &Cluster, service: &Service) -> Result<Load, String> {
        let key = cluster.endpoint.trim_end_matches('/').to_string();
        let remembered = self
            .loads
            .lock()
            .expect("load cache")
            .get(&key)
            .filter(|(at, _)| at.elapsed() < LOAD_FRESH_FOR)
            .map(|(_, status)| status.clone());
        let status = match remembered {
            Some(status) => status,
            None => {
                let status = self.status(cluster).await;
                let mut loads = self.loads.lock().expect("load cache");
                if loads.len() >= CACHE_ENTRIES {
                    loads.clear();
                }
                loads.insert(key, (Instant::now(), status.clone()));
                status
            }
        };
        Ok(status?.load(service))
    }

    async fn status(&self, cluster: &Cluster) -> Result<StatusNodes, String> {
        let response = self
            .on_cluster(cluster, reqwest::Method::GET, "system/status")
            .await
            .map_err(|why| format!("no status: {why}"))?
            .send()
            .await
            .map_err(|e| format!("no status: {}", describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("no status: {status}: {}", brief(response).await));
        }
        let body = bounded(response).await?;
        let status: StatusAnswer =
            serde_json::from_slice(&body).map_err(|e| format!("unreadable status: {e}"))?;
        Ok(status.cluster)
    }

    /// Creates or replaces `service` on the member cluster (`PUT /system/services`, or `POST`
    /// when it is not there yet).
    pub async fn put_service(&self, cluster: &Cluster, service: &Service) -> Result<(), String> {
        let body = serde_json::to_vec(service).map_err(|e| e.to_string())?;
        let send = |method| async {
            self.on_cluster(cluster, method, "system/services")
                .await?
                .header("Content-Type", "application/json")
                .body(body.clone())
                .send()
                .await
                .map_err(|e| describe(&e))
        };
        let response = send(reqwest::Method::PUT).await?;
        let response = if response.status() == reqwest::StatusCode::NOT_FOUND {
            send(reqwest::Method::POST).await?
        } else {
            response
        };
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status}: {}", brief(response).await))
        }
    }

    /// Deletes the member's service (`DELETE /system/services/<name>`); gone already is fine.
    pub async fn delete_service(&self, cluster: &Cluster, name: &str) -> Result<(), String> {
        let response = self
            .on_cluster(
                cluster,
                reqwest::Method::DELETE,
                &format!("system/services/{name}"),
            )
            .await?
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        if status.is_success() || status == reqwest::StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(format!("{status}: {}", brief(response).await))
        }
    }
}

/// Which credentials read a token, without keeping them.
fn credentials_digest(cluster: &Cluster) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(cluster.auth_user.as_bytes());
    digest.update([0]);
    digest.update(cluster.auth_password.as_bytes());
    digest.update([0]);
    digest.update(cluster.refresh_token.as_bytes());
    hex::encode(digest.finalize())
}

/// A member's status as last read, or why it could not be.
type StatusRead = Result<StatusNodes, String>;

/// The part of upstream's `StatusInfo` a load is read from.
#[derive(Deserialize)]
struct StatusAnswer {
    cluster: StatusNodes,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct StatusNodes {
    nodes: Vec<StatusNode>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct StatusNode {
    cpu: StatusResource,
    memory: StatusResource,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct StatusResource {
    capacity_cores: i64,
    request_cores: i64,
    capacity_bytes: i64,
    request_bytes: i64,
}

impl StatusNodes {
    /// Upstream's load-based rule: a member fits when one node has the service's CPU and memory
    /// left to schedule; its room is the geometric mean of its schedulable shares.
    fn load(&self, service: &Service) -> Load {
        let cpu = model::service::quantity::parse(&service.cpu).unwrap_or(0.0) * 1000.0;
        let memory = model::service::quantity::parse(&service.memory).unwrap_or(0.0);
        let (mut capacity, mut free) = ((0i64, 0i64), (0i64, 0i64));
        let mut fits = false;
        for node in &self.nodes {
            let node_cpu = node.cpu.capacity_cores - node.cpu.request_cores;
            let node_memory = node.memory.capacity_bytes - node.memory.request_bytes;
            fits |= node_cpu as f64 >= cpu && node_memory as f64 >= memory;
            capacity.0 += node.cpu.capacity_cores;
            capacity.1 += node.memory.capacity_bytes;
            free.0 += node_cpu.max(0);
            free.1 += node_memory.max(0);
        }
        let share = |free: i64, capacity: i64| {
            if capacity > 0 {
                free as f64 / capacity as f64
            } else {
                0.0
            }
        };
        Load {
            fits,
            room: (share(free.0, capacity.0) * share(free.1, capacity.1)).sqrt(),
        }
    }
}

async fn bounded(response: reqwest::Response) -> Result<Vec<u8>, String> {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| describe(&e))?;
        if body.len() + chunk.len() > ANSWER_BYTES {
            return Err(format!("the answer is larger than {ANSWER_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of an error answer, for a log line.
async fn brief(response: reqwest::Response) -> String {
    let text = match bounded(response).await {
        Ok(body) => String::from_utf8_lossy(&body).into_owned(),
        Err(why) => return why,
    };
    let text = text.trim();
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(list: &[(i64, i64, i64, i64)]) -> StatusNodes {
        StatusNodes {
            nodes: list
                .iter()
                .map(|&(cpu, cpu_req, mem, mem_req)| StatusNode {
                    cpu: StatusResource {
                        capacity_cores: cpu,
                        request_cores: cpu_req,
                        ..Default::default()
                    },
                    memory: StatusResource {
                        capacity_bytes: mem,
                        request_bytes: mem_req,
                        ..Default::default()
                    },
                })
                .collect(),
        }
    }

    #[test]
    fn load_is_the_schedulable_share_and_fit_needs_one_node() {
        let service = Service {
            cpu: "1".into(),
            memory: "1Gi".into(),
            ..Default::default()
        };
        let gib = 1 << 30;
        let idle = nodes(&[(4000, 0, 8 * gib, 0)]).load(&service);
        let busy = nodes(&[(4000, 3000, 8 * gib, 6 * gib)]).load(&service);
        assert!(idle.fits && busy.fits);
        assert!((idle.room - 1.0).abs() < 1e-9);
        assert!(busy.room < idle.room);
        // Two half-free nodes, neither with a whole CPU left.
        let scattered = nodes(&[(1000, 500, 8 * gib, 0), (1000, 500, 8 * gib, 0)]);
        assert!(!scattered.load(&service).fits);
        assert_eq!(url("http://a:1/", "job/x"), "http://a:1/job/x");
    }

    #[test]
    fn a_networks_own_addresses_are_internal() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "193.146.75.1", "2001:db8::1", "100.128.0.1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn members_on_internal_addresses_are_refused_unless_allowed() {
        let member = Replica {
            kind: "endpoint".into(),
            url: "http://169.254.169.254/latest/meta-data/".into(),
            ..Default::default()
        };
        let answer = Peers::new(false)
            .hand_off(&member, None, "{}", "j", "o")
            .await;
        let Answer::Refused(why) = answer else {
            panic!("{answer:?}")
        };
        assert!(why.contains("OSCAR_FEDERATION_PRIVATE_PEERS"), "{why}");
        let named = Replica {
            url: "http://localhost:1/job".into(),
            ..member
        };
        let answer = Peers::new(false)
            .hand_off(&named, None, "{}", "j", "o")
            .await;
        assert!(
            matches!(&answer, Answer::Refused(why) if why.contains("loopback")),
            "{answer:?}"
        );
        // Allowed: the request is made (nothing listens there).
        let answer = Peers::new(true)
            .hand_off(&named, None, "{}", "j", "o")
            .await;
        assert!(
            matches!(&answer, Answer::Refused(why) if why.contains("cannot connect")),
            "{answer:?}"
        );
    }
}
