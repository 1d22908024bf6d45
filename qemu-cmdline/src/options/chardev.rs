//! Character devices and monitors: `-chardev`, `-mon`, and the legacy
//! device strings of `-serial` and `-qmp`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::{Error, escape, keyval, os};

keyval_option! {
    /// `-chardev`: a host-side character device.
    ///
    /// ```
    /// use qemu_cmdline::Chardev;
    /// let c = Chardev::socket_path("mon", "/run/q,1.sock").server(true).wait(false);
    /// assert_eq!(c.render().unwrap(), "socket,id=mon,path=/run/q,,1.sock,server=on,wait=off");
    /// ```
    Chardev { option: "-chardev", implied: Some("backend") }
    fields {
        /// The backend: `socket`, `pipe`, `file`, `stdio`, `null`, `pty`, …
        backend: String [impl Into<String>] = "backend";
        /// The id other options refer to.
        id: String [impl Into<String>] = "id";
        /// A Unix socket, pipe or file path.
        path: PathBuf [impl Into<PathBuf>] = "path";
        /// TCP host.
        host: String [impl Into<String>] = "host";
        /// TCP port (or service name).
        port: String [impl Into<String>] = "port";
        /// An inherited, already open socket (`socket` backend).
        fd: i32 [i32] = "fd";
        /// Listen instead of connecting.
        server: bool [bool] = "server";
        /// As a server, wait for a client before the guest starts.
        wait: bool [bool] = "wait";
        /// Multiplex the device between several front ends.
        mux: bool [bool] = "mux";
        /// Also log everything to this file.
        logfile: PathBuf [impl Into<PathBuf>] = "logfile";
    }
    lists {}
}

impl Chardev {
    /// A chardev with backend `backend` and id `id`.
    pub fn new(backend: impl Into<String>, id: impl Into<String>) -> Self {
        Self::default().backend(backend).id(id)
    }
    /// A Unix socket at `path`.
    pub fn socket_path(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::new("socket", id).path(path)
    }
    /// A TCP socket on `host:port`.
    pub fn socket_tcp(id: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        Self::new("socket", id).host(host).port(port.to_string())
    }
    /// An already connected (or listening) socket inherited as `fd`.
    pub fn socket_fd(id: impl Into<String>, fd: i32) -> Self {
        Self::new("socket", id).fd(fd)
    }
    /// A pipe pair `path.in`/`path.out` (or the FIFO `path`).
    pub fn pipe(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::new("pipe", id).path(path)
    }
    /// Output to a file.
    pub fn file(id: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        Self::new("file", id).path(path)
    }
    /// QEMU's own stdin/stdout.
    pub fn stdio(id: impl Into<String>) -> Self {
        Self::new("stdio", id)
    }
    /// Discards output, never gives input.
    pub fn null(id: impl Into<String>) -> Self {
        Self::new("null", id)
    }
    /// A new pseudo-terminal.
    pub fn pty(id: impl Into<String>) -> Self {
        Self::new("pty", id)
    }
}

keyval_option! {
    /// `-mon`: a monitor on a chardev.
    Mon { option: "-mon", implied: Some("chardev") }
    fields {
        /// The chardev id.
        chardev: String [impl Into<String>] = "chardev";
        /// `control` (QMP) or `readline` (HMP).
        mode: String [impl Into<String>] = "mode";
        /// Pretty-print QMP JSON.
        pretty: bool [bool] = "pretty";
    }
    lists {}
}

impl Mon {
    /// A QMP monitor on the chardev `chardev`.
    pub fn qmp(chardev: impl Into<String>) -> Self {
        Self::default().chardev(chardev).mode("control")
    }
    /// A human monitor on the chardev `chardev`.
    pub fn hmp(chardev: impl Into<String>) -> Self {
        Self::default().chardev(chardev).mode("readline")
    }
}

/// The legacy device string of `-serial`, `-qmp` and `-monitor`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CharDevSpec {
    /// `chardev:ID`: a `-chardev` defined separately (the recommended way).
    Chardev(String),
    /// `stdio`.
    Stdio,
    /// `null`.
    Null,
    /// `pty`.
    Pty,
    /// `none`: no device.
    None,
    /// `vc`: a virtual console.
    Vc,
    /// `file:PATH` (taken verbatim by QEMU, commas included).
    File(PathBuf),
    /// `pipe:PATH` (taken verbatim).
    Pipe(PathBuf),
    /// `unix:PATH,server=…,wait=…`.
    Unix {
        /// Socket path.
        path: PathBuf,
        /// Listen.
        server: bool,
        /// Wait for a client before starting.
        wait: bool,
    },
    /// `tcp:HOST:PORT,server=…,wait=…`.
    Tcp {
        /// Host name or IPv4 address (no `:`).
        host: String,
        /// Port.
        port: u16,
        /// Listen.
        server: bool,
        /// Wait for a client before starting.
        wait: bool,
    },
    /// Anything else, passed verbatim.
    Raw(OsString),
}

impl CharDevSpec {
    /// Renders the device string for `option`.
    pub(crate) fn render(&self, option: &'static str) -> Result<OsString, Error> {
        let simple = |text: &str| Ok(OsString::from(text));
        let with_prefix = |prefix: &str, rest: &OsStr| {
            escape::check_plain(option, rest)?;
            let mut out = OsString::from(prefix);
            out.push(rest);
            Ok(out)
        };
        let switches =
            |server: bool, wait: bool| format!(",server={},wait={}", on_off(server), on_off(wait));
        match self {
            CharDevSpec::Chardev(id) => {
                escape::check_id(option, OsStr::new(id))?;
                with_prefix("chardev:", OsStr::new(id))
            }
            CharDevSpec::Stdio => simple("stdio"),
            CharDevSpec::Null => simple("null"),
            CharDevSpec::Pty => simple("pty"),
            CharDevSpec::None => simple("none"),
            CharDevSpec::Vc => simple("vc"),
            CharDevSpec::File(path) => with_prefix("file:", path.as_os_str()),
            CharDevSpec::Pipe(path) => with_prefix("pipe:", path.as_os_str()),
            CharDevSpec::Unix { path, server, wait } => {
                // QEMU reads `unix:` like `-chardev` with the implied key
                // `path`, so a path holding `=` needs the key spelled out.
                let bare =
                    !path.as_os_str().is_empty() && !os::bytes(path.as_os_str()).contains(&b'=');
                let mut out = OsString::from(if bare { "unix:" } else { "unix:path=" });
                out.push(escape::escape_value(option, path.as_os_str())?);
                out.push(switches(*server, *wait));
                Ok(out)
            }
            CharDevSpec::Tcp {
                host,
                port,
                server,
                wait,
            } => {
                if host.contains([':', ',', '\0']) {
                    return Err(Error::Unrepresentable {
                        option,
                        value: host.into(),
                        reason: "a tcp: host cannot hold ':' or ','; use -chardev socket",
                    });
                }
                Ok(format!("tcp:{host}:{port}{}", switches(*server, *wait)).into())
            }
            CharDevSpec::Raw(raw) => {
                escape::check_plain(option, raw)?;
                Ok(raw.clone())
            }
        }
    }

    /// Reads a device string back; what does not fit a typed variant
    /// stays [`CharDevSpec::Raw`].
    pub fn parse(value: impl AsRef<OsStr>) -> Self {
        let value = value.as_ref();
        Self::parse_typed(value).unwrap_or_else(|| CharDevSpec::Raw(value.to_owned()))
    }

    fn parse_typed(value: &OsStr) -> Option<Self> {
        let bytes = os::bytes(value);
        let rest = |prefix: &str| {
            bytes
                .strip_prefix(prefix.as_bytes())
                .map(|rest| os::from_bytes(rest.to_vec()))
        };
        if let Some(id) = rest("chardev:") {
            return Some(CharDevSpec::Chardev(id.into_string().ok()?));
        }
        if let Some(path) = rest("file:") {
            return Some(CharDevSpec::File(path.into()));
        }
        if let Some(path) = rest("pipe:") {
            return Some(CharDevSpec::Pipe(path.into()));
        }
        if let Some(spec) = rest("unix:") {
            let entries = keyval::split("-serial", &spec, Some("path")).ok()?;
            let [(k0, path), (k1, server), (k2, wait)] = <[_; 3]>::try_from(entries).ok()?;
            if (k0.as_str(), k1.as_str(), k2.as_str()) != ("path", "server", "wait") {
                return None;
            }
            return Some(CharDevSpec::Unix {
                path: path.into(),
                server: parse_on_off(&server)?,
                wait: parse_on_off(&wait)?,
            });
        }
        if let Some(spec) = rest("tcp:") {
            let spec = spec.into_string().ok()?;
            let (host, rest) = spec.split_once(':')?;
            let (port, rest) = rest.split_once(',')?;
            let (server, wait) = rest.strip_prefix("server=")?.split_once(",wait=")?;
            let port: u16 = port.parse().ok()?;
            let spec = CharDevSpec::Tcp {
                host: host.into(),
                port,
                server: parse_on_off(OsStr::new(server))?,
                wait: parse_on_off(OsStr::new(wait))?,
            };
            // Only the canonical spelling is typed.
            return (spec.render("-serial").ok()? == value).then_some(spec);
        }
        match value.to_str()? {
            "stdio" => Some(CharDevSpec::Stdio),
            "null" => Some(CharDevSpec::Null),
            "pty" => Some(CharDevSpec::Pty),
            "none" => Some(CharDevSpec::None),
            "vc" => Some(CharDevSpec::Vc),
            _ => None,
        }
    }
}

fn on_off(value: bool) -> &'static str {
    if value { "on" } else { "off" }
}

fn parse_on_off(value: &OsStr) -> Option<bool> {
    match value.to_str()? {
        "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}
