//! qemu-cmdline against the real qemu-system-x86_64: probe output parsed
//! from the binary, every typed option family accepted by QEMU, what QEMU
//! can report confirmed over QMP (qmp-client on a socket pair passed as
//! `-chardev socket,fd=N`), and injection attempts that must reach
//! QEMU as one value.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use qemu_cmdline::{
    Accel, AddFd, Blockdev, Boot, CharDevSpec, Chardev, Cmdline, Cpu, Device, Display, Drive,
    FwCfg, Global, HostFwd, Machine, Memory, Mon, Msg, Name, Netdev, Nic, Object, Probe, Rtc, Smp,
    Trace,
};
use qemukit_tests::{QemuChild, READY_MARKER, guest, qemu_binary, socket_pair};
use qmp_client::{Client, Config};
use qmp_proto::commands::Quit;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const TIMEOUT: Duration = Duration::from_secs(30);
const MIB: u64 = 1024 * 1024;

/// A running QEMU and its QMP monitor.
struct Vm {
    qemu: QemuChild,
    qmp: Client,
}

impl Vm {
    /// Starts QEMU from `cmd` plus a QMP monitor on a socket pair, added with
    /// the typed `-chardev socket,fd=N` and `-mon`. Panics with the command
    /// line and QEMU's output when QEMU does not start.
    async fn start(cmd: &mut Cmdline, inherit: &[BorrowedFd<'_>]) -> Vm {
        let (ours, theirs) = socket_pair().unwrap();
        cmd.chardev(Chardev::socket_fd("qmp", theirs.as_raw_fd()))
            .mon(Mon::qmp("qmp"));
        let args = cmd.to_args().expect("the command line renders");
        let mut fds = vec![theirs.as_fd()];
        fds.extend_from_slice(inherit);
        let mut qemu = QemuChild::spawn(&args, &fds).expect("spawning QEMU");
        drop(theirs);
        match Client::from_stream(ours, &Config::default()).await {
            Ok(qmp) => Vm { qemu, qmp },
            Err(err) => {
                let status = qemu.wait(TIMEOUT).await;
                panic!("QEMU refused `{cmd}` ({err}; {status:?}):\n{}", qemu.log());
            }
        }
    }

    /// Runs a QMP command; panics with QEMU's error.
    async fn execute(&self, command: &str, arguments: Value) -> Value {
        let arguments = match arguments {
            Value::Object(map) => Some(map),
            _ => None,
        };
        self.qmp
            .execute_raw(command, arguments)
            .await
            .unwrap_or_else(|err| panic!("`{command}` failed: {err}"))
    }

    async fn qom_get(&self, path: &str, property: &str) -> Value {
        self.execute("qom-get", json!({"path": path, "property": property}))
            .await
    }

    async fn quit(mut self) {
        self.qmp.execute(Quit).await.expect("quit");
        let status = self.qemu.wait(TIMEOUT).await.unwrap();
        assert!(
            status.success(),
            "QEMU exited with {status}: {}",
            self.qemu.log()
        );
    }
}

/// `-machine pc -accel tcg -nodefaults -display none -S`.
fn base() -> Cmdline {
    let mut cmd = Cmdline::new();
    cmd.program(qemu_binary())
        .machine(Machine::new("pc"))
        .accel(Accel::tcg().thread("single"))
        .nodefaults()
        .display(Display::none())
        .paused();
    cmd
}

#[test]
fn probe_reads_the_real_binary() {
    let probe = Probe::run(qemu_binary(), TIMEOUT).unwrap();
    assert!(probe.version.major >= 7, "{:?}", probe.version);
    for machine in ["pc", "q35", "none", "microvm"] {
        assert!(probe.has_machine(machine), "no machine {machine}");
    }
    assert!(probe.machines.iter().any(|m| m.is_default));
    assert!(probe.has_accel("tcg"));
    assert!(probe.has_cpu("qemu64") && probe.cpu_flags.iter().any(|f| f == "ssse3"));
    let blk = probe
        .device("virtio-blk-pci")
        .expect("virtio-blk-pci is in this QEMU");
    assert_eq!(blk.bus.as_deref(), Some("PCI"));
    assert_eq!(blk.category, "Storage");
    let err = probe
        .require_device("virtio-blk-pcx")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no device `virtio-blk-pcx`") && err.contains("virtio-blk-pci"),
        "{err}"
    );
    let version = Probe::version(qemu_binary(), TIMEOUT).unwrap();
    assert_eq!(version, probe.version);
    let mut cmd = base();
    cmd.cpu(Cpu::new("qemu64"))
        .device(Device::new("virtio-net-pci"));
    probe.check(&cmd).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn async_probe_reads_what_the_blocking_one_reads() {
    // On a one-thread runtime: a probe that blocked would starve the ticker.
    let ticker = tokio::spawn(async {
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(5));
        for _ in 0..3 {
            interval.tick().await;
        }
    });
    let probe = Probe::run_async(qemu_binary(), TIMEOUT)
        .await
        .expect("async probe failed");
    assert!(
        ticker.is_finished(),
        "the runtime was blocked during the probe"
    );
    let blocking = tokio::task::spawn_blocking(|| Probe::run(qemu_binary(), TIMEOUT))
        .await
        .expect("blocking probe panicked")
        .expect("blocking probe failed");
    assert_eq!(probe, blocking);
    assert!(probe.has_device("virtio-blk-pci"), "{:?}", probe.version);
}

#[tokio::test]
async fn name_smp_memory_uuid_cpu_are_confirmed_over_qmp() {
    let uuid = "6a3c0e4e-0d6f-4c3e-9d51-2f0f6d7b8a91";
    let mut cmd = base();
    cmd.cpu(Cpu::new("qemu64").enable("ssse3").disable("svm"))
        .smp(Smp::new(2).sockets(2).cores(2).threads(1).maxcpus(4))
        .memory(Memory::mib(192).slots(2).maxmem("1G"))
        .name(Name::new("qemukit,id=x").debug_threads(true))
        .uuid(uuid);
    let vm = Vm::start(&mut cmd, &[]).await;

    // The injection attempt reached QEMU as one name, not as `id=x`.
    let name = vm.execute("query-name", json!({})).await;
    assert_eq!(name["name"], "qemukit,id=x");
    let cpus = vm.execute("query-cpus-fast", json!({})).await;
    let cpus = cpus.as_array().unwrap();
    assert_eq!(cpus.len(), 2);
    let memory = vm.execute("query-memory-size-summary", json!({})).await;
    assert_eq!(memory["base-memory"], 192 * MIB);
    let got_uuid = vm.execute("query-uuid", json!({})).await;
    assert_eq!(got_uuid["UUID"], uuid);
    let cpu_path = cpus[0]["qom-path"].as_str().unwrap().to_owned();
    assert_eq!(vm.qom_get(&cpu_path, "ssse3").await, true);
    assert_eq!(vm.qom_get(&cpu_path, "svm").await, false);
    let status = vm.execute("query-status", json!({})).await;
    assert_eq!(
        (status["status"].as_str(), status["running"].as_bool()),
        (Some("prelaunch"), Some(false))
    );
    vm.quit().await;
}

fn image(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(MIB).unwrap();
    path
}

#[tokio::test]
async fn drive_named_like_options_stays_one_file_and_devices_get_their_properties() {
    let dir = tempfile::tempdir().unwrap();
    let tricky = image(dir.path(), "a,format=raw,b.img");
    let second = image(dir.path(), "c,read-only=on,d.img");
    let third = image(dir.path(), "e,f.img");
    let mut cmd = base();
    cmd.drive(
        Drive::new(&tricky)
            .format("raw")
            .interface("none")
            .id("d0")
            .cache("unsafe"),
    )
    .device(
        Device::new("virtio-blk-pci")
            .id("vd0")
            .prop("drive", "d0")
            .prop("serial", "s,1"),
    )
    .global(Global::new("virtio-blk-pci", "num-queues", "2"))
    .blockdev(Blockdev::new("file", "f1").filename(&second))
    .blockdev(Blockdev::new("raw", "r1").prop("file", "f1"))
    .device(Device::new("virtio-blk-pci").id("vd1").prop("drive", "r1"))
    .blockdev_json(json!({
        "driver": "raw", "node-name": "r2",
        "file": {"driver": "file", "filename": third.to_str().unwrap()}
    }))
    .device_json(json!({"driver": "virtio-blk-pci", "id": "vd2", "drive": "r2", "num-queues": 1}));
    let vm = Vm::start(&mut cmd, &[]).await;

    let block = vm.execute("query-block", json!({})).await;
    let d0 = block
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["device"] == "d0")
        .unwrap_or_else(|| panic!("no drive d0 in {block:#}"));
    assert_eq!(d0["inserted"]["file"], tricky.to_str().unwrap());
    assert_eq!(d0["inserted"]["drv"], "raw");
    assert_eq!(d0["inserted"]["ro"], false);
    let nodes = vm.execute("query-named-block-nodes", json!({})).await;
    let file_of = |node: &str| {
        nodes
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node-name"] == node)
            .map(|n| n["file"].clone())
    };
    assert_eq!(file_of("f1"), Some(json!(second.to_str().unwrap())));
    assert!(file_of("r2").is_some(), "{nodes:#}");

    let peripheral = "/machine/peripheral";
    assert_eq!(
        vm.qom_get(&format!("{peripheral}/vd0"), "serial").await,
        "s,1"
    );
    assert_eq!(
        vm.qom_get(&format!("{peripheral}/vd0"), "num-queues").await,
        2
    );
    assert_eq!(
        vm.qom_get(&format!("{peripheral}/vd1"), "num-queues").await,
        2
    );
    assert_eq!(
        vm.qom_get(&format!("{peripheral}/vd2"), "num-queues").await,
        1
    );
    assert_eq!(
        vm.qom_get(&format!("{peripheral}/vd1"), "drive").await,
        "r1"
    );
    vm.quit().await;
}

/// Values that break naive renderers, each checked against what QEMU reports.
const TRICKY: &[&str] = &[
    "a,b",
    ",",
    ",,",
    "a,,b",
    "x,id=y",
    "=",
    "k=v",
    "a=b,c=d",
    "help",
    " sp ace ",
    "quote'\"",
    "ünïcødé",
    "$(echo pwned)",
    "-S",
    "{\"json\":1}",
];

#[tokio::test]
async fn tricky_names_and_file_names_reach_qemu_verbatim() {
    let dir = tempfile::tempdir().unwrap();
    for name in TRICKY {
        let mut cmd = base();
        cmd.name(Name::new(*name));
        let vm = Vm::start(&mut cmd, &[]).await;
        let got = vm.execute("query-name", json!({})).await;
        assert_eq!(got["name"], *name, "-name {name:?} rendered as {cmd}");
        vm.quit().await;
    }
    let mut cmd = base();
    let files: Vec<_> = TRICKY
        .iter()
        .enumerate()
        .map(|(index, name)| {
            (
                format!("d{index}"),
                image(dir.path(), &format!("{index}{name}")),
            )
        })
        .collect();
    for (id, file) in &files {
        cmd.drive(
            Drive::new(file)
                .format("raw")
                .interface("none")
                .id(id.as_str()),
        );
    }
    let vm = Vm::start(&mut cmd, &[]).await;
    let block = vm.execute("query-block", json!({})).await;
    for (id, file) in &files {
        let drive = block
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["device"] == id.as_str())
            .unwrap_or_else(|| panic!("no drive {id} in {block:#}"));
        assert_eq!(drive["inserted"]["file"], file.to_str().unwrap());
    }
    assert_eq!(
        block.as_array().unwrap().len(),
        files.len(),
        "no extra drives: {block:#}"
    );
    vm.quit().await;
}

/// The control: written naively, the same name is cut at its comma and the
/// rest becomes an option, which is what escaping prevents.
#[tokio::test]
async fn unescaped_the_injection_would_work() {
    let mut cmd = base();
    cmd.args(["-name", "x,debug-threads=on"]);
    let vm = Vm::start(&mut cmd, &[]).await;
    let got = vm.execute("query-name", json!({})).await;
    assert_eq!(got["name"], "x");
    vm.quit().await;
}

#[tokio::test]
async fn netdevs_nics_and_objects_in_both_syntaxes() {
    let mut cmd = base();
    cmd.netdev(Netdev::user("n0").hostfwd(HostFwd::tcp(0, 22)).restrict(true))
        .device(Device::new("virtio-net-pci").id("nic0").prop("netdev", "n0"))
        .netdev_json(json!({"type": "user", "id": "n1"}))
        .device_json(json!({"driver": "virtio-net-pci", "id": "nic1", "netdev": "n1", "mac": "52:54:00:12:34:57"}))
        .netdev(Netdev::socket("s0").listen("127.0.0.1:0"))
        .device(Device::new("e1000").id("nic2").prop("netdev", "s0"))
        .nic(Nic::new("user").model("virtio-net-pci").mac("52:54:00:12:34:58"))
        .object(Object::new("memory-backend-ram", "mem0").prop("size", "64M"))
        .object_json(json!({"qom-type": "memory-backend-ram", "id": "mem1", "size": 32 * MIB}));
    let vm = Vm::start(&mut cmd, &[]).await;
    assert_eq!(vm.qom_get("/machine/peripheral/nic0", "netdev").await, "n0");
    assert_eq!(
        vm.qom_get("/machine/peripheral/nic1", "mac").await,
        "52:54:00:12:34:57"
    );
    assert_eq!(vm.qom_get("/machine/peripheral/nic2", "netdev").await, "s0");
    assert_eq!(vm.qom_get("/objects/mem0", "size").await, 64 * MIB);
    assert_eq!(vm.qom_get("/objects/mem1", "size").await, 32 * MIB);
    let network = vm
        .execute(
            "human-monitor-command",
            json!({"command-line": "info network"}),
        )
        .await;
    let network = network.as_str().unwrap();
    assert!(
        network.contains("52:54:00:12:34:58"),
        "the -nic is there: {network}"
    );
    let usernet = vm
        .execute(
            "human-monitor-command",
            json!({"command-line": "info usernet"}),
        )
        .await;
    assert!(
        usernet.as_str().unwrap().contains("127.0.0.1"),
        "hostfwd: {usernet}"
    );
    vm.quit().await;
}

#[tokio::test]
async fn chardevs_serials_and_legacy_qmp() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("c,1=x.log");
    let serial_file = dir.path().join("serial,id=x.log");
    let server = dir.path().join("s,1=y.sock");
    let legacy_qmp = dir.path().join("q,1=z.sock");
    let fifo = dir.path().join("p,1");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        0o600.into(),
        0,
    )
    .unwrap();
    let mut cmd = base();
    cmd.chardev(Chardev::file("cf", &log))
        .serial(CharDevSpec::Chardev("cf".into()))
        .serial(CharDevSpec::File(serial_file.clone()))
        .chardev(Chardev::null("cn"))
        .chardev(Chardev::pty("cp"))
        .chardev(Chardev::pipe("cpipe", &fifo))
        .chardev(Chardev::socket_path("cs", &server).server(true).wait(false))
        .chardev(
            Chardev::socket_tcp("ct", "127.0.0.1", 0)
                .server(true)
                .wait(false),
        )
        .qmp(CharDevSpec::Unix {
            path: legacy_qmp.clone(),
            server: true,
            wait: false,
        });
    let vm = Vm::start(&mut cmd, &[]).await;
    let chardevs = vm.execute("query-chardev", json!({})).await;
    let labels: Vec<&str> = chardevs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["label"].as_str())
        .collect();
    for label in ["cf", "cn", "cp", "cpipe", "cs", "ct", "qmp"] {
        assert!(labels.contains(&label), "no chardev {label} in {labels:?}");
    }
    // The paths holding commas exist exactly as named.
    assert!(log.exists() && serial_file.exists(), "chardev files");
    assert!(server.exists(), "the socket chardev listens on {server:?}");
    // The legacy -qmp socket at a path with a comma is a working monitor.
    let legacy = Client::connect_unix(&legacy_qmp, &Config::default())
        .await
        .expect("connecting to the -qmp unix: socket");
    let status = legacy.execute_raw("query-status", None).await.unwrap();
    assert_eq!(status["status"], "prelaunch");
    drop(legacy);
    vm.quit().await;
}

#[tokio::test]
async fn boot_firmware_clock_fds_and_diagnostics_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("p,1.pid");
    let logfile = dir.path().join("q,1.log");
    let fdset_file = std::fs::File::create(dir.path().join("fdset")).unwrap();
    let dtb = image(dir.path(), "t,1=x.dtb");
    let mut cmd = base();
    cmd.bios("/usr/share/seabios/bios-256k.bin")
        .dtb(&dtb)
        .boot(
            Boot::default()
                .order("c")
                .menu(false)
                .strict(false)
                .reboot_timeout(-1),
        )
        .rtc(Rtc::default().base("utc").clock("host").driftfix("slew"))
        .fw_cfg(FwCfg::with_string("opt/org.qemukit/x", "a,b"))
        .add_fd(AddFd::new(fdset_file.as_raw_fd(), 7).opaque("x,y"))
        .pidfile(&pidfile)
        .log_file(&logfile)
        .log_items(["guest_errors", "unimp"])
        .trace(Trace::new("qmp_enter_query_status"))
        .msg(Msg::default().timestamp(true))
        .vga("std")
        .no_reboot()
        .no_shutdown()
        .snapshot();
    let vm = Vm::start(&mut cmd, &[fdset_file.as_fd()]).await;
    let fdsets = vm.execute("query-fdsets", json!({})).await;
    assert_eq!(fdsets[0]["fdset-id"], 7, "{fdsets:#}");
    assert_eq!(fdsets[0]["fds"][0]["opaque"], "x,y");
    let pid = std::fs::read_to_string(&pidfile).expect("QEMU wrote the pidfile at its exact path");
    assert_eq!(pid.trim(), vm.qemu.pid().to_string());
    assert!(logfile.exists(), "-D opened {logfile:?}");
    assert_eq!(vm.qom_get("/machine", "dtb").await, dtb.to_str().unwrap());
    assert_eq!(
        vm.qom_get("/machine", "firmware").await,
        "/usr/share/seabios/bios-256k.bin"
    );
    let status = vm.execute("query-status", json!({})).await;
    assert_eq!(status["status"], "prelaunch");
    vm.quit().await;
}

#[tokio::test]
async fn incoming_defer_waits_for_a_migration() {
    let mut cmd = base();
    cmd.incoming("defer");
    let vm = Vm::start(&mut cmd, &[]).await;
    let status = vm.execute("query-status", json!({})).await;
    assert_eq!(status["status"], "inmigrate");
    vm.quit().await;
}

#[tokio::test]
async fn unrepresentable_values_never_reach_qemu() {
    let mut cmd = base();
    cmd.append("quiet\ninit=/bin/sh");
    let err = cmd.to_args().unwrap_err();
    assert!(
        matches!(
            err,
            qemu_cmdline::Error::Unrepresentable {
                option: "-append",
                ..
            }
        ),
        "{err}"
    );
    // The same option without the line break starts.
    let mut cmd = base();
    cmd.device(
        Device::new("virtio-rng-pci")
            .id("rng0")
            .prop("max-bytes", "1024"),
    );
    let vm = Vm::start(&mut cmd, &[]).await;
    assert_eq!(
        vm.qom_get("/machine/peripheral/rng0", "max-bytes").await,
        1024
    );
    vm.quit().await;
}

async fn read_until(stream: &mut UnixStream, needle: &str, seen: &mut Vec<u8>) {
    let read = async {
        let mut chunk = [0; 4096];
        while !String::from_utf8_lossy(seen).contains(needle) {
            let n = stream.read(&mut chunk).await.expect("reading the console");
            assert!(n > 0, "the console closed before `{needle}`");
            seen.extend_from_slice(&chunk[..n]);
        }
    };
    if tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .is_err()
    {
        panic!(
            "no `{needle}` on the console; got {}",
            String::from_utf8_lossy(seen)
        );
    }
}

#[tokio::test]
async fn kernel_initrd_and_append_boot_the_guest() {
    let guest = guest();
    let (mut console, theirs) = socket_pair().unwrap();
    let mut cmd = Cmdline::new();
    cmd.program(qemu_binary())
        .machine(Machine::new("pc").accel("tcg"))
        .memory(Memory::mib(256))
        .nodefaults()
        .display(Display::none())
        .no_reboot()
        .kernel(&guest.kernel)
        .initrd(&guest.initrd)
        .append(format!("{} qemukit.mark=a,b", qemukit_tests::KERNEL_APPEND))
        .chardev(Chardev::socket_fd("con", theirs.as_raw_fd()))
        .serial(CharDevSpec::Chardev("con".into()));
    let args = cmd.to_args().unwrap();
    let mut qemu = QemuChild::spawn(&args, &[theirs.as_fd()]).unwrap();
    drop(theirs);
    let mut seen = Vec::new();
    read_until(&mut console, READY_MARKER, &mut seen).await;
    seen.clear();
    console
        .write_all(b"cat /proc/cmdline; poweroff -f\n")
        .await
        .unwrap();
    read_until(&mut console, "panic=-1 quiet qemukit.mark=a,b", &mut seen).await;
    let status = qemu.wait(TIMEOUT).await.unwrap();
    assert!(
        status.success(),
        "QEMU exited with {status}: {}",
        qemu.log()
    );
}
