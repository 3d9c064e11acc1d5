//! The Slack credential, read once at init from Secrets Manager or from an SSM
//! SecureString parameter; never from a plain environment variable or the template.
//!
//! The stored value is either the bare webhook URL / token, or a JSON object with one of
//! `webhook_url` / `url` (webhook mode) or `bot_token` / `token` (bot mode), the shape
//! the Secrets Manager console's key/value editor produces.

use aws_sdk_secretsmanager::error::ProvideErrorMetadata as _;
use aws_sdk_ssm::types::ParameterType;
use serde_json::Value;

use crate::config::Mode;
use crate::slack::Secret;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("Secrets Manager GetSecretValue {id}: {message}")]
    SecretsManager { id: String, message: String },
    #[error("SSM GetParameter {name}: {message}")]
    Parameter { name: String, message: String },
    #[error("the Slack credential is unusable: {0}")]
    Invalid(String),
}

/// `SecretString` of `secret_id`.
pub async fn from_secrets_manager(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
) -> Result<String, SecretError> {
    let error = |message: String| SecretError::SecretsManager {
        id: secret_id.to_owned(),
        message,
    };
    let output = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            error(format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or("request failed")
            ))
        })?;
    output
        .secret_string()
        .map(str::to_owned)
        .ok_or_else(|| error("the secret has no SecretString (binary secrets are not supported)".to_owned()))
}

/// The decrypted value of the SecureString parameter `name`; any other type is refused.
pub async fn from_parameter(client: &aws_sdk_ssm::Client, name: &str) -> Result<String, SecretError> {
    let error = |message: String| SecretError::Parameter {
        name: name.to_owned(),
        message,
    };
    let output = client
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            error(format!(
                "{}: {}",
                aws_sdk_ssm::error::ProvideErrorMetadata::code(&e).unwrap_or("error"),
                aws_sdk_ssm::error::ProvideErrorMetadata::message(&e).unwrap_or("request failed")
            ))
        })?;
    let parameter = output
        .parameter()
        .ok_or_else(|| error("no parameter returned".to_owned()))?;
    if parameter.r#type() != Some(&ParameterType::SecureString) {
        return Err(error(format!(
            "is a {} parameter; store the Slack credential as a SecureString",
            parameter.r#type().map_or("typeless", ParameterType::as_str)
        )));
    }
    parameter
        .value()
        .map(str::to_owned)
        .ok_or_else(|| error("the parameter has no value".to_owned()))
}

fn is_loopback_http(url: &str) -> bool {
    [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://localhost:",
        "http://localhost/",
        "http://[::1]:",
    ]
    .iter()
    .any(|p| url.starts_with(p))
}

/// A base or webhook URL Slack can be reached at: HTTPS, or plain HTTP on loopback (the
/// local stand-in the tests use).
pub fn is_acceptable_url(url: &str) -> bool {
    (url.starts_with("https://") && url.len() > "https://".len()) || is_loopback_http(url)
}

/// The credential for `mode` out of the stored value.
pub fn extract(stored: &str, mode: Mode) -> Result<Secret, SecretError> {
    let keys: &[&str] = match mode {
        Mode::Webhook => &["webhook_url", "url"],
        Mode::Bot => &["bot_token", "token"],
    };
    let stored = stored.trim();
    let value = match serde_json::from_str::<Value>(stored) {
        Ok(Value::Object(object)) => keys
            .iter()
            .find_map(|k| object.get(*k).and_then(Value::as_str))
            .map(|v| v.trim().to_owned())
            .ok_or_else(|| SecretError::Invalid(format!("the JSON secret has none of the keys {keys:?}")))?,
        _ => stored.to_owned(),
    };
    if value.is_empty() || value.chars().any(char::is_whitespace) {
        return Err(SecretError::Invalid("empty, or contains whitespace".to_owned()));
    }
    match mode {
        Mode::Webhook if !is_acceptable_url(&value) => Err(SecretError::Invalid(
            "the webhook URL must start with https://".to_owned(),
        )),
        Mode::Bot if !value.starts_with("xox") => Err(SecretError::Invalid(
            "a bot token starts with xoxb- (or xoxp-)".to_owned(),
        )),
        _ => Ok(Secret::new(value)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_bare_and_json_values() {
        let url = "https://hooks.slack.com/services/T0/B0/x";
        assert_eq!(extract(url, Mode::Webhook).unwrap().expose(), url);
        assert_eq!(
            extract(&format!("{{\"webhook_url\":\"{url}\"}}"), Mode::Webhook)
                .unwrap()
                .expose(),
            url
        );
        assert_eq!(
            extract("{\"token\":\"xoxb-1\"}", Mode::Bot).unwrap().expose(),
            "xoxb-1"
        );
        assert_eq!(extract(" xoxb-2\n", Mode::Bot).unwrap().expose(), "xoxb-2");
    }

    #[test]
    fn refuses_what_cannot_be_right() {
        assert!(extract("http://hooks.slack.com/x", Mode::Webhook).is_err());
        assert!(extract("http://127.0.0.1:9/hook", Mode::Webhook).is_ok());
        assert!(extract("{\"other\":\"x\"}", Mode::Bot).is_err());
        assert!(extract("not-a-token", Mode::Bot).is_err());
        assert!(extract("", Mode::Bot).is_err());
    }
}
