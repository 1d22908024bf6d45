//! `launch`: a spec in, a ready machine out. The stages run top to bottom:
//! files, then the monitor and console ends, the argv, the spawn, and the
//! QMP handshake raced against QEMU's exit. Each resource is guarded from
//! the moment it exists, so an error or a cancelled launch leaves nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_cmdline::InheritFd;
use tracing::Instrument;

use crate::argv;
use crate::error::{Error, LaunchFailure};
use crate::failure;
use crate::files::{MachineFiles, Prepared};
use crate::machine::Machine;
use crate::monitor::MonitorEnd;
use crate::process::{self, ChildGuard, SpawnSpec};
use crate::qtest::mode::{self as qtest_mode, QtestEnd};
use crate::spec::LaunchSpec;

pub(crate) async fn launch(spec: LaunchSpec) -> Result<Machine, Error> {
    let span = tracing::info_span!("machine", name = %spec.name);
    launch_in(spec, span.clone()).instrument(span).await
}

async fn launch_in(mut spec: LaunchSpec, span: tracing::Span) -> Result<Machine, Error> {
    // 1. The first guard: a private directory, and the log in it.
    let Prepared {
        files,
        log,
        temp_dir,
    } = MachineFiles::prepare(
        spec.temp_dir.take(),
        &spec.base_temp_dir,
        &file_safe(&spec.name),
        spec.log_dir.as_deref(),
        spec.keep_temp_dir_on_failure,
    )?;

    // 2. Our ends of the monitor and the console; QEMU's ends to inherit.
    let mut monitor = match &spec.monitor {
        Some(address) => {
            let sock_dir = spec.sock_dir.as_deref().unwrap_or(&temp_dir);
            Some(MonitorEnd::prepare(address, sock_dir).await?)
        }
        None => None,
    };
    let (console, console_end) = match &spec.console {
        Some((_, config)) => {
            let (console, end) =
                qemu_console::Console::socketpair(config.clone()).map_err(Error::Console)?;
            (Some(console), Some(end))
        }
        None => None.unzip(),
    };
    let mut qtest = match &spec.qtest {
        Some(setup) => {
            // Beside QEMU's log (`NAME.log` → `NAME.qtest.log`): kept with
            // it in a `log_dir` of the user's, and as unique as it.
            let log = files.log_path().with_extension("qtest.log");
            Some(QtestEnd::prepare(setup, log)?)
        }
        None => None,
    };
    let qtest_log = qtest
        .as_ref()
        .and_then(|end| end.log_path().map(Path::to_path_buf));

    // 3. The command line names every descriptor QEMU inherits.
    let configuration = argv::configuration(&spec).map_err(Error::Cmdline)?;
    let argv = argv::render(
        &spec,
        monitor.as_ref(),
        console_end.as_ref(),
        qtest.as_ref(),
    )
    .map_err(Error::Cmdline)?;
    let command_line = qemu_cmdline::shell_quote(&argv);
    tracing::debug!(command = %command_line, "launching QEMU");

    // 4. The second guard: from here on, dropping the child kills QEMU.
    let inherit: Vec<InheritFd> = monitor
        .as_mut()
        .and_then(MonitorEnd::take_inherited)
        .into_iter()
        .chain(console_end)
        .chain(qtest.as_mut().and_then(QtestEnd::take_inherited))
        .chain(spec.fds.drain(..).map(|passed| passed.fd))
        .collect();
    let spawn = SpawnSpec {
        argv: argv.clone(),
        inherit,
        log,
        wrapped: !spec.wrapper.is_empty(),
    };
    let spawned = process::spawn(spawn).await.map_err(|source| Error::Spawn {
        program: argv.first().map(PathBuf::from).unwrap_or_default(),
        command: command_line.clone(),
        source,
    })?;
    let child = ChildGuard::new(spawned).map_err(|source| Error::Setup {
        what: "watch the QEMU process (pidfd)",
        source,
    })?;
    let mut machine = Machine {
        name: spec.name,
        span,
        argv,
        configuration,
        command_line,
        qmp: None,
        monitor_address: monitor.as_ref().map(MonitorEnd::address),
        console,
        qtest: None,
        qtest_log,
        child,
        files,
    };
    tracing::debug!(pid = machine.pid(), "QEMU started");
    // QEMU's end is closed here, so QEMU's exit is EOF on ours: every qtest
    // waiter fails at once. (On error, dropping the machine kills QEMU.)
    machine.qtest = qtest.map(QtestEnd::connect).transpose()?;

    // 5. Ready once QMP greeted and negotiated, unless QEMU exits first.
    if let Some(monitor) = monitor {
        match handshake(&machine, monitor, spec.qmp_timeout, spec.qmp_config).await {
            Ok(client) => machine.qmp = Some(client),
            Err(reason) => {
                let error = failure::report(machine, reason).await;
                return Err(qtest_mode::explain_missing_accel(error));
            }
        }
    }
    tracing::info!(pid = machine.pid(), "QEMU is ready");
    Ok(machine)
}

/// Connects QMP under `timeout`, raced against QEMU's exit.
async fn handshake(
    machine: &Machine,
    monitor: MonitorEnd,
    timeout: Duration,
    mut config: qmp_client::Config,
) -> Result<qmp_client::Client, LaunchFailure> {
    // One deadline for accepting, greeting and negotiating: the one below.
    config.connect_timeout = None;
    config.handshake_timeout = None;
    tokio::select! {
        connected = tokio::time::timeout(timeout, monitor.connect(&config)) => {
            connected.unwrap_or(Err(LaunchFailure::Timeout(timeout)))
        }
        exit = machine.child.wait_exit() => Err(match exit {
            Ok(_exit) => LaunchFailure::Exited,
            Err(error) => LaunchFailure::Io(error),
        }),
    }
}

/// The name, with anything but `[A-Za-z0-9._-]` replaced, for file names.
pub(crate) fn file_safe(name: &str) -> String {
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
    }
}
