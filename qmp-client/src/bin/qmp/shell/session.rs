//! What the shell does with each line: commands in shorthand or JSON,
//! `hmp ...`, and qmp-shell's `transaction(` ... `)` blocks.

use std::sync::Arc;
use std::time::Duration;

use qmp_client::Client;
use serde_json::{Value, json};

use crate::failure::Failure;
use crate::oneshot::hmp_text;
use crate::output::{Output, write_line};
use crate::request::Call;
use crate::schema::Schema;
use crate::shorthand;

/// How long the shell waits for QEMU to close the connection after
/// answering `quit`.
const QUIT_GRACE: Duration = Duration::from_secs(5);

/// The shell's state between lines.
#[derive(Debug)]
pub(crate) struct Session {
    client: Client,
    schema: Arc<Schema>,
    check: bool,
    output: Output,
    /// The actions of an open `transaction(` block.
    actions: Option<Vec<Value>>,
}

impl Session {
    pub(crate) fn new(client: Client, schema: Arc<Schema>, check: bool, output: Output) -> Self {
        Self {
            client,
            schema,
            check,
            output,
            actions: None,
        }
    }

    /// qmp-shell's prompts: one for commands, one inside a transaction.
    pub(crate) fn prompt(&self) -> &'static str {
        if self.actions.is_some() {
            "TRANS> "
        } else {
            "(QEMU) "
        }
    }

    /// Drops an open transaction (Ctrl-C).
    pub(crate) fn cancel(&mut self) {
        self.actions = None;
    }

    /// Runs one line and prints its result.
    pub(crate) async fn handle(&mut self, line: &str) -> Result<(), Failure> {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("hmp ") {
            let text = hmp_text(&self.client, rest.trim()).await?;
            return write_line(text.trim_end_matches('\n'));
        }
        if self.actions.is_none() && !trimmed.starts_with("transaction(") {
            let Some(call) = Call::parse_line(trimmed)? else {
                return Ok(());
            };
            let value = call.run(&self.client, self.schema()).await?;
            if call.name == "quit" {
                // QEMU closes the connection right after answering; wait
                // (bounded) so the shell ends instead of prompting again.
                let _ = tokio::time::timeout(QUIT_GRACE, self.client.closed()).await;
            }
            return self.output.value(&value);
        }
        match transaction_step(&mut self.actions, trimmed)? {
            Some(actions) => {
                let call = Call {
                    name: "transaction".to_owned(),
                    args: json!({ "actions": actions }).as_object().cloned(),
                    id: None,
                };
                let value = call.run(&self.client, self.schema()).await?;
                self.output.value(&value)
            }
            None => Ok(()),
        }
    }

    fn schema(&self) -> Option<&Schema> {
        self.check.then_some(&*self.schema)
    }
}

/// Adds a line to the open transaction in `actions` (opening it on
/// `transaction(`); returns the actions once `)` closes it.
fn transaction_step(
    actions: &mut Option<Vec<Value>>,
    line: &str,
) -> Result<Option<Vec<Value>>, Failure> {
    let mut words = shorthand::words(line).map_err(|e| Failure::Usage(e.to_string()))?;
    if words.first().is_some_and(|w| w == "transaction(") {
        words.remove(0);
        *actions = Some(Vec::new());
    }
    let closes = words.last().is_some_and(|w| w == ")");
    if closes {
        words.pop();
    }
    if let Some((kind, rest)) = words.split_first() {
        let data = shorthand::arguments(rest).map_err(|e| Failure::Usage(e.to_string()))?;
        let action = json!({ "type": kind, "data": Value::Object(data) });
        actions.get_or_insert_with(Vec::new).push(action);
    }
    Ok(if closes { actions.take() } else { None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(lines: &[&str]) -> Vec<Option<Vec<Value>>> {
        let mut actions = None;
        lines
            .iter()
            .map(|line| match transaction_step(&mut actions, line) {
                Ok(done) => done,
                Err(failure) => panic!("{line}: {failure:?}"),
            })
            .collect()
    }

    #[test]
    fn blocks_collect_actions_until_the_closing_paren() {
        let got = steps(&[
            "transaction(",
            "blockdev-snapshot-sync device=d0 snapshot-file=/tmp/s0",
            "abort )",
        ]);
        let expected = vec![
            json!({"type": "blockdev-snapshot-sync", "data": {"device": "d0", "snapshot-file": "/tmp/s0"}}),
            json!({"type": "abort", "data": {}}),
        ];
        assert_eq!(got, vec![None, None, Some(expected)]);
        let got = steps(&["transaction( abort )"]);
        assert_eq!(got, vec![Some(vec![json!({"type": "abort", "data": {}})])]);
        let got = steps(&["transaction(", ")"]);
        assert_eq!(got, vec![None, Some(vec![])]);
    }
}
