//! `MachineBuilder`: everything a machine is launched with.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;
use crate::machine::Machine;
use crate::options::{Accel, ConsoleSpec, MonitorAddress};

/// The default time QEMU gets to become ready (QMP greeting and
/// negotiation), as `QEMUMachine`'s `qmp_timer`.
pub const DEFAULT_QMP_TIMEOUT: Duration = Duration::from_secs(30);

/// Configures and launches a QEMU [`Machine`], like
/// [`std::process::Command`]: setters take and return `&mut Self`.
///
/// The command line is `wrapper… binary -display none -vga none [-machine
/// TYPE] [-accel ACCEL] <monitor> <console> <fds> args…`.
///
/// ```no_run
/// # async fn demo() -> Result<(), qemu_machine::Error> {
/// use std::time::Duration;
/// use qemu_machine::{ConsoleSpec, MachineBuilder};
///
/// let machine = MachineBuilder::new()
///     .machine_type("pc")
///     .args(["-m", "256"])
///     .console(ConsoleSpec::serial())
///     .qmp_timeout(Duration::from_secs(10))
///     .launch()
///     .await?;
/// machine.shutdown(Duration::from_secs(10)).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MachineBuilder {
    pub(crate) binary: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) cmdline_error: Option<qemu_cmdline::Error>,
    pub(crate) wrapper: Vec<OsString>,
    pub(crate) name: Option<String>,
    pub(crate) base_temp_dir: Option<PathBuf>,
    pub(crate) monitor: MonitorAddress,
    pub(crate) sock_dir: Option<PathBuf>,
    pub(crate) console: Option<ConsoleSpec>,
    pub(crate) console_log: Option<PathBuf>,
    pub(crate) log_dir: Option<PathBuf>,
    pub(crate) qmp_timeout: Duration,
    pub(crate) machine_type: Option<String>,
    pub(crate) accel: Accel,
    pub(crate) fds: Vec<PassedFd>,
    pub(crate) monitor_null: bool,
    pub(crate) qmp: bool,
    pub(crate) keep_temp_dir_on_failure: bool,
    pub(crate) default_args: bool,
    pub(crate) qmp_config: qmp_client::Config,
    pub(crate) console_config: qemu_console::ConsoleConfig,
    pub(crate) launched: bool,
}

/// A descriptor handed to QEMU with `-add-fd`.
#[derive(Debug)]
pub(crate) struct PassedFd {
    pub(crate) fd: OwnedFd,
    pub(crate) fdset: u32,
    pub(crate) opaque: Option<String>,
}

impl Default for MachineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MachineBuilder {
    /// A builder for `qemu-system-x86_64` from the `PATH`, with QMP over a
    /// socketpair, TCG, no console and nothing else.
    pub fn new() -> Self {
        Self {
            binary: PathBuf::from("qemu-system-x86_64"),
            args: Vec::new(),
            cmdline_error: None,
            wrapper: Vec::new(),
            name: None,
            base_temp_dir: None,
            monitor: MonitorAddress::SocketPair,
            sock_dir: None,
            console: None,
            console_log: None,
            log_dir: None,
            qmp_timeout: DEFAULT_QMP_TIMEOUT,
            machine_type: None,
            accel: Accel::Tcg,
            fds: Vec::new(),
            monitor_null: false,
            qmp: true,
            keep_temp_dir_on_failure: false,
            default_args: true,
            qmp_config: qmp_client::Config::default(),
            console_config: qemu_console::ConsoleConfig::default(),
            launched: false,
        }
    }

    /// The QEMU binary: a path, or a name looked up in the `PATH`.
    pub fn binary(&mut self, binary: impl Into<PathBuf>) -> &mut Self {
        self.binary = binary.into();
        self
    }

    /// Appends one raw argument.
    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(arg.into());
        self
    }

    /// Appends raw arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Appends the arguments of a typed [`qemu_cmdline::Cmdline`] (its
    /// program is ignored: see [`binary`](Self::binary)). A value it
    /// cannot render makes [`launch`](Self::launch) fail with
    /// [`Error::Cmdline`].
    pub fn cmdline(&mut self, cmdline: &qemu_cmdline::Cmdline) -> &mut Self {
        match cmdline.to_args() {
            Ok(args) => self.args.extend(args),
            Err(error) => {
                self.cmdline_error.get_or_insert(error);
            }
        }
        self
    }

    /// A command prefix QEMU runs under, e.g. `["strace", "-f"]` or
    /// `["taskset", "-c", "1"]`. The whole process group is killed at the end.
    pub fn wrapper<I, S>(&mut self, wrapper: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// A name for logs, the temporary directory and the log file
    /// (default: `qemu-<pid>-<n>`).
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = Some(name.into());
        self
    }

    /// Where the private temporary directory is created (default: the
    /// system temporary directory, `$TMPDIR` or `/tmp`).
    pub fn base_temp_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.base_temp_dir = Some(dir.into());
        self
    }

    /// Where the QMP monitor lives (default: a socketpair).
    pub fn monitor(&mut self, address: MonitorAddress) -> &mut Self {
        self.monitor = address;
        self
    }

    /// Where relative Unix monitor paths are resolved (default: the
    /// machine's private temporary directory).
    pub fn sock_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.sock_dir = Some(dir.into());
        self
    }

    /// Attaches a console (see [`ConsoleSpec`]); none by default.
    pub fn console(&mut self, console: ConsoleSpec) -> &mut Self {
        self.console = Some(console);
        self
    }

    /// Also writes everything the console receives into this file.
    pub fn console_log(&mut self, path: impl Into<PathBuf>) -> &mut Self {
        self.console_log = Some(path.into());
        self
    }

    /// Where QEMU's stdout+stderr log goes (default: the private temporary
    /// directory, removed with it; a log in a directory of yours is kept).
    pub fn log_dir(&mut self, dir: impl Into<PathBuf>) -> &mut Self {
        self.log_dir = Some(dir.into());
        self
    }

    /// How long QEMU gets to connect and greet (default 30 s).
    pub fn qmp_timeout(&mut self, timeout: Duration) -> &mut Self {
        self.qmp_timeout = timeout;
        self
    }

    /// `-machine TYPE`, e.g. `pc`, `q35` or `none` (default: QEMU's).
    pub fn machine_type(&mut self, machine_type: impl Into<String>) -> &mut Self {
        self.machine_type = Some(machine_type.into());
        self
    }

    /// The accelerator (default TCG).
    pub fn accel(&mut self, accel: Accel) -> &mut Self {
        self.accel = accel;
        self
    }

    /// Passes `fd` to QEMU as `-add-fd fd=N,set=FDSET[,opaque=…]`. The
    /// builder owns it until the launch, which closes the parent's copy.
    pub fn add_fd(&mut self, fd: OwnedFd, fdset: u32, opaque: Option<&str>) -> &mut Self {
        self.fds.push(PassedFd {
            fd,
            fdset,
            opaque: opaque.map(str::to_owned),
        });
        self
    }

    /// Adds `-monitor null` (QEMU otherwise may add a default HMP monitor).
    pub fn add_monitor_null(&mut self) -> &mut Self {
        self.monitor_null = true;
        self
    }

    /// Whether to set up the QMP monitor (default true). Without it the
    /// launch does not wait for readiness and shutdown uses SIGTERM.
    pub fn qmp(&mut self, enabled: bool) -> &mut Self {
        self.qmp = enabled;
        self
    }

    /// Keeps the temporary directory (and the log in it) when the launch
    /// fails or the shutdown is abnormal, to debug it (default false).
    pub fn keep_temp_dir_on_failure(&mut self, keep: bool) -> &mut Self {
        self.keep_temp_dir_on_failure = keep;
        self
    }

    /// Whether to add `-display none -vga none` (default true), as
    /// `QEMUMachine` does.
    pub fn default_args(&mut self, enabled: bool) -> &mut Self {
        self.default_args = enabled;
        self
    }

    /// Settings of the QMP client (event buffers, command timeout, message
    /// size limit); its handshake timeout is replaced by `qmp_timeout`.
    pub fn qmp_config(&mut self, config: qmp_client::Config) -> &mut Self {
        self.qmp_config = config;
        self
    }

    /// Settings of the console (buffer sizes, write timeout); its log file
    /// is replaced by `console_log` when that is set.
    pub fn console_config(&mut self, config: qemu_console::ConsoleConfig) -> &mut Self {
        self.console_config = config;
        self
    }

    /// Starts QEMU and waits until it is ready: its QMP monitor greeted
    /// and negotiated, its console attached.
    ///
    /// On failure nothing is left behind: QEMU is killed and reaped, the
    /// temporary directory removed. The error carries the command line,
    /// QEMU's exit status and the tail of its output.
    ///
    /// # Errors
    ///
    /// [`Error::AlreadyLaunched`] on a second call; [`Error::Spawn`] when
    /// the binary cannot be run; [`Error::Launch`] when QEMU exits or does
    /// not become ready within the QMP timeout; others for local failures.
    pub async fn launch(&mut self) -> Result<Machine, Error> {
        if self.launched {
            return Err(Error::AlreadyLaunched);
        }
        self.launched = true;
        if let Some(error) = self.cmdline_error.take() {
            return Err(Error::Cmdline(error));
        }
        crate::launch::launch(self).await
    }
}
