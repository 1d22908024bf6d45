//! The async qtest client: a cloneable handle and a connection task that
//! owns the socket, reads IRQ lines as they come and answers requests in order.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::Error;
use crate::qtest::command::{QtestCommand, Width};
use crate::qtest::error::QtestDisconnect;
use crate::qtest::protocol::{
    DEFAULT_MAX_LINE, Endianness, IrqEvent, QtestOutput, QtestProtocol, QtestResponse,
};

/// How a [`QtestClient`] behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QtestConfig {
    /// How long a request waits for its answer (default 30 s, like
    /// `QEMUMachine`'s QMP timer).
    pub timeout: Duration,
    /// The longest line accepted from QEMU (default 8 MiB, enough for a
    /// 4 MiB `read`; `b64read` fits 6 MiB).
    pub max_line: usize,
    /// How many IRQ events a slow [`QtestClient::irq_events`] subscriber
    /// may fall behind before it is told it lagged (default 1024).
    pub irq_buffer: usize,
}

impl Default for QtestConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_line: DEFAULT_MAX_LINE,
            irq_buffer: 1024,
        }
    }
}

type Reply = oneshot::Sender<Result<QtestResponse, Error>>;

struct Call {
    command: QtestCommand,
    reply: Reply,
}

/// The state every handle watches: which lines are raised, and why the
/// connection ended once it has.
#[derive(Debug, Default, Clone)]
struct State {
    raised: BTreeSet<u32>,
    closed: Option<QtestDisconnect>,
}

/// An async qtest client (`QEMUQtestProtocol`), over any byte stream to
/// QEMU's `-qtest` chardev.
///
/// Requests may be sent from many tasks at once; QEMU answers them in the
/// order they were written. `IRQ raise|lower N` lines are read as they
/// arrive, whether or not a request is waiting: [`irq_level`](Self::irq_level)
/// and [`wait_irq`](Self::wait_irq) see them, and
/// [`irq_events`](Self::irq_events) delivers them as a stream. QEMU sends
/// the IRQ lines a request causes before that request's `OK`, so once a
/// request has returned, `irq_level` already reflects its effect.
///
/// Cheap to clone. The connection task ends when the last handle is dropped
/// or the peer goes away; then every waiting and later request fails at
/// once with [`Error::QtestDisconnected`].
///
/// # Cancellation
///
/// A request is written when its future is first polled. Dropping the
/// future afterwards (or its timeout) discards only its answer: the line is
/// written whole and the replies stay in step.
#[derive(Debug, Clone)]
pub struct QtestClient {
    calls: mpsc::UnboundedSender<Call>,
    state: watch::Receiver<State>,
    irqs: broadcast::Sender<IrqEvent>,
    timeout: Duration,
}

impl QtestClient {
    /// Starts a client over `io` (e.g. our end of the socket pair whose
    /// other end is QEMU's `-chardev socket,fd=N` named by `-qtest chardev:ID`).
    ///
    /// # Errors
    ///
    /// [`Error::QtestNoRuntime`] outside a Tokio runtime.
    pub fn new<IO>(io: IO, config: QtestConfig) -> Result<Self, Error>
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::QtestNoRuntime)?;
        let (calls, receiver) = mpsc::unbounded_channel();
        let (state_sender, state) = watch::channel(State::default());
        let (irqs, _) = broadcast::channel(config.irq_buffer.max(1));
        let driver = Driver {
            protocol: QtestProtocol::new(config.max_line),
            waiting: std::collections::HashMap::new(),
            state: state_sender,
            irqs: irqs.clone(),
        };
        runtime.spawn(driver.run(io, receiver));
        Ok(Self {
            calls,
            state,
            irqs,
            timeout: config.timeout,
        })
    }

    /// Sends one request and waits for its answer, under the configured timeout.
    ///
    /// # Errors
    ///
    /// [`Error::QtestFailed`] when QEMU answers `FAIL`/`ERR`,
    /// [`Error::NoQtestAccelerator`] for a clock command QEMU does not
    /// serve, [`Error::QtestInvalidArgument`]/[`Error::QtestTooLarge`]
    /// before sending, [`Error::QtestTimeout`], [`Error::QtestDisconnected`].
    pub async fn execute(&self, command: QtestCommand) -> Result<QtestResponse, Error> {
        self.execute_with_timeout(command, self.timeout).await
    }

    /// [`execute`](Self::execute) with its own timeout (`Duration::MAX`
    /// waits as long as the connection lives).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn execute_with_timeout(
        &self,
        command: QtestCommand,
        timeout: Duration,
    ) -> Result<QtestResponse, Error> {
        let name = command.name();
        let (reply, answer) = oneshot::channel();
        if self.calls.send(Call { command, reply }).is_err() {
            return Err(self.disconnected());
        }
        let started = Instant::now();
        let outcome = match started.checked_add(timeout) {
            Some(deadline) => tokio::time::timeout_at(deadline, answer).await,
            None => Ok(answer.await),
        };
        match outcome {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(self.disconnected()),
            Err(_) => Err(Error::QtestTimeout {
                command: name,
                waited: started.elapsed(),
            }),
        }
    }

    fn disconnected(&self) -> Error {
        let reason = self
            .state
            .borrow()
            .closed
            .clone()
            .unwrap_or(QtestDisconnect::DriverGone);
        Error::QtestDisconnected(reason)
    }

    /// Sends a request line as it is and returns QEMU's answer line as it
    /// is, `FAIL` included (`QEMUQtestMachine.qtest(cmd)`).
    ///
    /// # Errors
    ///
    /// [`Error::QtestInvalidArgument`] for an empty line or one with a line
    /// break, else as [`execute`](Self::execute).
    pub async fn raw(&self, line: &str) -> Result<String, Error> {
        match self
            .execute(QtestCommand::Raw {
                line: line.to_owned(),
            })
            .await?
        {
            QtestResponse::Raw(answer) => Ok(answer),
            other => Err(unexpected("raw", other)),
        }
    }

    async fn value(&self, command: QtestCommand) -> Result<u64, Error> {
        let name = command.name();
        match self.execute(command).await? {
            QtestResponse::Value(value) => Ok(value),
            other => Err(unexpected(&name, other)),
        }
    }

    async fn done(&self, command: QtestCommand) -> Result<(), Error> {
        let name = command.name();
        match self.execute(command).await? {
            QtestResponse::Done => Ok(()),
            other => Err(unexpected(&name, other)),
        }
    }

    async fn bytes(&self, command: QtestCommand) -> Result<Vec<u8>, Error> {
        let name = command.name();
        match self.execute(command).await? {
            QtestResponse::Bytes(bytes) => Ok(bytes),
            other => Err(unexpected(&name, other)),
        }
    }

    async fn clock(&self, command: QtestCommand) -> Result<i64, Error> {
        let name = command.name();
        match self.execute(command).await? {
            QtestResponse::Clock(ns) => Ok(ns),
            other => Err(unexpected(&name, other)),
        }
    }

    /// `readb`: one byte of guest memory.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn readb(&self, addr: u64) -> Result<u8, Error> {
        let value = self.read_width(Width::Byte, addr).await?;
        Ok(value.to_le_bytes()[0])
    }

    /// `readw`: 16 bits of guest memory, in the target's byte order.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn readw(&self, addr: u64) -> Result<u16, Error> {
        let value = self.read_width(Width::Word, addr).await?;
        narrow(value, "readw")
    }

    /// `readl`: 32 bits of guest memory, in the target's byte order.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn readl(&self, addr: u64) -> Result<u32, Error> {
        let value = self.read_width(Width::Long, addr).await?;
        narrow(value, "readl")
    }

    /// `readq`: 64 bits of guest memory, in the target's byte order.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn readq(&self, addr: u64) -> Result<u64, Error> {
        self.read_width(Width::Quad, addr).await
    }

    async fn read_width(&self, width: Width, addr: u64) -> Result<u64, Error> {
        self.value(QtestCommand::Read { width, addr }).await
    }

    /// `writeb`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn writeb(&self, addr: u64, value: u8) -> Result<(), Error> {
        self.write_width(Width::Byte, addr, value.into()).await
    }

    /// `writew`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn writew(&self, addr: u64, value: u16) -> Result<(), Error> {
        self.write_width(Width::Word, addr, value.into()).await
    }

    /// `writel`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn writel(&self, addr: u64, value: u32) -> Result<(), Error> {
        self.write_width(Width::Long, addr, value.into()).await
    }

    /// `writeq`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn writeq(&self, addr: u64, value: u64) -> Result<(), Error> {
        self.write_width(Width::Quad, addr, value).await
    }

    async fn write_width(&self, width: Width, addr: u64, value: u64) -> Result<(), Error> {
        self.done(QtestCommand::Write { width, addr, value }).await
    }

    /// `read`: `len` bytes of guest memory (hex on the wire). A length of 0
    /// returns nothing without asking QEMU (which would abort).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn read(&self, addr: u64, len: u64) -> Result<Vec<u8>, Error> {
        if len == 0 {
            return Ok(Vec::new());
        }
        self.bytes(QtestCommand::ReadBuf { addr, len }).await
    }

    /// `write`: bytes into guest memory (hex on the wire). Empty data is
    /// a no-op that does not ask QEMU (which refuses it).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn write(&self, addr: u64, data: &[u8]) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        let data = data.to_vec();
        self.done(QtestCommand::WriteBuf { addr, data }).await
    }

    /// `b64read`: `len` bytes of guest memory (base64 on the wire).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn b64read(&self, addr: u64, len: u64) -> Result<Vec<u8>, Error> {
        if len == 0 {
            return Ok(Vec::new());
        }
        self.bytes(QtestCommand::B64Read { addr, len }).await
    }

    /// `b64write`: bytes into guest memory (base64 on the wire); empty data
    /// is a no-op.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn b64write(&self, addr: u64, data: &[u8]) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        let data = data.to_vec();
        self.done(QtestCommand::B64Write { addr, data }).await
    }

    /// `memset`: fills `len` bytes of guest memory with `value`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn memset(&self, addr: u64, len: u64, value: u8) -> Result<(), Error> {
        self.done(QtestCommand::Memset { addr, len, value }).await
    }

    /// `inb`: reads an 8-bit I/O port.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn inb(&self, port: u16) -> Result<u8, Error> {
        let value = self.port_in(Width::Byte, port).await?;
        narrow(value, "inb")
    }

    /// `inw`: reads a 16-bit I/O port.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn inw(&self, port: u16) -> Result<u16, Error> {
        let value = self.port_in(Width::Word, port).await?;
        narrow(value, "inw")
    }

    /// `inl`: reads a 32-bit I/O port.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn inl(&self, port: u16) -> Result<u32, Error> {
        let value = self.port_in(Width::Long, port).await?;
        narrow(value, "inl")
    }

    async fn port_in(&self, width: Width, port: u16) -> Result<u64, Error> {
        self.value(QtestCommand::In { width, port }).await
    }

    /// `outb`: writes an 8-bit I/O port.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn outb(&self, port: u16, value: u8) -> Result<(), Error> {
        self.port_out(Width::Byte, port, value.into()).await
    }

    /// `outw`: writes a 16-bit I/O port.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn outw(&self, port: u16, value: u16) -> Result<(), Error> {
        self.port_out(Width::Word, port, value.into()).await
    }

    /// `outl`: writes a 32-bit I/O port.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn outl(&self, port: u16, value: u32) -> Result<(), Error> {
        self.port_out(Width::Long, port, value).await
    }

    async fn port_out(&self, width: Width, port: u16, value: u32) -> Result<(), Error> {
        self.done(QtestCommand::Out { width, port, value }).await
    }

    /// `irq_intercept_in`: from now on the device's input lines are
    /// reported as IRQ events (on a PC: `"ioapic"`). QEMU intercepts one
    /// device per session.
    ///
    /// # Errors
    ///
    /// [`Error::QtestFailed`] for an unknown device or when another device
    /// is already intercepted, else as [`execute`](Self::execute).
    pub async fn irq_intercept_in(&self, qom_path: &str) -> Result<(), Error> {
        let path = qom_path.to_owned();
        self.done(QtestCommand::IrqInterceptIn { path }).await
    }

    /// `irq_intercept_out`: reports the device's output lines (the unnamed
    /// GPIO list, or the one named `gpio`).
    ///
    /// # Errors
    ///
    /// As [`irq_intercept_in`](Self::irq_intercept_in).
    pub async fn irq_intercept_out(&self, qom_path: &str, gpio: Option<&str>) -> Result<(), Error> {
        let path = qom_path.to_owned();
        let name = gpio.map(str::to_owned);
        self.done(QtestCommand::IrqInterceptOut { path, name })
            .await
    }

    /// `set_irq_in`: forces input line `line` of the GPIO list `gpio`
    /// (`"unnamed-gpio-in"` for the unnamed one) to `level`.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn set_irq_in(
        &self,
        qom_path: &str,
        gpio: &str,
        line: u32,
        level: i32,
    ) -> Result<(), Error> {
        self.done(QtestCommand::SetIrqIn {
            path: qom_path.to_owned(),
            name: gpio.to_owned(),
            line,
            level,
        })
        .await
    }

    /// `endianness`: the target's byte order.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub async fn endianness(&self) -> Result<Endianness, Error> {
        match self.execute(QtestCommand::Endianness).await? {
            QtestResponse::Endianness(order) => Ok(order),
            other => Err(unexpected("endianness", other)),
        }
    }

    /// `clock_step [ns]`: advances the virtual clock by `ns`, or to the next
    /// timer deadline; returns the new clock. Needs the qtest accelerator.
    ///
    /// # Errors
    ///
    /// [`Error::NoQtestAccelerator`] when QEMU runs another
    /// accelerator; [`Error::QtestFailed`] when the clock cannot advance.
    pub async fn clock_step(&self, ns: Option<i64>) -> Result<i64, Error> {
        self.clock(QtestCommand::ClockStep { ns }).await
    }

    /// `clock_set ns`: advances the virtual clock to `ns`; returns the new
    /// clock. Needs the qtest accelerator.
    ///
    /// # Errors
    ///
    /// As [`clock_step`](Self::clock_step).
    pub async fn clock_set(&self, ns: i64) -> Result<i64, Error> {
        self.clock(QtestCommand::ClockSet { ns }).await
    }

    /// Whether line `line` is raised, as of the last line read from QEMU
    /// (libqtest's `get_irq`).
    pub fn irq_level(&self, line: u32) -> bool {
        self.state.borrow().raised.contains(&line)
    }

    /// Waits until line `line` is raised (`raised = true`) or lowered;
    /// returns at once when it already is.
    ///
    /// # Errors
    ///
    /// [`Error::IrqTimeout`], or [`Error::QtestDisconnected`] when the
    /// connection ends first.
    pub async fn wait_irq(&self, line: u32, raised: bool, timeout: Duration) -> Result<(), Error> {
        let started = Instant::now();
        let mut state = self.state.clone();
        let wait = state
            .wait_for(|state| state.raised.contains(&line) == raised || state.closed.is_some());
        let outcome = match started.checked_add(timeout) {
            Some(deadline) => tokio::time::timeout_at(deadline, wait).await,
            None => Ok(wait.await),
        };
        match outcome {
            Ok(Ok(state)) if state.raised.contains(&line) == raised => Ok(()),
            Ok(_) => Err(self.disconnected()),
            Err(_) => Err(Error::IrqTimeout {
                line,
                raised,
                waited: started.elapsed(),
            }),
        }
    }

    /// Every IRQ event from now on, through a bounded buffer
    /// ([`QtestConfig::irq_buffer`]); a subscriber that falls behind gets
    /// `Err(Lagged(n))` from `recv` and continues.
    pub fn irq_events(&self) -> broadcast::Receiver<IrqEvent> {
        self.irqs.subscribe()
    }

    /// Waits until the connection has ended (QEMU closed the socket, or
    /// broke the protocol); every request waiting then has failed.
    pub async fn closed(&self) {
        let mut state = self.state.clone();
        // An error means the connection task is gone: closed as well.
        let _ended = state.wait_for(|state| state.closed.is_some()).await;
    }

    /// Why the connection ended, once it has.
    pub fn close_reason(&self) -> Option<QtestDisconnect> {
        self.state.borrow().closed.clone()
    }
}

fn unexpected(command: &str, response: QtestResponse) -> Error {
    Error::QtestBadReply {
        command: command.to_owned(),
        reply: format!("{response:?}"),
        reason: "the answer is of another kind than the request".into(),
    }
}

fn narrow<T: TryFrom<u64>>(value: u64, command: &str) -> Result<T, Error> {
    T::try_from(value).map_err(|_| Error::QtestBadReply {
        command: command.to_owned(),
        reply: format!("OK {value:#x}"),
        reason: "the value is wider than the access".into(),
    })
}

struct Driver {
    protocol: QtestProtocol,
    waiting: std::collections::HashMap<u64, Reply>,
    state: watch::Sender<State>,
    irqs: broadcast::Sender<IrqEvent>,
}

impl Driver {
    async fn run<IO>(mut self, io: IO, mut calls: mpsc::UnboundedReceiver<Call>)
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(io);
        let mut buffer = vec![0; 64 * 1024];
        let reason = loop {
            let writing = !self.protocol.transmit().is_empty();
            tokio::select! {
                call = calls.recv() => match call {
                    Some(call) => self.queue(call),
                    // Every handle is gone: nobody can wait for anything.
                    None => return,
                },
                written = writer.write(self.protocol.transmit()), if writing => match written {
                    Ok(0) => break QtestDisconnect::PeerClosed,
                    Ok(n) => {
                        self.protocol.advance(n);
                        if self.protocol.transmit().is_empty() {
                            if let Err(error) = writer.flush().await {
                                break QtestDisconnect::Io(Arc::new(error));
                            }
                        }
                    }
                    Err(error) => break QtestDisconnect::Io(Arc::new(error)),
                },
                read = reader.read(&mut buffer) => match read {
                    Ok(0) => break QtestDisconnect::PeerClosed,
                    Ok(n) => {
                        self.protocol.receive(&buffer[..n]);
                        if let Err(reason) = self.dispatch() {
                            break reason;
                        }
                    }
                    Err(error) => break QtestDisconnect::Io(Arc::new(error)),
                },
            }
        };
        tracing::debug!(%reason, "qtest connection ended");
        // Record the reason first, so a request that finds the channel
        // closed reads it; then fail everything that waits.
        self.state
            .send_modify(|state| state.closed = Some(reason.clone()));
        calls.close();
        let queued = std::iter::from_fn(|| calls.try_recv().ok()).map(|call| call.reply);
        for reply in queued.chain(self.waiting.drain().map(|(_, reply)| reply)) {
            let _ = reply.send(Err(Error::QtestDisconnected(reason.clone())));
        }
    }

    fn queue(&mut self, call: Call) {
        match self.protocol.send(&call.command) {
            Ok(ticket) => {
                tracing::trace!(command = %call.command, ticket, "qtest request");
                self.waiting.insert(ticket, call.reply);
            }
            Err(error) => {
                let _ = call.reply.send(Err(error));
            }
        }
    }

    /// Hands out every complete line: replies to their waiters (a dropped
    /// waiter's reply is discarded), IRQ lines to the level set and the
    /// subscribers.
    fn dispatch(&mut self) -> Result<(), QtestDisconnect> {
        loop {
            match self.protocol.poll_output() {
                Ok(None) => return Ok(()),
                Ok(Some(QtestOutput::Reply { ticket, result })) => {
                    if let Some(reply) = self.waiting.remove(&ticket) {
                        let _ = reply.send(result);
                    }
                }
                Ok(Some(QtestOutput::Irq(event))) => {
                    tracing::trace!(line = event.line, raised = event.raised, "qtest IRQ");
                    self.state.send_modify(|state| {
                        if event.raised {
                            state.raised.insert(event.line);
                        } else {
                            state.raised.remove(&event.line);
                        }
                    });
                    let _ = self.irqs.send(event);
                }
                Err(violation) => return Err(QtestDisconnect::Protocol(violation)),
            }
        }
    }
}
