//! Rendering the QEMU command line from the builder and the launch's fds.

use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;

use qemu_cmdline::escape_value;

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
/// Values QEMU cannot represent (a NUL byte, say) are refused.
pub(crate) fn qemu_argv(
    builder: &MachineBuilder,
    monitor: Option<&MonitorChardev>,
    console_fd: Option<RawFd>,
    passed_fds: &[(RawFd, u32, Option<String>)],
) -> Result<Vec<OsString>, qemu_cmdline::Error> {
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
                chardev.push(escape_value("-chardev", path.as_os_str())?);
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
                let mut device = escape_value("-device", OsStr::new(device_type))?;
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
            value.push(escape_value("-add-fd", OsStr::new(opaque))?);
        }
        push("-add-fd", value);
    }
    argv.extend(builder.args.iter().cloned());
    Ok(argv)
}

/// The argv as one line a shell would run unchanged, for error messages.
pub(crate) fn shell_line(argv: &[OsString]) -> String {
    qemu_cmdline::shell_quote(argv)
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
        )
        .expect("renders");
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
        )
        .expect("renders");
        let argv = strings(&argv);
        assert!(argv.contains(&"socket,id=qemukit-qmp,path=/tmp/a,,b/qmp.sock".to_owned()));
        assert!(argv.contains(&"virtconsole,chardev=qemukit-console".to_owned()));
        assert!(!argv.contains(&"-display".to_owned()));
    }

    #[test]
    fn unrepresentable_values_are_refused() {
        let mut builder = MachineBuilder::new();
        builder.console(ConsoleSpec::device("bad\0device"));
        assert!(qemu_argv(&builder, None, Some(3), &[]).is_err());
    }

    #[test]
    fn shell_line_quotes_what_needs_it() {
        let argv: Vec<OsString> = ["qemu", "-append", "console=ttyS0 quiet"]
            .iter()
            .map(OsString::from)
            .collect();
        assert_eq!(shell_line(&argv), "qemu -append 'console=ttyS0 quiet'");
    }
}
