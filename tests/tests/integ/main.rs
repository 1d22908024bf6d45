//! Cross-crate integration tests against a real `qemu-system-x86_64`.
//!
//! One test binary: every area is a module.

mod agent;
mod cmdline;
mod console;
mod machine;
mod migration;
mod mirror;
mod network;
mod qtest;
mod scenarios;
