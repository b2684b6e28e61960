//! Writes events to the user, on a thread of its own so a slow terminal never stalls the node:
//! JSON lines, text lines, or text printed above the REPL's prompt. On the way it tells the
//! REPL's shared [`PromptState`] what happened (focus, unread counts, names to complete).

use std::io::Write;
use std::thread::JoinHandle;

use rustyline::ExternalPrinter;
use tokio::sync::mpsc;

use super::json;
use super::prompt::PromptState;
use super::render::Renderer;
use crate::node::UiEvent;

/// Where events go.
pub enum Sink {
    /// One JSON object per line on stdout.
    Json,
    /// Text on stdout, rendered by the renderer.
    Text(Renderer),
    /// Text above the line the user is typing; events also update the prompt's state.
    Prompt { printer: Box<dyn ExternalPrinter + Send>, renderer: Renderer, state: PromptState },
}

/// Writes every event from `events` to `sink` until the channel closes.
pub fn spawn(mut events: mpsc::Receiver<UiEvent>, mut sink: Sink) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("meshchat-output".into()).spawn(move || {
        while let Some(event) = events.blocking_recv() {
            let written = match &mut sink {
                Sink::Json => json::line(&event).map_or(Ok(()), |line| write_line(&line)),
                Sink::Text(renderer) => match renderer.render(&event) {
                    text if text.is_empty() => Ok(()),
                    text => write_line(&text),
                },
                Sink::Prompt { printer, renderer, state } => {
                    state.observe(&event);
                    match renderer.render(&event) {
                        text if text.is_empty() => Ok(()),
                        // With its newline: between two prompts the printer writes text as is.
                        text => printer.print(format!("{text}\n")).map_err(|e| std::io::Error::other(e.to_string())),
                    }
                }
            };
            if let Err(error) = written {
                // Nobody reads any more (a closed pipe); keep draining so the node never blocks.
                tracing::debug!(%error, "cannot write an event");
            }
        }
    })
}

fn write_line(line: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}
