//! The QEMU Machine Protocol (QMP) wire layer, without I/O.
//!
//! (Crate documentation and the opening example are being written; see the
//! workspace README.)

mod codec;
mod command;
pub mod commands;
mod envelope;
mod error;
pub mod events;
mod framing;
mod message;
mod session;

pub use codec::{ClientCodec, ServerCodec};
pub use command::{Command, Empty};
pub use error::Error;
pub use events::EventPayload;
pub use framing::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_SIZE, Frame, Limits, Splitter};
pub use message::{
    Capability, ClientMessage, ErrorClass, ErrorReply, Event, ExecKind, Greeting, JsonObject,
    QemuVersion, Request, ServerMessage, Success, Timestamp, VersionInfo,
};
pub use session::{Refusal, RequestId, Session, SessionEvent, SessionState};
