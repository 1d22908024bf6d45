//! The `qmp` binary against a real `qemu-system-x86_64 -machine none`
//! with QMP on Unix sockets in a temp dir per test; the interactive shell
//! in a real terminal under tmux. QEMU or tmux missing = failure.

#[path = "../support/mod.rs"]
mod support;

mod events;
mod harness;
mod oneshot;
mod schema;
mod script;
mod shell;
