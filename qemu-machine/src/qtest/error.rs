//! Why a qtest connection ended: the causes behind
//! [`Error::QtestDisconnected`](crate::Error::QtestDisconnected). The
//! request-level failures are variants of [`Error`](crate::Error).

use std::io;
use std::sync::Arc;

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

/// Shortens a peer's line for an error message.
pub(crate) fn shorten(line: &str) -> String {
    const MAX: usize = 200;
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} bytes)", &line[..cut], line.len()),
        None => line.to_owned(),
    }
}
