//! The QEMU Machine Protocol (QMP) wire layer, without I/O.
//!
//! (Crate documentation and the opening example are being written; see the
//! workspace README.)

mod message;
mod session;

pub use message::{
    Capability, ClientMessage, ErrorClass, ErrorReply, Event, ExecKind, Greeting, JsonObject,
    QemuVersion, Request, ServerMessage, Success, Timestamp, VersionInfo,
};
pub use session::{Refusal, RequestId, Session, SessionEvent, SessionState};
