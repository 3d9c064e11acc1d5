//! What arrives on the alert topic, read into the notifier's own model.
//!
//! Two messages are understood:
//! - oidc-monitor's alert, an Amazon Q Developer custom notification, read back into the
//!   monitor's own [`Alert`] by [`Alert::from_q_notification`] (tolerant of a producer one
//!   release behind or ahead);
//! - a CloudWatch alarm state change, single metric or metric math.
//!
//! Everything else is [`NoticeError::Unrecognised`]: logged and dropped by the handler.
//!
//! The alarm payload has its own tolerant struct: `aws_lambda_events`'
//! `CloudWatchAlarmPayload` requires `AlarmDescription` to be a string, and CloudWatch
//! sends `null` for an alarm without a description.

use diagnosis::alert::{is_q_notification, Alert, AlertReadError, Severity};
use diagnosis::Diagnosis;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::links::region_of;

#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Alert {
        alert: Box<Alert>,
        /// The notification's `id` (`kind:thread…`, [`Alert::alert_id`]): the same for every
        /// publish of one alert, so a publish the monitor repeated posts once. `None` when
        /// the message has none that fits its kind.
        id: Option<String>,
    },
    Alarm(Box<AlarmNotice>),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoticeError {
    #[error("the message is not JSON")]
    NotJson,
    #[error("neither an oidc-watch alert nor a CloudWatch alarm notification")]
    Unrecognised,
    #[error("malformed {what}: {message}")]
    Malformed { what: &'static str, message: String },
}

/// The owner name routes match (`owner:NAME` in `SLACK_ROUTES`): the token's owner, else
/// the repository's first segment, lowercased.
pub fn route_owner(d: &Diagnosis) -> Option<String> {
    d.owner
        .as_ref()
        .map(|o| o.name.clone())
        .or_else(|| d.claims.owner.clone())
        .or_else(|| d.claims.organization.clone())
        .or_else(|| {
            d.claims
                .repository
                .as_deref()
                .and_then(|r| r.split('/').next())
                .map(str::to_owned)
        })
        .map(|o| o.to_ascii_lowercase())
}

/// A CloudWatch alarm state change as SNS delivers it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AlarmNotice {
    pub alarm_name: String,
    pub alarm_description: Option<String>,
    #[serde(rename = "AWSAccountId")]
    pub aws_account_id: String,
    pub new_state_value: String,
    pub new_state_reason: String,
    pub state_change_time: String,
    /// The region's display name ("US East (N. Virginia)"); the code is in the ARN.
    pub region: String,
    pub alarm_arn: String,
    pub old_state_value: String,
    pub trigger: AlarmTrigger,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AlarmTrigger {
    pub metric_name: Option<String>,
    pub namespace: Option<String>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub unit: Option<String>,
    pub dimensions: Vec<AlarmDimension>,
    pub period: i64,
    pub evaluation_periods: i64,
    pub datapoints_to_alarm: Option<i64>,
    pub comparison_operator: String,
    pub threshold: Option<f64>,
    pub treat_missing_data: Option<String>,
    /// Metric math alarms: the queries (expressions and metric stats).
    pub metrics: Vec<AlarmQuery>,
}

/// Alarm notifications spell dimension keys in lowercase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlarmDimension {
    #[serde(alias = "Name")]
    pub name: String,
    #[serde(alias = "Value")]
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AlarmQuery {
    pub id: String,
    pub expression: Option<String>,
    pub label: Option<String>,
    pub metric_stat: Option<AlarmMetricStat>,
    pub return_data: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AlarmMetricStat {
    pub metric: AlarmMetric,
    pub period: i64,
    pub stat: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AlarmMetric {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Vec<AlarmDimension>,
}

/// Longest window an alarm breakdown covers (one day).
const MAX_WINDOW_SECONDS: i64 = 86_400;

impl AlarmNotice {
    pub fn is_alarm(&self) -> bool {
        self.new_state_value == "ALARM"
    }

    pub fn severity(&self) -> Severity {
        match self.new_state_value.as_str() {
            "ALARM" => Severity::High,
            "OK" => Severity::Info,
            _ => Severity::Medium,
        }
    }

    /// The region code, from the alarm ARN.
    pub fn region_code(&self) -> Option<&str> {
        region_of(&self.alarm_arn)
    }

    /// True when the alarm watches a metric in `namespace`.
    pub fn watches(&self, namespace: &str) -> bool {
        self.trigger.namespace.as_deref() == Some(namespace)
            || self.trigger.metrics.iter().any(|q| {
                q.metric_stat
                    .as_ref()
                    .is_some_and(|s| s.metric.namespace.as_deref() == Some(namespace))
            })
    }

    /// The alarm's period in seconds: the trigger's, else the longest metric stat's.
    pub fn period(&self) -> i64 {
        if self.trigger.period > 0 {
            return self.trigger.period;
        }
        self.trigger
            .metrics
            .iter()
            .filter_map(|q| q.metric_stat.as_ref().map(|s| s.period))
            .max()
            .unwrap_or(300)
    }

    /// The evaluated window `(start, end)` in epoch seconds: the evaluation periods
    /// before the state change, at least one minute, at most a day.
    pub fn window(&self) -> Option<(i64, i64)> {
        let end = alarm_time(&self.state_change_time)?;
        let span = self
            .period()
            .max(60)
            .saturating_mul(self.trigger.evaluation_periods.max(1))
            .min(MAX_WINDOW_SECONDS);
        Some((end - span, end))
    }

    /// When the state changed, in epoch seconds.
    pub fn changed_at(&self) -> Option<i64> {
        alarm_time(&self.state_change_time)
    }
}

/// `2026-10-06T14:30:00.000+0000` in epoch seconds. Only four-digit years are read, so
/// a forged time cannot overflow the date arithmetic.
pub fn alarm_time(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 10 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return None;
    }
    diagnosis::evaluate::epoch_seconds(text)
}

/// Reads one SNS `Message`.
pub fn parse_message(message: &str) -> Result<Notice, NoticeError> {
    let value: Value = serde_json::from_str(message).map_err(|_| NoticeError::NotJson)?;
    parse_value(&value, 0)
}

fn parse_value(value: &Value, depth: u8) -> Result<Notice, NoticeError> {
    let Some(object) = value.as_object() else {
        return Err(NoticeError::Unrecognised);
    };
    if is_q_notification(value) {
        let alert = Alert::from_q_notification(value).map_err(|e| match e {
            AlertReadError::NotAnAlert => NoticeError::Unrecognised,
            AlertReadError::Malformed(message) => NoticeError::Malformed {
                what: "oidc-watch alert",
                message,
            },
        })?;
        let id = value["id"]
            .as_str()
            .filter(|id| id.starts_with(&format!("{}:", alert.kind.as_str())))
            .map(str::to_owned);
        return Ok(Notice::Alert {
            alert: Box::new(alert),
            id,
        });
    }
    if object.contains_key("AlarmName") && object.contains_key("NewStateValue") {
        let alarm: AlarmNotice =
            serde_json::from_value(value.clone()).map_err(|e| NoticeError::Malformed {
                what: "CloudWatch alarm notification",
                message: e.to_string(),
            })?;
        return Ok(Notice::Alarm(Box::new(alarm)));
    }
    // A `MessageStructure=json` body delivered whole: its `default` is the message.
    if let (Some(inner), 0) = (object.get("default").and_then(Value::as_str), depth) {
        let inner: Value = serde_json::from_str(inner).map_err(|_| NoticeError::Unrecognised)?;
        return parse_value(&inner, depth + 1);
    }
    Err(NoticeError::Unrecognised)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_without_description_parses() {
        let message = r#"{"AlarmName":"a","AlarmDescription":null,"AWSAccountId":"1","NewStateValue":"ALARM",
            "NewStateReason":"r","StateChangeTime":"2026-10-06T14:30:00.000+0000","Region":"US East (N. Virginia)",
            "AlarmArn":"arn:aws:cloudwatch:us-east-1:1:alarm:a","OldStateValue":"OK",
            "Trigger":{"MetricName":"AssumeFailures","Namespace":"OidcWatch","Statistic":"SUM","Dimensions":[],
            "Period":300,"EvaluationPeriods":2,"ComparisonOperator":"GreaterThanThreshold","Threshold":10.0}}"#;
        let Ok(Notice::Alarm(alarm)) = parse_message(message) else {
            panic!("not an alarm")
        };
        assert_eq!(alarm.alarm_description, None);
        assert_eq!(alarm.region_code(), Some("us-east-1"));
        assert!(alarm.watches("OidcWatch"));
        let end = diagnosis::evaluate::epoch_seconds("2026-10-06T14:30:00Z").unwrap();
        assert_eq!(alarm.window(), Some((end - 600, end)));
        assert_eq!(alarm_time("99999999999999999-01-01T00:00:00Z"), None);
        assert_eq!(alarm_time("-1"), None);
        let huge = AlarmNotice {
            state_change_time: "2026-10-06T14:30:00Z".into(),
            trigger: AlarmTrigger {
                period: i64::MAX,
                evaluation_periods: i64::MAX,
                ..AlarmTrigger::default()
            },
            ..AlarmNotice::default()
        };
        assert_eq!(huge.window(), Some((end - 86_400, end)));
    }

    #[test]
    fn other_messages_are_unrecognised() {
        assert_eq!(parse_message("Hello\r\nworld!"), Err(NoticeError::NotJson));
        assert_eq!(parse_message("{\"a\":1}"), Err(NoticeError::Unrecognised));
        assert_eq!(parse_message("[1]"), Err(NoticeError::Unrecognised));
        assert!(matches!(
            parse_message(
                r#"{"version":"1.0","source":"custom","metadata":{"additionalContext":{"kind":"nope"}}}"#
            ),
            Err(NoticeError::Malformed { .. })
        ));
    }
}
