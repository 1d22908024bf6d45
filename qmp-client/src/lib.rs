//! An async, concurrent, cancellation-safe QMP client for QEMU.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
mod config;
mod connect;
mod connection;
mod error;
mod events;
mod fds;
mod shared;

pub use client::Client;
pub use config::Config;
pub use connect::{Listener, handshake};
pub use connection::Connection;
pub use error::{Disconnect, Error, Step};
pub use events::{EventStream, EventWaiter, Lagged, event_match, matches_event};
pub use fds::AddFdInfo;
pub use qmp_proto::{Event, Greeting, JsonObject};
