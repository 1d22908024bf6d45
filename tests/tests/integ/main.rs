//! Cross-crate integration tests against a real `qemu-system-x86_64`.
//!
//! One test binary: every area is a module.

mod accel_probe;
mod agent;
mod cmdline;
mod console;
mod forever;
mod machine;
mod migration;
mod mirror;
mod network;
mod parity;
mod port_functional_hotplug_blk;
mod port_functional_tuxrun;
mod port_iotest_132;
mod qtest;
mod scenarios;
mod snapshot;
mod supervision;
