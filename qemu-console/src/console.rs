//! The console handle: attach, send, expect, run, transcript.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument as _;

use crate::config::ConsoleConfig;
use crate::deadline::deadline;
use crate::drain::{Log, drain};
use crate::error::{Error, Result};
use crate::expect::{Captures, expect};
use crate::history::History;
use crate::needle::Needle;
use crate::run::{CommandOutput, run};
use crate::shared::Shared;

type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A serial console, drained from the moment it is attached.
///
/// All methods take `&self`: sends are serialised, and so are expects (and
/// [`run`](Console::run)s), so one `&Console` can be shared. The drain task
/// belongs to the console and stops when it is dropped.
pub struct Console {
    shared: Arc<Shared>,
    writer: Mutex<Writer>,
    /// Held by an expect or run for its whole duration.
    expecting: Mutex<()>,
    write_timeout: Duration,
    markers: AtomicU64,
    _drain: AbortOnDropHandle<()>,
}

impl Console {
    /// Attaches to a console stream and starts draining it at once.
    ///
    /// # Errors
    ///
    /// [`Error::NoRuntime`] outside a Tokio runtime, [`Error::LogFile`] when
    /// the log file cannot be created.
    pub fn attach<IO>(io: IO, config: ConsoleConfig) -> Result<Self>
    where
        IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let log = match &config.log_file {
            Some(path) => {
                let file = std::fs::File::create(path).map_err(|source| Error::LogFile {
                    path: path.clone(),
                    source,
                })?;
                Some(Log {
                    path: path.clone(),
                    file,
                })
            }
            None => None,
        };
        let history = History::new(config.buffer_limit, config.transcript_limit);
        let shared = Arc::new(Shared::new(config.name.clone(), config.error_tail, history));
        let (reader, writer) = tokio::io::split(io);
        let span = tracing::debug_span!("console", name = %config.name);
        let task = runtime
            .spawn(drain(reader, Arc::clone(&shared), log, config.read_chunk).instrument(span));
        tracing::debug!(console = %config.name, log = ?config.log_file, "console attached");
        Ok(Self {
            shared,
            writer: Mutex::new(Box::new(writer)),
            expecting: Mutex::new(()),
            write_timeout: config.write_timeout,
            markers: AtomicU64::new(marker_seed()),
            _drain: AbortOnDropHandle::new(task),
        })
    }

    /// The console's name, from [`ConsoleConfig::name`].
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Waits until `needle` matches in the expect window, and consumes the
    /// bytes up to the end of the match. Bytes received before the stream
    /// ended still match after it ended.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] after `timeout`, [`Error::Eof`] (at once) when the
    /// stream has ended and the needle is not [`Needle::eof`]. Both say what
    /// was expected and show the transcript's tail.
    pub async fn expect(&self, needle: impl Into<Needle>, timeout: Duration) -> Result<Captures> {
        let needle = needle.into();
        let started = Instant::now();
        let _turn = self.turn(&needle, started, timeout).await?;
        expect(&self.shared, &needle, started, timeout).await
    }

    /// Waits for the end of the stream (QEMU exited or closed the chardev),
    /// returning the bytes not consumed yet.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the stream is still open after `timeout`.
    pub async fn expect_eof(&self, timeout: Duration) -> Result<Vec<u8>> {
        Ok(self.expect(Needle::eof(), timeout).await?.into_parts().0)
    }

    /// Waits for this console's turn to expect, within the same deadline.
    pub(crate) async fn turn(
        &self,
        needle: &Needle,
        started: Instant,
        timeout: Duration,
    ) -> Result<tokio::sync::MutexGuard<'_, ()>> {
        match tokio::time::timeout_at(deadline(started, timeout), self.expecting.lock()).await {
            Ok(guard) => Ok(guard),
            Err(_) => Err(self.timeout_error(
                format!("{needle} (another expect or run held the console the whole time)"),
                started,
            )),
        }
    }

    pub(crate) fn timeout_error(&self, expected: String, started: Instant) -> Error {
        let history = self.shared.history();
        Error::Timeout {
            console: self.shared.name.clone(),
            expected,
            waited: started.elapsed(),
            tail: self.shared.escaped_tail(&history),
        }
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }

    /// Sends bytes as they are.
    ///
    /// # Errors
    ///
    /// [`Error::Write`] when the peer is gone, [`Error::WriteTimeout`] when
    /// the bytes are not taken within [`ConsoleConfig::write_timeout`].
    pub async fn send(&self, bytes: impl AsRef<[u8]>) -> Result<()> {
        let bytes = bytes.as_ref();
        let write = async {
            let mut writer = self.writer.lock().await;
            writer.write_all(bytes).await?;
            writer.flush().await
        };
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(Error::Write {
                console: self.shared.name.clone(),
                len: bytes.len(),
                source,
            }),
            Err(_) => Err(Error::WriteTimeout {
                console: self.shared.name.clone(),
                len: bytes.len(),
                waited: self.write_timeout,
            }),
        }
    }

    /// Sends `line` followed by `\n` (a serial console's Enter), in one write.
    ///
    /// # Errors
    ///
    /// As [`send`](Console::send).
    pub async fn send_line(&self, line: impl AsRef<[u8]>) -> Result<()> {
        let mut bytes = Vec::with_capacity(line.as_ref().len() + 1);
        bytes.extend_from_slice(line.as_ref());
        bytes.push(b'\n');
        self.send(bytes).await
    }

    /// Sends the control character Ctrl-`key`: `'c'` sends `0x03` (interrupt),
    /// `'d'` `0x04` (end of input), `'['` ESC, `'?'` DEL. Letters are case-insensitive.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidControl`] for a key with no control character, else as
    /// [`send`](Console::send).
    pub async fn send_control(&self, key: char) -> Result<()> {
        let code = control_code(key).ok_or(Error::InvalidControl(key))?;
        self.send([code]).await
    }

    /// Runs a shell command line on the console and returns its output and
    /// exit status; see [`CommandOutput`] for how markers keep the echo and
    /// prompt out of it. The console must be at a shell prompt (sh, ash, bash).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCommand`] for a command with a line break,
    /// [`Error::Timeout`]/[`Error::Eof`] when it does not finish in time.
    pub async fn run(&self, command: &str, timeout: Duration) -> Result<CommandOutput> {
        let marker = self.next_marker();
        run(self, command, marker, timeout).await
    }

    fn next_marker(&self) -> u64 {
        self.markers.fetch_add(1, Ordering::Relaxed)
    }

    /// The latest bytes received, at most [`ConsoleConfig::transcript_limit`],
    /// consumed or not.
    pub fn transcript(&self) -> Vec<u8> {
        self.shared.history().transcript().to_vec()
    }

    /// The transcript as readable text ([`to_text`](crate::to_text)).
    pub fn transcript_text(&self) -> String {
        crate::text::to_text(self.shared.history().transcript())
    }

    /// How many bytes have been received since the console was attached.
    pub fn received(&self) -> u64 {
        self.shared.history().received()
    }

    /// How many received bytes the console holds in memory (transcript and
    /// expect window share them). Bounded by 1.5 times the larger of
    /// [`ConsoleConfig::transcript_limit`] and [`ConsoleConfig::buffer_limit`]
    /// (unless the transcript is unbounded).
    pub fn buffered_len(&self) -> usize {
        self.shared.history().held()
    }

    /// Whether the stream has ended (QEMU exited or closed the chardev).
    pub fn is_eof(&self) -> bool {
        self.shared.history().end().is_some()
    }

    /// Why the log file stopped, if writing it failed (draining goes on).
    pub fn log_error(&self) -> Option<String> {
        self.shared.log_error()
    }
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let history = self.shared.history();
        f.debug_struct("Console")
            .field("name", &self.shared.name)
            .field("received", &history.received())
            .field("eof", &history.end().is_some())
            .finish_non_exhaustive()
    }
}

/// A start for run markers that differs between consoles and processes, so
/// a marker never matches output left over from an earlier session.
fn marker_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.subsec_nanos());
    // Stays far below 2^31 even after many runs: any shell can add it.
    1_000_000_000 + u64::from(nanos % 900_000_000)
}

fn control_code(key: char) -> Option<u8> {
    let key = u8::try_from(key.to_ascii_uppercase()).ok()?;
    match key {
        b'@'..=b'_' => Some(key - b'@'),
        b'?' => Some(0x7f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::control_code;

    #[test]
    fn control_codes() {
        assert_eq!(control_code('c'), Some(3));
        assert_eq!(control_code('C'), Some(3));
        assert_eq!(control_code('d'), Some(4));
        assert_eq!(control_code('['), Some(0x1b));
        assert_eq!(control_code('@'), Some(0));
        assert_eq!(control_code('?'), Some(0x7f));
        assert_eq!(control_code('1'), None);
        assert_eq!(control_code('é'), None);
    }
}
