//! `parse(render(x)) == x` over generated command lines, with commas,
//! `=`, quotes and (on Unix) bytes that are not UTF-8 in the values.

use std::ffi::OsString;
use std::path::PathBuf;

use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use qemu_cmdline::*;

/// Free text: the characters that break naive renderers.
fn text() -> BoxedStrategy<String> {
    "[a-zA-Z0-9,=. _'\"/:ü{}-]{0,12}".boxed()
}

fn word() -> BoxedStrategy<String> {
    "[a-z][a-z0-9-]{0,8}".boxed()
}

fn id() -> BoxedStrategy<String> {
    "[a-zA-Z][a-zA-Z0-9_.-]{0,8}".boxed()
}

/// Any bytes but NUL (lossy UTF-8 off Unix).
fn os_text() -> BoxedStrategy<OsString> {
    proptest::collection::vec(1u8..=255, 0..12)
        .prop_map(|bytes| {
            #[cfg(unix)]
            {
                use std::os::unix::ffi::OsStringExt;
                OsString::from_vec(bytes)
            }
            #[cfg(not(unix))]
            {
                OsString::from(String::from_utf8_lossy(&bytes).into_owned())
            }
        })
        .boxed()
}

fn path() -> BoxedStrategy<PathBuf> {
    os_text().prop_map(PathBuf::from).boxed()
}

/// Extra properties, with keys no typed field uses.
fn props() -> BoxedStrategy<Vec<(String, OsString)>> {
    proptest::collection::vec(("x-[a-z]{1,5}", os_text()), 0..3).boxed()
}

fn opt<T: std::fmt::Debug + Clone + 'static>(s: BoxedStrategy<T>) -> BoxedStrategy<Option<T>> {
    proptest::option::of(s).boxed()
}

fn with_props<T: Clone>(
    mut value: T,
    props: Vec<(String, OsString)>,
    set: fn(&mut T, Vec<(String, OsString)>),
) -> T {
    set(&mut value, props);
    value
}

macro_rules! keyval_arm {
    ($variant:ident, $ty:ident { $($field:ident: $strategy:expr),* $(,)? }) => {
        ($( $strategy, )* props())
            .prop_map(|($($field,)* props)| {
                let mut value = $ty::default();
                $( value.$field = $field; )*
                Arg::$variant(with_props(value, props, |v, p| v.props = p))
            })
            .boxed()
    };
}

fn hostfwd() -> BoxedStrategy<HostFwd> {
    (any::<bool>(), any::<u16>(), any::<u16>(), any::<bool>())
        .prop_map(|(udp, host, guest, with_guest_addr)| {
            let fwd = if udp {
                HostFwd::udp(host, guest)
            } else {
                HostFwd::tcp(host, guest)
            };
            if with_guest_addr {
                fwd.guest_addr("10.0.2.15")
            } else {
                fwd.host_addr("")
            }
        })
        .boxed()
}

fn chardev_spec() -> BoxedStrategy<CharDevSpec> {
    prop_oneof![
        id().prop_map(CharDevSpec::Chardev),
        Just(CharDevSpec::Stdio),
        Just(CharDevSpec::Null),
        Just(CharDevSpec::Pty),
        Just(CharDevSpec::None),
        Just(CharDevSpec::Vc),
        path().prop_map(CharDevSpec::File),
        path().prop_map(CharDevSpec::Pipe),
        (path(), any::<bool>(), any::<bool>()).prop_map(|(path, server, wait)| CharDevSpec::Unix {
            path,
            server,
            wait
        }),
        (
            "[a-z0-9.]{1,10}",
            any::<u16>(),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(host, port, server, wait)| CharDevSpec::Tcp {
                host,
                port,
                server,
                wait
            }),
    ]
    .boxed()
}

fn cpu() -> BoxedStrategy<Cpu> {
    let flag = prop_oneof![
        "[a-z][a-z0-9_]{0,6}".prop_map(CpuFlag::Enable),
        "[a-z][a-z0-9_]{0,6}".prop_map(CpuFlag::Disable),
        ("[a-z][a-z0-9-]{0,6}", "[a-z0-9=.]{0,4}").prop_map(|(k, v)| CpuFlag::Set(k, v)),
    ];
    (
        "[A-Za-z][A-Za-z0-9-]{0,8}",
        proptest::collection::vec(flag, 0..4),
    )
        .prop_map(|(model, flags)| {
            let mut cpu = Cpu::new(model);
            cpu.flags = flags;
            cpu
        })
        .boxed()
}

fn json_object() -> BoxedStrategy<serde_json::Value> {
    proptest::collection::btree_map(
        "[a-z-]{1,6}",
        prop_oneof![
            text().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<bool>().prop_map(serde_json::Value::from),
        ],
        0..4,
    )
    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect()))
    .boxed()
}

fn arg() -> BoxedStrategy<Arg> {
    let b = || any::<bool>().boxed();
    let n = || any::<u32>().boxed();
    Union::new(vec![
        keyval_arm!(
            Machine,
            Machine {
                kind: opt(word()),
                accel: opt(text())
            }
        ),
        keyval_arm!(
            Accel,
            Accel {
                kind: opt(word()),
                thread: opt(text()),
                tb_size: opt(any::<u64>().boxed())
            }
        ),
        cpu().prop_map(Arg::Cpu).boxed(),
        keyval_arm!(
            Smp,
            Smp {
                cpus: opt(n()),
                sockets: opt(n()),
                dies: opt(n()),
                cores: opt(n()),
                threads: opt(n()),
                maxcpus: opt(n())
            }
        ),
        keyval_arm!(
            Memory,
            Memory {
                size: opt(text()),
                slots: opt(n()),
                maxmem: opt(text())
            }
        ),
        keyval_arm!(
            Name,
            Name {
                guest: opt(text()),
                process: opt(text()),
                debug_threads: opt(b())
            }
        ),
        text().prop_map(Arg::Uuid).boxed(),
        Just(Arg::NoDefaults).boxed(),
        Just(Arg::NoReboot).boxed(),
        Just(Arg::NoShutdown).boxed(),
        Just(Arg::Paused).boxed(),
        Just(Arg::Snapshot).boxed(),
        keyval_arm!(Display, Display { kind: opt(word()) }),
        text().prop_map(Arg::Vga).boxed(),
        chardev_spec().prop_map(Arg::Serial).boxed(),
        chardev_spec().prop_map(Arg::Qmp).boxed(),
        keyval_arm!(
            Chardev,
            Chardev {
                backend: opt(word()),
                id: opt(id()),
                path: opt(path()),
                host: opt(text()),
                port: opt(text()),
                fd: opt(any::<i32>().boxed()),
                server: opt(b()),
                wait: opt(b()),
                mux: opt(b()),
                logfile: opt(path()),
            }
        ),
        keyval_arm!(
            Mon,
            Mon {
                chardev: opt(id()),
                mode: opt(word()),
                pretty: opt(b())
            }
        ),
        keyval_arm!(
            Device,
            Device {
                driver: opt(word()),
                id: opt(id()),
                bus: opt(text())
            }
        ),
        json_object().prop_map(Arg::DeviceJson).boxed(),
        keyval_arm!(
            Drive,
            Drive {
                file: opt(path()),
                format: opt(text()),
                interface: opt(word()),
                id: opt(id()),
                media: opt(word()),
                readonly: opt(b()),
                snapshot: opt(b()),
                cache: opt(text()),
                index: opt(n()),
            }
        ),
        keyval_arm!(
            Blockdev,
            Blockdev {
                driver: opt(word()),
                node_name: opt(text()),
                read_only: opt(b()),
                filename: opt(path())
            }
        ),
        json_object().prop_map(Arg::BlockdevJson).boxed(),
        (
            keyval_arm!(
                Netdev,
                Netdev {
                    kind: opt(word()),
                    id: opt(id()),
                    net: opt(text()),
                    restrict: opt(b()),
                    ifname: opt(text()),
                    script: opt(path()),
                    downscript: opt(path()),
                    fd: opt(text()),
                    listen: opt(text()),
                    connect: opt(text()),
                    mcast: opt(text()),
                }
            ),
            proptest::collection::vec(hostfwd(), 0..3),
        )
            .prop_map(|(arg, fwds)| match arg {
                Arg::Netdev(mut netdev) => {
                    netdev.hostfwd = fwds;
                    Arg::Netdev(netdev)
                }
                other => other,
            })
            .boxed(),
        json_object().prop_map(Arg::NetdevJson).boxed(),
        keyval_arm!(
            Nic,
            Nic {
                kind: opt(word()),
                model: opt(text()),
                mac: opt(text())
            }
        ),
        keyval_arm!(
            Object,
            Object {
                qom_type: opt(word()),
                id: opt(id())
            }
        ),
        json_object().prop_map(Arg::ObjectJson).boxed(),
        path().prop_map(Arg::Kernel).boxed(),
        path().prop_map(Arg::Initrd).boxed(),
        "[a-zA-Z0-9,=. _'\"/:-]{0,20}"
            .prop_map(|s| Arg::Append(s.into()))
            .boxed(),
        path().prop_map(Arg::Dtb).boxed(),
        path().prop_map(Arg::Bios).boxed(),
        keyval_arm!(
            Boot,
            Boot {
                order: opt(text()),
                once: opt(text()),
                menu: opt(b()),
                splash: opt(path()),
                splash_time: opt(n()),
                reboot_timeout: opt(any::<i64>().boxed()),
                strict: opt(b()),
            }
        ),
        text().prop_map(Arg::Incoming).boxed(),
        keyval_arm!(
            Rtc,
            Rtc {
                base: opt(text()),
                clock: opt(text()),
                driftfix: opt(text())
            }
        ),
        keyval_arm!(
            Global,
            Global {
                driver: opt(word()),
                property: opt(text()),
                value: opt(text())
            }
        ),
        keyval_arm!(
            FwCfg,
            FwCfg {
                name: opt(text()),
                file: opt(path()),
                string: opt(text())
            }
        ),
        keyval_arm!(
            AddFd,
            AddFd {
                fd: opt(any::<i32>().boxed()),
                set: opt(any::<i64>().boxed()),
                opaque: opt(text())
            }
        ),
        path().prop_map(Arg::PidFile).boxed(),
        path().prop_map(Arg::LogFile).boxed(),
        proptest::collection::vec("[a-z_]{1,8}", 1..4)
            .prop_map(Arg::Log)
            .boxed(),
        keyval_arm!(
            Trace,
            Trace {
                enable: opt(text()),
                events: opt(path()),
                file: opt(path())
            }
        ),
        keyval_arm!(
            Msg,
            Msg {
                timestamp: opt(b()),
                guest_name: opt(b())
            }
        ),
        "-zz[a-z]{1,4}".prop_map(|s| Arg::Raw(s.into())).boxed(),
        "[a-z0-9/.,]{1,8}".prop_map(|s| Arg::Raw(s.into())).boxed(),
    ])
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_of_render_is_identity(args in proptest::collection::vec(arg(), 0..12)) {
        let mut cmd = Cmdline::new();
        for arg in args {
            cmd.push(arg);
        }
        let rendered = cmd.to_args().expect("generated values are representable");
        let parsed = Cmdline::parse_args(&rendered).expect("rendered argv parses");
        prop_assert_eq!(parsed, cmd);
    }

    /// Splitting undoes escaping for any value, whatever it holds.
    #[test]
    fn split_undoes_escape(key in "[a-z][a-z-]{0,6}", value in os_text()) {
        let mut arg = OsString::from(format!("{key}="));
        arg.push(escape_value("-device", &value).unwrap());
        arg.push(",next=1");
        let entries = split_keyvals("-device", &arg, None).unwrap();
        prop_assert_eq!(entries, vec![(key, value), ("next".to_owned(), OsString::from("1"))]);
    }
}
