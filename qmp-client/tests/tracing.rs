//! The client's tracing spans, recorded by a subscriber. Alone in its
//! binary: `tracing` caches per-callsite interest process-wide, and tests
//! on other threads without a subscriber could leave a callsite disabled.

use std::future::Future;
use std::time::Duration;

use qmp_client::mock::MockQemu;
use qmp_client::{Client, Config, Error};
use qmp_proto::ErrorClass;
use qmp_proto::commands::QueryStatus;

const LIMIT: Duration = Duration::from_secs(10);

async fn bounded<F: Future>(future: F) -> F::Output {
    match tokio::time::timeout(LIMIT, future).await {
        Ok(output) => output,
        Err(_) => panic!("the test did not finish within {LIMIT:?}"),
    }
}

async fn connect(mock: MockQemu, config: &Config) -> (Client, qmp_client::mock::MockHandle) {
    let (io, handle) = mock.serve_pair();
    match Client::from_stream(io, config).await {
        Ok(client) => (client, handle),
        Err(error) => panic!("handshake failed: {error}"),
    }
}

mod spans {
    //! A tracing layer that records the command spans and their events.

    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::Context;
    use tracing_subscriber::registry::LookupSpan;

    /// What was seen: one line per span field or event, prefixed by the
    /// span's name.
    #[derive(Clone, Default)]
    pub(super) struct Recorder(pub(super) Arc<Mutex<Vec<String>>>);

    struct Fields<'a>(&'a mut Vec<String>, &'a str);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0
                .push(format!("{} {}={:?}", self.1, field.name(), value));
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
        fn on_new_span(&self, attrs: &Attributes<'_>, _: &Id, _: Context<'_, S>) {
            if let Ok(mut lines) = self.0.lock() {
                attrs.record(&mut Fields(&mut lines, attrs.metadata().name()));
            }
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            let name = ctx.span(id).map(|span| span.name()).unwrap_or("?");
            if let Ok(mut lines) = self.0.lock() {
                values.record(&mut Fields(&mut lines, name));
            }
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            let name = ctx.event_span(event).map(|span| span.name()).unwrap_or("-");
            if let Ok(mut lines) = self.0.lock() {
                event.record(&mut Fields(&mut lines, name));
            }
        }
    }
}

#[tokio::test]
async fn commands_and_connections_get_tracing_spans() {
    use tracing_subscriber::layer::SubscriberExt;
    let recorder = spans::Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    bounded(async {
        let (client, _mock) = connect(MockQemu::new(), &Config::default()).await;
        let status = client.execute(QueryStatus).await;
        assert!(matches!(&status, Ok(info) if info.running), "{status:?}");
        let error = client.execute_raw("nope", None).await;
        assert!(
            matches!(
                &error,
                Err(Error::Qmp {
                    class: ErrorClass::CommandNotFound,
                    ..
                })
            ),
            "{error:?}"
        );
    })
    .await;
    let lines = recorder
        .0
        .lock()
        .map(|lines| lines.clone())
        .unwrap_or_default();
    let has = |line: &str| lines.iter().any(|seen| seen == line);
    assert!(has("qmp_command command=query-status"), "{lines:#?}");
    assert!(has("qmp_command id=1"), "{lines:#?}");
    assert!(has("qmp_command outcome=\"ok\""), "{lines:#?}");
    assert!(has("qmp_command outcome=\"error\""), "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("qmp_command elapsed_us="))
    );
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("qmp_connection peer="))
    );
}
