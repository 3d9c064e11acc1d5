//! `diagnose --emit-metrics`'s writer against mocked SDK clients (aws-smithy-mocks): the
//! ledger claims, the statistic sets CloudWatch receives, and what a failure gives back.

#[macro_use]
mod common;

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::operation::put_metric_data::{
    PutMetricDataError, PutMetricDataInput, PutMetricDataOutput,
};
use aws_sdk_dynamodb::operation::delete_item::{DeleteItemInput, DeleteItemOutput};
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemInput, PutItemOutput};
use aws_smithy_mocks::{mock, MockResponse, Rule, RuleMode};
use diagnosis::backfill::{Backfill, CountDatum, Slot};
use diagnosis::metrics::{Dimension, MetricName, MetricRecord};
use oidc_watch_aws::backfill::{BackfillWriter, Written, CLOUDWATCH_OPERATIONS, DYNAMODB_OPERATIONS};
use oidc_watch_aws::metrics::MAX_DATA_PER_CALL;

use common::*;

const NOW: i64 = 1_764_633_600;
const NAMESPACE: &str = "OidcWatch";

fn writer(dynamodb: &[&Rule], cloudwatch: &[&Rule]) -> BackfillWriter {
    BackfillWriter {
        dynamodb: declared_client!(
            aws_sdk_dynamodb,
            DYNAMODB_OPERATIONS,
            RuleMode::MatchAny,
            dynamodb.iter().copied(),
            |c| c.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        ),
        cloudwatch: declared_client!(
            aws_sdk_cloudwatch,
            CLOUDWATCH_OPERATIONS,
            RuleMode::MatchAny,
            cloudwatch.iter().copied(),
            |c| c.retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
        ),
        table: TABLE.to_owned(),
        namespace: NAMESPACE.to_owned(),
        now: NOW,
    }
}

fn failure(cause: &str, role: &str) -> MetricRecord {
    MetricRecord {
        timestamp_ms: 0,
        counts: vec![(MetricName::AssumeFailures, 1.0)],
        dimensions: BTreeMap::from([
            (Dimension::Cause, cause.to_owned()),
            (Dimension::RoleName, role.to_owned()),
            (Dimension::AccountId, ACCOUNT.to_owned()),
        ]),
        properties: BTreeMap::new(),
    }
}

/// Three failures in the minute an hour ago, one in the minute after.
fn two_minutes() -> Vec<(Slot, Vec<CountDatum>)> {
    let mut backfill = Backfill::new(NOW);
    let first = NOW - 3600;
    for second in [0, 10, 59] {
        backfill.add(
            &failure("SubjectMismatch", ROLE),
            Some(first + second),
            Some("us-east-1"),
        );
    }
    backfill.add(
        &failure("AudienceMismatch", ROLE),
        Some(first + 60),
        Some("us-east-1"),
    );
    backfill.into_slots()
}

fn claim_key(request: &PutItemInput) -> String {
    match request.item().and_then(|item| item.get("pk")) {
        Some(aws_sdk_dynamodb::types::AttributeValue::S(key)) => key.clone(),
        other => panic!("a claim without a string pk: {other:?}"),
    }
}

/// PutItem claims: those of `taken` fail their condition, as an earlier run's would.
fn claims_answering(taken: Vec<String>) -> (Rule, Seen<PutItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::put_item), move |_, request| {
        if taken.contains(&claim_key(request)) {
            MockResponse::Error(PutItemError::ConditionalCheckFailedException(condition_failed()))
        } else {
            MockResponse::Output(PutItemOutput::builder().build())
        }
    })
}

fn puts_ok() -> (Rule, Seen<PutMetricDataInput>) {
    recording(mock!(aws_sdk_cloudwatch::Client::put_metric_data), |_, _| {
        MockResponse::Output(PutMetricDataOutput::builder().build())
    })
}

fn deletes() -> (Rule, Seen<DeleteItemInput>) {
    recording(mock!(aws_sdk_dynamodb::Client::delete_item), |_, _| {
        MockResponse::Output(DeleteItemOutput::builder().build())
    })
}

/// (metric, dimensions, timestamp, sample count, sum, min, max) of every datum sent.
type Sent = (String, Vec<(String, String)>, i64, f64, f64, f64, f64);

fn sent(calls: &[PutMetricDataInput]) -> Vec<Sent> {
    calls
        .iter()
        .flat_map(|call| call.metric_data())
        .map(|d| {
            let set = d.statistic_values().expect("a statistic set");
            assert_eq!(d.value(), None, "a statistic set carries no single value");
            (
                d.metric_name().unwrap_or_default().to_owned(),
                d.dimensions()
                    .iter()
                    .map(|x| {
                        (
                            x.name().unwrap_or_default().to_owned(),
                            x.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
                d.timestamp().map(|t| t.secs()).unwrap_or_default(),
                set.sample_count().unwrap_or_default(),
                set.sum().unwrap_or_default(),
                set.minimum().unwrap_or_default(),
                set.maximum().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_minute_is_claimed_then_sent_as_statistic_sets_at_its_own_time() -> TestResult {
    let (claim, claims) = claims_answering(Vec::new());
    let (put, puts) = puts_ok();
    let written = writer(&[&claim], &[&put]).write(two_minutes()).await;
    assert_eq!(
        written,
        Written {
            slots: 2,
            data: 8,
            ..Written::default()
        }
    );

    let minute = NOW - 3600;
    let keys: Vec<String> = claims.all().iter().map(claim_key).collect();
    assert_eq!(
        keys,
        [
            format!("backfill#OidcWatch#{ACCOUNT}#us-east-1#{minute}"),
            format!("backfill#OidcWatch#{ACCOUNT}#us-east-1#{}", minute + 60),
        ]
    );
    let first = &claims.all()[0];
    assert_eq!(first.table_name(), Some(TABLE));
    assert_eq!(first.condition_expression(), Some("attribute_not_exists(pk)"));
    let item = first.item().expect("an item");
    assert_eq!(item.get("sk"), Some(&s("backfill")));
    assert_eq!(item.get("data"), Some(&n(4)));
    assert_eq!(item.get("written_at"), Some(&n(NOW)));
    assert_eq!(item.get("expires_at"), Some(&n(minute + 15 * 86_400)));

    let calls = puts.all();
    assert_eq!(calls.len(), 1, "two small minutes go in one call");
    assert_eq!(calls[0].namespace(), Some(NAMESPACE));
    let data = sent(&calls);
    let dims = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    };
    let failures = |d: Vec<(String, String)>, at: i64, count: f64| -> Sent {
        ("AssumeFailures".to_owned(), d, at, count, count, 1.0, 1.0)
    };
    let mut expected = vec![
        failures(dims(&[]), minute, 3.0),
        failures(dims(&[("Cause", "SubjectMismatch")]), minute, 3.0),
        failures(dims(&[("RoleName", ROLE)]), minute, 3.0),
        failures(dims(&[("AccountId", ACCOUNT)]), minute, 3.0),
        failures(dims(&[]), minute + 60, 1.0),
        failures(dims(&[("Cause", "AudienceMismatch")]), minute + 60, 1.0),
        failures(dims(&[("RoleName", ROLE)]), minute + 60, 1.0),
        failures(dims(&[("AccountId", ACCOUNT)]), minute + 60, 1.0),
    ];
    let mut data_sorted = data;
    data_sorted.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    expected.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    assert_eq!(data_sorted, expected);
    Ok(())
}

#[tokio::test]
async fn a_minute_an_earlier_run_claimed_is_not_sent_again() -> TestResult {
    let minute = NOW - 3600;
    let (claim, claims) = claims_answering(vec![format!("backfill#OidcWatch#{ACCOUNT}#us-east-1#{minute}")]);
    let (put, puts) = puts_ok();
    let written = writer(&[&claim], &[&put]).write(two_minutes()).await;
    assert_eq!(
        (written.slots, written.data, written.already, written.failed),
        (1, 4, 1, 0)
    );
    assert_eq!(claims.all().len(), 2);
    let data = sent(&puts.all());
    assert!(
        data.iter().all(|d| d.2 == minute + 60),
        "only the unclaimed minute: {data:?}"
    );
    Ok(())
}

#[tokio::test]
async fn calls_hold_at_most_the_limit_and_never_split_a_minute() -> TestResult {
    // 300 minutes of one failure each: 4 data per minute, 1200 in all.
    let mut backfill = Backfill::new(NOW);
    for i in 0..300 {
        backfill.add(
            &failure("SubjectMismatch", ROLE),
            Some(NOW - 86_400 + i * 60),
            Some("eu-west-1"),
        );
    }
    let (claim, claims) = claims_answering(Vec::new());
    let (put, puts) = puts_ok();
    let written = writer(&[&claim], &[&put]).write(backfill.into_slots()).await;
    assert_eq!((written.slots, written.data, written.failed), (300, 1200, 0));
    assert_eq!(claims.all().len(), 300);
    let calls = puts.all();
    assert_eq!(calls.len(), 2);
    for call in &calls {
        let data = call.metric_data();
        assert!(data.len() <= MAX_DATA_PER_CALL);
        assert_eq!(data.len() % 4, 0, "a minute's four data travel together");
    }
    Ok(())
}

#[tokio::test]
async fn a_refused_call_gives_its_claims_back_so_a_rerun_writes_those_minutes() -> TestResult {
    let (claim, claims) = claims_answering(Vec::new());
    let (put, _) = recording(mock!(aws_sdk_cloudwatch::Client::put_metric_data), |_, _| {
        MockResponse::Error(PutMetricDataError::generic(error_metadata(
            "AccessDenied",
            "not authorized to perform: cloudwatch:PutMetricData",
        )))
    });
    let (delete, deleted) = deletes();
    let written = writer(&[&claim, &delete], &[&put]).write(two_minutes()).await;
    assert_eq!((written.slots, written.data, written.failed), (0, 0, 2));
    assert_eq!(written.errors.len(), 1);
    assert!(written.errors[0].contains("AccessDenied"), "{:?}", written.errors);
    let claimed: Vec<String> = claims.all().iter().map(claim_key).collect();
    let released: Vec<String> = deleted
        .all()
        .iter()
        .map(|d| match d.key().and_then(|k| k.get("pk")) {
            Some(aws_sdk_dynamodb::types::AttributeValue::S(key)) => key.clone(),
            other => panic!("a delete without a string pk: {other:?}"),
        })
        .collect();
    assert_eq!(released, claimed);
    assert!(deleted
        .all()
        .iter()
        .all(|d| d.key().and_then(|k| k.get("sk")) == Some(&s("backfill"))));
    Ok(())
}

#[tokio::test]
async fn a_claim_that_fails_leaves_its_minute_unwritten_and_says_why() -> TestResult {
    let (claim, _) = recording(mock!(aws_sdk_dynamodb::Client::put_item), |_, _| {
        MockResponse::Error(PutItemError::generic(error_metadata(
            "ResourceNotFoundException",
            "Requested resource not found",
        )))
    });
    let (put, puts) = puts_ok();
    let written = writer(&[&claim], &[&put]).write(two_minutes()).await;
    assert_eq!((written.slots, written.failed), (0, 2));
    assert!(puts.all().is_empty());
    assert_eq!(written.errors.len(), 2);
    assert!(
        written.errors[0].contains("Requested resource not found"),
        "{:?}",
        written.errors
    );
    Ok(())
}
