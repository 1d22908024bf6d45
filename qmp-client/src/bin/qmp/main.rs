//! `qmp`: a command-line tool for a running QEMU, on `qmp-client`'s public
//! API. See `qmp --help` and the crate README.

mod args;
mod batch;
mod connect;
mod describe;
mod events;
mod failure;
mod listing;
mod oneshot;
mod output;
mod request;
mod schema;
mod shell;
mod shorthand;
mod suggest;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use crate::args::{Cli, Mode, Script};
use crate::failure::Failure;
use crate::output::Output;
use clap::Parser;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            // --help and --version are not errors.
            return if error.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(text) = failure.report() {
                report(&text);
            }
            failure.exit_code()
        }
    }
}

/// Writes a line to stderr (nothing to do if that fails).
pub(crate) fn report(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

fn run(cli: Cli) -> Result<(), Failure> {
    // A worker thread keeps the connection task reading (events arrive)
    // while the shell's main thread sits in the line editor.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| Failure::Local(format!("cannot start the async runtime: {e}")))?;
    let config = connect::config(&cli.timeouts);
    let client = runtime.block_on(connect::connect(&cli.target, &config))?;
    let output = Output::new(cli.pretty, cli.compact);
    let check = !cli.no_schema_check;
    let mode = match cli.mode {
        Some(mode) => mode,
        None if std::io::stdin().is_terminal() => Mode::Shell,
        None => Mode::Script(Script { keep_going: false }),
    };
    match mode {
        Mode::Shell => shell::run(&runtime, &client, cli.history, check),
        Mode::Script(script) => runtime.block_on(batch::run(&client, script.keep_going, check)),
        Mode::Events(args) => runtime.block_on(events::stream(&client, &args)),
        Mode::Wait(args) => runtime.block_on(events::wait(&client, &args)),
        Mode::Schema(args) => runtime.block_on(listing::run(&client, args.command.as_deref())),
        Mode::Hmp(args) => runtime.block_on(oneshot::hmp(&client, &args.words.join(" "))),
        Mode::Run(words) => runtime.block_on(oneshot::run(&client, &words, output, check)),
    }
}
