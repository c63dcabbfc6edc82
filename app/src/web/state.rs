//! What every handler extracts: the platform (`domain::App`, shared, never cloned) and the
//! Leptos options the page renderer needs.

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef};
use domain::App;
use http::request::Parts;
use leptos::config::LeptosOptions;

#[derive(Clone, Debug)]
pub struct AppState {
    app: Arc<App>,
    pub leptos_options: LeptosOptions,
    /// Cookies only over HTTPS (`OSCAR_SECURE_COOKIES`).
    pub secure_cookies: bool,
}

impl AppState {
    pub fn new(app: App, leptos_options: LeptosOptions, secure_cookies: bool) -> Self {
        Self {
            app: Arc::new(app),
            leptos_options,
            secure_cookies,
        }
    }

    /// The client's address as the sign-in throttle counts it (see `LoginThrottle`).
    pub fn client_address(&self, parts: &Parts) -> String {
        let peer = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|info| info.0.ip());
        self.login_throttle.client_address(peer, &parts.headers)
    }
}

/// Handlers reach the platform's components as `state.db`, `state.jobs`…
impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}
