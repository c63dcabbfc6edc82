//! Pulls from a real registry (Debian's docker-registry on loopback) into the cache.

use std::sync::Arc;
use std::time::Duration;

use images::{Credentials, Images, Mirror, Settings};
use test_registry::{Layer, Registry, TestImage};

fn settings(dir: &std::path::Path) -> Settings {
    Settings {
        dir: dir.to_path_buf(),
        limit: 1 << 30,
        tag_refresh: Duration::from_secs(300),
        mirrors: Vec::new(),
        insecure: Vec::new(),
    }
}

fn open(settings: Settings) -> Arc<Images> {
    Images::open(settings).unwrap()
}

#[tokio::test]
async fn an_image_is_pulled_once_and_runs_from_its_root() {
    let registry = Registry::start(None);
    let image = registry.push("tools:1", &TestImage::busybox()).await;
    let cache = tempfile::tempdir().unwrap();
    let images = open(settings(cache.path()));

    let (a, b) = tokio::join!(images.prepare(&image, None), images.prepare(&image, None));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.digest, b.digest);
    assert!(a.root.join("bin/busybox").is_file());
    assert_eq!(
        std::fs::read_link(a.root.join("bin/sh")).unwrap(),
        std::path::Path::new("busybox")
    );
    assert!(a.config.env.iter().any(|e| e.starts_with("PATH=")));
    // Two jobs at once: one manifest request, one download of the layer.
    assert_eq!(
        registry.requests(&["GET /v2/tools/blobs/"]),
        2,
        "{}",
        registry.log()
    ); // config + layer
    assert_eq!(registry.requests(&["GET /v2/tools/manifests/1"]), 1);

    // Within the refresh period the tag is not asked for again, and the cache survives a
    // restart.
    drop((a, b));
    drop(images);
    let images = open(settings(cache.path()));
    images.prepare(&image, None).await.unwrap();
    assert_eq!(registry.requests(&["GET /v2/tools/blobs/"]), 2);
}

#[tokio::test]
async fn layers_stack_with_whiteouts_and_links_stay_inside_the_root() {
    let registry = Registry::start(None);
    let marker = format!("planted-{}", std::process::id());
    let image = TestImage::busybox()
        .with_layer(
            Layer::default()
                .whiteout("bin/wget")
                .symlink("escape", "../../../../../../../.."),
        )
        .with_layer(Layer::default().file(&format!("escape/{marker}"), b"x", 0o644));
    let image = registry.push("layered:1", &image).await;
    let cache = tempfile::tempdir().unwrap();
    let pulled = open(settings(cache.path()))
        .prepare(&image, None)
        .await
        .unwrap();
    assert!(!pulled.root.join("bin/wget").exists());
    assert!(pulled.root.join("bin/tr").exists());
    assert!(pulled.root.join(&marker).is_file());
    assert!(!std::path::Path::new("/").join(&marker).exists());
}

#[tokio::test]
async fn failures_name_their_reason() {
    let registry = Registry::start(Some(("alice", "s3cret")));
    let image = registry.push("private:1", &TestImage::busybox()).await;
    let mut arm = TestImage::busybox();
    arm.architecture = if test_registry::oci_architecture() == "arm64" {
        "amd64"
    } else {
        "arm64"
    }
    .into();
    let credentials = |password: &str| Credentials {
        username: "alice".into(),
        password: password.into(),
    };
    let other = registry.push("other-arch:1", &arm).await;
    let cache = tempfile::tempdir().unwrap();
    let images = open(settings(cache.path()));

    let err = images.prepare(&image, None).await.unwrap_err();
    assert!(err.contains("credentials"), "{err}");
    let err = images
        .prepare(&image, Some(&credentials("wrong")))
        .await
        .unwrap_err();
    assert!(
        err.contains("credentials") || err.contains("refused"),
        "{err}"
    );
    let missing = registry.reference("nothing:here");
    let err = images
        .prepare(&missing, Some(&credentials("s3cret")))
        .await
        .unwrap_err();
    assert!(err.contains("nothing"), "{err}");
    let err = images
        .prepare(&other, Some(&credentials("s3cret")))
        .await
        .unwrap_err();
    assert!(err.contains("is built for linux/"), "{err}");
    let err = images.prepare("Not An Image!", None).await.unwrap_err();
    assert!(err.contains("not an image reference"), "{err}");
    images
        .prepare(&image, Some(&credentials("s3cret")))
        .await
        .unwrap();
    // Cached now, yet a tenant who only names it, or guesses wrong, gets nothing from the
    // cache; the owner of the credentials still does, without a new download.
    let err = images.prepare(&image, None).await.unwrap_err();
    assert!(err.contains("credentials"), "{err}");
    assert!(
        images
            .prepare(&image, Some(&credentials("wrong")))
            .await
            .is_err()
    );
    images
        .prepare(&image, Some(&credentials("s3cret")))
        .await
        .unwrap();
    assert_eq!(
        registry.requests(&["GET /v2/private/blobs/", "\" 200 "]),
        2,
        "{}",
        registry.log()
    );
}

#[tokio::test]
async fn least_recently_used_images_not_in_use_are_evicted() {
    let registry = Registry::start(None);
    let first = registry
        .push(
            "first:1",
            &TestImage::busybox().with_random_layer("data", 1 << 20),
        )
        .await;
    let second = registry
        .push(
            "second:1",
            &TestImage::busybox().with_random_layer("data", 2 << 20),
        )
        .await;
    let cache = tempfile::tempdir().unwrap();
    let mut small = settings(cache.path());
    let one = open(small.clone()).prepare(&first, None).await.unwrap();
    let needed = dir_size(cache.path());
    drop(one);
    // Room for one image and a half.
    small.limit = needed * 3 / 2 + (2 << 20);
    let images = open(small);

    let in_use = images.prepare(&first, None).await.unwrap();
    let other = images.prepare(&second, None).await.unwrap();
    assert!(in_use.root.exists(), "an image in use is never evicted");
    drop((in_use, other));
    // The next pull makes room by evicting the least recently used image.
    images.prepare(&first, None).await.unwrap();
    let third = registry
        .push(
            "third:1",
            &TestImage::busybox().with_random_layer("data", 3 << 20),
        )
        .await;
    let kept = images.prepare(&third, None).await.unwrap();
    assert!(kept.root.exists());
    let roots = std::fs::read_dir(cache.path().join("roots"))
        .unwrap()
        .count();
    assert!(roots < 3, "{roots} roots kept");

    let mut tiny = settings(tempfile::tempdir().unwrap().path());
    tiny.limit = 1024;
    let err = open(tiny).prepare(&first, None).await.unwrap_err();
    assert!(err.contains("OSCAR_IMAGE_CACHE_LIMIT"), "{err}");
}

#[tokio::test]
async fn mirrors_serve_first_and_a_tag_outlives_its_registry() {
    let mirror = Registry::start(None);
    mirror.push("team/tools:1", &TestImage::busybox()).await;
    let cache = tempfile::tempdir().unwrap();
    let mut with_mirror = settings(cache.path());
    with_mirror.mirrors =
        vec![Mirror::parse(&format!("registry.invalid=http://{}", mirror.host)).unwrap()];
    with_mirror.tag_refresh = Duration::ZERO;
    let images = open(with_mirror);
    images
        .prepare("registry.invalid/team/tools:1", None)
        .await
        .unwrap();
    assert_eq!(mirror.requests(&["GET /v2/team/tools/manifests/1"]), 1);

    // The mirror gone and the registry unknown: the digest the tag last named is used.
    drop(mirror);
    images
        .prepare("registry.invalid/team/tools:1", None)
        .await
        .unwrap();
}

fn dir_size(path: &std::path::Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).unwrap().flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        total += if meta.is_dir() {
            dir_size(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

#[tokio::test]
async fn a_pull_reports_its_progress_while_it_runs() {
    let registry = Registry::start(None);
    let big = TestImage::busybox().with_random_layer("data", 64 << 20);
    let image = registry.push("big:1", &big).await;
    let cache = tempfile::tempdir().unwrap();
    let images = open(settings(cache.path()));
    assert_eq!(images.pulling(&image), None);
    let pull = {
        let (images, image) = (images.clone(), image.clone());
        tokio::spawn(async move { images.prepare(&image, None).await.map(|i| i.digest) })
    };
    let mut seen = Vec::new();
    while !pull.is_finished() {
        seen.extend(images.pulling(&image));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    pull.await.unwrap().unwrap();
    assert!(!seen.is_empty(), "no progress was reported");
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(seen.iter().all(|p| *p <= 100), "{seen:?}");
    assert_eq!(images.pulling(&image), None);
}

/// An image reference can name any host: what a host that is not a registry answers stays in
/// the server's log, not in the message users read.
#[tokio::test]
async fn a_host_that_is_not_a_registry_does_not_tell_its_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let body = "internal-only: admin-token=hunter2";
            let answer = format!(
                "HTTP/1.1 500 Internal Server Error\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    let cache = tempfile::tempdir().unwrap();
    let images = open(settings(cache.path()));
    let err = images
        .prepare(&format!("{host}/internal/service:1"), None)
        .await
        .unwrap_err();
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("500"), "{err}");
}
