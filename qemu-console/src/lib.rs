//! An always-drained serial console with async expect, for QEMU guests.
//!
//! A console nobody reads makes QEMU spin on a full socket and the guest
//! stall. A [`Console`] therefore starts a task that drains the stream from
//! the moment it is attached, into a bounded expect window, a transcript and
//! optionally a raw log file, whether or not anyone expects anything. The
//! task belongs to the console and ends with it.
//!
//! ```
//! use std::time::Duration;
//! use qemu_console::{Console, ConsoleConfig, Needle};
//! use tokio::io::AsyncWriteExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // An in-memory stand-in for QEMU's end of the serial port.
//! let (ours, mut guest) = tokio::io::duplex(4096);
//! let console = Console::attach(ours, ConsoleConfig::default())?;
//! let timeout = Duration::from_secs(10);
//!
//! guest.write_all(b"Linux version 6.1\r\nlog").await?;
//! guest.write_all(b"in: ").await?; // a needle split across writes still matches
//! let login = console.expect("login: ", timeout).await?;
//! assert_eq!(login.before(), b"Linux version 6.1\r\n");
//!
//! // Any of several needles: the earliest match wins and says which.
//! guest.write_all(b"Password incorrect\r\n# \x1b[6n").await?;
//! let next = Needle::any_of([Needle::regex(r"[#$] ")?, Needle::from("incorrect")]);
//! assert_eq!(console.expect(&next, timeout).await?.which(), 1);
//! assert_eq!(console.expect(&next, timeout).await?.which(), 0);
//!
//! console.send_line("uname -r").await?;
//! drop(guest); // QEMU exits: every expect now fails at once with the transcript tail.
//! let error = console.expect("never", timeout).await.unwrap_err();
//! assert!(matches!(error, qemu_console::Error::Eof { .. }));
//! assert!(error.to_string().contains(r#"waiting for "never""#));
//! assert_eq!(qemu_console::to_text(&console.transcript()), "Linux version 6.1\nlogin: Password incorrect\n# ");
//! # Ok(())
//! # }
//! ```
//!
//! # What it offers
//!
//! - Attach to any `AsyncRead + AsyncWrite` ([`Console::attach`]), a socket
//!   pair whose other end QEMU inherits ([`Console::socketpair`],
//!   [`InheritFd`]), a Unix socket path ([`Console::connect_unix`], retried
//!   until it exists) or TCP ([`Console::connect_tcp`]).
//! - Expect on raw bytes over the accumulated window, so a needle split
//!   across reads matches: literals, regexes compiled once, [`Needle::any_of`],
//!   [`Needle::eof`]; each under a timeout, returning [`Captures`] (before and
//!   match, then consumed). Errors say what was expected, how long the wait
//!   took and the last bytes seen.
//! - [`Console::run`] runs a shell command and returns its output and exit
//!   status, with markers computed by the shell so the echo of the command,
//!   busybox's `ESC[6n` and line wraps cannot fool it.
//! - [`Console::transcript`] at any time; [`strip_ansi`], [`strip_cr`],
//!   [`to_text`] and [`escape`] for display.
//! - When the stream ends, pending and later expects fail at once with
//!   [`Error::Eof`]. Consoles are independent of each other.
//!
//! All methods take `&self`, so a supervisor can hand out `&Console`.

mod config;
mod connect;
mod console;
mod deadline;
mod drain;
mod error;
mod expect;
mod history;
mod needle;
mod patterns;
mod run;
mod shared;
mod socketpair;
mod text;

pub use config::ConsoleConfig;
pub use console::Console;
pub use error::{Error, Result};
pub use expect::Captures;
pub use needle::Needle;
pub use patterns::{DEFAULT_INTERRUPT_EVERY, KERNEL_PANIC};
pub use run::CommandOutput;
pub use text::{escape, strip_ansi, strip_cr, to_text};

/// QEMU's end of [`Console::socketpair`] (from `qemu-cmdline`, shared with
/// every crate that hands a descriptor to QEMU).
pub use qemu_cmdline::InheritFd;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
