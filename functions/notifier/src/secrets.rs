//! The channel credential (a Slack webhook URL or bot token, a Teams workflow URL) out
//! of the value read at init from Secrets Manager or an SSM
//! SecureString parameter (`oidc_watch_aws::secrets`); never from a plain environment
//! variable or the template.
//!
//! The stored value is either the bare webhook URL / token, or a JSON object with one of
//! `webhook_url` / `url` (webhook mode) or `bot_token` / `token` (bot mode), the shape
//! the Secrets Manager console's key/value editor produces.

use serde_json::Value;

use crate::config::Mode;
use crate::http::Secret;

pub use oidc_watch_aws::secrets::SecretError;

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
