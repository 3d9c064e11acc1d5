//! The channel port oidc-notifier posts through; adapters: [`crate::slack`] and
//! [`crate::teams`], each with its renderer. Its state and
//! the alarm breakdown are ports of `diagnosis` ([`diagnosis::ports::NotifierStore`],
//! [`diagnosis::ports::AlarmBreakdown`]), adapters in `oidc-watch-aws`. [`memory`] holds a
//! recording Slack for tests and local runs.

use std::future::Future;

pub use diagnosis::ports::{
    AlarmBreakdown, Breakdown, BreakdownRequest, NoBreakdown, NotifierStore, PortError, ThreadRef,
};
use serde::Serialize;
use serde_json::Value;

use crate::notice::Notice;

/// One message to post.
#[derive(Debug, Clone, Copy)]
pub struct PostRequest<'a> {
    /// The body, as [`Channel::render`] built it.
    pub payload: &'a Value,
    /// Slack bot mode: the channel (a webhook is bound to its own).
    pub channel: Option<&'a str>,
    /// Bot mode: reply in this thread.
    pub thread_ts: Option<&'a str>,
    /// A thread reply that is also shown in the channel.
    pub broadcast: bool,
}

/// What the service said about a posted message (a Slack bot's post has a `ts`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Posted {
    pub channel: Option<String>,
    pub ts: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// 429 with a `Retry-After` beyond what one invocation may wait, or too many 429s.
    #[error("rate limited (Retry-After {retry_after:?} s) after {attempts} attempts")]
    RateLimited { retry_after: Option<u64>, attempts: u32 },
    /// 5xx, a retryable service error or a transport failure, still after every attempt.
    #[error("unavailable after {attempts} attempts: {detail}")]
    Unavailable { detail: String, attempts: u32 },
    /// The service refused the message for good (`invalid_auth`, a deleted workflow, …).
    #[error("rejected the message: {error}")]
    Rejected { error: String },
}

impl ChannelError {
    /// Worth another invocation: the service may be back, or the rate limit over, by then.
    pub fn retryable(&self) -> bool {
        !matches!(self, ChannelError::Rejected { .. })
    }
}

/// Where alerts go: a chat service and its renderer. Dedupe, routing, threading and probe
/// muting are the handler's and do not know which service this is.
pub trait Channel {
    /// The service, as error types and logs name it: `Slack`, `Teams`.
    fn name(&self) -> &'static str;

    /// True when posts return an id a thread can hang from (a Slack bot token).
    fn threads(&self) -> bool;

    /// The message body for `notice`, in the service's own format.
    fn render(&self, notice: &Notice, breakdown: Option<&Breakdown>) -> Value;

    fn post(&self, request: PostRequest<'_>) -> impl Future<Output = Result<Posted, ChannelError>> + Send;
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

    impl Channel for MemorySlack {
        fn name(&self) -> &'static str {
            "Slack"
        }

        fn threads(&self) -> bool {
            self.bot
        }

        fn render(&self, notice: &Notice, breakdown: Option<&Breakdown>) -> Value {
            crate::render::render(notice, breakdown).payload()
        }

        async fn post(&self, request: PostRequest<'_>) -> Result<Posted, ChannelError> {
            {
                let mut fail = self.fail_next.lock().unwrap_or_else(|e| e.into_inner());
                if *fail > 0 {
                    *fail -= 1;
                    return Err(ChannelError::Unavailable {
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
