//! Alerts to the SNS topic: the Amazon Q custom notification for chat and Lambda
//! subscribers, plain text for email, and attributes for filter policies.

use aws_sdk_sns::types::MessageAttributeValue;
use diagnosis::alert::{message_attributes, Alert};
use diagnosis::ports::{AlertSink, PortError};

pub struct SnsAlertSink {
    pub client: aws_sdk_sns::Client,
    pub topic_arn: String,
}

/// What `Publish` is called with; built by a pure function so it can be asserted.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishRequest {
    pub message: String,
    pub subject: String,
    pub attributes: Vec<(&'static str, String)>,
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

pub fn to_publish(alert: &Alert) -> PublishRequest {
    let notification = alert.to_q_notification();
    let title = notification["content"]["title"]
        .as_str()
        .unwrap_or("oidc-watch alert")
        .to_owned();
    let default = serde_json::to_string(&notification).unwrap_or_default();
    // MessageStructure=json: "default" goes to every protocol without its own key.
    let message = serde_json::json!({"default": default, "email": alert.to_plain_text()}).to_string();
    PublishRequest {
        message,
        subject: sns_subject(&format!("oidc-watch: {title}")),
        attributes: message_attributes(alert).into_iter().collect(),
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
        publish
            .send()
            .await
            .map(|_| ())
            .map_err(|e| PortError::new("sns", format!("Publish: {}", crate::describe(&e)), true))
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
}
