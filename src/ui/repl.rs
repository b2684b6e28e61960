//! The interactive front-end on a terminal: a rustyline editor on its own thread. Lines the user
//! enters go to the app; events are printed above the prompt through rustyline's external
//! printer, so they never garble a half-typed line.

use std::os::fd::AsRawFd;

use std::borrow::Cow;

use rustyline::config::Configurer;
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::history::DefaultHistory;
use rustyline::{ColorMode, Completer, Editor, ExternalPrinter, Helper, Hinter, Validator};
use thiserror::Error;
use tokio::sync::mpsc;

use super::app::{InputLine, password_follows};
use super::command::{self, MAX_INPUT_LINE_BYTES, ParseError};

/// The prompt.
pub const PROMPT: &str = "> ";
/// The prompt for a password.
pub const PASSWORD_PROMPT: &str = "password: ";

/// Hides what is typed while `masking` is on (passwords).
#[derive(Completer, Helper, Hinter, Validator, Default)]
struct Masking {
    masking: bool,
}

impl Highlighter for Masking {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.masking { Cow::Owned("*".repeat(line.chars().count())) } else { Cow::Borrowed(line) }
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        self.masking && kind != CmdKind::MoveCursor
    }
}

type LineEditor = Editor<Masking, DefaultHistory>;

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
pub fn start(lines: mpsc::Sender<InputLine>) -> Result<(Box<dyn ExternalPrinter + Send>, TerminalGuard), ReplError> {
    let guard = TerminalGuard::save();
    let (printer_tx, printer_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("meshchat-repl".into())
        .spawn(move || {
            let mut editor = match LineEditor::new() {
                Ok(mut editor) => {
                    editor.set_helper(Some(Masking::default()));
                    editor.set_auto_add_history(false);
                    editor
                }
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
    let printer = printer_rx.recv().map_err(|_| ReplError("the editor thread ended".into()))??;
    Ok((printer, guard))
}

fn read_password(editor: &mut LineEditor) -> Result<String, ReadlineError> {
    if let Some(helper) = editor.helper_mut() {
        helper.masking = true;
    }
    editor.set_color_mode(ColorMode::Forced);
    let password = editor.readline(PASSWORD_PROMPT);
    if let Some(helper) = editor.helper_mut() {
        helper.masking = false;
    }
    editor.set_color_mode(ColorMode::Enabled);
    password
}

fn edit_lines(editor: &mut LineEditor, lines: &mpsc::Sender<InputLine>) {
    let mut password_next = false;
    loop {
        if std::mem::take(&mut password_next) {
            // The password goes to the app but never into the history.
            let input = match read_password(editor) {
                Ok(password) => Ok(password),
                Err(ReadlineError::Interrupted) => {
                    Err(ParseError::Usage { usage: "/login NAME".into(), problem: "cancelled".into() })
                }
                Err(_) => return,
            };
            if lines.blocking_send(input).is_err() {
                return;
            }
            continue;
        }
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
            password_next = matches!(command::parse(&line), Ok(Some(c)) if password_follows(&c));
            Ok(line)
        };
        if lines.blocking_send(input).is_err() {
            return;
        }
    }
}
