//! Sign-in through an OpenID provider, bearer tokens on the REST API, the VO gate, logout,
//! CSRF and the admin sign-in throttle. The provider is `common::oidc::FakeOp` on loopback.

mod common;

use common::oidc::{self, FakeOp};
use common::{ADMIN, PASSWORD, TestApp, upstream_cowsay};
use http::{Request, StatusCode, header};

#[tokio::test]
async fn signing_in_through_the_provider_starts_a_fresh_session_for_that_user() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;

    let start = app
        .get("/auth/login?next=/buckets&login_hint=bob@test")
        .await;
    assert_eq!(start.status, StatusCode::SEE_OTHER);
    let authorize = start.location().to_string();
    assert!(authorize.starts_with(&format!("{}/authorize?", op.issuer())));
    for part in [
        "code_challenge_method=S256",
        "nonce=",
        "state=",
        "scope=openid+profile+email+eduperson_entitlement",
        "login_hint=bob%40test",
    ] {
        assert!(authorize.contains(part), "{part} missing in {authorize}");
    }
    let before = app.session();
    let callback = op.authorize(&authorize);
    let path = &callback[callback.find("/auth/callback").unwrap()..];
    let done = app.get(path).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/buckets");
    assert_ne!(app.session(), before, "the session id changes at sign-in");

    let me = app.call("auth/me", &[]).await.json();
    assert_eq!(me["name"], "Bob Example");
    assert_eq!(me["subject"], "bob@test");
    assert_eq!(me["admin"], false);
    assert_eq!(
        me["vos"],
        serde_json::json!(["vo.example.eu", "vo.other.eu"])
    );
    // Signed-in users reach the pages.
    assert_eq!(app.get("/services").await.status, StatusCode::OK);

    // The code and state cannot be used twice.
    let again = app.get(path).await;
    assert_eq!(again.location(), "/login?error=failed");
}

#[tokio::test]
async fn users_outside_the_required_vo_are_turned_away_with_the_reason() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let refused = app.login_oidc(&op, "carol@test", "/services").await;
    assert_eq!(refused.location(), "/login?error=vo");
    assert_eq!(app.call("auth/me", &[]).await.body, "null");
    let page = app.get("/login?error=vo").await;
    assert!(
        page.body.contains("members of the VO vo.example.eu"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn a_callback_not_started_in_this_browser_is_refused() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let start = app.get("/auth/login?login_hint=alice@test").await;
    let callback = op.authorize(start.location());
    // Another browser (no cookie) brings the code back: no pending sign-in there.
    app.forget_cookie();
    let path = &callback[callback.find("/auth/callback").unwrap()..];
    assert_eq!(app.get(path).await.location(), "/login?error=failed");
    // A forged state in the right browser.
    let start = app.get("/auth/login?login_hint=alice@test").await;
    let callback = op.authorize(start.location());
    let path = &callback[callback.find("/auth/callback").unwrap()..];
    let forged = format!("{}state=forged", &path[..path.find("state=").unwrap()]);
    assert_eq!(app.get(&forged).await.location(), "/login?error=failed");
    assert_eq!(app.call("auth/me", &[]).await.body, "null");
}

#[tokio::test]
async fn logout_ends_the_session_here_and_at_the_provider() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    app.login_oidc(&op, "alice@test", "/services").await;
    let cookie = app.session();
    let out = app.logout().await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let target = out.location();
    assert!(
        target.starts_with(&format!("{}/session/end?", op.issuer())),
        "{target}"
    );
    assert!(target.contains("id_token_hint="), "{target}");
    assert!(
        target.contains("post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A3000%2Flogin"),
        "{target}"
    );
    // The old cookie is worthless now.
    app.use_session(cookie);
    assert_eq!(app.call("auth/me", &[]).await.body, "null");
    assert_eq!(app.get("/services").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_provider_that_is_down_at_start_is_used_once_it_is_up() {
    let port = common::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut app = TestApp::with_oidc(&issuer).await;
    let down = app.get("/auth/login").await;
    assert_eq!(down.location(), "/login?error=unavailable");
    let page = app.get("/login?error=unavailable").await;
    assert!(page.body.contains("cannot be reached right now"));

    let op = FakeOp::on(
        tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap(),
    );
    let up = app.login_oidc(&op, "alice@test", "/jobs").await;
    assert_eq!(up.location(), "/jobs", "no restart needed");
}

#[tokio::test]
async fn bearer_tokens_are_checked_for_signature_issuer_expiry_and_vo() {
    let op = FakeOp::start().await;
    let other = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let get = async |app: &mut TestApp, token: &str| {
        app.rest_bearer("GET", "/system/services", None, token)
            .await
    };

    let valid = op.token_for("alice@test", 300);
    assert_eq!(get(&mut app, &valid).await.status, StatusCode::OK);
    assert_eq!(get(&mut app, &valid).await.status, StatusCode::OK);
    assert_eq!(op.userinfo_calls(), 1, "verified tokens are cached briefly");

    for (token, why) in [
        (op.token_for("alice@test", -120), "expired"),
        (
            op.forged_token("alice@test", "bob@test"),
            "not signed by the identity provider",
        ),
        (
            other.token_for("alice@test", 300),
            "issued by another provider",
        ),
        ("not-a-token".to_string(), "invalid or expired token"),
        ("eyJ.eyJ.sig".to_string(), "invalid token"),
    ] {
        let refused = get(&mut app, &token).await;
        assert_eq!(
            refused.status,
            StatusCode::UNAUTHORIZED,
            "{why}: {}",
            refused.body
        );
        assert!(refused.body.contains(why), "{why}: {}", refused.body);
        assert!(refused.headers.contains_key(header::WWW_AUTHENTICATE));
    }

    let outsider = get(&mut app, &op.token_for("carol@test", 300)).await;
    assert_eq!(outsider.status, StatusCode::FORBIDDEN);
    assert!(outsider.body.contains("vo.example.eu"), "{}", outsider.body);

    // The admin's Basic credentials still work with OIDC on.
    assert_eq!(
        app.rest("GET", "/system/services", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bearer_tokens_are_refused_when_no_provider_is_configured() {
    let mut app = TestApp::new().await;
    let refused = app
        .rest_bearer("GET", "/system/services", None, "eyJhbGciOi.x.y")
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(refused.body.contains("OIDC_CLIENT_ID"), "{}", refused.body);
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_pages_carry_security_headers() {
    let mut app = TestApp::new().await;
    app.login().await;
    let forged = app
        .send(
            Request::post("/api/services/delete")
                .header(header::ORIGIN, "https://evil.example")
                .header(header::HOST, "127.0.0.1:3000")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(axum::body::Body::from("name=anything"))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(forged.body.contains("cross-site request refused"));

    let same = app
        .send(
            Request::post("/api/auth/me")
                .header(header::ORIGIN, "http://127.0.0.1:3000")
                .header(header::HOST, "127.0.0.1:3000")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);

    let page = app.get("/login").await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        csp.contains("frame-ancestors 'self'") && csp.contains("object-src 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
}

/// A sign-in form post from `peer`, through `forwarded` proxies when given.
fn admin_login_from(
    peer: &str,
    forwarded: Option<&str>,
    password: &str,
) -> Request<axum::body::Body> {
    let mut request = Request::post("/api/auth/login")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, "application/json");
    if let Some(hops) = forwarded {
        request = request.header("x-forwarded-for", hops);
    }
    let mut request = request
        .body(axum::body::Body::from(format!(
            "username={ADMIN}&password={password}"
        )))
        .unwrap();
    let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
    request
        .extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    request
}

#[tokio::test]
async fn repeated_wrong_admin_passwords_are_throttled() {
    let mut app = TestApp::new().await;
    for _ in 0..6 {
        let wrong = app
            .call("auth/login", &[("username", ADMIN), ("password", "guess")])
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let throttled = app
        .call("auth/login", &[("username", ADMIN), ("password", PASSWORD)])
        .await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.body
    );
    assert!(throttled.body.contains("too many failed sign-ins"));
    // HTTP Basic counts against the same budget.
    assert_eq!(
        app.rest("GET", "/system/services", None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn failures_from_one_client_never_lock_the_admin_out_elsewhere() {
    let mut app =
        TestApp::with_config(|c| c.trusted_proxies = vec!["10.9.0.0/16".parse().unwrap()]).await;
    // An attacker guessing at speed, directly and through the proxy, naming another client
    // in X-Forwarded-For as the proxy would pass it on.
    for _ in 0..30 {
        app.send(admin_login_from("203.0.113.66", None, "guess"))
            .await;
        app.send(admin_login_from(
            "10.9.0.2",
            Some("198.51.100.7, 203.0.113.66"),
            "guess",
        ))
        .await;
    }
    let attacker = app
        .send(admin_login_from("203.0.113.66", None, PASSWORD))
        .await;
    assert_eq!(
        attacker.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        attacker.body
    );

    // The admin, from an address that has not failed: straight in, or through the same
    // proxy, whose X-Forwarded-For names the real client.
    let direct = app
        .send(admin_login_from("192.0.2.10", None, PASSWORD))
        .await;
    assert_eq!(direct.status, StatusCode::OK, "{}", direct.body);
    let proxied = app
        .send(admin_login_from("10.9.0.2", Some("192.0.2.11"), PASSWORD))
        .await;
    assert_eq!(proxied.status, StatusCode::OK, "{}", proxied.body);

    // An untrusted peer cannot pick the address it is counted under.
    let spoofed = app
        .send(admin_login_from(
            "203.0.113.66",
            Some("192.0.2.12"),
            PASSWORD,
        ))
        .await;
    assert_eq!(
        spoofed.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        spoofed.body
    );
}

/// Upstream's VO rule: membership is checked only for a VO the platform gates on
/// (`OIDC_GROUPS`); any other is kept as given, and a service without one gets the first gated
/// VO its creator is a member of.
#[tokio::test]
async fn service_vos_follow_upstreams_rule() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_config(|config| {
        let mut settings = oidc::settings(op.issuer());
        settings.groups = vec!["vo.other.eu".into(), oidc::VO.into()];
        config.oidc = Some(settings);
    })
    .await;
    let alice = op.token_for("alice@test", 300);
    let bob = op.token_for("bob@test", 300);
    let create = async |app: &mut TestApp, token: &str, name: &str, vo: Option<&str>| {
        let mut body = upstream_cowsay(name);
        if let Some(vo) = vo {
            body["vo"] = vo.into();
        }
        app.rest_bearer("POST", "/system/services", Some(body), token)
            .await
    };
    let vo_of = async |app: &mut TestApp, token: &str, name: &str| {
        let path = format!("/system/services/{name}");
        app.rest_bearer("GET", &path, None, token).await.json()["vo"].clone()
    };

    // oscar-tests' FDLs name their own VO, which this platform does not gate on.
    let created = create(&mut app, &alice, "vo-given", Some("/oscar-test")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(vo_of(&mut app, &alice, "vo-given").await, "/oscar-test");

    let refused = create(&mut app, &alice, "vo-gated", Some("vo.other.eu")).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        refused.body,
        "vo: you are not a member of the VO \"vo.other.eu\""
    );
    let member = create(&mut app, &bob, "vo-member", Some("vo.other.eu")).await;
    assert_eq!(member.status, StatusCode::CREATED, "{}", member.body);

    // None: the first configured VO the creator is a member of.
    for (token, name, vo) in [
        (&alice, "vo-alice", oidc::VO),
        (&bob, "vo-bob", "vo.other.eu"),
    ] {
        let created = create(&mut app, token, name, None).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        assert_eq!(vo_of(&mut app, token, name).await, vo, "{name}");
    }

    // An update checks membership again only when the VO changes to a gated one.
    let mut update = upstream_cowsay("vo-given");
    update["vo"] = "/oscar-test".into();
    let kept = app
        .rest_bearer("PUT", "/system/services", Some(update.clone()), &alice)
        .await;
    assert_eq!(kept.status, StatusCode::NO_CONTENT, "{}", kept.body);
    update["vo"] = "vo.other.eu".into();
    let moved = app
        .rest_bearer("PUT", "/system/services", Some(update), &alice)
        .await;
    assert_eq!(moved.status, StatusCode::BAD_REQUEST, "{}", moved.body);
    assert!(moved.body.starts_with("vo: "), "{}", moved.body);
}

/// Issue 20.8: owner ids are subjects, so a provider issuing `sub=cluster_admin` would make
/// that user the owner of everything the local admin made. Such a subject is refused, with
/// a bearer token and at sign-in.
#[tokio::test]
async fn a_subject_named_like_the_admin_is_refused() {
    let op = FakeOp::start().await;
    let mut app = TestApp::with_oidc(op.issuer()).await;
    let made = app
        .rest("POST", "/system/services", Some(upstream_cowsay("admins")))
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let token = op.token_for("cluster_admin", 600);
    for (method, path) in [
        ("GET", "/system/services/admins"),
        ("DELETE", "/system/services/admins"),
        ("GET", "/system/buckets"),
    ] {
        let got = app.rest_bearer(method, path, None, &token).await;
        assert_eq!(
            got.status,
            StatusCode::FORBIDDEN,
            "{method} {path}: {}",
            got.body
        );
        assert!(got.body.contains("reserved"), "{}", got.body);
    }
    let signed_in = app.login_oidc(&op, "cluster_admin", "/services").await;
    assert!(
        signed_in.location().starts_with("/login?error="),
        "{:?}",
        signed_in.headers
    );
    let still_there = app.rest("GET", "/system/services/admins", None).await;
    assert_eq!(still_there.status, StatusCode::OK);
}
