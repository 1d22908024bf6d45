//! A typed QEMU command line that is safe by construction.
//!
//! [`Cmdline`] is a builder in the shape of [`std::process::Command`]:
//! typed options for what people pass most (`-machine`, `-m`, `-smp`,
//! `-chardev`, `-device`, `-drive`, `-netdev`, …) plus a raw
//! [`arg`](Cmdline::arg) escape hatch. When rendered, every option value
//! has its literal commas doubled (`,,`), so a file named
//! `a,format=raw,b.img` stays one file name instead of injecting options;
//! keys are checked, and values QEMU cannot represent (a NUL byte, an
//! empty key, `=` in a key, a line break in the kernel command line) are
//! refused with [`Error::Unrepresentable`] naming the option and value.
//!
//! ```
//! use qemu_cmdline::{Chardev, Cmdline, Device, Drive, Machine, Memory, Mon, Name, Smp};
//!
//! let mut cmd = Cmdline::new();
//! cmd.machine(Machine::new("pc").accel("tcg"))
//!     .memory(Memory::mib(256))
//!     .smp(Smp::new(2))
//!     .name(Name::new("web,id=x"))
//!     .nodefaults()
//!     .chardev(Chardev::socket_fd("mon", 3))
//!     .mon(Mon::qmp("mon"))
//!     .drive(Drive::new("a,format=raw,b.img").format("raw").interface("none").id("d0"))
//!     .device(Device::new("virtio-blk-pci").prop("drive", "d0"));
//!
//! let args = cmd.to_args()?;
//! assert_eq!(args[1], "pc,accel=tcg");
//! assert_eq!(args[7], "guest=web,,id=x");
//! assert_eq!(args[14], "file=a,,format=raw,,b.img,format=raw,if=none,id=d0");
//!
//! // Display is a copy-pasteable shell line.
//! assert!(cmd.to_string().starts_with("qemu-system-x86_64 -machine pc,accel=tcg -m 256M"));
//!
//! // Parsing gives the same typed command line back.
//! assert_eq!(Cmdline::parse_args(&args)?, cmd);
//!
//! // What QEMU cannot represent is refused, naming the option.
//! let err = Cmdline::new().append("quiet\ninit=/bin/sh").to_args().unwrap_err();
//! assert!(matches!(err, qemu_cmdline::Error::Unrepresentable { option: "-append", .. }));
//! # Ok::<(), qemu_cmdline::Error>(())
//! ```
//!
//! `-device`, `-object`, `-blockdev` and `-netdev` can also be written in
//! QEMU's JSON syntax from a `serde_json::Value` or any serialisable
//! struct ([`Cmdline::device_json`], [`Cmdline::device_json_from`], …).
//! Rendering gives `Vec<OsString>` ([`Cmdline::to_args`]; bytes that are
//! not UTF-8 survive on Unix), a [`std::process::Command`]
//! ([`Cmdline::command`]) or, with the `tokio` feature, a
//! `tokio::process::Command`.
//!
//! [`Probe`] runs a binary (under a timeout) and parses its version,
//! `-machine help`, `-accel help`, `-cpu help`, `-device help` and
//! `-netdev help`, so a
//! caller can ask "is `virtio-blk-pci` in this QEMU?" before launching:
//!
//! ```no_run
//! let probe = qemu_cmdline::Probe::run_default("qemu-system-x86_64")?;
//! probe.require_device("virtio-blk-pci")?;
//! println!("{} has {} machine types", probe.version, probe.machines.len());
//! # Ok::<(), qemu_cmdline::Error>(())
//! ```

mod arg;
mod builder;
mod error;
mod escape;
mod inherit;
mod keyval;
mod options;
mod os;
mod parse;
mod probe;
mod render;
mod value;

pub use arg::Arg;
pub use builder::{Cmdline, DEFAULT_PROGRAM};
pub use error::Error;
pub use escape::{check_key, escape_value};
pub use inherit::InheritFd;
pub use keyval::split as split_keyvals;
pub use options::{
    Accel, AddFd, Blockdev, Boot, CharDevSpec, Chardev, Cpu, CpuFlag, Device, Display, Drive,
    FwCfg, Global, HostFwd, Machine, Memory, Mon, Msg, Name, Netdev, Nic, Object, Rtc, Smp, Trace,
};
pub use probe::{CpuModel, DEFAULT_PROBE_TIMEOUT, DeviceInfo, MachineInfo, Probe, Version};
pub use render::shell_quote;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
