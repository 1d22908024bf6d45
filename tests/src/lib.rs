//! Shared helpers for qemukit's integration tests against a real QEMU and
//! the real test guest.
//!
//! Tests that need QEMU or the guest never pass silently without them:
//! [`qemu_binary`] panics with the command that installs QEMU, [`guest`]
//! with the command that builds the guest.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::os::fd::{AsFd, AsRawFd};
//! use std::time::Duration;
//!
//! let guest = qemukit_tests::guest();
//! let (console, theirs) = qemukit_tests::socket_pair()?;
//! let mut args = guest.args(false);
//! args.push("-chardev".into());
//! args.push(format!("socket,id=con,fd={}", theirs.as_raw_fd()).into());
//! args.push("-serial".into());
//! args.push("chardev:con".into());
//! let mut qemu = qemukit_tests::QemuChild::spawn(&args, &[theirs.as_fd()])?;
//! drop(theirs); // QEMU holds its own copy now
//! // ... read `console` until READY_MARKER, then:
//! qemu.kill().await?;
//! # drop(console); Ok(()) }
//! ```

mod guest;
mod process;
mod snapshot;

pub use guest::{Guest, KERNEL_APPEND, READY_MARKER, guest, guest_dir};
pub use process::{QemuChild, qemu_binary, socket_pair};
pub use snapshot::{booted_snapshot, restore_booted};
