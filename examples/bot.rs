//! A small bot on the meshchat library, without the REPL: it logs in (registering the account the
//! first time), joins a room (creating it if nobody has), says hello there, and answers every
//! direct message it gets, until Ctrl-C or SIGTERM.
//!
//! ```sh
//! cargo run --example bot -- --data-dir /tmp/bot --user helperbot --password 'a long bot passphrase' \
//!     --room lobby --peer /ip4/127.0.0.1/tcp/4001 --bootstrap-key /path/to/authority.pub
//! ```
//! A bot has nobody to confirm a bootstrap key, so the first time it needs `--bootstrap-key FILE`
//! (the bootstrap's `authority.pub`); the key is pinned in its data directory after that.
//! mDNS stays off unless `--mdns` is given, so the bot is safe to run anywhere; `--peer` names a
//! node (the bootstrap, say) to dial. Direct messages it understands: `!ping`, `!time`,
//! `!help`; anything else is echoed back.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use meshchat::identity::DataDir;
use meshchat::node::{self, BootstrapState, Client, EVENT_CAPACITY, ErrorCode, NodeConfig, UiEvent};
use meshchat::pinned_key::{Trust, read_key_file};
use meshchat::store::NodeStore;
use meshchat::ui::links::SharedLinks;
use meshchat::ui::render::Renderer;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// How long to wait for a bootstrap node before logging in anyway (the error says why).
const BOOTSTRAP_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug, Parser)]
struct Args {
    #[arg(long)]
    data_dir: PathBuf,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    #[arg(long, default_value = "lobby")]
    room: String,
    /// Where to listen.
    #[arg(long, default_value = "/ip4/0.0.0.0/tcp/0")]
    listen: libp2p::Multiaddr,
    /// A node to dial (repeatable).
    #[arg(long)]
    peer: Vec<libp2p::Multiaddr>,
    /// Find peers with mDNS on the LAN.
    #[arg(long)]
    mdns: bool,
    /// The bootstrap node to trust: a file with its key in hex (its `authority.pub`).
    #[arg(long, value_name = "FILE")]
    bootstrap_key: Option<PathBuf>,
    /// Print every event as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// The bot's answer to a direct message.
fn answer(text: &str) -> String {
    match text.trim() {
        "!ping" => "pong".to_string(),
        "!time" => {
            let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            format!("it is {:02}:{:02} UTC", (secs / 3600) % 24, (secs / 60) % 60)
        }
        "!help" => "I answer !ping, !time and !help, and echo the rest".to_string(),
        other => format!("you said: {other}"),
    }
}

/// Waits for the first event matching `pred`, printing what passes by.
async fn wait_for(
    events: &mut mpsc::Receiver<UiEvent>,
    json: bool,
    limit: Duration,
    pred: impl Fn(&UiEvent) -> bool,
) -> Option<UiEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        show(&event, json);
        if pred(&event) {
            return Some(event);
        }
    }
    None
}

/// Prints an event: a JSON line, or the text a terminal shows (without colour).
fn show(event: &UiEvent, json: bool) {
    if json {
        if let Ok(line) = serde_json::to_string(event) {
            println!("{line}");
        }
    } else {
        let mut renderer = Renderer::new(false, SharedLinks::default());
        println!("{}", renderer.render(event));
    }
}

/// Logs in, or registers the first time.
async fn log_in(client: &Client, user: &str, password: &str) -> anyhow::Result<()> {
    match client.login(user, password).await {
        Ok(()) => Ok(()),
        Err(e) if e.code == ErrorCode::WrongCredentials => {
            client.register(user, password).await.with_context(|| format!("cannot log in ({e}) nor register"))
        }
        Err(e) if e.code == ErrorCode::BootstrapUnconfirmed => {
            bail!("cannot log in: {e} (a bot cannot confirm a key: start it with --bootstrap-key FILE)")
        }
        Err(e) => bail!("cannot log in: {e}"),
    }
}

/// Joins the room, or creates it when nobody online has it.
async fn enter_room(client: &Client, room: &str) -> anyhow::Result<()> {
    match client.join_room(room).await {
        Ok(()) => Ok(()),
        Err(e) if e.code == ErrorCode::NoSuchRoom => client.create_room(room).await.context("cannot create the room"),
        Err(e) => bail!("cannot join #{room}: {e}"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let data_dir = DataDir::open(&args.data_dir)?;
    let config = NodeConfig {
        key: data_dir.node_key()?,
        listen: vec![args.listen.clone()],
        peers: args.peer.clone(),
        mdns: args.mdns,
        store: NodeStore::open(data_dir.path())?,
        trust: Trust::load(data_dir.path(), args.bootstrap_key.as_deref().map(read_key_file).transpose()?)?,
        bootstrap: None,
        mailbox: false,
        public_addr: None,
    };
    let (events_tx, mut events) = mpsc::channel(EVENT_CAPACITY);
    let (client, node) = node::spawn(config, events_tx)?;

    wait_for(&mut events, args.json, Duration::from_secs(10), |e| matches!(e, UiEvent::Ready { .. }))
        .await
        .context("the node did not start")?;
    let me = match client.status().await?.user {
        Some(user) => user,
        None => {
            let found = |e: &UiEvent| matches!(e, UiEvent::Bootstrap { state: BootstrapState::Found, .. });
            wait_for(&mut events, args.json, BOOTSTRAP_WAIT, found).await;
            log_in(&client, &args.user, &args.password).await?;
            args.user.clone()
        }
    };
    // Give presence a moment to bring in the room directory before joining.
    wait_for(&mut events, args.json, Duration::from_secs(2), |_| false).await;
    enter_room(&client, &args.room).await?;
    client.send_to_room(&args.room, &format!("{me} is here: send me a direct message, !help for more")).await?;

    let mut sigterm = signal(SignalKind::terminate())?;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break };
                show(&event, args.json);
                if let UiEvent::Dm(dm) = event
                    && !dm.from.eq_ignore_ascii_case(&me)
                    && let Err(e) = client.send_dm(&dm.from, &answer(&dm.text)).await
                {
                    eprintln!("cannot answer {}: {e}", dm.from);
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
        }
    }
    client.shutdown().await;
    node.await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::answer;

    #[test]
    fn commands_have_answers_and_the_rest_is_echoed() {
        assert_eq!(answer("!ping"), "pong");
        assert!(answer(" !time ").starts_with("it is "));
        assert_eq!(answer("hello"), "you said: hello");
    }
}
