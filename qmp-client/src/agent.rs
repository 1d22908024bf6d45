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
//! The commands and replies are [`qmp_proto::agent`]'s (re-exported
//! here); this module is the driver. Calls take the same shape as the QMP
//! client's: `agent.call(command).timeout(d).await`, or `execute(command)`,
//! for a typed command or a [`Raw`] one.
//!
//! Replies and errors reuse the QMP client's types: an agent error is
//! [`Error::Qmp`], a command without a reply in time is
//! [`Error::CommandTimeout`] naming the command (`guest-sync-delimited`
//! for the sync), the end of the stream is [`Error::Disconnected`].

use std::future::{Future, IntoFuture};
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::time::Duration;

use bytes::BytesMut;
use qmp_proto::agent::SYNC_SENTINEL as SENTINEL;
use qmp_proto::{ClientCodec, Command, Empty, Limits, Request, ServerMessage};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::codec::{Decoder, Encoder};
use tracing::{debug, trace};

pub use qmp_proto::agent::{
    GuestAgentCommandInfo, GuestAgentInfo, GuestExec, GuestExecStarted, GuestExecStatus,
    GuestExecStatusQuery, GuestInfo, GuestPing, GuestShutdown, GuestSyncDelimited, ShutdownMode,
};

use crate::call::{Invoke, Raw};
use crate::config::Config;
use crate::error::{Disconnect, Error};
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
        const NAME: &str = GuestSyncDelimited::NAME;
        let deadline = crate::deadline::deadline(Instant::now(), timeout);
        let mut attempt = FIRST_ATTEMPT;
        let mut attempts = 0u32;
        self.in_sync = false;
        loop {
            attempts += 1;
            let token = self.random.hash_one((attempts, self.next_id)) & 0x7fff_ffff;
            self.codec.resync();
            let sync = GuestSyncDelimited::new(token as i64);
            let request = sync
                .to_request()
                .map_err(|source| Error::Arguments {
                    command: NAME.into(),
                    source,
                })?
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
                debug!(attempts, "the guest agent never answered a sync");
                return Err(Error::CommandTimeout {
                    command: NAME.into(),
                    timeout,
                });
            }
            attempt = (attempt * 2).min(MAX_ATTEMPT);
        }
    }

    /// Runs `command`, a typed agent command or a [`Raw`] one, once
    /// awaited (syncing first if needed, under the sync timeout); set its
    /// timeout on the returned [`AgentCall`] first.
    pub fn call<C: Invoke>(&mut self, command: C) -> AgentCall<'_, IO, C> {
        let timeout = self.command_timeout;
        AgentCall {
            agent: self,
            command,
            timeout,
        }
    }

    /// Runs `command` under [`Config::command_timeout`]: short for
    /// `agent.call(command).await`.
    pub async fn execute<C: Invoke>(&mut self, command: C) -> Result<C::Output, Error>
    where
        IO: Send,
    {
        self.call(command).await
    }

    /// Short for `agent.call(command).timeout(timeout).await`.
    pub async fn execute_with_timeout<C: Invoke>(
        &mut self,
        command: C,
        timeout: Duration,
    ) -> Result<C::Output, Error>
    where
        IO: Send,
    {
        self.call(command).timeout(timeout).await
    }

    /// Short for `agent.call(Raw::new(name).args(arguments)).await`.
    pub async fn execute_raw(
        &mut self,
        name: &str,
        arguments: Option<qmp_proto::JsonObject>,
    ) -> Result<Value, Error>
    where
        IO: Send,
    {
        self.call(Raw::new(name).args(arguments)).await
    }

    /// `guest-ping`: is the agent alive?
    pub async fn ping(&mut self) -> Result<(), Error>
    where
        IO: Send,
    {
        self.execute(GuestPing).await.map(|Empty| ())
    }

    /// `guest-info`: the agent's version and commands.
    pub async fn info(&mut self) -> Result<GuestAgentInfo, Error>
    where
        IO: Send,
    {
        self.execute(GuestInfo).await
    }

    /// Runs `path` with `args` in the guest, captures its output and waits
    /// (polling `guest-exec-status`) until it exits, for at most
    /// [`Config::command_timeout`].
    pub async fn exec<I, S>(&mut self, path: &str, args: I) -> Result<GuestExecStatus, Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
        IO: Send,
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
    ) -> Result<GuestExecStatus, Error>
    where
        IO: Send,
    {
        let deadline = crate::deadline::deadline(Instant::now(), timeout);
        let started = self.execute_with_timeout(command.clone(), timeout).await?;
        let mut interval = Duration::from_millis(5);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let status = self
                .execute_with_timeout(GuestExecStatus::query(started.pid), left)
                .await?;
            if status.exited {
                return Ok(status);
            }
            if Instant::now() + interval >= deadline {
                debug!(path = %command.path, pid = started.pid, "the guest process outlived the timeout");
                return Err(Error::CommandTimeout {
                    command: GuestExec::NAME.into(),
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
        let command = GuestShutdown::new(mode);
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
    /// closed the port), which is how a [`shutdown`](Self::shutdown)
    /// completes. An error reply meanwhile is returned as [`Error::Qmp`];
    /// no end in time is [`Error::CommandTimeout`] for `guest-shutdown`.
    pub async fn wait_closed(&mut self, timeout: Duration) -> Result<(), Error> {
        let deadline = crate::deadline::deadline(Instant::now(), timeout);
        loop {
            match self.read_until(deadline).await {
                Err(Error::Disconnected(Disconnect::PeerClosed)) => return Ok(()),
                Err(error) => return Err(error),
                Ok(None) => {
                    return Err(Error::CommandTimeout {
                        command: GuestShutdown::NAME.into(),
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

/// An agent command about to run, from [`Agent::call`]: set a timeout,
/// then `.await` it.
///
/// ```no_run
/// # async fn demo(agent: &mut qmp_client::agent::Agent<tokio::net::UnixStream>) -> Result<(), qmp_client::Error> {
/// use std::time::Duration;
/// use qmp_client::Raw;
/// use qmp_client::agent::GuestInfo;
///
/// let info = agent.call(GuestInfo).timeout(Duration::from_secs(5)).await?;
/// let time = agent.call(Raw::new("guest-get-time")).await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a call does nothing until it is awaited"]
pub struct AgentCall<'a, IO, C> {
    agent: &'a mut Agent<IO>,
    command: C,
    timeout: Duration,
}

impl<IO, C> AgentCall<'_, IO, C> {
    /// How long to wait for the reply, instead of
    /// [`Config::command_timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl<'a, IO, C> IntoFuture for AgentCall<'a, IO, C>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'a,
    C: Invoke + 'a,
{
    type Output = Result<C::Output, Error>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let AgentCall {
                agent,
                command,
                timeout,
            } = self;
            let request = command.into_request()?;
            let ret = agent.roundtrip(request, timeout).await?;
            C::parse(ret)
        })
    }
}

#[cfg(test)]
mod tests;
