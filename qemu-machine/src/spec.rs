//! `LaunchSpec`: one launch's own copy of the builder's settings and
//! descriptors.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use qemu_cmdline::{Accel, InheritFd};

use crate::options::{ConsoleSpec, MonitorAddress};
use crate::tempdir::PrivateDir;

/// Everything one launch needs, owned by it: the builder that made it can
/// be changed, dropped or launched again meanwhile.
#[derive(Debug)]
pub(crate) struct LaunchSpec {
    /// For logs, the temporary directory and the log file.
    pub(crate) name: String,
    pub(crate) binary: PathBuf,
    pub(crate) wrapper: Vec<OsString>,
    /// The user's arguments, rendered, appended as given.
    pub(crate) user_args: Vec<OsString>,
    pub(crate) default_args: bool,
    pub(crate) machine_type: Option<String>,
    pub(crate) accel: Option<Accel>,
    pub(crate) monitor_null: bool,
    /// `None` without QMP.
    pub(crate) monitor: Option<MonitorAddress>,
    pub(crate) console: Option<(ConsoleSpec, qemu_console::ConsoleConfig)>,
    /// This launch's own duplicates of the builder's `add_fd` descriptors.
    pub(crate) fds: Vec<PassedFd>,
    pub(crate) base_temp_dir: PathBuf,
    /// The temporary directory made in advance by `MachineBuilder::temp_dir`;
    /// without one, the launch creates one under `base_temp_dir`.
    pub(crate) temp_dir: Option<PrivateDir>,
    pub(crate) log_dir: Option<PathBuf>,
    pub(crate) sock_dir: Option<PathBuf>,
    pub(crate) qmp_timeout: Duration,
    pub(crate) qmp_config: qmp_client::Config,
    pub(crate) keep_temp_dir_on_failure: bool,
    /// `Some` in qtest mode.
    pub(crate) qtest: Option<crate::qtest::mode::QtestSetup>,
}

/// A descriptor handed to QEMU with `-add-fd`.
#[derive(Debug)]
pub(crate) struct PassedFd {
    pub(crate) fd: InheritFd,
    pub(crate) fdset: u32,
    pub(crate) opaque: Option<String>,
}
