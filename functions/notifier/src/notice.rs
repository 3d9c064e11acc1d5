//! What arrives on the alert topic, read into the notifier's own model.
//!
//! Two messages are understood:
//! - oidc-monitor's alert, an Amazon Q Developer custom notification whose
//!   `metadata.additionalContext` carries the diagnosis (see `diagnosis::alert`);
//! - a CloudWatch alarm state change, single metric or metric math.
//!
//! Everything else is [`NoticeError::Unrecognised`]: logged and dropped by the handler.
//!
//! The diagnosis is read into [`DiagnosisView`], tolerant of missing and extra fields, so
//! a notifier one release behind or ahead of the monitor still renders what it can. The
//! alarm payload has its own tolerant struct too: `aws_lambda_events`'
//! `CloudWatchAlarmPayload` requires `AlarmDescription` to be a string, and CloudWatch
//! sends `null` for an alarm without a description.

use std::collections::BTreeMap;

use diagnosis::alert::{AlertKind, Severity, SpikeSummary};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::links::region_of;

#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Alert(Box<AlertNotice>),
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

/// One oidc-monitor alert.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertNotice {
    pub kind: AlertKind,
    pub severity: Severity,
    /// Stable per incident or spike: the Slack thread every later message joins.
    pub thread_id: String,
    pub account: String,
    pub attempts: u64,
    pub cause: Option<String>,
    pub subject_mismatch: Option<String>,
    /// The monitor's own one-line title (Amazon Q's), kept for the fallback text.
    pub title: String,
    pub diagnosis: Option<DiagnosisView>,
    pub spike: Option<SpikeSummary>,
    /// Sentences about the alert path itself (rate limits), from `additionalContext.notes`
    /// (a JSON list of strings) when the producer sends it. Never read back out of
    /// `content.description`, which mixes them with prose quoting untrusted values.
    pub notes: Vec<String>,
    /// The alert's identity (`kind:thread`, the notification's `id`): the same for every
    /// publish of one alert, so a publish the monitor repeated posts once.
    pub alert_id: Option<String>,
}

impl AlertNotice {
    /// The owner probe alerts are rate-limited by: the subject's owner, lowercased.
    pub fn owner(&self) -> String {
        self.diagnosis
            .as_ref()
            .and_then(|d| d.claims.owner.clone().or_else(|| d.claims.organization.clone()))
            .or_else(|| {
                self.diagnosis
                    .as_ref()
                    .and_then(|d| d.claims.repository.as_deref())
                    .and_then(|r| r.split('/').next().map(str::to_owned))
            })
            .map_or_else(|| "-".to_owned(), |o| o.to_ascii_lowercase())
    }
}

/// The part of a `Diagnosis` (the JSON contract of `oidc-watch diagnose`) the notifier
/// renders.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiagnosisView {
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub role_arn: Option<String>,
    pub role_name: Option<String>,
    pub provider: Option<String>,
    pub provider_arn: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub claims: ClaimsView,
    pub cause: Option<String>,
    pub subject_mismatch: Option<String>,
    pub confidence: Option<String>,
    pub explanation: String,
    pub fix: Option<String>,
    pub failed_conditions: Vec<FailedConditionView>,
    pub findings: Vec<FindingView>,
    pub evidence: Option<String>,
    pub duration_seconds: Option<u64>,
    pub github_run_id: Option<String>,
    /// The owner the token names, `provider:name` (ALLOWED_OWNERS syntax).
    pub owner: Option<String>,
    /// `ours`, `foreign` or `unknown`.
    pub trust: Option<String>,
    /// The verified trust-policy edit; `None` when there is none (then `fix` says why),
    /// from an older producer, or when it is malformed.
    #[serde(deserialize_with = "lenient")]
    pub suggested_change: Option<SuggestedChangeView>,
}

/// `suggested_change` of the diagnosis contract: statement `statement` of `policy` (the
/// whole trust policy after the edit) gets `add` under `operator`/`key`, without `remove`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SuggestedChangeView {
    pub statement: usize,
    /// `null` for `Action` and `Principal.Federated`.
    pub operator: Option<String>,
    /// A condition key, or `Action`, or `Principal.Federated`.
    pub key: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    pub policy: Value,
}

/// A value that does not read as `T` is `None`, not an error: one malformed optional
/// member must not cost the whole alert.
fn lenient<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let value = Value::deserialize(deserializer)?;
    Ok(serde_json::from_value(value).ok())
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaimsView {
    pub format: Option<String>,
    pub repository: Option<String>,
    pub owner: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub ref_type: Option<String>,
    pub environment: Option<String>,
    pub pull_request: bool,
    pub namespace: Option<String>,
    pub service_account: Option<String>,
    pub organization: Option<String>,
    pub workspace: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedConditionView {
    pub statement: usize,
    pub operator: String,
    pub key: String,
    pub expected: Vec<String>,
    /// A string, a list for multivalued keys, or null when the key was missing.
    pub actual: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FindingView {
    pub code: String,
    pub severity: String,
    pub message: String,
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
    if object.get("source").and_then(Value::as_str) == Some("custom")
        && object
            .get("metadata")
            .and_then(|m| m.get("additionalContext"))
            .is_some()
    {
        return parse_alert(value).map(|a| Notice::Alert(Box::new(a)));
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

fn parse_alert(value: &Value) -> Result<AlertNotice, NoticeError> {
    let malformed = |message: String| NoticeError::Malformed {
        what: "oidc-watch alert",
        message,
    };
    let context: BTreeMap<String, String> = value["metadata"]["additionalContext"]
        .as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    let get = |key: &str| context.get(key).filter(|v| !v.is_empty()).cloned();
    let kind: AlertKind = serde_json::from_value(Value::String(get("kind").unwrap_or_default()))
        .map_err(|_| malformed(format!("unknown kind {:?}", get("kind").unwrap_or_default())))?;
    let severity: Severity = get("severity")
        .and_then(|s| serde_json::from_value(Value::String(s)).ok())
        .unwrap_or(Severity::High);
    let diagnosis = match get("diagnosis") {
        Some(text) => {
            let mut d = serde_json::from_str::<DiagnosisView>(&text)
                .map_err(|e| malformed(format!("diagnosis: {e}")))?;
            // The same facts as top-level context members, for a diagnosis without them.
            d.owner = d.owner.or_else(|| get("owner"));
            d.trust = d.trust.or_else(|| get("trust"));
            d.suggested_change = d
                .suggested_change
                .or_else(|| get("suggested_change").and_then(|text| serde_json::from_str(&text).ok()));
            Some(d)
        }
        None => None,
    };
    let notes: Vec<String> = get("notes")
        .and_then(|text| serde_json::from_str::<Vec<Value>>(&text).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(|note| note.as_str().map(str::to_owned))
        .filter(|note| !note.trim().is_empty())
        .collect();
    let spike = match get("spike") {
        Some(text) => {
            Some(serde_json::from_str::<SpikeSummary>(&text).map_err(|e| malformed(format!("spike: {e}")))?)
        }
        None => None,
    };
    let thread_id = value["metadata"]["threadId"]
        .as_str()
        .or_else(|| value["id"].as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("no threadId".to_owned()))?
        .to_owned();
    Ok(AlertNotice {
        kind,
        severity,
        thread_id,
        account: get("account").unwrap_or_else(|| "-".to_owned()),
        attempts: get("attempts").and_then(|a| a.parse().ok()).unwrap_or(1),
        cause: get("cause").or_else(|| diagnosis.as_ref().and_then(|d| d.cause.clone())),
        subject_mismatch: get("subject_mismatch")
            .or_else(|| diagnosis.as_ref().and_then(|d| d.subject_mismatch.clone())),
        title: value["content"]["title"].as_str().unwrap_or_default().to_owned(),
        diagnosis,
        spike,
        notes,
        alert_id: value["id"]
            .as_str()
            .filter(|id| id.starts_with(&format!("{}:", kind.as_str())))
            .map(str::to_owned),
    })
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
    fn new_diagnosis_fields_are_read_tolerantly() {
        let message = |diagnosis: &str, extra: &str| {
            format!(
                r#"{{"version":"1.0","source":"custom","metadata":{{"threadId":"t","additionalContext":{{"kind":"incident","diagnosis":{}{extra}}}}}}}"#,
                serde_json::to_string(diagnosis).unwrap()
            )
        };
        let diagnosis = |m: &str| match parse_message(m) {
            Ok(Notice::Alert(a)) => a.diagnosis.clone().unwrap(),
            other => panic!("{other:?}"),
        };
        let d = diagnosis(&message(
            r#"{"owner":"github:acme","trust":"ours","suggested_change":{"statement":1,"operator":null,"key":"Action","add":["sts:TagSession"],"remove":[],"policy":{"Statement":[]}}}"#,
            "",
        ));
        assert_eq!(
            (d.owner.as_deref(), d.trust.as_deref()),
            (Some("github:acme"), Some("ours"))
        );
        let change = d.suggested_change.unwrap();
        assert_eq!(
            (change.statement, change.key.as_str(), change.operator),
            (1, "Action", None)
        );
        // Older producers, and a malformed suggestion: no change, the alert still reads.
        let d = diagnosis(&message(r#"{"cause":"SubjectMismatch"}"#, ""));
        assert_eq!((d.owner, d.trust, d.suggested_change), (None, None, None));
        let d = diagnosis(&message(r#"{"suggested_change":{"statement":"x"}}"#, ""));
        assert_eq!(d.suggested_change, None);
        // The context's members stand in for a diagnosis without them.
        let d = diagnosis(&message(
            "{}",
            r#","owner":"gitlab:g","trust":"foreign","suggested_change":"{\"statement\":0,\"key\":\"k\"}""#,
        ));
        assert_eq!(
            (d.owner.as_deref(), d.trust.as_deref()),
            (Some("gitlab:g"), Some("foreign"))
        );
        assert_eq!(d.suggested_change.map(|c| c.key), Some("k".to_owned()));
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
