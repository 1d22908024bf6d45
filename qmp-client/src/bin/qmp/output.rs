//! What `qmp` prints on stdout: JSON values, reply objects, events.

use std::io::{IsTerminal, Write};

use qmp_client::Event;
use serde_json::{Value, json};

use crate::failure::Failure;

/// How values are printed: pretty (on a terminal by default) or one
/// compact line (when piped).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pretty: bool,
}

impl Output {
    /// `--pretty`/`--compact` if given, else pretty exactly when stdout is
    /// a terminal.
    pub(crate) fn new(pretty: bool, compact: bool) -> Self {
        let pretty = pretty || (!compact && std::io::stdout().is_terminal());
        Self { pretty }
    }

    /// Prints `value` pretty or compact, as chosen.
    pub(crate) fn value(&self, value: &Value) -> Result<(), Failure> {
        let text = if self.pretty {
            serde_json::to_string_pretty(value)
        } else {
            serde_json::to_string(value)
        };
        // Serialising a `Value` cannot fail (its keys are strings).
        write_line(&text.unwrap_or_default())
    }
}

/// Prints `value` on one line and flushes (NDJSON: replies of a script,
/// events).
pub(crate) fn json_line(value: &Value) -> Result<(), Failure> {
    write_line(&value.to_string())
}

/// Prints a line of text and flushes.
pub(crate) fn write_line(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(Failure::Output)
}

/// A successful reply as QEMU sends it (`{"return": ..}`), with the
/// caller's `id` when it gave one.
pub(crate) fn success(value: Value, id: Option<&Value>) -> Value {
    with_id(json!({ "return": value }), id)
}

/// An error reply as QEMU sends it (`{"error": {"class", "desc"}}`).
pub(crate) fn error(class: &str, desc: &str, id: Option<&Value>) -> Value {
    with_id(json!({ "error": { "class": class, "desc": desc } }), id)
}

fn with_id(mut reply: Value, id: Option<&Value>) -> Value {
    if let (Some(id), Value::Object(object)) = (id, &mut reply) {
        object.insert("id".to_owned(), id.clone());
    }
    reply
}

/// An event as QEMU sends it: `{"event", "data", "timestamp"}`.
pub(crate) fn event(event: &Event) -> Value {
    json!({
        "event": event.name,
        "data": event.data,
        "timestamp": {
            "seconds": event.timestamp.seconds,
            "microseconds": event.timestamp.microseconds,
        },
    })
}
