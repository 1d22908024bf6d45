//! The interactive shell: a line editor with history and completion from
//! the live schema; events printed as they arrive.

mod complete;
mod session;

use std::path::PathBuf;
use std::sync::Arc;

use qmp_client::Client;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Config, Editor, ExternalPrinter};
use tokio::runtime::Runtime;

use crate::failure::Failure;
use crate::output::{self, Output, write_line};
use crate::schema::Schema;
use complete::SchemaCompleter;
use session::Session;

/// Runs the shell until Ctrl-D, or until the connection ends.
pub(crate) fn run(
    runtime: &Runtime,
    client: &Client,
    history: Option<PathBuf>,
    check: bool,
) -> Result<(), Failure> {
    // Without the schema the shell still works, with no completion and no
    // checks.
    let schema = Arc::new(runtime.block_on(Schema::fetch(client)).unwrap_or_default());
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .history_ignore_space(true)
        .max_history_size(1000)
        .map_err(editor_failure)?
        .build();
    let mut editor: Editor<SchemaCompleter, FileHistory> =
        Editor::with_config(config).map_err(editor_failure)?;
    editor.set_helper(Some(SchemaCompleter::new(schema.clone())));
    let history = history.or_else(default_history);
    if let Some(path) = &history
        && let Err(error) = editor.load_history(path)
        && !is_not_found(&error)
    {
        crate::report(&format!(
            "qmp: cannot read the history {}: {error}",
            path.display()
        ));
    }
    let printer = editor.create_external_printer().map_err(editor_failure)?;
    let events = runtime.spawn(print_events(client.clone(), printer));

    let version = &client.greeting().version.qemu;
    write_line(&format!(
        "Connected to QEMU {}.{}.{}. Tab completes; `hmp CMD` runs an HMP command; Ctrl-D quits.",
        version.major, version.minor, version.micro
    ))?;
    let mut session = Session::new(client.clone(), schema, check, Output::new(true, false));
    let outcome = read_eval_print(runtime, &mut editor, &mut session, client);
    events.abort();
    if let Some(path) = &history
        && let Err(error) = editor.append_history(path)
    {
        crate::report(&format!(
            "qmp: cannot save the history {}: {error}",
            path.display()
        ));
    }
    outcome
}

fn read_eval_print(
    runtime: &Runtime,
    editor: &mut Editor<SchemaCompleter, FileHistory>,
    session: &mut Session,
    client: &Client,
) -> Result<(), Failure> {
    loop {
        let line = match editor.readline(session.prompt()) {
            Ok(line) => line,
            // Ctrl-C drops the line (and an open transaction), as in a shell.
            Err(ReadlineError::Interrupted) => {
                session.cancel();
                continue;
            }
            Err(ReadlineError::Eof) => return Ok(()),
            Err(error) => return Err(editor_failure(error)),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
        }
        match runtime.block_on(session.handle(&line)) {
            Ok(()) => {}
            Err(Failure::Client(_) | Failure::Output(_)) if client.is_closed() => {
                return ended(client);
            }
            Err(failure) => {
                if let Some(text) = failure.report() {
                    crate::report(&text);
                }
            }
        }
        if client.is_closed() {
            return ended(client);
        }
    }
}

/// The connection ended: after `quit` that is the end of the session,
/// otherwise a failure naming the reason.
fn ended(client: &Client) -> Result<(), Failure> {
    match client.close_reason() {
        Some(reason) if !reason.is_expected() => {
            Err(Failure::Client(qmp_client::Error::Disconnected(reason)))
        }
        _ => Ok(()),
    }
}

/// Prints every event as a JSON line above the prompt as it arrives.
async fn print_events(client: Client, mut printer: impl ExternalPrinter) {
    let mut events = client.events();
    while let Some(item) = events.recv().await {
        let text = match item {
            Ok(event) => output::event(&event).to_string(),
            Err(lagged) => format!("qmp: {lagged}"),
        };
        if printer.print(format!("{text}\n")).is_err() {
            return;
        }
    }
    // The stream ends when the connection does: say so at once, not only
    // at the next command.
    if let Some(reason) = client.close_reason()
        && !reason.is_expected()
    {
        let _ = printer.print(format!("qmp: the connection closed: {reason}\n"));
    }
}

fn default_history() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".qmp_history"))
}

fn is_not_found(error: &ReadlineError) -> bool {
    matches!(error, ReadlineError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
}

fn editor_failure(error: ReadlineError) -> Failure {
    Failure::Local(format!("the line editor failed: {error}"))
}
