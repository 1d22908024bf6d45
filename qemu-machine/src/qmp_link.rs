//! Connecting qmp-client to the monitor QEMU was started with.

use crate::error::LaunchFailure;
use crate::monitor::MonitorEnd;

/// Accepts QEMU's connection if needed, then waits for the greeting and
/// negotiates. The caller bounds this with the QMP timeout.
pub(crate) async fn connect(
    end: MonitorEnd,
    config: &qmp_client::Config,
) -> Result<qmp_client::Client, LaunchFailure> {
    let client = match end {
        MonitorEnd::Pair { ours, .. } => {
            ours.set_nonblocking(true).map_err(LaunchFailure::Io)?;
            let stream = tokio::net::UnixStream::from_std(ours).map_err(LaunchFailure::Io)?;
            qmp_client::Client::from_stream(stream, config).await
        }
        MonitorEnd::Unix { listener, .. } => {
            let (stream, _peer) = listener.accept().await.map_err(LaunchFailure::Io)?;
            qmp_client::Client::from_stream(stream, config).await
        }
        MonitorEnd::Tcp { listener, .. } => {
            let (stream, _peer) = listener.accept().await.map_err(LaunchFailure::Io)?;
            qmp_client::Client::from_stream(stream, config).await
        }
    };
    client.map_err(LaunchFailure::Qmp)
}
