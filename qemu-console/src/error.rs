//! The crate's one error type.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong on a console.
///
/// Waiting errors ([`Error::Timeout`], [`Error::Eof`]) carry what was
/// expected, how long the wait lasted and the last bytes received, escaped
/// for display, so a failed test explains itself.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Nothing matching the needle arrived in time.
    #[error(
        "{label}: timed out after {waited:?} waiting for {expected}; \
         the guest may be slow, stuck or printing something else. Last bytes received: \"{tail}\"",
        label = label(console)
    )]
    Timeout {
        /// The console's name ([`ConsoleConfig::name`](crate::ConsoleConfig::name)).
        console: String,
        /// The needle, as displayed.
        expected: String,
        /// How long the wait lasted.
        waited: Duration,
        /// The end of the transcript, escaped.
        tail: String,
    },
    /// The console reached end of file (QEMU exited or closed the chardev)
    /// before the needle matched.
    #[error(
        "{label}: reached end of file{because} after {waited:?} while waiting for {expected}; \
         QEMU has exited or closed the chardev. Last bytes received: \"{tail}\"",
        because = parenthesised(.cause),
        label = label(console)
    )]
    Eof {
        /// The console's name.
        console: String,
        /// The needle, as displayed.
        expected: String,
        /// How long the wait lasted (zero when EOF had already been seen).
        waited: Duration,
        /// The end of the transcript, escaped.
        tail: String,
        /// The read error that ended the stream, when it was not a clean EOF.
        cause: Option<String>,
    },
    /// The failure pattern of a [`wait_for_pattern`](crate::Console::wait_for_pattern)
    /// showed before the success pattern.
    #[error(
        "{label}: {failure} showed in the line \"{line}\" while waiting for {expected}. \
         Last bytes received: \"{tail}\"",
        label = label(console)
    )]
    FailurePattern {
        /// The console's name.
        console: String,
        /// The success pattern, as displayed.
        expected: String,
        /// The failure pattern, as displayed.
        failure: String,
        /// The line that held the failure pattern, up to its end, escaped.
        line: String,
        /// The end of the transcript, escaped.
        tail: String,
    },
    /// Writing to the console failed.
    #[error(
        "{label}: writing {len} bytes failed; the peer has probably closed the console",
        label = label(console)
    )]
    Write {
        /// The console's name.
        console: String,
        /// How many bytes were being written.
        len: usize,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The peer did not take the bytes in time (the guest is not reading its
    /// serial port, or another writer holds the console).
    #[error(
        "{label}: writing {len} bytes did not finish within {waited:?}; \
         the guest is not reading its console",
        label = label(console)
    )]
    WriteTimeout {
        /// The console's name.
        console: String,
        /// How many bytes were being written.
        len: usize,
        /// How long the write was given.
        waited: Duration,
    },
    /// Connecting to the console's socket failed for a reason retrying cannot fix.
    #[error("connecting to console socket {target} failed")]
    Connect {
        /// The socket path or address.
        target: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The console's socket did not accept a connection in time.
    #[error(
        "console socket {target} did not accept a connection within {waited:?} (last error: {last_error}); \
         check that QEMU is running with a matching `-chardev socket,server=on,…`"
    )]
    ConnectTimeout {
        /// The socket path or address.
        target: String,
        /// How long connecting was retried.
        waited: Duration,
        /// The error of the last attempt.
        last_error: io::Error,
    },
    /// Creating the socket pair for a console failed.
    #[error("creating a socket pair for the console failed")]
    SocketPair(#[source] io::Error),
    /// Preparing an already connected socket failed.
    #[error("preparing the console socket failed")]
    Socket(#[source] io::Error),
    /// The log file could not be created.
    #[error(
        "creating the console log file {path} failed; check that its directory exists and is writable"
    )]
    LogFile {
        /// The log file's path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A console was attached outside a Tokio runtime.
    #[error("a console needs a Tokio runtime to drain it: attach it from within one")]
    NoRuntime,
    /// A regular expression did not compile.
    #[error("invalid regular expression {pattern:?} for a console needle")]
    Regex {
        /// The pattern.
        pattern: String,
        /// Why it did not compile.
        #[source]
        source: regex::Error,
    },
    /// A command given to [`Console::run`](crate::Console::run) cannot be
    /// sent as one shell line.
    #[error("command {command:?} cannot be run on the console: {reason}")]
    InvalidCommand {
        /// The command.
        command: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// [`Console::send_control`](crate::Console::send_control) was given a
    /// character that has no control code.
    #[error("{0:?} has no control character: use a letter or one of @[\\]^_?")]
    InvalidControl(char),
}

/// `console ttyS0`, or just `console` for the default name (not
/// `console console`).
fn label(console: &str) -> String {
    if console.is_empty() || console == "console" {
        "console".to_owned()
    } else {
        format!("console {console}")
    }
}

fn parenthesised(cause: &Option<String>) -> String {
    cause
        .as_deref()
        .map(|c| format!(" ({c})"))
        .unwrap_or_default()
}

impl Error {
    /// The same wait error with its `expected` text rewritten (to name the
    /// command or the failure pattern it was waiting for); other errors as they are.
    pub(crate) fn map_expected(self, rewrite: impl FnOnce(String) -> String) -> Error {
        match self {
            Error::Timeout {
                console,
                expected,
                waited,
                tail,
            } => Error::Timeout {
                console,
                expected: rewrite(expected),
                waited,
                tail,
            },
            Error::Eof {
                console,
                expected,
                waited,
                tail,
                cause,
            } => Error::Eof {
                console,
                expected: rewrite(expected),
                waited,
                tail,
                cause,
            },
            other => other,
        }
    }
}

/// Results of console operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Debug` reads like `Display` (as `std::io::Error`'s is readable), so that
/// `unwrap()` and `{:?}` in a test print what went wrong, not the fields:
/// the message, then each cause it does not already hold, one per line.
impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.to_string();
        f.write_str(&message)?;
        let mut cause = std::error::Error::source(self);
        while let Some(current) = cause {
            let text = current.to_string();
            if !message.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
            }
            cause = current.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_console_is_named_once() {
        let timeout = |console: &str| Error::Timeout {
            console: console.to_owned(),
            expected: "\"login:\"".to_owned(),
            waited: Duration::from_secs(30),
            tail: "Booting".to_owned(),
        };
        let default = timeout("console").to_string();
        assert!(
            default.starts_with("console: timed out after 30s waiting for \"login:\""),
            "{default}"
        );
        let named = timeout("ttyS0").to_string();
        assert!(named.starts_with("console ttyS0: timed out"), "{named}");
    }

    #[test]
    fn debug_reads_like_display_with_the_causes() {
        let error = Error::SocketPair(io::Error::from_raw_os_error(24));
        assert_eq!(
            format!("{error:?}"),
            "creating a socket pair for the console failed\n  \
             caused by: Too many open files (os error 24)"
        );
    }
}
