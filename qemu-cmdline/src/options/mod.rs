//! The typed option families.

#[macro_use]
mod macros;
mod block;
mod chardev;
mod device;
mod machine;
mod misc;
mod net;

pub use block::{Blockdev, Drive};
pub use chardev::{CharDevSpec, Chardev, Mon};
pub use device::{Device, Global, Object};
pub use machine::{Accel, Cpu, CpuFlag, Machine, Memory, Smp};
pub use misc::{AddFd, Boot, Display, FwCfg, Msg, Name, Rtc, Trace};
pub use net::{HostFwd, Netdev, Nic};
