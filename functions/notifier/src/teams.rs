//! Microsoft Teams through a Workflows incoming webhook ("When a Teams webhook request is
//! received"): one Adaptive Card per alert ([`crate::adaptive_card`]), posted to the URL
//! the workflow gives, which is read from Secrets Manager or SSM at init and never logged.
//!
//! The webhook answers `202 Accepted` (or `200`) with no body: a post has no id, so there
//! are no threads. `429` is honoured within the retry bounds of [`crate::http`]; `5xx` and
//! transport errors back off; a `400` or `413` refusing the card is retried once with the
//! card's title alone; any other `4xx` (a deleted or disabled workflow) is a rejection.

use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::http::{detail, retry_after, ClientError, Poster, RetryPolicy, Secret, Verdict};
use crate::notice::Notice;
use crate::ports::{Breakdown, Channel, ChannelError, PostRequest, Posted};

pub struct TeamsClient {
    poster: Poster,
    url: Secret,
}

impl TeamsClient {
    pub fn new(url: Secret, policy: RetryPolicy) -> Result<Self, ClientError> {
        Ok(TeamsClient {
            poster: Poster::new("Teams", policy)?,
            url,
        })
    }
}

/// What a Workflows webhook's answer means.
fn verdict(status: StatusCode, headers: &HeaderMap, body: &str) -> Verdict {
    match status {
        StatusCode::TOO_MANY_REQUESTS => Verdict::RetryAfter(retry_after(headers)),
        s if s.is_server_error() => Verdict::Backoff(format!("HTTP {}: {}", s.as_u16(), detail(body))),
        s if s.is_success() => Verdict::Done(Posted::default()),
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE => {
            Verdict::Refused(format!("HTTP {}: {}", status.as_u16(), detail(body)))
        }
        s => Verdict::Fail(ChannelError::Rejected {
            error: format!("HTTP {}: {}", s.as_u16(), detail(body)),
        }),
    }
}

/// The card with its first block (the title) only: what is sent when Teams refuses the card.
pub fn title_only(payload: &Value) -> Value {
    let mut payload = payload.clone();
    if let Some(body) = payload
        .pointer_mut("/attachments/0/content/body")
        .and_then(Value::as_array_mut)
    {
        body.truncate(1);
        body.push(json!({"type": "TextBlock", "text": "The full alert did not fit Teams: see the email or `oidc-watch diagnose`.", "wrap": true}));
    }
    if let Some(content) = payload
        .pointer_mut("/attachments/0/content")
        .and_then(Value::as_object_mut)
    {
        content.remove("actions");
    }
    payload
}

impl Channel for TeamsClient {
    fn name(&self) -> &'static str {
        "Teams"
    }

    fn threads(&self) -> bool {
        false
    }

    fn render(&self, notice: &Notice, breakdown: Option<&Breakdown>) -> Value {
        crate::adaptive_card::render(notice, breakdown)
    }

    async fn post(&self, request: PostRequest<'_>) -> Result<Posted, ChannelError> {
        self.poster
            .deliver(request.payload, title_only, |payload| {
                self.poster
                    .send(move || self.poster.request(self.url.expose(), &payload), verdict)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_answers() {
        let none = HeaderMap::new();
        assert_eq!(
            verdict(StatusCode::ACCEPTED, &none, ""),
            Verdict::Done(Posted::default())
        );
        let mut retry = HeaderMap::new();
        retry.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(
            verdict(StatusCode::TOO_MANY_REQUESTS, &retry, ""),
            Verdict::RetryAfter(Some(2))
        );
        assert!(matches!(
            verdict(StatusCode::BAD_GATEWAY, &none, ""),
            Verdict::Backoff(_)
        ));
        assert!(matches!(
            verdict(StatusCode::PAYLOAD_TOO_LARGE, &none, ""),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            verdict(StatusCode::NOT_FOUND, &none, "workflow disabled"),
            Verdict::Fail(ChannelError::Rejected { .. })
        ));
    }

    #[test]
    fn secrets_do_not_print() {
        assert!(!format!(
            "{:?}",
            Secret::new("https://prod.example/workflows/abc?sig=s3cret")
        )
        .contains("s3cret"));
    }
}
