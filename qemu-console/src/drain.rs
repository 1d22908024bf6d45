//! The drain task: reads the console all the time, whether or not anyone
//! expects anything, so QEMU never blocks on a full socket.

use std::fs::File;
use std::io::{ErrorKind, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::history::End;
use crate::shared::Shared;

/// The raw log file, if any. Written with plain `write(2)` from the drain
/// task: a serial console delivers a few bytes per read, and a trip through
/// `tokio::fs` (`spawn_blocking`) per read cost ~100 µs against ~3 µs for
/// the whole read + write + publish this way (measured on the 10 MiB guest
/// flood). Unbuffered, so every byte is in the kernel when the write returns.
#[derive(Debug)]
pub(crate) struct Log {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
}

/// Reads until EOF or a read error. Every chunk goes to the log file first,
/// then into the history: whatever an expect has seen is already in the log.
pub(crate) async fn drain<R>(mut reader: R, shared: Arc<Shared>, mut log: Option<Log>, chunk: usize)
where
    R: AsyncRead + Unpin,
{
    let mut buf = vec![0; chunk.max(1)];
    let end = loop {
        match reader.read(&mut buf).await {
            Ok(0) => break End::Eof,
            Ok(n) => {
                let bytes = &buf[..n];
                if let Some(open) = &mut log {
                    if let Err(error) = open.file.write_all(bytes) {
                        let message = format!(
                            "writing the console log {} failed: {error}",
                            open.path.display()
                        );
                        tracing::warn!(console = %shared.name, "{message}; the log stops here, draining goes on");
                        shared.set_log_error(message);
                        log = None;
                    }
                }
                shared.push(bytes);
                tracing::trace!(console = %shared.name, bytes = n, "drained");
            }
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(error) => break End::Failed(error.to_string()),
        }
    };
    tracing::debug!(console = %shared.name, ?end, "console stream ended");
    shared.finish(end);
}
