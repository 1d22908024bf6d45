//! The event backlog as QEMUMachine keeps it (`get_qmp_events`,
//! `get_qmp_event`, `clear_events`), against a real QEMU: `stop` and
//! `cont` make it send `STOP` and `RESUME`.

mod support;

use std::time::Duration;

use qmp_client::{Client, Config, Error};
use support::Qemu;

const LIMIT: Duration = Duration::from_secs(30);

async fn launch() -> (Qemu, Client) {
    let (qemu, io) = Qemu::with_socketpair();
    match Client::from_stream(io, &Config::default()).await {
        Ok(client) => (qemu, client),
        Err(error) => panic!("handshake with QEMU failed: {error}"),
    }
}

fn names(events: &[qmp_client::Event]) -> Vec<&str> {
    events.iter().map(|event| event.name.as_str()).collect()
}

#[tokio::test]
async fn take_events_drains_what_arrived_in_order() -> Result<(), Error> {
    let (_qemu, client) = launch().await;
    assert!(client.take_events().is_empty(), "events before any command");
    for _ in 0..2 {
        client.execute_raw("stop", None).await?;
        client.execute_raw("cont", None).await?;
    }
    // Replies may overtake their events: wait for the last one.
    let mut events = Vec::new();
    while events.len() < 4 {
        events.extend(client.wait_events(Some(LIMIT)).await?);
    }
    assert_eq!(names(&events), ["STOP", "RESUME", "STOP", "RESUME"]);
    assert!(client.take_events().is_empty(), "drained twice");
    assert!(client.try_next_event().is_none());
    Ok(())
}

#[tokio::test]
async fn next_event_takes_the_oldest_and_wait_event_consumes() -> Result<(), Error> {
    let (_qemu, client) = launch().await;
    client.execute_raw("stop", None).await?;
    client.execute_raw("cont", None).await?;
    let resume = client.wait_event("RESUME", None, Some(LIMIT)).await?;
    assert_eq!(resume.name, "RESUME");
    // RESUME was consumed by the wait: only STOP is left.
    let stop = client.next_event(Some(LIMIT)).await?;
    assert_eq!(stop.name, "STOP");
    let none = client.next_event(Some(Duration::from_millis(50))).await;
    assert!(
        matches!(&none, Err(Error::EventTimeout { name, .. }) if name == "any event"),
        "{none:?}"
    );
    Ok(())
}

#[tokio::test]
async fn clear_events_forgets_the_backlog() -> Result<(), Error> {
    let (_qemu, client) = launch().await;
    // A subscriber tells when RESUME is in, without taking anything.
    let mut stream = client.events();
    client.execute_raw("stop", None).await?;
    client.execute_raw("cont", None).await?;
    loop {
        let event = tokio::time::timeout(LIMIT, stream.recv()).await;
        match event {
            Ok(Some(Ok(event))) if event.name == "RESUME" => break,
            Ok(Some(_)) => continue,
            other => panic!("no RESUME: {other:?}"),
        }
    }
    client.clear_events();
    assert!(client.take_events().is_empty());
    let late = client
        .wait_event("RESUME", None, Some(Duration::from_millis(50)))
        .await;
    assert!(matches!(late, Err(Error::EventTimeout { .. })), "{late:?}");
    client.execute_raw("stop", None).await?;
    let fresh = client.next_event(Some(LIMIT)).await?;
    assert_eq!(fresh.name, "STOP");
    Ok(())
}

#[tokio::test]
async fn events_that_came_before_the_end_are_still_taken_after_it() -> Result<(), Error> {
    let (_qemu, client) = launch().await;
    let quit = client.execute_raw("quit", None).await;
    assert!(
        matches!(&quit, Ok(serde_json::Value::Object(reply)) if reply.is_empty())
            || matches!(quit, Err(Error::Disconnected(_))),
        "{quit:?}"
    );
    client.closed().await;
    // `quit` sends SHUTDOWN before closing.
    let events = client.wait_events(Some(LIMIT)).await?;
    assert_eq!(names(&events), ["SHUTDOWN"]);
    let after = client.next_event(Some(LIMIT)).await;
    assert!(matches!(after, Err(Error::Disconnected(_))), "{after:?}");
    Ok(())
}
