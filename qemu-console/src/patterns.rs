//! The console helpers of QEMU's functional tests (`qemu_test/cmd.py`):
//! wait for a success pattern and fail at once on a failure pattern, send a
//! command and wait, keep interrupting a boot loader, and the kernel-panic
//! aware wait of `LinuxKernelTest`.

use std::time::Duration;

use tokio::time::Instant;

use crate::console::Console;
use crate::error::{Error, Result};
use crate::expect::Captures;
use crate::needle::Needle;
use crate::text::escape;

/// What a Linux kernel prints when it panics; the failure pattern of
/// [`Console::wait_for_pattern_or_panic`] (as in QEMU's `LinuxKernelTest`).
pub const KERNEL_PANIC: &str = "Kernel panic - not syncing";

/// How often [`Console::interrupt_until_pattern`] sends its interrupt when
/// the console shows nothing new.
pub const DEFAULT_INTERRUPT_EVERY: Duration = Duration::from_millis(250);

impl Console {
    /// Waits until `success` shows on the console, failing at once with
    /// [`Error::FailurePattern`] when `failure` shows first
    /// (`wait_for_console_pattern(test, success, failure)`).
    ///
    /// Upstream's patterns are plain strings matched within a line; a
    /// literal without line breaks matches the same way here, and a partial
    /// line (a prompt) counts as soon as it arrives. Regex needles are
    /// accepted too (`.` never crosses a `\n`). Returns what came before the
    /// match and the match, consumed.
    ///
    /// # Errors
    ///
    /// [`Error::FailurePattern`] with the line that held the failure and
    /// the transcript tail; [`Error::Timeout`], [`Error::Eof`] as
    /// [`expect`](Console::expect).
    pub async fn wait_for_pattern(
        &self,
        success: impl Into<Needle>,
        failure: Option<Needle>,
        timeout: Duration,
    ) -> Result<Captures> {
        let success = success.into();
        match failure {
            None => self.expect(success, timeout).await,
            Some(failure) => {
                let either = Needle::any_of([success.clone(), failure.clone()]);
                let found = self.expect(&either, timeout).await.map_err(|error| {
                    // Name the success pattern, not the internal any-of.
                    rename_expected(error, &success, &failure)
                })?;
                if found.which() == 1 {
                    return Err(self.failure_error(&success, &failure, &found));
                }
                Ok(found)
            }
        }
    }

    /// [`wait_for_pattern`](Console::wait_for_pattern) with
    /// [`KERNEL_PANIC`] as the failure pattern, as `LinuxKernelTest` waits.
    ///
    /// # Errors
    ///
    /// As [`wait_for_pattern`](Console::wait_for_pattern).
    pub async fn wait_for_pattern_or_panic(
        &self,
        success: impl Into<Needle>,
        timeout: Duration,
    ) -> Result<Captures> {
        self.wait_for_pattern(success, Some(Needle::from(KERNEL_PANIC)), timeout)
            .await
    }

    /// Sends `command` followed by a carriage return (`exec_command`:
    /// Enter on a serial line, for a shell and for firmware prompts alike).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCommand`] for a command with a line break, else as
    /// [`send`](Console::send).
    pub async fn exec_command(&self, command: &str) -> Result<()> {
        if command.contains(['\n', '\r']) {
            return Err(Error::InvalidCommand {
                command: command.to_owned(),
                reason: "it contains a line break; send one line at a time",
            });
        }
        let mut line = Vec::with_capacity(command.len() + 1);
        line.extend_from_slice(command.as_bytes());
        line.push(b'\r');
        self.send(line).await
    }

    /// Sends `command` and Enter, then waits as
    /// [`wait_for_pattern`](Console::wait_for_pattern) does
    /// (`exec_command_and_wait_for_pattern`). As upstream, the echo of the
    /// command is console output too: choose a success pattern the typed
    /// line does not contain, or use [`run`](Console::run) for a shell.
    ///
    /// # Errors
    ///
    /// As [`exec_command`](Console::exec_command) and
    /// [`wait_for_pattern`](Console::wait_for_pattern).
    pub async fn exec_and_wait_for_pattern(
        &self,
        command: &str,
        success: impl Into<Needle>,
        failure: Option<Needle>,
        timeout: Duration,
    ) -> Result<Captures> {
        let started = Instant::now();
        self.exec_command(command).await?;
        let left = timeout.saturating_sub(started.elapsed());
        self.wait_for_pattern(success, failure, left).await
    }

    /// Sends `interrupt` again and again until `success` shows (or
    /// `failure`, or `timeout` passes): breaks into a boot loader's
    /// countdown (`interrupt_interactive_console_until_pattern`, which
    /// sends `"\r"`). The interrupt goes out at the start and whenever the
    /// console has shown no match for `every`
    /// ([`DEFAULT_INTERRUPT_EVERY`] is a good value).
    ///
    /// # Errors
    ///
    /// As [`wait_for_pattern`](Console::wait_for_pattern).
    pub async fn interrupt_until_pattern(
        &self,
        interrupt: impl AsRef<[u8]>,
        success: impl Into<Needle>,
        failure: Option<Needle>,
        every: Duration,
        timeout: Duration,
    ) -> Result<Captures> {
        let started = Instant::now();
        let success = success.into();
        let every = every.max(Duration::from_millis(1));
        loop {
            self.send(interrupt.as_ref()).await?;
            let left = timeout.saturating_sub(started.elapsed());
            let round = every.min(left);
            match self
                .wait_for_pattern(&success, failure.clone(), round)
                .await
            {
                Err(Error::Timeout { .. }) if started.elapsed() < timeout => continue,
                Err(Error::Timeout {
                    console,
                    expected,
                    tail,
                    ..
                }) => {
                    return Err(Error::Timeout {
                        console,
                        expected: format!(
                            "{expected} (sending {} every {every:?})",
                            escape(interrupt.as_ref())
                        ),
                        waited: started.elapsed(),
                        tail,
                    });
                }
                outcome => return outcome,
            }
        }
    }

    fn failure_error(&self, success: &Needle, failure: &Needle, found: &Captures) -> Error {
        let history = self.shared().history();
        Error::FailurePattern {
            console: self.name().to_owned(),
            expected: success.to_string(),
            failure: failure.to_string(),
            line: escape(&line_of(found.before(), found.matched())),
            tail: self.shared().escaped_tail(&history),
        }
    }
}

/// The line that holds a match: the bytes after the last line break before
/// it, and the match (what follows on that line has not necessarily arrived).
fn line_of(before: &[u8], matched: &[u8]) -> Vec<u8> {
    let start = before
        .iter()
        .rposition(|&b| b == b'\n' || b == b'\r')
        .map_or(0, |at| at + 1);
    let mut line = before[start..].to_vec();
    line.extend_from_slice(matched);
    line
}

fn rename_expected(error: Error, success: &Needle, failure: &Needle) -> Error {
    error.map_expected(|_| format!("{success} (failing on {failure})"))
}

#[cfg(test)]
mod tests {
    use super::line_of;

    #[test]
    fn the_failure_line_starts_after_the_last_line_break() {
        assert_eq!(line_of(b"boot\r\nKernel ", b"panic"), b"Kernel panic");
        assert_eq!(line_of(b"", b"panic"), b"panic");
        assert_eq!(line_of(b"a\rb", b"!"), b"b!");
    }
}
