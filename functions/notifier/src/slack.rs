//! Slack over HTTPS (reqwest, rustls): an incoming webhook, or a bot token with
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

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde_json::Value;

use crate::ports::{PostRequest, Posted, Slack, SlackError};
use crate::render::text_only;

pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// A secret string (webhook URL, token): `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How hard one invocation tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests per message, first included.
    pub max_attempts: u32,
    /// Backoff after the first failure; doubles each time, up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// A longer `Retry-After` is not waited for: the invocation fails and is retried.
    pub max_retry_after: Duration,
    /// All waits of one message together stay under this.
    pub max_total_wait: Duration,
    /// One request's timeout.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(4),
            max_retry_after: Duration::from_secs(10),
            max_total_wait: Duration::from_secs(20),
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Webhook { url: Secret },
    Bot { api_url: String, token: Secret },
}

pub struct SlackClient {
    http: reqwest::Client,
    target: Target,
    policy: RetryPolicy,
}

#[derive(Debug, thiserror::Error)]
#[error("HTTP client: {0}")]
pub struct ClientError(String);

impl SlackClient {
    pub fn new(target: Target, policy: RetryPolicy) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("oidc-watch-notifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        Ok(SlackClient { http, target, policy })
    }
}

/// What one response means.
#[derive(Debug, PartialEq)]
enum Verdict {
    Done(Posted),
    /// 429: wait this long, then retry.
    RetryAfter(Option<u64>),
    /// Transient: back off, then retry.
    Backoff(String),
    /// Slack refused the blocks: send the text fallback instead.
    BlocksRefused(String),
    Fail(SlackError),
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

fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Short, printable, bounded: Slack's error bodies go into logs and errors.
fn detail(body: &str) -> String {
    let clean: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.is_empty() {
        "(empty body)".to_owned()
    } else {
        clean
    }
}

/// Incoming webhooks answer `200 ok`, or an error code as plain text with a 4xx.
fn webhook_verdict(status: StatusCode, headers: &HeaderMap, body: &str) -> Verdict {
    let error = body.trim();
    match status {
        StatusCode::TOO_MANY_REQUESTS => Verdict::RetryAfter(retry_after(headers)),
        s if s.is_server_error() => Verdict::Backoff(format!("HTTP {}: {}", s.as_u16(), detail(error))),
        s if s.is_success() => Verdict::Done(Posted::default()),
        _ if BLOCKS_REFUSED.contains(&error) || error == "invalid_payload" => {
            Verdict::BlocksRefused(error.to_owned())
        }
        s => Verdict::Fail(SlackError::Rejected {
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
            return Verdict::Fail(SlackError::Rejected {
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
        Verdict::BlocksRefused(error.to_owned())
    } else {
        Verdict::Fail(SlackError::Rejected { error: detail(error) })
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

    /// One request, classified.
    async fn attempt(&self, body: &Value) -> Result<Verdict, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        let request = match &self.target {
            Target::Webhook { url } => self.http.post(url.expose()),
            Target::Bot { api_url, token } => self
                .http
                .post(format!("{}/chat.postMessage", api_url.trim_end_matches('/')))
                .header(AUTHORIZATION, format!("Bearer {}", token.expose())),
        };
        let response = request
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(bytes)
            .send()
            .await
            // Without the URL: a webhook URL is a secret.
            .map_err(|e| {
                let e = e.without_url();
                format!("transport: {e}")
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Ok(match self.target {
            Target::Webhook { .. } => webhook_verdict(status, &headers, &text),
            Target::Bot { .. } => api_verdict(status, &headers, &text),
        })
    }

    /// Posts `body`, retrying within the policy's bounds.
    async fn send(&self, body: &Value) -> Result<Verdict, SlackError> {
        let policy = &self.policy;
        let mut waited = Duration::ZERO;
        let mut backoff = policy.base_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = attempts >= policy.max_attempts.max(1);
            let wait = match self.attempt(body).await {
                Ok(Verdict::RetryAfter(seconds)) => {
                    let wait = Duration::from_secs(seconds.unwrap_or(1));
                    tracing::warn!(retry_after = ?seconds, attempts, "Slack rate limit (429)");
                    if last || wait > policy.max_retry_after || waited + wait > policy.max_total_wait {
                        return Err(SlackError::RateLimited {
                            retry_after: seconds,
                            attempts,
                        });
                    }
                    wait
                }
                Ok(Verdict::Backoff(detail)) | Err(detail) => {
                    tracing::warn!(detail = %detail, attempts, "Slack post failed, transient");
                    if last || waited + backoff > policy.max_total_wait {
                        return Err(SlackError::Unavailable { detail, attempts });
                    }
                    let wait = backoff;
                    backoff = (backoff * 2).min(policy.max_backoff);
                    wait
                }
                Ok(other) => return Ok(other),
            };
            tokio::time::sleep(wait).await;
            waited += wait;
        }
    }
}

impl Slack for SlackClient {
    fn threads(&self) -> bool {
        matches!(self.target, Target::Bot { .. })
    }

    async fn post(&self, request: PostRequest<'_>) -> Result<Posted, SlackError> {
        let body = self.body(&request, request.payload);
        match self.send(&body).await? {
            Verdict::Done(posted) => Ok(posted),
            Verdict::BlocksRefused(error) => {
                tracing::warn!(error = %error, "Slack refused the blocks; posting the text fallback");
                let fallback = self.body(&request, &text_only(request.payload));
                match self.send(&fallback).await? {
                    Verdict::Done(posted) => Ok(posted),
                    Verdict::Fail(e) => Err(e),
                    other => Err(SlackError::Rejected {
                        error: format!("{error}, then {other:?}"),
                    }),
                }
            }
            Verdict::Fail(e) => Err(e),
            other => Err(SlackError::Unavailable {
                detail: format!("{other:?}"),
                attempts: self.policy.max_attempts,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(retry: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(r) = retry {
            h.insert(RETRY_AFTER, r.parse().unwrap());
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
            Verdict::BlocksRefused("invalid_blocks".into())
        );
        assert_eq!(
            webhook_verdict(StatusCode::NOT_FOUND, &headers(None), "no_service"),
            Verdict::Fail(SlackError::Rejected {
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
            Verdict::Fail(SlackError::Rejected {
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
