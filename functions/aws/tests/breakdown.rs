//! The alarm breakdown from GetMetricData against mocked SDK clients (aws-smithy-mocks).
//! Rules with `match_requests` pin a request's shape (`RuleMode::MatchAny`: a request no
//! rule matches fails the test).

#[macro_use]
mod common;

use aws_sdk_cloudwatch::operation::get_metric_data::GetMetricDataOutput;
use aws_sdk_cloudwatch::types::MetricDataResult;
use aws_smithy_mocks::{mock, Rule, RuleMode};
use aws_smithy_types::DateTime;
use diagnosis::ports::{AlarmBreakdown, Breakdown, BreakdownRequest, PortError};
use oidc_watch_aws::breakdown::CloudWatchBreakdown;

// ---------------------------------------------------------------------------------------
// GetMetricData

fn series(id: &str, label: &str, values: &[f64]) -> MetricDataResult {
    let mut builder = MetricDataResult::builder().id(id).label(label);
    for (i, v) in values.iter().enumerate() {
        builder = builder
            .values(*v)
            .timestamps(DateTime::from_secs(1_791_297_000 - 300 * i as i64));
    }
    builder.build()
}

const WINDOW: BreakdownRequest = BreakdownRequest {
    start: 1_791_296_100,
    end: 1_791_297_000,
    period: 300,
};

/// The breakdown of `WINDOW` through a mocked client declaring `declared` and answering
/// with `rules`.
async fn breakdown_with(declared: &'static [&'static str], rules: &[&Rule]) -> Result<Breakdown, PortError> {
    let client = declared_client!(
        aws_sdk_cloudwatch,
        declared,
        RuleMode::MatchAny,
        rules.iter().copied()
    );
    CloudWatchBreakdown {
        client,
        namespace: "OidcWatch".into(),
    }
    .breakdown(&WINDOW)
    .await
}

#[tokio::test]
async fn the_alarm_breakdown_searches_by_cause_and_by_role_over_the_window() {
    let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| {
            let queries = r.metric_data_queries();
            queries.len() == 2
                && queries[0].id() == Some("cause")
                && queries[0].expression()
                    == Some("SEARCH('{\"OidcWatch\",Cause} MetricName=\"AssumeFailures\"', 'Sum', 300)")
                && queries[0].label() == Some("${PROP('Dim.Cause')}")
                && queries[1].id() == Some("role")
                && queries[1].expression()
                    == Some("SEARCH('{\"OidcWatch\",RoleName} MetricName=\"AssumeFailures\"', 'Sum', 300)")
                && queries.iter().all(|q| q.return_data() == Some(true))
                && r.start_time() == Some(&DateTime::from_secs(WINDOW.start))
                && r.end_time() == Some(&DateTime::from_secs(WINDOW.end))
        })
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(series("cause", "SubjectMismatch", &[20.0, 9.0, 2.0]))
                .metric_data_results(series("cause", "RoleNotFound", &[6.0, 3.0]))
                .metric_data_results(series("cause", "AudienceMismatch", &[0.0]))
                .metric_data_results(series("role", "gha-deploy-main-only", &[25.0, 4.0]))
                .metric_data_results(series("role", "-", &[9.0]))
                .build()
        });
    let breakdown = breakdown_with(oidc_watch_aws::breakdown::SDK_OPERATIONS, &[&get])
        .await
        .unwrap();
    assert_eq!(get.num_calls(), 1);
    assert_eq!((breakdown.start, breakdown.end), (WINDOW.start, WINDOW.end));
    assert_eq!(
        breakdown.by_cause,
        [
            ("SubjectMismatch".to_owned(), 31.0),
            ("RoleNotFound".to_owned(), 9.0)
        ],
        "largest first, zero series left out"
    );
    assert_eq!(
        breakdown.by_role,
        [("gha-deploy-main-only".to_owned(), 29.0), ("-".to_owned(), 9.0)]
    );
}

#[tokio::test]
async fn the_alarm_breakdown_follows_next_token() {
    let first = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token().is_none())
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(series("cause", "SubjectMismatch", &[5.0]))
                .next_token("page-2")
                .build()
        });
    let second = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .match_requests(|r| r.next_token() == Some("page-2"))
        .then_output(|| {
            GetMetricDataOutput::builder()
                .metric_data_results(series("cause", "SubjectMismatch", &[2.0]))
                .metric_data_results(series("role", "gha-deploy-prod", &[7.0]))
                .build()
        });
    let breakdown = breakdown_with(oidc_watch_aws::breakdown::SDK_OPERATIONS, &[&first, &second])
        .await
        .unwrap();
    assert_eq!((first.num_calls(), second.num_calls()), (1, 1));
    assert_eq!(breakdown.by_cause, [("SubjectMismatch".to_owned(), 7.0)]);
    assert_eq!(breakdown.by_role, [("gha-deploy-prod".to_owned(), 7.0)]);
}

#[tokio::test]
#[should_panic(expected = "not in its SDK_OPERATIONS")]
async fn a_call_outside_the_declared_operations_fails_the_test() {
    let get = mock!(aws_sdk_cloudwatch::Client::get_metric_data)
        .then_output(|| GetMetricDataOutput::builder().build());
    let _ = breakdown_with(&["PutMetricData"], &[&get]).await;
}
