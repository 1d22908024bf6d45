//! `MachineBuilder`: everything a machine is launched with.

use std::ffi::OsString;
use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use qemu_cmdline::{Accel, InheritFd};

use crate::error::Error;
use crate::launch;
use crate::machine::Machine;
use crate::options::{ConsoleSpec, MonitorAddress};
use crate::qtest::QtestConfig;
use crate::qtest::mode::QtestSetup;
use crate::spec::{LaunchSpec, PassedFd};
use crate::tempdir::PrivateDir;

/// The default time QEMU gets to become ready (QMP greeting and
/// negotiation), as `QEMUMachine`'s `qmp_timer`.
pub const DEFAULT_QMP_TIMEOUT: Duration = Duration::from_secs(30);

/// Configures and launches QEMU [`Machine`]s, like
/// [`std::process::Command`]: setters take and return `&mut Self`, and
/// [`launch`](Self::launch) takes `&self`, so one builder launches any
/// number of machines (one after the other, or at once), each with its
/// own files and descriptors.
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
    binary: PathBuf,
    args: Vec<UserArgs>,
    wrapper: Vec<OsString>,
    /// The builder's name: given, or generated once, so that every launch
    /// of one builder has the same name (as `QEMUMachine` relaunched).
    name: String,
    base_temp_dir: Option<PathBuf>,
    /// The temporary directory [`temp_dir`](MachineBuilder::temp_dir) made
    /// for the next launch; removed with the builder if never launched.
    next_temp_dir: Mutex<Option<PrivateDir>>,
    monitor: MonitorAddress,
    sock_dir: Option<PathBuf>,
    console: Option<ConsoleSpec>,
    console_log: Option<PathBuf>,
    log_dir: Option<PathBuf>,
    qmp_timeout: Duration,
    machine_type: Option<String>,
    accel: Option<Accel>,
    fds: Vec<PassedFd>,
    monitor_null: bool,
    qmp: bool,
    keep_temp_dir_on_failure: bool,
    default_args: bool,
    qmp_config: qmp_client::Config,
    console_config: qemu_console::ConsoleConfig,
    qtest: QtestSetup,
}

/// The user's arguments, in the order given: raw, or a typed command line
/// rendered at each launch.
#[derive(Debug)]
enum UserArgs {
    Raw(OsString),
    Typed(qemu_cmdline::Cmdline),
}

impl Default for MachineBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MachineBuilder {
    /// A builder for the QEMU of `$QEMUKIT_QEMU`, else `qemu-system-x86_64`
    /// from the `PATH`, with the accelerator of `$QEMUKIT_ACCEL`, else TCG
    /// (see [`Accel::from_env`]), QMP over a socketpair, no console and
    /// nothing else. A test suite thus runs against another QEMU, or KVM,
    /// without code changes; [`binary`](Self::binary) and
    /// [`accel`](Self::accel) override both.
    pub fn new() -> Self {
        Self::with_defaults(std::env::var_os("QEMUKIT_QEMU"), Accel::from_env())
    }

    /// The QEMU binary this builder launches ([`binary`](Self::binary), or
    /// the one [`new`](Self::new) took from `$QEMUKIT_QEMU` or the default).
    pub fn get_binary(&self) -> &Path {
        &self.binary
    }

    fn with_defaults(qemu: Option<OsString>, accel: Option<Accel>) -> Self {
        let binary = qemu
            .filter(|value| !value.is_empty())
            .map_or_else(|| PathBuf::from("qemu-system-x86_64"), PathBuf::from);
        Self {
            binary,
            args: Vec::new(),
            wrapper: Vec::new(),
            name: default_name(),
            base_temp_dir: None,
            next_temp_dir: Mutex::new(None),
            monitor: MonitorAddress::SocketPair,
            sock_dir: None,
            console: None,
            console_log: None,
            log_dir: None,
            qmp_timeout: DEFAULT_QMP_TIMEOUT,
            machine_type: None,
            accel,
            fds: Vec::new(),
            monitor_null: false,
            qmp: true,
            keep_temp_dir_on_failure: false,
            default_args: true,
            qmp_config: qmp_client::Config::default(),
            console_config: qemu_console::ConsoleConfig::default(),
            qtest: QtestSetup::default(),
        }
    }

    /// The QEMU binary: a path, or a name looked up in the `PATH`.
    pub fn binary(&mut self, binary: impl Into<PathBuf>) -> &mut Self {
        self.binary = binary.into();
        self
    }

    /// Appends one raw argument.
    pub fn arg(&mut self, arg: impl Into<OsString>) -> &mut Self {
        self.args.push(UserArgs::Raw(arg.into()));
        self
    }

    /// Appends raw arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args
            .extend(args.into_iter().map(|arg| UserArgs::Raw(arg.into())));
        self
    }

    /// Appends the arguments of a typed [`qemu_cmdline::Cmdline`] (its
    /// program is ignored: see [`binary`](Self::binary)). A value it
    /// cannot render makes [`launch`](Self::launch) fail with
    /// [`Error::Cmdline`].
    pub fn cmdline(&mut self, cmdline: &qemu_cmdline::Cmdline) -> &mut Self {
        self.args.push(UserArgs::Typed(cmdline.clone()));
        self
    }

    /// A command prefix QEMU runs under, e.g. `["strace", "-f"]` or
    /// `["taskset", "-c", "1"]`. The whole process group is killed at the
    /// end, and if this process dies, a guardian process kills it too (a
    /// wrapper's own children do not get the death signal; one that moves
    /// QEMU to another process group or session, as `setsid` does, escapes
    /// both).
    pub fn wrapper<I, S>(&mut self, wrapper: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper = wrapper.into_iter().map(Into::into).collect();
        self
    }

    /// A name for logs, the temporary directory and the log file
    /// (default: `qemu-<pid>-<n>`, chosen when the builder is made). Every
    /// launch of this builder has this name, as `QEMUMachine` keeps its
    /// name when relaunched; each launch still gets a fresh temporary
    /// directory and a log of its own run only.
    pub fn name(&mut self, name: impl Into<String>) -> &mut Self {
        self.name = name.into();
        self
    }

    /// The name every launch of this builder gets.
    pub fn get_name(&self) -> &str {
        &self.name
    }

    /// The private temporary directory (mode 0700) the next
    /// [`launch`](Self::launch) will use, created now under
    /// [`base_temp_dir`](Self::base_temp_dir) so that files (disk images,
    /// sockets) can be placed in it before launching, as with
    /// `QEMUMachine.temp_dir`.
    ///
    /// Calling it again returns the same directory until a launch takes it
    /// over: it is then that machine's [`Machine::temp_dir`] (its default
    /// `sock_dir` and, without `log_dir`, where its log goes), and is
    /// removed with the machine's other files. A later call makes a fresh
    /// directory for the launch after that, as a relaunched `QEMUMachine`
    /// gets a fresh one. If no launch takes it, dropping the builder removes
    /// it. Launches that find no directory made in advance create their own.
    ///
    /// # Errors
    ///
    /// [`Error::TempDir`] when the directory cannot be created.
    pub fn temp_dir(&self) -> Result<PathBuf, Error> {
        let mut next = self
            .next_temp_dir
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(dir) = next.as_ref() {
            return Ok(dir.path().to_path_buf());
        }
        let dir = create_temp_dir(&self.temp_dir_base(), &self.name)?;
        let path = dir.path().to_path_buf();
        *next = Some(dir);
        Ok(path)
    }

    fn temp_dir_base(&self) -> PathBuf {
        self.base_temp_dir
            .clone()
            .unwrap_or_else(std::env::temp_dir)
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

    /// The accelerator (default TCG: `Some(Accel::tcg())`); `None` adds no
    /// `-accel` option (QEMU picks, or the arguments say). See also
    /// [`Accel::from_env`].
    pub fn accel(&mut self, accel: impl Into<Option<Accel>>) -> &mut Self {
        self.accel = accel.into();
        self
    }

    /// Passes `fd` to QEMU as `-add-fd fd=N,set=FDSET[,opaque=…]`. The
    /// builder owns it; each launch passes its own duplicate (and closes
    /// its copy once QEMU has it).
    pub fn add_fd(&mut self, fd: OwnedFd, fdset: u32, opaque: Option<&str>) -> &mut Self {
        self.fds.push(PassedFd {
            fd: InheritFd::from(fd),
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

    /// Qtest mode, as `QEMUQtestMachine` (default off): QEMU gets
    /// `-chardev socket,id=qtest,fd=N -qtest chardev:qtest` on a socketpair,
    /// and [`Machine::qtest`] drives the other end.
    ///
    /// The accelerator stays the builder's (TCG by default): most QEMU
    /// builds, Debian's among them, have no qtest accelerator, and qtest
    /// works under TCG for memory, port I/O and IRQ interception; only
    /// `clock_step`/`clock_set` need `-accel qtest`
    /// ([`Error::NoQtestAccelerator`] without it), and asking a build that
    /// lacks it for `-accel qtest` fails the launch with
    /// [`Error::AccelUnavailable`]. Add `-S` to keep the CPU from racing the
    /// test. The chardev id `qtest` is taken.
    pub fn qtest(&mut self, enabled: bool) -> &mut Self {
        self.qtest.enabled = enabled;
        self
    }

    /// In qtest mode, also has QEMU log the qtest traffic (`-qtest-log`)
    /// beside its own log, as `NAME.qtest.log` ([`Machine::qtest_log_path`]);
    /// default off. QEMU buffers the file, so it is complete once QEMU has
    /// exited; like QEMU's log it is removed with the temporary directory
    /// unless [`log_dir`](Self::log_dir) puts it in a directory of yours.
    pub fn qtest_log(&mut self, enabled: bool) -> &mut Self {
        self.qtest.log = enabled;
        self
    }

    /// Settings of the qtest client (request timeout, line limit, IRQ
    /// event buffer).
    pub fn qtest_config(&mut self, config: QtestConfig) -> &mut Self {
        self.qtest.config = config;
        self
    }

    /// The guest's configuration as this builder would launch it: the
    /// command line without the wrapper, the binary and the QMP monitor,
    /// with every per-launch descriptor written as `fd=-1`. Two builders
    /// with equal configurations launch the same virtual hardware; a
    /// snapshot records it and [`restore_from`](Self::restore_from)
    /// compares it before QEMU starts.
    ///
    /// A [`cmdline`](Self::cmdline) that failed to render is left out here
    /// and reported by the launch.
    ///
    /// # Errors
    ///
    /// [`Error::Cmdline`] when a value cannot be rendered.
    pub fn configuration(&self) -> Result<Vec<OsString>, Error> {
        crate::argv::configuration(&self.settings(false)?).map_err(Error::Cmdline)
    }

    /// Starts QEMU and waits until it is ready: its QMP monitor greeted
    /// and negotiated, its console attached.
    ///
    /// The launch takes what it needs from the builder when called, so the
    /// builder can be changed or launched again right away.
    ///
    /// On failure nothing is left behind: QEMU is killed and reaped, the
    /// temporary directory removed. The error carries the command line,
    /// QEMU's exit status and the tail of its output.
    ///
    /// # Errors
    ///
    /// [`Error::Spawn`] when the binary cannot be run; [`Error::Launch`]
    /// when QEMU exits or does not become ready within the QMP timeout;
    /// [`Error::Cmdline`] for a value QEMU cannot represent; others for
    /// local failures.
    pub fn launch(&self) -> impl Future<Output = Result<Machine, Error>> + Send + 'static {
        let spec = self.spec();
        async move { launch::launch(spec?).await }
    }

    /// One launch's own copy of the settings: arguments rendered, `add_fd`
    /// descriptors duplicated, and the temporary directory made in advance
    /// by [`temp_dir`](Self::temp_dir), if any, taken over.
    pub(crate) fn spec(&self) -> Result<LaunchSpec, Error> {
        self.settings(true)
    }

    fn settings(&self, take_temp_dir: bool) -> Result<LaunchSpec, Error> {
        let mut user_args = Vec::new();
        for args in &self.args {
            match args {
                UserArgs::Raw(arg) => user_args.push(arg.clone()),
                UserArgs::Typed(cmdline) => {
                    user_args.extend(cmdline.to_args().map_err(Error::Cmdline)?)
                }
            }
        }
        let mut fds = Vec::with_capacity(self.fds.len());
        for passed in &self.fds {
            fds.push(PassedFd {
                fd: passed.fd.try_clone().map_err(|source| Error::Setup {
                    what: "duplicate a descriptor passed with add_fd",
                    source,
                })?,
                fdset: passed.fdset,
                opaque: passed.opaque.clone(),
            });
        }
        let console = self.console.clone().map(|console| {
            let mut config = self.console_config.clone();
            if let Some(path) = &self.console_log {
                config.log_file = Some(path.clone());
            }
            (console, config)
        });
        // Last, once nothing else can fail: the directory made in advance.
        let temp_dir = if take_temp_dir {
            self.next_temp_dir
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
        } else {
            None
        };
        Ok(LaunchSpec {
            name: self.name.clone(),
            binary: self.binary.clone(),
            wrapper: self.wrapper.clone(),
            user_args,
            default_args: self.default_args,
            machine_type: self.machine_type.clone(),
            accel: self.accel.clone(),
            monitor_null: self.monitor_null,
            monitor: self.qmp.then(|| self.monitor.clone()),
            console,
            fds,
            base_temp_dir: self.temp_dir_base(),
            temp_dir,
            log_dir: self.log_dir.clone(),
            sock_dir: self.sock_dir.clone(),
            qmp_timeout: self.qmp_timeout,
            qmp_config: self.qmp_config.clone(),
            keep_temp_dir_on_failure: self.keep_temp_dir_on_failure,
            qtest: self.qtest.enabled.then(|| self.qtest.clone()),
        })
    }
}

/// The private directory `<base>/qemu-machine-<name>-XXXXXX`.
fn create_temp_dir(base: &Path, name: &str) -> Result<PrivateDir, Error> {
    PrivateDir::create(base, &crate::launch::file_safe(name)).map_err(|source| Error::TempDir {
        base: base.to_path_buf(),
        source,
    })
}

/// `qemu-<pid>-<n>`, unique within this process.
fn default_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "qemu-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_launch_gets_the_builders_name_and_its_own_descriptors() -> Result<(), Error> {
        let mut builder = MachineBuilder::new();
        builder.add_fd(
            OwnedFd::from(tempfile::tempfile().map_err(|source| Error::Setup {
                what: "test",
                source,
            })?),
            1,
            None,
        );
        let (first, second) = (builder.spec()?, builder.spec()?);
        assert_eq!(first.name, second.name);
        assert_ne!(first.fds[0].fd.number(), second.fds[0].fd.number());
        assert_ne!(first.fds[0].fd.number(), builder.fds[0].fd.number());
        Ok(())
    }

    #[test]
    fn the_environment_chooses_the_binary_and_the_accelerator() {
        let builder = MachineBuilder::with_defaults(
            Some("/opt/qemu/bin/qemu-system-x86_64".into()),
            Accel::parse("kvm").ok(),
        );
        assert_eq!(
            builder.get_binary(),
            Path::new("/opt/qemu/bin/qemu-system-x86_64")
        );
        assert_eq!(builder.accel, Some(Accel::kvm()));
        let unset = MachineBuilder::with_defaults(Some("".into()), Some(Accel::tcg()));
        assert_eq!(unset.get_binary(), Path::new("qemu-system-x86_64"));
        let mut chosen = MachineBuilder::with_defaults(None, None);
        chosen
            .binary("/usr/bin/qemu-system-x86_64")
            .accel(Accel::tcg());
        assert_eq!(
            chosen.get_binary(),
            Path::new("/usr/bin/qemu-system-x86_64")
        );
        assert_eq!(chosen.accel, Some(Accel::tcg()));
    }

    #[test]
    fn typed_arguments_are_checked_at_each_launch() {
        let mut cmdline = qemu_cmdline::Cmdline::new();
        cmdline.append("quiet\ninit=/bin/sh");
        let mut builder = MachineBuilder::new();
        builder.arg("-S").cmdline(&cmdline);
        for _ in 0..2 {
            let spec = builder.spec();
            assert!(matches!(spec, Err(Error::Cmdline(_))), "{spec:?}");
        }
    }
}
