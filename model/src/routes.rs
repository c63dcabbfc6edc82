//! Dashboard paths the server redirects to (after sign-in, on sign-out) and the pages link to.

/// Where a signed-in user lands.
pub const HOME: &str = "/services";
/// The sign-in page.
pub const LOGIN: &str = "/login";

/// Where an exposed service is reached (upstream's `OSCAR_SERVICE_BASE_PATH`), without the
/// trailing `/`.
pub fn exposed_base(service: &str) -> String {
    format!("/system/services/{service}/exposed")
}
