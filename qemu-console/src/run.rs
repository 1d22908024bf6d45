//! Running a shell command on the console and reading its output and status.

use std::time::Duration;

use tokio::time::Instant;

use crate::console::Console;
use crate::error::{Error, Result};
use crate::expect::expect;
use crate::needle::Needle;

/// What [`Console::run`] returns.
///
/// The command is sent as `echo @@$((A+B))+@@; COMMAND; echo @@$((A+B))-$?@@`
/// with a number `N = A + B` new for every run. The shell prints `@@N+@@` and
/// `@@N-STATUS@@`, which the echo of the typed line (`$((A+B))`), the prompt
/// and its `ESC[6n`, and line wraps (`\r\r\n`) can never contain, so the
/// output is exactly what the command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommandOutput {
    /// What the command printed (stdout and stderr, as the console shows
    /// them), as text: `\r\n` turned into `\n`, invalid UTF-8 into `�`.
    pub output: String,
    /// The command's exit status (`$?`).
    pub status: i32,
    /// The same output, byte for byte as received.
    pub raw: Vec<u8>,
}

impl CommandOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

pub(crate) async fn run(
    console: &Console,
    command: &str,
    marker: u64,
    timeout: Duration,
) -> Result<CommandOutput> {
    let started = Instant::now();
    check(command)?;
    let half = marker / 2;
    let typed = format!("$(({half}+{}))", marker - half);
    let line = format!("echo @@{typed}+@@; {command}; echo @@{typed}-$?@@");
    let begin = Needle::literal(format!("@@{marker}+@@"));
    // Literals, not one regex: a literal search resumes where the last one
    // stopped, a regex rescans the whole window at every read, which is
    // quadratic while a command prints megabytes a few bytes at a time.
    let end = Needle::literal(format!("@@{marker}-"));
    let status_digits = Needle::regex(r"\A(\d{1,3})@@")?;

    let _turn = console.turn(&begin, started, timeout).await?;
    tracing::debug!(console = console.name(), command, marker, "running");
    console.send_line(line).await?;
    let in_command = |error| context(error, command);
    expect(console.shared(), &begin, started, timeout)
        .await
        .map_err(in_command)?;
    let finished = expect(console.shared(), &end, started, timeout)
        .await
        .map_err(in_command)?;
    // Anchored at what follows the end marker: fails fast, never rescans far.
    let status_text = expect(console.shared(), &status_digits, started, timeout)
        .await
        .map_err(in_command)?;

    let digits = status_text.group(1).unwrap_or_default();
    let status = std::str::from_utf8(digits)
        .ok()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(i32::MAX);
    let (before, _) = finished.into_parts();
    // The begin marker's own line end.
    let raw = before
        .strip_prefix(b"\r\n")
        .or_else(|| before.strip_prefix(b"\n"))
        .unwrap_or(&before)
        .to_vec();
    let output = String::from_utf8_lossy(&raw).replace("\r\n", "\n");
    tracing::debug!(console = console.name(), command, status, bytes = raw.len(), elapsed = ?started.elapsed(), "ran");
    Ok(CommandOutput {
        output,
        status,
        raw,
    })
}

fn check(command: &str) -> Result<()> {
    let reason = if command.contains(['\n', '\r']) {
        "it contains a line break; run one line at a time or join commands with `;`"
    } else if command.trim().is_empty() {
        "it is empty"
    } else if command.trim_end().ends_with('&') {
        "it ends with `&`; wrap a background job as `{ job & }`"
    } else {
        return Ok(());
    };
    Err(Error::InvalidCommand {
        command: command.to_owned(),
        reason,
    })
}

/// Names the command in a wait error.
fn context(error: Error, command: &str) -> Error {
    error.map_expected(|expected| format!("{expected} (marker of command {command:?})"))
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::Error;

    #[test]
    fn commands_that_cannot_be_one_line_are_refused() {
        for accepted in ["uname -r", "a; b", "{ sleep 1 & }"] {
            let checked = check(accepted);
            assert!(matches!(checked, Ok(())), "{accepted:?}: {checked:?}");
        }
        for (refused, why) in [
            ("a\nb", "line break"),
            ("  ", "empty"),
            ("sleep 1 &", "ends with `&`"),
        ] {
            let checked = check(refused);
            assert!(
                matches!(&checked, Err(Error::InvalidCommand { command, reason })
                    if command == refused && reason.contains(why)),
                "{refused:?}: {checked:?}"
            );
        }
    }
}
