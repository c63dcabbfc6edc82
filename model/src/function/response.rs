//! A synchronous response carried at the end of the job's log, where a pod's files are gone
//! once it ends but its log can still be read: base64 lines between two marker lines. The
//! platform takes the last framed block out of the log it stores.

use base64::Engine;

const BEGIN: &str = "--- oscar-supervisor: response (base64) begins ---";
const END: &str = "--- oscar-supervisor: response ends ---";
/// Base64 characters per line (MIME's width): short lines stay whole in any log pipeline.
const WIDTH: usize = 76;

/// The response as log text, starting on a line of its own.
pub fn frame(body: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    let mut text = format!("\n{BEGIN}\n");
    for chunk in encoded.as_bytes().chunks(WIDTH) {
        // Base64 is ASCII: every chunk is valid UTF-8.
        text.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        text.push('\n');
    }
    text.push_str(END);
    text.push('\n');
    text
}

/// Splits a job's log lines into the log without the last framed response, and that
/// response. `None` when no complete, valid frame is there.
pub fn unframe(lines: Vec<String>) -> (Vec<String>, Option<Vec<u8>>) {
    let Some(begin) = lines.iter().rposition(|l| l == BEGIN) else {
        return (lines, None);
    };
    let Some(end) = lines[begin..]
        .iter()
        .position(|l| l == END)
        .map(|i| begin + i)
    else {
        return (lines, None);
    };
    let encoded: String = lines[begin + 1..end].concat();
    let Ok(body) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return (lines, None);
    };
    let mut rest = lines;
    rest.drain(begin..=end);
    // The empty line `frame` starts with, when the output before it ended with a newline.
    if begin > 0 && rest.get(begin - 1).is_some_and(|l| l.is_empty()) {
        rest.remove(begin - 1);
    }
    (rest, Some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn a_framed_response_comes_back_whole_and_leaves_the_log_as_it_was() {
        let body: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let log = format!("first\nsecond\n{}", frame(&body));
        let (rest, response) = unframe(lines(&log));
        assert_eq!(response.as_deref(), Some(&body[..]));
        assert_eq!(rest, ["first", "second"]);
    }

    #[test]
    fn an_empty_response_and_the_last_of_two_frames() {
        let log = format!("{}between\n{}", frame(b"old"), frame(b""));
        let (rest, response) = unframe(lines(&log));
        assert_eq!(response.as_deref(), Some(&b""[..]));
        assert_eq!(rest.last().map(String::as_str), Some("between"));
    }

    #[test]
    fn an_unfinished_or_garbled_frame_is_left_in_the_log() {
        let cut = frame(b"hello");
        let cut = cut.lines().take(3).collect::<Vec<_>>().join("\n");
        let (rest, response) = unframe(lines(&cut));
        assert!(response.is_none());
        assert_eq!(rest.len(), 3);
        let garbled = format!("\n{BEGIN}\n!!!\n{END}\n");
        assert!(unframe(lines(&garbled)).1.is_none());
    }
}
