//! Database behaviour on SQLite and (when `TEST_DATABASE_URL` is set) PostgreSQL.

mod common;

use common::{ADMIN, TestApp};
use domain::users::{self, Identity};
use http::StatusCode;
use model::Timestamp;

#[tokio::test]
async fn sign_ins_are_recorded_per_issuer_and_subject() {
    for app in TestApp::on_each_database().await {
        let db = &app.app.state.db;
        let vo = ["vo.example.eu".to_string()];
        let alice = Identity {
            issuer: "https://idp",
            subject: "alice",
            display_name: "Alice",
            email: Some("a@x"),
            vos: &vo,
        };
        let first = users::record_login(db, &alice, Timestamp::from_millis(100))
            .await
            .unwrap();
        let renamed = Identity {
            display_name: "Alice B.",
            email: None,
            vos: &[],
            ..alice.clone()
        };
        let second = users::record_login(db, &renamed, Timestamp::from_millis(200))
            .await
            .unwrap();
        assert_eq!(first.id, second.id, "{}", app.database());
        assert_eq!(second.display_name, "Alice B.");
        assert_eq!(second.email, None);
        assert_eq!(first.vos, ["vo.example.eu"]);
        assert!(second.vos.is_empty(), "VOs are refreshed at each sign-in");
        assert_eq!(
            (second.created_at, second.last_login_at),
            (Timestamp::from_millis(100), Timestamp::from_millis(200))
        );

        let other_issuer = Identity {
            issuer: "https://other",
            ..alice
        };
        let third = users::record_login(db, &other_issuer, Timestamp::from_millis(300))
            .await
            .unwrap();
        assert_ne!(
            third.id, first.id,
            "same sub at another issuer is another person"
        );
        assert_eq!(
            users::find(db, first.id)
                .await
                .unwrap()
                .unwrap()
                .display_name,
            "Alice B."
        );
        assert_eq!(users::find(db, 999_999).await.unwrap(), None);
    }
}

#[tokio::test]
async fn sessions_live_in_the_database() {
    for mut app in TestApp::on_each_database().await {
        app.login().await;
        let me = app.call("auth/me", &[]).await.json();
        assert_eq!(me["name"], ADMIN, "{}", app.database());
        assert_eq!(app.get("/info").await.status, StatusCode::OK);
        let info = app.call("system/info", &[]).await.json();
        assert_eq!(info["database"], app.database());
    }
}

#[tokio::test]
async fn migrations_are_applied_once() {
    for app in TestApp::on_each_database().await {
        // A second start on the same database finds nothing left to do.
        app.app.state.db.migrate().await.unwrap();
        let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
            .fetch_one(app.app.state.db.pool())
            .await
            .unwrap();
        let dir = match app.database() {
            "SQLite" => "sqlite",
            _ => "postgres",
        };
        let files = std::fs::read_dir(format!(
            "{}/../migrations/{dir}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
        .count();
        assert_eq!(applied as usize, files, "{}", app.database());
    }
}

/// A database at the state the migrations before `version` leave it in.
async fn migrated_before(url: &str, version: i64) -> domain::db::Database {
    let db = domain::db::Database::connect(url).await.unwrap();
    let mut before = match db.kind() {
        domain::db::DatabaseKind::Sqlite => sqlx::migrate!("../migrations/sqlite"),
        domain::db::DatabaseKind::Postgres => sqlx::migrate!("../migrations/postgres"),
    };
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(db.pool()).await.unwrap();
    db
}

/// The usage record starts with the runs that had ended: their times, no resources (which
/// were not recorded), dead-lettered ones as platform errors; unfinished jobs are left out.
#[tokio::test]
async fn runs_that_ended_before_usage_was_recorded_count_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let postgres = common::fresh_postgres_database().await;
    for url in std::iter::once(sqlite).chain(postgres) {
        let db = migrated_before(&url, 12).await;
        let runs: [(&str, &str, Option<i64>, Option<i64>); 4] = [
            ("done", "succeeded", Some(1_000), Some(4_000)),
            ("dead", "dead_lettered", Some(5_000), Some(6_000)),
            ("waiting", "pending", None, None),
            ("busy", "running", Some(7_000), None),
        ];
        for (name, state, started, finished) in runs {
            sqlx::query(
                "INSERT INTO jobs (name, service, owner, trigger, event, state, run_after,
                                   created_at, started_at, finished_at)
                 VALUES ($1, 'old', 'alice', 'sync', '', $2, 0, 0, $3, $4)",
            )
            .bind(name)
            .bind(state)
            .bind(started)
            .bind(finished)
            .execute(db.pool())
            .await
            .unwrap();
        }
        db.migrate().await.unwrap();
        let rows: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT job, trigger, outcome, started_at, finished_at, cpu_millis
             FROM job_usage ORDER BY job",
        )
        .fetch_all(db.pool())
        .await
        .unwrap();
        let label = db.kind().label();
        assert_eq!(
            rows,
            [
                (
                    "dead".into(),
                    "sync".into(),
                    "error".into(),
                    5_000,
                    6_000,
                    0
                ),
                (
                    "done".into(),
                    "sync".into(),
                    "succeeded".into(),
                    1_000,
                    4_000,
                    0
                ),
            ],
            "{label}"
        );
        db.close().await;
    }
}

/// A database written before times were all milliseconds: its second-counting columns are
/// converted once, and the job columns, which always counted milliseconds, are left alone.
#[tokio::test]
async fn times_recorded_in_seconds_become_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("old.db").display());
    let postgres = common::fresh_postgres_database().await;
    for url in std::iter::once(sqlite).chain(postgres) {
        let db = migrated_before(&url, 11).await;
        let (secs, ms) = (1_700_000_000i64, 1_700_000_000_123i64);
        for insert in [
            "INSERT INTO users (issuer, subject, display_name, vos, created_at, last_login_at)
             VALUES ('local', 'oscar', 'oscar', '[]', $1, $1)",
            "INSERT INTO services (name, owner, definition, token, created_at, updated_at)
             VALUES ('old', 'oscar', '{}', 't', $1, $1)",
            "INSERT INTO buckets (name, owner, created_by, created_at, visibility, allowed_users)
             VALUES ('old', 'oscar', NULL, $1, 'private', '[]')",
            "INSERT INTO store_keys (access_key, owner, created_at) VALUES ('K', 'alice', $1)",
        ] {
            sqlx::query(insert)
                .bind(secs)
                .execute(db.pool())
                .await
                .unwrap();
        }
        sqlx::query(
            "INSERT INTO jobs (name, service, owner, trigger, event, state, run_after, created_at)
             VALUES ('old-1', 'old', 'oscar', 'api', '', 'succeeded', $1, $1)",
        )
        .bind(ms)
        .execute(db.pool())
        .await
        .unwrap();

        db.migrate().await.unwrap();
        let user = users::find(&db, 1).await.unwrap().unwrap();
        let expected = Timestamp::from_secs(secs);
        assert_eq!((user.created_at, user.last_login_at), (expected, expected));
        for column in [
            "SELECT created_at FROM services",
            "SELECT updated_at FROM services",
            "SELECT created_at FROM buckets",
            "SELECT created_at FROM store_keys",
        ] {
            let at: Timestamp = sqlx::query_scalar(column)
                .fetch_one(db.pool())
                .await
                .unwrap();
            assert_eq!(at, expected, "{column} on {}", db.kind().label());
        }
        let job = domain::jobs::get(&db, "old-1").await.unwrap().unwrap();
        assert_eq!(job.created_at, Timestamp::from_millis(ms));
        db.close().await;
    }
}

#[tokio::test]
async fn postgres_is_exercised_when_make_test_runs() {
    // `make test` exports TEST_DATABASE_URL; outside it this test says so instead of passing
    // silently with SQLite alone.
    if std::env::var("OSCAR_REQUIRE_POSTGRES").is_ok() {
        let apps = TestApp::on_each_database().await;
        assert_eq!(
            apps.iter().map(|a| a.database()).collect::<Vec<_>>(),
            ["SQLite", "PostgreSQL"]
        );
    }
}

/// A day, in the milliseconds jobs are timed in.
const DAY_MS: i64 = 24 * 3600 * 1000;

#[tokio::test]
async fn job_counts_follow_every_insert_state_change_and_deletion() {
    use domain::access::Caller;
    use domain::jobs::activity;
    for app in TestApp::on_each_database().await {
        let db = &app.app.state.db;
        let pool = db.pool();
        let insert = |name: String, service: &'static str, owner: &'static str, state, at: i64| {
            sqlx::query(
                "INSERT INTO jobs (name, service, owner, trigger, event, state, run_after, created_at)
                 VALUES ($1, $2, $3, 'bucket', '{}', $4, $5, $6)",
            )
            .bind(name)
            .bind(service)
            .bind(owner)
            .bind(state)
            .bind(at + DAY_MS)
            .bind(at)
            .execute(pool)
        };
        let states = ["pending", "running", "succeeded", "failed", "dead_lettered"];
        // Recent jobs: the retention sweep running beside the test deletes old finished ones.
        // Due in a day, with leases that do not expire: the app's dispatcher, which would end
        // pending jobs of these missing services, and its lease recovery leave them alone.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        for i in 0..40i64 {
            let (service, owner) = [("a", "alice"), ("a", "bob"), ("b", "bob")][i as usize % 3];
            let state = states[i as usize % states.len()];
            insert(format!("j{i}"), service, owner, state, now + i)
                .await
                .unwrap();
        }
        // Through the queue's own kinds of statement: state changes one by one and many at
        // once, changes that keep the state, and deletions (of the newest job too).
        let run = |sql: &'static str| sqlx::query(sql).execute(pool);
        run("UPDATE jobs SET state = 'running' WHERE name IN ('j0', 'j3', 'j8')")
            .await
            .unwrap();
        run("UPDATE jobs SET state = 'succeeded' WHERE state = 'running' AND service = 'b'")
            .await
            .unwrap();
        run("UPDATE jobs SET state = state, reason = 'x' WHERE name = 'j1'")
            .await
            .unwrap();
        sqlx::query("UPDATE jobs SET lease_until = $1 WHERE state = 'running'")
            .bind(now + DAY_MS)
            .execute(pool)
            .await
            .unwrap();
        run("DELETE FROM jobs WHERE name IN ('j39', 'j38', 'j4')")
            .await
            .unwrap();
        run("DELETE FROM jobs WHERE service = 'b' AND state = 'failed'")
            .await
            .unwrap();

        // What aggregating the whole table says, for each kind of caller.
        let expected = |filter: &'static str| async move {
            let rows: Vec<(String, i64, i64, i64, Option<Timestamp>)> = sqlx::query_as(&format!(
                "SELECT service, COUNT(*),
                        CAST(SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END) AS BIGINT),
                        CAST(SUM(CASE WHEN state IN ('failed', 'dead_lettered') THEN 1 ELSE 0 END) AS BIGINT),
                        MAX(created_at)
                 FROM jobs WHERE {filter} GROUP BY service"
            ))
            .fetch_all(pool)
            .await
            .unwrap();
            rows.into_iter()
                .map(|(service, total, running, failed, last)| {
                    let counts = model::jobs::JobActivity {
                        total,
                        running,
                        failed,
                        last,
                    };
                    (service, counts)
                })
                .collect::<std::collections::HashMap<_, _>>()
        };
        let everyone = activity(db, &Caller::admin(), &["a", "b"]).await.unwrap();
        assert_eq!(everyone, expected("1 = 1").await, "{}", app.database());
        assert_eq!(everyone["a"].total, 25, "{}: {everyone:?}", app.database());
        // Only the services asked for (a page of the list).
        let only_a = activity(db, &Caller::admin(), &["a"]).await.unwrap();
        assert_eq!(
            only_a.keys().collect::<Vec<_>>(),
            ["a"],
            "{}",
            app.database()
        );
        assert_eq!(only_a["a"], everyone["a"], "{}", app.database());
        let alice = activity(db, &Caller::user("alice", vec![]), &["a", "b"])
            .await
            .unwrap();
        assert_eq!(
            alice,
            expected("owner = 'alice'").await,
            "{}",
            app.database()
        );

        // A service's last job gone: its counts go with it.
        run("DELETE FROM jobs WHERE service = 'b'").await.unwrap();
        let everyone = activity(db, &Caller::admin(), &["a", "b"]).await.unwrap();
        assert_eq!(everyone, expected("1 = 1").await, "{}", app.database());
        assert!(
            !everyone.contains_key("b"),
            "{}: {everyone:?}",
            app.database()
        );
    }
}

#[tokio::test]
async fn the_parsed_services_follow_changes_made_by_another_server() {
    for app in TestApp::on_each_database().await {
        let (db, catalog) = (&app.app.state.db, &app.app.state.services);
        let names = |services: &[model::service::Service]| {
            services
                .iter()
                .map(|s| (s.name.clone(), s.image.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&catalog.list(db).await.unwrap()),
            [],
            "{}",
            app.database()
        );
        // Straight into the table, as another server sharing the database would write.
        let definition =
            |image: &str| serde_json::json!({"name": "other", "image": image}).to_string();
        let insert = |image: &str| {
            sqlx::query(
                "INSERT INTO services (name, owner, definition, token, created_at, updated_at)
                 VALUES ('other', 'bob', $1, 't', 0, 0)",
            )
            .bind(definition(image))
            .execute(db.pool())
        };
        let update = |image: &str| {
            sqlx::query("UPDATE services SET definition = $1 WHERE name = 'other'")
                .bind(definition(image))
                .execute(db.pool())
        };
        insert("first").await.unwrap();
        let seen = catalog.list(db).await.unwrap();
        assert_eq!(
            names(&seen),
            [("other".into(), "first".into())],
            "{}",
            app.database()
        );
        assert!(
            std::sync::Arc::ptr_eq(&seen, &catalog.list(db).await.unwrap()),
            "{}: unchanged services are not parsed again",
            app.database()
        );
        update("second").await.unwrap();
        assert_eq!(
            names(&catalog.list(db).await.unwrap()),
            [("other".into(), "second".into())],
            "{}",
            app.database()
        );
        sqlx::query("DELETE FROM services")
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(
            names(&catalog.list(db).await.unwrap()),
            [],
            "{}",
            app.database()
        );

        // A backup restored (or a lagging replica promoted): the row is back, and so is the
        // version from before the delete.
        let last_seen: i64 = sqlx::query_scalar("SELECT version FROM services_version")
            .fetch_one(db.pool())
            .await
            .unwrap();
        insert("second").await.unwrap();
        sqlx::query("UPDATE services_version SET version = $1")
            .bind(last_seen - 1)
            .execute(db.pool())
            .await
            .unwrap();
        assert_eq!(
            names(&catalog.list(db).await.unwrap()),
            [("other".into(), "second".into())],
            "{}",
            app.database()
        );
        // The next change must not land on the number this server saw before the restore.
        update("third").await.unwrap();
        assert_eq!(
            names(&catalog.list(db).await.unwrap()),
            [("other".into(), "third".into())],
            "{}",
            app.database()
        );
    }
}

/// Issue 23.4: the dashboard's job tables page through any number of jobs and filter them by
/// service, owner, state and creation time, showing each caller only the jobs they may see.
#[tokio::test]
async fn job_listings_page_and_filter() {
    use domain::access::Caller;
    use domain::jobs::{JobFilter, JobState, find};
    for app in TestApp::on_each_database().await {
        let db = &app.app.state.db;
        for (service, owner) in [("a", "alice"), ("b", "bob")] {
            sqlx::query(
                "INSERT INTO services (name, owner, definition, token, created_at, updated_at)
                 VALUES ($1, $2, '{}', $1, 0, 0)",
            )
            .bind(service)
            .bind(owner)
            .execute(db.pool())
            .await
            .unwrap();
        }
        // Times from now: finished jobs older than the retention would be the cleanup's.
        let base = Timestamp::now().millis();
        for (name, service, owner, state, at) in [
            ("a-1", "a", "alice", "succeeded", 1000),
            ("a-2", "a", "bob", "failed", 2000),
            ("b-1", "b", "bob", "succeeded", 3000),
            ("b-2", "b", "bob", "pending", 3000),
            ("a-3", "a", "alice", "running", 4000),
        ] {
            sqlx::query(
                "INSERT INTO jobs (name, service, owner, trigger, event, state, run_after, created_at)
                 VALUES ($1, $2, $3, 'api', '', $4, $5, $5)",
            )
            .bind(name)
            .bind(service)
            .bind(owner)
            .bind(state)
            .bind(base + at)
            .execute(db.pool())
            .await
            .unwrap();
        }
        let names =
            |jobs: Vec<domain::jobs::Job>| jobs.into_iter().map(|j| j.name).collect::<Vec<_>>();
        let on = db.kind().label();

        // Page by page, newest first, ties by name; the last page says there is no more.
        let admin = Caller::admin();
        let (mut seen, mut after) = (Vec::new(), None::<String>);
        loop {
            let filter = JobFilter {
                visible_to: Some(&admin),
                after: after.as_deref(),
                ..JobFilter::default()
            };
            let (page, next) = find(db, &filter, 2).await.unwrap();
            assert!(page.len() <= 2, "{on}");
            seen.extend(names(page));
            after = next;
            if after.is_none() {
                break;
            }
        }
        assert_eq!(seen, ["a-3", "b-2", "b-1", "a-2", "a-1"], "{on}");

        // Each user sees their own jobs and those of the services they own.
        let alice = Caller::user("alice", Vec::new());
        let bob = Caller::user("bob", Vec::new());
        let (mine, _) = find(
            db,
            &JobFilter {
                visible_to: Some(&alice),
                ..JobFilter::default()
            },
            50,
        )
        .await
        .unwrap();
        assert_eq!(names(mine), ["a-3", "a-2", "a-1"], "{on}");
        let (mine, _) = find(
            db,
            &JobFilter {
                visible_to: Some(&bob),
                ..JobFilter::default()
            },
            50,
        )
        .await
        .unwrap();
        assert_eq!(names(mine), ["b-2", "b-1", "a-2"], "{on}");

        // Filters combine.
        let filters = [
            (
                JobFilter {
                    state: Some(JobState::Failed),
                    ..JobFilter::default()
                },
                vec!["a-2"],
            ),
            (
                JobFilter {
                    since: Some(Timestamp::from_millis(base + 3000)),
                    ..JobFilter::default()
                },
                vec!["a-3", "b-2", "b-1"],
            ),
            (
                JobFilter {
                    service: Some("a"),
                    owner: Some("bob"),
                    ..JobFilter::default()
                },
                vec!["a-2"],
            ),
            (
                JobFilter {
                    service: Some("b"),
                    visible_to: Some(&alice),
                    ..JobFilter::default()
                },
                vec![],
            ),
        ];
        for (filter, expected) in filters {
            let (found, next) = find(db, &filter, 50).await.unwrap();
            assert_eq!(names(found), expected, "{on}: {filter:?}");
            assert_eq!(next, None, "{on}");
        }
    }
}
