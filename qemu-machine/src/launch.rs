//! `launch`: guards first, then spawn, then wait for readiness raced
//! against QEMU's exit.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracing::Instrument;

use crate::argv;
use crate::builder::MachineBuilder;
use crate::error::{Error, LaunchError, LaunchFailure};
use crate::lifecycle;
use crate::logfile;
use crate::machine::{Files, Machine};
use crate::monitor::MonitorEnd;
use crate::process::{self, ChildGuard, SpawnSpec};
use crate::qmp_link;
use crate::tempdir::PrivateDir;

/// After the QMP connection broke during the launch, how long QEMU gets to
/// exit by itself so that the error can show its real exit status.
const EXIT_GRACE: Duration = Duration::from_secs(2);

pub(crate) async fn launch(builder: &mut MachineBuilder) -> Result<Machine, Error> {
    let name = builder.name.clone().unwrap_or_else(default_name);
    let span = tracing::info_span!("machine", name = %name);
    launch_named(builder, name, span.clone())
        .instrument(span)
        .await
}

async fn launch_named(
    builder: &mut MachineBuilder,
    name: String,
    span: tracing::Span,
) -> Result<Machine, Error> {
    let file_name = file_safe(&name);
    let base = builder
        .base_temp_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    // The first guard: everything below lives in (or is listed with) it.
    let temp_dir = PrivateDir::create(&base, &file_name).map_err(|source| Error::TempDir {
        base: base.clone(),
        source,
    })?;
    let log_dir = builder
        .log_dir
        .clone()
        .unwrap_or_else(|| temp_dir.path().to_path_buf());
    let log_path = log_dir.join(format!("{file_name}.log"));
    let log = File::create(&log_path).map_err(|source| Error::LogFile {
        path: log_path.clone(),
        source,
    })?;
    let sock_dir = builder
        .sock_dir
        .clone()
        .unwrap_or_else(|| temp_dir.path().to_path_buf());
    let mut files = Files {
        temp_dir: Some(temp_dir),
        log_path,
        log: None,
        socket_path: None,
    };

    let mut monitor = match builder.qmp {
        true => Some(
            MonitorEnd::prepare(&builder.monitor, &sock_dir)
                .await
                .map_err(|source| Error::Setup {
                    what: "create the QMP monitor socket",
                    source,
                })?,
        ),
        false => None,
    };
    files.socket_path = monitor.as_ref().and_then(MonitorEnd::socket_path);
    let console_pair = match builder.console {
        Some(_) => Some(
            std::os::unix::net::UnixStream::pair().map_err(|source| Error::Setup {
                what: "create the console socketpair",
                source,
            })?,
        ),
        None => None,
    };
    let passed: Vec<(OwnedFd, u32, Option<String>)> = std::mem::take(&mut builder.fds)
        .into_iter()
        .map(|passed| (passed.fd, passed.fdset, passed.opaque))
        .collect();
    let passed_args: Vec<(RawFd, u32, Option<String>)> = passed
        .iter()
        .map(|(fd, set, opaque)| (fd.as_raw_fd(), *set, opaque.clone()))
        .collect();
    let console_fd = console_pair.as_ref().map(|(_, theirs)| theirs.as_raw_fd());
    let chardev = monitor.as_ref().map(MonitorEnd::chardev);
    let argv = argv::qemu_argv(builder, chardev.as_ref(), console_fd, &passed_args)
        .map_err(Error::Cmdline)?;
    let pass_fds: Vec<RawFd> = monitor
        .as_ref()
        .and_then(MonitorEnd::child_fd)
        .into_iter()
        .chain(console_fd)
        .chain(passed_args.iter().map(|(fd, _, _)| *fd))
        .collect();
    let command_line = argv::shell_line(&argv);
    tracing::debug!(command = %command_line, "launching QEMU");

    let spawn = SpawnSpec {
        argv: argv.clone(),
        pass_fds,
        log,
    };
    let spawned = process::spawn(spawn).await.map_err(|source| Error::Spawn {
        command: command_line.clone(),
        source,
    })?;
    // The second guard: from here on, dropping `machine` kills QEMU.
    let child = ChildGuard::new(spawned).map_err(|source| Error::Setup {
        what: "watch the QEMU process (pidfd)",
        source,
    })?;
    // QEMU holds its copies now; ours must go, or QEMU's exit is no EOF.
    drop(passed);
    if let Some(monitor) = monitor.as_mut() {
        monitor.close_child_end();
    }
    let console_ours = console_pair.map(|(ours, _theirs)| ours);
    let mut machine = Machine {
        name,
        span,
        argv,
        command_line,
        qmp: None,
        console: None,
        child,
        files: Mutex::new(files),
        keep_temp_dir_on_failure: builder.keep_temp_dir_on_failure,
    };
    tracing::debug!(pid = machine.pid(), "QEMU started");

    // Attach the console before waiting on QMP: QEMU may print (and block
    // on a full socket) before its monitor is ready.
    if let Some(ours) = console_ours {
        let mut config = builder.console_config.clone();
        if let Some(path) = &builder.console_log {
            config.log_file = Some(path.clone());
        }
        let attached = tokio_stream(ours)
            .map_err(LaunchFailure::Io)
            .and_then(|stream| {
                qemu_console::Console::attach(stream, config).map_err(LaunchFailure::Console)
            });
        match attached {
            Ok(console) => machine.console = Some(console),
            Err(reason) => return Err(launch_failed(machine, reason).await),
        }
    }

    if let Some(monitor) = monitor {
        let timeout = builder.qmp_timeout;
        let mut config = builder.qmp_config.clone();
        config.handshake_timeout = Some(timeout);
        let ready = tokio::select! {
            connected = tokio::time::timeout(timeout, qmp_link::connect(monitor, &config)) => {
                match connected {
                    Ok(result) => result,
                    Err(_elapsed) => Err(LaunchFailure::Timeout(timeout)),
                }
            }
            exit = machine.child.wait_exit() => Err(match exit {
                Ok(_exit) => LaunchFailure::Exited,
                Err(error) => LaunchFailure::Io(error),
            }),
        };
        match ready {
            Ok(client) => machine.qmp = Some(client),
            Err(reason) => return Err(launch_failed(machine, reason).await),
        }
    }
    tracing::info!(pid = machine.pid(), "QEMU is ready");
    Ok(machine)
}

/// Builds the launch error: QEMU's own exit status if it is exiting anyway,
/// else it is killed; then the log tail; then cleanup.
async fn launch_failed(machine: Machine, mut reason: LaunchFailure) -> Error {
    let grace = match reason {
        LaunchFailure::Timeout(_) => Duration::ZERO,
        _ => EXIT_GRACE,
    };
    let own_exit = match tokio::time::timeout(grace, machine.child.wait_exit()).await {
        Ok(Ok(exit)) => Some(exit),
        _ => None,
    };
    if own_exit.is_some() && matches!(reason, LaunchFailure::Qmp(_)) {
        // The handshake saw EOF because QEMU exited: say the latter.
        reason = LaunchFailure::Exited;
    }
    if own_exit.is_none() {
        if let Err(error) = lifecycle::kill_and_reap(&machine).await {
            tracing::warn!(%error, "could not kill QEMU after a failed launch");
        }
    }
    let output_tail = logfile::log_tail(&machine.log_path());
    let kept_temp_dir = machine.finish(true);
    let error = LaunchError {
        command: machine.command_line.clone(),
        reason,
        exit: own_exit,
        output_tail,
        kept_temp_dir,
    };
    tracing::warn!(%error, "launch failed");
    Error::Launch(Box::new(error))
}

fn tokio_stream(stream: std::os::unix::net::UnixStream) -> std::io::Result<tokio::net::UnixStream> {
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
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

/// The name, with anything but `[A-Za-z0-9._-]` replaced, for file names.
fn file_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if safe.is_empty() {
        "qemu".to_owned()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_file_safe() {
        assert_eq!(file_safe("web/1 (test)"), "web_1__test_");
        assert_eq!(file_safe(""), "qemu");
        assert_ne!(default_name(), default_name());
    }
}
