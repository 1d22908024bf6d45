//! Golden tests: the exact argv each typed option renders to.

use std::ffi::OsString;

use qemu_cmdline::{
    Accel, AddFd, Arg, Blockdev, Boot, CharDevSpec, Chardev, Cmdline, Cpu, Device, Display, Drive,
    Error, FwCfg, Global, HostFwd, Machine, Memory, Mon, Msg, Name, Netdev, Nic, Object, Rtc, Smp,
    Trace,
};
use serde_json::json;

/// Renders `cmd` and compares with `expected`, then parses it back.
#[track_caller]
fn golden(cmd: &mut Cmdline, expected: &[&str]) {
    let args = cmd.to_args().unwrap();
    let expected: Vec<OsString> = expected.iter().map(OsString::from).collect();
    assert_eq!(args, expected);
    assert_eq!(
        Cmdline::parse_args(&args).unwrap(),
        *cmd,
        "parsing {args:?} back"
    );
}

#[track_caller]
fn refused(cmd: &mut Cmdline, option: &str, value: &str) {
    match cmd.to_args() {
        Err(Error::Unrepresentable {
            option: o,
            value: v,
            ..
        }) => {
            assert_eq!((o, v.to_str().unwrap()), (option, value));
        }
        other => panic!("expected Unrepresentable for {option} {value:?}, got {other:?}"),
    }
}

#[test]
fn machine_and_accel() {
    golden(
        Cmdline::new().machine(Machine::new("pc").accel("tcg")),
        &["-machine", "pc,accel=tcg"],
    );
    golden(
        Cmdline::new().machine(
            Machine::new("q35")
                .prop("smm", "off")
                .prop("kernel-irqchip", "split"),
        ),
        &["-machine", "q35,smm=off,kernel-irqchip=split"],
    );
    golden(
        Cmdline::new().machine(Machine::default().accel("kvm:tcg")),
        &["-machine", "accel=kvm:tcg"],
    );
    golden(
        Cmdline::new()
            .accel(Accel::kvm())
            .accel(Accel::tcg().thread("single").tb_size(64)),
        &["-accel", "kvm", "-accel", "tcg,thread=single,tb-size=64"],
    );
}

#[test]
fn cpu_model_and_flags() {
    golden(
        Cmdline::new().cpu(
            Cpu::new("qemu64")
                .enable("avx2")
                .disable("svm")
                .set("pmu", "off"),
        ),
        &["-cpu", "qemu64,+avx2,-svm,pmu=off"],
    );
    refused(Cmdline::new().cpu(Cpu::new("a,b")), "-cpu", "a,b");
    refused(Cmdline::new().cpu(Cpu::new("max").enable("")), "-cpu", "");
    refused(
        Cmdline::new().cpu(Cpu::new("max").disable("a=b")),
        "-cpu",
        "a=b",
    );
    refused(
        Cmdline::new().cpu(Cpu::new("max").set("model-id", "x,y")),
        "-cpu",
        "x,y",
    );
}

#[test]
fn smp_and_memory() {
    golden(
        Cmdline::new().smp(
            Smp::new(4)
                .sockets(1)
                .dies(1)
                .cores(2)
                .threads(2)
                .maxcpus(8),
        ),
        &["-smp", "4,sockets=1,dies=1,cores=2,threads=2,maxcpus=8"],
    );
    golden(Cmdline::new().memory(Memory::mib(256)), &["-m", "256M"]);
    golden(
        Cmdline::new().memory(Memory::new("1G").slots(4).maxmem("4G")),
        &["-m", "1G,slots=4,maxmem=4G"],
    );
}

#[test]
fn name_and_uuid() {
    golden(
        Cmdline::new().name(Name::new("vm1").debug_threads(true)),
        &["-name", "vm1,debug-threads=on"],
    );
    golden(
        Cmdline::new().name(Name::new("a,id=x")),
        &["-name", "guest=a,,id=x"],
    );
    golden(
        Cmdline::new().name(Name::new("k=v").process("p")),
        &["-name", "guest=k=v,process=p"],
    );
    golden(
        Cmdline::new().uuid("12345678-1234-1234-1234-123456789abc"),
        &["-uuid", "12345678-1234-1234-1234-123456789abc"],
    );
}

#[test]
fn flags() {
    golden(
        Cmdline::new()
            .nodefaults()
            .no_reboot()
            .no_shutdown()
            .paused()
            .snapshot(),
        &[
            "-nodefaults",
            "-no-reboot",
            "-no-shutdown",
            "-S",
            "-snapshot",
        ],
    );
}

#[test]
fn display_vga_serial_qmp() {
    golden(
        Cmdline::new().display(Display::none()),
        &["-display", "none"],
    );
    golden(
        Cmdline::new().display(Display::new("gtk").prop("gl", "on")),
        &["-display", "gtk,gl=on"],
    );
    golden(Cmdline::new().vga("virtio"), &["-vga", "virtio"]);
    golden(
        Cmdline::new()
            .serial(CharDevSpec::Chardev("ser0".into()))
            .serial(CharDevSpec::Stdio)
            .serial(CharDevSpec::None)
            .serial(CharDevSpec::File("/tmp/a,b.log".into())),
        &[
            "-serial",
            "chardev:ser0",
            "-serial",
            "stdio",
            "-serial",
            "none",
            "-serial",
            "file:/tmp/a,b.log",
        ],
    );
    golden(
        Cmdline::new()
            .monitor(CharDevSpec::Null)
            .monitor(CharDevSpec::Chardev("hmp".into())),
        &["-monitor", "null", "-monitor", "chardev:hmp"],
    );
    golden(
        Cmdline::new()
            .qmp(CharDevSpec::Unix {
                path: "/run/q,m.sock".into(),
                server: true,
                wait: false,
            })
            .qmp(CharDevSpec::Tcp {
                host: "127.0.0.1".into(),
                port: 4444,
                server: true,
                wait: false,
            }),
        &[
            "-qmp",
            "unix:/run/q,,m.sock,server=on,wait=off",
            "-qmp",
            "tcp:127.0.0.1:4444,server=on,wait=off",
        ],
    );
    golden(
        Cmdline::new().qmp(CharDevSpec::Unix {
            path: "/run/a=b.sock".into(),
            server: false,
            wait: true,
        }),
        &["-qmp", "unix:path=/run/a=b.sock,server=off,wait=on"],
    );
    refused(
        Cmdline::new().serial(CharDevSpec::Chardev("a,b".into())),
        "-serial",
        "a,b",
    );
}

#[test]
fn chardev_backends_and_mon() {
    golden(
        Cmdline::new()
            .chardev(
                Chardev::socket_path("c0", "/run/a,b.sock")
                    .server(true)
                    .wait(false),
            )
            .chardev(
                Chardev::socket_tcp("c1", "127.0.0.1", 0)
                    .server(true)
                    .wait(false),
            )
            .chardev(Chardev::socket_fd("c2", 3))
            .chardev(Chardev::pipe("c3", "/tmp/pipe"))
            .chardev(Chardev::file("c4", "/tmp/out.log"))
            .chardev(Chardev::stdio("c5").mux(true))
            .chardev(Chardev::null("c6"))
            .chardev(Chardev::pty("c7").logfile("/tmp/pty.log")),
        &[
            "-chardev",
            "socket,id=c0,path=/run/a,,b.sock,server=on,wait=off",
            "-chardev",
            "socket,id=c1,host=127.0.0.1,port=0,server=on,wait=off",
            "-chardev",
            "socket,id=c2,fd=3",
            "-chardev",
            "pipe,id=c3,path=/tmp/pipe",
            "-chardev",
            "file,id=c4,path=/tmp/out.log",
            "-chardev",
            "stdio,id=c5,mux=on",
            "-chardev",
            "null,id=c6",
            "-chardev",
            "pty,id=c7,logfile=/tmp/pty.log",
        ],
    );
    golden(
        Cmdline::new()
            .mon(Mon::qmp("c2").pretty(true))
            .mon(Mon::hmp("c5")),
        &[
            "-mon",
            "c2,mode=control,pretty=on",
            "-mon",
            "c5,mode=readline",
        ],
    );
    refused(
        Cmdline::new().chardev(Chardev::null("0bad")),
        "-chardev",
        "0bad",
    );
}

#[test]
fn device_object_global() {
    golden(
        Cmdline::new().device(
            Device::new("virtio-blk-pci")
                .id("vd0")
                .bus("pci.0")
                .prop("drive", "d0"),
        ),
        &["-device", "virtio-blk-pci,id=vd0,bus=pci.0,drive=d0"],
    );
    golden(
        Cmdline::new().device(Device::new("virtio-blk-pci").prop("serial", "a,b")),
        &["-device", "virtio-blk-pci,serial=a,,b"],
    );
    golden(
        Cmdline::new().object(Object::new("memory-backend-ram", "mem0").prop("size", "256M")),
        &["-object", "memory-backend-ram,id=mem0,size=256M"],
    );
    golden(
        Cmdline::new().global(Global::new("kvm-pit", "lost_tick_policy", "discard")),
        &[
            "-global",
            "driver=kvm-pit,property=lost_tick_policy,value=discard",
        ],
    );
    refused(
        Cmdline::new().device(Device::new("x").prop("a=b", "1")),
        "-device",
        "a=b",
    );
    refused(
        Cmdline::new().device(Device::new("x").prop("", "1")),
        "-device",
        "",
    );
    refused(
        Cmdline::new().device(Device::new("x").prop("k", "a\0b")),
        "-device",
        "a\0b",
    );
}

#[test]
fn legacy_global_is_parsed() {
    let cmd = Cmdline::parse_args(["-global", "isa-fdc.driveA=x,y"]).unwrap();
    assert_eq!(
        cmd.get_args(),
        [Arg::Global(Global::new("isa-fdc", "driveA", "x,y"))]
    );
}

#[test]
fn json_syntax() {
    let mut cmd = Cmdline::new();
    cmd.device_json(json!({"driver": "virtio-blk-pci", "drive": "d0", "num-queues": 2}))
        .object_json(json!({"qom-type": "memory-backend-ram", "id": "m0", "size": 268435456}))
        .blockdev_json(json!({"driver": "null-co", "node-name": "n0"}))
        .netdev_json(json!({"type": "user", "id": "u0"}));
    golden(
        &mut cmd,
        &[
            "-device",
            r#"{"drive":"d0","driver":"virtio-blk-pci","num-queues":2}"#,
            "-object",
            r#"{"id":"m0","qom-type":"memory-backend-ram","size":268435456}"#,
            "-blockdev",
            r#"{"driver":"null-co","node-name":"n0"}"#,
            "-netdev",
            r#"{"id":"u0","type":"user"}"#,
        ],
    );

    #[derive(serde::Serialize)]
    struct VirtioBlk<'a> {
        driver: &'a str,
        drive: &'a str,
        #[serde(rename = "write-cache")]
        write_cache: bool,
    }
    let mut cmd = Cmdline::new();
    cmd.device_json_from(&VirtioBlk {
        driver: "virtio-blk-pci",
        drive: "d,0",
        write_cache: false,
    })
    .unwrap();
    golden(
        &mut cmd,
        &[
            "-device",
            r#"{"drive":"d,0","driver":"virtio-blk-pci","write-cache":false}"#,
        ],
    );
    refused(
        Cmdline::new().device_json(json!(["not", "an", "object"])),
        "-device",
        r#"["not","an","object"]"#,
    );
    refused(
        Cmdline::new().object_json(json!({"qom-type": "secret", "data": "a\0b"})),
        "-object",
        "a\0b",
    );
    refused(
        Cmdline::new().netdev_json(json!({"type": "user", "x": [{"k\0": 1}]})),
        "-netdev",
        "k\0",
    );
    assert!(matches!(
        Cmdline::new().device_json_from(&f64::NAN),
        Ok(_)
            | Err(Error::Json {
                option: "-device",
                ..
            })
    ));
}

#[test]
fn drive_and_blockdev() {
    golden(
        Cmdline::new().drive(
            Drive::new("a,format=raw,b.img")
                .format("raw")
                .interface("none")
                .id("d0")
                .readonly(true),
        ),
        &[
            "-drive",
            "file=a,,format=raw,,b.img,format=raw,if=none,id=d0,readonly=on",
        ],
    );
    golden(
        Cmdline::new().drive(
            Drive::new("/img/c.qcow2")
                .media("cdrom")
                .snapshot(true)
                .cache("unsafe")
                .index(2),
        ),
        &[
            "-drive",
            "file=/img/c.qcow2,media=cdrom,snapshot=on,cache=unsafe,index=2",
        ],
    );
    golden(
        Cmdline::new()
            .blockdev(
                Blockdev::new("file", "f0")
                    .filename("/img/a,b.raw")
                    .read_only(true),
            )
            .blockdev(Blockdev::new("raw", "r0").prop("file", "f0"))
            .blockdev(
                Blockdev::new("qcow2", "q0")
                    .prop("file.driver", "file")
                    .prop("file.filename", "/x"),
            ),
        &[
            "-blockdev",
            "driver=file,node-name=f0,read-only=on,filename=/img/a,,b.raw",
            "-blockdev",
            "driver=raw,node-name=r0,file=f0",
            "-blockdev",
            "driver=qcow2,node-name=q0,file.driver=file,file.filename=/x",
        ],
    );
}

#[test]
fn netdev_and_nic() {
    golden(
        Cmdline::new()
            .netdev(
                Netdev::user("n0")
                    .hostfwd(HostFwd::tcp(0, 22))
                    .hostfwd(HostFwd::udp(5353, 53))
                    .restrict(true),
            )
            .netdev(
                Netdev::tap("t0")
                    .ifname("tap0")
                    .script("no")
                    .downscript("no"),
            )
            .netdev(Netdev::tap("t1").fd("5"))
            .netdev(Netdev::socket("s0").listen(":1234"))
            .netdev(Netdev::socket("s1").connect("127.0.0.1:1234"))
            .netdev(Netdev::socket("s2").mcast("230.0.0.1:1234")),
        &[
            "-netdev",
            "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:0-:22,hostfwd=udp:127.0.0.1:5353-:53",
            "-netdev",
            "tap,id=t0,ifname=tap0,script=no,downscript=no",
            "-netdev",
            "tap,id=t1,fd=5",
            "-netdev",
            "socket,id=s0,listen=:1234",
            "-netdev",
            "socket,id=s1,connect=127.0.0.1:1234",
            "-netdev",
            "socket,id=s2,mcast=230.0.0.1:1234",
        ],
    );
    golden(
        Cmdline::new().nic(
            Nic::new("user")
                .model("virtio-net-pci")
                .mac("52:54:00:12:34:56")
                .hostfwd(HostFwd::tcp(2222, 22).guest_addr("10.0.2.15")),
        ),
        &[
            "-nic",
            "user,model=virtio-net-pci,mac=52:54:00:12:34:56,hostfwd=tcp:127.0.0.1:2222-10.0.2.15:22",
        ],
    );
}

#[test]
fn boot_files_and_kernel() {
    golden(
        Cmdline::new()
            .kernel("/boot/vm,linuz")
            .initrd("/boot/initrd.img")
            .append("console=ttyS0 panic=-1 quiet")
            .dtb("/boot/x.dtb")
            .bios("/usr/share/seabios/bios.bin"),
        &[
            "-kernel",
            "/boot/vm,linuz",
            "-initrd",
            "/boot/initrd.img",
            "-append",
            "console=ttyS0 panic=-1 quiet",
            "-dtb",
            "/boot/x.dtb",
            "-bios",
            "/usr/share/seabios/bios.bin",
        ],
    );
    golden(
        Cmdline::new().boot(
            Boot::default()
                .order("cd")
                .once("d")
                .menu(true)
                .splash_time(500)
                .reboot_timeout(-1)
                .strict(true),
        ),
        &[
            "-boot",
            "cd,once=d,menu=on,splash-time=500,reboot-timeout=-1,strict=on",
        ],
    );
    refused(
        Cmdline::new().append("quiet\ninit=/bin/sh"),
        "-append",
        "quiet\ninit=/bin/sh",
    );
}

#[test]
fn migration_clock_firmware_fds() {
    golden(Cmdline::new().incoming("defer"), &["-incoming", "defer"]);
    golden(Cmdline::new().incoming_defer(), &["-incoming", "defer"]);
    golden(
        Cmdline::new().rtc(Rtc::default().base("utc").clock("host").driftfix("slew")),
        &["-rtc", "base=utc,clock=host,driftfix=slew"],
    );
    golden(
        Cmdline::new()
            .fw_cfg(FwCfg::with_string("opt/org.example/k", "a,b"))
            .fw_cfg(FwCfg::with_file("opt/org.example/f", "/tmp/f")),
        &[
            "-fw_cfg",
            "opt/org.example/k,string=a,,b",
            "-fw_cfg",
            "opt/org.example/f,file=/tmp/f",
        ],
    );
    golden(
        Cmdline::new().add_fd(AddFd::new(3, 1).opaque("rdonly:/a,b")),
        &["-add-fd", "fd=3,set=1,opaque=rdonly:/a,,b"],
    );
}

#[test]
fn diagnostics() {
    golden(
        Cmdline::new()
            .pidfile("/run/q.pid")
            .log_file("/tmp/qemu.log")
            .log_items(["guest_errors", "unimp"])
            .trace(Trace::new("qmp_*").file("/tmp/trace"))
            .msg(Msg::default().timestamp(true).guest_name(true)),
        &[
            "-pidfile",
            "/run/q.pid",
            "-D",
            "/tmp/qemu.log",
            "-d",
            "guest_errors,unimp",
            "-trace",
            "qmp_*,file=/tmp/trace",
            "-msg",
            "timestamp=on,guest-name=on",
        ],
    );
    refused(Cmdline::new().log_items(["a,b"]), "-d", "a,b");
}

#[test]
fn raw_arguments_pass_verbatim() {
    golden(
        Cmdline::new()
            .arg("-nographic")
            .args(["-parallel", "none"])
            .arg("disk,1.img"),
        &["-nographic", "-parallel", "none", "disk,1.img"],
    );
    refused(Cmdline::new().arg("a\0b"), "argument", "a\0b");
}

#[cfg(unix)]
#[test]
fn non_utf8_paths_survive() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let path = OsStr::from_bytes(b"/tmp/\xff,\xfe.img");
    let mut cmd = Cmdline::new();
    cmd.drive(Drive::new(path).format("raw")).kernel(path);
    let args = cmd.to_args().unwrap();
    assert_eq!(args[1].as_bytes(), b"file=/tmp/\xff,,\xfe.img,format=raw");
    assert_eq!(args[3].as_bytes(), path.as_bytes());
    assert_eq!(Cmdline::parse_args(&args).unwrap(), cmd);
    assert_eq!(
        cmd.to_string(),
        r"qemu-system-x86_64 -drive $'file=/tmp/\xff,,\xfe.img,format=raw' -kernel $'/tmp/\xff,\xfe.img'"
    );
}

#[test]
fn display_is_a_shell_line_and_commands_get_the_args() {
    let mut cmd = Cmdline::new();
    cmd.program("/opt/qemu bin/qemu")
        .name(Name::new("it's"))
        .append("a b");
    assert_eq!(
        cmd.to_string(),
        r"'/opt/qemu bin/qemu' -name 'it'\''s' -append 'a b'"
    );
    let command = cmd.command().unwrap();
    assert_eq!(command.get_program(), "/opt/qemu bin/qemu");
    let args: Vec<_> = command.get_args().collect();
    assert_eq!(args, ["-name", "it's", "-append", "a b"]);
    let mut existing = std::process::Command::new("qemu");
    cmd.apply_to(&mut existing).unwrap();
    assert_eq!(existing.get_args().count(), 4);
    #[cfg(feature = "tokio")]
    {
        let tokio_command = cmd.tokio_command().unwrap();
        assert_eq!(tokio_command.as_std().get_program(), "/opt/qemu bin/qemu");
        assert_eq!(tokio_command.as_std().get_args().count(), 4);
    }
    let bad = Cmdline::new().append("a\nb").to_string();
    assert!(bad.contains("not renderable"), "{bad}");
}

#[test]
fn the_builder_is_reusable() {
    let mut cmd = Cmdline::new();
    cmd.machine(Machine::new("none"));
    let first = cmd.to_args().unwrap();
    assert_eq!(first, cmd.to_args().unwrap());
    cmd.nodefaults();
    assert_eq!(cmd.to_args().unwrap().len(), first.len() + 1);
}

#[test]
fn parse_errors_name_the_option() {
    match Cmdline::parse_args(["-m"]) {
        Err(Error::MissingArgument { option }) => assert_eq!(option, "-m"),
        other => panic!("{other:?}"),
    }
    match Cmdline::parse_args(["-device", "{not json"]) {
        Err(Error::Parse { option, .. }) => assert_eq!(option, "-device"),
        other => panic!("{other:?}"),
    }
    let cmd = Cmdline::parse_argv([
        "qemu-system-aarch64",
        "--machine",
        "virt",
        "-M",
        "none",
        "-enable-kvm",
        "-unknown",
        "x",
    ])
    .unwrap();
    assert_eq!(cmd.get_program(), "qemu-system-aarch64");
    assert_eq!(
        cmd.get_args(),
        [
            Arg::Machine(Machine::new("virt")),
            Arg::Machine(Machine::new("none")),
            Arg::Raw("-enable-kvm".into()),
            Arg::Raw("-unknown".into()),
            Arg::Raw("x".into()),
        ]
    );
}

#[test]
fn short_form_booleans_parse_as_qemu_reads_them() {
    let cmd = Cmdline::parse_args(["-chardev", "socket,id=c,path=/x,server,nowait"]).unwrap();
    assert_eq!(
        cmd.get_args(),
        [Arg::Chardev(
            Chardev::socket_path("c", "/x").server(true).wait(false)
        )]
    );
    assert_eq!(
        cmd.to_args().unwrap(),
        ["-chardev", "socket,id=c,path=/x,server=on,wait=off"]
    );
}

/// The shell-quoted line reads back, through a real bash, as the same argv.
#[cfg(unix)]
#[test]
fn bash_reads_the_quoted_line_back_as_the_same_argv() {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let args: Vec<OsString> = [
        &b"plain"[..],
        b"",
        b"two words",
        b"it's",
        b"$HOME `id` $(id) \\ \"q\"",
        b"line\nbreak\ttab\r",
        b"\xff\xfe non-utf8 \x01",
        "ünïcødé".as_bytes(),
        b"a,,b=c",
        b"*?[glob]",
        b"!history",
    ]
    .iter()
    .map(|bytes| OsString::from_vec(bytes.to_vec()))
    .collect();
    let line = qemu_cmdline::shell_quote(&args);
    let output = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("printf '%s\\0' {line}"))
        .output()
        .expect("bash is installed");
    assert!(output.status.success(), "{output:?}");
    let mut printed: Vec<&[u8]> = output.stdout.split(|&b| b == 0).collect();
    assert_eq!(printed.pop(), Some(&b""[..]), "output ends with a NUL");
    let expected: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    assert_eq!(printed, expected, "line: {line}");
}
