//! Waiting for any of several events, as `QEMUMachine.events_wait`.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use qmp_proto::Event;
use serde_json::Value;

type EventWait<'a> = Pin<Box<dyn Future<Output = Result<Event, qmp_client::Error>> + Send + 'a>>;

/// Waits until one of `events` (name, optional filter) arrives, looking at
/// recent events first, and returns the first match. Only that event is
/// consumed.
pub(crate) async fn any_event(
    client: &qmp_client::Client,
    events: &[(&str, Option<Value>)],
    timeout: Duration,
) -> Result<Event, qmp_client::Error> {
    let mut waits: Vec<EventWait<'_>> = events
        .iter()
        .map(|(name, filter)| -> EventWait<'_> {
            // Bounded by the one timeout below, not by each wait's own.
            Box::pin(client.wait_event(name, filter.as_ref(), Some(Duration::MAX)))
        })
        .collect();
    // Polled in order and stopped at the first ready one: a wait consumes
    // its event only when it returns it, so dropping the others loses none.
    let first = std::future::poll_fn(|context| {
        for wait in &mut waits {
            if let Poll::Ready(result) = wait.as_mut().poll(context) {
                return Poll::Ready(result);
            }
        }
        Poll::Pending
    });
    match tokio::time::timeout(timeout, first).await {
        Ok(result) => result,
        Err(_elapsed) => Err(qmp_client::Error::EventTimeout {
            name: events
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(" or "),
            filter: None,
            timeout,
        }),
    }
}
