//! The Slack port oidc-notifier posts through; adapter: [`crate::slack`]. Its state and
//! the alarm breakdown are ports of `diagnosis` ([`diagnosis::ports::NotifierStore`],
//! [`diagnosis::ports::AlarmBreakdown`]), adapters in `oidc-watch-aws`. [`memory`] holds a
//! recording Slack for tests and local runs.

use std::future::Future;

pub use diagnosis::ports::{
    AlarmBreakdown, Breakdown, BreakdownRequest, NoBreakdown, NotifierStore, PortError, ThreadRef,
};
use serde::Serialize;
use serde_json::Value;

/// One message to post.
#[derive(Debug, Clone, Copy)]
pub struct PostRequest<'a> {
    /// `text`, `blocks` and options, as [`crate::render::Rendered::payload`] builds them.
    pub payload: &'a Value,
    /// Bot mode: the channel (a webhook is bound to its own).
    pub channel: Option<&'a str>,
    /// Bot mode: reply in this thread.
    pub thread_ts: Option<&'a str>,
    /// A thread reply that is also shown in the channel.
    pub broadcast: bool,
}

/// What Slack said about a posted message (bot mode only knows its `ts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Posted {
    pub channel: Option<String>,
    pub ts: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// 429 with a `Retry-After` beyond what one invocation may wait, or too many 429s.
    #[error("rate limited by Slack (Retry-After {retry_after:?} s) after {attempts} attempts")]
    RateLimited { retry_after: Option<u64>, attempts: u32 },
    /// 5xx, a retryable Slack error or a transport failure, still after every attempt.
    #[error("Slack unavailable after {attempts} attempts: {detail}")]
    Unavailable { detail: String, attempts: u32 },
    /// Slack refused the message for good (`invalid_auth`, `channel_not_found`, …).
    #[error("Slack rejected the message: {error}")]
    Rejected { error: String },
}

impl SlackError {
    /// Worth another invocation: Slack may be back, or the rate limit over, by then.
    pub fn retryable(&self) -> bool {
        !matches!(self, SlackError::Rejected { .. })
    }
}

pub trait Slack {
    /// True when posts return a `ts` a thread can hang from (bot token, not webhook).
    fn threads(&self) -> bool;

    fn post(&self, request: PostRequest<'_>) -> impl Future<Output = Result<Posted, SlackError>> + Send;
}

/// A recording Slack for tests and local runs.
pub mod memory {
    use std::sync::Mutex;

    use super::*;

    /// One recorded post.
    #[derive(Debug, Clone, PartialEq)]
    pub struct RecordedPost {
        pub payload: Value,
        pub channel: Option<String>,
        pub thread_ts: Option<String>,
        pub broadcast: bool,
        pub ts: String,
    }

    /// Records posts; `threads` chooses bot or webhook behaviour; fails the next
    /// `fail_next` posts with `Unavailable`.
    #[derive(Default)]
    pub struct MemorySlack {
        pub bot: bool,
        pub posts: Mutex<Vec<RecordedPost>>,
        pub fail_next: Mutex<u32>,
    }

    impl MemorySlack {
        pub fn bot() -> Self {
            MemorySlack {
                bot: true,
                ..MemorySlack::default()
            }
        }

        pub fn posts(&self) -> Vec<RecordedPost> {
            self.posts.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    impl Slack for MemorySlack {
        fn threads(&self) -> bool {
            self.bot
        }

        async fn post(&self, request: PostRequest<'_>) -> Result<Posted, SlackError> {
            {
                let mut fail = self.fail_next.lock().unwrap_or_else(|e| e.into_inner());
                if *fail > 0 {
                    *fail -= 1;
                    return Err(SlackError::Unavailable {
                        detail: "HTTP 503".to_owned(),
                        attempts: 1,
                    });
                }
            }
            let mut posts = self.posts.lock().unwrap_or_else(|e| e.into_inner());
            let ts = format!("1700000000.{:06}", posts.len() + 1);
            posts.push(RecordedPost {
                payload: request.payload.clone(),
                channel: request.channel.map(str::to_owned),
                thread_ts: request.thread_ts.map(str::to_owned),
                broadcast: request.broadcast,
                ts: ts.clone(),
            });
            Ok(if self.bot {
                Posted {
                    channel: request.channel.map(str::to_owned),
                    ts: Some(ts),
                }
            } else {
                Posted::default()
            })
        }
    }
}
