//! qemu-machine against the real QEMU: launch, shutdown, failure, signals,
//! parent death, leaks, and the real guest.

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use qemu_machine::{
    ConsoleSpec, Error, LaunchFailure, Machine, MachineBuilder, MonitorAddress, ShutdownCause,
};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::time::timeout;

const SHUTDOWN: Duration = Duration::from_secs(10);

/// A `-machine none` builder whose temporary directory lives in `base`.
pub(crate) fn none_machine(base: &Path) -> MachineBuilder {
    let mut builder = MachineBuilder::new();
    builder
        .binary(qemukit_tests::qemu_binary())
        .machine_type("none")
        .base_temp_dir(base);
    builder
}

pub(crate) fn entries(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(list) => list
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .collect(),
        Err(error) => panic!("cannot list {}: {error}", dir.display()),
    }
}

/// Fails, listing them, when `dir` holds anything.
pub(crate) fn assert_no_entries(dir: &Path) {
    let left = entries(dir);
    assert!(left.is_empty(), "files left in {}: {left:?}", dir.display());
}

/// The pids of processes whose command line contains `marker`.
pub(crate) fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(proc) = std::fs::read_dir("/proc") else {
        panic!("/proc is not readable");
    };
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            if String::from_utf8_lossy(&cmdline).contains(marker) {
                pids.push(pid);
            }
        }
    }
    pids
}

pub(crate) fn unique_marker(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("qemukit-{what}-{}-{nanos}", std::process::id())
}

pub(crate) fn signal(pid: u32, signal: rustix::process::Signal) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid is not 0");
    rustix::process::kill_process(pid, signal).expect("kill failed");
}

/// Watches any process (not only our children) for its exit.
pub(crate) fn watch_exit(pid: u32) -> AsyncFd<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("pid is not 0");
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .expect("pidfd_open failed");
    // An OwnedFd cannot change under the AsyncFd, so the deprecated
    // constructor is sound here.
    #[allow(deprecated)]
    let watch =
        AsyncFd::with_interest(pidfd, tokio::io::Interest::READABLE).expect("register pidfd");
    watch
}

/// Waits up to `limit` for the process behind `watch` to end; `what` says
/// what it means when it does not.
pub(crate) async fn expect_exit(watch: AsyncFd<OwnedFd>, limit: Duration, what: &str) {
    timeout(limit, watch.readable())
        .await
        .unwrap_or_else(|_| panic!("{what}"))
        .expect("pidfd poll failed")
        .retain_ready();
}

/// Checks QEMU's first fd set: its id and its first descriptor's note.
pub(crate) async fn assert_first_fdset(machine: &Machine, id: u32, opaque: &str) {
    let fdsets = machine
        .qmp()
        .execute_raw("query-fdsets", None)
        .await
        .expect("query-fdsets failed");
    assert_eq!(fdsets[0]["fdset-id"], id, "{fdsets}");
    assert_eq!(fdsets[0]["fds"][0]["opaque"], opaque, "{fdsets}");
}

pub(crate) async fn query_status(machine: &Machine) -> String {
    let status = machine
        .qmp()
        .execute_raw("query-status", None)
        .await
        .expect("query-status failed");
    status["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn launch_query_and_shutdown() {
    let base = tempfile::tempdir().expect("tempdir");
    let machine = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    let temp_dir = machine.temp_dir().expect("a temp dir while running");
    assert!(temp_dir.starts_with(base.path()));
    let mode = std::fs::metadata(&temp_dir).expect("stat").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o700
    );
    assert!(machine.is_running());
    assert_eq!(query_status(&machine).await, "running");
    assert!(machine.argv().iter().any(|arg| arg == "none"));

    let exit = machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
    assert!(exit.success(), "{exit}");
    assert!(!machine.is_running());
    assert_eq!(machine.exit_info(), Some(exit));
    assert_eq!(machine.exit_code(), Some(0));
    assert!(
        entries(base.path()).is_empty(),
        "files left: {:?}",
        entries(base.path())
    );
    // Idempotent, and every other ending now reports the same exit.
    assert_eq!(
        machine.shutdown(SHUTDOWN).await.expect("second shutdown"),
        exit
    );
    assert_eq!(machine.kill().await.expect("kill after shutdown"), exit);
    assert_eq!(
        machine.wait(SHUTDOWN).await.expect("wait after shutdown"),
        exit
    );
}

#[tokio::test]
async fn twenty_machines_at_once() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut launches = tokio::task::JoinSet::new();
    for index in 0..20 {
        let mut builder = none_machine(base.path());
        builder.name(format!("concurrent-{index}"));
        launches.spawn(async move { builder.launch().await });
    }
    let mut machines = Vec::new();
    while let Some(launched) = launches.join_next().await {
        machines.push(launched.expect("task panicked").expect("launch failed"));
    }
    assert_eq!(machines.len(), 20);
    let mut pids: Vec<u32> = machines.iter().map(Machine::pid).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 20);
    let mut shutdowns = tokio::task::JoinSet::new();
    for machine in machines {
        shutdowns.spawn(async move {
            assert_eq!(query_status(&machine).await, "running");
            machine.shutdown(SHUTDOWN).await
        });
    }
    while let Some(shutdown) = shutdowns.join_next().await {
        let exit = shutdown.expect("task panicked").expect("shutdown failed");
        assert!(exit.success(), "{exit}");
    }
    assert!(entries(base.path()).is_empty());
}

#[tokio::test]
async fn bad_argument_fails_the_launch_and_leaves_nothing() {
    let base = tempfile::tempdir().expect("tempdir");
    let marker = unique_marker("bad-arg");
    let mut builder = none_machine(base.path());
    builder.args(["-name", &marker, "-device", "no-such-device"]);
    let error = builder.launch().await.expect_err("the launch must fail");
    let Error::Launch(launch) = &error else {
        panic!("expected a launch error, got {error:?}");
    };
    assert!(matches!(launch.reason(), LaunchFailure::Exited), "{error}");
    assert_eq!(
        launch.exit().and_then(|exit| exit.code()),
        Some(1),
        "{error}"
    );
    assert!(
        launch.command().contains("-device no-such-device"),
        "{error}"
    );
    assert!(
        launch
            .output_tail()
            .contains("'no-such-device' is not a valid device model name"),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("exited with code 1") && message.contains("not a valid device"),
        "{message}"
    );
    assert!(
        entries(base.path()).is_empty(),
        "files left: {:?}",
        entries(base.path())
    );
    assert!(processes_with(&marker).is_empty());
    // The builder can launch again, and fails again the same way.
    let again = builder.launch().await.expect_err("the relaunch must fail");
    assert!(
        matches!(&again, Error::Launch(launch) if launch.exit().and_then(|exit| exit.code()) == Some(1)),
        "{again:?}"
    );
}

#[tokio::test]
async fn sigkill_from_outside_is_reported_and_cleaned_up() {
    let base = tempfile::tempdir().expect("tempdir");
    let machine = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    // Stop QEMU so that a command stays pending, then kill it under that
    // command: the command must fail at once, not time out.
    signal(machine.pid(), rustix::process::Signal::STOP);
    let client = machine.qmp().clone();
    let pending = tokio::spawn(async move { client.execute_raw("query-status", None).await });
    signal(machine.pid(), rustix::process::Signal::KILL);
    let failed = timeout(Duration::from_secs(5), pending)
        .await
        .expect("the pending command did not fail fast")
        .expect("task panicked");
    assert!(
        matches!(failed, Err(qmp_client::Error::Disconnected(_))),
        "the pending command: {failed:?}"
    );

    let exit = machine.wait(SHUTDOWN).await.expect("wait failed");
    assert_eq!(exit.signal(), Some(9));
    assert!(exit.killed_unexpectedly(), "{exit}");
    let after = timeout(
        Duration::from_secs(5),
        machine.qmp().execute_raw("query-status", None),
    )
    .await
    .expect("a command after the death did not fail fast");
    assert!(
        matches!(after, Err(qmp_client::Error::Disconnected(_))),
        "a command after the death: {after:?}"
    );
    assert_eq!(
        machine
            .shutdown(SHUTDOWN)
            .await
            .expect("shutdown after death"),
        exit
    );
    assert!(entries(base.path()).is_empty());
}

#[tokio::test]
async fn stopped_qemu_is_killed_after_the_shutdown_timeout() {
    let base = tempfile::tempdir().expect("tempdir");
    let marker = unique_marker("stopped");
    let mut builder = none_machine(base.path());
    builder.args(["-name", &marker]);
    let machine = builder.launch().await.expect("launch failed");
    signal(machine.pid(), rustix::process::Signal::STOP);
    let error = machine
        .shutdown(Duration::from_millis(500))
        .await
        .expect_err("a stopped QEMU cannot quit");
    let Error::AbnormalShutdown {
        cause,
        exit,
        kept_temp_dir,
    } = &error
    else {
        panic!("expected an abnormal shutdown, got {error:?}");
    };
    assert!(matches!(cause, ShutdownCause::Timeout(_)), "{error}");
    assert_eq!(exit.signal(), Some(9));
    assert!(exit.signal_sent_by_us(), "{exit:?}");
    assert_eq!(kept_temp_dir, &None);
    assert!(entries(base.path()).is_empty());
    assert!(processes_with(&marker).is_empty());
    assert_eq!(machine.exit_info(), Some(*exit));
}

#[tokio::test]
async fn keep_temp_dir_on_failure_keeps_the_log() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    builder
        .keep_temp_dir_on_failure(true)
        .args(["-device", "no-such-device"]);
    let error = builder.launch().await.expect_err("the launch must fail");
    let Error::Launch(launch) = &error else {
        panic!("expected a launch error, got {error:?}");
    };
    let kept = launch.kept_temp_dir().expect("the temp dir is kept");
    assert!(kept.starts_with(base.path()));
    let logs: Vec<PathBuf> = entries(kept);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = std::fs::read_to_string(&logs[0]).expect("read the kept log");
    assert!(log.contains("no-such-device"), "{log}");
    assert!(error.to_string().contains("kept at"), "{error}");
}

#[tokio::test]
async fn machine_outlives_the_thread_that_launched_it() {
    let base = tempfile::tempdir().expect("tempdir");
    let builder = none_machine(base.path());
    let runtime = tokio::runtime::Handle::current();
    // The launching thread ends before the machine is used: the death
    // signal must not fire (QEMU is forked from the spawner thread).
    let (launched, machine) = tokio::sync::oneshot::channel();
    let thread = std::thread::spawn(move || {
        let _sent = launched.send(runtime.block_on(builder.launch()));
    });
    let machine = machine
        .await
        .expect("launching thread died")
        .expect("launch failed");
    thread.join().expect("launching thread panicked");
    assert_eq!(query_status(&machine).await, "running");
    assert!(machine.is_running());
    let exit = machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
    assert!(exit.success(), "{exit}");
}

#[tokio::test]
async fn dropping_a_machine_kills_qemu_and_removes_its_files() {
    let base = tempfile::tempdir().expect("tempdir");
    let machine = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    let watch = watch_exit(machine.pid());
    drop(machine);
    expect_exit(watch, Duration::from_secs(5), "QEMU survived its machine").await;
    assert!(entries(base.path()).is_empty());
}

#[tokio::test]
async fn wrapper_runs_qemu_and_log_keeps_its_output() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    // A wrapper that prints a line, then runs QEMU in its place.
    builder.wrapper(["sh", "-c", "echo wrapped-by-sh >&2; exec \"$0\" \"$@\""]);
    let machine = builder.launch().await.expect("launch failed");
    assert_eq!(machine.argv()[0], "sh");
    assert_eq!(query_status(&machine).await, "running");
    assert!(machine.log().contains("wrapped-by-sh"), "{}", machine.log());
    machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
    assert!(entries(base.path()).is_empty());
    // The log outlives the removed log file.
    assert!(machine.log().contains("wrapped-by-sh"), "{}", machine.log());
}

#[tokio::test]
async fn typed_cmdline_arguments_reach_qemu() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut cmdline = qemu_cmdline::Cmdline::new();
    // A comma in the name must arrive intact (qemu-cmdline doubles it).
    cmdline.name(qemu_cmdline::Name::new("typed,name"));
    let mut builder = none_machine(base.path());
    builder.cmdline(&cmdline);
    let machine = builder.launch().await.expect("launch failed");
    let name = machine
        .qmp()
        .execute_raw("query-name", None)
        .await
        .expect("query-name failed");
    assert_eq!(name["name"], "typed,name");
    machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
}

#[tokio::test]
async fn monitor_on_a_unix_path_and_on_tcp() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut unix = none_machine(base.path());
    unix.monitor(MonitorAddress::Unix("qmp.sock".into()));
    let mut tcp = none_machine(base.path());
    tcp.monitor(MonitorAddress::Tcp("127.0.0.1:0".parse().expect("address")));
    for builder in [unix, tcp] {
        let machine = builder.launch().await.expect("launch failed");
        assert_eq!(query_status(&machine).await, "running");
        let exit = machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
        assert!(exit.success(), "{exit}");
        assert!(
            entries(base.path()).is_empty(),
            "{:?}",
            entries(base.path())
        );
    }
}

#[tokio::test]
async fn events_wait_finds_the_first_of_several_events() {
    let base = tempfile::tempdir().expect("tempdir");
    let machine = none_machine(base.path())
        .launch()
        .await
        .expect("launch failed");
    machine
        .qmp()
        .execute_raw("stop", None)
        .await
        .expect("stop failed");
    // STOP arrived before the wait: it is found in the recent events.
    let event = machine
        .events_wait(&[("RESUME", None), ("STOP", None)], Duration::from_secs(10))
        .await
        .expect("no event");
    assert_eq!(event.name, "STOP");
    let none = machine
        .events_wait(
            &[("RESUME", None), ("RESET", None)],
            Duration::from_millis(100),
        )
        .await
        .expect_err("nothing resumed or reset");
    assert!(none.to_string().contains("RESUME or RESET"), "{none}");
    machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
}

#[tokio::test]
async fn descriptors_reach_qemu_on_the_command_line_and_over_qmp() {
    let base = tempfile::tempdir().expect("tempdir");
    let file = tempfile::tempfile().expect("tempfile");
    let mut builder = none_machine(base.path());
    builder.add_fd(OwnedFd::from(file), 7, Some("opaque,text"));
    let machine = builder.launch().await.expect("launch failed");
    assert_first_fdset(&machine, 7, "opaque,text").await;
    // SCM_RIGHTS over the QMP socketpair.
    let other = tempfile::tempfile().expect("tempfile");
    machine
        .qmp()
        .getfd("passed", &other)
        .await
        .expect("getfd failed");
    machine
        .qmp()
        .closefd("passed")
        .await
        .expect("closefd failed");
    machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
}

#[tokio::test]
async fn without_qmp_shutdown_uses_sigterm() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut builder = none_machine(base.path());
    builder.qmp(false);
    let machine = builder.launch().await.expect("launch failed");
    assert!(matches!(machine.try_qmp(), Err(Error::QmpDisabled)));
    let exit = machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
    // QEMU exits cleanly on SIGTERM once its handler is installed; a
    // SIGTERM that comes earlier kills it. Either way we sent it.
    let clean = exit.success() && machine.log().contains("terminating on signal 15");
    let early = exit.signal() == Some(15) && exit.signal_sent_by_us();
    assert!(clean || early, "{exit}: {}", machine.log());
    assert!(!exit.killed_unexpectedly());
    assert!(entries(base.path()).is_empty());
}

/// Waits (bounded) until no process has `marker` on its command line: a
/// SIGKILLed process takes a moment to die and cannot be watched by pid
/// when its pid was never seen.
async fn wait_until_gone(marker: &str, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    loop {
        tick.tick().await;
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "QEMU {left:?} outlived a cancelled launch"
        );
    }
}

#[tokio::test]
async fn a_cancelled_launch_leaves_nothing() {
    let base = tempfile::tempdir().expect("tempdir");
    // Give up at different points of the launch: before the spawn, while
    // QEMU starts, during the greeting.
    for (round, micros) in [0u64, 500, 2_000, 8_000, 20_000].into_iter().enumerate() {
        let marker = unique_marker(&format!("cancel-{round}"));
        let mut builder = none_machine(base.path());
        builder.args(["-name", &marker]);
        let launch = timeout(Duration::from_micros(micros), builder.launch()).await;
        if let Ok(launched) = launch {
            // Launched before the deadline: shut it down the normal way.
            let machine = launched.expect("launch failed");
            machine.shutdown(SHUTDOWN).await.expect("shutdown failed");
        }
        assert!(
            entries(base.path()).is_empty(),
            "round {round}: {:?}",
            entries(base.path())
        );
        wait_until_gone(&marker, Duration::from_secs(5)).await;
    }
}

/// Builds this crate's examples once and returns the path of `name`.
fn example(name: &str) -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        // target/<profile>/deps/<this test> → target
        let exe = std::env::current_exe().expect("current_exe");
        let target = exe
            .ancestors()
            .nth(3)
            .expect("the test binary lives in target/<profile>/deps")
            .to_path_buf();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
        let status = std::process::Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "qemu-machine",
                "--examples",
                "--target-dir",
            ])
            .arg(&target)
            .status()
            .expect("could not run cargo to build qemu-machine's examples");
        assert!(status.success(), "building qemu-machine's examples failed");
        target.join("debug").join("examples")
    });
    dir.join(name)
}

/// The `hold_machine` example, run with `args`: holds one machine until
/// its stdin closes or it is killed.
pub(crate) struct Holder {
    process: tokio::process::Child,
    /// The pid it printed: QEMU's, or the wrapper's.
    pub(crate) machine_pid: u32,
}

impl Holder {
    pub(crate) async fn start(args: &[&std::ffi::OsStr]) -> Holder {
        let mut process = tokio::process::Command::new(example("hold_machine"))
            .args(args)
            .env("PATH", path_with_qemu())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("could not start the hold_machine example");
        let stdout = process.stdout.take().expect("piped stdout");
        let mut line = String::new();
        timeout(
            Duration::from_secs(30),
            BufReader::new(stdout).read_line(&mut line),
        )
        .await
        .expect("the helper did not launch its machine in time")
        .expect("reading the helper's stdout failed");
        let machine_pid = line
            .trim()
            .strip_prefix("qemu-pid ")
            .and_then(|pid| pid.parse().ok())
            .unwrap_or_else(|| panic!("unexpected helper output {line:?}"));
        Holder {
            process,
            machine_pid,
        }
    }

    /// SIGKILLs the helper (no cleanup code runs in it) and checks that
    /// the process behind `watch` is gone within a second.
    pub(crate) async fn kill_and_expect_gone(mut self, watch: AsyncFd<OwnedFd>) {
        self.process.start_kill().expect("SIGKILL the helper");
        let status = timeout(Duration::from_secs(5), self.process.wait())
            .await
            .expect("the helper did not die")
            .expect("wait failed");
        assert!(!status.success());
        expect_exit(
            watch,
            Duration::from_secs(1),
            "QEMU outlived its parent by more than 1 s",
        )
        .await;
        // Keep stdin open until here, so the helper never exits on its own.
        if let Some(mut stdin) = self.process.stdin.take() {
            let _closed = stdin.shutdown().await;
        }
    }
}

#[tokio::test]
async fn qemu_dies_with_its_parent() {
    let holder = Holder::start(&[]).await;
    let watch = watch_exit(holder.machine_pid);
    holder.kill_and_expect_gone(watch).await;
}

#[tokio::test]
async fn two_hundred_cycles_leak_nothing() {
    let output = tokio::process::Command::new(example("cycles"))
        .arg("200")
        .env("PATH", path_with_qemu())
        .output()
        .await
        .expect("could not run the cycles example");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "cycles failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let field = |prefix: &str| {
        stdout
            .lines()
            .find_map(|line| line.strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {stdout}"))
            .to_owned()
    };
    let before = field("before ");
    assert!(
        before.contains("children=0") && before.contains("temp_entries=0"),
        "{before}"
    );
    assert_eq!(before, field("after "), "resources leaked over 200 cycles");
}

/// `PATH` with the directory of the QEMU binary the tests use first, for
/// the example helpers (which run plain `qemu-system-x86_64`).
fn path_with_qemu() -> OsString {
    let qemu = qemukit_tests::qemu_binary();
    let mut dirs: Vec<PathBuf> = qemu.parent().map(Path::to_path_buf).into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).unwrap_or_default()
}

#[tokio::test]
async fn guest_boots_to_a_shell_on_the_console() {
    let guest = qemukit_tests::guest();
    let base = tempfile::tempdir().expect("tempdir");
    let console_log = base.path().join("console.log");
    let machine = MachineBuilder::new()
        .binary(qemukit_tests::qemu_binary())
        .base_temp_dir(base.path())
        // The guest's own `-M pc,accel=tcg`: the default `-accel` steps aside.
        .args(guest.args(false))
        .console(ConsoleSpec::serial())
        .console_log(&console_log)
        .launch()
        .await
        .expect("launch failed");
    let console = machine.console().expect("a console was configured");
    console
        .expect(qemukit_tests::READY_MARKER, Duration::from_secs(60))
        .await
        .expect("the guest did not get ready");
    let output = console
        .run("echo $((6 * 7))", Duration::from_secs(30))
        .await
        .expect("running a command failed");
    assert_eq!(output.output.trim(), "42", "{output:?}");
    assert_eq!(output.status, 0);

    // The guest powers itself off: `wait` sees QEMU exit on its own.
    console.send_line("poweroff -f").await.expect("send failed");
    let exit = machine
        .wait(Duration::from_secs(30))
        .await
        .expect("the guest did not power off");
    assert!(exit.success(), "{exit}");
    let logged = std::fs::read_to_string(&console_log).expect("console log");
    assert!(logged.contains(qemukit_tests::READY_MARKER));
    assert_eq!(entries(base.path()), vec![console_log]);
}
