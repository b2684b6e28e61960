//! The interactive front-end on a terminal: a rustyline editor on its own thread. Lines the user
//! enters go to the app; events are printed above the prompt through rustyline's external
//! printer, so they never garble a half-typed line.
//!
//! The editor completes commands, room names and usernames with Tab ([`super::complete`]),
//! shows the rest of a command's usage as a dimmed hint, keeps a history file that never holds
//! a password, and shows where plain text goes and what is unread in the prompt
//! ([`super::prompt`]). Ctrl-C clears the line; Ctrl-D quits.
//!
//! Input flows one way: a line goes to the app and the editor reads the next one at once; it
//! never waits for the line to be handled and never sleeps. The prompt is drawn from what the
//! output side knows when a line starts (rustyline 19 keeps one prompt for a whole line), so a
//! focus that a command sets shows in the prompt from the line after the one that begins while
//! the command is handled; the `*** now talking in` line above the prompt says it at once. Where
//! plain text goes is the node's decision either way, never the prompt's.

use std::borrow::Cow;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::config::Configurer;
use rustyline::error::ReadlineError;
use rustyline::highlight::{CmdKind, Highlighter};
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::{ColorMode, CompletionType, Context, Editor, ExternalPrinter, Helper, Validator};
use thiserror::Error;
use tokio::sync::mpsc;

use super::app::{InputLine, password_follows};
use super::command::{self, MAX_INPUT_LINE_BYTES, ParseError};
use super::complete;
use super::prompt::PromptState;
use super::sanitize::visible;
use super::style::{Palette, sgr};
use crate::pinned_key::grouped;

/// The prompt for a password.
pub const PASSWORD_PROMPT: &str = "password: ";
/// The question before a password would go to a bootstrap node whose key is not confirmed.
pub const TRUST_PROMPT: &str = "trust this bootstrap key and send your password to it? [y/N] ";
/// The name of the history file in the data directory.
pub const HISTORY_FILE: &str = "history.txt";
/// Lines kept in the history.
const HISTORY_SIZE: usize = 1000;

/// How the editor runs.
#[derive(Debug, Clone, Default)]
pub struct ReplOptions {
    /// Focus, unread counts and names, kept up to date by the output side.
    pub state: PromptState,
    /// Where to keep the history; none keeps it in memory only.
    pub history: Option<PathBuf>,
    /// Whether the prompt and hints are coloured.
    pub color: bool,
}

/// Completion, hints and password masking.
#[derive(Helper, Validator)]
struct LineHelper {
    masking: bool,
    state: PromptState,
    palette: Palette,
}

impl Completer for LineHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        if self.masking {
            return Ok((pos, Vec::new()));
        }
        let (start, candidates) = complete::complete(line, pos, &self.state.known());
        let pairs = candidates.into_iter().map(|c| Pair { display: c.display, replacement: c.replacement }).collect();
        Ok((start, pairs))
    }
}

impl Hinter for LineHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, _ctx: &Context<'_>) -> Option<String> {
        if self.masking { None } else { complete::hint(line, pos) }
    }
}

impl Highlighter for LineHelper {
    fn highlight<'l>(&self, line: &'l str, _pos: usize) -> Cow<'l, str> {
        if self.masking { Cow::Owned("*".repeat(line.chars().count())) } else { Cow::Borrowed(line) }
    }

    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(self.palette.paint(sgr::DIM, hint))
    }

    fn highlight_char(&self, _line: &str, _pos: usize, kind: CmdKind) -> bool {
        self.masking && kind != CmdKind::MoveCursor
    }
}

type LineEditor = Editor<LineHelper, DefaultHistory>;

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
    options: ReplOptions,
) -> Result<(Box<dyn ExternalPrinter + Send>, TerminalGuard), ReplError> {
    let guard = TerminalGuard::save();
    let (printer_tx, printer_rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("meshchat-repl".into())
        .spawn(move || {
            let mut editor = match new_editor(&options) {
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
            edit_lines(&mut editor, &lines, &options);
        })
        .map_err(|e| ReplError(e.to_string()))?;
    let printer = printer_rx.recv().map_err(|_| ReplError("the editor thread ended".into()))??;
    Ok((printer, guard))
}

fn color_mode(color: bool) -> ColorMode {
    if color { ColorMode::Enabled } else { ColorMode::Disabled }
}

fn new_editor(options: &ReplOptions) -> rustyline::Result<LineEditor> {
    let mut editor = LineEditor::new()?;
    editor.set_helper(Some(LineHelper {
        masking: false,
        state: options.state.clone(),
        palette: Palette::new(options.color),
    }));
    editor.set_auto_add_history(false);
    editor.set_completion_type(CompletionType::List);
    editor.set_history_ignore_space(true);
    editor.set_history_ignore_dups(true)?;
    editor.set_max_history_size(HISTORY_SIZE)?;
    editor.set_color_mode(color_mode(options.color));
    if let Some(path) = &options.history
        && path.exists()
        && let Err(e) = editor.load_history(path)
    {
        tracing::warn!(%e, path = %path.display(), "cannot read the history file");
    }
    Ok(editor)
}

/// Whether a line may be kept in the history: never a line that names an account to log in
/// to or register (a password might have been typed on it by mistake).
pub fn keep_in_history(line: &str) -> bool {
    let first = line.split_whitespace().next().unwrap_or_default();
    let account = first.eq_ignore_ascii_case("/register") || first.eq_ignore_ascii_case("/login");
    !account && !first.is_empty()
}

fn read_password(editor: &mut LineEditor, color: bool) -> Result<String, ReadlineError> {
    if let Some(helper) = editor.helper_mut() {
        helper.masking = true;
    }
    // The mask is drawn by the highlighter, so it must run even without colour.
    editor.set_color_mode(ColorMode::Forced);
    let password = editor.readline(PASSWORD_PROMPT);
    if let Some(helper) = editor.helper_mut() {
        helper.masking = false;
    }
    editor.set_color_mode(color_mode(color));
    password
}

/// What the user answered about the unconfirmed bootstrap keys.
enum Confirmation {
    /// No key needed confirming.
    Nothing,
    /// The user trusts this key (hex).
    Trusted(String),
    /// The user trusts none of them.
    Declined,
}

/// Before `/register` or `/login` sends a password: asks about each unconfirmed bootstrap key in
/// reach, shown in groups of four digits to compare with what the bootstrap node printed.
fn confirm_bootstrap(editor: &mut LineEditor, state: &PromptState) -> Result<Confirmation, ReadlineError> {
    let keys = state.known().keys_to_confirm();
    if keys.is_empty() {
        return Ok(Confirmation::Nothing);
    }
    for (peer, key) in keys {
        println!("bootstrap node {} has the key\n    {}", visible(&peer), visible(&grouped(&key)));
        println!("is it the key the bootstrap node printed at its start (`bootstrap authority key`)?");
        let answer = match editor.readline(TRUST_PROMPT) {
            Ok(answer) => answer,
            Err(ReadlineError::Interrupted) => return Ok(Confirmation::Declined),
            Err(e) => return Err(e),
        };
        if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            return Ok(Confirmation::Trusted(key));
        }
    }
    Ok(Confirmation::Declined)
}

fn save_history(editor: &mut LineEditor, path: &std::path::Path) {
    if let Err(e) = editor.append_history(path) {
        tracing::warn!(%e, path = %path.display(), "cannot write the history file");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

fn edit_lines(editor: &mut LineEditor, lines: &mpsc::Sender<InputLine>, options: &ReplOptions) {
    let palette = Palette::new(options.color);
    let mut password_next = false;
    loop {
        if std::mem::take(&mut password_next) {
            // The password goes to the app but never into the history.
            let input = match read_password(editor, options.color) {
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
        let prompt = {
            let known = options.state.known();
            (known.prompt(), known.prompt_with(&palette))
        };
        let line = match editor.readline(&prompt) {
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
            if keep_in_history(&line)
                && editor.add_history_entry(line.as_str()).unwrap_or(false)
                && let Some(path) = &options.history
            {
                save_history(editor, path);
            }
            password_next = matches!(command::parse(&line), Ok(Some(c)) if password_follows(&c));
            if password_next {
                match confirm_bootstrap(editor, &options.state) {
                    Ok(Confirmation::Nothing) => {}
                    Ok(Confirmation::Trusted(key)) => {
                        if lines.blocking_send(Ok(format!("/trust {key}"))).is_err() {
                            return;
                        }
                    }
                    Ok(Confirmation::Declined) => {
                        println!("nothing sent: no bootstrap key is trusted (/trust KEY once you have compared it)");
                        password_next = false;
                        continue;
                    }
                    Err(_) => return,
                }
            }
            Ok(line)
        };
        if lines.blocking_send(input).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_lines_never_enter_the_history() {
        assert!(!keep_in_history("/register alice"));
        assert!(!keep_in_history("/LOGIN alice hunter2"));
        assert!(!keep_in_history("  /login alice"));
        assert!(!keep_in_history("   "));
        assert!(keep_in_history("/join lobby"));
        assert!(keep_in_history("hello /login"));
    }
}
