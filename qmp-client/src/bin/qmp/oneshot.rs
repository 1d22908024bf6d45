//! `qmp COMMAND ...` and `qmp hmp ...`: one command, its result on stdout.

use clap::Parser;
use qmp_client::Client;
use serde_json::{Value, json};

use crate::args::RunArgs;
use crate::failure::Failure;
use crate::output::{self, Output};
use crate::request::Call;
use crate::schema::Schema;

/// Runs `words` (`[name, args...]`): prints the `return` value (or with
/// `--raw` the whole reply object).
pub(crate) async fn run(
    client: &Client,
    words: &[String],
    output: Output,
    check_schema: bool,
) -> Result<(), Failure> {
    let (name, rest) = match words.split_first() {
        Some(split) => split,
        None => return Err(Failure::Usage("no command given".to_owned())),
    };
    let parsed = RunArgs::try_parse_from(rest).map_err(|e| Failure::Usage(e.to_string()))?;
    let call = call(name, parsed.args, &parsed.words)?;
    let schema = if check_schema {
        Some(Schema::fetch_for(client, call.args.is_some()).await?)
    } else {
        None
    };
    let result = call.run(client, schema.as_ref()).await;
    if parsed.raw {
        // The reply object goes to stdout whatever it says; an error
        // still exits 1 and is named on stderr.
        match &result {
            Ok(value) => output.value(&output::success(value.clone(), None))?,
            Err(Failure::Qmp { class, desc }) => output.value(&output::error(class, desc, None))?,
            Err(_) => {}
        }
        return result.map(drop);
    }
    output.value(&result?)
}

/// The call for `name`: `--args` and the shorthand words together (a key
/// in both is refused).
fn call(
    name: &str,
    json_args: Option<qmp_client::JsonObject>,
    words: &[String],
) -> Result<Call, Failure> {
    let mut call = Call::from_words(name, words)?;
    if let Some(mut args) = json_args {
        for (key, value) in call.args.take().into_iter().flatten() {
            if args.contains_key(&key) {
                return Err(Failure::Usage(format!("`{key}` is given twice")));
            }
            args.insert(key, value);
        }
        call.args = Some(args);
    }
    Ok(call)
}

/// Runs an HMP command line (`human-monitor-command`) and prints its text.
pub(crate) async fn hmp(client: &Client, command_line: &str) -> Result<(), Failure> {
    let text = hmp_text(client, command_line).await?;
    if !text.is_empty() {
        output::write_line(text.trim_end_matches('\n'))?;
    }
    Ok(())
}

/// The text an HMP command printed, with QEMU's CRLFs made LFs.
pub(crate) async fn hmp_text(client: &Client, command_line: &str) -> Result<String, Failure> {
    let args = json!({ "command-line": command_line });
    let reply = client
        .execute_raw("human-monitor-command", args.as_object().cloned())
        .await?;
    Ok(match reply {
        Value::String(text) => text.replace("\r\n", "\n"),
        other => other.to_string(),
    })
}
