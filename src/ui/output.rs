//! Writes events to the user, on a thread of its own so a slow terminal never stalls the node:
//! JSON lines, coloured text lines, or lines printed above the REPL's prompt.

use std::io::Write;
use std::thread::JoinHandle;

use rustyline::ExternalPrinter;
use tokio::sync::mpsc;

use super::event::UiEvent;
use super::{json, render};

/// Where events go.
pub enum Sink {
    /// One JSON object per line on stdout.
    Json,
    /// Coloured text on stdout.
    Text,
    /// Coloured text above the line the user is typing.
    Prompt(Box<dyn ExternalPrinter + Send>),
}

/// Writes every event from `events` to `sink` until the channel closes.
pub fn spawn(mut events: mpsc::Receiver<UiEvent>, mut sink: Sink) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("meshchat-output".into()).spawn(move || {
        while let Some(event) = events.blocking_recv() {
            let written = match &mut sink {
                Sink::Json => write_line(&json::line(&event)),
                Sink::Text => match render::render(&event) {
                    text if text.is_empty() => Ok(()),
                    text => write_line(&text),
                },
                Sink::Prompt(printer) => match render::render(&event) {
                    text if text.is_empty() => Ok(()),
                    text => printer.print(text).map_err(|e| std::io::Error::other(e.to_string())),
                },
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
