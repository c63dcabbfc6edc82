//! The dashboard over HTTP: sign-in guard, login/logout, pages and server functions.

mod common;

use common::{ADMIN, TestApp};
use http::StatusCode;

#[tokio::test]
async fn health_answers_ok_without_auth() {
    let mut app = TestApp::new().await;
    let response = app.get("/health").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, "Ok");
}

#[tokio::test]
async fn pages_send_signed_out_visitors_to_login_and_back() {
    let mut app = TestApp::new().await;
    for page in ["/services", "/buckets", "/jobs", "/info", "/no-such-page"] {
        let response = app.get(page).await;
        assert_eq!(response.status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.location(), format!("/login?next={}", page));
    }
    let response = app.get("/buckets?sort=name").await;
    assert_eq!(response.location(), "/login?next=/buckets%3Fsort%3Dname");
}

#[tokio::test]
async fn login_page_renders_a_form() {
    let mut app = TestApp::new().await;
    let response = app.get("/login").await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response.body.contains(r#"action="/api/auth/login""#),
        "{}",
        response.body
    );
    assert!(response.body.contains(r#"name="password""#));
    assert!(
        response.body.contains("<title>OSCAR - Sign in</title>"),
        "{}",
        response.body
    );
}

#[tokio::test]
async fn wrong_password_is_401_with_a_message() {
    let mut app = TestApp::new().await;
    let response = app
        .call(
            "auth/login",
            &[("username", ADMIN), ("password", "nope-nope")],
        )
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    assert!(
        response.body.contains("invalid username or password"),
        "{}",
        response.body
    );
    assert_eq!(app.get("/services").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn missing_login_fields_are_a_400_naming_the_field() {
    let mut app = TestApp::new().await;
    let response = app.call("auth/login", &[("username", ADMIN)]).await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.body
    );
    assert!(response.body.contains("password"), "{}", response.body);
    let response = app
        .call("auth/login", &[("username", " "), ("password", "x")])
        .await;
    assert_eq!(
        response.status,
        StatusCode::BAD_REQUEST,
        "{}",
        response.body
    );
    assert!(response.body.contains("username"), "{}", response.body);
}

#[tokio::test]
async fn login_sets_a_safe_session_cookie_and_opens_every_page() {
    let mut app = TestApp::new().await;
    let response = app.login().await;
    let cookie = response
        .headers
        .get(http::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(cookie.starts_with("oscar_session="), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "Secure is off unless OSCAR_SECURE_COOKIES is set: {cookie}"
    );
    assert_eq!(response.json()["name"], ADMIN);
    // The browser is told where to go next (the server-fn client follows this header).
    assert_eq!(response.location(), "/services");

    for (page, marker) in [
        ("/services", "No services yet"),
        ("/buckets", "Buckets"),
        ("/jobs", "No jobs yet"),
        ("/info", "SQLite"),
    ] {
        let response = app.get(page).await;
        assert_eq!(response.status, StatusCode::OK, "{page}");
        assert!(
            response.body.contains(marker),
            "{page} lacks {marker:?}: {}",
            response.body
        );
        assert!(response.body.contains(ADMIN), "{page} shows the user");
    }
    assert_eq!(app.get("/").await.location(), "/services");
}

#[tokio::test]
async fn login_goes_back_to_a_local_next_page_only() {
    let mut app = TestApp::new().await;
    for (next, landing) in [("/info", "/info"), ("//evil.example", "/services")] {
        let form = [
            ("username", ADMIN),
            ("password", common::PASSWORD),
            ("next", next),
        ];
        assert_eq!(
            app.call("auth/login", &form).await.location(),
            landing,
            "{next}"
        );
    }
}

#[tokio::test]
async fn login_cycles_the_session_id() {
    let mut app = TestApp::new().await;
    app.login().await;
    let first = app.get("/services").await;
    assert_eq!(first.status, StatusCode::OK);
    let before = app.call("auth/me", &[]).await.headers.clone();
    let again = app.login().await;
    let new_cookie = again
        .headers
        .get(http::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let old_cookie = before
        .get(http::header::SET_COOKIE)
        .map(|v| v.to_str().unwrap().to_string());
    assert_ne!(Some(new_cookie), old_cookie);
}

#[tokio::test]
async fn server_functions_refuse_signed_out_callers() {
    let mut app = TestApp::new().await;
    for endpoint in ["system/info", "buckets/list"] {
        let response = app.call(endpoint, &[]).await;
        assert_eq!(
            response.status,
            StatusCode::UNAUTHORIZED,
            "{endpoint}: {}",
            response.body
        );
    }
    let response = app.call("auth/me", &[]).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.body, "null");
}

#[tokio::test]
async fn info_reports_version_mode_storage_and_database() {
    let mut app = TestApp::new().await;
    app.login().await;
    let info = app.call("system/info", &[]).await.json();
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["mode"], "embedded");
    assert_eq!(info["database"], "SQLite");
    let endpoint = info["storage_endpoint"].as_str().unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let mut app = TestApp::new().await;
    app.login().await;
    let response = app.logout().await;
    assert_eq!(response.status, StatusCode::SEE_OTHER, "{}", response.body);
    assert_eq!(response.location(), "/login");
    assert_eq!(app.get("/services").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.call("system/info", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn unknown_pages_are_404_for_signed_in_users() {
    let mut app = TestApp::new().await;
    app.login().await;
    let response = app.get("/no-such-page").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.body.contains("Page not found"));
}

#[tokio::test]
async fn a_stolen_cookie_is_useless_after_logout() {
    let mut app = TestApp::new().await;
    let login = app.login().await;
    let cookie = login
        .headers
        .get(http::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    app.logout().await;
    app.forget_cookie();
    let request = http::Request::get("/services")
        .header(http::header::COOKIE, cookie)
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.send(request).await.status, StatusCode::SEE_OTHER);
}

/// PostgreSQL refusing every connection (connection limit 0, existing ones terminated), as
/// while it restarts: pages say so and retry, API calls answer 503. Needs TEST_DATABASE_URL.
#[tokio::test]
async fn a_database_outage_gives_a_page_that_retries_and_503_answers() {
    let Some(url) = common::fresh_postgres_database().await else {
        assert!(
            std::env::var("OSCAR_REQUIRE_POSTGRES").is_err(),
            "TEST_DATABASE_URL is required"
        );
        return;
    };
    let mut app = TestApp::with_database(Some(url.clone())).await;
    app.login().await;
    assert_eq!(app.get("/services").await.status, StatusCode::OK);

    let name = url.rsplit('/').next().unwrap().split('?').next().unwrap();
    let admin = sqlx::PgPool::connect(&std::env::var("TEST_DATABASE_URL").unwrap())
        .await
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} CONNECTION LIMIT 0"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(name)
        .execute(&admin)
        .await
        .unwrap();

    let page = app.get("/services").await;
    assert_eq!(
        page.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        page.body
    );
    assert_eq!(page.headers[http::header::RETRY_AFTER], "10");
    assert!(
        page.body.contains("Temporarily unavailable")
            && page.body.contains("the database is unavailable right now"),
        "{}",
        page.body
    );
    let rest = app.rest("GET", "/system/services", None).await;
    assert_eq!(
        rest.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        rest.body
    );

    // Back: the same session works again.
    sqlx::query(&format!("ALTER DATABASE {name} CONNECTION LIMIT -1"))
        .execute(&admin)
        .await
        .unwrap();
    assert_eq!(app.get("/services").await.status, StatusCode::OK);
}
