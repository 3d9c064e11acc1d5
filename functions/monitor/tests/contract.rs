//! The `diagnosis` log line has exactly the fields `oidc_monitor::contract` declares: the
//! handler runs on an events/ sample under a subscriber that records each event's fields.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};

use lambda_runtime::{Context, LambdaEvent};
use oidc_monitor::contract::{DIAGNOSIS_LOG_FIELDS, DIAGNOSIS_MESSAGE};
use oidc_monitor::handle;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};

mod common;
use common::*;

/// An event's message and the names of its other fields.
type Line = (String, BTreeSet<String>);

/// Every event's line.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<Line>>>);

#[derive(Default)]
struct Fields {
    message: String,
    names: BTreeSet<String>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.names.insert(field.name().to_owned());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.names.insert(field.name().to_owned());
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorded {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        self.0.lock().unwrap().push((fields.message, fields.names));
    }
}

#[tokio::test]
async fn the_diagnosis_line_has_exactly_the_declared_fields() {
    let recorded = Recorded::default();
    let _guard = tracing::subscriber::set_default(tracing_subscriber::registry().with(recorded.clone()));
    let deps = deps_owned_by(Arc::new(AtomicI64::new(T0)), "acme");
    let event = at(
        sample("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"),
        T0,
    );
    handle(LambdaEvent::new(event, Context::default()), &deps)
        .await
        .unwrap();
    let lines: Vec<BTreeSet<String>> = recorded
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|(message, _)| message == DIAGNOSIS_MESSAGE)
        .map(|(_, names)| names.clone())
        .collect();
    let declared: BTreeSet<String> = DIAGNOSIS_LOG_FIELDS.iter().map(|f| (*f).to_owned()).collect();
    assert_eq!(
        lines,
        [declared],
        "one diagnosis line, with exactly the declared fields"
    );
}
