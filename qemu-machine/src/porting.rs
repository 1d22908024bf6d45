//! How each part of QEMU's Python `QEMUMachine`, `QEMUQtestMachine` and the
//! test helpers above them maps onto qemukit, with a worked port.
#![doc = include_str!("../PORTING.md")]
