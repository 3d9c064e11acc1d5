//! Alarm enrichment: `GetMetricData` for the failures in the alarm's window, broken down
//! by `Cause` and by `RoleName` (the dimension sets oidc-monitor emits, docs/contracts.md,
//! "Metrics"). Each breakdown is one `SEARCH` expression, so no dimension value has to be
//! known in advance; a dynamic label names each series by its dimension value.

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::types::{MetricDataQuery, MetricDataResult};
use aws_smithy_types::DateTime;
use diagnosis::ports::{AlarmBreakdown, Breakdown, BreakdownRequest, PortError};

/// The CloudWatch operations this adapter calls.
pub const SDK_OPERATIONS: &[&str] = &["GetMetricData"];

pub struct CloudWatchBreakdown {
    pub client: aws_sdk_cloudwatch::Client,
    pub namespace: String,
}

impl CloudWatchBreakdown {
    pub fn new(sdk: &aws_config::SdkConfig, namespace: impl Into<String>) -> Self {
        CloudWatchBreakdown {
            client: aws_sdk_cloudwatch::Client::new(sdk),
            namespace: namespace.into(),
        }
    }
}

/// Query ids, and the dimension each breaks failures down by.
pub const BY_CAUSE: (&str, &str) = ("cause", "Cause");
pub const BY_ROLE: (&str, &str) = ("role", "RoleName");

/// Pages read at most (each holds up to 100,800 datapoints: far more than needed).
const MAX_PAGES: usize = 5;
/// Entries kept per breakdown.
const KEEP: usize = 10;

/// The two `SEARCH` queries. The namespace is quoted (it may contain `/` or spaces;
/// `validate_namespace` rules out quotes).
pub fn queries(namespace: &str, period: i64) -> Vec<MetricDataQuery> {
    [BY_CAUSE, BY_ROLE]
        .iter()
        .map(|(id, dimension)| {
            MetricDataQuery::builder()
                .id(*id)
                .expression(format!(
                    "SEARCH('{{\"{namespace}\",{dimension}}} MetricName=\"AssumeFailures\"', 'Sum', {period})"
                ))
                .label(format!("${{PROP('Dim.{dimension}')}}"))
                .return_data(true)
                .build()
        })
        .collect()
}

/// Sums each series over the window, per breakdown, largest first (ties by name).
pub fn summarise(results: &[MetricDataResult], request: &BreakdownRequest) -> Breakdown {
    let mut sums: BTreeMap<(&str, String), f64> = BTreeMap::new();
    for result in results {
        let (Some(id), Some(label)) = (result.id(), result.label()) else {
            continue;
        };
        *sums.entry((id, label.to_owned())).or_insert(0.0) += result.values().iter().sum::<f64>();
    }
    let top = |wanted: &str| {
        let mut items: Vec<(String, f64)> = sums
            .iter()
            .filter(|((id, _), sum)| *id == wanted && **sum > 0.0)
            .map(|((_, label), sum)| (label.clone(), *sum))
            .collect();
        items.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        items.truncate(KEEP);
        items
    };
    Breakdown {
        start: request.start,
        end: request.end,
        by_cause: top(BY_CAUSE.0),
        by_role: top(BY_ROLE.0),
    }
}

/// The alarm's window as whole periods: CloudWatch wants a multiple of 60 seconds.
pub fn period_for(request: &BreakdownRequest) -> i64 {
    let period = request.period.max(60);
    period + (60 - period % 60) % 60
}

impl AlarmBreakdown for CloudWatchBreakdown {
    async fn breakdown(&self, request: &BreakdownRequest) -> Result<Breakdown, PortError> {
        let mut results = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let output = self
                .client
                .get_metric_data()
                .set_metric_data_queries(Some(queries(&self.namespace, period_for(request))))
                .start_time(DateTime::from_secs(request.start))
                .end_time(DateTime::from_secs(request.end))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| {
                    PortError::new(
                        "cloudwatch",
                        format!("GetMetricData: {}", crate::describe(&e)),
                        true,
                    )
                })?;
            results.extend_from_slice(output.metric_data_results());
            match output.next_token() {
                Some(next) if !next.is_empty() => token = Some(next.to_owned()),
                _ => break,
            }
        }
        Ok(summarise(&results, request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_queries() {
        let q = queries("OidcWatch", 300);
        assert_eq!(
            q[0].expression(),
            Some("SEARCH('{\"OidcWatch\",Cause} MetricName=\"AssumeFailures\"', 'Sum', 300)")
        );
        assert_eq!(q[1].label(), Some("${PROP('Dim.RoleName')}"));
        assert_eq!(q[1].id(), Some("role"));
        assert_eq!(
            period_for(&BreakdownRequest {
                start: 0,
                end: 1,
                period: 90
            }),
            120
        );
        assert_eq!(
            period_for(&BreakdownRequest {
                start: 0,
                end: 1,
                period: 10
            }),
            60
        );
    }
}
