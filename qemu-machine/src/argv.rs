//! Rendering the QEMU command line from the builder and the launch's fds.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::builder::MachineBuilder;

/// How QEMU reaches the QMP monitor.
#[derive(Debug, Clone)]
pub(crate) enum MonitorChardev {
    /// An inherited socketpair end.
    Fd(RawFd),
    /// Connect to this Unix socket.
    Unix(PathBuf),
    /// Connect to this TCP address.
    Tcp(SocketAddr),
}

/// The chardev ids qemu-machine uses.
const QMP_ID: &str = "qemukit-qmp";
const CONSOLE_ID: &str = "qemukit-console";

/// The full argv: wrapper, binary, qemu-machine's options, then the user's.
pub(crate) fn qemu_argv(
    builder: &MachineBuilder,
    monitor: Option<&MonitorChardev>,
    console_fd: Option<RawFd>,
    passed_fds: &[(RawFd, u32, Option<String>)],
) -> Vec<OsString> {
    let mut argv: Vec<OsString> = builder.wrapper.clone();
    argv.push(builder.binary.clone().into_os_string());
    let mut push = |option: &str, value: OsString| {
        argv.push(option.into());
        argv.push(value);
    };
    if builder.default_args {
        push("-display", "none".into());
        push("-vga", "none".into());
    }
    if let Some(machine_type) = &builder.machine_type {
        push("-machine", machine_type.into());
    }
    if let Some(accel) = builder.accel.option_value() {
        push("-accel", accel.into());
    }
    if let Some(monitor) = monitor {
        let mut chardev = OsString::from(format!("socket,id={QMP_ID},"));
        match monitor {
            MonitorChardev::Fd(fd) => chardev.push(format!("fd={fd}")),
            MonitorChardev::Unix(path) => {
                chardev.push("path=");
                chardev.push(escape_value(path.as_os_str()));
            }
            MonitorChardev::Tcp(addr) => {
                chardev.push(format!("host={},port={}", addr.ip(), addr.port()));
            }
        }
        push("-chardev", chardev);
        push("-mon", format!("chardev={QMP_ID},mode=control").into());
    }
    if builder.monitor_null {
        push("-monitor", "null".into());
    }
    if let (Some(fd), Some(console)) = (console_fd, &builder.console) {
        push("-chardev", format!("socket,id={CONSOLE_ID},fd={fd}").into());
        match &console.device_type {
            Some(device_type) => {
                let mut device = escape_value(OsStr::new(device_type));
                device.push(format!(",chardev={CONSOLE_ID}"));
                push("-device", device);
            }
            None => {
                for _ in 0..console.index {
                    push("-serial", "null".into());
                }
                push("-serial", format!("chardev:{CONSOLE_ID}").into());
            }
        }
    }
    for (fd, fdset, opaque) in passed_fds {
        let mut value = OsString::from(format!("fd={fd},set={fdset}"));
        if let Some(opaque) = opaque {
            value.push(",opaque=");
            value.push(escape_value(OsStr::new(opaque)));
        }
        push("-add-fd", value);
    }
    argv.extend(builder.args.iter().cloned());
    argv
}

/// Doubles the commas of an option value, as QEMU's option parser needs.
fn escape_value(value: &OsStr) -> OsString {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let mut out = Vec::with_capacity(value.len());
    for &byte in value.as_bytes() {
        out.push(byte);
        if byte == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

/// The argv as one line a shell would run unchanged, for error messages.
pub(crate) fn shell_line(argv: &[OsString]) -> String {
    let mut line = String::new();
    for (index, arg) in argv.iter().enumerate() {
        if index > 0 {
            line.push(' ');
        }
        let arg = arg.to_string_lossy();
        let plain = !arg.is_empty()
            && arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_=,./:@%+".contains(c));
        if plain {
            line.push_str(&arg);
        } else {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ConsoleSpec;

    fn strings(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn renders_monitor_console_and_fds() {
        let mut builder = MachineBuilder::new();
        builder
            .wrapper(["taskset", "-c", "0"])
            .machine_type("none")
            .console(ConsoleSpec::serial().index(1))
            .args(["-m", "128"]);
        let argv = qemu_argv(
            &builder,
            Some(&MonitorChardev::Fd(7)),
            Some(8),
            &[(9, 2, Some("a,b".into()))],
        );
        assert_eq!(
            strings(&argv),
            [
                "taskset",
                "-c",
                "0",
                "qemu-system-x86_64",
                "-display",
                "none",
                "-vga",
                "none",
                "-machine",
                "none",
                "-accel",
                "tcg",
                "-chardev",
                "socket,id=qemukit-qmp,fd=7",
                "-mon",
                "chardev=qemukit-qmp,mode=control",
                "-chardev",
                "socket,id=qemukit-console,fd=8",
                "-serial",
                "null",
                "-serial",
                "chardev:qemukit-console",
                "-add-fd",
                "fd=9,set=2,opaque=a,,b",
                "-m",
                "128",
            ]
        );
    }

    #[test]
    fn unix_paths_have_commas_doubled_and_devices_name_the_chardev() {
        let mut builder = MachineBuilder::new();
        builder
            .default_args(false)
            .console(ConsoleSpec::device("virtconsole"));
        let argv = qemu_argv(
            &builder,
            Some(&MonitorChardev::Unix("/tmp/a,b/qmp.sock".into())),
            Some(4),
            &[],
        );
        let argv = strings(&argv);
        assert!(argv.contains(&"socket,id=qemukit-qmp,path=/tmp/a,,b/qmp.sock".to_owned()));
        assert!(argv.contains(&"virtconsole,chardev=qemukit-console".to_owned()));
        assert!(!argv.contains(&"-display".to_owned()));
    }

    #[test]
    fn shell_line_quotes_what_needs_it() {
        let argv: Vec<OsString> = ["qemu", "-append", "console=ttyS0 quiet", "it's", ""]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            shell_line(&argv),
            r"qemu -append 'console=ttyS0 quiet' 'it'\''s' ''"
        );
    }
}
