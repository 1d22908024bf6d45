//! A scripted stand-in for busybox ash on a serial line: it echoes what is
//! typed (wrapping long lines with `\r\r\n`), writes `ESC[6n` after every
//! prompt and evaluates the marker lines `Console::run` sends.

use regex::Regex;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

/// Terminal width at which the echo wraps.
const COLUMNS: usize = 80;

/// Serves command lines until the console goes away. `commands` maps a
/// command to its output (with `\n` line ends) and exit status.
pub(crate) async fn serve(
    stream: DuplexStream,
    commands: &[(&str, &str, i32)],
) -> std::io::Result<()> {
    let marker_line = Regex::new(
        r"^echo @@\$\(\((\d+)\+(\d+)\)\)\+@@; (.*); echo @@\$\(\((\d+)\+(\d+)\)\)-\$\?@@$",
    )
    .map_err(std::io::Error::other)?;
    let (reader, mut writer) = tokio::io::split(stream);
    let mut lines = BufReader::new(reader).lines();
    writer.write_all(b"# \x1b[6n").await?;
    while let Some(line) = lines.next_line().await? {
        writer.write_all(&echo(&line)).await?;
        let Some(parts) = marker_line.captures(&line) else {
            writer.write_all(b"sh: syntax error\r\n# \x1b[6n").await?;
            continue;
        };
        let sum = |a: usize, b: usize| -> u64 {
            parts[a].parse::<u64>().unwrap_or(0) + parts[b].parse::<u64>().unwrap_or(0)
        };
        let (output, status) = commands
            .iter()
            .find(|(command, _, _)| *command == &parts[3])
            .map_or(("sh: not found\n", 127), |(_, output, status)| {
                (*output, *status)
            });
        let reply = format!(
            "@@{}+@@\n{output}@@{}-{status}@@\n# \x1b[6n",
            sum(1, 2),
            sum(4, 5)
        );
        // The tty turns every \n into \r\n.
        writer
            .write_all(reply.replace('\n', "\r\n").as_bytes())
            .await?;
    }
    Ok(())
}

/// The echo of a typed line as busybox's line editor shows it.
fn echo(line: &str) -> Vec<u8> {
    let mut echoed = Vec::new();
    // The prompt "# " takes two columns.
    for (i, byte) in line.bytes().enumerate() {
        if (i + 2) % COLUMNS == 0 && i > 0 {
            echoed.extend_from_slice(b"\r\r\n");
        }
        echoed.push(byte);
    }
    echoed.extend_from_slice(b"\r\n");
    echoed
}
