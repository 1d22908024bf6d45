//! The QEMU guest agent's (qemu-ga, "QGA") commands and replies, without
//! I/O: what a client sends and parses, and what a mock agent parses and
//! answers.
//!
//! The agent speaks QMP's JSON over a virtio-serial port, with no greeting,
//! no negotiation and no events. [`GuestSyncDelimited`] resynchronises a
//! stream whose state is unknown; the others are ordinary commands run
//! with the [`Command`](crate::Command) trait, like QEMU's own.
//!
//! ```
//! use qmp_proto::Command;
//! use qmp_proto::agent::{GuestExec, GuestExecStatusQuery};
//!
//! let mut exec = GuestExec::new("/bin/echo");
//! exec.arg = Some(vec!["hi".into()]);
//! exec.capture_output = Some(true);
//! let request = exec.to_request()?;
//! assert_eq!(request.command, "guest-exec");
//!
//! // What the agent answers once the process is done: output in base64.
//! let done = GuestExecStatusQuery::parse_output(serde_json::json!({
//!     "exited": true, "exitcode": 0, "out-data": "aGkK"
//! }))?;
//! assert_eq!(done.stdout, b"hi\n");
//! assert!(done.success());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod base64_data;
mod exec;
mod info;
mod shutdown;
mod sync;

pub use exec::{GuestExec, GuestExecStarted, GuestExecStatus, GuestExecStatusQuery};
pub use info::{GuestAgentCommandInfo, GuestAgentInfo, GuestInfo, GuestPing};
pub use shutdown::{GuestShutdown, ShutdownMode};
pub use sync::{GuestSyncDelimited, SYNC_SENTINEL};
