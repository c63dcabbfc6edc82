//! Object keys and bucket names: the platform's rules (`validate::object_key`,
//! `validate::bucket_name`), the key escaping of storage notifications
//! (`model::function::event::{encode_key, decode_key}`), URL escaping (`model::url::percent_encode`)
//! and the embedded store's request classifier (`embedded_s3::{object_created, signer}`),
//! which decides from a raw request which object it creates and who signed it.
//!
//! The input is taken whole as a key; as a request it is `METHOD URI\nAUTHORIZATION\nCOPY-SOURCE`.
#![no_main]

use model::service::validate::{bucket_name, object_key};
use model::url::percent_encode;
use embedded_s3::{object_created, signer};
use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use s3s::path::{S3Path, parse_path_style};
use model::function::event::{decode_key, encode_key};

fn check_key(key: &str) {
    if object_key(key).is_ok() {
        assert!(!key.is_empty() && key.len() <= 1024 && !key.starts_with('/'));
        assert!(!key.chars().any(char::is_control));
        assert!(!key.split('/').any(|s| s == "." || s == ".."));
    }
    if bucket_name(key).is_ok() {
        assert!((3..=63).contains(&key.len()));
        assert!(
            object_key(key).is_ok(),
            "a bucket name is a valid key: {key:?}"
        );
    }

    // Notifications: decode(encode(k)) == k.
    let encoded = encode_key(key);
    assert!(
        encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"*-._+%".contains(&b)),
        "{encoded:?}"
    );
    assert_eq!(decode_key(&encoded), key);

    // URLs: only unreserved bytes, kept bytes and escapes; decodes back.
    for keep in [&b""[..], b"/"] {
        let url = percent_encode(key, keep);
        assert!(
            url.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b) || keep.contains(&b)),
            "{url:?}"
        );
        assert_eq!(percent_decode_str(&url).decode_utf8().unwrap(), key);
    }

    // The store sees the key in a path-style URI, escaped as the SDKs escape it.
    let Ok(uri) = format!("/fuzz/{}", percent_encode(key, b"/")).parse::<http::Uri>() else {
        return;
    };
    let headers = http::HeaderMap::new();
    let put = object_created(&http::Method::PUT, &uri, &headers);
    if key.is_empty() || key.ends_with('/') {
        assert_eq!(put, None, "a folder marker is not an object");
    } else {
        let put = put.expect("a PUT creates an object");
        assert_eq!((put.event_name, put.bucket.as_str()), ("Put", "fuzz"));
        assert_eq!(put.key, key);
    }
    assert_eq!(object_created(&http::Method::GET, &uri, &headers), None);
    assert_eq!(signer(&uri, &headers), None);
}

fn check_request(text: &str) {
    let mut lines = text.split('\n');
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or(("PUT", first));
    let (Ok(method), Ok(uri)) = (
        http::Method::from_bytes(method.as_bytes()),
        target.parse::<http::Uri>(),
    ) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    for (name, line) in [
        (http::header::AUTHORIZATION, lines.next()),
        (
            http::HeaderName::from_static("x-amz-copy-source"),
            lines.next(),
        ),
    ] {
        if let Some(value) = line.and_then(|l| http::HeaderValue::from_str(l).ok()) {
            headers.insert(name, value);
        }
    }
    if let Some(created) = object_created(&method, &uri, &headers) {
        assert!(!created.key.is_empty() && !created.key.ends_with('/'));
        assert!(matches!(method, http::Method::PUT | http::Method::POST));
        assert_eq!(created.signer, None);
        // The object the store itself creates: s3s decodes the whole path, then splits it.
        let decoded = percent_decode_str(uri.path()).decode_utf8();
        if let Ok(S3Path::Object { bucket, key }) = decoded
            .map_err(|_| ())
            .and_then(|path| parse_path_style(&path).map_err(|_| ()))
        {
            assert_eq!(
                (created.bucket.as_str(), created.key.as_str()),
                (&*bucket, &*key)
            );
        }
    }
    if let Some(key) = signer(&uri, &headers) {
        assert!(!key.is_empty() && !key.contains('/'));
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_key(&text);
    check_request(&text);
});
