//! Real-guest scenarios through the public APIs, as a user of qemukit
//! would write them: the test guest (GUEST.md) under TCG, driven with
//! qemu-machine, its QMP client and its console.

use std::path::Path;
use std::time::Duration;

use qemu_machine::{Accel, Machine, MachineBuilder};
use qemukit_tests::{READY_MARKER, guest, qemu_binary};
use serde_json::{Value, json};
use tempfile::TempDir;

/// TCG on a loaded 2-core machine: generous.
const BOOT: Duration = Duration::from_secs(120);
const STEP: Duration = Duration::from_secs(30);

/// A booted guest and the directory its machine keeps its files in.
struct Booted {
    machine: Machine,
    temp: TempDir,
}

/// The plain guest with a ttyS0 console and `extra_args`, its files in `base`.
fn builder(base: &Path, extra_args: &[&str]) -> MachineBuilder {
    let mut builder = guest().builder();
    builder.base_temp_dir(base).args(extra_args);
    builder
}

impl Booted {
    /// The guest at its shell prompt, restored from the suite's snapshot
    /// (booted once per test process): for scenarios that do not test
    /// booting.
    async fn new() -> Self {
        let temp = tempfile::tempdir().expect("creating a temp dir");
        let machine = qemukit_tests::restore_booted(|| builder(temp.path(), &[]))
            .await
            .unwrap_or_else(|err| panic!("restoring the booted guest failed: {err}"));
        Self { machine, temp }
    }

    /// Boots the guest (with `extra_args`) and waits for its shell.
    async fn boot(extra_args: &[&str]) -> Self {
        let booted = Self::launch(extra_args).await;
        booted
            .console()
            .expect(READY_MARKER, BOOT)
            .await
            .unwrap_or_else(|err| panic!("the guest did not boot: {err}"));
        booted
    }

    /// Launches QEMU with the guest without waiting for it.
    async fn launch(extra_args: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("creating a temp dir");
        let machine = builder(temp.path(), extra_args)
            .launch()
            .await
            .unwrap_or_else(|err| panic!("launching the guest failed: {err}"));
        Self { machine, temp }
    }

    fn console(&self) -> &qemu_console::Console {
        self.machine.console().expect("the machine has a console")
    }

    async fn run(&self, command: &str) -> String {
        let out = self
            .console()
            .run(command, STEP)
            .await
            .unwrap_or_else(|err| panic!("`{command}` in the guest: {err}"));
        assert_eq!(
            out.status, 0,
            "`{command}` failed in the guest: {}",
            out.output
        );
        out.output
    }

    async fn qmp(&self, command: &str, args: Value) -> Value {
        let args = match args {
            Value::Object(map) => Some(map),
            _ => None,
        };
        self.machine
            .qmp()
            .execute_raw(command, args)
            .await
            .unwrap_or_else(|err| panic!("QMP {command}: {err}"))
    }

    /// After QEMU exited: once the machine is dropped, its process is gone
    /// and nothing is left in its base temp dir.
    fn assert_clean(self) {
        let Self { machine, temp } = self;
        let pid = machine.pid();
        drop(machine);
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "QEMU (pid {pid}) is still there"
        );
        let left: Vec<_> = std::fs::read_dir(temp.path())
            .expect("reading the base temp dir")
            .flatten()
            .map(|entry| entry.path())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }

    async fn shutdown(self) {
        let exit = self
            .machine
            .shutdown(STEP)
            .await
            .unwrap_or_else(|err| panic!("shutdown: {err}"));
        assert!(exit.success(), "QEMU exited with {exit}");
        self.assert_clean();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_to_shell() {
    let guest = Booted::boot(&[]).await;
    let release = guest.run("uname -r").await;
    assert!(
        release.trim().ends_with("-cloud-amd64"),
        "uname -r said {release:?}"
    );
    let status = guest.qmp("query-status", Value::Null).await;
    assert_eq!(status["status"], "running", "{status}");
    assert_eq!(status["running"], true, "{status}");
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_cont() {
    let guest = Booted::new().await;
    let qmp = guest.machine.qmp();
    let stopped = qmp.event_waiter("STOP", None);
    guest.qmp("stop", Value::Null).await;
    stopped.wait(Some(STEP)).await.expect("STOP event");
    assert_eq!(
        guest.qmp("query-status", Value::Null).await["status"],
        "paused"
    );

    // A stopped guest cannot answer: the marker must NOT come (a short wait
    // is right here, it asserts an absence).
    guest
        .console()
        .send_line("echo @@$((4000+2))@@")
        .await
        .expect("typing");
    let silent = guest
        .console()
        .expect("@@4002@@", Duration::from_secs(2))
        .await;
    assert!(
        matches!(silent, Err(qemu_console::Error::Timeout { .. })),
        "a stopped guest answered, or its console failed: {silent:?}"
    );

    let resumed = qmp.event_waiter("RESUME", None);
    guest.qmp("cont", Value::Null).await;
    resumed.wait(Some(STEP)).await.expect("RESUME event");
    guest
        .console()
        .expect("@@4002@@", STEP)
        .await
        .expect("the guest answers after cont");
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_hotplug() {
    let guest = Booted::new().await;
    let disk_dir = tempfile::tempdir().expect("temp dir");
    let image = disk_dir.path().join("disk.img");
    std::fs::File::create(&image)
        .and_then(|file| file.set_len(8 << 20))
        .expect("creating the image");

    guest
        .qmp(
            "blockdev-add",
            json!({"driver": "raw", "node-name": "hp0",
                   "file": {"driver": "file", "filename": image}}),
        )
        .await;
    guest
        .qmp(
            "device_add",
            json!({"driver": "virtio-blk-pci", "drive": "hp0", "id": "hpdisk"}),
        )
        .await;
    let size = guest
        .run("for i in $(seq 200); do [ -e /sys/block/vda ] && break; sleep 0.1; done; cat /sys/block/vda/size")
        .await;
    assert_eq!(size.trim(), (8u64 << 20 >> 9).to_string());

    guest
        .run("echo qemukit-pattern-42 | dd of=/dev/vda conv=fsync 2>/dev/null")
        .await;

    let deleted = guest.machine.qmp().event_waiter(
        "DEVICE_DELETED",
        Some(&json!({"data": {"device": "hpdisk"}})),
    );
    guest.qmp("device_del", json!({"id": "hpdisk"})).await;
    let event = deleted
        .wait(Some(STEP))
        .await
        .expect("DEVICE_DELETED for hpdisk");
    assert_eq!(event.data["device"], "hpdisk");
    guest.qmp("blockdev-del", json!({"node-name": "hp0"})).await;

    let written = std::fs::read(&image).expect("reading the image");
    assert!(
        written.starts_with(b"qemukit-pattern-42\n"),
        "the image holds {:?}",
        &written[..32]
    );
    let disks = guest.run("ls /sys/block").await;
    assert!(!disks.contains("vda"), "vda is still in the guest: {disks}");
    guest.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_power_down() {
    let guest = Booted::new().await;
    let qmp = guest.machine.qmp();
    let powerdown = qmp.event_waiter("POWERDOWN", None);
    let shutdown = qmp.event_waiter("SHUTDOWN", None);
    guest.qmp("system_powerdown", Value::Null).await;
    powerdown.wait(Some(STEP)).await.expect("POWERDOWN event");
    let event = shutdown.wait(Some(STEP)).await.expect("SHUTDOWN event");
    assert_eq!(event.data["guest"], true, "{:?}", event.data);
    let exit = guest
        .machine
        .wait(STEP)
        .await
        .expect("QEMU exits after the guest powers off");
    assert_eq!(exit.code(), Some(0), "{exit}");
    guest.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_powers_itself_off() {
    let guest = Booted::new().await;
    let shutdown = guest.machine.qmp().event_waiter("SHUTDOWN", None);
    guest
        .console()
        .send_line("poweroff -f")
        .await
        .expect("typing");
    let event = shutdown.wait(Some(STEP)).await.expect("SHUTDOWN event");
    assert_eq!(event.data["guest"], true, "{:?}", event.data);
    let exit = guest.machine.wait(STEP).await.expect("QEMU exits");
    assert!(exit.success(), "{exit}");
    guest.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_crash() {
    let guest = Booted::new().await;
    let shutdown = guest.machine.qmp().event_waiter("SHUTDOWN", None);
    guest
        .console()
        .send_line("echo c > /proc/sysrq-trigger")
        .await
        .expect("typing");
    // panic=-1 reboots at once and -no-reboot turns the reboot into an exit.
    let event = shutdown
        .wait(Some(STEP))
        .await
        .expect("SHUTDOWN after the panic");
    assert_eq!(event.data["reason"], "guest-reset", "{:?}", event.data);
    let exit = guest
        .machine
        .wait(STEP)
        .await
        .expect("QEMU exits after the panic");
    assert!(!guest.machine.is_running(), "{exit}");
    let console = guest.console().transcript_text();
    assert!(
        console.contains("Kernel panic"),
        "no oops on the console:\n{console}"
    );
    guest.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_failure_names_the_missing_kernel() {
    let temp = tempfile::tempdir().expect("temp dir");
    let missing = temp.path().join("no-such-vmlinuz");
    let base = tempfile::tempdir().expect("temp dir");
    let result = MachineBuilder::new()
        .binary(qemu_binary())
        .base_temp_dir(base.path())
        .machine_type("pc")
        .accel(Accel::tcg())
        .args(["-m", "256", "-no-reboot"])
        .arg("-kernel")
        .arg(&missing)
        .launch()
        .await;
    let err = match result {
        Ok(_) => panic!("launching with a missing kernel succeeded"),
        Err(err) => err.to_string(),
    };
    assert!(
        err.contains("no-such-vmlinuz"),
        "the error does not name the kernel: {err}"
    );
    let left: Vec<_> = std::fs::read_dir(base.path())
        .expect("read dir")
        .flatten()
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
