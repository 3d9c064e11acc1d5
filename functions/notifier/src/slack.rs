//! Slack over HTTPS ([`crate::http`]): an incoming webhook, or a bot token with
//! `chat.postMessage` (threads). The webhook URL and the token come from Secrets Manager
//! or SSM at init ([`crate::secrets`]) and never appear in logs or errors.
//!
//! Failure handling, bounded in attempts and in total wait:
//! - `429`: wait `Retry-After` (default 1 s) when it fits the bounds, else give up with a
//!   retryable error;
//! - `5xx`, transport errors and Slack's own transient errors (`internal_error`,
//!   `fatal_error`, `service_unavailable`, `request_timeout`, `ratelimited`): back off
//!   exponentially and retry;
//! - blocks Slack refuses (`invalid_blocks`, `msg_too_long`, …): post the text fallback
//!   once instead;
//! - anything else (`invalid_auth`, `channel_not_found`, …) is a rejection: no retry here.
//!
//! A retryable error makes the invocation fail, so Lambda retries it and its DLQ keeps
//! what still fails; the handler's delivery claim makes sure a retry does not post twice.

use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::StatusCode;
use serde_json::Value;

use crate::http::{detail, retry_after, ClientError, Poster, RetryPolicy, Secret, Verdict};
use crate::notice::Notice;
use crate::ports::{Breakdown, Channel, ChannelError, PostRequest, Posted};
use crate::render::text_only;

pub const DEFAULT_API_URL: &str = "https://slack.com/api";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Webhook { url: Secret },
    Bot { api_url: String, token: Secret },
}

pub struct SlackClient {
    poster: Poster,
    target: Target,
}

impl SlackClient {
    pub fn new(target: Target, policy: RetryPolicy) -> Result<Self, ClientError> {
        Ok(SlackClient {
            poster: Poster::new("Slack", policy)?,
            target,
        })
    }
}

/// Slack errors that a later attempt may not meet.
const TRANSIENT: [&str; 5] = [
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
];

/// Errors about the message's blocks or size: the text alone may still go through.
const BLOCKS_REFUSED: [&str; 5] = [
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "invalid_attachments",
    "too_many_attachments",
];

/// Incoming webhooks answer `200 ok`, or an error code as plain text with a 4xx.
fn webhook_verdict(status: StatusCode, headers: &HeaderMap, body: &str) -> Verdict {
    let error = body.trim();
    match status {
        StatusCode::TOO_MANY_REQUESTS => Verdict::RetryAfter(retry_after(headers)),
        s if s.is_server_error() => Verdict::Backoff(format!("HTTP {}: {}", s.as_u16(), detail(error))),
        s if s.is_success() => Verdict::Done(Posted::default()),
        _ if BLOCKS_REFUSED.contains(&error) || error == "invalid_payload" => {
            Verdict::Refused(error.to_owned())
        }
        s => Verdict::Fail(ChannelError::Rejected {
            error: format!("HTTP {}: {}", s.as_u16(), detail(error)),
        }),
    }
}

/// The Web API answers `{"ok": true, "channel", "ts", …}` or `{"ok": false, "error"}`.
fn api_verdict(status: StatusCode, headers: &HeaderMap, body: &str) -> Verdict {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Verdict::RetryAfter(retry_after(headers));
    }
    if status.is_server_error() {
        return Verdict::Backoff(format!("HTTP {}: {}", status.as_u16(), detail(body)));
    }
    let parsed: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(_) => {
            return Verdict::Fail(ChannelError::Rejected {
                error: format!("HTTP {}: not JSON: {}", status.as_u16(), detail(body)),
            })
        }
    };
    if parsed["ok"].as_bool() == Some(true) {
        return Verdict::Done(Posted {
            channel: parsed["channel"].as_str().map(str::to_owned),
            ts: parsed["ts"].as_str().map(str::to_owned),
        });
    }
    let error = parsed["error"].as_str().unwrap_or("unknown_error");
    if error == "ratelimited" {
        Verdict::RetryAfter(retry_after(headers))
    } else if TRANSIENT.contains(&error) {
        Verdict::Backoff(error.to_owned())
    } else if BLOCKS_REFUSED.contains(&error) {
        Verdict::Refused(error.to_owned())
    } else {
        Verdict::Fail(ChannelError::Rejected { error: detail(error) })
    }
}

impl SlackClient {
    fn body(&self, request: &PostRequest<'_>, payload: &Value) -> Value {
        let mut body = payload.clone();
        if let (Target::Bot { .. }, Some(object)) = (&self.target, body.as_object_mut()) {
            if let Some(channel) = request.channel {
                object.insert("channel".to_owned(), Value::String(channel.to_owned()));
            }
            if let Some(ts) = request.thread_ts {
                object.insert("thread_ts".to_owned(), Value::String(ts.to_owned()));
                if request.broadcast {
                    object.insert("reply_broadcast".to_owned(), Value::Bool(true));
                }
            }
        }
        body
    }

    /// Posts `body`, retrying within the policy's bounds.
    async fn send(&self, body: Value) -> Result<Verdict, ChannelError> {
        let request = || match &self.target {
            Target::Webhook { url } => self.poster.request(url.expose(), &body),
            Target::Bot { api_url, token } => self
                .poster
                .request(
                    &format!("{}/chat.postMessage", api_url.trim_end_matches('/')),
                    &body,
                )
                .map(|r| r.header(AUTHORIZATION, format!("Bearer {}", token.expose()))),
        };
        let classify = |status: StatusCode, headers: &HeaderMap, text: &str| match self.target {
            Target::Webhook { .. } => webhook_verdict(status, headers, text),
            Target::Bot { .. } => api_verdict(status, headers, text),
        };
        self.poster.send(request, classify).await
    }
}

impl Channel for SlackClient {
    fn name(&self) -> &'static str {
        "Slack"
    }

    fn threads(&self) -> bool {
        matches!(self.target, Target::Bot { .. })
    }

    fn render(&self, notice: &Notice, breakdown: Option<&Breakdown>) -> Value {
        crate::render::render(notice, breakdown).payload()
    }

    async fn post(&self, request: PostRequest<'_>) -> Result<Posted, ChannelError> {
        self.poster
            .deliver(request.payload, text_only, |payload| {
                self.send(self.body(&request, &payload))
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(r) = retry {
            h.insert(reqwest::header::RETRY_AFTER, r.parse().unwrap());
        }
        h
    }

    #[test]
    fn webhook_answers() {
        let ok = StatusCode::OK;
        assert_eq!(
            webhook_verdict(ok, &headers(None), "ok"),
            Verdict::Done(Posted::default())
        );
        assert_eq!(
            webhook_verdict(StatusCode::TOO_MANY_REQUESTS, &headers(Some("3")), ""),
            Verdict::RetryAfter(Some(3))
        );
        assert!(matches!(
            webhook_verdict(StatusCode::BAD_GATEWAY, &headers(None), "<html>"),
            Verdict::Backoff(_)
        ));
        assert_eq!(
            webhook_verdict(StatusCode::BAD_REQUEST, &headers(None), "invalid_blocks"),
            Verdict::Refused("invalid_blocks".into())
        );
        assert_eq!(
            webhook_verdict(StatusCode::NOT_FOUND, &headers(None), "no_service"),
            Verdict::Fail(ChannelError::Rejected {
                error: "HTTP 404: no_service".into()
            })
        );
    }

    #[test]
    fn api_answers() {
        let ok = StatusCode::OK;
        assert_eq!(
            api_verdict(ok, &headers(None), r#"{"ok":true,"channel":"C1","ts":"1.2"}"#),
            Verdict::Done(Posted {
                channel: Some("C1".into()),
                ts: Some("1.2".into())
            })
        );
        assert_eq!(
            api_verdict(ok, &headers(None), r#"{"ok":false,"error":"internal_error"}"#),
            Verdict::Backoff("internal_error".into())
        );
        assert_eq!(
            api_verdict(ok, &headers(None), r#"{"ok":false,"error":"invalid_auth"}"#),
            Verdict::Fail(ChannelError::Rejected {
                error: "invalid_auth".into()
            })
        );
        assert_eq!(
            api_verdict(ok, &headers(Some("2")), r#"{"ok":false,"error":"ratelimited"}"#),
            Verdict::RetryAfter(Some(2))
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let target = Target::Bot {
            api_url: DEFAULT_API_URL.into(),
            token: Secret::new("xoxb-123"),
        };
        assert!(!format!("{target:?}").contains("xoxb"));
    }
}
