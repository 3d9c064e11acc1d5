//! Posting to a chat service over HTTPS (reqwest, rustls), bounded in attempts and in
//! total wait, for every channel adapter:
//! - `429`: wait `Retry-After` (default 1 s) when it fits the bounds, else give up with a
//!   retryable error;
//! - `5xx`, transport errors and a service's own transient answers: back off
//!   exponentially and retry;
//! - anything the adapter calls final is returned at once, for it to act on (a refused
//!   payload it can send in a simpler form, a rejection).
//!
//! A retryable error makes the invocation fail, so Lambda retries it and its DLQ keeps
//! what still fails; the handler's delivery claim makes sure a retry does not post twice.
//! URLs never appear in errors: a webhook URL is a credential.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

use crate::ports::{ChannelError, Posted};

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

/// What one response means.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    Done(Posted),
    /// 429: wait this long, then retry.
    RetryAfter(Option<u64>),
    /// Transient: back off, then retry.
    Backoff(String),
    /// The service refused the payload's form (blocks, card): a simpler one may go.
    Refused(String),
    Fail(ChannelError),
}

#[derive(Debug, thiserror::Error)]
#[error("HTTP client: {0}")]
pub struct ClientError(String);

pub fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Short, printable, bounded: error bodies go into logs and errors.
pub fn detail(body: &str) -> String {
    let clean: String = body.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.is_empty() {
        "(empty body)".to_owned()
    } else {
        clean
    }
}

/// One client and retry policy per adapter, built at init.
pub struct Poster {
    http: reqwest::Client,
    pub policy: RetryPolicy,
    /// For logs: "Slack", "Teams".
    service: &'static str,
}

impl Poster {
    pub fn new(service: &'static str, policy: RetryPolicy) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("oidc-watch-notifier/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        Ok(Poster {
            http,
            policy,
            service,
        })
    }

    /// A POST of `body` as JSON to `url`, for the adapter to add headers to.
    pub fn request(&self, url: &str, body: &Value) -> Result<RequestBuilder, String> {
        let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
        Ok(self
            .http
            .post(url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(bytes))
    }

    async fn attempt(
        &self,
        request: &impl Fn() -> Result<RequestBuilder, String>,
        classify: &impl Fn(StatusCode, &HeaderMap, &str) -> Verdict,
    ) -> Result<Verdict, String> {
        let response = request()?
            .send()
            .await
            .map_err(|e| format!("transport: {}", e.without_url()))?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        Ok(classify(status, &headers, &text))
    }

    /// Posts `payload` through `send`; when the service refuses its form (blocks, a card),
    /// posts `simpler(payload)` once instead.
    pub async fn deliver<Fut>(
        &self,
        payload: &Value,
        simpler: impl FnOnce(&Value) -> Value,
        send: impl Fn(Value) -> Fut,
    ) -> Result<Posted, ChannelError>
    where
        Fut: std::future::Future<Output = Result<Verdict, ChannelError>>,
    {
        match send(payload.clone()).await? {
            Verdict::Done(posted) => Ok(posted),
            Verdict::Refused(error) => {
                tracing::warn!(service = self.service, error = %error, "the message's form was refused; posting its simpler form");
                match send(simpler(payload)).await? {
                    Verdict::Done(posted) => Ok(posted),
                    Verdict::Fail(e) => Err(e),
                    other => Err(ChannelError::Rejected {
                        error: format!("{error}, then {other:?}"),
                    }),
                }
            }
            Verdict::Fail(e) => Err(e),
            other => Err(ChannelError::Unavailable {
                detail: format!("{other:?}"),
                attempts: self.policy.max_attempts,
            }),
        }
    }

    /// Sends what `request` builds, retrying within the policy's bounds, until `classify`
    /// calls an answer final.
    pub async fn send(
        &self,
        request: impl Fn() -> Result<RequestBuilder, String>,
        classify: impl Fn(StatusCode, &HeaderMap, &str) -> Verdict,
    ) -> Result<Verdict, ChannelError> {
        let policy = &self.policy;
        let service = self.service;
        let mut waited = Duration::ZERO;
        let mut backoff = policy.base_backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = attempts >= policy.max_attempts.max(1);
            let wait = match self.attempt(&request, &classify).await {
                Ok(Verdict::RetryAfter(seconds)) => {
                    let wait = Duration::from_secs(seconds.unwrap_or(1));
                    tracing::warn!(service, retry_after = ?seconds, attempts, "rate limited (429)");
                    if last || wait > policy.max_retry_after || waited + wait > policy.max_total_wait {
                        return Err(ChannelError::RateLimited {
                            retry_after: seconds,
                            attempts,
                        });
                    }
                    wait
                }
                Ok(Verdict::Backoff(detail)) | Err(detail) => {
                    tracing::warn!(service, detail = %detail, attempts, "post failed, transient");
                    if last || waited + backoff > policy.max_total_wait {
                        return Err(ChannelError::Unavailable { detail, attempts });
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
