use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AppError;

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

/// Signs in with the local admin account, then sends the browser to `next` (a local path).
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<SessionUser, AppError> {
    use crate::server::{auth, context};
    let session = context::session().await?;
    let user = auth::login_admin(
        &context::state(),
        &session,
        &context::client_address(),
        &username,
        &password,
        crate::server::now(),
    )
    .await?;
    leptos_axum::redirect(&auth::safe_next(next.as_deref()));
    Ok(user)
}

/// The signed-in user, or None: the layout uses it to show who is signed in.
#[server(prefix = "/api", endpoint = "auth/me")]
pub async fn current_user() -> Result<Option<SessionUser>, AppError> {
    use crate::server::{auth, context};
    auth::current_user(&context::session().await?).await
}

#[server(prefix = "/api", endpoint = "auth/options")]
pub async fn get_sign_in_options() -> Result<SignInOptions, AppError> {
    let state = crate::server::context::state();
    Ok(SignInOptions {
        provider: state
            .oidc
            .as_ref()
            .map(|o| o.settings().display_name.clone()),
        required_vos: state
            .oidc
            .as_ref()
            .map(|o| o.settings().groups.clone())
            .unwrap_or_default(),
    })
}
