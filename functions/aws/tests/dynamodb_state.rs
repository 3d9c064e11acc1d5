//! The monitor's DynamoDB state store against mocked SDK clients (aws-smithy-mocks).

#[macro_use]
mod common;

use std::collections::BTreeMap;

use aws_sdk_dynamodb::operation::get_item::GetItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::query::{QueryError, QueryOutput};
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use aws_smithy_mocks::{mock, MockResponse, Rule, RuleMode};
use diagnosis::alert::SpikeSummary;
use diagnosis::ports::{
    AlertClaim, FailureCount, Incident, ObservedSubject, PortError, Sighting, StateStore, Success,
    MAX_OBSERVED_SUBJECT, MAX_OBSERVED_SUBJECTS,
};
use diagnosis::spike::{MinuteCount, PendingSpikeAlert, SpikeState};
use oidc_watch_aws::dynamodb::{
    key_part, success_partition, success_sort_key, DynamoStateStore, MAX_COUNTER_INCIDENTS,
    MAX_INCIDENT_EVENTS, MAX_WINDOW_ALERTS,
};

use common::*;

// ---------------------------------------------------------------------------------------
// DynamoDB
// ---------------------------------------------------------------------------------------
//
// Every rule records the requests it answers (`recording`), and each test compares them,
// whole, with the `Request` it expects: table, key (or a put's whole item), update and
// condition expressions, names, values, ReturnValues, ConsistentRead.

/// An incident key as the handler makes them (a SHA-256): short enough to stay unhashed.
const KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const INCIDENT_PK: &str = "incident#0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
const NOW: i64 = 1_700_000_000;

fn incident_pk() -> [(&'static str, AttributeValue); 2] {
    [("pk", s(INCIDENT_PK)), ("sk", s("-"))]
}

/// A store whose client fails at once: no SDK retries, so an error is the adapter's answer.
fn store(rules: &[&Rule]) -> DynamoStateStore {
    DynamoStateStore::new(
        declared_client!(
            aws_sdk_dynamodb,
            oidc_watch_aws::dynamodb::SDK_OPERATIONS,
            RuleMode::MatchAny,
            rules.iter().copied(),
            |c| c.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        ),
        TABLE,
    )
}

/// `write` through a store whose PutItem succeeds answers true, having sent `expected` alone.
async fn put_sends(
    write: impl AsyncFnOnce(DynamoStateStore) -> Result<bool, PortError>,
    expected: Request,
) -> TestResult {
    let (put, puts) = put_ok();
    assert!(write(store(&[&put])).await?);
    assert_requests(&puts, &[expected]);
    Ok(())
}

/// `write` through a store whose PutItem condition fails answers false (an answer, not an
/// error); the PutItem rule, for its calls.
async fn put_refused(
    write: impl AsyncFnOnce(DynamoStateStore) -> Result<bool, PortError>,
) -> Result<Rule, Box<dyn std::error::Error>> {
    let (failing, _) = put_fails();
    assert!(!write(store(&[&failing])).await?);
    Ok(failing)
}

fn stored_incident(opened_by: &str, until: i64, attempts: i64, alerted: bool, events: &[&str]) -> Item {
    let mut stored = item(&incident_pk());
    stored.extend(item(&[
        ("id", s("0f1e2d3c4b5a6978-1700000000")),
        ("opened_by", s(opened_by)),
        ("opened_at", n(NOW)),
        ("until", n(until)),
        ("attempts", n(attempts)),
        ("alerted", AttributeValue::Bool(alerted)),
        ("claim_until", n(NOW + 30)),
        ("event_ids", ss(events)),
        ("expires_at", n(NOW + 90_000)),
    ]));
    stored
}

fn incident(opened_by: &str, until: i64, attempts: u64, alerted: bool) -> Incident {
    Incident {
        id: "0f1e2d3c4b5a6978-1700000000".into(),
        opened_by: opened_by.into(),
        opened_at: NOW,
        until,
        attempts,
        alerted,
    }
}

/// The open incident `evt-1` opens.
fn opening() -> Incident {
    incident("evt-1", NOW + 3600, 1, false)
}

/// `sight_incident(KEY, event, opening(), NOW, lease NOW+30, expires NOW+90000, expect_open)`.
async fn sight(store: &DynamoStateStore, event: &str, expect_open: bool) -> Result<Sighting, PortError> {
    store
        .sight_incident(KEY, event, &opening(), NOW, NOW + 30, NOW + 90_000, expect_open)
        .await
}

/// The conditional put that opens an incident for `event`.
fn open_request(event: &str) -> Request {
    // The opener holds the alert lease (claim_until) and is the first remembered event.
    let stored = stored_incident("evt-1", NOW + 3600, 1, false, &[event]);
    request(&[])
        .condition("attribute_not_exists(pk) OR (#until < :now AND NOT contains(event_ids, :event))")
        .names(&[("#until", "until")])
        .values(&[(":now", n(NOW)), (":event", s(event))])
        .with_item(stored)
}

/// The attempt update remembering `event` in the capped set.
fn attempt_request(event: &str) -> Request {
    request(&incident_pk())
        .update("ADD attempts :one, event_ids :events")
        .condition(
            "attribute_exists(pk) AND #until >= :now AND NOT contains(event_ids, :event) AND size(event_ids) < :cap",
        )
        .names(&[("#until", "until")])
        .values(&[
            (":one", n(1)),
            (":now", n(NOW)),
            (":events", ss(&[event])),
            (":event", s(event)),
            (":cap", n(MAX_INCIDENT_EVENTS as i64)),
        ])
        .returns(ReturnValue::AllNew)
}

fn incident_read() -> Request {
    request(&incident_pk()).consistent()
}

#[tokio::test]
async fn dynamo_first_sighting_is_a_conditional_put() -> TestResult {
    put_sends(
        async |store| store.first_sighting("evt-1", 1_700_090_000).await,
        request(&[
            ("pk", s("event#evt-1")),
            ("sk", s("-")),
            ("expires_at", n(1_700_090_000)),
        ])
        .condition("attribute_not_exists(pk)"),
    )
    .await?;

    // Redelivery of the same event: the condition fails, which is an answer, not an error.
    let failing = put_refused(async |store| store.first_sighting("evt-1", 1_700_090_000).await).await?;
    assert_eq!(failing.num_calls(), 1);

    // Keys past 512 bytes are replaced by their SHA-256 (partition keys are capped at 2048 bytes).
    let (rule, seen) = put_ok();
    store(&[&rule]).first_sighting(&"x".repeat(3000), 1).await?;
    let pk = seen.only().item().and_then(|i| i.get("pk").cloned());
    let pk = pk.as_ref().and_then(|v| v.as_s().ok()).expect("pk").clone();
    assert!(
        pk.starts_with("event#h") && pk.len() == "event#h".len() + 64,
        "{pk}"
    );
    assert_eq!(key_part(&"x".repeat(3000)), pk["event#".len()..]);
    assert_eq!(key_part("short"), "short");
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_opens_with_one_conditional_put() -> TestResult {
    let (put, puts) = put_ok();
    let (update, _) = update_fails();
    let (read, _) = get(None);
    let sighting = sight(&store(&[&put, &update, &read]), "evt-1", false).await?;
    assert_eq!(sighting, Sighting::Opened(opening()));
    assert_requests(&puts, &[open_request("evt-1")]);
    assert_eq!(
        (update.num_calls(), read.num_calls()),
        (0, 0),
        "one write, nothing else"
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_adds_an_attempt_to_the_open_incident() -> TestResult {
    let after = stored_incident("evt-1", NOW + 3600, 2, false, &["evt-1", "evt-2"]);
    let (update, updates) = update_ok(Some(after));
    let (put, _) = put_ok();
    let sighting = sight(&store(&[&put, &update]), "evt-2", true).await?;
    assert_eq!(
        sighting,
        Sighting::Attempt(incident("evt-1", NOW + 3600, 2, false))
    );
    assert_requests(&updates, &[attempt_request("evt-2")]);
    assert_eq!(put.num_calls(), 0, "expect_open tries the attempt first");
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_finds_a_redelivery_in_the_event_set() -> TestResult {
    // The attempt's condition fails; the read shows the event remembered.
    let (update, updates) = update_fails();
    let (read, reads) = get(Some(stored_incident(
        "evt-1",
        NOW + 3600,
        3,
        true,
        &["evt-1", "evt-2"],
    )));
    let (put, _) = put_ok();
    let sighting = sight(&store(&[&update, &read, &put]), "evt-2", true).await?;
    assert_eq!(
        sighting,
        Sighting::Duplicate(incident("evt-1", NOW + 3600, 3, true))
    );
    assert_requests(&updates, &[attempt_request("evt-2")]);
    assert_requests(&reads, &[incident_read()]);
    assert_eq!(put.num_calls(), 0);

    // The opener's own redelivery, tried as an opening: the put fails, the read says duplicate.
    let (put, puts) = put_fails();
    let (read, _) = get(Some(stored_incident("evt-1", NOW + 3600, 1, false, &["evt-1"])));
    let (update, _) = update_ok(None);
    let sighting = sight(&store(&[&put, &read, &update]), "evt-1", false).await?;
    assert_eq!(
        sighting,
        Sighting::Duplicate(incident("evt-1", NOW + 3600, 1, false))
    );
    assert_requests(&puts, &[open_request("evt-1")]);
    assert_eq!(update.num_calls(), 0);
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_falls_back_between_opening_and_attempt() -> TestResult {
    // Expected open, but nothing is stored (expired and deleted): it opens.
    let (update, updates) = update_fails();
    let (read, _) = get(None);
    let (put, puts) = put_ok();
    let sighting = sight(&store(&[&update, &read, &put]), "evt-1", true).await?;
    assert_eq!(sighting, Sighting::Opened(opening()));
    assert_requests(&updates, &[attempt_request("evt-1")]);
    assert_requests(&puts, &[open_request("evt-1")]);

    // Expected open, but the stored one ended (TTL deletes late): it opens over it.
    let (update, _) = update_fails();
    let (read, _) = get(Some(stored_incident("evt-0", NOW - 1, 9, true, &["evt-0"])));
    let (put, puts) = put_ok();
    let sighting = sight(&store(&[&update, &read, &put]), "evt-1", true).await?;
    assert_eq!(sighting, Sighting::Opened(opening()));
    assert_requests(&puts, &[open_request("evt-1")]);

    // Tried as an opening, but another delivery opened it first: an attempt.
    let (put, _) = put_fails();
    let (read, _) = get(Some(stored_incident("evt-0", NOW + 3600, 1, false, &["evt-0"])));
    let after = stored_incident("evt-0", NOW + 3600, 2, false, &["evt-0", "evt-1"]);
    let (update, updates) = update_ok(Some(after));
    let sighting = sight(&store(&[&put, &read, &update]), "evt-1", false).await?;
    assert_eq!(
        sighting,
        Sighting::Attempt(incident("evt-0", NOW + 3600, 2, false))
    );
    assert_requests(&updates, &[attempt_request("evt-1")]);
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_counts_without_remembering_once_the_event_set_is_full() -> TestResult {
    let full: Vec<String> = (0..MAX_INCIDENT_EVENTS).map(|i| format!("evt-{i}")).collect();
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    let (read, reads) = get(Some(stored_incident("evt-0", NOW + 3600, 300, true, &full)));
    let after = stored_incident("evt-0", NOW + 3600, 301, true, &full);
    // The remembering attempt fails on the cap; the counting one succeeds.
    let (update, updates) = recording(mock!(aws_sdk_dynamodb::Client::update_item), move |i, _| {
        if i == 0 {
            MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
                condition_failed(),
            ))
        } else {
            MockResponse::Output(
                UpdateItemOutput::builder()
                    .set_attributes(Some(after.clone()))
                    .build(),
            )
        }
    });
    let counting = |event: &str| {
        request(&incident_pk())
            .update("ADD attempts :one")
            .condition("attribute_exists(pk) AND #until >= :now AND NOT contains(event_ids, :event)")
            .names(&[("#until", "until")])
            .values(&[(":one", n(1)), (":now", n(NOW)), (":event", s(event))])
            .returns(ReturnValue::AllNew)
    };
    let store = store(&[&update, &read]);
    let sighting = sight(&store, "evt-9999", true).await?;
    assert_eq!(
        sighting,
        Sighting::Attempt(incident("evt-0", NOW + 3600, 301, true))
    );
    assert_requests(&updates, &[attempt_request("evt-9999"), counting("evt-9999")]);
    assert_eq!(reads.all().len(), 1);

    // The store now knows the set is full: the next retry is one round trip.
    sight(&store, "evt-10000", true).await?;
    assert_requests(
        &updates,
        &[
            attempt_request("evt-9999"),
            counting("evt-9999"),
            counting("evt-10000"),
        ],
    );
    assert_eq!(reads.all().len(), 1, "no read for a retry of a full incident");
    Ok(())
}

#[tokio::test]
async fn dynamo_sight_incident_gives_up_after_losing_every_race_with_a_retryable_error() {
    // Every write loses, and every read shows an open incident without this event.
    let (put, _) = put_fails();
    let (update, _) = update_fails();
    let (read, _) = get(Some(stored_incident("evt-0", NOW + 3600, 1, false, &["evt-0"])));
    let error = sight(&store(&[&put, &update, &read]), "evt-1", false)
        .await
        .expect_err("no write ever wins");
    assert!(error.retryable, "{error}");
    assert_eq!(error.service, "dynamodb");
    assert!(error.message.contains("races"), "{error}");
    assert_eq!(
        put.num_calls() + update.num_calls(),
        read.num_calls(),
        "each lost write is read once"
    );
    assert!(read.num_calls() <= 8, "bounded: {} reads", read.num_calls());
}

#[tokio::test]
async fn dynamo_claim_alert_takes_an_ended_lease_of_its_own_incident() -> TestResult {
    let (update, updates) = update_ok(None);
    let claim = store(&[&update])
        .claim_alert(KEY, "evt-1", NOW + 40, NOW + 70)
        .await?;
    assert_eq!(claim, AlertClaim::Claimed);
    assert_requests(
        &updates,
        &[request(&incident_pk())
            .update("SET claim_until = :lease")
            .condition(
                "opened_by = :event AND alerted = :no AND (attribute_not_exists(claim_until) OR claim_until <= :wall)",
            )
            .values(&[
                (":lease", n(NOW + 70)),
                (":event", s("evt-1")),
                (":no", AttributeValue::Bool(false)),
                (":wall", n(NOW + 40)),
            ])],
    );

    // The condition fails: the read tells a held lease (Busy) from a settled alert (Done).
    let cases = [
        (
            Some(stored_incident("evt-1", NOW + 3600, 1, false, &["evt-1"])),
            AlertClaim::Busy,
        ),
        (
            Some(stored_incident("evt-1", NOW + 3600, 1, true, &["evt-1"])),
            AlertClaim::Done,
        ),
        (
            Some(stored_incident(
                "evt-0",
                NOW + 3600,
                2,
                false,
                &["evt-0", "evt-1"],
            )),
            AlertClaim::Done,
        ),
        (None, AlertClaim::Done),
    ];
    for (stored, expected) in cases {
        let (update, _) = update_fails();
        let (read, reads) = get(stored.clone());
        let claim = store(&[&update, &read])
            .claim_alert(KEY, "evt-1", NOW + 10, NOW + 40)
            .await?;
        assert_eq!(claim, expected, "{stored:?}");
        assert_requests(&reads, &[incident_read()]);
    }
    Ok(())
}

#[tokio::test]
async fn dynamo_release_and_finish_alert_are_conditional_updates() -> TestResult {
    let (update, updates) = update_ok(None);
    store(&[&update]).release_alert(KEY).await?;
    store(&[&update]).finish_alert(KEY).await?;
    assert_requests(
        &updates,
        &[
            request(&incident_pk())
                .update("REMOVE claim_until")
                .condition("attribute_exists(pk) AND alerted = :no")
                .values(&[(":no", AttributeValue::Bool(false))]),
            request(&incident_pk())
                .update("SET alerted = :yes REMOVE claim_until")
                .condition("attribute_exists(pk)")
                .values(&[(":yes", AttributeValue::Bool(true))]),
        ],
    );

    // Already alerted, or expired meanwhile: nothing to do, and no item without a TTL.
    let (update, _) = update_fails();
    store(&[&update]).release_alert(KEY).await?;
    store(&[&update]).finish_alert(KEY).await?;
    assert_eq!(update.num_calls(), 2);
    Ok(())
}

/// A counter update of `incident_id` (a SubjectMismatch of gha-deploy in minute 28333333):
/// `update` if `condition`, with the values every counter update sends and `more`.
fn counter_update(
    incident_id: &str,
    update: &str,
    condition: &str,
    more: &[(&str, AttributeValue)],
) -> Request {
    let mut values = vec![
        (":one", n(1)),
        (":expires", n(1_700_090_000)),
        (":incident", s(incident_id)),
    ];
    values.extend_from_slice(more);
    request(&[("pk", s("counter#all")), ("sk", s("000028333333#gha-deploy"))])
        .update(update)
        .condition(condition)
        .names(&[("#cause", "cause:SubjectMismatch")])
        .values(&values)
}

/// The counter update that remembers the incident in the capped set.
fn count_request(incident_id: &str) -> Request {
    counter_update(
        incident_id,
        "SET expires_at = :expires ADD failures :one, #cause :one, incidents :incidents",
        "attribute_not_exists(incidents) OR (NOT contains(incidents, :incident) AND size(incidents) < :cap)",
        &[
            (":incidents", ss(&[incident_id])),
            (":cap", n(MAX_COUNTER_INCIDENTS as i64)),
        ],
    )
}

/// The counter update that counts without remembering (the set is full).
fn count_unremembered_request(incident_id: &str) -> Request {
    counter_update(
        incident_id,
        "SET expires_at = :expires ADD failures :one, #cause :one",
        "NOT contains(incidents, :incident)",
        &[],
    )
}

#[tokio::test]
async fn dynamo_count_failure_counts_each_incident_once_per_minute_and_role() -> TestResult {
    let count = FailureCount {
        minute: 28_333_333,
        role: "gha-deploy",
        cause: "SubjectMismatch",
        incident_id: "inc-1",
        expires_at: 1_700_090_000,
    };
    let (update, updates) = update_ok(None);
    store(&[&update]).count_failure(&count).await?;
    assert_requests(&updates, &[count_request("inc-1")]);

    // Counted already (or the set is full): the second update counts only an incident the
    // set does not hold; a failed second condition is an answer too.
    let (update, updates) = update_fails();
    store(&[&update]).count_failure(&count).await?;
    assert_requests(
        &updates,
        &[count_request("inc-1"), count_unremembered_request("inc-1")],
    );

    let (update, updates) = recording(mock!(aws_sdk_dynamodb::Client::update_item), |i, _| {
        if i == 0 {
            MockResponse::Error(UpdateItemError::ConditionalCheckFailedException(
                condition_failed(),
            ))
        } else {
            MockResponse::Output(UpdateItemOutput::builder().build())
        }
    });
    store(&[&update]).count_failure(&count).await?;
    assert_eq!(updates.all().len(), 2);
    Ok(())
}

#[tokio::test]
async fn dynamo_failure_counts_reads_every_page_and_sums_roles_per_minute() -> TestResult {
    let counter = |sk: &str, failures: i64, causes: &[(&str, i64)]| {
        let mut counter = item(&[
            ("pk", s("counter#all")),
            ("sk", s(sk)),
            ("failures", n(failures)),
            ("incidents", ss(&["inc-a"])),
            ("expires_at", n(1_700_090_000)),
        ]);
        for (cause, count) in causes {
            counter.insert(format!("cause:{cause}"), n(*count));
        }
        counter
    };
    let last_key = item(&[("pk", s("counter#all")), ("sk", s("000028333331#deploy"))]);
    let page_two_start = last_key.clone();
    let (query, queries) = recording(mock!(aws_sdk_dynamodb::Client::query), move |i, _| {
        let page = if i == 0 {
            QueryOutput::builder()
                .items(counter("000028333331#deploy", 2, &[("SubjectMismatch", 2)]))
                .set_last_evaluated_key(Some(page_two_start.clone()))
        } else {
            // The same minute continues on the next page, under another role.
            QueryOutput::builder()
                .items(counter("000028333331#web", 1, &[("AudienceMismatch", 1)]))
                .items(counter("000028333333#deploy", 5, &[("SubjectMismatch", 5)]))
        };
        MockResponse::Output(page.build())
    });
    let counts = store(&[&query]).failure_counts(28_333_330, 28_333_335).await?;
    assert_eq!(
        counts,
        [
            MinuteCount {
                minute: 28_333_331,
                failures: 3,
                labels: BTreeMap::from([
                    ("cause:AudienceMismatch".to_owned(), 1),
                    ("cause:SubjectMismatch".to_owned(), 2),
                    ("role:deploy".to_owned(), 2),
                    ("role:web".to_owned(), 1),
                ]),
            },
            MinuteCount {
                minute: 28_333_333,
                failures: 5,
                labels: BTreeMap::from([
                    ("cause:SubjectMismatch".to_owned(), 5),
                    ("role:deploy".to_owned(), 5),
                ]),
            },
        ]
    );
    let sent = queries.all();
    assert_eq!(sent.len(), 2, "two pages, two queries");
    for (query, start) in sent.iter().zip([None, Some(last_key)]) {
        assert_eq!(query.table_name(), Some(TABLE));
        assert_eq!(
            query.key_condition_expression(),
            Some("pk = :pk AND sk BETWEEN :from AND :to")
        );
        // (from, to]: the first minute is excluded, every role of the last included.
        assert_eq!(
            query.expression_attribute_values().cloned(),
            Some(item(&[
                (":pk", s("counter#all")),
                (":from", s("000028333331")),
                (":to", s("000028333335~")),
            ]))
        );
        assert_eq!(query.consistent_read(), Some(true), "sees the count just written");
        assert_eq!(query.exclusive_start_key().cloned(), start);
    }
    Ok(())
}

fn spike(version: u64, pending: Option<PendingSpikeAlert>) -> SpikeState {
    SpikeState {
        version,
        spiking: true,
        since: NOW,
        last_alert: NOW + 60,
        peak: 42,
        pending,
    }
}

fn pending_spike() -> PendingSpikeAlert {
    PendingSpikeAlert {
        recovery: false,
        thread_since: NOW,
        summary: SpikeSummary {
            scope: "all".into(),
            window_seconds: 300,
            failures: 30,
            baseline: 0.5,
            top_roles: vec![("gha-deploy".into(), 28), ("web".into(), 2)],
            top_causes: vec![("SubjectMismatch".into(), 30)],
        },
        lease_until: NOW + 30,
    }
}

fn spike_item(state: &SpikeState) -> Result<Item, serde_json::Error> {
    let mut stored = item(&[
        ("pk", s("spike#all")),
        ("sk", s("-")),
        ("version", n(state.version as i64)),
        ("spiking", AttributeValue::Bool(state.spiking)),
        ("since", n(state.since)),
        ("last_alert", n(state.last_alert)),
        ("peak", n(state.peak as i64)),
        ("expires_at", n(NOW + 604_800)),
    ]);
    if let Some(pending) = &state.pending {
        stored.insert("pending".into(), s(&serde_json::to_string(pending)?));
    }
    Ok(stored)
}

#[tokio::test]
async fn dynamo_save_spike_state_is_versioned_and_expires() -> TestResult {
    // Version 1: there must be no state yet. The pending alert travels as JSON.
    let first = spike(1, Some(pending_spike()));
    put_sends(
        async |store| store.save_spike_state("all", &first, NOW + 604_800).await,
        request(&[])
            .with_item(spike_item(&first)?)
            .condition("attribute_not_exists(pk)"),
    )
    .await?;

    // Later versions: only over the version that was read. No pending alert, no attribute.
    let later = spike(7, None);
    put_sends(
        async |store| store.save_spike_state("all", &later, NOW + 604_800).await,
        request(&[])
            .with_item(spike_item(&later)?)
            .condition("#version = :previous")
            .names(&[("#version", "version")])
            .values(&[(":previous", n(6))]),
    )
    .await?;
    assert!(!spike_item(&later)?.contains_key("pending"));

    // Someone else saved first.
    put_refused(async |store| store.save_spike_state("all", &later, NOW + 604_800).await).await?;
    Ok(())
}

#[tokio::test]
async fn dynamo_spike_state_reads_the_pending_alert_back() -> TestResult {
    let saved = spike(3, Some(pending_spike()));
    let (read, reads) = get(Some(spike_item(&saved)?));
    assert_eq!(store(&[&read]).spike_state("all").await?, Some(saved));
    assert_requests(
        &reads,
        &[request(&[("pk", s("spike#all")), ("sk", s("-"))]).consistent()],
    );

    let (read, _) = get(None);
    assert_eq!(store(&[&read]).spike_state("all").await?, None);
    Ok(())
}

#[tokio::test]
async fn dynamo_take_token_is_conditional_on_the_period_having_passed_or_the_same_holder() -> TestResult {
    put_sends(
        async |store| store.take_token("probe#github:stranger", "inc-1", NOW, 600).await,
        request(&[
            ("pk", s("token#probe#github:stranger")),
            ("sk", s("-")),
            ("until", n(NOW + 600)),
            ("holder", s("inc-1")),
            ("expires_at", n(NOW + 600 + 86_400)),
        ])
        .condition("attribute_not_exists(pk) OR #until <= :now OR holder = :holder")
        .names(&[("#until", "until")])
        .values(&[(":now", n(NOW)), (":holder", s("inc-1"))]),
    )
    .await?;

    put_refused(async |store| {
        store
            .take_token("probe#github:stranger", "inc-2", NOW + 1, 600)
            .await
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn dynamo_count_alert_adds_the_holder_to_the_capped_window_set() -> TestResult {
    let window = item(&[
        ("pk", s("token#alerts")),
        ("sk", s("001699999200")),
        ("holders", ss(&["inc-0", "inc-1", "inc-2"])),
        ("expires_at", n(1_700_089_600)),
    ]);
    let (update, updates) = update_ok(Some(window.clone()));
    assert_eq!(
        store(&[&update])
            .count_alert(1_699_999_200, "inc-2", 1_700_089_600)
            .await?,
        3
    );
    assert_requests(
        &updates,
        &[request(&[("pk", s("token#alerts")), ("sk", s("001699999200"))])
            .update("SET expires_at = :expires ADD holders :holder")
            .condition("attribute_not_exists(holders) OR contains(holders, :h) OR size(holders) < :cap")
            .values(&[
                (":expires", n(1_700_089_600)),
                (":holder", ss(&["inc-2"])),
                (":h", s("inc-2")),
                (":cap", n(MAX_WINDOW_ALERTS as i64)),
            ])
            // ALL_NEW: moto's UPDATED_NEW leaves out a set a repeated holder did not change.
            .returns(ReturnValue::AllNew)],
    );

    // The window is full: past any limit, so the alert is held back.
    let (update, _) = update_fails();
    assert_eq!(
        store(&[&update])
            .count_alert(1_699_999_200, "inc-9", 1_700_089_600)
            .await?,
        MAX_WINDOW_ALERTS as u64 + 1
    );

    let (read, reads) = get(Some(window));
    assert_eq!(store(&[&read]).alert_count(1_699_999_200).await?, 3);
    assert_requests(
        &reads,
        &[request(&[("pk", s("token#alerts")), ("sk", s("001699999200"))]).consistent()],
    );
    let (read, _) = get(None);
    assert_eq!(store(&[&read]).alert_count(1_699_999_200).await?, 0);
    Ok(())
}

#[tokio::test]
async fn dynamo_service_errors_are_retryable_port_errors_naming_the_operation() {
    let put = mock!(aws_sdk_dynamodb::Client::put_item)
        .then_error(|| PutItemError::generic(throttled("InternalServerError")));
    let update = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_error(|| UpdateItemError::generic(throttled("ThrottlingException")));
    let query = mock!(aws_sdk_dynamodb::Client::query)
        .then_error(|| QueryError::generic(throttled("ProvisionedThroughputExceededException")));
    let read = mock!(aws_sdk_dynamodb::Client::get_item)
        .then_error(|| GetItemError::generic(throttled("RequestLimitExceeded")));
    let store = store(&[&put, &update, &query, &read]);
    let count = FailureCount {
        minute: 1,
        role: "-",
        cause: "SubjectMismatch",
        incident_id: "inc-1",
        expires_at: 2,
    };
    let results: Vec<(&str, &str, PortError)> = vec![
        (
            "PutItem event",
            "InternalServerError",
            store.first_sighting("evt-1", 1).await.unwrap_err(),
        ),
        (
            "PutItem incident",
            "InternalServerError",
            sight(&store, "evt-1", false).await.unwrap_err(),
        ),
        (
            "UpdateItem incident",
            "ThrottlingException",
            sight(&store, "evt-1", true).await.unwrap_err(),
        ),
        (
            "UpdateItem claim",
            "ThrottlingException",
            store.claim_alert(KEY, "evt-1", 1, 2).await.unwrap_err(),
        ),
        (
            "UpdateItem release",
            "ThrottlingException",
            store.release_alert(KEY).await.unwrap_err(),
        ),
        (
            "UpdateItem alerted",
            "ThrottlingException",
            store.finish_alert(KEY).await.unwrap_err(),
        ),
        (
            "UpdateItem counter",
            "ThrottlingException",
            store.count_failure(&count).await.unwrap_err(),
        ),
        (
            "Query counters",
            "ProvisionedThroughputExceededException",
            store.failure_counts(0, 5).await.unwrap_err(),
        ),
        (
            "GetItem spike",
            "RequestLimitExceeded",
            store.spike_state("all").await.unwrap_err(),
        ),
        (
            "PutItem spike",
            "InternalServerError",
            store
                .save_spike_state("all", &spike(2, None), 1)
                .await
                .unwrap_err(),
        ),
        (
            "PutItem token",
            "InternalServerError",
            store.take_token("k", "h", 1, 2).await.unwrap_err(),
        ),
        (
            "UpdateItem alert window",
            "ThrottlingException",
            store.count_alert(0, "h", 1).await.unwrap_err(),
        ),
        (
            "GetItem alert window",
            "RequestLimitExceeded",
            store.alert_count(0).await.unwrap_err(),
        ),
    ];
    for (operation, code, error) in results {
        assert_eq!(error.service, "dynamodb", "{operation}");
        assert!(error.retryable, "{operation}: {error}");
        assert!(
            error.message.starts_with(&format!("{operation}: {code}")),
            "{operation}: {error}"
        );
    }
}

// ------------------------------------------------------------ the record of successes

const GITHUB: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

fn success<'a>(subject: &'a str, at: i64) -> Success<'a> {
    Success {
        account: "111122223333",
        role: "GHA-Deploy",
        subject,
        provider: Some(GITHUB),
        audience: Some("sts.amazonaws.com"),
        at,
        expires_at: at + 90 * 86_400,
    }
}

#[tokio::test]
async fn dynamo_record_success_upserts_one_item_per_subject_of_the_lower_cased_role() -> TestResult {
    let subject = "repo:acme/web:ref:refs/heads/main";
    let (update, updates) = update_ok(None);
    store(&[&update])
        .record_success(&success(subject, 1_700_000_000))
        .await?;
    let request = updates.only();
    let key = request.key().cloned().unwrap_or_default();
    assert_eq!(key["pk"], s("success#111122223333#gha-deploy"));
    assert_eq!(
        success_partition("111122223333", "gha-deploy"),
        "success#111122223333#gha-deploy"
    );
    // The sort key is the subject's SHA-256: any subject fits, none collides.
    let sk = success_sort_key(subject);
    assert_eq!(key["sk"], s(&sk));
    assert!(sk.len() == 64 && sk.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(sk, success_sort_key("repo:acme/web:ref:refs/heads/mainx"));
    assert_eq!(
        request.update_expression(),
        Some("SET subject = :subject, first_seen = if_not_exists(first_seen, :at), last_seen = :at, expires_at = :expires, provider = :provider, audience = :audience")
    );
    assert_eq!(
        request.condition_expression(),
        Some("attribute_not_exists(last_seen) OR last_seen <= :at")
    );
    let values = request.expression_attribute_values().cloned().unwrap_or_default();
    assert_eq!(values[":subject"], s(subject));
    assert_eq!(values[":at"], n(1_700_000_000));
    assert_eq!(values[":expires"], n(1_700_000_000 + 90 * 86_400));
    assert_eq!(values[":provider"], s(GITHUB));

    // An older call than the one recorded: the condition fails, and that is an answer.
    let (update, _) = update_fails();
    store(&[&update])
        .record_success(&success(subject, 1_600_000_000))
        .await?;

    // Without provider or audience, the stale ones are removed.
    let (update, updates) = update_ok(None);
    let bare = Success {
        provider: None,
        audience: None,
        ..success(subject, 1_700_000_100)
    };
    store(&[&update]).record_success(&bare).await?;
    let expression = updates.only().update_expression().unwrap_or_default().to_owned();
    assert!(expression.ends_with(" REMOVE provider, audience"), "{expression}");
    Ok(())
}

#[tokio::test]
async fn dynamo_record_success_skips_an_oversized_subject_and_reports_errors() -> TestResult {
    let long = "x".repeat(MAX_OBSERVED_SUBJECT + 1);
    let (update, updates) = update_ok(None);
    store(&[&update]).record_success(&success(&long, 1)).await?;
    store(&[&update]).record_success(&success("", 1)).await?;
    assert!(
        updates.all().is_empty(),
        "no write for an oversized or empty subject"
    );

    let throttled_update = mock!(aws_sdk_dynamodb::Client::update_item)
        .then_error(|| UpdateItemError::generic(throttled("ProvisionedThroughputExceededException")));
    let error = store(&[&throttled_update])
        .record_success(&success("repo:acme/web:ref:refs/heads/main", 1))
        .await
        .unwrap_err();
    assert!(
        error.retryable && error.message.contains("UpdateItem success"),
        "{error}"
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_successful_subjects_reads_pages_up_to_the_cap() -> TestResult {
    let row = |k: usize| {
        let subject = format!("repo:acme/web:ref:refs/heads/b{k}");
        item(&[
            ("pk", s("success#111122223333#gha-deploy")),
            ("sk", s(&success_sort_key(&subject))),
            ("subject", s(&subject)),
            ("provider", s(GITHUB)),
            ("audience", s("sts.amazonaws.com")),
            ("first_seen", n(100 + k as i64)),
            ("last_seen", n(200 + k as i64)),
            ("expires_at", n(9_999_999_999_i64)),
        ])
    };
    let more = item(&[("pk", s("success#111122223333#gha-deploy")), ("sk", s("ff"))]);
    let (query, queries) = recording(mock!(aws_sdk_dynamodb::Client::query), move |i, _| {
        let page = if i == 0 {
            QueryOutput::builder()
                .items(row(0))
                // An item without a subject is not one.
                .items(item(&[
                    ("pk", s("success#111122223333#gha-deploy")),
                    ("sk", s("00")),
                ]))
                .set_last_evaluated_key(Some(more.clone()))
        } else {
            QueryOutput::builder().items(row(1))
        };
        MockResponse::Output(page.build())
    });
    let subjects = store(&[&query])
        .successful_subjects("111122223333", "gha-DEPLOY")
        .await?;
    assert_eq!(
        subjects,
        [
            ObservedSubject {
                subject: "repo:acme/web:ref:refs/heads/b0".into(),
                provider: Some(GITHUB.into()),
                audience: Some("sts.amazonaws.com".into()),
                first_seen: 100,
                last_seen: 200,
            },
            ObservedSubject {
                subject: "repo:acme/web:ref:refs/heads/b1".into(),
                provider: Some(GITHUB.into()),
                audience: Some("sts.amazonaws.com".into()),
                first_seen: 101,
                last_seen: 201,
            },
        ]
    );
    let requests = queries.all();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].key_condition_expression(), Some("pk = :pk"));
    assert_eq!(
        requests[0]
            .expression_attribute_values()
            .and_then(|v| v.get(":pk")),
        Some(&s("success#111122223333#gha-deploy"))
    );
    assert_eq!(requests[0].limit(), Some(MAX_OBSERVED_SUBJECTS as i32));
    assert!(requests[1].exclusive_start_key().is_some());

    // A role with endless pages: the cap ends the reading.
    let endless = item(&[("pk", s("success#111122223333#gha-deploy")), ("sk", s("ff"))]);
    let (query, queries) = recording(mock!(aws_sdk_dynamodb::Client::query), move |i, _| {
        MockResponse::Output(
            QueryOutput::builder()
                .set_items(Some((0..100).map(|k| row(i * 100 + k)).collect()))
                .set_last_evaluated_key(Some(endless.clone()))
                .build(),
        )
    });
    let subjects = store(&[&query])
        .successful_subjects("111122223333", "gha-deploy")
        .await?;
    assert_eq!(subjects.len(), MAX_OBSERVED_SUBJECTS);
    assert_eq!(queries.all().len(), MAX_OBSERVED_SUBJECTS / 100);
    Ok(())
}
