//! The ports oidc-notifier talks through: Slack, its state (deliveries, threads, probe
//! tokens) and the alarm breakdown. Adapters: [`crate::slack`], [`crate::dynamo`],
//! [`crate::cloudwatch`]. The in-memory versions in [`memory`] serve tests and local runs.

use std::future::Future;

pub use diagnosis::ports::PortError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a thread lives: its channel and the `ts` of its first message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRef {
    pub channel: String,
    pub ts: String,
}

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

/// Delivery, thread and rate-limit state (the DynamoDB state table in AWS). Every write
/// that decides whether something is posted is conditional.
pub trait NotifierStore {
    /// Claims the SNS message `message_id` for delivery until `now + lease`. False when it
    /// was delivered already, or another invocation holds a live claim.
    fn begin_delivery(
        &self,
        message_id: &str,
        now: i64,
        lease: i64,
        expires_at: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Whether the message was posted (not merely claimed by an invocation in flight).
    fn delivery_posted(&self, message_id: &str) -> impl Future<Output = Result<bool, PortError>> + Send;

    /// Marks the message delivered: a redelivery is then a duplicate.
    fn finish_delivery(
        &self,
        message_id: &str,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// Gives up the claim after a failed post, so SNS's retry can post.
    fn abandon_delivery(&self, message_id: &str) -> impl Future<Output = Result<(), PortError>> + Send;

    fn thread(&self, thread_id: &str) -> impl Future<Output = Result<Option<ThreadRef>, PortError>> + Send;

    fn save_thread(
        &self,
        thread_id: &str,
        thread: &ThreadRef,
        expires_at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;

    /// A rate-limit token for `key`: granted at most once per `period` seconds, and again
    /// to the same `holder` (the retry of the message that took it).
    fn take_token(
        &self,
        key: &str,
        holder: &str,
        now: i64,
        period: i64,
    ) -> impl Future<Output = Result<bool, PortError>> + Send;
}

/// The window an alarm evaluated, for the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakdownRequest {
    pub start: i64,
    pub end: i64,
    /// Seconds per datapoint, a multiple of 60.
    pub period: i64,
}

/// Failures in the alarm's window by cause and by role, largest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Breakdown {
    pub start: i64,
    pub end: i64,
    pub by_cause: Vec<(String, f64)>,
    pub by_role: Vec<(String, f64)>,
}

pub trait AlarmBreakdown {
    fn breakdown(
        &self,
        request: &BreakdownRequest,
    ) -> impl Future<Output = Result<Breakdown, PortError>> + Send;
}

/// No enrichment (configured off, or in tests).
pub struct NoBreakdown;

impl AlarmBreakdown for NoBreakdown {
    async fn breakdown(&self, request: &BreakdownRequest) -> Result<Breakdown, PortError> {
        Err(PortError::new(
            "cloudwatch",
            format!("breakdown disabled ({}..{})", request.start, request.end),
            false,
        ))
    }
}

/// In-memory ports for tests and local runs.
pub mod memory {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Delivery {
        Pending { lease_until: i64 },
        Done,
    }

    #[derive(Default)]
    struct State {
        deliveries: HashMap<String, Delivery>,
        threads: HashMap<String, ThreadRef>,
        tokens: HashMap<String, (i64, String)>,
    }

    /// The same conditional semantics as the DynamoDB store, behind one mutex; `fail`
    /// makes every call fail.
    #[derive(Default)]
    pub struct MemoryStore {
        state: Mutex<State>,
        pub fail: bool,
    }

    impl MemoryStore {
        /// A store whose every call fails (a throttled or unreachable table).
        pub fn failing() -> Self {
            MemoryStore {
                fail: true,
                ..MemoryStore::default()
            }
        }

        fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, PortError> {
            if self.fail {
                return Err(PortError::new(
                    "dynamodb",
                    "ProvisionedThroughputExceededException",
                    true,
                ));
            }
            Ok(f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner())))
        }

        pub fn thread_of(&self, thread_id: &str) -> Option<ThreadRef> {
            self.state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .threads
                .get(thread_id)
                .cloned()
        }
    }

    impl NotifierStore for MemoryStore {
        async fn begin_delivery(
            &self,
            id: &str,
            now: i64,
            lease: i64,
            _expires: i64,
        ) -> Result<bool, PortError> {
            self.with(|s| match s.deliveries.get(id) {
                Some(Delivery::Done) => false,
                Some(Delivery::Pending { lease_until }) if *lease_until >= now => false,
                _ => {
                    s.deliveries.insert(
                        id.to_owned(),
                        Delivery::Pending {
                            lease_until: now + lease,
                        },
                    );
                    true
                }
            })
        }

        async fn delivery_posted(&self, id: &str) -> Result<bool, PortError> {
            self.with(|s| matches!(s.deliveries.get(id), Some(Delivery::Done)))
        }

        async fn finish_delivery(&self, id: &str, _expires: i64) -> Result<(), PortError> {
            self.with(|s| {
                s.deliveries.insert(id.to_owned(), Delivery::Done);
            })
        }

        async fn abandon_delivery(&self, id: &str) -> Result<(), PortError> {
            self.with(|s| {
                if matches!(s.deliveries.get(id), Some(Delivery::Pending { .. })) {
                    s.deliveries.remove(id);
                }
            })
        }

        async fn thread(&self, thread_id: &str) -> Result<Option<ThreadRef>, PortError> {
            self.with(|s| s.threads.get(thread_id).cloned())
        }

        async fn save_thread(
            &self,
            thread_id: &str,
            thread: &ThreadRef,
            _expires: i64,
        ) -> Result<(), PortError> {
            self.with(|s| {
                s.threads.insert(thread_id.to_owned(), thread.clone());
            })
        }

        async fn take_token(
            &self,
            key: &str,
            holder: &str,
            now: i64,
            period: i64,
        ) -> Result<bool, PortError> {
            self.with(|s| match s.tokens.get(key) {
                Some((until, owner)) if *until > now && owner != holder => false,
                _ => {
                    s.tokens.insert(key.to_owned(), (now + period, holder.to_owned()));
                    true
                }
            })
        }
    }

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

    /// Serves a fixed breakdown and records the requests.
    #[derive(Default)]
    pub struct FixedBreakdown {
        pub breakdown: Breakdown,
        pub requests: Mutex<Vec<BreakdownRequest>>,
    }

    impl AlarmBreakdown for FixedBreakdown {
        async fn breakdown(&self, request: &BreakdownRequest) -> Result<Breakdown, PortError> {
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(*request);
            Ok(Breakdown {
                start: request.start,
                end: request.end,
                ..self.breakdown.clone()
            })
        }
    }
}
