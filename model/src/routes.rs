//! Dashboard paths the server redirects to (after sign-in, on sign-out) and the pages link to.

/// Where a signed-in user lands.
pub const HOME: &str = "/services";
/// The sign-in page.
pub const LOGIN: &str = "/login";
