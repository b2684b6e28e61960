//! Command-line options and environment, resolved into a validated [`Config`] before anything
//! runs. The contract is DESIGN.md's "Command-line contract".
//!
//! It owns the options' types, [`ColorChoice`] among them (whether to colour; `ui::style` says
//! how). It never touches the network and never imports `ui`: the front-ends read the config,
//! not the reverse.

use std::ffi::OsStr;
use std::path::PathBuf;

use clap::Parser;
use libp2p::Multiaddr;
use thiserror::Error;

use crate::bootstrap::service::NAME_HOLD_SECS;
use crate::cert::CERT_LIFETIME_SECS;

/// Environment variable that sets the data directory when `--data-dir` is not given.
pub const DATA_DIR_ENV: &str = "MESHCHAT_DATA_DIR";

/// The addresses a node listens on when no `--listen` is given: every interface, ephemeral
/// ports, TCP and QUIC.
pub const DEFAULT_LISTEN: &[&str] = &["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"];

/// meshchat: peer-to-peer chat for a local network.
#[derive(Debug, Clone, Parser)]
#[command(name = "meshchat", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Subcommand>,
    /// Directory for this node's key, lock and databases [default: the OS data directory]
    #[arg(long, value_name = "DIR", env = DATA_DIR_ENV, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (repeatable); replaces the defaults (all interfaces, TCP and QUIC)
    #[arg(long, value_name = "MULTIADDR", global = true)]
    pub listen: Vec<Multiaddr>,
    /// Address of a peer to dial at start and keep re-dialling (repeatable)
    #[arg(long, value_name = "MULTIADDR", global = true)]
    pub peer: Vec<Multiaddr>,
    /// Turn mDNS discovery off
    #[arg(long, global = true)]
    pub no_mdns: bool,
    /// Print every event as one JSON object per line instead of coloured text
    #[arg(long, global = true)]
    pub json: bool,
    /// When to colour the text output and show hyperlinks: auto (on a terminal, unless NO_COLOR is set), always or never
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// Also host the bootstrap node (the account database) in this process
    #[arg(long)]
    pub bootstrap: bool,
    /// Keep direct messages, sealed, for recipients who are offline (a mailbox); a node hosting
    /// the bootstrap always does
    #[arg(long)]
    pub mailbox: bool,
    /// When hosting the bootstrap: its address as nodes at other sites reach it; the node then
    /// also serves them as a circuit relay, a rendezvous point and an AutoNAT server (see
    /// README, "Across networks")
    #[arg(long, value_name = "MULTIADDR", global = true)]
    pub public_addr: Option<Multiaddr>,
    /// Trust only the bootstrap node with the key in FILE (hex, as in its authority.pub)
    #[arg(long, value_name = "FILE")]
    pub bootstrap_key: Option<PathBuf>,
    /// When hosting the bootstrap: how long certificates are valid, in seconds (nodes renew them
    /// when a third is left)
    #[arg(long, value_name = "SECS", default_value_t = CERT_LIFETIME_SECS, global = true,
          value_parser = clap::value_parser!(u64).range(MIN_CERT_LIFETIME_SECS..))]
    pub cert_lifetime: u64,
    /// When hosting the bootstrap: how long a name freed by a rename stays reserved to its
    /// account, in seconds (never less than the certificates' lifetime)
    #[arg(long, value_name = "SECS", default_value_t = NAME_HOLD_SECS, global = true)]
    pub name_hold: u64,
}

/// The shortest certificate lifetime accepted: nodes renew on a 10 s timer.
pub const MIN_CERT_LIFETIME_SECS: u64 = 30;

/// Other ways to run.
#[derive(Debug, Clone, PartialEq, Eq, clap::Subcommand)]
pub enum Subcommand {
    /// Run a headless bootstrap node: the account database and certificate authority
    Bootstrap,
}

/// How this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A chat node.
    Node,
    /// A chat node that also hosts the bootstrap.
    NodeWithBootstrap,
    /// A headless bootstrap node.
    Bootstrap,
}

impl Mode {
    /// Whether this process hosts the account database.
    pub fn hosts_bootstrap(self) -> bool {
        self != Mode::Node
    }
}

/// Everything a node needs to start, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: Vec<Multiaddr>,
    pub peers: Vec<Multiaddr>,
    pub mdns: bool,
    pub json: bool,
    /// `--color`, before `NO_COLOR` and the terminal are looked at.
    pub color: ColorChoice,
    pub mode: Mode,
    pub bootstrap_key: Option<PathBuf>,
    /// Lifetime of the certificates this node signs, when it hosts the bootstrap.
    pub cert_lifetime: u64,
    /// How long a name freed by a rename stays reserved to its account, in seconds.
    pub name_hold: u64,
    /// `--mailbox`: keep letters for others (a node hosting the bootstrap always does).
    pub mailbox: bool,
    /// `--public-addr`: a bootstrap node's address as other sites reach it; it then serves reach.
    pub public_addr: Option<Multiaddr>,
}

/// The `--color` option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour only when stdout is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always colour and terminal features (hyperlinks), even into a pipe or with `NO_COLOR`.
    Always,
    /// Plain text.
    Never,
}

impl ColorChoice {
    /// Whether to colour, given the value of `NO_COLOR` and whether stdout is a terminal.
    /// `NO_COLOR` counts only when set to something non-empty (no-color.org).
    pub fn resolve(self, no_color: Option<&OsStr>, stdout_is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stdout_is_terminal && no_color.is_none_or(OsStr::is_empty),
        }
    }
}

/// Options that cannot make a working node.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot find a data directory for this user; pass --data-dir DIR or set {DATA_DIR_ENV}")]
    NoDataDir,
    #[error("--bootstrap-key names the bootstrap node to trust; a node that hosts the bootstrap trusts its own key")]
    KeyWithBootstrap,
    #[error("--peer {0} does not say how to reach the peer (it needs /ip4, /ip6 or /dns with /tcp or /udp/…/quic-v1)")]
    UnreachablePeer(Multiaddr),
    #[error(
        "--public-addr {0} does not say how other sites reach this node (it needs /ip4, /ip6 or /dns with /tcp or /udp/…/quic-v1)"
    )]
    UnreachablePublic(Multiaddr),
    #[error(
        "--public-addr is for a node that hosts the bootstrap (`meshchat bootstrap` or --bootstrap): it relays for the certificates it issues"
    )]
    PublicWithoutBootstrap,
}

impl Config {
    /// Resolves the options: defaults filled in, addresses checked.
    pub fn from_cli(cli: Cli) -> Result<Config, ConfigError> {
        let data_dir = match cli.data_dir {
            Some(dir) => dir,
            None => default_data_dir().ok_or(ConfigError::NoDataDir)?,
        };
        let listen = if cli.listen.is_empty() {
            DEFAULT_LISTEN.iter().map(|a| a.parse().expect("default listen addresses are valid")).collect()
        } else {
            cli.listen
        };
        for peer in &cli.peer {
            if !is_dialable(peer) {
                return Err(ConfigError::UnreachablePeer(peer.clone()));
            }
        }
        let mode = match (cli.command, cli.bootstrap) {
            (Some(Subcommand::Bootstrap), _) => Mode::Bootstrap,
            (None, true) => Mode::NodeWithBootstrap,
            (None, false) => Mode::Node,
        };
        if mode.hosts_bootstrap() && cli.bootstrap_key.is_some() {
            return Err(ConfigError::KeyWithBootstrap);
        }
        if let Some(public) = &cli.public_addr {
            if !mode.hosts_bootstrap() {
                return Err(ConfigError::PublicWithoutBootstrap);
            }
            if !is_dialable(public) {
                return Err(ConfigError::UnreachablePublic(public.clone()));
            }
        }
        Ok(Config {
            data_dir,
            listen,
            peers: cli.peer,
            mdns: !cli.no_mdns,
            json: cli.json,
            color: cli.color,
            mode,
            bootstrap_key: cli.bootstrap_key,
            cert_lifetime: cli.cert_lifetime,
            name_hold: cli.name_hold,
            mailbox: cli.mailbox,
            public_addr: cli.public_addr,
        })
    }
}

fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "meshchat").map(|dirs| dirs.data_dir().to_path_buf())
}

/// A multiaddr names a host and a transport port.
fn is_dialable(addr: &Multiaddr) -> bool {
    use libp2p::multiaddr::Protocol;
    let mut host = false;
    let mut port = false;
    for protocol in addr.iter() {
        match protocol {
            Protocol::Ip4(_) | Protocol::Ip6(_) | Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => {
                host = true
            }
            Protocol::Tcp(_) | Protocol::Udp(_) => port = true,
            _ => {}
        }
    }
    host && port
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("meshchat").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn a_public_address_is_for_a_bootstrap_node_and_must_be_reachable() {
        let public = "/ip4/10.77.100.2/tcp/4001";
        let ok = Config::from_cli(cli(&["--data-dir", "/x", "bootstrap", "--public-addr", public])).unwrap();
        assert_eq!(ok.public_addr, Some(public.parse().unwrap()));
        let plain = Config::from_cli(cli(&["--data-dir", "/x", "--public-addr", public]));
        assert!(matches!(plain, Err(ConfigError::PublicWithoutBootstrap)));
        let hosted = Config::from_cli(cli(&["--data-dir", "/x", "--bootstrap", "--public-addr", public])).unwrap();
        assert!(hosted.public_addr.is_some());
        let nowhere = Config::from_cli(cli(&["--data-dir", "/x", "bootstrap", "--public-addr", "/ip4/10.77.100.2"]));
        assert!(matches!(nowhere, Err(ConfigError::UnreachablePublic(_))));
    }

    #[test]
    fn certificate_lifetimes_have_a_floor() {
        assert_eq!(Config::from_cli(cli(&["--data-dir", "/x"])).unwrap().cert_lifetime, CERT_LIFETIME_SECS);
        let short = Config::from_cli(cli(&["--data-dir", "/x", "bootstrap", "--cert-lifetime", "60"])).unwrap();
        assert_eq!(short.cert_lifetime, 60);
        let too_short = Cli::try_parse_from(["meshchat", "bootstrap", "--cert-lifetime", "5"]);
        assert!(too_short.is_err());
    }

    #[test]
    fn defaults_listen_everywhere_with_mdns() {
        let config = Config::from_cli(cli(&["--data-dir", "/tmp/x"])).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(config.listen.len(), 2);
        assert!(config.mdns);
        assert!(!config.json);
        assert!(config.peers.is_empty());
    }

    #[test]
    fn listen_replaces_defaults_and_peers_are_kept() {
        let config = Config::from_cli(cli(&[
            "--data-dir",
            "/tmp/x",
            "--no-mdns",
            "--json",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--peer",
            "/ip4/127.0.0.1/tcp/4001",
            "--peer",
            "/ip4/127.0.0.1/udp/4001/quic-v1",
        ]))
        .unwrap();
        assert_eq!(config.listen, vec!["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().unwrap()]);
        assert_eq!(config.peers.len(), 2);
        assert!(!config.mdns);
        assert!(config.json);
    }

    #[test]
    fn modes_come_from_the_subcommand_and_the_flag() {
        assert_eq!(Config::from_cli(cli(&["--data-dir", "/x"])).unwrap().mode, Mode::Node);
        assert_eq!(Config::from_cli(cli(&["--data-dir", "/x", "--bootstrap"])).unwrap().mode, Mode::NodeWithBootstrap);
        let headless = Config::from_cli(cli(&["bootstrap", "--data-dir", "/x", "--no-mdns", "--json"])).unwrap();
        assert_eq!(headless.mode, Mode::Bootstrap);
        assert!(!headless.mdns && headless.json);
        assert!(Config::from_cli(cli(&["--bootstrap", "--bootstrap-key", "/k", "--data-dir", "/x"])).is_err());
        let pinned = Config::from_cli(cli(&["--bootstrap-key", "/k", "--data-dir", "/x"])).unwrap();
        assert_eq!(pinned.bootstrap_key, Some(PathBuf::from("/k")));
    }

    #[test]
    fn color_defaults_to_auto_and_takes_never_and_always() {
        assert_eq!(Config::from_cli(cli(&["--data-dir", "/x"])).unwrap().color, ColorChoice::Auto);
        assert_eq!(Config::from_cli(cli(&["--data-dir", "/x", "--color", "never"])).unwrap().color, ColorChoice::Never);
        assert_eq!(Config::from_cli(cli(&["--color=always", "--data-dir", "/x"])).unwrap().color, ColorChoice::Always);
        assert!(Cli::try_parse_from(["meshchat", "--color", "sometimes"]).is_err());
    }

    #[test]
    fn no_color_and_terminals_decide_auto() {
        let set = Some(OsStr::new("1"));
        let empty = Some(OsStr::new(""));
        assert!(ColorChoice::Auto.resolve(None, true));
        assert!(ColorChoice::Auto.resolve(empty, true));
        assert!(!ColorChoice::Auto.resolve(set, true));
        assert!(!ColorChoice::Auto.resolve(None, false));
        assert!(ColorChoice::Always.resolve(set, false));
        assert!(!ColorChoice::Never.resolve(None, true));
    }

    #[test]
    fn a_peer_without_host_or_port_is_refused() {
        let err = Config::from_cli(cli(&["--data-dir", "/x", "--peer", "/ip4/127.0.0.1"])).unwrap_err();
        assert!(err.to_string().contains("--peer /ip4/127.0.0.1"), "{err}");
    }

    #[test]
    fn a_malformed_multiaddr_is_a_usage_error() {
        let parsed = Cli::try_parse_from(["meshchat", "--peer", "127.0.0.1:4001"]);
        assert!(parsed.is_err());
    }
}
