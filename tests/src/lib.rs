//! Shared helpers for qemukit's integration tests against a real QEMU.
