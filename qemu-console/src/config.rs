//! How a console buffers, logs and writes.

use std::path::PathBuf;
use std::time::Duration;

/// Settings of a [`Console`](crate::Console); build it with struct update
/// syntax over [`Default`]:
///
/// ```
/// use qemu_console::ConsoleConfig;
///
/// let config = ConsoleConfig {
///     name: "ttyS0".into(),
///     log_file: Some("/tmp/ttyS0.log".into()),
///     ..ConsoleConfig::default()
/// };
/// assert_eq!(config.buffer_limit, 1 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct ConsoleConfig {
    /// Name used in errors and `tracing` spans (default `"console"`).
    pub name: String,
    /// Raw log of every byte received, created (truncated) at attach time
    /// and written (unbuffered, so nothing waits in user space) after every
    /// read, before an expect can see the bytes. The drain task writes it
    /// directly: keep it on a local disk. Default: none.
    pub log_file: Option<PathBuf>,
    /// The expect window: the most unconsumed bytes kept for matching
    /// (default 1 MiB). Older unconsumed bytes are skipped, and
    /// [`Captures::skipped`](crate::Captures::skipped) says how many.
    pub buffer_limit: usize,
    /// How many of the latest bytes [`Console::transcript`](crate::Console::transcript)
    /// keeps (default `Some(4 MiB)`); `None` keeps everything, which grows
    /// without bound if the guest prints without end.
    pub transcript_limit: Option<usize>,
    /// How many of the last bytes an error shows (default 512).
    pub error_tail: usize,
    /// How long one send may take before [`Error::WriteTimeout`](crate::Error::WriteTimeout)
    /// (default 10 s).
    pub write_timeout: Duration,
    /// The size of one read from the stream (default 64 KiB).
    pub read_chunk: usize,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            name: "console".to_owned(),
            log_file: None,
            buffer_limit: 1 << 20,
            transcript_limit: Some(4 << 20),
            error_tail: 512,
            write_timeout: Duration::from_secs(10),
            read_chunk: 64 << 10,
        }
    }
}
