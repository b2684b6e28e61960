//! Reads commands line by line from a non-terminal stdin (pipes, scripts, tests).
//!
//! Lines are bounded: a line longer than [`MAX_INPUT_LINE_BYTES`] is skipped to its end and
//! reported as too long, so no input can make the node hold unbounded memory. Bytes that are
//! not UTF-8 are replaced, never fatal.

use std::io::{BufRead, ErrorKind};

use tokio::sync::mpsc;

use super::app::InputLine;
use super::command::{MAX_INPUT_LINE_BYTES, ParseError};

/// Reads `reader` on its own thread and sends every line to `lines`; the channel closes at end
/// of input.
pub fn spawn_reader<R: BufRead + Send + 'static>(reader: R, lines: mpsc::Sender<InputLine>) {
    std::thread::Builder::new()
        .name("meshchat-stdin".into())
        .spawn(move || read_lines(reader, &lines))
        .map(drop)
        .unwrap_or_else(|e| tracing::error!(%e, "cannot start the input thread"));
}

fn read_lines<R: BufRead>(mut reader: R, lines: &mpsc::Sender<InputLine>) {
    let mut line = Vec::new();
    let mut len = 0usize;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(chunk) => chunk,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(%e, "cannot read input");
                return;
            }
        };
        if chunk.is_empty() {
            if len > 0 && lines.blocking_send(finish(&mut line, &mut len)).is_err() {
                return;
            }
            return;
        }
        let (taken, end_of_line) = match chunk.iter().position(|b| *b == b'\n') {
            Some(pos) => (pos + 1, true),
            None => (chunk.len(), false),
        };
        let content = &chunk[..if end_of_line { taken - 1 } else { taken }];
        len += content.len();
        if line.len() + content.len() <= MAX_INPUT_LINE_BYTES {
            line.extend_from_slice(content);
        }
        reader.consume(taken);
        if end_of_line && lines.blocking_send(finish(&mut line, &mut len)).is_err() {
            return;
        }
    }
}

fn finish(line: &mut Vec<u8>, len: &mut usize) -> InputLine {
    let result = if *len > MAX_INPUT_LINE_BYTES {
        Err(ParseError::TooLong { len: *len })
    } else {
        Ok(String::from_utf8_lossy(line).into_owned())
    };
    line.clear();
    *len = 0;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(input: &[u8]) -> Vec<InputLine> {
        let (tx, mut rx) = mpsc::channel(16);
        let input = input.to_vec();
        let reader = std::thread::spawn(move || read_lines(std::io::BufReader::with_capacity(7, &input[..]), &tx));
        let mut out = Vec::new();
        while let Some(line) = rx.blocking_recv() {
            out.push(line);
        }
        reader.join().unwrap();
        out
    }

    #[test]
    fn lines_are_split_and_the_last_needs_no_newline() {
        let lines = read_all(b"/status\nhello world\r\nlast");
        assert_eq!(lines, vec![Ok("/status".into()), Ok("hello world\r".into()), Ok("last".into())]);
    }

    #[test]
    fn an_overlong_line_is_reported_and_skipped() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\n/status\n");
        let lines = read_all(&input);
        assert_eq!(lines, vec![Err(ParseError::TooLong { len: 100_000 }), Ok("/status".into())]);
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let lines = read_all(b"caf\xe9\n");
        assert_eq!(lines, vec![Ok("caf\u{fffd}".into())]);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    /// What the reader should yield for `input`: every `\n`-terminated line, and a last
    /// unterminated one if not empty; lines over the limit as errors with their length.
    fn expected(input: &[u8]) -> Vec<InputLine> {
        let mut lines: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
        if lines.last().is_some_and(|last| last.is_empty()) {
            lines.pop();
        }
        lines
            .into_iter()
            .map(|line| {
                if line.len() > MAX_INPUT_LINE_BYTES {
                    Err(ParseError::TooLong { len: line.len() })
                } else {
                    Ok(String::from_utf8_lossy(line).into_owned())
                }
            })
            .collect()
    }

    fn read_with(input: &[u8], capacity: usize) -> Vec<InputLine> {
        let (tx, mut rx) = mpsc::channel(4);
        let input = input.to_vec();
        let reader =
            std::thread::spawn(move || read_lines(std::io::BufReader::with_capacity(capacity, &input[..]), &tx));
        let mut out = Vec::new();
        while let Some(line) = rx.blocking_recv() {
            out.push(line);
        }
        reader.join().unwrap();
        out
    }

    /// Byte streams of short lines with any bytes, and lines around and far over the limit.
    fn any_stream() -> impl Strategy<Value = Vec<u8>> {
        let short = prop::collection::vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..30);
        let long = (
            prop_oneof![MAX_INPUT_LINE_BYTES - 2..MAX_INPUT_LINE_BYTES + 3, Just(3 * MAX_INPUT_LINE_BYTES)],
            any::<u8>(),
            any::<bool>(),
        )
            .prop_map(|(n, byte, newline)| {
                let mut line = vec![if byte == b'\n' { b'x' } else { byte }; n];
                if newline {
                    line.push(b'\n');
                }
                line
            });
        prop::collection::vec(prop_oneof![3 => short, 1 => long], 0..6).prop_map(|parts| parts.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn any_byte_stream_splits_into_bounded_lines(input in any_stream(), capacity in 1usize..9000) {
            let lines = read_with(&input, capacity);
            prop_assert_eq!(&lines, &expected(&input));
            for line in lines.iter().flatten() {
                // At most the limit in input bytes; each byte that is not UTF-8 becomes U+FFFD.
                prop_assert!(line.len() <= 3 * MAX_INPUT_LINE_BYTES);
                prop_assert!(!line.contains('\n'));
            }
        }
    }
}
