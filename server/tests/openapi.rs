//! The REST API's OpenAPI document: served to anyone, well formed, routed operation for
//! operation, and the README's endpoint table names the same operations. (The PyPI validator
//! and the schema-driven client run against the real server in `tests/api`.)

mod common;

use std::collections::BTreeSet;

use common::TestApp;
use http::{StatusCode, header};
use serde_json::Value;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

async fn document(app: &mut TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    response.json()
}

/// `(METHOD, path)` of every documented operation.
fn operations(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|method| item.get(**method).is_some())
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

/// Every `$ref` in `value`.
fn references(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match inner {
                    Value::String(target) if key == "$ref" => found.push(target.clone()),
                    _ => references(inner, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, found)),
        _ => {}
    }
}

/// `{name}` → `{}`: the README and the document may name parameters differently.
fn shape(path: &str) -> String {
    let mut shaped = String::new();
    let mut in_name = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_name = true;
                shaped.push_str("{}");
            }
            '}' => in_name = false,
            _ if !in_name => shaped.push(c),
            _ => {}
        }
    }
    shaped
}

#[tokio::test]
async fn the_document_is_served_to_anyone_and_well_formed() {
    let mut app = TestApp::new().await;
    let document = document(&mut app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(
        document["info"]["version"]
            .as_str()
            .is_some_and(|v| !v.is_empty())
    );

    let mut targets = Vec::new();
    references(&document, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{target} points outside the document"));
        assert!(
            document.pointer(pointer).is_some(),
            "{target} resolves to nothing"
        );
    }

    for (method, path) in operations(&document) {
        let operation = &document["paths"][&path][method.to_lowercase()];
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            assert!(
                response.get("description").is_some() || response.get("$ref").is_some(),
                "{method} {path} {status} has no description"
            );
        }
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents no success"
        );
        assert!(
            operation["summary"].as_str().is_some(),
            "{method} {path} has no summary"
        );
        let declared: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        let templated: BTreeSet<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        assert_eq!(declared, templated, "{method} {path}: path parameters");
    }
}

/// Each documented operation reaches a handler, with and without a trailing slash (the
/// router's own 404 is the dashboard's HTML page, a 405 a method without a handler), and its
/// extractors read the path's parameters (a name they do not know is a 500).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let mut app = TestApp::new().await;
    let document = document(&mut app).await;
    let operations = operations(&document);
    assert!(operations.len() >= 35, "{operations:?}");
    for (method, path) in &operations {
        let concrete = path.replace(['{', '}'], "");
        for path in [concrete.clone(), format!("{concrete}/")] {
            if path == "/health/" || path == "/metrics/" {
                continue;
            }
            let response = app.rest(method, &path, None).await;
            let html = response
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/html"));
            assert!(
                response.status != StatusCode::METHOD_NOT_ALLOWED
                    && !(response.status == StatusCode::NOT_FOUND && html)
                    && !response.status.is_server_error(),
                "{method} {path} is not routed: {} {}",
                response.status,
                response.body
            );
        }
    }
}

/// The README's table of endpoints and the document name the same operations.
#[tokio::test]
async fn the_readme_documents_every_operation() {
    let readme = include_str!("../../README.md");
    let table = readme
        .split("## OSCAR REST API")
        .nth(1)
        .and_then(|section| section.split("\n## ").next())
        .expect("README has an OSCAR REST API section");
    let mut in_readme = BTreeSet::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        // `GET /path`, or `GET`/`PUT /path` for two methods on one path.
        let cell = row.split('|').nth(1).unwrap().trim();
        let cell = cell.replace("`/`", "/").replace('`', "");
        let (methods, path) = cell.rsplit_once(' ').expect("METHOD path");
        for method in methods.split('/') {
            in_readme.insert((method.to_string(), shape(path)));
        }
    }

    let mut app = TestApp::new().await;
    let documented: BTreeSet<(String, String)> = operations(&document(&mut app).await)
        .into_iter()
        .map(|(method, path)| (method, shape(&path)))
        .collect();
    let missing: Vec<_> = documented.difference(&in_readme).collect();
    let stale: Vec<_> = in_readme.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "operations the README does not list: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "README rows with no such operation: {stale:?}"
    );
}

/// The browsable page comes from this server, none of it from a CDN.
#[tokio::test]
async fn the_api_page_is_served_from_here() {
    let mut app = TestApp::new().await;
    let page = app.get("/api-docs/").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("swagger-ui"), "{}", page.body);
    for asset in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-initializer.js",
    ] {
        assert!(page.body.contains(asset), "the page loads {asset}");
        let response = app.get(&format!("/api-docs/{asset}")).await;
        assert_eq!(response.status, StatusCode::OK, "{asset}");
        assert!(!response.body.contains("https://unpkg.com"), "{asset}");
    }
    let initializer = app.get("/api-docs/swagger-initializer.js").await;
    assert!(
        initializer.body.contains("/openapi.json"),
        "{}",
        initializer.body
    );
    assert!(
        !page.body.contains("src=\"http"),
        "no script from elsewhere: {}",
        page.body
    );
}
