//! The SNS alert sink against mocked SDK clients (aws-smithy-mocks): the Publish request
//! and what it makes of errors.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use diagnosis::alert::{Alert, AlertKind, Severity, SpikeSummary};
use diagnosis::ports::AlertSink;
use serde_json::Value;

use common::*;

// ---------------------------------------------------------------------------------------
// SNS
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn sns_publish_sends_the_q_notification_email_text_and_attributes() -> TestResult {
    let (rule, seen) = sns_capture();
    let sink = sns_sink(&[&rule]);
    sink.publish(&alert_of(sample_diagnosis()?)).await?;
    let request = seen.only();

    assert_eq!(request.topic_arn(), Some(TOPIC));
    assert_eq!(request.message_structure(), Some("json"));

    let message: Value = serde_json::from_str(request.message().expect("a message"))?;
    let keys: Vec<&String> = message.as_object().expect("an object").keys().collect();
    assert_eq!(
        keys,
        ["default", "email"],
        "one body for chat/Lambda, one for email"
    );

    // "default" is a string holding the Amazon Q custom notification.
    let q: Value = serde_json::from_str(message["default"].as_str().expect("a string"))?;
    assert_eq!(q["version"], "1.0");
    assert_eq!(q["source"], "custom");
    assert_eq!(q["metadata"]["threadId"], "inc-0001");
    let context = q["metadata"]["additionalContext"]
        .as_object()
        .expect("additionalContext");
    assert!(
        context.values().all(Value::is_string),
        "Amazon Q wants additionalContext as strings: {context:?}"
    );
    let embedded: Value = serde_json::from_str(context["diagnosis"].as_str().expect("diagnosis"))?;
    assert_eq!(embedded["cause"], "SubjectMismatch");
    assert_eq!(context["cause"], "SubjectMismatch");
    assert_eq!(context["account"], ACCOUNT);

    let email = message["email"].as_str().expect("plain text for email");
    assert!(email.starts_with("[HIGH] SubjectMismatch"), "{email}");
    assert!(email.contains("Thread: inc-0001"), "{email}");
    assert!(!email.trim_start().starts_with('{'), "email is not JSON");

    let subject = request.subject().expect("a subject");
    assert!(subject.starts_with("oidc-watch: SubjectMismatch"), "{subject}");
    assert!(
        subject.len() <= 100 && subject.is_ascii() && !subject.contains(['\n', '\r']),
        "{subject:?}"
    );

    let attributes: BTreeMap<String, (String, String)> = request
        .message_attributes()
        .expect("message attributes")
        .iter()
        .map(|(name, value)| {
            (
                name.clone(),
                (
                    value.data_type().to_owned(),
                    value.string_value().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect();
    let string = |v: &str| ("String".to_owned(), v.to_owned());
    assert_eq!(
        attributes,
        BTreeMap::from([
            ("account".to_owned(), string(ACCOUNT)),
            ("cause".to_owned(), string("SubjectMismatch")),
            ("kind".to_owned(), string("incident")),
            ("severity".to_owned(), string("high")),
        ])
    );
    Ok(())
}

#[tokio::test]
async fn sns_subject_of_a_long_non_ascii_title_stays_within_100_ascii_characters() -> TestResult {
    let (rule, seen) = sns_capture();
    let sink = sns_sink(&[&rule]);
    let alert = Alert {
        kind: AlertKind::Spike,
        severity: Severity::Medium,
        thread_id: "spike-1".into(),
        account_id: "-".into(),
        cause: None,
        attempts: 40,
        diagnosis: None,
        spike: Some(SpikeSummary {
            scope: "all".into(),
            window_seconds: 300,
            failures: 40,
            baseline: 1.5,
            // The title names the role carrying most of the burst.
            top_roles: vec![("déploiement\n".repeat(20), 40)],
            top_causes: vec![],
        }),
        notes: Vec::new(),
        changes: Vec::new(),
        digest: None,
    };
    sink.publish(&alert).await?;
    let request = seen.only();
    let subject = request.subject().expect("a subject");
    assert!(subject.len() <= 100, "{} characters: {subject}", subject.len());
    assert!(subject.is_ascii() && !subject.contains('\n'), "{subject:?}");
    assert!(subject.ends_with("..."), "{subject}");
    let attributes = request.message_attributes().expect("attributes");
    assert_eq!(attributes["cause"].string_value(), Some("None"));
    assert_eq!(attributes["kind"].string_value(), Some("spike"));
    Ok(())
}

#[tokio::test]
async fn sns_throttling_is_a_retryable_error() -> TestResult {
    let rule = publish_fails("Throttling", "Rate exceeded");
    // The SDK retries throttling itself (3 attempts, backoff shortened here); the adapter
    // then reports the failure as worth retrying.
    let sink = sns_sink_configured(&[&rule], |c| {
        c.retry_config(
            aws_sdk_sns::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(2)),
        )
    });
    let error = sink
        .publish(&alert_of(sample_diagnosis()?))
        .await
        .expect_err("throttled");
    assert_eq!(error.service, "sns");
    assert!(error.retryable, "{error}");
    assert!(error.message.contains("Rate exceeded"), "{error}");
    assert_eq!(rule.num_calls(), 3, "the SDK's own retries");
    Ok(())
}
