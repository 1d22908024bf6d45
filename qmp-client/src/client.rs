//! The cloneable handle: commands, events, fds and the connection's fate.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_proto::commands::{AddFd, AddFdInfo, CloseFd, GetFd, RemoveFd};
use qmp_proto::{Event, EventPayload, Greeting, JsonObject, Request};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, field};

use crate::call::{Call, Invoke, Raw};
use crate::config::Config;
use crate::connection::{Op, Returned};
use crate::error::{Disconnect, Error};
use crate::events::{EventStream, EventWaiter};
use crate::shared::{Shared, wait_closed};

/// A handle on a QMP connection. Cheap to clone, `Send + Sync`; any number
/// of tasks may have commands in flight at once (replies are matched by
/// id).
///
/// The connection task ends when the last `Client` is dropped.
///
/// # Cancel safety
///
/// A command is handed to the connection task when its future is first
/// polled, not when it is created; if the future is dropped before the task
/// picks it up, nothing is sent. Once sent, QEMU runs it whatever happens
/// to the future: dropping the future (or a timeout) only discards the
/// reply when it comes, and the connection stays in sync.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ops: mpsc::UnboundedSender<Op>,
    shared: Arc<Shared>,
    greeting: Greeting,
    command_timeout: Option<Duration>,
    fd_passing: bool,
}

impl Client {
    pub(crate) fn new(
        ops: mpsc::UnboundedSender<Op>,
        shared: Arc<Shared>,
        config: &Config,
        fd_passing: bool,
    ) -> Self {
        let greeting = shared
            .greeting()
            .cloned()
            .unwrap_or_else(|| Greeting::new(Default::default(), Vec::new()));
        Self {
            inner: Arc::new(Inner {
                ops,
                shared,
                greeting,
                command_timeout: config.command_timeout,
                fd_passing,
            }),
        }
    }

    /// The state shared with the connection task (events, close reason).
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The greeting QEMU sent (version and offered capabilities).
    pub fn greeting(&self) -> &Greeting {
        &self.inner.greeting
    }

    /// Runs `command`, a typed one (see [`qmp_proto::commands`]) or a
    /// [`Raw`] one, once awaited: set a timeout, out-of-band execution or
    /// fds on the returned [`Call`] first.
    ///
    /// A QMP error reply becomes [`Error::Qmp`] with its class, desc and
    /// the command's name.
    pub fn call<C: Invoke>(&self, command: C) -> Call<'_, C> {
        Call::new(self, command, self.inner.command_timeout)
    }

    /// Runs `command` under [`Config::command_timeout`]: short for
    /// `client.call(command).await`.
    pub async fn execute<C: Invoke>(&self, command: C) -> Result<C::Output, Error> {
        self.call(command).await
    }

    /// Runs `name` with `args` and returns QEMU's raw `return` value: short
    /// for `client.call(Raw::new(name).args(args)).await`.
    pub async fn execute_raw(&self, name: &str, args: Option<JsonObject>) -> Result<Value, Error> {
        self.call(Raw::new(name).args(args)).await
    }

    /// Short for `client.call(command).timeout(timeout).await`.
    pub async fn execute_with_timeout<C: Invoke>(
        &self,
        command: C,
        timeout: Option<Duration>,
    ) -> Result<C::Output, Error> {
        self.call(command).timeout(timeout).await
    }

    /// Short for `client.call(command).oob().await`.
    pub async fn execute_oob<C: Invoke>(&self, command: C) -> Result<C::Output, Error> {
        self.call(command).oob().await
    }

    /// Short for `client.call(command).fds(fds).await`.
    pub async fn execute_with_fds<C: Invoke>(
        &self,
        command: C,
        fds: Vec<OwnedFd>,
    ) -> Result<C::Output, Error> {
        self.call(command).fds(fds).await
    }

    /// Short for `client.call(Raw::new(name).args(args)).timeout(timeout).await`.
    pub async fn execute_raw_with_timeout(
        &self,
        name: &str,
        args: Option<JsonObject>,
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        self.call(Raw::new(name).args(args)).timeout(timeout).await
    }

    /// Short for `client.call(Raw::new(name).args(args)).oob().await`.
    pub async fn execute_oob_raw(
        &self,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<Value, Error> {
        self.call(Raw::new(name).args(args)).oob().await
    }

    /// Short for `client.call(Raw::new(name).args(args)).fds(fds).await`.
    pub async fn execute_raw_with_fds(
        &self,
        name: &str,
        args: Option<JsonObject>,
        fds: Vec<OwnedFd>,
    ) -> Result<Value, Error> {
        self.call(Raw::new(name).args(args)).fds(fds).await
    }

    /// How many bytes of commands wait to be written: at most
    /// [`Config::write_buffer`] plus one command, however long the peer
    /// does not read.
    pub fn unwritten_bytes(&self) -> usize {
        self.inner.shared.unwritten()
    }

    /// Whether this connection's transport can carry file descriptors
    /// (see [`Transport`](crate::Transport)).
    pub fn can_pass_fds(&self) -> bool {
        self.inner.fd_passing
    }

    /// Sends the request and waits for its reply: the core of every call.
    /// With `text`, a success reply's `return` value comes back as its
    /// JSON text when the reply has the usual shape.
    pub(crate) async fn send(
        &self,
        request: Request,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
        text: bool,
    ) -> Result<Returned, Error> {
        if !fds.is_empty() && !self.inner.fd_passing {
            return Err(Error::FdPassingUnsupported {
                command: request.command,
            });
        }
        if !tracing::enabled!(tracing::Level::DEBUG) {
            // Nothing would record the span or its events: spare the
            // clock reads and the wrapper.
            return self.send_and_wait(request, fds, timeout, text).await;
        }
        let span =
            tracing::debug_span!("qmp_command", command = %request.command, id = field::Empty);
        let started = Instant::now();
        let result = self
            .send_and_wait(request, fds, timeout, text)
            .instrument(span.clone())
            .await;
        let elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => debug!(parent: &span, elapsed_us, outcome = "ok", "command done"),
            Err(error) => {
                debug!(parent: &span, elapsed_us, outcome = "error", %error, "command failed")
            }
        }
        result
    }

    async fn send_and_wait(
        &self,
        request: Request,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
        text: bool,
    ) -> Result<Returned, Error> {
        if let Some(reason) = self.inner.shared.close_reason() {
            return Err(Error::Disconnected(reason));
        }
        let command = request.command.clone();
        let (reply, received) = oneshot::channel();
        let op = Op {
            request,
            fds,
            reply,
            span: tracing::Span::current(),
            text,
        };
        if self.inner.ops.send(op).is_err() {
            return Err(Error::Disconnected(self.reason()));
        }
        let received = match timeout {
            Some(limit) => match tokio::time::timeout(limit, received).await {
                Ok(received) => received,
                Err(_) => {
                    return Err(Error::CommandTimeout {
                        command,
                        timeout: limit,
                    });
                }
            },
            None => received.await,
        };
        received.unwrap_or_else(|_| Err(Error::Disconnected(self.reason())))
    }

    fn reason(&self) -> Disconnect {
        self.inner
            .shared
            .close_reason()
            .unwrap_or(Disconnect::DriverGone)
    }

    /// Every event from now on, through a bounded buffer
    /// ([`Config::event_buffer`]); see [`EventStream`].
    ///
    /// The subscription exists when this returns: subscribe first, then
    /// send a command, and no event caused by the command can be missed.
    pub fn events(&self) -> EventStream {
        EventStream::new(&self.inner.shared)
    }

    /// How long [`wait_event`](Self::wait_event) and
    /// [`wait_for`](Self::wait_for) wait when given no timeout: 60 s, as
    /// `QEMUMachine.event_wait`.
    pub const DEFAULT_EVENT_TIMEOUT: Duration = Duration::from_secs(60);

    /// Waits up to `timeout` for an event named `name` matching `filter`
    /// ([`event_match`](crate::event_match) semantics, e.g.
    /// `{"data": {"device": "d0"}}`), like `QEMUMachine.event_wait`.
    ///
    /// `None` waits [`DEFAULT_EVENT_TIMEOUT`](Self::DEFAULT_EVENT_TIMEOUT)
    /// (60 s), as `event_wait`'s default; `Some(Duration::MAX)` waits as
    /// long as the connection lives (Python's `timeout=None`).
    ///
    /// It first looks in the backlog of recent events
    /// ([`Config::event_backlog`]), so an event that arrived before the call
    /// is found; each event is consumed by at most one wait.
    ///
    /// # Errors
    ///
    /// [`Error::EventTimeout`] when none came in time;
    /// [`Error::Disconnected`] when the connection ended first.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future consumes nothing.
    pub async fn wait_event(
        &self,
        name: &str,
        filter: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<Event, Error> {
        let timeout = timeout.unwrap_or(Self::DEFAULT_EVENT_TIMEOUT);
        EventWaiter::new(self.inner.shared.clone(), name, filter, true)
            .wait(Some(timeout))
            .await
    }

    /// [`wait_event`](Self::wait_event) for a typed event (see
    /// [`qmp_proto::events`]), returning its decoded data; `None` waits
    /// 60 s, as there.
    ///
    /// ```no_run
    /// # async fn demo(client: qmp_client::Client) -> Result<(), qmp_client::Error> {
    /// use std::time::Duration;
    /// use qmp_proto::events::Shutdown;
    /// let shutdown: Shutdown = client.wait_for(None, Some(Duration::from_secs(30))).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for<E: EventPayload>(
        &self,
        filter: Option<&Value>,
        timeout: Option<Duration>,
    ) -> Result<E, Error> {
        let event = self.wait_event(E::NAME, filter, timeout).await?;
        match event.payload::<E>() {
            Some(Ok(payload)) => Ok(payload),
            Some(Err(source)) => Err(Error::EventDecode {
                name: event.name,
                source,
            }),
            // `wait_event` only returns events named `E::NAME`.
            None => Err(Error::EventTimeout {
                name: event.name,
                filter: filter.cloned(),
                timeout: timeout.unwrap_or(Self::DEFAULT_EVENT_TIMEOUT),
            }),
        }
    }

    /// A wait for an event named `name` matching `filter` that arrives from
    /// now on. Make it before sending the command that causes the event.
    pub fn event_waiter(&self, name: &str, filter: Option<&Value>) -> EventWaiter {
        EventWaiter::new(self.inner.shared.clone(), name, filter, false)
    }

    /// Resolves when the connection has ended, with the reason.
    pub async fn closed(&self) -> Disconnect {
        wait_closed(self.inner.shared.watch_closed()).await
    }

    /// Why the connection ended, or `None` while it is open.
    pub fn close_reason(&self) -> Option<Disconnect> {
        self.inner.shared.close_reason()
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.close_reason().is_some()
    }

    /// Passes `fd` to QEMU under `name` (`getfd`), for commands that take
    /// an fd name. Needs a Unix socket.
    pub async fn getfd(&self, name: &str, fd: impl AsFd) -> Result<(), Error> {
        let fd = fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(Error::DuplicateFd)?;
        self.call(GetFd::new(name)).fds([fd]).await.map(drop)
    }

    /// Closes the fd QEMU holds under `name` (`closefd`).
    pub async fn closefd(&self, name: &str) -> Result<(), Error> {
        self.execute(CloseFd::new(name)).await.map(drop)
    }

    /// Adds `fd` to an fd set (`add-fd`); QEMU can then open it as
    /// `/dev/fdset/<fdset_id>` (e.g. in `blockdev-add`). Without
    /// `fdset_id` QEMU picks a new set. Needs a Unix socket.
    pub async fn add_fd(&self, fd: impl AsFd, fdset_id: Option<i64>) -> Result<AddFdInfo, Error> {
        let fd = fd
            .as_fd()
            .try_clone_to_owned()
            .map_err(Error::DuplicateFd)?;
        let command = match fdset_id {
            Some(id) => AddFd::to_set(id),
            None => AddFd::new(),
        };
        self.call(command).fds([fd]).await
    }

    /// Removes an fd set, or one fd of it (`remove-fd`).
    pub async fn remove_fd(&self, fdset_id: i64, fd: Option<i64>) -> Result<(), Error> {
        let command = match fd {
            Some(fd) => RemoveFd::fd(fdset_id, fd),
            None => RemoveFd::set(fdset_id),
        };
        self.execute(command).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmp_proto::commands::QueryStatus;
    use std::future::IntoFuture;

    // Compile-time checks: the handle and its futures cross threads.
    const _: fn() = || {
        fn handle<T: Send + Sync + Clone + 'static>() {}
        handle::<Client>();
    };

    #[allow(dead_code)]
    fn futures_are_send(client: &Client) {
        fn send<T: Send>(_: T) {}
        send(client.execute(QueryStatus));
        send(client.execute_raw("x", None));
        send(client.wait_event("X", None, None));
        send(client.event_waiter("X", None).wait(None));
        send(client.closed());
        send(client.add_fd(std::io::stdin(), None));
        send(
            client
                .call(Raw::new("x").args(serde_json::json!({"a": 1})))
                .into_future(),
        );
        send(crate::handshake(
            crate::NoFds(tokio::io::empty()),
            &Config::default(),
        ));
    }
}
