//! The `meshchat` binary: parses options, opens the data directory, starts the node, and runs a
//! front-end (the REPL on a terminal, line-by-line stdin otherwise) until `/quit`, end of input,
//! Ctrl-C or SIGTERM. `anyhow` lives only here.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use meshchat::bootstrap::AuthService;
use meshchat::cert::Authority;
use meshchat::config::{Cli, Config, Mode};
use meshchat::identity::DataDir;
use meshchat::node::{self, EVENT_CAPACITY, NodeConfig};
use meshchat::pinned_key::{self, Trust};
use meshchat::store::NodeStore;
use meshchat::ui::app::{App, Flow};
use meshchat::ui::links::SharedLinks;
use meshchat::ui::output::{self, Sink};
use meshchat::ui::prompt::PromptState;
use meshchat::ui::render::Renderer;
use meshchat::ui::{input, repl};

/// Capacity of the channel of input lines.
const INPUT_CAPACITY: usize = 64;
/// How long blocked background work may delay the exit.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("meshchat: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshchat: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The log on stderr: `MESHCHAT_LOG`, else meshchat's own warnings only. Not the libraries':
/// libp2p logs what peers send it wrong (a gossip message with fields meshchat does not use,
/// a stream over a limit, a subscription refused) at warning and error, one line per message,
/// so any peer could fill the terminal or a log file at will.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MESHCHAT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("meshchat=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

/// The bootstrap's authority key is the node's own ed25519 key: its PeerId names the authority.
fn authority_from(key: &libp2p::identity::Keypair) -> anyhow::Result<Authority> {
    let ed25519 = key.clone().try_into_ed25519().context("the node key is not an ed25519 key")?;
    let secret: [u8; 32] = ed25519.secret().as_ref().try_into().context("the node key's secret is not 32 bytes")?;
    Ok(Authority::from_secret(&secret))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::from_cli(cli)?;
    let data_dir = DataDir::open(&config.data_dir)?;
    let key = data_dir.node_key()?;

    let stdout_is_terminal = std::io::stdout().is_terminal();
    let interactive =
        !config.json && config.mode != Mode::Bootstrap && std::io::stdin().is_terminal() && stdout_is_terminal;
    let color = config.color.resolve(std::env::var_os("NO_COLOR").as_deref(), stdout_is_terminal);
    let links = SharedLinks::default();
    let renderer = Renderer::new(color, links.clone()).with_bell(stdout_is_terminal);
    let prompt = PromptState::default();
    let (events_tx, events_rx) = mpsc::channel(EVENT_CAPACITY);
    let (lines_tx, mut lines_rx) = mpsc::channel(INPUT_CAPACITY);
    let (sink, _terminal) = if interactive {
        let options =
            repl::ReplOptions { state: prompt.clone(), history: Some(data_dir.path().join(repl::HISTORY_FILE)), color };
        let (printer, guard) = repl::start(lines_tx, options)?;
        (Sink::Prompt { printer, renderer, state: prompt.clone() }, Some(guard))
    } else {
        input::spawn_reader(std::io::BufReader::new(std::io::stdin()), lines_tx);
        (if config.json { Sink::Json } else { Sink::Text(renderer) }, None)
    };
    let output = output::spawn(events_rx, sink).context("cannot start the output thread")?;

    let store = NodeStore::open(data_dir.path())?;
    let (bootstrap, trust) = if config.mode.hosts_bootstrap() {
        let authority = authority_from(&key)?;
        let public = authority.public();
        pinned_key::write_key_file(&data_dir.path().join(pinned_key::AUTHORITY_FILE), &public)?;
        let trust = Trust::load(data_dir.path(), Some(public))?;
        (
            Some(
                AuthService::open(data_dir.path(), authority)?
                    .with_lifetime(config.cert_lifetime)
                    .with_name_hold(config.name_hold),
            ),
            trust,
        )
    } else {
        let given = config.bootstrap_key.as_deref().map(pinned_key::read_key_file).transpose()?;
        (None, Trust::load(data_dir.path(), given)?)
    };
    let node_config = NodeConfig {
        key,
        listen: config.listen,
        peers: config.peers,
        mdns: config.mdns,
        store,
        trust,
        bootstrap,
        mailbox: config.mailbox,
        public_addr: config.public_addr,
    };
    let (client, node) = node::spawn(node_config, events_tx.clone())?;
    let mut app = App::new(client.clone(), events_tx).with_links(links);

    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    loop {
        tokio::select! {
            line = lines_rx.recv() => match line {
                Some(line) => {
                    if app.handle_input(line).await == Flow::Quit {
                        break;
                    }
                }
                None => break,
            },
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
        }
    }

    client.shutdown().await;
    drop(app);
    drop(client);
    node.await.context("the node task failed")?;
    // Every sender is gone now: the output thread drains what is left and ends.
    let _ = tokio::task::spawn_blocking(move || output.join()).await;
    drop(data_dir);
    Ok(())
}
