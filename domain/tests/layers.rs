//! The dependency rule (ARCHITECTURE.md): the domain compiles without a web framework, and the
//! model without features is serde-only. Checked on what cargo resolves for each crate alone,
//! so a dependency added anywhere below them (directly or through another crate) is caught.

use std::process::Command;

/// The packages `cargo tree` resolves for `package` alone (normal dependencies, transitively).
fn dependencies(package: &str) -> Vec<String> {
    let output = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_string))
        .collect()
}

fn web_frameworks(deps: &[String]) -> Vec<&String> {
    deps.iter()
        .filter(|name| {
            name.starts_with("leptos")
                || name.starts_with("axum")
                || name.starts_with("server_fn")
                || name.as_str() == "app"
        })
        .collect()
}

#[test]
fn the_domain_depends_on_no_web_framework() {
    let deps = dependencies("domain");
    assert!(deps.iter().any(|d| d == "model"), "{deps:?}");
    assert_eq!(web_frameworks(&deps), Vec::<&String>::new());
}

#[test]
fn the_supervisor_depends_on_no_web_framework() {
    let deps = dependencies("supervisor");
    assert_eq!(web_frameworks(&deps), Vec::<&String>::new());
}

#[test]
fn the_model_is_serde_only_without_features() {
    let mut deps = dependencies("model");
    deps.sort();
    deps.dedup();
    let io = [
        "sqlx",
        "tokio",
        "hyper",
        "http",
        "tracing",
        "aws-sdk-s3",
        "kube",
    ];
    let found: Vec<_> = deps.iter().filter(|d| io.contains(&d.as_str())).collect();
    assert_eq!(found, Vec::<&String>::new(), "{deps:?}");
    assert_eq!(web_frameworks(&deps), Vec::<&String>::new());
}
