//! Incidents, counters, rate limits and spike state in one DynamoDB table: partition key `pk` (S),
//! sort key `sk` (S), TTL attribute `expires_at` (N). Every write that decides who alerts
//! is conditional, so concurrent instances agree.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use diagnosis::change::ChangeRecord;
use diagnosis::ports::{
    AlertClaim, FailureCount, Incident, ObservedSubject, PortError, Sighting, StateStore, Success,
    MAX_OBSERVED_SUBJECTS, MAX_RECENT_CHANGES,
};
use diagnosis::spike::{MinuteCount, SpikeState};

/// The DynamoDB operations this store calls (the monitor's IAM policy grants them).
pub const SDK_OPERATIONS: &[&str] = &["GetItem", "PutItem", "Query", "UpdateItem"];
/// The partition-key prefixes this store writes; the monitor's role may touch no other.
pub const KEY_PREFIXES: &[&str] = &[
    "change#",
    "counter#",
    "event#",
    "incident#",
    "spike#",
    "success#",
    "token#",
];
/// The state table's TTL attribute (epoch seconds), which every item of both functions
/// carries: the template's `TimeToLiveSpecification` names it.
pub const TTL_ATTRIBUTE: &str = "expires_at";

pub struct DynamoStateStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
    /// Incidents whose set of event ids is full: their retries go straight to the write
    /// that does not add to it (one round trip, not three).
    full: Mutex<HashSet<String>>,
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

/// Long (attacker-sized) key parts are replaced by their SHA-256, so no collision can be
/// searched for.
pub fn key_part(part: &str) -> String {
    if part.len() <= MAX_KEY_PART {
        part.to_owned()
    } else {
        format!("h{}", sha256_hex(part))
    }
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The partition of a role's record of successful subjects: the role by its lower case
/// (IAM role names are case-insensitive).
pub fn success_partition(account: &str, role: &str) -> String {
    format!("success#{}#{}", key_part(account), key_part(&role.to_lowercase()))
}

/// The sort key of one subject in that record: its SHA-256, so any subject fits.
pub fn success_sort_key(subject: &str) -> String {
    sha256_hex(subject)
}

/// The partition of an account's IAM changes: one Query reads those of a window.
pub fn change_partition(account: &str) -> String {
    format!("change#{}", key_part(account))
}

/// The sort key of one change: its time (12 digits, so keys sort as times), then its
/// event id, so a redelivery finds the same item.
pub fn change_sort_key(at: i64, event_id: &str) -> String {
    format!("{}#{}", minute_key(at.max(0)), key_part(event_id))
}

/// Sort keys of minute counters sort as numbers.
fn minute_key(minute: i64) -> String {
    format!("{minute:012}")
}

pub fn store_error<E>(operation: &str, error: SdkError<E>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    PortError::new(
        "dynamodb",
        format!("{operation}: {}", crate::describe(&error)),
        true,
    )
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

fn set_contains(item: &HashMap<String, AttributeValue>, name: &str, value: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_ss().ok())
        .is_some_and(|set| set.iter().any(|v| v == value))
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

/// By the modeled error, not its code: the error's metadata is what a deserializer fills
/// in, and an error built otherwise (a mock, a wrapper) has none.
fn is_condition_failure<R>(error: &SdkError<UpdateItemError, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

/// The most event ids an incident remembers for deduplication (about 2.5 KB, returned
/// by every attempt): later retries of a long burst are still counted, no longer
/// deduplicated. Redeliveries come within minutes of the original, while the set has room.
pub const MAX_INCIDENT_EVENTS: usize = 64;
/// Full incidents an instance remembers.
const MAX_FULL_INCIDENTS: usize = 1024;
/// The most incident ids a minute-and-role counter remembers.
pub const MAX_COUNTER_INCIDENTS: usize = 512;
/// The most alert holders a global rate window remembers; past it every alert is held.
pub const MAX_WINDOW_ALERTS: usize = 1000;
/// Attempts at a conditional write that a concurrent writer keeps beating.
const MAX_RACES: usize = 4;

/// Counter sort keys: the minute, then the role, so one Query reads a range of minutes.
fn counter_key(minute: i64, role: &str) -> String {
    format!("{}#{}", minute_key(minute), key_part(role))
}

/// The partition of every failure counter.
const COUNTERS: &str = "counter#all";

impl DynamoStateStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoStateStore {
            client,
            table: table.into(),
            full: Mutex::new(HashSet::new()),
        }
    }

    fn is_full(&self, key: &str) -> bool {
        self.full.lock().unwrap_or_else(|e| e.into_inner()).contains(key)
    }

    fn set_full(&self, key: &str, is_full: bool) {
        let mut full = self.full.lock().unwrap_or_else(|e| e.into_inner());
        if !is_full {
            full.remove(key);
            return;
        }
        if full.len() >= MAX_FULL_INCIDENTS {
            full.clear();
        }
        full.insert(key.to_owned());
    }

    fn key(&self, pk: String, sk: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
    }

    fn incident_key(&self, key: &str) -> HashMap<String, AttributeValue> {
        self.key(format!("incident#{}", key_part(key)), ONE)
    }

    async fn get(
        &self,
        operation: &str,
        key: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error(operation, e))?;
        Ok(output.item)
    }

    /// Opens `opening` unless an incident is open at `now` or the event is recorded.
    async fn open(
        &self,
        key: &str,
        event_id: &str,
        opening: &Incident,
        now: i64,
        lease_until: i64,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let mut item = self.incident_key(key);
        item.extend([
            ("id".to_owned(), s(&opening.id)),
            ("opened_by".to_owned(), s(&opening.opened_by)),
            ("opened_at".to_owned(), n(opening.opened_at)),
            ("until".to_owned(), n(opening.until)),
            ("attempts".to_owned(), n(opening.attempts)),
            ("alerted".to_owned(), AttributeValue::Bool(false)),
            ("claim_until".to_owned(), n(lease_until)),
            (
                "event_ids".to_owned(),
                AttributeValue::Ss(vec![event_id.to_owned()]),
            ),
            (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]);
        put_if(
            &self.client,
            &self.table,
            "PutItem incident",
            item,
            "attribute_not_exists(pk) OR (#until < :now AND NOT contains(event_ids, :event))",
            &[("#until", "until")],
            &[(":now", n(now)), (":event", s(event_id))],
        )
        .await
    }

    /// One more attempt of the incident open at `now`, remembering `event_id` while the
    /// set has room (`Remember::Add`), or only checking it against the set
    /// (`Remember::Check`); `None` when the condition failed.
    async fn attempt(
        &self,
        key: &str,
        event: &str,
        remember: Remember,
        now: i64,
    ) -> Result<Option<Incident>, PortError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.incident_key(key)))
            .expression_attribute_names("#until", "until")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":event", s(event))
            .return_values(ReturnValue::AllNew);
        request = match remember {
            Remember::Add => request
                .update_expression("ADD attempts :one, event_ids :events")
                .condition_expression(
                    "attribute_exists(pk) AND #until >= :now AND NOT contains(event_ids, :event) AND size(event_ids) < :cap",
                )
                .expression_attribute_values(":events", AttributeValue::Ss(vec![event.to_owned()]))
                .expression_attribute_values(":cap", n(MAX_INCIDENT_EVENTS)),
            Remember::Check => request
                .update_expression("ADD attempts :one")
                .condition_expression("attribute_exists(pk) AND #until >= :now AND NOT contains(event_ids, :event)"),
        };
        match request.send().await {
            Ok(output) => {
                let item = output.attributes.as_ref();
                // A reopened incident starts a new set.
                self.set_full(
                    key,
                    item.is_some_and(|item| remembered(item) >= MAX_INCIDENT_EVENTS),
                );
                Ok(item.map(incident_from))
            }
            Err(error) if is_condition_failure(&error) => Ok(None),
            Err(error) => Err(store_error("UpdateItem incident", error)),
        }
    }
}

#[derive(Clone, Copy)]
enum Remember {
    Add,
    Check,
}

fn remembered(item: &HashMap<String, AttributeValue>) -> usize {
    item.get("event_ids")
        .and_then(|v| v.as_ss().ok())
        .map_or(0, Vec::len)
}

impl StateStore for DynamoStateStore {
    async fn first_sighting(&self, event_id: &str, expires_at: i64) -> Result<bool, PortError> {
        let mut item = self.key(format!("event#{}", key_part(event_id)), ONE);
        item.insert(TTL_ATTRIBUTE.to_owned(), n(expires_at));
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

    async fn sight_incident(
        &self,
        key: &str,
        event_id: &str,
        opening: &Incident,
        now: i64,
        lease_until: i64,
        expires_at: i64,
        expect_open: bool,
    ) -> Result<Sighting, PortError> {
        let mut try_open = !expect_open;
        for _ in 0..MAX_RACES {
            if try_open {
                if self
                    .open(key, event_id, opening, now, lease_until, expires_at)
                    .await?
                {
                    return Ok(Sighting::Opened(opening.clone()));
                }
            } else {
                let remember = match self.is_full(key) {
                    true => Remember::Check,
                    false => Remember::Add,
                };
                if let Some(incident) = self.attempt(key, event_id, remember, now).await? {
                    return Ok(Sighting::Attempt(incident));
                }
            }
            // The condition failed: read what is there to know why.
            let Some(item) = self.get("GetItem incident", self.incident_key(key)).await? else {
                try_open = true;
                continue;
            };
            let incident = incident_from(&item);
            if set_contains(&item, "event_ids", event_id) {
                return Ok(Sighting::Duplicate(incident));
            }
            if incident.until < now {
                try_open = true;
                continue;
            }
            if remembered(&item) >= MAX_INCIDENT_EVENTS {
                self.set_full(key, true);
                if let Some(incident) = self.attempt(key, event_id, Remember::Check, now).await? {
                    return Ok(Sighting::Attempt(incident));
                }
            }
            try_open = false;
        }
        Err(PortError::new(
            "dynamodb",
            format!("incident {key}: lost {MAX_RACES} races in a row"),
            true,
        ))
    }

    async fn claim_alert(
        &self,
        key: &str,
        event_id: &str,
        wall: i64,
        lease_until: i64,
    ) -> Result<AlertClaim, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.incident_key(key)))
            .update_expression("SET claim_until = :lease")
            .condition_expression("opened_by = :event AND alerted = :no AND (attribute_not_exists(claim_until) OR claim_until <= :wall)")
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":event", s(event_id))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":wall", n(wall))
            .send()
            .await;
        match result {
            Ok(_) => Ok(AlertClaim::Claimed),
            Err(error) if is_condition_failure(&error) => {
                let item = self.get("GetItem incident", self.incident_key(key)).await?;
                Ok(match item {
                    Some(item) if get_s(&item, "opened_by") == event_id && !get_bool(&item, "alerted") => {
                        AlertClaim::Busy
                    }
                    _ => AlertClaim::Done,
                })
            }
            Err(error) => Err(store_error("UpdateItem claim", error)),
        }
    }

    async fn release_alert(&self, key: &str) -> Result<(), PortError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.incident_key(key)))
            .update_expression("REMOVE claim_until")
            .condition_expression("attribute_exists(pk) AND alerted = :no")
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(store_error("UpdateItem release", error)),
        }
    }

    async fn finish_alert(&self, key: &str) -> Result<(), PortError> {
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.incident_key(key)))
            .update_expression("SET alerted = :yes REMOVE claim_until")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The incident expired meanwhile: nothing to mark, and no item without a TTL.
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(store_error("UpdateItem alerted", error)),
        }
    }

    async fn count_failure(&self, count: &FailureCount<'_>) -> Result<(), PortError> {
        let key = self.key(COUNTERS.to_owned(), &counter_key(count.minute, count.role));
        let cause = format!("cause:{}", key_part(count.cause));
        let update = |remember: bool| {
            let request = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .expression_attribute_names("#cause", cause.clone())
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":expires", n(count.expires_at))
                .expression_attribute_values(":incident", s(count.incident_id));
            if remember {
                request
                    .update_expression("SET expires_at = :expires ADD failures :one, #cause :one, incidents :incidents")
                    .condition_expression("attribute_not_exists(incidents) OR (NOT contains(incidents, :incident) AND size(incidents) < :cap)")
                    .expression_attribute_values(":incidents", AttributeValue::Ss(vec![count.incident_id.to_owned()]))
                    .expression_attribute_values(":cap", n(MAX_COUNTER_INCIDENTS))
            } else {
                request
                    .update_expression("SET expires_at = :expires ADD failures :one, #cause :one")
                    .condition_expression("NOT contains(incidents, :incident)")
            }
        };
        match update(true).send().await {
            Ok(_) => return Ok(()),
            Err(error) if is_condition_failure(&error) => {}
            Err(error) => return Err(store_error("UpdateItem counter", error)),
        }
        // Counted already, or the set is full: count without remembering.
        match update(false).send().await {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(store_error("UpdateItem counter", error)),
        }
    }

    async fn failure_counts(&self, from: i64, to: i64) -> Result<Vec<MinuteCount>, PortError> {
        let mut minutes: BTreeMap<i64, MinuteCount> = BTreeMap::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                // The count this delivery just wrote must be seen, or a burst that ends on
                // the threshold is never judged.
                .consistent_read(true)
                .expression_attribute_values(":pk", s(COUNTERS))
                .expression_attribute_values(":from", s(minute_key(from + 1)))
                // '~' sorts after every role name: the whole of minute `to`.
                .expression_attribute_values(":to", s(format!("{}~", minute_key(to))))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Query counters", e))?;
            for item in output.items.unwrap_or_default() {
                let sk = get_s(&item, "sk");
                let (minute, role) = sk.split_once('#').unwrap_or((sk.as_str(), "-"));
                let Ok(minute) = minute.parse::<i64>() else {
                    continue;
                };
                let failures = get_n(&item, "failures").max(0) as u64;
                let entry = minutes.entry(minute).or_insert_with(|| MinuteCount {
                    minute,
                    ..MinuteCount::default()
                });
                entry.failures += failures;
                *entry.labels.entry(format!("role:{role}")).or_insert(0) += failures;
                for (name, value) in &item {
                    if let (Some(label), Ok(n)) = (name.strip_prefix("cause:"), value.as_n()) {
                        *entry.labels.entry(format!("cause:{label}")).or_insert(0) +=
                            n.parse::<u64>().unwrap_or(0);
                    }
                }
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(minutes.into_values().collect())
    }

    async fn spike_state(&self, scope: &str) -> Result<Option<SpikeState>, PortError> {
        let item = self
            .get(
                "GetItem spike",
                self.key(format!("spike#{}", key_part(scope)), ONE),
            )
            .await?;
        Ok(item.map(|item| SpikeState {
            version: get_n(&item, "version").max(0) as u64,
            spiking: get_bool(&item, "spiking"),
            since: get_n(&item, "since"),
            last_alert: get_n(&item, "last_alert"),
            peak: get_n(&item, "peak").max(0) as u64,
            pending: item
                .get("pending")
                .and_then(|v| v.as_s().ok())
                .and_then(|text| serde_json::from_str(text).ok()),
        }))
    }

    async fn save_spike_state(
        &self,
        scope: &str,
        state: &SpikeState,
        expires_at: i64,
    ) -> Result<bool, PortError> {
        let mut item = self.key(format!("spike#{}", key_part(scope)), ONE);
        item.extend([
            ("version".to_owned(), n(state.version)),
            ("spiking".to_owned(), AttributeValue::Bool(state.spiking)),
            ("since".to_owned(), n(state.since)),
            ("last_alert".to_owned(), n(state.last_alert)),
            ("peak".to_owned(), n(state.peak)),
            (TTL_ATTRIBUTE.to_owned(), n(expires_at)),
        ]);
        if let Some(pending) = &state.pending {
            let text = serde_json::to_string(pending)
                .map_err(|e| PortError::new("dynamodb", format!("pending spike alert: {e}"), false))?;
            item.insert("pending".to_owned(), s(text));
        }
        let (client, table) = (&self.client, &self.table);
        if state.version <= 1 {
            put_if(
                client,
                table,
                "PutItem spike",
                item,
                "attribute_not_exists(pk)",
                &[],
                &[],
            )
            .await
        } else {
            put_if(
                client,
                table,
                "PutItem spike",
                item,
                "#version = :previous",
                &[("#version", "version")],
                &[(":previous", n(state.version - 1))],
            )
            .await
        }
    }

    async fn take_token(&self, key: &str, holder: &str, now: i64, period: i64) -> Result<bool, PortError> {
        let mut item = self.key(format!("token#{}", key_part(key)), ONE);
        item.insert("until".to_owned(), n(now + period));
        item.insert("holder".to_owned(), s(holder));
        item.insert(TTL_ATTRIBUTE.to_owned(), n(now + period + 86_400));
        put_if(
            &self.client,
            &self.table,
            "PutItem token",
            item,
            "attribute_not_exists(pk) OR #until <= :now OR holder = :holder",
            &[("#until", "until")],
            &[(":now", n(now)), (":holder", s(holder))],
        )
        .await
    }

    async fn count_alert(&self, window: i64, holder: &str, expires_at: i64) -> Result<u64, PortError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key("token#alerts".to_owned(), &minute_key(window))))
            .update_expression("SET expires_at = :expires ADD holders :holder")
            .condition_expression(
                "attribute_not_exists(holders) OR contains(holders, :h) OR size(holders) < :cap",
            )
            .expression_attribute_values(":expires", n(expires_at))
            .expression_attribute_values(":holder", AttributeValue::Ss(vec![holder.to_owned()]))
            .expression_attribute_values(":h", s(holder))
            .expression_attribute_values(":cap", n(MAX_WINDOW_ALERTS))
            // Not UPDATED_NEW: moto leaves out attributes the update did not change (a
            // holder added again), AWS does not; ALL_NEW carries the set in both.
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output
                .attributes
                .as_ref()
                .and_then(|a| a.get("holders"))
                .and_then(|v| v.as_ss().ok())
                .map_or(1, |set| set.len() as u64)),
            Err(error) if is_condition_failure(&error) => Ok(MAX_WINDOW_ALERTS as u64 + 1),
            Err(error) => Err(store_error("UpdateItem alert window", error)),
        }
    }

    async fn alert_count(&self, window: i64) -> Result<u64, PortError> {
        let item = self
            .get(
                "GetItem alert window",
                self.key("token#alerts".to_owned(), &minute_key(window)),
            )
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| i.get("holders"))
            .and_then(|v| v.as_ss().ok())
            .map_or(0, |set| set.len() as u64))
    }

    async fn record_success(&self, success: &Success<'_>) -> Result<(), PortError> {
        if !success.recordable() {
            return Ok(());
        }
        let mut set = vec![
            "subject = :subject",
            "first_seen = if_not_exists(first_seen, :at)",
            "last_seen = :at",
            "expires_at = :expires",
        ];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(self.key(
                success_partition(success.account, success.role),
                &success_sort_key(success.subject),
            )))
            .expression_attribute_values(":subject", s(success.subject))
            .expression_attribute_values(":at", n(success.at))
            .expression_attribute_values(":expires", n(success.expires_at));
        let mut remove = Vec::new();
        // The latest call's provider and audience.
        for (name, placeholder, assign, value) in [
            ("provider", ":provider", "provider = :provider", success.provider),
            ("audience", ":audience", "audience = :audience", success.audience),
        ] {
            match value {
                Some(value) => {
                    request = request.expression_attribute_values(placeholder, s(value));
                    set.push(assign);
                }
                None => remove.push(name),
            }
        }
        let mut update = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            update.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        // An older call than the one recorded changes nothing: last_seen only moves on.
        match request
            .update_expression(update)
            .condition_expression("attribute_not_exists(last_seen) OR last_seen <= :at")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) if is_condition_failure(&error) => Ok(()),
            Err(error) => Err(store_error("UpdateItem success", error)),
        }
    }

    async fn successful_subjects(
        &self,
        account: &str,
        role: &str,
    ) -> Result<Vec<ObservedSubject>, PortError> {
        let mut subjects = Vec::new();
        let mut start = None;
        while subjects.len() < MAX_OBSERVED_SUBJECTS {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(success_partition(account, role)))
                .limit((MAX_OBSERVED_SUBJECTS - subjects.len()).min(i32::MAX as usize) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Query successes", e))?;
            for item in output.items.unwrap_or_default() {
                let subject = get_s(&item, "subject");
                if subject.is_empty() || subjects.len() >= MAX_OBSERVED_SUBJECTS {
                    continue;
                }
                let text = |name: &str| Some(get_s(&item, name)).filter(|v| !v.is_empty());
                subjects.push(ObservedSubject {
                    provider: text("provider"),
                    audience: text("audience"),
                    first_seen: get_n(&item, "first_seen"),
                    last_seen: get_n(&item, "last_seen"),
                    subject,
                });
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(subjects)
    }

    async fn record_change(&self, record: &ChangeRecord, expires_at: i64) -> Result<bool, PortError> {
        let change = &record.change;
        let json = serde_json::to_string(record)
            .map_err(|e| PortError::new("dynamodb", format!("change record: {e}"), false))?;
        let mut item = self.key(
            change_partition(&change.account),
            &change_sort_key(change.at, &change.event_id),
        );
        item.insert("change".to_owned(), s(json));
        item.insert(TTL_ATTRIBUTE.to_owned(), n(expires_at));
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(error) => Err(store_error("PutItem change", error)),
        }
    }

    async fn recent_changes(&self, account: &str, since: i64) -> Result<Vec<ChangeRecord>, PortError> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk >= :since")
            .expression_attribute_values(":pk", s(change_partition(account)))
            .expression_attribute_values(":since", s(minute_key(since.max(0))))
            .scan_index_forward(false)
            .limit(MAX_RECENT_CHANGES as i32)
            .send()
            .await
            .map_err(|e| store_error("Query changes", e))?;
        let mut changes: Vec<ChangeRecord> = output
            .items
            .unwrap_or_default()
            .iter()
            // A record this release cannot read names nothing.
            .filter_map(|item| serde_json::from_str(&get_s(item, "change")).ok())
            .collect();
        changes.reverse();
        Ok(changes)
    }
}
