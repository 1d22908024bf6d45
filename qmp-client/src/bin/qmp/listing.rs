//! `qmp schema [COMMAND]`: the live schema's commands, or one command's
//! arguments.

use qmp_client::Client;

use crate::describe::describe;
use crate::failure::Failure;
use crate::output::write_line;
use crate::schema::Schema;

/// Prints every command name (sorted, one per line), or `command`'s
/// description.
pub(crate) async fn run(client: &Client, command: Option<&str>) -> Result<(), Failure> {
    let schema = Schema::fetch(client).await?;
    let Some(command) = command else {
        for name in schema.command_names() {
            write_line(name)?;
        }
        return Ok(());
    };
    match describe(&schema, command) {
        Some(text) => write_line(text.trim_end()),
        None => Err(schema.not_found(command)),
    }
}
