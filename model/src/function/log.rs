//! A job's output as one ordered stream of lines, each with the time it was written and
//! where it came from: the script's stdout or stderr, or the platform (the supervisor's
//! messages, the executors' notes).
//!
//! The supervisor reads the script's two pipes in one loop, so their lines keep the order they
//! were written in. Where the platform reads the supervisor's output itself (the embedded
//! executors), it sets [`MARKED_ENV`] and gives the supervisor one pipe for stdout and
//! stderr: the supervisor then writes each of the script's lines as [`Line::marked`], and
//! whatever else comes through the pipe (its own messages, a panic) is the platform's. Without
//! the variable (Kubernetes, where the container runtime reads the output) lines pass through
//! to stdout and stderr unchanged.

use crate::time::Timestamp;

/// Set (to anything) by an executor that reads marked lines.
pub const MARKED_ENV: &str = "OSCAR_LOG_MARKED";

/// Longest line kept: the rest of a longer one is dropped with a notice, so a job printing
/// without newlines cannot make anyone hold its output.
pub const MAX_LINE: usize = 64 * 1024;

/// Longest marked line: a kept line, its cut notice and its mark.
pub const MAX_MARKED_LINE: usize = MAX_LINE + 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Out,
    Err,
    /// The platform's own lines: what the supervisor did, why an attempt failed.
    Platform,
}

/// One line of a job's output, without its newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at: Timestamp,
    pub stream: Stream,
    pub text: String,
}

impl Line {
    /// A line written now.
    #[cfg(not(target_family = "wasm"))]
    pub fn now(stream: Stream, text: String) -> Self {
        Self {
            at: Timestamp::now(),
            stream,
            text,
        }
    }

    /// `<milliseconds since the epoch> <o|e> <text>` and a newline.
    pub fn marked(&self) -> String {
        let tag = match self.stream {
            Stream::Out => 'o',
            Stream::Err => 'e',
            Stream::Platform => 'p',
        };
        format!("{} {tag} {}\n", self.at.millis(), self.text)
    }

    /// A line of a supervisor's marked output: the script's lines as they were marked, any
    /// other (the supervisor's own messages, a panic) the platform's, timed now.
    #[cfg(not(target_family = "wasm"))]
    pub fn from_marked_output(text: String) -> Self {
        Self::unmark(&text).unwrap_or_else(|| Self::now(Stream::Platform, text))
    }

    /// A marked line read back (without its newline); `None` when it is not one.
    pub fn unmark(line: &str) -> Option<Self> {
        let (millis, rest) = line.split_once(' ')?;
        let millis = millis.parse().ok()?;
        let (stream, text) = match rest.split_at_checked(2)? {
            ("o ", text) => (Stream::Out, text),
            ("e ", text) => (Stream::Err, text),
            ("p ", text) => (Stream::Platform, text),
            _ => return None,
        };
        Some(Self {
            at: Timestamp::from_millis(millis),
            stream,
            text: text.to_string(),
        })
    }
}

/// Cuts output into lines of at most a limit of bytes ([`MAX_LINE`] by default), whatever the
/// chunks it arrives in (invalid UTF-8 replaced, not dropped).
#[derive(Debug)]
pub struct LineSplitter {
    line: Vec<u8>,
    /// Bytes of the current line past the limit.
    cut: u64,
    limit: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::with_limit(MAX_LINE)
    }
}

impl LineSplitter {
    pub fn with_limit(limit: usize) -> Self {
        Self {
            line: Vec::new(),
            cut: 0,
            limit,
        }
    }

    /// Adds output; the lines it completes go to `lines`.
    pub fn push(&mut self, mut chunk: &[u8], lines: &mut Vec<String>) {
        while !chunk.is_empty() {
            let (part, rest, ended) = match chunk.iter().position(|b| *b == b'\n') {
                Some(end) => (&chunk[..end], &chunk[end + 1..], true),
                None => (chunk, &[][..], false),
            };
            let kept = part.len().min(self.limit - self.line.len());
            self.line.extend_from_slice(&part[..kept]);
            self.cut += (part.len() - kept) as u64;
            if ended {
                lines.push(self.take());
            }
            chunk = rest;
        }
    }

    /// The last line, when the output did not end with a newline.
    pub fn finish(mut self) -> Option<String> {
        (!self.line.is_empty() || self.cut > 0).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut text = String::from_utf8_lossy(&self.line)
            .trim_end_matches('\r')
            .to_string();
        if self.cut > 0 {
            text.push_str(&format!(
                " [line cut: {} more bytes; lines are kept up to {} bytes]",
                self.cut, self.limit
            ));
        }
        self.line.clear();
        self.cut = 0;
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.push(chunk, &mut lines);
        }
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn lines_are_whole_whatever_the_chunks() {
        assert_eq!(
            split(&[b"one\ntw", b"o\r\n", b"", b"\nthree"]),
            ["one", "two", "", "three"]
        );
        assert_eq!(split(&[b"a\n"]), ["a"]);
        assert!(split(&[]).is_empty());
    }

    #[test]
    fn a_line_longer_than_the_cap_is_cut_with_a_notice() {
        let long = vec![b'x'; MAX_LINE + 10];
        let lines = split(&[&long[..100], &long[100..], b"\nnext\n"]);
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with(&"x".repeat(MAX_LINE)));
        assert!(
            lines[0].ends_with("[line cut: 10 more bytes; lines are kept up to 65536 bytes]"),
            "{}",
            &lines[0][MAX_LINE..]
        );
        assert_eq!(lines[1], "next");
        let unended = split(&[&long]);
        assert_eq!(unended.len(), 1);
        assert!(unended[0].contains("[line cut: 10 more bytes"));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        assert_eq!(split(&[b"caf\xff\n"]), ["caf\u{fffd}"]);
    }

    #[test]
    fn marked_lines_read_back_and_nothing_else_does() {
        for stream in [Stream::Out, Stream::Err, Stream::Platform] {
            for text in ["", "plain", "1 e looks marked", " spaced "] {
                let line = Line {
                    at: Timestamp::from_millis(1_767_261_600_123),
                    stream,
                    text: text.into(),
                };
                let marked = line.marked();
                assert!(marked.ends_with('\n'));
                assert_eq!(Line::unmark(marked.trim_end_matches('\n')), Some(line));
            }
        }
        for unmarked in [
            "",
            "oscar-supervisor: the script exited with 1",
            "thread 'main' panicked at src/main.rs:1:1",
            "12 x text",
            "12 o",
            "-x o text",
        ] {
            assert_eq!(Line::unmark(unmarked), None, "{unmarked:?}");
        }
    }

    #[test]
    fn the_longest_cut_line_fits_its_mark() {
        let mut splitter = LineSplitter::default();
        let mut lines = Vec::new();
        splitter.push(&vec![b'x'; 10 * MAX_LINE], &mut lines);
        let text = splitter.finish().unwrap();
        let marked = Line {
            at: Timestamp::from_millis(i64::MAX),
            stream: Stream::Err,
            text,
        }
        .marked();
        assert!(marked.len() - 1 <= MAX_MARKED_LINE, "{}", marked.len());
    }
}
