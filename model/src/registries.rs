//! Registry credentials users keep for their services' images (`image_pull_secrets` of the
//! image executor), as the REST API exchanges them. The password goes in, never out.

use serde::{Deserialize, Serialize};

/// A stored credential as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "server", derive(sqlx::FromRow))]
pub struct RegistryCredential {
    /// What services name in `image_pull_secrets`.
    pub name: String,
    /// The registry it signs in to (`host[:port]`; Docker Hub is `docker.io`).
    pub server: String,
    pub username: String,
}

/// A credential to store (`PUT /system/registry-credentials/{name}`), with Docker's field
/// names as `kubectl create secret docker-registry` takes them.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewRegistryCredential {
    #[serde(alias = "docker-server")]
    pub server: String,
    #[serde(alias = "docker-username")]
    pub username: String,
    #[serde(alias = "docker-password")]
    pub password: String,
}

impl std::fmt::Debug for NewRegistryCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NewRegistryCredential({}@{}, …)",
            self.username, self.server
        )
    }
}
