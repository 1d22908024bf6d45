//! Why `qmp` failed, and the exit status each reason maps to.

use std::error::Error as _;
use std::io;
use std::process::ExitCode;

/// Everything that ends a `qmp` run unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// QEMU answered with an error (or the live schema says it would).
    #[error("{class}: {desc}")]
    Qmp {
        /// The error class, e.g. `CommandNotFound`.
        class: String,
        /// What went wrong.
        desc: String,
    },
    /// What we waited for did not happen in time.
    #[error("{0}")]
    Missing(String),
    /// The command line or a script line is not understood.
    #[error("{0}")]
    Usage(String),
    /// Some lines of a `--keep-going` script failed (each was reported).
    #[error("{failed} of {lines} script lines failed")]
    Script {
        /// How many failed.
        failed: u64,
        /// How many lines were read.
        lines: u64,
        /// The exit status of the first failure.
        code: u8,
    },
    /// Something on this side failed: the async runtime, the terminal,
    /// reading stdin.
    #[error("{0}")]
    Local(String),
    /// The connection or the protocol failed.
    #[error(transparent)]
    Client(qmp_client::Error),
    /// Writing the output failed.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
}

impl From<qmp_client::Error> for Failure {
    fn from(error: qmp_client::Error) -> Self {
        match error {
            qmp_client::Error::Qmp { class, desc, .. } => Failure::Qmp {
                class: class.as_str().to_owned(),
                desc,
            },
            error @ qmp_client::Error::EventTimeout { .. } => Failure::Missing(error.to_string()),
            error => Failure::Client(error),
        }
    }
}

impl Failure {
    /// The exit status: 1 when QEMU said no or an event did not come, 2
    /// when the connection, the protocol or this side failed, 64
    /// (`EX_USAGE`) for bad usage. A closed stdout (`qmp events | head -1`) is a normal end.
    pub(crate) fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }

    /// [`exit_code`](Self::exit_code) as a number.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Failure::Qmp { .. } | Failure::Missing(_) => 1,
            Failure::Usage(_) => 64,
            Failure::Script { code, .. } => *code,
            Failure::Client(_) | Failure::Local(_) => 2,
            Failure::Output(error) if error.kind() == io::ErrorKind::BrokenPipe => 0,
            Failure::Output(_) => 2,
        }
    }

    /// The message for stderr: `class: desc` for QMP errors, else `qmp:`
    /// and the error with its causes.
    pub(crate) fn report(&self) -> Option<String> {
        match self {
            Failure::Qmp { .. } => Some(self.to_string()),
            Failure::Output(error) if error.kind() == io::ErrorKind::BrokenPipe => None,
            _ => {
                let mut text = format!("qmp: {self}");
                let mut source = self.source();
                while let Some(cause) = source {
                    text.push_str(&format!("\n  caused by: {cause}"));
                    source = cause.source();
                }
                Some(text)
            }
        }
    }
}
