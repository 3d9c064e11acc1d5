//! The PutMetricData sink against mocked SDK clients (aws-smithy-mocks).

#[macro_use]
mod common;

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::operation::put_metric_data::{PutMetricDataInput, PutMetricDataOutput};
use aws_sdk_cloudwatch::types::StandardUnit;
use aws_smithy_mocks::{mock, MockResponse, Rule, RuleMode};
use diagnosis::metrics::{Dimension, MetricName, MetricRecord};
use diagnosis::ports::MetricSink;
use oidc_watch_aws::metrics::{CloudWatchSink, MAX_DATA_PER_CALL};

use common::*;

// ---------------------------------------------------------------------------------------
// CloudWatch PutMetricData
// ---------------------------------------------------------------------------------------

fn cloudwatch() -> (CloudWatchSink, Rule, Seen<PutMetricDataInput>) {
    let (rule, seen) = recording(
        mock!(aws_sdk_cloudwatch::Client::put_metric_data)
            .match_requests(|r| r.namespace() == Some("OidcWatch")),
        |_, _| MockResponse::Output(PutMetricDataOutput::builder().build()),
    );
    let sink = CloudWatchSink {
        client: declared_client!(
            aws_sdk_cloudwatch,
            oidc_watch_aws::metrics::SDK_OPERATIONS,
            RuleMode::MatchAny,
            [&rule]
        ),
        namespace: "OidcWatch".into(),
    };
    (sink, rule, seen)
}

fn record(counts: Vec<(MetricName, f64)>) -> MetricRecord {
    MetricRecord {
        timestamp_ms: 1_700_000_000_123,
        counts,
        dimensions: BTreeMap::from([
            (Dimension::Cause, "SubjectMismatch".to_owned()),
            (Dimension::RoleName, ROLE.to_owned()),
            (Dimension::AccountId, ACCOUNT.to_owned()),
        ]),
        properties: BTreeMap::new(),
    }
}

/// A `MetricDatum` as sent, in comparable form.
#[derive(Debug, PartialEq)]
struct SentDatum {
    name: String,
    dimensions: Vec<(String, String)>,
    value: Option<f64>,
    unit: Option<StandardUnit>,
    timestamp_ms: Option<i64>,
}

impl From<&aws_sdk_cloudwatch::types::MetricDatum> for SentDatum {
    fn from(d: &aws_sdk_cloudwatch::types::MetricDatum) -> Self {
        SentDatum {
            name: d.metric_name().unwrap_or_default().to_owned(),
            dimensions: d
                .dimensions()
                .iter()
                .map(|x| {
                    (
                        x.name().unwrap_or_default().to_owned(),
                        x.value().unwrap_or_default().to_owned(),
                    )
                })
                .collect(),
            value: d.value(),
            unit: d.unit().cloned(),
            timestamp_ms: d.timestamp().map(|t| t.to_millis().expect("in range")),
        }
    }
}

#[tokio::test]
async fn cloudwatch_put_metric_data_expands_the_dimension_sets() -> TestResult {
    let (sink, rule, seen) = cloudwatch();
    sink.publish(&record(vec![(MetricName::AssumeFailures, 1.0)]))
        .await?;
    assert_eq!(rule.num_calls(), 1);
    let request = seen.only();
    assert_eq!(request.namespace(), Some("OidcWatch"));
    let data: Vec<SentDatum> = request.metric_data().iter().map(SentDatum::from).collect();
    let datum = |dimensions: &[(&str, &str)]| SentDatum {
        name: "AssumeFailures".to_owned(),
        dimensions: dimensions
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        value: Some(1.0),
        unit: Some(StandardUnit::Count),
        timestamp_ms: Some(1_700_000_000_123),
    };
    assert_eq!(
        data,
        [
            datum(&[]),
            datum(&[("Cause", "SubjectMismatch")]),
            datum(&[("RoleName", ROLE)]),
            datum(&[("AccountId", ACCOUNT)]),
        ]
    );
    Ok(())
}

#[tokio::test]
async fn cloudwatch_put_metric_data_sends_at_most_1000_data_per_call() -> TestResult {
    let (sink, rule, seen) = cloudwatch();
    // 251 counts × 4 dimension sets = 1004 data.
    let many = record(vec![(MetricName::AssumeFailures, 1.0); 251]);
    assert_eq!(many.to_data().len(), 1004);
    sink.publish(&many).await?;
    assert_eq!(rule.num_calls(), 2);
    let sizes: Vec<usize> = seen.all().iter().map(|r| r.metric_data().len()).collect();
    assert_eq!(sizes, [MAX_DATA_PER_CALL, 4]);

    // Exactly 1000 is one call; nothing to send is none.
    let (sink, rule, _) = cloudwatch();
    sink.publish(&record(vec![(MetricName::AssumeFailures, 1.0); 250]))
        .await?;
    assert_eq!(rule.num_calls(), 1);
    let (sink, rule, _) = cloudwatch();
    sink.publish(&record(vec![])).await?;
    assert_eq!(rule.num_calls(), 0);
    Ok(())
}
