//! The crate's one error type.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong building, rendering, parsing or probing a
/// QEMU command line.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value QEMU's option syntax cannot carry: rendering it would change
    /// its meaning (or QEMU would refuse it), so it is refused instead.
    #[error(
        "{option}: QEMU cannot represent the value {value:?} ({reason}); \
         change the value or pass it another way (JSON syntax, a file or an fd)"
    )]
    Unrepresentable {
        /// The option, e.g. `-drive`.
        option: &'static str,
        /// The offending key or value, exactly as given.
        value: OsString,
        /// Why QEMU cannot take it.
        reason: &'static str,
    },
    /// A JSON option (`-device {...}` etc.) could not be serialised.
    #[error("{option}: cannot serialise the value as a JSON object; give a struct or map")]
    Json {
        /// The option, e.g. `-device`.
        option: &'static str,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// An argument of an existing command line could not be read back.
    #[error("{option}: cannot parse {value:?}: {reason}")]
    Parse {
        /// The option being parsed.
        option: String,
        /// Its argument.
        value: OsString,
        /// What is wrong with it.
        reason: String,
    },
    /// An option that takes an argument ends the command line.
    #[error("{option} takes an argument but the command line ends after it; add the argument")]
    MissingArgument {
        /// The option, e.g. `-m`.
        option: String,
    },
    /// The QEMU binary could not be started.
    #[error(
        "cannot run {binary:?}: {source}; check the path or install QEMU \
         (`sudo apt-get install -y qemu-system-x86`)"
    )]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading a probe's output or waiting for it failed.
    #[error("I/O error while running `{command}`")]
    Io {
        /// The shell-quoted command.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The binary did not finish within the timeout and was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed; raise the timeout or check the binary"
    )]
    Timeout {
        /// The shell-quoted command.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The binary ran but failed.
    #[error("`{command}` failed ({status}); its stderr: {stderr}")]
    ProbeFailed {
        /// The shell-quoted command.
        command: String,
        /// How it ended.
        status: String,
        /// The tail of its stderr.
        stderr: String,
    },
    /// The binary's output is not what a QEMU prints.
    #[error(
        "`{command}` printed output that is not QEMU's: {reason}; is this a QEMU system emulator?"
    )]
    ProbeOutput {
        /// The shell-quoted command.
        command: String,
        /// What did not match.
        reason: String,
    },
    /// The binary lacks a machine, accelerator, CPU model, device or
    /// network back end.
    #[error(
        "{binary:?} ({version}) has no {kind} `{name}`{hint}; use another QEMU build or another {kind}"
    )]
    Missing {
        /// The binary probed.
        binary: PathBuf,
        /// Its version line, e.g. `QEMU 7.2.22`.
        version: String,
        /// `machine`, `accelerator`, `CPU model`, `device` or `netdev back end`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// Near names the binary has, as a ` (similar: …)` suffix, or empty.
        hint: String,
    },
}

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
    fn debug_reads_like_display_and_a_spawn_error_keeps_its_reason() {
        let error = Error::Spawn {
            binary: PathBuf::from("/no/qemu"),
            source: std::io::Error::from_raw_os_error(2),
        };
        let message = error.to_string();
        assert!(
            message.starts_with("cannot run \"/no/qemu\": No such file or directory"),
            "{message}"
        );
        // The cause is in the message already: Debug does not repeat it.
        assert_eq!(format!("{error:?}"), message);
        let missing = Error::MissingArgument {
            option: "-m".to_owned(),
        };
        assert_eq!(format!("{missing:?}"), missing.to_string());
    }
}
