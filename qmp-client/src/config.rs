//! Connection settings.

use std::time::Duration;

use qmp_proto::DEFAULT_MAX_MESSAGE_SIZE;

/// Settings for a QMP connection. Every wait has a finite default; `None`
/// is an explicit "wait forever".
///
/// ```
/// use std::time::Duration;
/// let config = qmp_client::Config::default()
///     .oob(true)
///     .command_timeout(Some(Duration::from_secs(5)));
/// assert!(config.oob);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How long to wait for a socket connection or an accepted connection
    /// (default 10 s).
    pub connect_timeout: Option<Duration>,
    /// How long the greeting plus `qmp_capabilities` may take together
    /// (default 10 s; QEMU answers in well under 100 ms when it is alive and
    /// no other client holds the monitor).
    pub handshake_timeout: Option<Duration>,
    /// The default time a command may take (default 60 s); override per
    /// call with [`Call::timeout`](crate::Call::timeout).
    pub command_timeout: Option<Duration>,
    /// How many events each subscriber may fall behind before it is told
    /// [`Lagged`](crate::Lagged) (default 1024). At least 1.
    pub event_buffer: usize,
    /// How many recent events [`Client::wait_event`](crate::Client::wait_event)
    /// can find after they arrived (default 1024). Oldest go first.
    pub event_backlog: usize,
    /// The largest message accepted from the peer, in bytes (default
    /// 10 MiB; `query-qmp-schema` is about 200 KB).
    pub max_message_size: usize,
    /// Whether to enable out-of-band execution (`exec-oob`) when the server
    /// offers it (default false).
    pub oob: bool,
    /// How many bytes of encoded commands may wait to be written (default
    /// 256 KiB). Past it, commands wait in the queue, where one whose
    /// caller gives up is never sent; a peer that stops reading cannot make
    /// the client buffer without bound. A single larger command is still
    /// sent, alone.
    pub write_buffer: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            connect_timeout: Some(Duration::from_secs(10)),
            handshake_timeout: Some(Duration::from_secs(10)),
            command_timeout: Some(Duration::from_secs(60)),
            event_buffer: 1024,
            event_backlog: 1024,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            oob: false,
            write_buffer: 256 * 1024,
        }
    }
}

impl Config {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Config::connect_timeout`].
    pub fn connect_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Sets [`Config::handshake_timeout`].
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Sets [`Config::command_timeout`].
    pub fn command_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// Sets [`Config::event_buffer`].
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
        self
    }

    /// Sets [`Config::event_backlog`].
    pub fn event_backlog(mut self, events: usize) -> Self {
        self.event_backlog = events;
        self
    }

    /// Sets [`Config::max_message_size`].
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Sets [`Config::write_buffer`].
    pub fn write_buffer(mut self, bytes: usize) -> Self {
        self.write_buffer = bytes;
        self
    }

    /// Sets [`Config::oob`].
    pub fn oob(mut self, oob: bool) -> Self {
        self.oob = oob;
        self
    }
}
