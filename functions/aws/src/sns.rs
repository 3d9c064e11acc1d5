//! Alerts to the SNS topic: the Amazon Q custom notification for chat and Lambda
//! subscribers, plain text for email, and attributes for filter policies.
//!
//! A diagnosis carries text a stranger chose (subjects, role names, claims) and policy
//! text, so the message is bounded under SNS's limit ([`MAX_PUBLISH_BYTES`] for message,
//! subject and attributes together): detail goes first (the findings, failed conditions and
//! suggested change of the embedded diagnosis), then long strings are shortened, step by
//! step; the title stays, and the message is always valid JSON.

use aws_sdk_sns::config::http::HttpResponse;
use aws_sdk_sns::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use diagnosis::alert::{message_attributes, Alert};
use diagnosis::ports::{AlertSink, PortError};
use serde_json::{json, Value};

/// The SNS operations this sink calls.
pub const SDK_OPERATIONS: &[&str] = &["Publish"];

pub struct SnsAlertSink {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

/// SNS's limit on one published message: the message, subject and attributes.
pub const MAX_PUBLISH_BYTES: usize = 262_144;
/// What [`to_publish`] stays within, leaving a margin under [`MAX_PUBLISH_BYTES`].
pub const PUBLISH_BUDGET: usize = 256_000;

/// Keys of the embedded diagnosis dropped first when the message is too large.
const DETAIL_KEYS: [&str; 3] = ["findings", "failed_conditions", "suggested_change"];
/// The longest strings kept at each step of trimming.
const STRING_LIMITS: [usize; 5] = [16_384, 4_096, 1_024, 256, 64];
/// The title (and email, thread) is shortened no further than this.
const TITLE_LIMIT: usize = 512;
/// Elements of an array and entries of a nested object kept once trimming.
const MAX_ITEMS: usize = 20;
/// An attribute value is for filter policies: an account ID, a cause.
const ATTRIBUTE_VALUE_LIMIT: usize = 256;
const TRUNCATED: &str = " [truncated]";

/// What `Publish` is called with; built by a pure function so it can be asserted.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishRequest {
    pub message: String,
    pub subject: String,
    pub attributes: Vec<(&'static str, String)>,
}

impl PublishRequest {
    /// What SNS counts against [`MAX_PUBLISH_BYTES`]: message, subject, and each
    /// attribute's name, data type and value.
    pub fn size(&self) -> usize {
        self.message.len()
            + self.subject.len()
            + self
                .attributes
                .iter()
                .map(|(name, value)| name.len() + "String".len() + value.len())
                .sum::<usize>()
    }
}

/// SNS subjects are at most 100 printable ASCII characters on one line.
pub fn sns_subject(title: &str) -> String {
    let clean: String = title
        .chars()
        .map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' })
        .collect();
    match clean.char_indices().nth(100) {
        Some((cut, _)) => format!("{}...", &clean[..cut - 3]),
        None => clean,
    }
}

/// `text` cut to at most `limit` bytes (on a character boundary), marked when cut.
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut cut = limit.saturating_sub(TRUNCATED.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{TRUNCATED}", &text[..cut])
}

/// Every string in `value` cut to `limit`, arrays and nested objects to [`MAX_ITEMS`].
fn shrink(value: &mut Value, limit: usize, nested: bool) {
    match value {
        Value::String(text) if text.len() > limit => *text = truncate(text, limit),
        Value::Array(items) => {
            items.truncate(MAX_ITEMS);
            items.iter_mut().for_each(|v| shrink(v, limit, true));
        }
        Value::Object(map) => {
            if nested && map.len() > MAX_ITEMS {
                let extra: Vec<String> = map.keys().skip(MAX_ITEMS).cloned().collect();
                for key in extra {
                    map.remove(&key);
                }
            }
            map.values_mut().for_each(|v| shrink(v, limit, true));
        }
        _ => {}
    }
}

/// The notification with its detail dropped and its strings cut to `limit`. The embedded
/// diagnosis and spike (JSON in a string) are trimmed as JSON, so they still parse.
fn trimmed(notification: &Value, limit: usize) -> Value {
    let mut q = notification.clone();
    let context = q.pointer_mut("/metadata/additionalContext").map(Value::take);
    let title_limit = limit.max(TITLE_LIMIT);
    let mut keep = Vec::new();
    for pointer in ["/content/title", "/metadata/summary", "/id", "/metadata/threadId"] {
        if let Some(Value::String(text)) = q.pointer_mut(pointer).map(Value::take) {
            keep.push((pointer, truncate(&text, title_limit)));
        }
    }
    shrink(&mut q, limit, false);
    for (pointer, text) in keep {
        if let Some(slot) = q.pointer_mut(pointer) {
            *slot = Value::String(text);
        }
    }
    if let (Some(Value::Object(mut context)), Some(slot)) =
        (context, q.pointer_mut("/metadata/additionalContext"))
    {
        for (key, value) in context.iter_mut() {
            let Value::String(text) = value else { continue };
            let embedded = match key.as_str() {
                "diagnosis" | "spike" => serde_json::from_str::<Value>(text).ok(),
                _ => None,
            };
            *value = match embedded {
                Some(mut inner) => {
                    if let Some(fields) = inner.as_object_mut().filter(|_| key == "diagnosis") {
                        for detail in DETAIL_KEYS {
                            fields.remove(detail);
                        }
                        fields.insert("truncated".into(), Value::Bool(true));
                    }
                    shrink(&mut inner, limit, false);
                    Value::String(inner.to_string())
                }
                None => Value::String(truncate(text, limit)),
            };
        }
        // Amazon Q wants every additionalContext value a string.
        context.insert("truncated".into(), Value::String("true".into()));
        *slot = Value::Object(context);
    }
    q
}

/// The last resort: the title and thread, and where to look for the rest.
fn minimal(alert: &Alert, notification: &Value) -> Value {
    let title = truncate(
        notification["content"]["title"]
            .as_str()
            .unwrap_or("oidc-watch alert"),
        TITLE_LIMIT,
    );
    let thread = truncate(&alert.thread_id, TITLE_LIMIT);
    json!({
        "version": "1.0",
        "source": "custom",
        "id": thread,
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": "The alert was too large to send in full; the oidc-monitor logs have the diagnosis.",
            "nextSteps": [],
            "keywords": [alert.severity.as_str(), alert.kind.as_str()],
        },
        "metadata": {
            "threadId": thread,
            "summary": title,
            "eventType": format!("oidc-watch.{}", alert.kind.as_str()),
            "relatedResources": [],
            "additionalContext": {
                "kind": alert.kind.as_str(),
                "severity": alert.severity.as_str(),
                "truncated": "true",
            },
        }
    })
}

fn envelope(notification: &Value, email: &str) -> String {
    let default = serde_json::to_string(notification).unwrap_or_default();
    // MessageStructure=json: "default" goes to every protocol without its own key.
    json!({"default": default, "email": email}).to_string()
}

/// The `Publish` request for `alert`, within [`PUBLISH_BUDGET`].
pub fn to_publish(alert: &Alert) -> PublishRequest {
    let notification = alert.to_q_notification();
    let title = notification["content"]["title"]
        .as_str()
        .unwrap_or("oidc-watch alert")
        .to_owned();
    let email = alert.to_plain_text();
    let mut request = PublishRequest {
        message: envelope(&notification, &email),
        subject: sns_subject(&format!("oidc-watch: {title}")),
        attributes: message_attributes(alert)
            .into_iter()
            .map(|(name, value)| (name, truncate(&value, ATTRIBUTE_VALUE_LIMIT)))
            .collect(),
    };
    for limit in STRING_LIMITS {
        if request.size() <= PUBLISH_BUDGET {
            return request;
        }
        request.message = envelope(
            &trimmed(&notification, limit),
            &truncate(&email, limit.max(TITLE_LIMIT)),
        );
    }
    if request.size() > PUBLISH_BUDGET {
        request.message = envelope(&minimal(alert, &notification), &truncate(&email, TITLE_LIMIT));
    }
    request
}

/// Error codes of a `Publish` that will fail again however often it is retried.
const CLIENT_ERROR_CODES: &[&str] = &[
    "InvalidParameter",
    "InvalidParameterValue",
    "ParameterValueInvalid",
    "ValidationException",
    "NotFound",
    "AuthorizationError",
    "AccessDenied",
    "KMSDisabled",
    "KMSInvalidState",
    "KMSNotFound",
    "KMSAccessDenied",
    "KMSOptInRequired",
    "InvalidSecurity",
    "EndpointDisabled",
    "PlatformApplicationDisabled",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
];

/// Error codes worth retrying whatever the HTTP status says.
const RETRYABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "Throttled",
    "KMSThrottling",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "RequestTimeout",
];

/// Worth retrying: throttling, a 5xx, a timeout or a transport failure; a client error
/// (a bad parameter, a message too long, a missing topic, denied, a KMS key problem) is not.
pub fn publish_error_is_retryable(error: &SdkError<PublishError, HttpResponse>) -> bool {
    match error {
        SdkError::ServiceError(service) => {
            // The modeled errors, whatever code their metadata carries.
            match service.err() {
                PublishError::KmsThrottlingException(_) | PublishError::InternalErrorException(_) => {
                    return true
                }
                PublishError::InvalidParameterException(_)
                | PublishError::InvalidParameterValueException(_)
                | PublishError::ValidationException(_)
                | PublishError::NotFoundException(_)
                | PublishError::AuthorizationErrorException(_)
                | PublishError::KmsDisabledException(_)
                | PublishError::KmsInvalidStateException(_)
                | PublishError::KmsNotFoundException(_)
                | PublishError::KmsAccessDeniedException(_)
                | PublishError::KmsOptInRequired(_)
                | PublishError::InvalidSecurityException(_)
                | PublishError::EndpointDisabledException(_)
                | PublishError::PlatformApplicationDisabledException(_) => return false,
                _ => {}
            }
            let code = service.err().code().unwrap_or("");
            if RETRYABLE_CODES.contains(&code) {
                return true;
            }
            if CLIENT_ERROR_CODES.contains(&code) {
                return false;
            }
            let status = service.raw().status();
            status.is_server_error() || status.as_u16() == 429 || code.is_empty()
        }
        SdkError::ConstructionFailure(_) => false,
        // Timeouts, dispatch (transport) failures, unreadable responses.
        _ => true,
    }
}

impl AlertSink for SnsAlertSink {
    async fn publish(&self, alert: &Alert) -> Result<(), PortError> {
        let request = to_publish(alert);
        let mut publish = self
            .client
            .publish()
            .topic_arn(&self.topic_arn)
            .message_structure("json")
            .message(request.message)
            .subject(request.subject);
        for (name, value) in request.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| PortError::new("sns", e.to_string(), false))?;
            publish = publish.message_attributes(name, attribute);
        }
        publish.send().await.map(|_| ()).map_err(|e| {
            PortError::new(
                "sns",
                format!("Publish: {}", crate::describe(&e)),
                publish_error_is_retryable(&e),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_one_bounded_ascii_line() {
        assert_eq!(sns_subject("a\nb"), "a?b");
        let long = sns_subject(&"é".repeat(300));
        assert!(long.len() <= 100 && long.is_ascii(), "{long}");
    }

    #[test]
    fn truncation_keeps_characters_whole_and_says_so() {
        assert_eq!(truncate("short", 10), "short");
        let cut = truncate(&"é".repeat(100), 41);
        assert!(cut.len() <= 41 && cut.ends_with(TRUNCATED), "{cut}");
        let mut value = json!({"a": ["x".repeat(100), 1], "b": {"c": "y".repeat(100)}});
        shrink(&mut value, 20, false);
        assert!(value["a"][0].as_str().unwrap().len() <= 20);
        assert!(value["b"]["c"].as_str().unwrap().len() <= 20);
        assert_eq!(value["a"][1], 1);
    }
}
