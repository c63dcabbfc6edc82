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
}
