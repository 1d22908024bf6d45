//! `qmp events` (a stream of events as JSON lines) and `qmp wait` (one
//! event, like `QEMUMachine.event_wait`).

use qmp_client::{Client, Event, matches_event};
use tokio::time::Instant;

use crate::args::{Events, Wait};
use crate::failure::Failure;
use crate::output::{self, json_line};

/// Streams the wanted events until `--count` is reached, `--timeout`
/// expires or QEMU closes the connection.
pub(crate) async fn stream(client: &Client, args: &Events) -> Result<(), Failure> {
    let mut events = client.events();
    let deadline = args.timeout.0.map(|limit| Instant::now() + limit);
    let mut seen = 0u64;
    if args.count == Some(0) {
        return Ok(());
    }
    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(next) => next,
                Err(_) => return timed_out(args, seen),
            },
            None => events.recv().await,
        };
        match next {
            Some(Ok(event)) if wanted(args, &event) => {
                json_line(&output::event(&event))?;
                seen += 1;
                if args.count == Some(seen) {
                    return Ok(());
                }
            }
            Some(Ok(_)) => {}
            Some(Err(lagged)) => crate::report(&format!("qmp: {lagged}")),
            None => return closed(client, args, seen),
        }
    }
}

fn wanted(args: &Events, event: &Event) -> bool {
    (args.names.is_empty() || args.names.contains(&event.name))
        && args
            .filter
            .as_ref()
            .is_none_or(|filter| matches_event(event, filter))
}

/// The end of `--timeout`: normal, unless `--count` events were wanted.
fn timed_out(args: &Events, seen: u64) -> Result<(), Failure> {
    match (args.count, args.timeout.0) {
        (Some(count), Some(limit)) => Err(Failure::Missing(format!(
            "only {seen} of {count} events arrived within {}",
            humantime::format_duration(limit)
        ))),
        _ => Ok(()),
    }
}

/// The connection ended: the natural end of the stream, unless `--count`
/// events were wanted.
fn closed(client: &Client, args: &Events, seen: u64) -> Result<(), Failure> {
    let Some(count) = args.count else {
        return Ok(());
    };
    let reason = client
        .close_reason()
        .unwrap_or(qmp_client::Disconnect::DriverGone);
    crate::report(&format!("qmp: only {seen} of {count} events arrived"));
    Err(Failure::Client(qmp_client::Error::Disconnected(reason)))
}

/// Waits for one event and prints it.
pub(crate) async fn wait(client: &Client, args: &Wait) -> Result<(), Failure> {
    let event = client
        .wait_event(&args.event, args.filter.as_ref(), args.timeout.0)
        .await?;
    json_line(&output::event(&event))
}
