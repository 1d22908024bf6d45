//! `qmp -`: commands from stdin, one reply object per line on stdout.

use qmp_client::Client;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::failure::Failure;
use crate::output::{self, json_line};
use crate::request::Call;
use crate::schema::Schema;

/// Runs every line of stdin. Stops at the first failure unless
/// `keep_going`; then the first failure decides the exit status. A broken
/// connection always stops.
pub(crate) async fn run(
    client: &Client,
    keep_going: bool,
    check_schema: bool,
) -> Result<(), Failure> {
    let schema = if check_schema {
        Some(Schema::fetch(client).await?)
    } else {
        None
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut first_code = None;
    let mut failed = 0u64;
    let mut number = 0u64;
    while let Some(line) = lines
        .next_line()
        .await
        .map_err(|e| Failure::Local(format!("cannot read stdin: {e}")))?
    {
        number += 1;
        let outcome = match Call::parse_line(&line) {
            Ok(Some(call)) => run_one(client, schema.as_ref(), &call).await,
            Ok(None) => Ok(()),
            Err(Failure::Usage(why)) => Err(Failure::Usage(format!("line {number}: {why}"))),
            Err(other) => Err(other),
        };
        match outcome {
            Ok(()) => {}
            Err(failure @ (Failure::Client(_) | Failure::Output(_) | Failure::Local(_))) => {
                return Err(failure);
            }
            Err(failure) if !keep_going => return Err(failure),
            Err(failure) => {
                if let Some(text) = failure.report() {
                    crate::report(&text);
                }
                first_code.get_or_insert(failure.code());
                failed += 1;
            }
        }
    }
    match first_code {
        None => Ok(()),
        Some(code) => Err(Failure::Script {
            failed,
            lines: number,
            code,
        }),
    }
}

/// Runs one call and prints its reply (success or QMP error) as a line.
async fn run_one(client: &Client, schema: Option<&Schema>, call: &Call) -> Result<(), Failure> {
    match call.run(client, schema).await {
        Ok(value) => json_line(&output::success(value, call.id.as_ref())),
        Err(Failure::Qmp { class, desc }) => {
            json_line(&output::error(&class, &desc, call.id.as_ref()))?;
            Err(Failure::Qmp { class, desc })
        }
        Err(other) => Err(other),
    }
}
