//! OSCAR's `expose` block: a long-running HTTP server in the service's image instead of one job
//! per event, reached at `/system/services/<name>/exposed/` (oscar-api.md §4.2).

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// Upstream's `Expose`, written as upstream writes it (every service has one; empty when it
/// exposes nothing). Upstream leaves its documented defaults to the clients; [`Self::normalise`]
/// applies them here, so a definition sent without them works the same.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Expose {
    /// Instances kept running; 0 starts the first on the first request. Missing: 1.
    #[serde(default = "one")]
    pub min_scale: u32,
    /// The most instances load may start (0: the default, 10).
    pub max_scale: u32,
    /// The ports the server listens on in its container; the first is the one proxied. None:
    /// the service is not exposed. A number (v3 and the docs) or a list (v4).
    #[serde(deserialize_with = "ports", skip_serializing_if = "Vec::is_empty")]
    pub api_port: Vec<u16>,
    /// CPU percentage the Kubernetes autoscaler keeps instances at.
    pub cpu_threshold: u32,
    /// Strip `/system/services/<name>/exposed` before the request reaches the server.
    pub rewrite_target: bool,
    /// Kubernetes mode: a NodePort instead of a route (0: none).
    #[serde(rename = "nodePort", skip_serializing_if = "is_zero")]
    pub node_port: u32,
    /// Run the image's own entrypoint and command instead of the service's script.
    pub default_command: bool,
    /// Require the service token (or a signed-in user the service is visible to).
    pub set_auth: bool,
    /// `basic` (user = service name, password = token) or `forward` (the token as a bearer
    /// token, `?token=` or the cookie `/system/services/<name>/auth` sets).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub auth_type: String,
    /// Where instances answer when they are ready.
    pub health_path: String,
    /// Upstream's Kubernetes probe style (`legacy` or `direct`); kept as given.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub probe_mode: String,
}

fn one() -> u32 {
    1
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How an exposed service checks its callers when `set_auth` is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    Basic,
    Forward,
}

impl AuthType {
    pub const ALL: [Self; 2] = [Self::Basic, Self::Forward];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Forward => "forward",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

impl Expose {
    /// The port requests go to; None when the block exposes nothing (upstream's `api_port: 0`).
    pub fn port(&self) -> Option<u16> {
        self.api_port.first().copied().filter(|p| *p != 0)
    }

    /// The auth type, for a validated block.
    pub fn auth(&self) -> AuthType {
        AuthType::parse(&self.auth_type).unwrap_or(AuthType::Basic)
    }

    /// The documented defaults for what an exposed service leaves at zero.
    pub fn normalise(&mut self) {
        if self.port().is_none() {
            return;
        }
        let defaults = [(&mut self.max_scale, 10), (&mut self.cpu_threshold, 80)];
        for (value, default) in defaults {
            if *value == 0 {
                *value = default;
            }
        }
        for (value, default) in [
            (&mut self.health_path, "/"),
            (&mut self.auth_type, AuthType::Basic.as_str()),
        ] {
            if value.is_empty() {
                *value = default.into();
            }
        }
    }

    /// Field errors of a normalised block, each with its path under `expose`; none when it
    /// exposes nothing.
    pub fn errors(&self) -> Vec<(String, String)> {
        let mut errors = Vec::new();
        if self.port().is_none() {
            return errors;
        }
        let mut add = |field: &str, message: String| {
            errors.push((format!("expose.{field}"), message));
        };
        if self.max_scale > super::validate::MAX_SCALE {
            add(
                "max_scale",
                format!("must be at most {}", super::validate::MAX_SCALE),
            );
        }
        if self.min_scale > self.max_scale {
            add(
                "min_scale",
                format!("must not exceed max_scale ({})", self.max_scale),
            );
        }
        if self.api_port.len() > 1 && self.api_port.contains(&0) {
            add("api_port", "ports must be between 1 and 65535".into());
        }
        if !(1..=100).contains(&self.cpu_threshold) {
            add("cpu_threshold", "must be a percentage from 1 to 100".into());
        }
        if self.node_port != 0 && !(30000..=32767).contains(&self.node_port) {
            add(
                "nodePort",
                "must be 0 or in Kubernetes' node port range 30000-32767".into(),
            );
        }
        if AuthType::parse(&self.auth_type).is_none() {
            add("auth_type", "must be basic or forward".into());
        }
        if !self.health_path.starts_with('/') || self.health_path.chars().any(char::is_control) {
            add(
                "health_path",
                "must be a path starting with / without control characters".into(),
            );
        }
        errors
    }
}

/// A port number, a list of them, or numbers written as text; null or 0 for none.
fn ports<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u16>, D::Error> {
    let port = |value: &Value| -> Result<u16, D::Error> {
        let number = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        number
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| serde::de::Error::custom(format!("{value} is not a port (0-65535)")))
    };
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(port).collect(),
        value => match port(&value)? {
            0 => Ok(Vec::new()),
            one => Ok(vec![one]),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Expose {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn documented_defaults_fill_missing_keys() {
        let mut expose = parse(json!({"api_port": 8080}));
        expose.normalise();
        assert_eq!(expose.port(), Some(8080));
        assert_eq!((expose.min_scale, expose.max_scale), (1, 10));
        assert_eq!(expose.health_path, "/");
        assert_eq!(expose.auth(), AuthType::Basic);
        assert!(expose.errors().is_empty());
    }

    #[test]
    fn ports_come_as_a_number_a_list_or_text() {
        assert_eq!(parse(json!({"api_port": [80, 443]})).api_port, [80, 443]);
        assert_eq!(parse(json!({"api_port": "8888"})).api_port, [8888]);
        assert_eq!(parse(json!({"api_port": 0})).port(), None);
        assert_eq!(parse(json!({})).port(), None);
        let err = serde_json::from_value::<Expose>(json!({"api_port": 70000})).unwrap_err();
        assert!(err.to_string().contains("not a port"), "{err}");
    }

    #[test]
    fn errors_name_their_field() {
        let expose = parse(json!({
            "api_port": 80, "min_scale": 3, "max_scale": 2, "auth_type": "digest",
            "health_path": "health", "nodePort": 80, "cpu_threshold": 101
        }));
        let fields: Vec<_> = expose.errors().into_iter().map(|(f, _)| f).collect();
        let huge = parse(json!({"api_port": 80, "min_scale": 5000, "max_scale": 5000}));
        assert_eq!(huge.errors()[0].0, "expose.max_scale");
        assert_eq!(
            fields,
            [
                "expose.min_scale",
                "expose.cpu_threshold",
                "expose.nodePort",
                "expose.auth_type",
                "expose.health_path"
            ]
        );
    }

    #[test]
    fn written_with_upstreams_keys() {
        let value = serde_json::to_value(parse(json!({"api_port": [80], "nodePort": 30001})));
        let value = value.unwrap();
        assert_eq!(value["nodePort"], 30001);
        assert_eq!(value["api_port"], json!([80]));
        assert!(value.get("probe_mode").is_none());
        // Upstream's block of a service that exposes nothing: empty parts left out, and valid.
        let none = parse(json!({"min_scale": 0, "max_scale": 0, "health_path": ""}));
        let value = serde_json::to_value(&none).unwrap();
        assert!(value.get("api_port").is_none() && value.get("nodePort").is_none());
        assert!(none.errors().is_empty());
    }
}
