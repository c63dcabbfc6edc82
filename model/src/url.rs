//! URL pieces shared by the server and the browser.

/// Percent-encodes every byte but unreserved ones (RFC 3986) and those in `keep`.
pub fn percent_encode(text: &str, keep: &[u8]) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b if keep.contains(&b) => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn encodes_all_but_unreserved_and_kept_bytes() {
        assert_eq!(percent_encode("/a b?ü", b""), "%2Fa%20b%3F%C3%BC");
        assert_eq!(percent_encode("/a b", b"/"), "/a%20b");
    }

    /// Property tests: what `percent_encode` writes decodes back the way the server decodes it,
    /// in a path (axum's `Path` extractor decodes with `percent-encoding`) and in a query
    /// (`form_urlencoded`, as `app::web::transfers` reads the download links).
    mod properties {
        use super::percent_encode;
        use percent_encoding::percent_decode_str;
        use proptest::prelude::*;

        /// Any unicode, and often the characters URLs give a meaning to.
        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<String>(),
                "[a-zA-Z0-9 +%/&=?#.~*_\\\\:;,é€😀\u{0}\n-]{0,40}",
            ]
        }

        proptest! {
            #[test]
            fn encoded_text_is_url_safe_and_decodes_back(text in text(), keep_slash in any::<bool>()) {
                let keep: &[u8] = if keep_slash { b"/" } else { b"" };
                let encoded = percent_encode(&text, keep);
                prop_assert!(
                    encoded
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b) || keep.contains(&b)),
                    "{:?}",
                    encoded
                );
                let decoded = percent_decode_str(&encoded).decode_utf8();
                prop_assert_eq!(decoded.as_deref().ok(), Some(text.as_str()));
            }

            #[test]
            fn kept_slashes_separate_the_same_segments(text in text()) {
                let encoded = percent_encode(&text, b"/");
                let segments: Vec<String> = encoded
                    .split('/')
                    .map(|s| percent_decode_str(s).decode_utf8().unwrap().into_owned())
                    .collect();
                prop_assert_eq!(segments, text.split('/').collect::<Vec<_>>());
            }

            #[test]
            fn query_values_decode_back(prefix in text(), key in text()) {
                let query = format!(
                    "prefix={}&key={}",
                    percent_encode(&prefix, b""),
                    percent_encode(&key, b"")
                );
                let pairs: Vec<(String, String)> =
                    form_urlencoded::parse(query.as_bytes()).into_owned().collect();
                prop_assert_eq!(pairs, vec![("prefix".to_string(), prefix), ("key".to_string(), key)]);
            }
        }
    }
}
