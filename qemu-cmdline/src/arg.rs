//! One option of a QEMU command line, typed, with its rendering and its
//! parsing from argv.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::options::{
    Accel, AddFd, Blockdev, Boot, CharDevSpec, Chardev, Cpu, Device, Display, Drive, FwCfg, Global,
    Machine, Memory, Mon, Msg, Name, Netdev, Nic, Object, Rtc, Smp, Trace,
};
use crate::{Error, escape, os};

/// One option (or raw argument) of a command line.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Arg {
    /// `-machine`.
    Machine(Machine),
    /// `-accel`.
    Accel(Accel),
    /// `-cpu`.
    Cpu(Cpu),
    /// `-smp`.
    Smp(Smp),
    /// `-m`.
    Memory(Memory),
    /// `-name`.
    Name(Name),
    /// `-uuid`.
    Uuid(String),
    /// `-nodefaults`.
    NoDefaults,
    /// `-no-reboot`.
    NoReboot,
    /// `-no-shutdown`.
    NoShutdown,
    /// `-S`: do not start the CPUs until `cont`.
    Paused,
    /// `-snapshot`.
    Snapshot,
    /// `-display`.
    Display(Display),
    /// `-vga`.
    Vga(String),
    /// `-serial`.
    Serial(CharDevSpec),
    /// `-chardev`.
    Chardev(Chardev),
    /// `-mon`.
    Mon(Mon),
    /// `-qmp`.
    Qmp(CharDevSpec),
    /// `-monitor`: a human monitor (`null` or `none` to have none).
    Monitor(CharDevSpec),
    /// `-device` in `key=value` syntax.
    Device(Device),
    /// `-device` in JSON syntax.
    DeviceJson(serde_json::Value),
    /// `-drive`.
    Drive(Drive),
    /// `-blockdev` in `key=value` syntax.
    Blockdev(Blockdev),
    /// `-blockdev` in JSON syntax.
    BlockdevJson(serde_json::Value),
    /// `-netdev` in `key=value` syntax.
    Netdev(Netdev),
    /// `-netdev` in JSON syntax.
    NetdevJson(serde_json::Value),
    /// `-nic`.
    Nic(Nic),
    /// `-object` in `key=value` syntax.
    Object(Object),
    /// `-object` in JSON syntax.
    ObjectJson(serde_json::Value),
    /// `-kernel`.
    Kernel(PathBuf),
    /// `-initrd`.
    Initrd(PathBuf),
    /// `-append`: the kernel command line.
    Append(OsString),
    /// `-dtb`.
    Dtb(PathBuf),
    /// `-bios`.
    Bios(PathBuf),
    /// `-boot`.
    Boot(Boot),
    /// `-incoming`: a migration URI, or `defer`.
    Incoming(String),
    /// `-rtc`.
    Rtc(Rtc),
    /// `-global`.
    Global(Global),
    /// `-fw_cfg`.
    FwCfg(FwCfg),
    /// `-add-fd`.
    AddFd(AddFd),
    /// `-pidfile`.
    PidFile(PathBuf),
    /// `-D`: the log file.
    LogFile(PathBuf),
    /// `-d`: log items, e.g. `guest_errors`.
    Log(Vec<String>),
    /// `-trace`.
    Trace(Trace),
    /// `-msg`.
    Msg(Msg),
    /// One argument passed verbatim.
    Raw(OsString),
}

fn pair(option: &str, value: OsString) -> Vec<OsString> {
    vec![OsString::from(option), value]
}

fn plain(option: &'static str, value: &OsStr) -> Result<Vec<OsString>, Error> {
    escape::check_plain(option, value)?;
    Ok(pair(option, value.to_owned()))
}

fn json(option: &'static str, value: &serde_json::Value) -> Result<Vec<OsString>, Error> {
    if !value.is_object() {
        return Err(Error::Unrepresentable {
            option,
            value: value.to_string().into(),
            reason: "the JSON syntax takes an object",
        });
    }
    if let Some(text) = find_nul(value) {
        return Err(Error::Unrepresentable {
            option,
            value: text.into(),
            reason: "QEMU's JSON parser refuses \\u0000 in strings",
        });
    }
    // serde_json escapes control characters, so the text itself holds no NUL.
    Ok(pair(option, value.to_string().into()))
}

/// The first string (or key) in `value` holding a NUL.
fn find_nul(value: &serde_json::Value) -> Option<&str> {
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(text.as_str()),
        serde_json::Value::Array(items) => items.iter().find_map(find_nul),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, value)| {
            if key.contains('\0') {
                Some(key.as_str())
            } else {
                find_nul(value)
            }
        }),
        _ => None,
    }
}

impl Arg {
    /// The option as written on the command line (`None` for a raw argument).
    pub fn option(&self) -> Option<&'static str> {
        Some(match self {
            Arg::Machine(_) => "-machine",
            Arg::Accel(_) => "-accel",
            Arg::Cpu(_) => "-cpu",
            Arg::Smp(_) => "-smp",
            Arg::Memory(_) => "-m",
            Arg::Name(_) => "-name",
            Arg::Uuid(_) => "-uuid",
            Arg::NoDefaults => "-nodefaults",
            Arg::NoReboot => "-no-reboot",
            Arg::NoShutdown => "-no-shutdown",
            Arg::Paused => "-S",
            Arg::Snapshot => "-snapshot",
            Arg::Display(_) => "-display",
            Arg::Vga(_) => "-vga",
            Arg::Serial(_) => "-serial",
            Arg::Chardev(_) => "-chardev",
            Arg::Mon(_) => "-mon",
            Arg::Qmp(_) => "-qmp",
            Arg::Monitor(_) => "-monitor",
            Arg::Device(_) | Arg::DeviceJson(_) => "-device",
            Arg::Drive(_) => "-drive",
            Arg::Blockdev(_) | Arg::BlockdevJson(_) => "-blockdev",
            Arg::Netdev(_) | Arg::NetdevJson(_) => "-netdev",
            Arg::Nic(_) => "-nic",
            Arg::Object(_) | Arg::ObjectJson(_) => "-object",
            Arg::Kernel(_) => "-kernel",
            Arg::Initrd(_) => "-initrd",
            Arg::Append(_) => "-append",
            Arg::Dtb(_) => "-dtb",
            Arg::Bios(_) => "-bios",
            Arg::Boot(_) => "-boot",
            Arg::Incoming(_) => "-incoming",
            Arg::Rtc(_) => "-rtc",
            Arg::Global(_) => "-global",
            Arg::FwCfg(_) => "-fw_cfg",
            Arg::AddFd(_) => "-add-fd",
            Arg::PidFile(_) => "-pidfile",
            Arg::LogFile(_) => "-D",
            Arg::Log(_) => "-d",
            Arg::Trace(_) => "-trace",
            Arg::Msg(_) => "-msg",
            Arg::Raw(_) => return None,
        })
    }

    /// Appends this option's argv entries to `out`.
    pub(crate) fn render_into(&self, out: &mut Vec<OsString>) -> Result<(), Error> {
        let option = self.option().unwrap_or("argument");
        let keyval = |value: Result<OsString, Error>| value.map(|v| pair(option, v));
        let rendered = match self {
            Arg::Machine(v) => keyval(v.render()),
            Arg::Accel(v) => keyval(v.render()),
            Arg::Cpu(v) => keyval(v.render()),
            Arg::Smp(v) => keyval(v.render()),
            Arg::Memory(v) => keyval(v.render()),
            Arg::Name(v) => keyval(v.render()),
            Arg::Display(v) => keyval(v.render()),
            Arg::Chardev(v) => keyval(v.render()),
            Arg::Mon(v) => keyval(v.render()),
            Arg::Device(v) => keyval(v.render()),
            Arg::Drive(v) => keyval(v.render()),
            Arg::Blockdev(v) => keyval(v.render()),
            Arg::Netdev(v) => keyval(v.render()),
            Arg::Nic(v) => keyval(v.render()),
            Arg::Object(v) => keyval(v.render()),
            Arg::Boot(v) => keyval(v.render()),
            Arg::Rtc(v) => keyval(v.render()),
            Arg::Global(v) => keyval(v.render()),
            Arg::FwCfg(v) => keyval(v.render()),
            Arg::AddFd(v) => keyval(v.render()),
            Arg::Trace(v) => keyval(v.render()),
            Arg::Msg(v) => keyval(v.render()),
            Arg::Serial(v) | Arg::Qmp(v) | Arg::Monitor(v) => keyval(v.render(option)),
            Arg::DeviceJson(v) | Arg::BlockdevJson(v) | Arg::NetdevJson(v) | Arg::ObjectJson(v) => {
                json(option, v)
            }
            Arg::NoDefaults | Arg::NoReboot | Arg::NoShutdown | Arg::Paused | Arg::Snapshot => {
                Ok(vec![option.into()])
            }
            Arg::Uuid(v) | Arg::Vga(v) | Arg::Incoming(v) => plain(option, OsStr::new(v)),
            Arg::Kernel(v)
            | Arg::Initrd(v)
            | Arg::Dtb(v)
            | Arg::Bios(v)
            | Arg::PidFile(v)
            | Arg::LogFile(v) => plain(option, v.as_os_str()),
            Arg::Append(v) => {
                escape::check_single_line(option, v)?;
                Ok(pair(option, v.clone()))
            }
            Arg::Log(items) => {
                for item in items {
                    escape::check_no_comma(option, item)?;
                    if item.is_empty() {
                        return Err(Error::Unrepresentable {
                            option,
                            value: OsString::new(),
                            reason: "an empty log item",
                        });
                    }
                }
                Ok(pair(option, items.join(",").into()))
            }
            Arg::Raw(v) => {
                escape::check_plain("argument", v)?;
                Ok(vec![v.clone()])
            }
        }?;
        out.extend(rendered);
        Ok(())
    }
}

/// QEMU flags (options without an argument) that have no typed form, so
/// an unknown option is known to take no argument.
const RAW_FLAGS: &[&str] = &[
    "nographic",
    "no-user-config",
    "enable-kvm",
    "no-hpet",
    "no-acpi",
    "s",
    "daemonize",
    "full-screen",
    "win2k-hack",
    "no-fd-bootchk",
    "only-migratable",
    "preconfig",
    "no-quit",
    "alt-grab",
    "ctrl-grab",
    "curses",
    "sdl",
    "portrait",
    "enable-fips",
    "h",
    "help",
    "version",
    "semihosting",
    "old-param",
    "xen-attach",
];

/// What an option name means to the parser.
pub(crate) enum Kind {
    /// A typed flag.
    Flag(Box<Arg>),
    /// A typed option taking one argument.
    Value(fn(&str, &OsStr) -> Result<Arg, Error>),
    /// An untyped flag.
    RawFlag,
    /// An untyped option: it takes the next argument unless that looks
    /// like an option.
    RawOption,
}

fn utf8(option: &str, value: &OsStr) -> Result<String, Error> {
    value
        .to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::Parse {
            option: option.into(),
            value: value.to_owned(),
            reason: "this option takes UTF-8 text".into(),
        })
}

fn json_value(option: &str, value: &OsStr) -> Result<Option<serde_json::Value>, Error> {
    let bytes = os::bytes(value);
    if bytes.first() != Some(&b'{') {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|err| Error::Parse {
            option: option.into(),
            value: value.to_owned(),
            reason: format!("invalid JSON syntax: {err}"),
        })
}

fn parse_global(value: &OsStr) -> Result<Arg, Error> {
    // The legacy form `driver.property=value` takes the value verbatim.
    let bytes = os::bytes(value);
    let key_end = bytes.iter().position(|&b| b == b'=' || b == b',');
    if let Some(end) = key_end.filter(|&end| bytes[end] == b'=') {
        if let Some(dot) = bytes[..end].iter().position(|&b| b == b'.') {
            let text = |range: &[u8]| String::from_utf8(range.to_vec()).ok();
            if let (Some(driver), Some(property), Some(value)) = (
                text(&bytes[..dot]),
                text(&bytes[dot + 1..end]),
                text(&bytes[end + 1..]),
            ) {
                return Ok(Arg::Global(Global::new(driver, property, value)));
            }
        }
    }
    Ok(Arg::Global(Global::parse(value)?))
}

/// Looks an option name (without its leading dashes) up.
pub(crate) fn lookup(name: &str) -> Kind {
    use Kind::{Flag, Value};
    match name {
        "nodefaults" => Flag(Box::new(Arg::NoDefaults)),
        "no-reboot" => Flag(Box::new(Arg::NoReboot)),
        "no-shutdown" => Flag(Box::new(Arg::NoShutdown)),
        "S" => Flag(Box::new(Arg::Paused)),
        "snapshot" => Flag(Box::new(Arg::Snapshot)),
        "machine" | "M" => Value(|_, v| Ok(Arg::Machine(Machine::parse(v)?))),
        "accel" => Value(|_, v| Ok(Arg::Accel(Accel::parse(v)?))),
        "cpu" => Value(|_, v| Ok(Arg::Cpu(Cpu::parse(v)?))),
        "smp" => Value(|_, v| Ok(Arg::Smp(Smp::parse(v)?))),
        "m" => Value(|_, v| Ok(Arg::Memory(Memory::parse(v)?))),
        "name" => Value(|_, v| Ok(Arg::Name(Name::parse(v)?))),
        "uuid" => Value(|o, v| Ok(Arg::Uuid(utf8(o, v)?))),
        "display" => Value(|_, v| Ok(Arg::Display(Display::parse(v)?))),
        "vga" => Value(|o, v| Ok(Arg::Vga(utf8(o, v)?))),
        "serial" => Value(|_, v| Ok(Arg::Serial(CharDevSpec::parse(v)))),
        "chardev" => Value(|_, v| Ok(Arg::Chardev(Chardev::parse(v)?))),
        "mon" => Value(|_, v| Ok(Arg::Mon(Mon::parse(v)?))),
        "qmp" => Value(|_, v| Ok(Arg::Qmp(CharDevSpec::parse(v)))),
        "monitor" => Value(|_, v| Ok(Arg::Monitor(CharDevSpec::parse(v)))),
        "device" => Value(|o, v| {
            Ok(match json_value(o, v)? {
                Some(json) => Arg::DeviceJson(json),
                None => Arg::Device(Device::parse(v)?),
            })
        }),
        "drive" => Value(|_, v| Ok(Arg::Drive(Drive::parse(v)?))),
        "blockdev" => Value(|o, v| {
            Ok(match json_value(o, v)? {
                Some(json) => Arg::BlockdevJson(json),
                None => Arg::Blockdev(Blockdev::parse(v)?),
            })
        }),
        "netdev" => Value(|o, v| {
            Ok(match json_value(o, v)? {
                Some(json) => Arg::NetdevJson(json),
                None => Arg::Netdev(Netdev::parse(v)?),
            })
        }),
        "nic" => Value(|_, v| Ok(Arg::Nic(Nic::parse(v)?))),
        "object" => Value(|o, v| {
            Ok(match json_value(o, v)? {
                Some(json) => Arg::ObjectJson(json),
                None => Arg::Object(Object::parse(v)?),
            })
        }),
        "kernel" => Value(|_, v| Ok(Arg::Kernel(v.into()))),
        "initrd" => Value(|_, v| Ok(Arg::Initrd(v.into()))),
        "append" => Value(|_, v| Ok(Arg::Append(v.to_owned()))),
        "dtb" => Value(|_, v| Ok(Arg::Dtb(v.into()))),
        "bios" => Value(|_, v| Ok(Arg::Bios(v.into()))),
        "boot" => Value(|_, v| Ok(Arg::Boot(Boot::parse(v)?))),
        "incoming" => Value(|o, v| Ok(Arg::Incoming(utf8(o, v)?))),
        "rtc" => Value(|_, v| Ok(Arg::Rtc(Rtc::parse(v)?))),
        "global" => Value(|_, v| parse_global(v)),
        "fw_cfg" => Value(|_, v| Ok(Arg::FwCfg(FwCfg::parse(v)?))),
        "add-fd" => Value(|_, v| Ok(Arg::AddFd(AddFd::parse(v)?))),
        "pidfile" => Value(|_, v| Ok(Arg::PidFile(v.into()))),
        "D" => Value(|_, v| Ok(Arg::LogFile(v.into()))),
        "d" => Value(|o, v| {
            Ok(Arg::Log(
                utf8(o, v)?.split(',').map(str::to_owned).collect(),
            ))
        }),
        "trace" => Value(|_, v| Ok(Arg::Trace(Trace::parse(v)?))),
        "msg" => Value(|_, v| Ok(Arg::Msg(Msg::parse(v)?))),
        flag if RAW_FLAGS.contains(&flag) => Kind::RawFlag,
        _ => Kind::RawOption,
    }
}
