//! An async, concurrent, cancellation-safe QMP client for QEMU.
//!
//! It runs over anything `AsyncRead + AsyncWrite` (a Unix socket, TCP, one
//! end of a socket pair handed to QEMU as `fd=N`), drives the sans-IO
//! [`qmp_proto::Session`], and gives you a cheap, cloneable [`Client`]:
//! typed and [`Raw`] commands through one [`Call`] builder, events with
//! bounded buffers, QEMU's `event_wait` semantics and file-descriptor
//! passing.
//!
//! ```
//! # #[cfg(feature = "mock")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), qmp_client::Error> {
//! use std::time::Duration;
//! use qmp_client::{Client, Config};
//! use qmp_proto::commands::QueryStatus;
//!
//! // A real QEMU is usually `Client::connect_unix(path, &config)` or
//! // `Client::from_stream(socketpair_end, &config)`; the mock QEMU (feature
//! // `mock`) speaks the same protocol.
//! let (io, _mock) = qmp_client::mock::MockQemu::new().serve_pair();
//! let client = Client::from_stream(io, &Config::default()).await?;
//! assert_eq!(client.greeting().version.qemu.major, 7);
//!
//! let status = client.execute(QueryStatus).await?;
//! assert!(status.running);
//!
//! // Subscribe before the command: its event cannot be missed.
//! let stopped = client.event_waiter("STOP", None);
//! client.execute_raw("stop", None).await?;
//! stopped.wait(Some(Duration::from_secs(5))).await?;
//!
//! client.execute(qmp_proto::commands::Quit).await?; // EOF after quit is success
//! assert!(client.closed().await.is_expected());
//! # Ok(()) }
//! # #[cfg(not(feature = "mock"))]
//! # fn main() {}
//! ```
//!
//! # Structure
//!
//! [`handshake`] greets and negotiates over a transport and returns the
//! [`Client`] plus the [`Connection`] task that owns the transport (spawn
//! it). The connectors [`Client::connect_unix`], [`Client::connect_tcp`],
//! [`Client::from_stream`] and [`Listener::accept`] (QEMU connects to us)
//! do that and spawn the task. Every step runs under a timeout from
//! [`Config`], and a timeout names the step and its likely cause.
//!
//! # Cancel safety
//!
//! - A command is handed to the connection task when its future is first
//!   polled (dropped before the task takes it, it is never sent). Once
//!   sent, QEMU runs it; dropping the future, or its timeout expiring, only
//!   discards the reply when it arrives. The stream never loses sync, and
//!   other commands are unaffected.
//! - [`Client::wait_event`] and [`EventWaiter::wait`] consume an event only
//!   when they return it; dropping them consumes nothing.
//! - [`EventStream::recv`] loses no event when dropped.
//!
//! # Events
//!
//! Every subscriber ([`Client::events`]) sees every event from the moment
//! it subscribed, through a bounded buffer; one that falls behind gets
//! [`Lagged`] and goes on. A slow subscriber never delays replies.
//! [`Client::wait_event`] also searches a bounded backlog of recent events,
//! with QEMU's recursive [`event_match`]. As `QEMUMachine` keeps its
//! events, [`Client::take_events`], [`Client::wait_events`],
//! [`Client::next_event`] and [`Client::clear_events`] list, drain and
//! clear that backlog.
//!
//! # When the connection ends
//!
//! Every pending command and wait fails at once with
//! [`Error::Disconnected`] carrying a cloneable [`Disconnect`] reason;
//! later calls fail at once; [`Client::closed`] resolves. End of input
//! after `quit` is [`Disconnect::Quit`], the expected end. The connection
//! task ends when the last `Client` is dropped.
//!
//! # File descriptors
//!
//! Over a transport that carries them ([`Transport`]; Unix sockets do),
//! [`Client::getfd`], [`Client::add_fd`] and [`Call::fds`] attach fds
//! (SCM_RIGHTS) to the command's own bytes.
//!
//! # Backpressure
//!
//! At most [`Config::write_buffer`] bytes of commands wait to be written;
//! the rest wait in the queue. A command whose caller gave up before its
//! first byte was written is never sent.
//!
//! # The guest agent
//!
//! [`agent::Agent`] drives qemu-ga over its virtio-serial port with the same
//! codec and error type: `guest-sync-delimited` resyncs (on connect and
//! after every timeout), typed `guest-ping`, `guest-info`, `guest-exec`
//! with captured output, and `guest-shutdown`.
//!
//! # Tracing
//!
//! A `qmp_connection` span per connection and a `qmp_command` span per
//! command (name, id; elapsed time and outcome logged at debug level).
//! Every message on the wire is logged at trace level under the target
//! `qmp_client::wire`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod agent;
mod backlog;
mod call;
mod client;
mod config;
mod connect;
mod connection;
mod deadline;
mod error;
mod events;
#[cfg(feature = "mock")]
pub mod mock;
mod shared;
mod transport;
mod unix;
mod version_check;

pub use call::{Call, Invoke, Raw, RawText};
pub use client::Client;
pub use config::Config;
pub use connect::{ListenAddr, Listener, handshake};
pub use connection::Connection;
pub use error::{Disconnect, Error, Step};
pub use events::{EventStream, EventWaiter, Lagged, event_match, matches_event};
pub use qmp_proto::{Event, Greeting, JsonObject};
pub use transport::{NoFds, Transport};

/// The README's examples, compiled as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
