//! What the monitor counts. Dimensions are few and bounded (cause, the canonical role or
//! `-`, the account); everything a stranger chooses is a property, cut to [`MAX_LOGGED`]
//! characters.
//!
//! [`MAX_LOGGED`]: super::MAX_LOGGED

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{bounded, EventPlan};
use crate::alert::AlertKind;
use crate::metrics::{Dimension, MetricName, MetricRecord};
use crate::owner::Trust;
use crate::{Cause, Diagnosis};

fn text(value: Option<&str>) -> Value {
    json!(bounded(value.unwrap_or("-")))
}

/// One diagnosed event, counted once (a redelivery is not counted again).
pub fn event_record(
    event: &EventPlan,
    d: &Diagnosis,
    enrichment_failed: bool,
    incident_id: Option<&str>,
    now: i64,
) -> MetricRecord {
    let mut counts = vec![if d.cause == Cause::None {
        (MetricName::AssumeSuccesses, 1.0)
    } else {
        (MetricName::AssumeFailures, 1.0)
    }];
    if d.trust != Trust::Ours && d.cause != Cause::None {
        counts.push((MetricName::ProbeAttempts, 1.0));
    }
    if enrichment_failed {
        counts.push((MetricName::EnrichmentErrors, 1.0));
    }
    MetricRecord {
        timestamp_ms: now * 1000,
        counts,
        dimensions: BTreeMap::from([
            (Dimension::Cause, d.cause.as_str().to_owned()),
            (Dimension::RoleName, event.role.clone()),
            (Dimension::AccountId, event.account.clone()),
        ]),
        properties: BTreeMap::from([
            ("event_id".to_owned(), text(d.event_id.as_deref())),
            ("subject".to_owned(), text(d.subject.as_deref())),
            ("repository".to_owned(), text(d.claims.repository.as_deref())),
            (
                "owner".to_owned(),
                text(d.owner.as_ref().map(ToString::to_string).as_deref()),
            ),
            ("trust".to_owned(), json!(d.trust.as_str())),
            ("run_id".to_owned(), text(d.github_run_id.as_deref())),
            ("role_arn".to_owned(), text(d.role_arn.as_deref())),
            ("region".to_owned(), text(d.region.as_deref())),
            (
                "subject_mismatch".to_owned(),
                text(d.subject_mismatch.map(|k| k.as_str())),
            ),
            ("confidence".to_owned(), json!(d.confidence)),
            ("incident_id".to_owned(), text(incident_id)),
        ]),
    }
}

/// An incident or probe alert held back by a rate limit.
pub fn held_back_record(event: &EventPlan, kind: AlertKind, incident_id: &str, now: i64) -> MetricRecord {
    MetricRecord {
        timestamp_ms: now * 1000,
        counts: vec![(MetricName::AlertsHeldBack, 1.0)],
        dimensions: BTreeMap::from([(Dimension::AccountId, event.account.clone())]),
        properties: BTreeMap::from([
            ("incident_id".to_owned(), json!(incident_id)),
            ("kind".to_owned(), json!(kind.as_str())),
        ]),
    }
}

/// A record that was not an `AssumeRoleWithWebIdentity` event, or not readable, by its
/// envelope's id; at the wall clock, as it has no event time.
pub fn malformed_record(envelope_id: &str, wall: i64) -> MetricRecord {
    MetricRecord {
        timestamp_ms: wall * 1000,
        counts: vec![(MetricName::MalformedEvents, 1.0)],
        dimensions: BTreeMap::new(),
        properties: BTreeMap::from([("event_id".to_owned(), json!(bounded(envelope_id)))]),
    }
}
