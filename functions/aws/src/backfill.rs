//! Writing replayed metrics (`oidc-watch diagnose --emit-metrics`): each slot (one minute of
//! one account in one region, [`diagnosis::backfill`]) is claimed in the state table's
//! ledger with a conditional write, and only a slot this run claimed is sent to
//! `PutMetricData`. A second run over the same range finds every slot claimed and sends
//! nothing. A batch that CloudWatch refuses gives its claims back, so a later run retries
//! it; a run killed between the claim and the put leaves that slot unwritten, never written
//! twice.

use std::collections::HashMap;

use aws_sdk_cloudwatch::types::{MetricDatum, StandardUnit, StatisticSet};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_types::DateTime;
use diagnosis::backfill::{CountDatum, Slot, MAX_AGE_SECONDS};

use crate::dynamodb::{n, put_if, s, TTL_ATTRIBUTE};
use crate::metrics::{cloudwatch_dimensions, MAX_DATA_PER_CALL};

/// The operations a run calls (the permissions `--emit-metrics` needs).
pub const DYNAMODB_OPERATIONS: &[&str] = &["DeleteItem", "PutItem"];
pub const CLOUDWATCH_OPERATIONS: &[&str] = &["PutMetricData"];
pub const LEDGER_SORT_KEY: &str = "backfill";
/// Claims asked for at once.
const CLAIMS_IN_FLIGHT: usize = 16;
/// Errors kept to show; the rest are only counted.
const ERRORS_SHOWN: usize = 5;

pub struct BackfillWriter {
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub table: String,
    pub namespace: String,
    pub now: i64,
}

/// What a run wrote and left.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// Slots claimed and sent.
    pub slots: usize,
    pub data: usize,
    /// Slots an earlier run had claimed.
    pub already: usize,
    /// Slots not written: a claim or a put failed.
    pub failed: usize,
    pub errors: Vec<String>,
}

impl Written {
    fn fail(&mut self, slots: usize, error: String) {
        self.failed += slots;
        if self.errors.len() < ERRORS_SHOWN {
            self.errors.push(error);
        }
    }
}

/// A count as CloudWatch's statistic set: `count` samples of 1, which is what the monitor's
/// one datum per event adds up to, in one datum.
pub fn to_statistic_datum(datum: &CountDatum) -> MetricDatum {
    let count = datum.count as f64;
    MetricDatum::builder()
        .metric_name(datum.name.as_str())
        .unit(StandardUnit::Count)
        .timestamp(DateTime::from_millis(datum.timestamp_ms))
        .statistic_values(
            StatisticSet::builder()
                .sample_count(count)
                .sum(count)
                .minimum(1.0)
                .maximum(1.0)
                .build(),
        )
        .set_dimensions(Some(cloudwatch_dimensions(&datum.dimensions)))
        .build()
}

impl BackfillWriter {
    pub fn new(config: &aws_config::SdkConfig, table: String, namespace: String, now: i64) -> BackfillWriter {
        BackfillWriter {
            cloudwatch: aws_sdk_cloudwatch::Client::new(config),
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            table,
            namespace,
            now,
        }
    }

    pub async fn write(&self, slots: Vec<(Slot, Vec<CountDatum>)>) -> Written {
        let mut written = Written::default();
        let mut batch: Vec<(Slot, Vec<CountDatum>)> = Vec::new();
        let mut batch_data = 0;
        let mut slots = slots.into_iter().peekable();
        while slots.peek().is_some() {
            let chunk: Vec<_> = slots.by_ref().take(CLAIMS_IN_FLIGHT).collect();
            let answers = self.claim_all(&chunk).await;
            for ((slot, data), answer) in chunk.into_iter().zip(answers) {
                match answer {
                    Ok(true) => {
                        if batch_data + data.len() > MAX_DATA_PER_CALL && !batch.is_empty() {
                            self.send(std::mem::take(&mut batch), &mut written).await;
                            batch_data = 0;
                        }
                        batch_data += data.len();
                        batch.push((slot, data));
                    }
                    Ok(false) => written.already += 1,
                    Err(error) => written.fail(1, error),
                }
            }
        }
        if !batch.is_empty() {
            self.send(batch, &mut written).await;
        }
        written
    }

    /// Claims the slots concurrently; the answers come back in the slots' order.
    async fn claim_all(&self, slots: &[(Slot, Vec<CountDatum>)]) -> Vec<Result<bool, String>> {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (slot, data)) in slots.iter().enumerate() {
            let client = self.dynamodb.clone();
            let table = self.table.clone();
            let item = self.ledger_item(slot, data.len());
            tasks.spawn(async move {
                let answer = put_if(
                    &client,
                    &table,
                    "PutItem (backfill ledger)",
                    item,
                    "attribute_not_exists(pk)",
                    &[],
                    &[],
                )
                .await
                .map_err(|e| e.to_string());
                (index, answer)
            });
        }
        let mut answers: Vec<Result<bool, String>> =
            vec![Err("PutItem (backfill ledger): the claim did not finish".to_owned()); slots.len()];
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, answer)) = joined {
                answers[index] = answer;
            }
        }
        answers
    }

    fn ledger_item(&self, slot: &Slot, data: usize) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_owned(), s(slot.ledger_key(&self.namespace))),
            ("sk".to_owned(), s(LEDGER_SORT_KEY)),
            ("written_at".to_owned(), n(self.now)),
            ("data".to_owned(), n(data)),
            // Past two weeks CloudWatch refuses the minute anyway.
            (
                TTL_ATTRIBUTE.to_owned(),
                n(slot.minute + MAX_AGE_SECONDS + 86_400),
            ),
        ])
    }

    async fn send(&self, batch: Vec<(Slot, Vec<CountDatum>)>, written: &mut Written) {
        let data: Vec<MetricDatum> = batch
            .iter()
            .flat_map(|(_, data)| data.iter().map(to_statistic_datum))
            .collect();
        let mut sent = 0;
        let mut failure = None;
        for call in data.chunks(MAX_DATA_PER_CALL) {
            let answer = self
                .cloudwatch
                .put_metric_data()
                .namespace(&self.namespace)
                .set_metric_data(Some(call.to_vec()))
                .send()
                .await;
            match answer {
                Ok(_) => sent += call.len(),
                Err(error) => {
                    failure = Some(format!("PutMetricData: {}", crate::describe(&error)));
                    break;
                }
            }
        }
        let Some(error) = failure else {
            written.slots += batch.len();
            written.data += sent;
            return;
        };
        // A batch spans several calls only when one slot alone holds more data than a call
        // takes; once part of it is in CloudWatch its claims stay, so no rerun adds it twice.
        if sent == 0 {
            for (slot, _) in &batch {
                // Best effort: a claim left behind only keeps its minute unwritten.
                let _ = self
                    .dynamodb
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(slot.ledger_key(&self.namespace)))
                    .key("sk", s(LEDGER_SORT_KEY))
                    .send()
                    .await;
            }
        }
        written.data += sent;
        written.fail(batch.len(), error);
    }
}
