//! A typed client for the QEMU guest agent (qemu-ga, "QGA").
//!
//! The agent speaks QMP's JSON over a virtio-serial port, but with no
//! greeting, no negotiation and no events, one command at a time. A client
//! that connects may find stale bytes in the stream (a reply meant for a
//! previous client, half a request from one) and the agent may not be
//! running yet, so the protocol's answer is `guest-sync-delimited`: send
//! 0xFF (the agent drops any partial input), send the command with a random
//! id, discard everything up to the 0xFF the agent puts before its reply
//! ([`ClientCodec::resync`]) and retry until the reply carries that id.
//! [`Agent`] does this on connect, after every timeout, and after any call
//! that was cancelled midway.
//!
//! Replies and errors reuse the QMP client's types: an agent error is
//! [`Error::Qmp`], a command without a reply in time is
//! [`Error::CommandTimeout`] (for the sync too), the end of the stream is
//! [`Error::Disconnected`].

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use bytes::BytesMut;
use qmp_proto::{ClientCodec, Command, Empty, Limits, Request, ServerMessage};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder};
use tracing::{debug, trace};

use crate::config::Config;
use crate::error::{Disconnect, Error};

/// The byte that resets the agent's parser and marks the sync reply.
const SENTINEL: u8 = 0xFF;
/// The first wait for a sync reply; it doubles up to [`MAX_ATTEMPT`].
const FIRST_ATTEMPT: Duration = Duration::from_millis(250);
const MAX_ATTEMPT: Duration = Duration::from_secs(2);
/// How long `exec` waits between two `guest-exec-status` polls, at most.
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Used when the [`Config`] sets no timeout: every wait has one.
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(60);

/// A guest-agent connection over a stream: one end of the socket pair
/// whose other end QEMU got as `-chardev socket,id=qga0,fd=N` with
/// `-device virtio-serial-pci -device
/// virtserialport,chardev=qga0,name=org.qemu.guest_agent.0`.
///
/// Commands run one at a time (`&mut self`), as the agent runs them.
/// Dropping a call midway is safe: the next call resyncs first.
///
/// ```no_run
/// # async fn demo(io: tokio::net::UnixStream) -> Result<(), qmp_client::Error> {
/// use qmp_client::agent::Agent;
///
/// let mut agent = Agent::connect(io, &qmp_client::Config::default()).await?;
/// agent.ping().await?;
/// let done = agent.exec("/bin/uname", ["-r"]).await?;
/// assert_eq!(done.exit_code, Some(0));
/// println!("{}", String::from_utf8_lossy(&done.stdout));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Agent<IO> {
    io: IO,
    codec: ClientCodec,
    read_buf: BytesMut,
    /// False until a sync succeeds, and from the start of each call until
    /// its reply has been read.
    in_sync: bool,
    next_id: u64,
    sync_timeout: Duration,
    command_timeout: Duration,
    random: RandomState,
}

impl<IO> Agent<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    /// Wraps `io` without any I/O; the first command syncs first.
    ///
    /// Uses [`Config::handshake_timeout`] for syncing (it includes waiting
    /// for the agent to start), [`Config::command_timeout`] per command and
    /// [`Config::max_message_size`]; an unset timeout means 60 s.
    pub fn new(io: IO, config: &Config) -> Self {
        let limits = Limits {
            max_message_size: config.max_message_size,
            ..Limits::default()
        };
        Self {
            io,
            codec: ClientCodec::with_limits(limits),
            read_buf: BytesMut::new(),
            in_sync: false,
            next_id: 1,
            sync_timeout: config.handshake_timeout.unwrap_or(FALLBACK_TIMEOUT),
            command_timeout: config.command_timeout.unwrap_or(FALLBACK_TIMEOUT),
            random: RandomState::new(),
        }
    }

    /// Wraps `io` and syncs with the agent, retrying until it answers
    /// (it starts a little after the guest's shell) or
    /// [`Config::handshake_timeout`] expires.
    pub async fn connect(io: IO, config: &Config) -> Result<Self, Error> {
        let mut agent = Self::new(io, config);
        agent.sync(agent.sync_timeout).await?;
        Ok(agent)
    }

    /// Syncs with `guest-sync-delimited`, retrying until the agent answers
    /// with our random id, for at most `timeout`.
    ///
    /// Each attempt sends 0xFF (the agent drops partial input), then the
    /// command, then discards input up to the 0xFF that precedes the
    /// reply; replies with another id (to an earlier attempt) are skipped.
    pub async fn sync(&mut self, timeout: Duration) -> Result<(), Error> {
        const NAME: &str = "guest-sync-delimited";
        let deadline = crate::deadline::deadline(Instant::now(), timeout);
        let mut attempt = FIRST_ATTEMPT;
        let mut attempts = 0u32;
        self.in_sync = false;
        loop {
            attempts += 1;
            let token = self.random.hash_one((attempts, self.next_id)) & 0x7fff_ffff;
            self.codec.resync();
            let request = Request::new(NAME)
                .with_arguments(object(json!({ "id": token })))
                .with_id(self.take_id());
            let mut bytes = BytesMut::from(&[SENTINEL][..]);
            self.codec
                .encode(&request, &mut bytes)
                .map_err(|source| Error::Arguments {
                    command: NAME.into(),
                    source,
                })?;
            trace!(target: "qmp_client::wire", token, attempts, "agent sync");
            self.write(&bytes).await?;
            let until = deadline.min(Instant::now() + attempt);
            loop {
                match self.read_until(until).await? {
                    None => break,
                    Some(ServerMessage::Success(reply)) if reply.ret == json!(token) => {
                        debug!(attempts, "guest agent in sync");
                        self.in_sync = true;
                        return Ok(());
                    }
                    Some(other) => trace!(?other, "skipped while syncing with the agent"),
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::CommandTimeout {
                    command: format!("{NAME} (the guest agent did not answer {attempts} syncs)"),
                    timeout,
                });
            }
            attempt = (attempt * 2).min(MAX_ATTEMPT);
        }
    }

    /// Runs a typed agent command under [`Config::command_timeout`].
    pub async fn execute<C: Command>(&mut self, command: &C) -> Result<C::Output, Error> {
        let timeout = self.command_timeout;
        self.execute_with_timeout(command, timeout).await
    }

    /// Runs a typed agent command under `timeout` (syncing first if
    /// needed, under the sync timeout).
    pub async fn execute_with_timeout<C: Command>(
        &mut self,
        command: &C,
        timeout: Duration,
    ) -> Result<C::Output, Error> {
        let request = command.to_request().map_err(|source| Error::Arguments {
            command: C::NAME.into(),
            source,
        })?;
        let ret = self.roundtrip(request, timeout).await?;
        C::parse_output(ret).map_err(|source| Error::Decode {
            command: C::NAME.into(),
            source,
        })
    }

    /// Runs an agent command given by name and JSON arguments.
    pub async fn execute_raw(
        &mut self,
        name: &str,
        arguments: Option<qmp_proto::JsonObject>,
    ) -> Result<Value, Error> {
        let mut request = Request::new(name);
        if let Some(arguments) = arguments {
            request = request.with_arguments(arguments);
        }
        let timeout = self.command_timeout;
        self.roundtrip(request, timeout).await
    }

    /// `guest-ping`: is the agent alive?
    pub async fn ping(&mut self) -> Result<(), Error> {
        self.execute(&GuestPing).await.map(|Empty| ())
    }

    /// `guest-info`: the agent's version and commands.
    pub async fn info(&mut self) -> Result<GuestAgentInfo, Error> {
        self.execute(&GuestInfo).await
    }

    /// Runs `path` with `args` in the guest, captures its output and waits
    /// (polling `guest-exec-status`) until it exits, for at most
    /// [`Config::command_timeout`].
    pub async fn exec<I, S>(&mut self, path: &str, args: I) -> Result<GuestExecStatus, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut command = GuestExec::new(path);
        command.arg = Some(args.into_iter().map(Into::into).collect());
        command.capture_output = Some(true);
        let timeout = self.command_timeout;
        self.exec_command(&command, timeout).await
    }

    /// Starts `command` and polls `guest-exec-status` until the process
    /// exits, for at most `timeout` in all.
    pub async fn exec_command(
        &mut self,
        command: &GuestExec,
        timeout: Duration,
    ) -> Result<GuestExecStatus, Error> {
        let deadline = crate::deadline::deadline(Instant::now(), timeout);
        let started = self.execute_with_timeout(command, timeout).await?;
        let mut interval = Duration::from_millis(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = self
                .execute_with_timeout(&GuestExecStatus::query(started.pid), left)
                .await?;
            if status.exited {
                return Ok(status);
            }
            if Instant::now() + interval >= deadline {
                return Err(Error::CommandTimeout {
                    command: format!("guest-exec of {} (pid {})", command.path, started.pid),
                    timeout,
                });
            }
            // The agent offers no completion notice: polling is the protocol.
            tokio::time::sleep(interval).await;
            interval = (interval * 2).min(MAX_POLL_INTERVAL);
        }
    }

    /// `guest-shutdown`: asks the guest to power off (`mode` `None` is
    /// `powerdown`). The agent does not answer on success: completion is
    /// QEMU's `SHUTDOWN` event and QEMU's exit, which
    /// [`wait_closed`](Self::wait_closed) sees as the end of this stream.
    pub async fn shutdown(&mut self, mode: Option<ShutdownMode>) -> Result<(), Error> {
        self.ensure_sync().await?;
        let command = GuestShutdown { mode };
        let request = command.to_request().map_err(|source| Error::Arguments {
            command: GuestShutdown::NAME.into(),
            source,
        })?;
        let request = request.with_id(self.take_id());
        // No reply will come: the stream is no longer known to be in sync.
        self.in_sync = false;
        self.send(&request).await
    }

    /// Waits up to `timeout` for the end of the stream (QEMU exited or
    /// closed the port). An error reply meanwhile (e.g. to
    /// [`shutdown`](Self::shutdown)) is returned as [`Error::Qmp`].
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = crate::deadline::deadline(Instant::now(), timeout);
        loop {
            match self.read_until(deadline).await {
                Err(Error::Disconnected(Disconnect::PeerClosed)) => return Ok(()),
                Err(error) => return Err(error),
                Ok(None) => {
                    return Err(Error::CommandTimeout {
                        command: "end of the guest-agent stream".into(),
                        timeout,
                    });
                }
                Ok(Some(ServerMessage::Error(error))) => {
                    return Err(Error::Qmp {
                        command: GuestShutdown::NAME.into(),
                        class: error.class,
                        desc: error.desc,
                    });
                }
                Ok(Some(other)) => trace!(?other, "skipped while waiting for the end"),
            }
        }
    }

    /// Gives the stream back.
    pub fn into_inner(self) -> IO {
        self.io
    }

    async fn ensure_sync(&mut self) -> Result<(), Error> {
        if !self.in_sync {
            self.sync(self.sync_timeout).await?;
        }
        Ok(())
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Sends `request` with a fresh id and reads until its reply.
    async fn roundtrip(&mut self, request: Request, timeout: Duration) -> Result<Value, Error> {
        self.ensure_sync().await?;
        let id = self.take_id();
        let command = request.command.clone();
        let request = request.with_id(id);
        self.in_sync = false;
        self.send(&request).await?;
        let deadline = crate::deadline::deadline(Instant::now(), timeout);
        loop {
            let Some(message) = self.read_until(deadline).await? else {
                return Err(Error::CommandTimeout { command, timeout });
            };
            let (reply_id, result) = match message {
                ServerMessage::Success(success) => (success.id, Ok(success.ret)),
                ServerMessage::Error(error) => (
                    error.id,
                    Err(Error::Qmp {
                        command: command.clone(),
                        class: error.class,
                        desc: error.desc,
                    }),
                ),
                other => {
                    trace!(?other, "skipped: not a reply");
                    continue;
                }
            };
            // The agent echoes ids; a reply without one can only be ours,
            // as the stream was in sync before the request.
            if reply_id.as_ref().is_none_or(|reply| *reply == json!(id)) {
                self.in_sync = true;
                return result;
            }
            trace!(?reply_id, id, "skipped a stale reply");
        }
    }

    async fn send(&mut self, request: &Request) -> Result<(), Error> {
        let mut bytes = BytesMut::new();
        self.codec
            .encode(request, &mut bytes)
            .map_err(|source| Error::Arguments {
                command: request.command.clone(),
                source,
            })?;
        trace!(target: "qmp_client::wire", ?request, "agent send");
        self.write(&bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let written = async {
            self.io.write_all(bytes).await?;
            self.io.flush().await
        };
        written.await.map_err(disconnected)
    }

    /// The next message, or `None` at `deadline`. A message that does not
    /// parse is skipped and the codec resyncs on the next 0xFF.
    async fn read_until(&mut self, deadline: Instant) -> Result<Option<ServerMessage>, Error> {
        loop {
            // A 0xFF between messages marks a sync reply (the agent also
            // answers our own 0xFF with a parse error before it): resync at
            // it, as the codec would otherwise reject the byte and drop
            // everything buffered after it, the sync reply included.
            if !self.codec.is_resyncing() && sentinel_is_next(&self.read_buf) {
                self.codec.resync();
            }
            match self.codec.decode(&mut self.read_buf) {
                Ok(Some(message)) => {
                    trace!(target: "qmp_client::wire", ?message, "agent recv");
                    return Ok(Some(message));
                }
                Ok(None) => {}
                Err(error) => {
                    debug!(%error, "garbage from the guest agent; resyncing");
                    self.in_sync = false;
                    self.codec.resync();
                    continue;
                }
            }
            let read = tokio::time::timeout_at(deadline, self.io.read_buf(&mut self.read_buf));
            match read.await {
                Err(_elapsed) => return Ok(None),
                Ok(Ok(0)) => return Err(Error::Disconnected(Disconnect::PeerClosed)),
                Ok(Ok(_)) => {}
                Ok(Err(error)) => return Err(disconnected(error)),
            }
        }
    }
}

/// Whether the first byte after whitespace is 0xFF. The buffer always
/// starts between messages or at the start of a partial one.
fn sentinel_is_next(buf: &[u8]) -> bool {
    buf.iter()
        .find(|byte| !byte.is_ascii_whitespace())
        .is_some_and(|&byte| byte == SENTINEL)
}

fn disconnected(error: std::io::Error) -> Error {
    match error.kind() {
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
            Error::Disconnected(Disconnect::PeerClosed)
        }
        _ => Error::Disconnected(Disconnect::Io(std::sync::Arc::new(error))),
    }
}

fn object(value: Value) -> qmp_proto::JsonObject {
    match value {
        Value::Object(map) => map,
        _ => qmp_proto::JsonObject::new(),
    }
}

/// `guest-ping`: checks that the agent is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct GuestPing;

impl Command for GuestPing {
    const NAME: &'static str = "guest-ping";
    type Output = Empty;
}

/// `guest-info`: the agent's version and supported commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct GuestInfo;

impl Command for GuestInfo {
    const NAME: &'static str = "guest-info";
    type Output = GuestAgentInfo;
}

/// What `guest-info` returns.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct GuestAgentInfo {
    /// The agent's version, e.g. `7.2.22`.
    pub version: String,
    /// Every command the agent knows.
    pub supported_commands: Vec<GuestAgentCommandInfo>,
}

impl GuestAgentInfo {
    /// Whether the agent knows `name` and has it enabled.
    pub fn supports(&self, name: &str) -> bool {
        self.supported_commands
            .iter()
            .any(|command| command.name == name && command.enabled)
    }
}

/// One entry of [`GuestAgentInfo::supported_commands`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct GuestAgentCommandInfo {
    /// The command's name.
    pub name: String,
    /// Whether it may be run (`--block-rpcs` disables some).
    pub enabled: bool,
    /// Whether it replies on success (`guest-shutdown` does not).
    #[serde(rename = "success-response")]
    pub success_response: bool,
}

/// `guest-exec`: starts a process in the guest. Poll its end with
/// [`GuestExecStatus::query`], or use [`Agent::exec_command`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GuestExec {
    /// The program, as a path in the guest.
    pub path: String,
    /// Its arguments (without `argv[0]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arg: Option<Vec<String>>,
    /// Its environment, as `NAME=value` strings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Bytes for its standard input (sent base64-encoded).
    #[serde(
        rename = "input-data",
        serialize_with = "base64::serialize_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub input_data: Option<Vec<u8>>,
    /// Whether to capture its standard output and error.
    #[serde(rename = "capture-output", skip_serializing_if = "Option::is_none")]
    pub capture_output: Option<bool>,
}

impl GuestExec {
    /// Runs `path` with no arguments and no output capture.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            arg: None,
            env: None,
            input_data: None,
            capture_output: None,
        }
    }
}

impl Command for GuestExec {
    const NAME: &'static str = "guest-exec";
    type Output = GuestExecStarted;
}

/// What `guest-exec` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct GuestExecStarted {
    /// The process id in the guest, for `guest-exec-status`.
    pub pid: i64,
}

/// `guest-exec-status`: the state of a process started by `guest-exec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GuestExecStatusQuery {
    /// The pid `guest-exec` returned.
    pub pid: i64,
}

impl Command for GuestExecStatusQuery {
    const NAME: &'static str = "guest-exec-status";
    type Output = GuestExecStatus;
}

/// What `guest-exec-status` returns: once `exited`, the exit code or
/// signal and the captured output (decoded from base64).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct GuestExecStatus {
    /// Whether the process has ended.
    pub exited: bool,
    /// Its exit code, when it exited normally.
    #[serde(rename = "exitcode", default)]
    pub exit_code: Option<i64>,
    /// The signal that killed it.
    #[serde(default)]
    pub signal: Option<i64>,
    /// What it wrote on standard output (when captured).
    #[serde(rename = "out-data", default, deserialize_with = "base64::deserialize")]
    pub stdout: Vec<u8>,
    /// What it wrote on standard error (when captured).
    #[serde(rename = "err-data", default, deserialize_with = "base64::deserialize")]
    pub stderr: Vec<u8>,
    /// Whether the agent cut standard output short (16 MiB limit).
    #[serde(rename = "out-truncated", default)]
    pub stdout_truncated: bool,
    /// Whether the agent cut standard error short.
    #[serde(rename = "err-truncated", default)]
    pub stderr_truncated: bool,
}

impl GuestExecStatus {
    /// The `guest-exec-status` command for `pid`.
    pub fn query(pid: i64) -> GuestExecStatusQuery {
        GuestExecStatusQuery { pid }
    }

    /// Whether the process exited with code 0.
    pub fn success(&self) -> bool {
        self.exited && self.exit_code == Some(0)
    }
}

/// `guest-shutdown` (run it with [`Agent::shutdown`]: it has no reply).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GuestShutdown {
    /// How to shut down; the agent's default is `powerdown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<ShutdownMode>,
}

impl Command for GuestShutdown {
    const NAME: &'static str = "guest-shutdown";
    type Output = Empty;
}

/// The `mode` of `guest-shutdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ShutdownMode {
    /// Power off.
    Powerdown,
    /// Halt without powering off.
    Halt,
    /// Reboot.
    Reboot,
}

/// Standard base64 (RFC 4648, padded), as the agent uses for data.
mod base64 {
    use super::*;

    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub(super) fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub(super) fn decode(text: &str) -> Result<Vec<u8>, String> {
        let text = text.trim_end_matches('=');
        let mut out = Vec::with_capacity(text.len() * 3 / 4);
        let mut acc = 0u32;
        let mut bits = 0;
        for (index, c) in text.bytes().enumerate() {
            let value = ALPHABET
                .iter()
                .position(|&a| a == c)
                .ok_or_else(|| format!("invalid base64 byte {c:#04x} at {index}"))?;
            acc = (acc << 6) | value as u32;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        Ok(out)
    }

    pub(super) fn serialize_opt<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(bytes) => serializer.serialize_str(&encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        decode(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
