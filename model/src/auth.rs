//! Who is signed in, and how one can sign in.

use serde::{Deserialize, Serialize};

/// Owner recorded for what the local admin creates (OSCAR's name for it).
pub const ADMIN_OWNER: &str = "cluster_admin";

/// The signed-in person as the UI knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: i64,
    /// The owner id recorded on what they create: the OIDC `sub`, or `cluster_admin`.
    pub subject: String,
    pub name: String,
    pub admin: bool,
    /// VOs from the provider's entitlements at sign-in.
    pub vos: Vec<String>,
}

/// How people can sign in here, for the login page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInOptions {
    /// The OIDC provider's name on the button (None: only the local admin signs in).
    pub provider: Option<String>,
    /// VOs of which a user must be a member of one.
    pub required_vos: Vec<String>,
}
