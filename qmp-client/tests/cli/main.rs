//! The `qmp` binary against a real `qemu-system-x86_64 -machine none`
//! with QMP on Unix sockets in a temp dir per test. QEMU missing =
//! failure.

#[path = "../support/mod.rs"]
mod support;

mod events;
mod harness;
mod oneshot;
mod schema;
mod script;
