//! Replayed events as the monitor's metrics (`diagnose --emit-metrics`): the same names and
//! dimension sets as [`plan::metric::event_record`], counted per minute of the events' own
//! time, so the dashboard shows the history before the monitor existed.
//!
//! The unit of writing is a [`Slot`]: one minute of one account in one region. A slot's
//! data are complete on their own (the account-less dimension sets count only that slot's
//! events, and CloudWatch adds up data of one timestamp), so each slot can be written once
//! and remembered: a second run over the same range finds its slots taken and writes
//! nothing, and a run over another region or account adds to the same minutes.
//!
//! [`plan::metric::event_record`]: crate::plan::metric::event_record

use std::collections::BTreeMap;

use crate::metrics::{Dimension, MetricName, MetricRecord};

/// PutMetricData takes data up to two weeks old and two hours ahead. A margin is kept from
/// the old edge, as the writing itself takes time.
pub const MAX_AGE_SECONDS: i64 = 14 * 86_400;
pub const AGE_MARGIN_SECONDS: i64 = 15 * 60;
pub const MAX_AHEAD_SECONDS: i64 = 2 * 3600;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// The account dimension (`-` when the event had none).
    pub account: String,
    pub region: String,
    /// Epoch seconds, a multiple of 60.
    pub minute: i64,
}

impl Slot {
    /// The slot's key in the state table's ledger: account and region are checked against
    /// their alphabets when counted, so `#` separates the parts.
    pub fn ledger_key(&self, namespace: &str) -> String {
        format!(
            "backfill#{namespace}#{}#{}#{}",
            self.account, self.region, self.minute
        )
    }
}

/// The count of one metric with one dimension set in one slot: a statistic set of
/// `count` samples of 1, what the monitor's `count` single data would have added up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountDatum {
    pub name: MetricName,
    pub dimensions: Vec<(Dimension, String)>,
    pub timestamp_ms: i64,
    pub count: u64,
}

type SlotCounts = BTreeMap<(MetricName, Vec<(Dimension, String)>), u64>;

/// Events counted so far, and those left out.
#[derive(Debug, Default)]
pub struct Backfill {
    now: i64,
    slots: BTreeMap<Slot, SlotCounts>,
    pub events: u64,
    /// Older than PutMetricData accepts (with the margin).
    pub too_old: u64,
    /// More than two hours ahead of this machine's clock.
    pub ahead: u64,
    /// With no readable event time.
    pub without_time: u64,
}

impl Backfill {
    pub fn new(now: i64) -> Backfill {
        Backfill {
            now,
            ..Backfill::default()
        }
    }

    /// Counts one event's metric record, made at its event time (`None` when it has none).
    pub fn add(&mut self, record: &MetricRecord, event_time: Option<i64>, region: Option<&str>) {
        let Some(time) = event_time else {
            self.without_time += 1;
            return;
        };
        if time < self.now - MAX_AGE_SECONDS + AGE_MARGIN_SECONDS {
            self.too_old += 1;
            return;
        }
        if time > self.now + MAX_AHEAD_SECONDS {
            self.ahead += 1;
            return;
        }
        self.events += 1;
        let unknown = crate::metrics::UNKNOWN_DIMENSION;
        let account = record
            .dimensions
            .get(&Dimension::AccountId)
            .map(String::as_str)
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
        let region = region.filter(|r| {
            (1..=32).contains(&r.len())
                && r.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        let slot = Slot {
            account: account.unwrap_or(unknown).to_owned(),
            region: region.unwrap_or(unknown).to_owned(),
            minute: time.div_euclid(60) * 60,
        };
        let counts = self.slots.entry(slot).or_default();
        for datum in record.to_data() {
            *counts.entry((datum.name, datum.dimensions)).or_default() += datum.value as u64;
        }
    }

    pub fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// Every slot with its data, oldest first.
    pub fn into_slots(self) -> Vec<(Slot, Vec<CountDatum>)> {
        self.slots
            .into_iter()
            .map(|(slot, counts)| {
                let timestamp_ms = slot.minute * 1000;
                let data = counts
                    .into_iter()
                    .map(|((name, dimensions), count)| CountDatum {
                        name,
                        dimensions,
                        timestamp_ms,
                        count,
                    })
                    .collect();
                (slot, data)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_633_600;

    fn record(cause: &str, role: &str, account: &str, counts: &[(MetricName, f64)]) -> MetricRecord {
        MetricRecord {
            timestamp_ms: 0,
            counts: counts.to_vec(),
            dimensions: [
                (Dimension::Cause, cause.to_owned()),
                (Dimension::RoleName, role.to_owned()),
                (Dimension::AccountId, account.to_owned()),
            ]
            .into(),
            properties: BTreeMap::new(),
        }
    }

    fn count(data: &[CountDatum], name: MetricName, dimensions: &[(Dimension, &str)]) -> u64 {
        let dimensions: Vec<(Dimension, String)> =
            dimensions.iter().map(|(d, v)| (*d, (*v).to_owned())).collect();
        data.iter()
            .filter(|d| d.name == name && d.dimensions == dimensions)
            .map(|d| d.count)
            .sum()
    }

    #[test]
    fn events_are_counted_per_minute_account_and_region_with_every_dimension_set() {
        let mut backfill = Backfill::new(NOW);
        let failure = record(
            "SubjectMismatch",
            "deploy",
            "111122223333",
            &[
                (MetricName::AssumeFailures, 1.0),
                (MetricName::ProbeAttempts, 1.0),
            ],
        );
        let success = record(
            "None",
            "deploy",
            "111122223333",
            &[(MetricName::AssumeSuccesses, 1.0)],
        );
        let minute = NOW - 3600 - (NOW - 3600) % 60;
        backfill.add(&failure, Some(minute + 5), Some("us-east-1"));
        backfill.add(&failure, Some(minute + 59), Some("us-east-1"));
        backfill.add(&success, Some(minute + 30), Some("us-east-1"));
        backfill.add(&failure, Some(minute + 60), Some("us-east-1"));
        backfill.add(&failure, Some(minute + 1), Some("eu-west-1"));
        let other = record(
            "RoleNotFound",
            "-",
            "444455556666",
            &[(MetricName::AssumeFailures, 1.0)],
        );
        backfill.add(&other, Some(minute + 1), Some("us-east-1"));

        assert_eq!((backfill.events, backfill.slot_count()), (6, 4));
        let slots = backfill.into_slots();
        let first = slots
            .iter()
            .find(|(s, _)| s.account == "111122223333" && s.region == "us-east-1" && s.minute == minute)
            .map(|(_, data)| data.as_slice())
            .unwrap();
        use Dimension::*;
        use MetricName::*;
        assert_eq!(count(first, AssumeFailures, &[]), 2);
        assert_eq!(count(first, AssumeFailures, &[(Cause, "SubjectMismatch")]), 2);
        assert_eq!(count(first, AssumeFailures, &[(RoleName, "deploy")]), 2);
        assert_eq!(count(first, AssumeFailures, &[(AccountId, "111122223333")]), 2);
        assert_eq!(count(first, AssumeSuccesses, &[]), 1);
        assert_eq!(count(first, ProbeAttempts, &[(AccountId, "111122223333")]), 2);
        assert!(first.iter().all(|d| d.timestamp_ms == minute * 1000));
        // The account-less sets of one minute are split by slot, and add up across them.
        let all: u64 = slots
            .iter()
            .filter(|(s, _)| s.minute == minute)
            .map(|(_, data)| count(data, AssumeFailures, &[]))
            .sum();
        assert_eq!(all, 4);
    }

    #[test]
    fn what_put_metric_data_would_refuse_is_counted_not_kept() {
        let mut backfill = Backfill::new(NOW);
        let failure = record(
            "SubjectMismatch",
            "deploy",
            "111122223333",
            &[(MetricName::AssumeFailures, 1.0)],
        );
        backfill.add(&failure, Some(NOW - MAX_AGE_SECONDS - 1), Some("us-east-1"));
        backfill.add(
            &failure,
            Some(NOW - MAX_AGE_SECONDS + AGE_MARGIN_SECONDS / 2),
            Some("us-east-1"),
        );
        backfill.add(&failure, Some(NOW + MAX_AHEAD_SECONDS + 60), Some("us-east-1"));
        backfill.add(&failure, None, Some("us-east-1"));
        backfill.add(
            &failure,
            Some(NOW - MAX_AGE_SECONDS + AGE_MARGIN_SECONDS + 60),
            None,
        );
        let hostile = record(
            "SubjectMismatch",
            "-",
            "1111#2222",
            &[(MetricName::AssumeFailures, 1.0)],
        );
        backfill.add(&hostile, Some(NOW - 60), Some("us-east-1#x"));
        assert_eq!(
            (
                backfill.too_old,
                backfill.ahead,
                backfill.without_time,
                backfill.events
            ),
            (2, 1, 1, 2)
        );
        let slots = backfill.into_slots();
        assert!(slots
            .iter()
            .all(|(s, _)| s.region == "-" && s.account != "1111#2222"));
    }

    #[test]
    fn the_ledger_key_names_namespace_account_region_and_minute() {
        let slot = Slot {
            account: "111122223333".into(),
            region: "us-east-1".into(),
            minute: 1_764_633_600,
        };
        assert_eq!(
            slot.ledger_key("OidcWatch"),
            "backfill#OidcWatch#111122223333#us-east-1#1764633600"
        );
    }
}
