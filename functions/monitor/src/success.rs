//! A success of one of our jobs: no incident; the subject joins the role's record of what
//! works (`oidc-watch impact --observed`), alongside the sighting that finds redeliveries.

use diagnosis::plan::{metric, success_memo_key, EventPlan, Policy, Times};
use diagnosis::ports::{MetricSink, StateStore, Success};
use diagnosis::Diagnosis;

use crate::{Deps, EventOutcome, HandlerError};

impl<A, M: MetricSink, L, S: StateStore> Deps<A, M, L, S> {
    /// The record is idempotent, so a redelivery may write it again.
    pub(crate) async fn record_success(
        &self,
        event: &EventPlan,
        success: Option<Success<'_>>,
        diagnosis: &Diagnosis,
        result: &mut EventOutcome,
        t: Times,
        policy: &Policy,
    ) -> Result<(), HandlerError> {
        let memo_key = success.as_ref().map(success_memo_key);
        let record = match &memo_key {
            Some(key) if !self.memo.success_recorded(key, t.wall) => success.as_ref(),
            _ => None,
        };
        let (first, recorded) = tokio::join!(
            self.state
                .first_sighting(&event.event_id, policy.sighting_expires(t)),
            async {
                match record {
                    Some(success) => self.state.record_success(success).await.map(|()| true),
                    None => Ok(false),
                }
            }
        );
        // The record serves a pre-flight check: a lost write is logged, never retried at
        // the cost of the event's metrics.
        match (recorded, memo_key) {
            (Ok(true), Some(key)) => self.memo.remember_success(key, t.wall),
            (Err(error), _) => tracing::warn!(error = %error, "successful subject not recorded"),
            _ => {}
        }
        let first = first.map_err(HandlerError::State)?;
        result.duplicate = !first;
        if first {
            let record =
                metric::event_record(event, diagnosis, result.enrichment_error.is_some(), None, t.now);
            self.publish_metrics(&record).await;
        }
        Ok(())
    }
}
