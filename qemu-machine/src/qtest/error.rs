//! What can go wrong on a qtest connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

/// The peer broke the qtest protocol; the stream cannot be trusted any more,
/// so the connection ends.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolViolation {
    /// A line that is neither a reply (`OK`, `FAIL`, `ERR`) nor an
    /// `IRQ raise|lower N` notification.
    #[error(
        "the peer sent {line:?}, which is not a qtest reply or IRQ line: is this a qtest socket?"
    )]
    Malformed {
        /// The line (shortened when long).
        line: String,
    },
    /// A reply arrived while no request was waiting for one.
    #[error("the peer sent the reply {line:?} to no request")]
    Unexpected {
        /// The line (shortened when long).
        line: String,
    },
    /// A line grew past the limit without ending.
    #[error("the peer sent a line longer than {limit} bytes; raise `max_line` for large `read`s")]
    LineTooLong {
        /// The limit in bytes.
        limit: usize,
    },
}

/// Why a qtest connection ended. Cheap to clone: every pending request gets a copy.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QtestDisconnect {
    /// QEMU closed the socket (it exited, crashed or was killed).
    #[error("QEMU closed the qtest socket (it exited, crashed or was killed)")]
    PeerClosed,
    /// Reading or writing the socket failed.
    #[error("I/O error on the qtest socket")]
    Io(#[source] Arc<io::Error>),
    /// The peer broke the protocol.
    #[error("the qtest peer broke the protocol")]
    Protocol(#[source] ProtocolViolation),
    /// The connection task is gone (its runtime shut down).
    #[error("the qtest connection task is gone (its runtime shut down)")]
    DriverGone,
}

/// Everything that can go wrong on a qtest request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QtestError {
    /// QEMU answered `FAIL …` or `ERR …`.
    #[error("qtest `{command}` failed: QEMU answered {reply:?}")]
    Failed {
        /// The request's command word.
        command: String,
        /// QEMU's whole answer.
        reply: String,
    },
    /// A clock command (`clock_step`, `clock_set`) reached a QEMU that does
    /// not run the qtest accelerator, so it does not know the command.
    #[error(
        "qtest `{command}` needs the qtest accelerator (`-accel qtest`), which this QEMU is \
         not running: QEMU answered {reply:?}. Debian's and Ubuntu's QEMU builds have no \
         qtest accelerator (`-accel help` lists it when there is one); build QEMU with \
         qtest, or test the device under TCG without clock commands"
    )]
    NoQtestAccelerator {
        /// The command word.
        command: String,
        /// QEMU's answer.
        reply: String,
    },
    /// The request was refused before it was sent (QEMU would abort or
    /// misread it).
    #[error("qtest `{command}` was not sent: {reason}")]
    InvalidArgument {
        /// The command word.
        command: String,
        /// What is wrong.
        reason: String,
    },
    /// The reply would be longer than the configured line limit.
    #[error(
        "qtest `{command}` was not sent: its reply would be {reply_len} bytes, over the \
         {limit}-byte line limit; read in smaller pieces or raise `max_line`"
    )]
    TooLarge {
        /// The command word.
        command: String,
        /// The reply's length in bytes.
        reply_len: u64,
        /// The limit.
        limit: usize,
    },
    /// QEMU answered `OK` with a value that does not parse.
    #[error("qtest `{command}`: QEMU's answer {reply:?} does not parse ({reason})")]
    BadReply {
        /// The command word.
        command: String,
        /// QEMU's answer.
        reply: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No answer within the timeout; the request may still run in QEMU.
    #[error("qtest `{command}` got no answer within {waited:?}: QEMU is stuck or very slow")]
    Timeout {
        /// The command word.
        command: String,
        /// How long the request waited.
        waited: Duration,
    },
    /// An IRQ line did not reach the level within the timeout.
    #[error(
        "IRQ {line} was not {} within {waited:?}; check that the device is set up to \
         interrupt and that `irq_intercept_in`/`_out` named its interrupt controller",
        if *raised { "raised" } else { "lowered" }
    )]
    IrqTimeout {
        /// The line.
        line: u32,
        /// The level waited for.
        raised: bool,
        /// How long the wait lasted.
        waited: Duration,
    },
    /// The connection ended; this and every later request fail at once.
    #[error("the qtest connection is closed")]
    Disconnected(#[source] QtestDisconnect),
    /// The client was created outside a Tokio runtime.
    #[error("a qtest client needs a Tokio runtime for its connection task: create it within one")]
    NoRuntime,
}

/// Shortens a peer's line for an error message.
pub(crate) fn shorten(line: &str) -> String {
    const MAX: usize = 200;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} bytes)", &line[..cut], line.len()),
        None => line.to_owned(),
    }
}
