//! Snapshots: save a running guest to a file once, start many machines
//! from it in a fraction of the boot time.
//!
//! [`Machine::save_snapshot`](crate::Machine::save_snapshot) stops the
//! guest and migrates its whole state (RAM and devices) into a file, then
//! writes beside it a small metadata file (`FILE.json`): the QEMU version,
//! the machine's [configuration](crate::MachineBuilder::configuration), its
//! console and its device set.
//! [`MachineBuilder::restore_from`](crate::MachineBuilder::restore_from)
//! checks that metadata against the builder and its binary *before* QEMU
//! starts, launches with the same configuration plus `-S -incoming
//! defer`, loads the file with `migrate-incoming`, and resumes the guest:
//! the result is an ordinary [`Machine`](crate::Machine) whose console was
//! attached before the guest ran a single instruction.
//!
//! # How the state is written
//!
//! - QEMU ≥ 9.0: a `file:` migration with the `mapped-ram` capability
//!   (each RAM page at a fixed offset; zero pages are holes, so the file is
//!   sparse), with two `multifd` threads by default (see
//!   [`SaveOptions::multifd_channels`](crate::SaveOptions::multifd_channels)).
//! - Older QEMU (7.2): the migration stream into a descriptor of ours
//!   (`fd:` after `getfd`), which needs a Unix-socket monitor (the default
//!   socketpair is one). Not `exec:cat > FILE`: QEMU reaps the command at
//!   the end with `SIGTERM` at once, and a `cat` that has not drained the
//!   pipe yet loses the end of the stream.
//!
//! # Many machines from one snapshot
//!
//! The file is only read, so any number of machines may restore from it at
//! once. Each is an independent QEMU process, but each starts as an exact
//! copy of the saved guest, so siblings share:
//! - the MAC addresses of their network cards (from the command line, or
//!   QEMU's default `52:54:00:12:34:56`),
//! - the guest kernel's random state (its entropy pool and any seeds it
//!   derived) until new entropy arrives (give the guest a `virtio-rng`),
//! - the guest's clock: it goes on from the moment of the save, so it lags
//!   the host by the time since then until something sets it (`hwclock
//!   -s` reads the emulated RTC, which follows the host),
//! - everything in the guest's memory: hostname, tmpfs contents, processes.
//!
//! Per-instance identity is changed where QEMU allows it: a different MAC
//! is a *different configuration* (it is part of the device), so instead
//! set it inside the guest (`ip link set eth0 address …`) after restoring,
//! or save one snapshot per MAC; change the hostname, seed the RNG and set
//! the clock from the guest console after restoring.

mod devices;
mod error;
mod metadata;
mod mismatch;
mod restore;
mod save;
mod transport;
mod version;
mod wait;

pub use error::{SnapshotError, SnapshotFailure};
pub use metadata::Snapshot;
pub use mismatch::Mismatch;
pub use restore::{RestoreOptions, RestoreTimings};
pub use save::{AfterSave, SaveOptions};
