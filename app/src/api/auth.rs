use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::AppError;

/// The signed-in person as the UI knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub id: i64,
    pub name: String,
    pub admin: bool,
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
        &username,
        &password,
        crate::server::now(),
    )
    .await?;
    leptos_axum::redirect(&auth::safe_next(next.as_deref()));
    Ok(user)
}

#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server::{auth, context};
    auth::logout(&context::session().await?).await?;
    leptos_axum::redirect(crate::pages::LOGIN);
    Ok(())
}

/// The signed-in user, or None: the layout uses it to show who is signed in.
#[server(prefix = "/api", endpoint = "auth/me")]
pub async fn current_user() -> Result<Option<SessionUser>, AppError> {
    use crate::server::{auth, context};
    auth::current_user(&context::session().await?).await
}
