//! `diagnose --emit-metrics`: the replayed events as the monitor's CloudWatch metrics at
//! their own times, written once per minute, account and region (see
//! [`oidc_watch_aws::backfill`] for how a second run knows what the first wrote).

use std::collections::HashSet;

use diagnosis::backfill::{Backfill, MAX_AGE_SECONDS};
use diagnosis::claims::Claims;
use diagnosis::evaluate::epoch_seconds;
use diagnosis::plan::{metric, EventPlan};
use diagnosis::{AccountSnapshot, Diagnosis};
use oidc_watch_aws::backfill::{BackfillWriter, Written};

use crate::commands::CommandError;

const PERMISSIONS: &str =
    "dynamodb:PutItem and dynamodb:DeleteItem on the state table, cloudwatch:PutMetricData";

/// Where the metrics go: the stack's namespace, and its state table for the ledger.
#[derive(Debug, Clone)]
pub struct EmitMetrics {
    pub state_table: String,
    pub namespace: String,
}

/// The events counted so far.
pub struct MetricsBackfill {
    options: EmitMetrics,
    now: i64,
    counts: Backfill,
    /// Event ids counted: an event read twice (from S3 and from LookupEvents, or a
    /// file named twice) counts once, as the monitor counts a redelivery once.
    seen: HashSet<String>,
    repeated: u64,
}

impl MetricsBackfill {
    pub fn new(options: EmitMetrics, now: i64) -> MetricsBackfill {
        MetricsBackfill {
            options,
            now,
            counts: Backfill::new(now),
            seen: HashSet::new(),
            repeated: 0,
        }
    }

    pub fn add(&mut self, claims: &Claims, diagnosis: &Diagnosis, snapshot: Option<&AccountSnapshot>) {
        let event = EventPlan::of(claims, diagnosis, snapshot);
        if !self.seen.insert(event.event_id.clone()) {
            self.repeated += 1;
            return;
        }
        let time = diagnosis.event_time.as_deref().and_then(epoch_seconds);
        let record = metric::event_record(&event, diagnosis, false, None, time.unwrap_or(0));
        self.counts.add(&record, time, diagnosis.region.as_deref());
    }

    /// Writes what was counted and says so on stderr; `Ok(false)` when some of it could
    /// not be written.
    pub fn write(self) -> Result<bool, CommandError> {
        let MetricsBackfill {
            options,
            now,
            counts,
            repeated,
            ..
        } = self;
        let skipped = skipped_note(&counts, repeated);
        let (events, slots) = (counts.events, counts.slot_count());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| CommandError::Aws(format!("--emit-metrics: {e}")))?;
        let (written, region) = runtime.block_on(async {
            let config = crate::snapshot::sdk_config().await;
            let region = config.region().map(ToString::to_string).unwrap_or_default();
            let writer = BackfillWriter::new(
                &config,
                options.state_table.clone(),
                options.namespace.clone(),
                now,
            );
            (writer.write(counts.into_slots()).await, region)
        });
        eprintln!(
            "oidc-watch: --emit-metrics: {}",
            summary(&written, events, slots, &options, &region)
        );
        if let Some(skipped) = skipped {
            eprintln!("oidc-watch: --emit-metrics: {skipped}");
        }
        for error in &written.errors {
            eprintln!("oidc-watch: --emit-metrics: {error} (needs {PERMISSIONS})");
        }
        Ok(written.failed == 0)
    }
}

fn summary(written: &Written, events: u64, slots: usize, options: &EmitMetrics, region: &str) -> String {
    let mut text = format!(
        "{events} events in {slots} minute(s): wrote {} minute(s) ({} data) to {} in {region}",
        written.slots, written.data, options.namespace
    );
    if written.already > 0 {
        text.push_str(&format!(
            "; {} minute(s) already written by an earlier run (ledger in {})",
            written.already, options.state_table
        ));
    }
    if written.failed > 0 {
        text.push_str(&format!(
            "; {} minute(s) not written, a rerun retries them",
            written.failed
        ));
    }
    text
}

fn skipped_note(counts: &Backfill, repeated: u64) -> Option<String> {
    let mut parts = Vec::new();
    if counts.too_old > 0 {
        parts.push(format!(
            "{} older than CloudWatch accepts ({} days)",
            counts.too_old,
            MAX_AGE_SECONDS / 86_400
        ));
    }
    if counts.ahead > 0 {
        parts.push(format!(
            "{} more than two hours ahead of this clock",
            counts.ahead
        ));
    }
    if counts.without_time > 0 {
        parts.push(format!("{} with no event time", counts.without_time));
    }
    if repeated > 0 {
        parts.push(format!("{repeated} read more than once, counted once"));
    }
    (!parts.is_empty()).then(|| format!("events not counted: {}", parts.join(", ")))
}
