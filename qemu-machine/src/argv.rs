//! A launch's QEMU command line, rendered by qemu-cmdline: every value is
//! checked and escaped there, none is formatted here.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::Path;

use qemu_cmdline::{
    AddFd, CharDevSpec, Chardev, Cmdline, Device, Display, InheritFd, Machine, Mon,
};

use crate::accel_choice::chooses_accel;
use crate::monitor::MonitorEnd;
use crate::qtest::mode::{self, QtestEnd};
use crate::spec::LaunchSpec;

/// The chardev ids qemu-machine uses.
const QMP_ID: &str = "qemukit-qmp";
pub(crate) const CONSOLE_ID: &str = "qemukit-console";

/// The full argv: wrapper, binary, qemu-machine's options, then the
/// user's arguments as given.
pub(crate) fn render(
    spec: &LaunchSpec,
    monitor: Option<&MonitorEnd>,
    console: Option<&InheritFd>,
    qtest: Option<&QtestEnd>,
) -> Result<Vec<OsString>, qemu_cmdline::Error> {
    let fds: Vec<RawFd> = spec.fds.iter().map(|passed| passed.fd.number()).collect();
    let qtest = qtest.and_then(|end| Some((end.number()?, end.log_path())));
    render_numbers(spec, monitor, console.map(InheritFd::number), qtest, &fds)
}

/// The configuration part of [`render`] (see
/// [`MachineBuilder::configuration`](crate::MachineBuilder::configuration)):
/// no wrapper, binary, monitor or qtest socket, and `-1` for every descriptor, whose
/// number changes at each launch.
pub(crate) fn configuration(spec: &LaunchSpec) -> Result<Vec<OsString>, qemu_cmdline::Error> {
    const PER_LAUNCH: RawFd = -1;
    let console = spec.console.as_ref().map(|_| PER_LAUNCH);
    let fds = vec![PER_LAUNCH; spec.fds.len()];
    let mut argv = render_numbers(spec, None, console, None, &fds)?;
    argv.drain(..=spec.wrapper.len());
    Ok(argv)
}

/// [`render`] with the console's, the qtest socket's (and its log's) and
/// the `add_fd` descriptors' numbers given (`fds` in the order of `spec.fds`).
fn render_numbers(
    spec: &LaunchSpec,
    monitor: Option<&MonitorEnd>,
    console: Option<RawFd>,
    qtest: Option<(RawFd, Option<&Path>)>,
    fds: &[RawFd],
) -> Result<Vec<OsString>, qemu_cmdline::Error> {
    let mut cmdline = Cmdline::new();
    if spec.default_args {
        cmdline.display(Display::none()).vga("none");
    }
    if let Some(machine_type) = &spec.machine_type {
        cmdline.machine(Machine::new(machine_type.clone()));
    }
    // The user's own choice of accelerator wins: QEMU refuses `-accel`
    // beside `-machine accel=`, and a second `-accel` is only a fallback
    // (`-accel tcg -accel kvm` runs TCG).
    if let Some(accel) = spec
        .accel
        .as_ref()
        .filter(|_| !chooses_accel(&spec.user_args))
    {
        cmdline.accel(accel.clone());
    }
    if let Some(monitor) = monitor {
        cmdline
            .chardev(monitor.chardev(QMP_ID))
            .mon(Mon::qmp(QMP_ID));
    }
    if spec.monitor_null {
        cmdline.monitor(CharDevSpec::Null);
    }
    if let (Some(fd), Some((console, _))) = (console, &spec.console) {
        cmdline.chardev(Chardev::socket_fd(CONSOLE_ID, fd));
        match &console.device_type {
            Some(device_type) => {
                cmdline.device(Device::new(device_type.clone()).prop("chardev", CONSOLE_ID));
            }
            None => {
                for _ in 0..console.index {
                    cmdline.serial(CharDevSpec::Null);
                }
                cmdline.serial(CharDevSpec::Chardev(CONSOLE_ID.into()));
            }
        }
    }
    if let Some((fd, log)) = qtest {
        mode::add_args(&mut cmdline, fd, log);
    }
    for (passed, &fd) in spec.fds.iter().zip(fds) {
        let mut add_fd = AddFd::new(fd, i64::from(passed.fdset));
        if let Some(opaque) = &passed.opaque {
            add_fd = add_fd.opaque(opaque.clone());
        }
        cmdline.add_fd(add_fd);
    }
    let mut argv = spec.wrapper.clone();
    argv.push(spec.binary.clone().into_os_string());
    argv.extend(cmdline.to_args()?);
    argv.extend(spec.user_args.iter().cloned());
    Ok(argv)
}

#[cfg(test)]
mod tests {
    use std::os::fd::OwnedFd;

    use super::*;
    use crate::MachineBuilder;
    use crate::options::ConsoleSpec;
    use qemu_cmdline::Accel;

    fn strings(argv: &[OsString]) -> Vec<String> {
        argv.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn file() -> OwnedFd {
        OwnedFd::from(tempfile::tempfile().expect("tempfile"))
    }

    #[test]
    fn configuration_leaves_out_what_changes_at_each_launch()
    -> Result<(), Box<dyn std::error::Error>> {
        let mut builder = MachineBuilder::new();
        builder
            .binary("/opt/qemu/bin/qemu-system-x86_64")
            .wrapper(["taskset", "-c", "0"])
            .accel(Accel::tcg())
            .console(ConsoleSpec::serial())
            .add_fd(file(), 3, None)
            .args(["-m", "128"]);
        let first = builder.configuration()?;
        // Another launch dups the descriptors anew: the same configuration.
        assert_eq!(builder.configuration()?, first);
        assert_eq!(
            strings(&first),
            [
                "-display",
                "none",
                "-vga",
                "none",
                "-accel",
                "tcg",
                "-chardev",
                "socket,id=qemukit-console,fd=-1",
                "-serial",
                "chardev:qemukit-console",
                "-add-fd",
                "fd=-1,set=3",
                "-m",
                "128",
            ]
        );
        Ok(())
    }

    #[test]
    fn the_qtest_socket_is_no_part_of_the_configuration() -> Result<(), Box<dyn std::error::Error>>
    {
        let mut plain = MachineBuilder::new();
        plain.accel(Accel::tcg()).args(["-S"]);
        let mut qtest = MachineBuilder::new();
        qtest
            .accel(Accel::tcg())
            .args(["-S"])
            .qtest(true)
            .qtest_log(true);
        // A snapshot taken in qtest mode restores without it, and back.
        assert_eq!(qtest.configuration()?, plain.configuration()?);
        Ok(())
    }

    #[test]
    fn renders_monitor_console_and_fds() -> Result<(), Box<dyn std::error::Error>> {
        let mut builder = MachineBuilder::new();
        builder
            // Not the environment's ($QEMUKIT_QEMU, $QEMUKIT_ACCEL): fixed values.
            .binary("qemu-system-x86_64")
            .accel(Accel::tcg())
            .wrapper(["taskset", "-c", "0"])
            .machine_type("none")
            .console(ConsoleSpec::serial().index(1))
            .add_fd(file(), 2, Some("a,b"))
            .args(["-m", "128"]);
        let spec = builder.spec()?;
        let console = InheritFd::from(file());
        let argv = strings(&render(&spec, None, Some(&console), None)?);
        let set_fd = spec.fds[0].fd.number();
        assert_eq!(
            argv,
            [
                "taskset".to_owned(),
                "-c".into(),
                "0".into(),
                "qemu-system-x86_64".into(),
                "-display".into(),
                "none".into(),
                "-vga".into(),
                "none".into(),
                "-machine".into(),
                "none".into(),
                "-accel".into(),
                "tcg".into(),
                "-chardev".into(),
                format!("socket,id=qemukit-console,fd={}", console.number()),
                "-serial".into(),
                "null".into(),
                "-serial".into(),
                "chardev:qemukit-console".into(),
                "-add-fd".into(),
                format!("fd={set_fd},set=2,opaque=a,,b"),
                "-m".into(),
                "128".into(),
            ]
        );
        Ok(())
    }

    #[test]
    fn values_are_escaped_and_devices_name_the_chardev() -> Result<(), Box<dyn std::error::Error>> {
        let mut builder = MachineBuilder::new();
        builder
            .default_args(false)
            .machine_type("pc,accel=kvm")
            .accel(None)
            .add_monitor_null()
            .console(ConsoleSpec::device("virtconsole"));
        let console = InheritFd::from(file());
        let argv = strings(&render(&builder.spec()?, None, Some(&console), None)?);
        // A comma in the machine type cannot smuggle in a property.
        assert!(argv.contains(&"type=pc,,accel=kvm".to_owned()), "{argv:?}");
        assert!(
            argv.contains(&"virtconsole,chardev=qemukit-console".to_owned()),
            "{argv:?}"
        );
        assert!(!argv.contains(&"-display".to_owned()), "{argv:?}");
        assert!(!argv.contains(&"-accel".to_owned()), "{argv:?}");
        assert!(
            argv.windows(2).any(|w| w == ["-monitor", "null"]),
            "{argv:?}"
        );
        Ok(())
    }

    #[test]
    fn the_default_accelerator_steps_aside_for_the_users_choice()
    -> Result<(), Box<dyn std::error::Error>> {
        let accels = |user: &[&str]| -> Result<Vec<String>, Box<dyn std::error::Error>> {
            let mut builder = MachineBuilder::new();
            builder.accel(Accel::tcg()).args(user.iter().copied());
            let argv = strings(&render(&builder.spec()?, None, None, None)?);
            Ok(argv
                .windows(2)
                .filter(|w| w[0] == "-accel" || w[0] == "-machine" || w[0] == "-M")
                .map(|w| format!("{} {}", w[0], w[1]))
                .collect())
        };
        assert_eq!(accels(&[])?, ["-accel tcg"]);
        assert_eq!(accels(&["-accel", "kvm"])?, ["-accel kvm"]);
        assert_eq!(
            accels(&["-M", "pc,accel=kvm:tcg"])?,
            ["-M pc,accel=kvm:tcg"]
        );
        assert_eq!(
            accels(&["-machine", "q35"])?,
            ["-accel tcg", "-machine q35"]
        );
        assert_eq!(accels(&["-enable-kvm"])?, Vec::<String>::new());
        Ok(())
    }

    #[test]
    fn unrepresentable_values_are_refused() -> Result<(), Box<dyn std::error::Error>> {
        let mut builder = MachineBuilder::new();
        builder.console(ConsoleSpec::device("bad\0device"));
        let console = InheritFd::from(file());
        let rendered = render(&builder.spec()?, None, Some(&console), None);
        assert!(
            matches!(
                rendered,
                Err(qemu_cmdline::Error::Unrepresentable {
                    option: "-device",
                    ..
                })
            ),
            "{rendered:?}"
        );
        Ok(())
    }
}
