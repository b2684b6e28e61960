//! The interactive front-end on a terminal: a rustyline editor on its own thread. Lines the user
//! enters go to the app; events are printed above the prompt through rustyline's external
//! printer, so they never garble a half-typed line.

use std::os::fd::AsRawFd;

use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter};
use thiserror::Error;
use tokio::sync::mpsc;

use super::app::InputLine;
use super::command::{MAX_INPUT_LINE_BYTES, ParseError};

/// The prompt.
pub const PROMPT: &str = "> ";

/// The terminal editor could not start.
#[derive(Debug, Error)]
#[error("cannot start the terminal editor: {0}")]
pub struct ReplError(String);

/// The terminal's settings from before the editor touched them, restored on drop, so the
/// terminal is usable again however the program ends.
pub struct TerminalGuard {
    saved: Option<libc::termios>,
}

impl TerminalGuard {
    fn save() -> Self {
        let fd = std::io::stdin().as_raw_fd();
        // SAFETY: tcgetattr writes a termios into the zeroed struct we own; fd is stdin.
        let mut termios: libc::termios = unsafe { std::mem::zeroed() };
        let saved = (unsafe { libc::tcgetattr(fd, &mut termios) } == 0).then_some(termios);
        TerminalGuard { saved }
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        if let Some(termios) = &self.saved {
            // SAFETY: restores settings read from the same fd by tcgetattr.
            unsafe { libc::tcsetattr(std::io::stdin().as_raw_fd(), libc::TCSANOW, termios) };
        }
    }
}

/// Starts the editor thread. Returns the printer for output and the guard that restores the
/// terminal. The `lines` channel closes when the user presses Ctrl-D.
pub fn start(
    lines: mpsc::Sender<InputLine>,
) -> Result<(Box<dyn ExternalPrinter + Send>, TerminalGuard), ReplError> {
    let guard = TerminalGuard::save();
    let (printer_tx, printer_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("meshchat-repl".into())
        .spawn(move || {
            let mut editor = match DefaultEditor::new() {
                Ok(editor) => editor,
                Err(e) => {
                    let _ = printer_tx.send(Err(ReplError(e.to_string())));
                    return;
                }
            };
            match editor.create_external_printer() {
                Ok(printer) => {
                    let boxed: Box<dyn ExternalPrinter + Send> = Box::new(printer);
                    let _ = printer_tx.send(Ok(boxed));
                }
                Err(e) => {
                    let _ = printer_tx.send(Err(ReplError(e.to_string())));
                    return;
                }
            }
            edit_lines(&mut editor, &lines);
        })
        .map_err(|e| ReplError(e.to_string()))?;
    let printer = printer_rx
        .recv()
        .map_err(|_| ReplError("the editor thread ended".into()))??;
    Ok((printer, guard))
}

fn edit_lines(editor: &mut DefaultEditor, lines: &mpsc::Sender<InputLine>) {
    loop {
        let line = match editor.readline(PROMPT) {
            Ok(line) => line,
            // Ctrl-C clears the line being typed.
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => return,
            Err(e) => {
                tracing::warn!(%e, "terminal input failed");
                return;
            }
        };
        let input = if line.len() > MAX_INPUT_LINE_BYTES {
            Err(ParseError::TooLong { len: line.len() })
        } else {
            if !line.trim().is_empty() {
                let _ = editor.add_history_entry(line.as_str());
            }
            Ok(line)
        };
        if lines.blocking_send(input).is_err() {
            return;
        }
    }
}
