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
