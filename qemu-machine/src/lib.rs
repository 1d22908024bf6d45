//! A supervisor for a QEMU process: launch, QMP, serial console, graceful
//! shutdown and leak-free cleanup — the Rust answer to QEMU's Python
//! `QEMUMachine`.
//!
//! ```no_run
//! use std::time::Duration;
//! use qemu_machine::MachineBuilder;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let machine = MachineBuilder::new()
//!     .machine_type("none")
//!     .launch()
//!     .await?;
//! let status = machine.qmp().execute_raw("query-status", None).await?;
//! println!("QEMU {} is {}", machine.pid(), status["status"]);
//! let exit = machine.shutdown(Duration::from_secs(10)).await?;
//! assert!(exit.success());
//! # Ok(())
//! # }
//! ```
//!
//! # What a launch does
//!
//! 1. Creates a private temporary directory (mode 0700) — the first guard —
//!    or takes over the one [`MachineBuilder::temp_dir`] made in advance.
//! 2. Connects QMP and the console over socketpairs (no socket paths, no
//!    accept race), unless a [`MonitorAddress`] says otherwise.
//! 3. Forks QEMU from a long-lived spawner thread, in its own process
//!    group, with `PR_SET_PDEATHSIG(SIGKILL)` (so QEMU dies with this
//!    process; under a [wrapper](MachineBuilder::wrapper) a guardian
//!    process kills the group instead), stdin from `/dev/null`, stdout and
//!    stderr into a log file, and no descriptor inherited but those named
//!    on its command line (`close_range` marks every other one
//!    close-on-exec in the child).
//! 4. Waits for the QMP greeting and negotiation under the QMP timeout,
//!    raced against QEMU's exit. A failure returns [`Error::Launch`] with
//!    the shell-quoted command line, the exit status and the tail of QEMU's
//!    output, and leaves nothing behind.
//!
//! # Ending a machine
//!
//! [`Machine::shutdown`] sends `quit` and waits; when QEMU does not exit in
//! time it is killed and [`Error::AbnormalShutdown`] says why, after
//! cleaning up. [`Machine::kill`], [`Machine::wait`] (for a guest that
//! powers itself off; on timeout QEMU keeps running),
//! [`Machine::wait_or_kill`] (the same, but on timeout QEMU is killed, as
//! by `QEMUMachine.wait`) and dropping the machine also clean up; a QEMU killed
//! by a signal nobody here sent is logged as a warning and shows in
//! [`ExitInfo`].
//!
//! The console is drained all the time (see `qemu-console`), so a guest
//! that prints without a reader never stalls QEMU.
//!
//! # Snapshots
//!
//! [`Machine::save_snapshot`] saves a booted guest into a file;
//! [`MachineBuilder::restore_from`] starts new machines from it in a
//! fraction of the boot time (see [`snapshot`]).

mod accel_choice;
mod accel_probe;
mod accel_query;
mod argv;
mod builder;
mod child_fds;
mod error;
mod events;
mod exit;
mod failure;
mod files;
mod guardian;
mod launch;
mod lifecycle;
mod log_claim;
mod logfile;
mod machine;
mod monitor;
mod options;
pub mod porting;
mod process;
pub mod qtest;
mod reap;
pub mod snapshot;
mod spawner;
mod spec;
mod tempdir;
mod usernet;

pub use accel_probe::{AccelProbe, AccelVerdict, Skip, SkippedOutcome};
pub use accel_query::RunningAccel;
pub use builder::{DEFAULT_QMP_TIMEOUT, MachineBuilder};
pub use error::{Error, LaunchError, LaunchFailure, ShutdownCause};
pub use exit::{ExitInfo, ExitStatus};
pub use machine::Machine;
pub use options::{ConsoleSpec, MonitorAddress};
/// The accelerator, from qemu-cmdline (one type for the whole workspace):
/// `Accel::tcg()`, `Accel::kvm()`, `Accel::new("hvf")`, [`Accel::from_env`].
pub use qemu_cmdline::Accel;
pub use snapshot::{
    AfterSave, Mismatch, RestoreOptions, RestoreTimings, SaveOptions, Snapshot, SnapshotError,
    SnapshotFailure,
};
pub use usernet::{HostForward, parse_info_usernet};

/// The README's example, compiled as a doctest.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The crates qemu-machine composes, re-exported so that users need only
/// one dependency with matching versions.
pub use {qemu_cmdline, qemu_console, qmp_client};
