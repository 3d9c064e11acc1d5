//! Incidents, counters and spike state in one DynamoDB table: partition key `pk` (S),
//! sort key `sk` (S), TTL attribute `expires_at` (N). Every write that decides who alerts
//! is conditional, so concurrent instances agree.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use diagnosis::ports::{Incident, PortError, StateStore};
use diagnosis::spike::{MinuteCount, SpikeState};

pub struct DynamoStateStore {
    pub client: aws_sdk_dynamodb::Client,
    pub table: String,
}

/// The sort key of single-item partitions.
pub const ONE: &str = "-";
/// Keys longer than this are hashed: partition keys are capped at 2048 bytes.
const MAX_KEY_PART: usize = 512;

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Long (attacker-sized) key parts are replaced by their FNV-1a hash.
pub fn key_part(part: &str) -> String {
    if part.len() <= MAX_KEY_PART {
        part.to_owned()
    } else {
        format!("h{:016x}", fnv1a(part))
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Sort keys of minute counters sort as numbers.
fn minute_key(minute: i64) -> String {
    format!("{minute:012}")
}

pub fn store_error<E>(operation: &str, error: SdkError<E>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = match &error {
        SdkError::ServiceError(e) => {
            format!(
                "{}: {}",
                e.err().code().unwrap_or("error"),
                e.err().message().unwrap_or("")
            )
        }
        other => other.to_string(),
    };
    PortError::new("dynamodb", format!("{operation}: {message}"), true)
}

/// PutItem under a condition; `Ok(false)` when the condition failed.
pub async fn put_if(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    operation: &str,
    item: HashMap<String, AttributeValue>,
    condition: &str,
    names: &[(&str, &str)],
    values: &[(&str, AttributeValue)],
) -> Result<bool, PortError> {
    let mut request = client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression(condition);
    for (placeholder, name) in names {
        request = request.expression_attribute_names(*placeholder, *name);
    }
    for (placeholder, value) in values {
        request = request.expression_attribute_values(*placeholder, value.clone());
    }
    match request.send().await {
        Ok(_) => Ok(true),
        Err(error) => match error.as_service_error() {
            Some(e) if e.is_conditional_check_failed_exception() => Ok(false),
            _ => Err(store_error(operation, error)),
        },
    }
}

fn get_n(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn get_s(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default()
}

fn get_bool(item: &HashMap<String, AttributeValue>, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

fn incident_from(item: &HashMap<String, AttributeValue>) -> Incident {
    Incident {
        id: get_s(item, "id"),
        opened_by: get_s(item, "opened_by"),
        opened_at: get_n(item, "opened_at"),
        until: get_n(item, "until"),
        attempts: get_n(item, "attempts").max(0) as u64,
        alerted: get_bool(item, "alerted"),
    }
}

impl DynamoStateStore {
    fn key(&self, pk: String, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }
}

impl StateStore for DynamoStateStore {
    async fn first_sighting(&self, event_id: &str, expires_at: i64) -> Result<bool, PortError> {
        let mut item = self.key(format!("event#{}", key_part(event_id)), ONE);
        item.insert("expires_at".to_owned(), n(expires_at));
        put_if(
            &self.client,
            &self.table,
            "PutItem event",
            item,
            "attribute_not_exists(pk)",
            &[],
            &[],
        )
        .await
    }

    async fn open_incident(
        &self,
        key: &str,
        incident: &Incident,
        now: i64,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let mut item = self.key(format!("incident#{}", key_part(key)), ONE);
        item.extend([
            ("id".to_owned(), s(&incident.id)),
            ("opened_by".to_owned(), s(&incident.opened_by)),
            ("opened_at".to_owned(), n(incident.opened_at)),
            ("until".to_owned(), n(incident.until)),
            ("attempts".to_owned(), n(incident.attempts)),
            ("alerted".to_owned(), AttributeValue::Bool(incident.alerted)),
            ("expires_at".to_owned(), n(expires_at)),
        ]);
        put_if(
            &self.client,
            &self.table,
            "PutItem incident",
            item,
            "attribute_not_exists(pk) OR #until < :now",
            &[("#until", "until")],
            &[(":now", n(now))],
        )
        .await
    }

    async fn add_attempt(&self, key: &str) -> Result<Option<Incident>, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(format!("incident#{}", key_part(key)), ONE)))
            .update_expression("ADD attempts :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.attributes.as_ref().map(incident_from)),
            Err(error) => match error.as_service_error() {
                Some(e) if e.is_conditional_check_failed_exception() => Ok(None),
                _ => Err(store_error("UpdateItem incident", error)),
            },
        }
    }

    async fn incident(&self, key: &str) -> Result<Option<Incident>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(format!("incident#{}", key_part(key)), ONE)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem incident", e))?;
        Ok(output.item.as_ref().map(incident_from))
    }

    async fn mark_alerted(&self, key: &str) -> Result<(), PortError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(format!("incident#{}", key_part(key)), ONE)))
            .update_expression("SET alerted = :yes")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The incident expired meanwhile: nothing to mark, and no item without a TTL.
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(error) => Err(store_error("UpdateItem alerted", error)),
        }
    }

    async fn count_failure(
        &self,
        scope: &str,
        minute: i64,
        labels: &[String],
        expires_at: i64,
    ) -> Result<(), PortError> {
        let mut expression = "SET expires_at = :expires ADD #count :one".to_owned();
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(
                self.key(format!("counter#{}", key_part(scope)), &minute_key(minute)),
            ))
            .expression_attribute_names("#count", "failures")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(expires_at));
        for (i, label) in labels.iter().enumerate() {
            expression.push_str(&format!(", #l{i} :one"));
            request =
                request.expression_attribute_names(format!("#l{i}"), format!("label:{}", key_part(label)));
        }
        request
            .update_expression(expression)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| store_error("UpdateItem counter", e))
    }

    async fn failure_counts(&self, scope: &str, from: i64, to: i64) -> Result<Vec<MinuteCount>, PortError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", s(format!("counter#{}", key_part(scope))))
            .expression_attribute_values(":from", s(minute_key(from + 1)))
            .expression_attribute_values(":to", s(minute_key(to)))
            .send()
            .await
            .map_err(|e| store_error("Query counters", e))?;
        Ok(output
            .items
            .unwrap_or_default()
            .iter()
            .map(|item| MinuteCount {
                minute: get_s(item, "sk").parse().unwrap_or(0),
                failures: get_n(item, "failures").max(0) as u64,
                labels: item
                    .iter()
                    .filter_map(|(name, value)| {
                        let label = name.strip_prefix("label:")?;
                        Some((label.to_owned(), value.as_n().ok()?.parse().ok()?))
                    })
                    .collect::<BTreeMap<String, u64>>(),
            })
            .collect())
    }

    async fn spike_state(&self, scope: &str) -> Result<Option<SpikeState>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(format!("spike#{}", key_part(scope)), ONE)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem spike", e))?;
        Ok(output.item.map(|item| SpikeState {
            version: get_n(&item, "version").max(0) as u64,
            spiking: get_bool(&item, "spiking"),
            since: get_n(&item, "since"),
            last_alert: get_n(&item, "last_alert"),
            peak: get_n(&item, "peak").max(0) as u64,
        }))
    }

    async fn save_spike_state(&self, scope: &str, state: &SpikeState) -> Result<bool, PortError> {
        let mut item = self.key(format!("spike#{}", key_part(scope)), ONE);
        item.extend([
            ("version".to_owned(), n(state.version)),
            ("spiking".to_owned(), AttributeValue::Bool(state.spiking)),
            ("since".to_owned(), n(state.since)),
            ("last_alert".to_owned(), n(state.last_alert)),
            ("peak".to_owned(), n(state.peak)),
        ]);
        if state.version <= 1 {
            put_if(
                &self.client,
                &self.table,
                "PutItem spike",
                item,
                "attribute_not_exists(pk)",
                &[],
                &[],
            )
            .await
        } else {
            put_if(
                &self.client,
                &self.table,
                "PutItem spike",
                item,
                "#version = :previous",
                &[("#version", "version")],
                &[(":previous", n(state.version - 1))],
            )
            .await
        }
    }

    async fn take_token(&self, key: &str, now: i64, period: i64) -> Result<bool, PortError> {
        let mut item = self.key(format!("token#{}", key_part(key)), ONE);
        item.insert("until".to_owned(), n(now + period));
        item.insert("expires_at".to_owned(), n(now + period + 86_400));
        put_if(
            &self.client,
            &self.table,
            "PutItem token",
            item,
            "attribute_not_exists(pk) OR #until <= :now",
            &[("#until", "until")],
            &[(":now", n(now))],
        )
        .await
    }
}
