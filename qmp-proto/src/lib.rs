//! The QEMU Machine Protocol (QMP) wire layer, without I/O.
//!
//! `qmp-proto` turns bytes into QMP messages and back, and nothing else: it
//! owns no socket, spawns no task and reads no clock, so a client, a mock
//! server, a proxy and a test all share it. The async client is
//! [`qmp-client`](https://docs.rs/qmp-client).
//!
//! ```
//! use bytes::BytesMut;
//! use qmp_proto::{ClientCodec, Command, Request, ServerMessage, commands};
//! use tokio_util::codec::{Decoder, Encoder};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut codec = ClientCodec::new();
//!
//! // What QEMU 7.2 sends: its greeting, then a reply (any chunking works).
//! let mut input = BytesMut::from(&br#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2,
//!     "major": 7}, "package": "Debian 1:7.2+dfsg-7+deb12u18"}, "capabilities": ["oob"]}}
//! {"return": {"status": "running", "singlestep": false, "running": true}, "id": 1}
//! "#[..]);
//! let Some(ServerMessage::Greeting(greeting)) = codec.decode(&mut input)? else {
//!     panic!("QEMU greets first");
//! };
//! assert_eq!(greeting.version.qemu.to_string(), "7.2.22");
//! assert!(greeting.offers_oob());
//!
//! let Some(ServerMessage::Success(reply)) = codec.decode(&mut input)? else {
//!     panic!("then the reply");
//! };
//! let status = commands::QueryStatus::parse_output(reply.ret)?;
//! assert_eq!(status.status, commands::RunState::Running);
//! assert!(codec.decode(&mut input)?.is_none()); // needs more bytes
//!
//! // Requests go out as one buffer ending in CRLF, typed or raw.
//! let mut output = BytesMut::new();
//! codec.encode(commands::QueryStatus.to_request()?.with_id(1), &mut output)?;
//! codec.encode(Request::new("stop"), &mut output)?;
//! assert_eq!(&output[..], b"{\"execute\":\"query-status\",\"id\":1}\r\n{\"execute\":\"stop\"}\r\n");
//! # Ok(())
//! # }
//! ```
//!
//! # Contents
//!
//! - **Messages** — [`ServerMessage`] (greeting, success, error, event) and
//!   [`ClientMessage`] (requests). A well-formed object of no known shape is
//!   `Unknown`, never an error: QEMU's schema drifts. Unknown capabilities
//!   and error classes are kept by name.
//! - **Framing** — [`Splitter`] cuts a byte stream into JSON objects,
//!   whatever the chunking and separators (CRLF, LF, none), tracking
//!   strings, escapes and nesting without ever rescanning a byte. It
//!   enforces [`Limits`] (10 MiB and 64 levels by default) and reports
//!   malformed input as an [`Error`] carrying the stream offset. Its
//!   resync mode discards input up to a 0xFF byte, as the guest agent's
//!   `guest-sync-delimited` needs.
//! - **Codecs** — [`ClientCodec`] decodes what a server sends and encodes
//!   requests; [`ServerCodec`] the reverse. Both are `tokio_util::codec`
//!   `Decoder`/`Encoder`s and work on plain `BytesMut` without a runtime.
//! - **Commands** — the [`Command`] trait (wire name, arguments, typed
//!   output) and the typed commands in [`commands`], checked against the
//!   real QEMU's `query-qmp-schema` by the test suite. Raw JSON stays
//!   possible with [`Request::new`] and [`Request::with_arguments`].
//! - **Versions** — [`Version`] compares with `(major, minor)` pairs
//!   (`greeting.version() >= (9, 0)`); each typed command knows the QEMU
//!   releases that accept it ([`Command::check_version`]) and refuses others
//!   with [`Unsupported`], naming the item, the connected QEMU and the range.
//! - **Events** — a typed payload for every event of every recorded QEMU
//!   version in [`events`] (the generated [`qapi::events`]), read with
//!   [`Event::payload`].
//! - **The whole QMP interface** — [`qapi`]: every command, event and type
//!   of QEMU 7.2 and 10.0, generated from their recorded `query-qmp-schema`
//!   (`cargo xtask codegen`), tolerant of drift and checked per version.
//!   Each command is behind the cargo feature of its QAPI module
//!   (`block-core`, `migration`, `ui`, …; `full` for all of them), so a
//!   build compiles only the commands it asks for.
//! - **Session** — [`Session`], a sans-IO client session: greeting,
//!   capability negotiation, id allocation, the pending-request table and
//!   the event queue.
//!
//! # Errors and the stream
//!
//! `tokio_util::codec::Framed` ends a stream after any decoder error, so the
//! codecs return errors only for broken framing (bytes outside an object,
//! unbalanced brackets, invalid UTF-8, over-size or over-deep messages,
//! invalid JSON, a message cut off by the end of the stream). After such an
//! error the stream is out of sync: close it, or resync a guest-agent
//! connection with [`ClientCodec::resync`].
//!
//! # Performance
//!
//! The splitter scans 32-byte blocks at once (bit-parallel, without
//! `unsafe`), and replies and events are parsed straight into their parts.
//! `cargo bench -p qmp-proto` compares split+decode with
//! `serde_json::from_slice::<Value>` of the already split messages.

pub mod agent;
mod codec;
mod command;
pub mod commands;
mod envelope;
mod error;
pub mod events;
mod framing;
mod message;
#[path = "generated/mod.rs"]
pub mod qapi;
mod session;
mod version;

pub use codec::{ClientCodec, Decoded, ServerCodec};
pub use command::{Command, Empty};
pub use error::Error;
pub use events::EventPayload;
pub use framing::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE_SIZE, Frame, Limits, Splitter};
pub use message::{
    Capability, ClientMessage, ErrorClass, ErrorReply, Event, ExecKind, Greeting, JsonObject,
    QemuVersion, Request, ServerMessage, Success, Timestamp, VersionInfo,
};
pub use session::{Refusal, RequestId, Session, SessionEvent, SessionState};
pub use version::{Unsupported, Version};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
/// The README's examples, compiled and run as doctests.
pub struct ReadmeDoctests;
