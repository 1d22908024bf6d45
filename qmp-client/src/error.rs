//! The one error type of this crate, and why a connection ended.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use qmp_proto::ErrorClass;

/// Why a QMP connection ended. Cheap to clone: every pending command and
/// wait receives a copy.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Disconnect {
    /// The peer closed the connection after a `quit` command: the expected
    /// end of a QEMU session.
    #[error("QEMU closed the connection after `quit`")]
    Quit,
    /// The peer closed the connection (QEMU exited or was killed).
    #[error("the peer closed the connection (QEMU exited, crashed or was killed)")]
    PeerClosed,
    /// Reading or writing the transport failed.
    #[error("I/O error on the QMP transport")]
    Io(#[source] Arc<io::Error>),
    /// The peer sent bytes that are not QMP (or a message over the size
    /// limit); the stream cannot be trusted any more.
    #[error("the peer broke the QMP protocol")]
    Protocol(#[source] Arc<qmp_proto::Error>),
    /// The peer's first message was not a QMP greeting: this is not a QMP
    /// monitor (an HMP monitor, the guest agent, or something else).
    #[error("the peer's first message is not a QMP greeting: {first_message}")]
    NotQmp {
        /// What it sent instead.
        first_message: Arc<serde_json::Value>,
    },
    /// The last [`Client`](crate::Client) was dropped, so the connection
    /// was closed.
    #[error("the last client handle was dropped")]
    ClientDropped,
    /// The connection task was dropped before the connection ended (never
    /// spawned, aborted, or its runtime shut down).
    #[error("the QMP connection task was dropped or its runtime shut down")]
    DriverGone,
}

impl Disconnect {
    /// Whether this is the expected end of a session (after `quit`, or
    /// because we dropped every handle).
    pub fn is_expected(&self) -> bool {
        matches!(self, Disconnect::Quit | Disconnect::ClientDropped)
    }
}

/// A step of setting up a connection, named in timeout errors.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Connecting to a socket.
    Connect {
        /// The address, as given.
        address: String,
    },
    /// Binding our listening socket, before QEMU starts.
    Bind {
        /// The address, as given.
        address: String,
    },
    /// Waiting for QEMU to connect to our listening socket.
    Accept {
        /// The listening address.
        address: String,
    },
    /// Waiting for QEMU's greeting.
    Greeting,
    /// Waiting for the reply to `qmp_capabilities`.
    Negotiation,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Connect { address } => write!(f, "connecting to {address}"),
            Step::Bind { address } => write!(f, "listening on {address}"),
            Step::Accept { address } => write!(f, "waiting for QEMU to connect to {address}"),
            Step::Greeting => f.write_str("waiting for the QMP greeting"),
            Step::Negotiation => f.write_str("waiting for the reply to qmp_capabilities"),
        }
    }
}

impl Step {
    fn likely_cause(&self) -> &'static str {
        match self {
            Step::Connect { .. } => {
                "is QEMU running with a QMP monitor on that address (-qmp / -chardev socket)?"
            }
            Step::Bind { .. } => {
                "the address may be taken (a socket file left behind, a port in use), its \
                 directory missing or not writable, or the host name unknown"
            }
            Step::Accept { .. } => {
                "QEMU may have exited, or was not started with a client socket \
                 (-chardev socket,...,server=off) pointing at this address"
            }
            Step::Greeting => {
                "QEMU may have exited or be stopped, another client may hold the monitor \
                 (QEMU serves one client at a time), or this is not a QMP socket"
            }
            Step::Negotiation => {
                "QEMU may have exited, hung, or be stopped (SIGSTOP) after greeting us"
            }
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A set-up step took longer than its timeout.
    #[error("timed out after {timeout:?} {step}: {}", step.likely_cause())]
    Timeout {
        /// The step that did not finish.
        step: Step,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// Connecting, binding or accepting failed.
    #[error("failed {step}: {}", step.likely_cause())]
    Connect {
        /// The step that failed.
        step: Step,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// The peer's first message was not a QMP greeting: this is not a QMP
    /// monitor (an HMP monitor, the guest agent, another service). Check
    /// which socket or chardev you connected to.
    #[error(
        "the peer is not a QMP monitor: its first message is not a QMP greeting \
         (an HMP monitor, the guest agent or another service?): {first_message}"
    )]
    NotQmp {
        /// What it sent instead.
        first_message: Arc<serde_json::Value>,
    },
    /// The connection ended before the handshake finished.
    #[error("the connection ended while {step}: {}", step.likely_cause())]
    Handshake {
        /// The step that was in progress.
        step: Step,
        /// Why it ended.
        #[source]
        reason: Disconnect,
    },
    /// QEMU refused `qmp_capabilities`.
    #[error("QEMU refused capability negotiation ({class}: {desc})")]
    NegotiationRefused {
        /// The error class.
        class: ErrorClass,
        /// QEMU's description.
        desc: String,
    },
    /// QEMU answered a command with an error.
    #[error("QMP command `{command}` failed: {class}: {desc}")]
    Qmp {
        /// The command's name.
        command: String,
        /// The error class, e.g. `CommandNotFound` or `GenericError`.
        class: ErrorClass,
        /// QEMU's description.
        desc: String,
    },
    /// A typed command, argument or value the connected QEMU does not have:
    /// refused before sending when its version bounds say so, or reported
    /// by QEMU as `CommandNotFound`. Names the item and the QEMU version.
    #[error(transparent)]
    Unsupported(#[from] qmp_proto::Unsupported),
    /// The peer answered without an id while several commands were in
    /// flight, so the answer could not be matched and every one of them
    /// failed with it. QEMU does this only for input it could not parse
    /// (a request beyond its size or nesting limits); from anything else it
    /// is a broken peer.
    #[error(
        "QMP command `{command}` failed: the peer answered without an id while {in_flight} \
         commands were in flight ({}{desc}); QEMU does this for input it could not parse, \
         so every command in flight was failed",
        class.as_ref().map(|class| format!("{class}: ")).unwrap_or_default()
    )]
    UnattributedReply {
        /// The command's name.
        command: String,
        /// How many commands were failed with it.
        in_flight: usize,
        /// The error class, when the answer was an error.
        class: Option<ErrorClass>,
        /// QEMU's description (or the message, when it was no error).
        desc: String,
    },
    /// A command got no reply in time. The connection stays usable: the
    /// late reply is discarded when it comes.
    #[error(
        "QMP command `{command}` got no reply within {timeout:?}; QEMU may be busy or hung \
         (the command may still run)"
    )]
    CommandTimeout {
        /// The command's name.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The connection is closed; the command or wait cannot complete.
    #[error("the QMP connection is closed")]
    Disconnected(#[source] Disconnect),
    /// The reply did not have the shape the typed command expects.
    #[error(
        "the reply to `{command}` does not have the expected shape; run it raw \
         (`Client::call(Raw::new(..))`) to see it"
    )]
    Decode {
        /// The command's name.
        command: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// A typed command's arguments did not serialise to a JSON object.
    #[error("the arguments of `{command}` do not serialise to a JSON object")]
    Arguments {
        /// The command's name.
        command: String,
        /// What went wrong.
        #[source]
        source: qmp_proto::Error,
    },
    /// A raw command's arguments are not a JSON object (QMP arguments
    /// always are).
    #[error("the arguments of `{command}` must be a JSON object, not {found}")]
    RawArguments {
        /// The command's name.
        command: String,
        /// What was given instead (`an array`, `a string`…).
        found: &'static str,
    },
    /// An `exec-oob` command, but out-of-band execution was not negotiated.
    #[error("cannot run `{command}` out of band: enable `Config::oob` (QEMU must offer `oob`)")]
    OobNotNegotiated {
        /// The command's name.
        command: String,
    },
    /// File descriptors were attached to a command on a transport that
    /// cannot carry them (see [`Transport`](crate::Transport)).
    #[error(
        "cannot pass file descriptors with `{command}`: this connection's transport cannot \
         carry them (connect over a Unix domain socket)"
    )]
    FdPassingUnsupported {
        /// The command's name.
        command: String,
    },
    /// The fd to pass could not be duplicated (out of file descriptors?).
    #[error("could not duplicate the file descriptor to pass to QEMU")]
    DuplicateFd(#[source] io::Error),
    /// An event's data did not have the shape its typed payload expects.
    #[error("the data of event `{name}` does not have the expected shape; use wait_event")]
    EventDecode {
        /// The event's name.
        name: String,
        /// What serde_json said.
        #[source]
        source: serde_json::Error,
    },
    /// No matching event arrived in time.
    #[error(
        "no {} arrived within {timeout:?}: the event did not happen (yet); \
         wait longer if it takes time",
        awaited_event(name, filter.as_ref())
    )]
    EventTimeout {
        /// The awaited event's name (`"any event"` for a wait for any).
        name: String,
        /// The filter the event had to match, if there was one.
        filter: Option<serde_json::Value>,
        /// The timeout that expired.
        timeout: Duration,
    },
}

impl Error {
    /// Why the connection ended, if this error is about that.
    pub fn disconnect(&self) -> Option<&Disconnect> {
        match self {
            Error::Disconnected(reason) | Error::Handshake { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The QMP error class, if QEMU answered with an error.
    pub fn qmp_class(&self) -> Option<&ErrorClass> {
        match self {
            Error::Qmp { class, .. } | Error::NegotiationRefused { class, .. } => Some(class),
            _ => None,
        }
    }
}

/// "`SHUTDOWN` event", "`JOB_STATUS_CHANGE` event matching {…}", or "event".
fn awaited_event(name: &str, filter: Option<&serde_json::Value>) -> String {
    let mut awaited = match name {
        "any event" => "event".to_owned(),
        name => format!("`{name}` event"),
    };
    if let Some(filter) = filter {
        awaited.push_str(&format!(" matching {filter}"));
    }
    awaited
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
    fn an_event_timeout_names_the_filter_only_when_there_is_one() {
        let timeout = Duration::from_secs(60);
        let plain = Error::EventTimeout {
            name: "SHUTDOWN".into(),
            filter: None,
            timeout,
        };
        assert!(
            plain
                .to_string()
                .starts_with("no `SHUTDOWN` event arrived within 60s"),
            "{plain}"
        );
        let filtered = Error::EventTimeout {
            name: "BLOCK_JOB_READY".into(),
            filter: Some(serde_json::json!({"data": {"device": "d0"}})),
            timeout,
        };
        assert!(
            filtered.to_string().starts_with(
                r#"no `BLOCK_JOB_READY` event matching {"data":{"device":"d0"}} arrived"#
            ),
            "{filtered}"
        );
        let any = Error::EventTimeout {
            name: "any event".into(),
            filter: None,
            timeout,
        };
        assert!(any.to_string().starts_with("no event arrived"), "{any}");
    }

    #[test]
    fn debug_reads_like_display_with_the_causes() {
        let error = Error::DuplicateFd(io::Error::from_raw_os_error(24));
        assert_eq!(
            format!("{error:?}"),
            "could not duplicate the file descriptor to pass to QEMU\n  \
             caused by: Too many open files (os error 24)"
        );
    }
}
