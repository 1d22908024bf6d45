//! qtest: QEMU's test protocol, for poking guest memory, I/O ports and
//! interrupt lines from the host (`QEMUQtestProtocol` in Python).
//!
//! [`QtestProtocol`] is the protocol without I/O; [`QtestClient`] drives it
//! over any byte stream to QEMU's `-qtest` chardev. A machine launched in
//! qtest mode ([`MachineBuilder::qtest`](crate::MachineBuilder::qtest), as
//! `QEMUQtestMachine`) has one on a socketpair:
//! [`Machine::qtest`](crate::Machine::qtest).
//!
//! ```no_run
//! # async fn demo() -> Result<(), qemu_machine::Error> {
//! use std::time::Duration;
//! use qemu_machine::MachineBuilder;
//!
//! let machine = MachineBuilder::new()
//!     .machine_type("pc")
//!     .args(["-S", "-nodefaults"])
//!     .qtest(true)
//!     .launch()
//!     .await?;
//! let qtest = machine.qtest()?;
//! qtest.outb(0x70, 0x0b).await?;
//! let rtc_mode = qtest.inb(0x71).await?;
//! # let _ = rtc_mode;
//! machine.shutdown(Duration::from_secs(30)).await?;
//! # Ok(()) }
//! ```
//!
//! Most distributions' QEMU builds (Debian's 7.2 and 10.0 among them) have
//! no qtest *accelerator*, yet `-qtest` works under TCG for memory, port
//! I/O and IRQ interception; only the clock commands (`clock_step`,
//! `clock_set`) need `-accel qtest`, and fail with
//! [`Error::NoQtestAccelerator`](crate::Error::NoQtestAccelerator) without it. Start the machine with
//! `-S` (no CPU running) so the guest does not race the test.
//!
//! Over a scripted peer, or any stream:
//!
//! ```
//! use qemu_machine::qtest::{QtestClient, QtestConfig};
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A scripted stand-in for QEMU's end of the qtest socket.
//! let (ours, theirs) = tokio::io::duplex(4096);
//! tokio::spawn(async move {
//!     let (read, mut write) = tokio::io::split(theirs);
//!     let mut lines = BufReader::new(read).lines();
//!     while let Ok(Some(line)) = lines.next_line().await {
//!         let reply: &[u8] = match line.as_str() {
//!             "outb 0x70 0xc" => b"IRQ lower 8\nOK\n",
//!             "inb 0x71" => b"OK 0x00c0\n",
//!             _ => b"FAIL Unknown command\n",
//!         };
//!         let _ = write.write_all(reply).await;
//!     }
//! });
//!
//! let qtest = QtestClient::new(ours, QtestConfig::default())?;
//! qtest.outb(0x70, 0x0c).await?;
//! assert!(!qtest.irq_level(8));
//! assert_eq!(qtest.inb(0x71).await?, 0xc0);
//! # Ok(())
//! # }
//! ```

mod client;
mod command;
mod error;
pub(crate) mod mode;
mod protocol;
#[cfg(test)]
mod tests;

pub use client::{QtestClient, QtestConfig};
pub use command::{QtestCommand, Width};
pub use error::{ProtocolViolation, QtestDisconnect};
pub use protocol::{
    DEFAULT_MAX_LINE, Endianness, IrqEvent, QtestOutput, QtestProtocol, QtestResponse,
};
