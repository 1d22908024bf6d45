//! The cloneable handle: commands, events, fds and the connection's fate.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qmp_proto::commands::{AddFd, AddFdInfo, CloseFd, GetFd, RemoveFd};
use qmp_proto::{Command, Event, EventPayload, Greeting, JsonObject, Request};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, debug, field};

use crate::config::Config;
use crate::connection::Op;
use crate::error::{Disconnect, Error};
use crate::events::{EventStream, EventWaiter};
use crate::shared::{Shared, wait_closed};
use crate::version_check;

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
}

impl Client {
    pub(crate) fn new(
        ops: mpsc::UnboundedSender<Op>,
        shared: Arc<Shared>,
        config: &Config,
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

    /// Runs a typed command (see [`qmp_proto::commands`]) under the default
    /// timeout ([`Config::command_timeout`]) and parses its output.
    ///
    /// A QMP error reply becomes [`Error::Qmp`] with its class, desc and
    /// the command's name.
    pub async fn execute<C: Command>(&self, command: C) -> Result<C::Output, Error> {
        self.execute_with_timeout(command, self.inner.command_timeout)
            .await
    }

    /// [`execute`](Self::execute) with its own timeout (`None`: wait as
    /// long as the connection lives).
    pub async fn execute_with_timeout<C: Command>(
        &self,
        command: C,
        timeout: Option<Duration>,
    ) -> Result<C::Output, Error> {
        let request = self.typed_request(&command)?;
        let value = self.call(request, Vec::new(), timeout).await;
        self.typed_output::<C>(value)
    }

    /// Runs a typed command out of band (`exec-oob`); see
    /// [`execute_oob_raw`](Self::execute_oob_raw).
    pub async fn execute_oob<C: Command>(&self, command: C) -> Result<C::Output, Error> {
        let request = self.typed_request(&command)?.oob();
        let value = self
            .call(request, Vec::new(), self.inner.command_timeout)
            .await;
        self.typed_output::<C>(value)
    }

    /// Runs a typed command with file descriptors attached (see
    /// [`execute_raw_with_fds`](Self::execute_raw_with_fds)).
    pub async fn execute_with_fds<C: Command>(
        &self,
        command: C,
        fds: Vec<OwnedFd>,
    ) -> Result<C::Output, Error> {
        let request = self.typed_request(&command)?;
        let value = self.call(request, fds, self.inner.command_timeout).await;
        self.typed_output::<C>(value)
    }

    /// Runs `name` with `args` and returns QEMU's raw `return` value, under
    /// the default timeout ([`Config::command_timeout`]).
    ///
    /// A QMP error reply becomes [`Error::Qmp`] with its class and desc.
    pub async fn execute_raw(&self, name: &str, args: Option<JsonObject>) -> Result<Value, Error> {
        self.call(request(name, args), Vec::new(), self.inner.command_timeout)
            .await
    }

    /// [`execute_raw`](Self::execute_raw) with its own timeout (`None`:
    /// wait as long as the connection lives).
    pub async fn execute_raw_with_timeout(
        &self,
        name: &str,
        args: Option<JsonObject>,
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        self.call(request(name, args), Vec::new(), timeout).await
    }

    /// Runs `name` out of band (`exec-oob`): it does not queue behind
    /// in-band commands. Needs [`Config::oob`] and a QEMU offering it,
    /// else [`Error::OobNotNegotiated`].
    pub async fn execute_oob_raw(
        &self,
        name: &str,
        args: Option<JsonObject>,
    ) -> Result<Value, Error> {
        self.call(
            request(name, args).oob(),
            Vec::new(),
            self.inner.command_timeout,
        )
        .await
    }

    /// Runs `name` with file descriptors attached to the command's own
    /// bytes (SCM_RIGHTS). Only over Unix domain sockets, else
    /// [`Error::FdPassingUnsupported`]. The fds are closed here once sent;
    /// QEMU receives duplicates.
    pub async fn execute_raw_with_fds(
        &self,
        name: &str,
        args: Option<JsonObject>,
        fds: Vec<OwnedFd>,
    ) -> Result<Value, Error> {
        self.call(request(name, args), fds, self.inner.command_timeout)
            .await
    }

    /// Sends the request and waits for its reply. Crate-internal core of
    /// every `execute*`.
    pub(crate) async fn call(
        &self,
        request: Request,
        fds: Vec<OwnedFd>,
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        let command = request.command.clone();
        let span = tracing::debug_span!("qmp_command", command = %command, id = field::Empty);
        let started = Instant::now();
        let result = self
            .send_and_wait(request, fds, timeout)
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
    ) -> Result<Value, Error> {
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

    /// Waits for an event named `name` matching `filter`
    /// ([`event_match`](crate::event_match) semantics, e.g.
    /// `{"data": {"device": "d0"}}`), like `QEMUMachine.event_wait`.
    ///
    /// It first looks in the backlog of recent events
    /// ([`Config::event_backlog`]), so an event that arrived before the call
    /// is found; each event is consumed by at most one wait.
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
        EventWaiter::new(self.inner.shared.clone(), name, filter, true)
            .wait(timeout)
            .await
    }

    /// [`wait_event`](Self::wait_event) for a typed event (see
    /// [`qmp_proto::events`]), returning its decoded data.
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
                timeout: timeout.unwrap_or_default(),
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
        self.execute_with_fds(GetFd::new(name), vec![fd])
            .await
            .map(drop)
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
        self.execute_with_fds(command, vec![fd]).await
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

impl Client {
    /// The request for a typed command, refused when the connected QEMU
    /// cannot accept it (see [`qmp_proto::Command::check_version`]).
    fn typed_request<C: Command>(&self, command: &C) -> Result<Request, Error> {
        version_check::check(command, &self.inner.greeting)?;
        command.to_request().map_err(|source| Error::Arguments {
            command: C::NAME.to_owned(),
            source,
        })
    }

    /// A typed command's output; `CommandNotFound` names the QEMU version.
    fn typed_output<C: Command>(&self, reply: Result<Value, Error>) -> Result<C::Output, Error> {
        let value =
            reply.map_err(|error| version_check::name_version::<C>(error, &self.inner.greeting))?;
        C::parse_output(value).map_err(|source| Error::Decode {
            command: C::NAME.to_owned(),
            source,
        })
    }
}

fn request(name: &str, args: Option<JsonObject>) -> Request {
    let request = Request::new(name);
    match args {
        Some(args) => request.with_arguments(args),
        None => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qmp_proto::commands::QueryStatus;

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
        send(crate::handshake(tokio::io::empty(), &Config::default()));
    }
}
