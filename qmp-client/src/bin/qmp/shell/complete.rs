//! Tab completion from the live schema: command names first, then the
//! command's argument names (`name=`).

use std::sync::Arc;

use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::schema::Schema;

/// Words the shell understands besides QMP commands.
pub(crate) const SHELL_WORDS: [&str; 2] = ["hmp", "transaction("];

/// The line editor's helper: completion only.
#[derive(Debug)]
pub(crate) struct SchemaCompleter {
    schema: Arc<Schema>,
}

impl SchemaCompleter {
    pub(crate) fn new(schema: Arc<Schema>) -> Self {
        Self { schema }
    }

    /// The completions of the word that ends `before` (the line up to the
    /// cursor), and where that word starts.
    pub(crate) fn candidates(&self, before: &str) -> (usize, Vec<String>) {
        let start = before
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace())
            .map_or(0, |(i, c)| i + c.len_utf8());
        let word = &before[start..];
        let mut earlier = before[..start].split_whitespace();
        let command = match (earlier.next(), earlier.next()) {
            (Some("transaction("), None) | (None, _) => None,
            (Some("transaction("), Some(action)) => Some(action),
            (Some(command), _) => Some(command),
        };
        let mut found: Vec<String> = match command {
            None => {
                let shell_words = if before[..start].trim().is_empty() {
                    &SHELL_WORDS[..]
                } else {
                    &[]
                };
                self.schema
                    .command_names()
                    .chain(shell_words.iter().copied())
                    .filter(|name| name.starts_with(word))
                    .map(str::to_owned)
                    .collect()
            }
            // A value is being typed: nothing to offer.
            Some(_) if word.contains('=') => Vec::new(),
            Some(command) => self
                .schema
                .argument_names(command)
                .unwrap_or_default()
                .into_iter()
                .filter(|name| name.starts_with(word))
                .map(|name| format!("{name}="))
                .collect(),
        };
        found.sort();
        (start, found)
    }
}

impl Completer for SchemaCompleter {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates(line.get(..pos).unwrap_or(line)))
    }
}

impl Hinter for SchemaCompleter {
    type Hint = String;
}

impl Highlighter for SchemaCompleter {}

impl Validator for SchemaCompleter {}

impl Helper for SchemaCompleter {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn completer() -> SchemaCompleter {
        let schema = Schema::from_reply(json!([
            {"name": "query-status", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
            {"name": "query-version", "meta-type": "command", "arg-type": "0", "ret-type": "0"},
            {"name": "device_add", "meta-type": "command", "arg-type": "1", "ret-type": "0"},
            {"name": "0", "meta-type": "object", "members": []},
            {"name": "1", "meta-type": "object", "members": [
                {"name": "driver", "type": "str"}, {"name": "id", "type": "str", "default": null}]},
            {"name": "str", "meta-type": "builtin", "json-type": "string"}
        ]));
        SchemaCompleter::new(Arc::new(schema))
    }

    #[test]
    fn command_names_then_argument_names() {
        let c = completer();
        assert_eq!(
            c.candidates("query-"),
            (0, vec!["query-status".into(), "query-version".into()])
        );
        assert_eq!(c.candidates("query-v"), (0, vec!["query-version".into()]));
        assert_eq!(c.candidates("h"), (0, vec!["hmp".into()]));
        assert_eq!(c.candidates("device_add dr"), (11, vec!["driver=".into()]));
        assert_eq!(
            c.candidates("device_add driver=x "),
            (20, vec!["driver=".into(), "id=".into()])
        );
        assert_eq!(
            c.candidates("device_add driver=vir"),
            (11, Vec::<String>::new())
        );
        assert_eq!(c.candidates("nope x"), (5, Vec::<String>::new()));
    }

    #[test]
    fn transaction_actions_complete_like_commands() {
        let c = completer();
        assert_eq!(
            c.candidates("transaction( dev"),
            (13, vec!["device_add".into()])
        );
        assert_eq!(
            c.candidates("transaction( device_add i"),
            (24, vec!["id=".into()])
        );
    }
}
