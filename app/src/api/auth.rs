use crate::AppError;
use leptos::prelude::*;
pub use model::auth::*;

/// Signs in with the local admin account, then sends the browser to `next` (a local path).
#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(
    username: String,
    password: String,
    next: Option<String>,
) -> Result<SessionUser, AppError> {
    use crate::web::context;
    use domain::auth;
    let session = context::session().await?;
    let user = auth::login_admin(
        &context::state(),
        &session,
        &context::client_address(),
        &username,
        &password,
        model::Timestamp::now(),
    )
    .await?;
    leptos_axum::redirect(&auth::safe_next(next.as_deref()));
    Ok(user)
}

/// The signed-in user, or None: the layout uses it to show who is signed in.
#[server(prefix = "/api", endpoint = "auth/me")]
pub async fn current_user() -> Result<Option<SessionUser>, AppError> {
    use crate::web::context;
    use domain::auth;
    auth::current_user(&context::session().await?).await
}

#[server(prefix = "/api", endpoint = "auth/options")]
pub async fn get_sign_in_options() -> Result<SignInOptions, AppError> {
    let state = crate::web::context::state();
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
