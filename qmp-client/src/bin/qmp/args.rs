//! The command line, as clap sees it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Talk to a running QEMU over QMP: one-shot commands, scripts, events,
/// the live schema, and an interactive shell.
#[derive(Debug, Parser)]
#[command(
    name = "qmp",
    version,
    disable_help_subcommand = true,
    after_help = ONE_SHOT_HELP
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) target: Target,
    #[command(flatten)]
    pub(crate) timeouts: Timeouts,
    /// Pretty-print replies (the default on a terminal).
    #[arg(long, global = true, conflicts_with = "compact")]
    pub(crate) pretty: bool,
    /// Print each reply on one line (the default when piped).
    #[arg(long, global = true)]
    pub(crate) compact: bool,
    /// Do not check commands and arguments against the live schema before
    /// sending them.
    #[arg(long, global = true)]
    pub(crate) no_schema_check: bool,
    /// The interactive shell's history file (default `$HOME/.qmp_history`).
    #[arg(long, global = true, env = "QMP_HISTORY", value_name = "PATH")]
    pub(crate) history: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) mode: Option<Mode>,
}

const ONE_SHOT_HELP: &str = "\
One-shot commands:
  qmp -s SOCK COMMAND [KEY=VALUE | KEY:=JSON ...] [--args JSON] [--raw]

  Values are typed as JSON where they parse (numbers, true/false, null,
  {..}, [..], \"..\"), else taken as strings; a.b=1 nests objects;
  KEY:=JSON must be JSON. --args takes the arguments as one JSON object.
  --raw prints the whole reply object instead of its `return` value.

With no command: the interactive shell when stdin is a terminal, else a
script from stdin (as `qmp -`).

Exit status: 0 success; 1 QEMU answered with an error (or an awaited event
did not come); 2 the connection, the protocol or the terminal failed; 64 bad
usage.";

/// Where QEMU's QMP monitor is. `--tcp` and `--listen` win over a socket
/// named by `QMP_SOCKET`.
#[derive(Debug, Args)]
pub(crate) struct Target {
    /// The QMP Unix socket.
    #[arg(short, long, env = "QMP_SOCKET", value_name = "PATH")]
    pub(crate) socket: Option<PathBuf>,
    /// A QMP TCP socket.
    #[arg(short, long, value_name = "HOST:PORT", conflicts_with = "listen")]
    pub(crate) tcp: Option<String>,
    /// Listen on this Unix socket path (or HOST:PORT) and wait for QEMU to
    /// connect (`-chardev socket,...,server=off`).
    #[arg(short, long, value_name = "PATH")]
    pub(crate) listen: Option<String>,
}

/// The waits of `qmp_client::Config`; `none` waits forever.
#[derive(Debug, Args)]
pub(crate) struct Timeouts {
    /// How long connecting (or waiting for QEMU to connect) may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = limit)]
    pub(crate) connect_timeout: Limit,
    /// How long the greeting and capability negotiation may take.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = limit)]
    pub(crate) handshake_timeout: Limit,
    /// How long each command may take.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = limit)]
    pub(crate) command_timeout: Limit,
}

/// A time limit: a duration (`5s`, `500ms`, `2m`) or `none` (forever).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limit(pub(crate) Option<Duration>);

fn limit(text: &str) -> Result<Limit, String> {
    if text == "none" {
        return Ok(Limit(None));
    }
    humantime::parse_duration(text)
        .map(|duration| Limit(Some(duration)))
        .map_err(|error| format!("{error} (e.g. `5s`, `500ms`, `2m`, or `none`)"))
}

/// What to do once connected.
#[derive(Debug, Subcommand)]
pub(crate) enum Mode {
    /// Run commands read from stdin, one per line (shorthand or JSON
    /// objects), printing one reply object per line.
    #[command(name = "-")]
    Script(Script),
    /// Stream events as JSON lines.
    Events(Events),
    /// Wait for one event, print it and exit 0.
    Wait(Wait),
    /// List the commands of the live schema, or describe one command's
    /// arguments.
    Schema(SchemaArgs),
    /// Run a human-monitor (HMP) command and print its text.
    Hmp(Hmp),
    /// The interactive shell (the default when stdin is a terminal).
    Shell,
    /// A QMP command, run once (see below).
    #[command(external_subcommand)]
    Run(Vec<String>),
}

#[derive(Debug, Args)]
pub(crate) struct Script {
    /// Go on after a command fails (the default is to stop at the first
    /// error).
    #[arg(long)]
    pub(crate) keep_going: bool,
}

#[derive(Debug, Args)]
pub(crate) struct Events {
    /// Only events with these names (default: all).
    #[arg(value_name = "NAME")]
    pub(crate) names: Vec<String>,
    /// Only events matching this filter (`QEMUMachine.event_match`
    /// semantics on the whole event, e.g. '{"data": {"device": "d0"}}').
    #[arg(long = "match", value_name = "JSON", value_parser = json)]
    pub(crate) filter: Option<serde_json::Value>,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u64>,
    /// Stop streaming after this long (with --count: fail when fewer
    /// events came).
    #[arg(long, value_name = "DURATION", default_value = "none", value_parser = limit)]
    pub(crate) timeout: Limit,
}

#[derive(Debug, Args)]
pub(crate) struct Wait {
    /// The event's name, e.g. STOP.
    pub(crate) event: String,
    /// Only an event matching this filter (`QEMUMachine.event_match`
    /// semantics on the whole event, e.g. '{"data": {"device": "d0"}}').
    #[arg(long = "match", value_name = "JSON", value_parser = json)]
    pub(crate) filter: Option<serde_json::Value>,
    /// How long to wait (`none`: forever).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = limit)]
    pub(crate) timeout: Limit,
}

#[derive(Debug, Args)]
pub(crate) struct SchemaArgs {
    /// A command to describe.
    pub(crate) command: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Hmp {
    /// The HMP command line, e.g. `info status`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub(crate) words: Vec<String>,
}

/// The words after a one-shot command's name.
#[derive(Debug, Parser)]
#[command(name = "qmp COMMAND", no_binary_name = true, disable_help_flag = true)]
pub(crate) struct RunArgs {
    /// The arguments as one JSON object.
    #[arg(long, value_name = "JSON", value_parser = json_object)]
    pub(crate) args: Option<qmp_client::JsonObject>,
    /// Print the whole reply object.
    #[arg(long)]
    pub(crate) raw: bool,
    /// KEY=VALUE and KEY:=JSON arguments.
    pub(crate) words: Vec<String>,
}

fn json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))
}

fn json_object(text: &str) -> Result<qmp_client::JsonObject, String> {
    match json(text)? {
        serde_json::Value::Object(object) => Ok(object),
        other => Err(format!("expected a JSON object, got {other}")),
    }
}
