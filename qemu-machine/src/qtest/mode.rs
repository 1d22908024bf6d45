//! The qtest machine mode (`QEMUQtestMachine`): a socketpair whose one end
//! QEMU inherits as its `-qtest` chardev and whose other end the machine's
//! [`QtestClient`] drives, and an optional `-qtest-log`.

use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use qemu_cmdline::{Chardev, Cmdline, InheritFd};

use crate::Error;
use crate::qtest::{QtestClient, QtestConfig};

/// The qtest chardev's id. QEMU 7.2 looks the qtest chardev up by this
/// name whatever `-qtest chardev:ID` says (10.0 follows the ID), so it
/// must be `qtest`, as `QEMUQtestMachine` names it too.
const QTEST_ID: &str = "qtest";

/// What the builder keeps for qtest mode.
#[derive(Debug, Clone, Default)]
pub(crate) struct QtestSetup {
    pub(crate) enabled: bool,
    pub(crate) config: QtestConfig,
    /// Whether to add `-qtest-log` (beside QEMU's log).
    pub(crate) log: bool,
}

/// One launch's qtest socket: QEMU's end (until the spawn takes it), ours,
/// and the log QEMU writes.
#[derive(Debug)]
pub(crate) struct QtestEnd {
    ours: std::os::unix::net::UnixStream,
    theirs: Option<InheritFd>,
    log: Option<PathBuf>,
    config: QtestConfig,
}

impl QtestEnd {
    /// Makes the socketpair; the log, if any, is `log`.
    pub(crate) fn prepare(setup: &QtestSetup, log: PathBuf) -> Result<Self, Error> {
        let (ours, theirs) =
            std::os::unix::net::UnixStream::pair().map_err(|source| Error::Setup {
                what: "create the qtest socketpair",
                source,
            })?;
        Ok(Self {
            ours,
            theirs: Some(InheritFd::from(theirs)),
            log: setup.log.then_some(log),
            config: setup.config.clone(),
        })
    }

    /// The number QEMU sees its end under.
    pub(crate) fn number(&self) -> Option<RawFd> {
        self.theirs.as_ref().map(InheritFd::number)
    }

    /// QEMU's end, for the spawn to pass on (and close here after).
    pub(crate) fn take_inherited(&mut self) -> Option<InheritFd> {
        self.theirs.take()
    }

    /// The `-qtest-log` file, if one was asked for.
    pub(crate) fn log_path(&self) -> Option<&Path> {
        self.log.as_deref()
    }

    /// Starts the client on our end. QEMU reads the socket once it has set
    /// up the chardev; requests sent before wait in the socket's buffer.
    pub(crate) fn connect(self) -> Result<QtestClient, Error> {
        self.ours
            .set_nonblocking(true)
            .map_err(|source| Error::Setup {
                what: "make the qtest socket non-blocking",
                source,
            })?;
        let stream =
            tokio::net::UnixStream::from_std(self.ours).map_err(|source| Error::Setup {
                what: "register the qtest socket with the runtime",
                source,
            })?;
        QtestClient::new(stream, self.config)
    }
}

/// `-chardev socket,id=qtest,fd=N -qtest chardev:qtest [-qtest-log FILE]`.
pub(crate) fn add_args(cmdline: &mut Cmdline, fd: RawFd, log: Option<&Path>) {
    cmdline
        .chardev(Chardev::socket_fd(QTEST_ID, fd))
        .arg("-qtest")
        .arg(format!("chardev:{QTEST_ID}"));
    if let Some(log) = log {
        cmdline.arg("-qtest-log").arg(log);
    }
}

/// A launch that failed because QEMU lacks the accelerator it was given
/// (`-accel qtest` on Debian's builds): the typed error that says so.
pub(crate) fn explain_missing_accel(error: Error) -> Error {
    let Error::Launch(launch) = error else {
        return error;
    };
    match missing_accel(launch.log()) {
        Some(accel) => Error::AccelUnavailable { accel, launch },
        None => Error::Launch(launch),
    }
}

/// The accelerator in QEMU's `invalid accelerator NAME` (7.2 and 10.0 say
/// it so for `-accel NAME` and `-machine accel=NAME` alike).
fn missing_accel(output: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let (_, after) = line.split_once("invalid accelerator ")?;
        let name = after.split_whitespace().next()?;
        Some(name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_accelerator_is_read_from_qemus_message() {
        let said = "qemu-system-x86_64: -accel qtest: invalid accelerator qtest\n";
        assert_eq!(missing_accel(said).as_deref(), Some("qtest"));
        let machine = "qemu-system-x86_64: invalid accelerator hvf";
        assert_eq!(missing_accel(machine).as_deref(), Some("hvf"));
        assert_eq!(missing_accel("qemu-system-x86_64: -m foo: bad size"), None);
    }

    #[test]
    fn the_arguments_name_the_chardev_qtest() -> Result<(), qemu_cmdline::Error> {
        let mut cmdline = Cmdline::new();
        add_args(&mut cmdline, 7, Some(Path::new("/tmp/x/qtest.log")));
        let argv: Vec<String> = cmdline
            .to_args()?
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "-chardev",
                "socket,id=qtest,fd=7",
                "-qtest",
                "chardev:qtest",
                "-qtest-log",
                "/tmp/x/qtest.log"
            ]
        );
        Ok(())
    }
}
