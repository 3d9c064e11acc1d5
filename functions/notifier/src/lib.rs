//! oidc-notifier: oidc-monitor's alerts and CloudWatch alarm notifications, from the
//! alert SNS topic to one chat channel ([`ports::Channel`]): Slack ([`slack`], Block Kit
//! from [`render`]) or Microsoft Teams ([`teams`], an Adaptive Card from
//! [`adaptive_card`]). Nothing below knows which.
//!
//! 1. Read each SNS record; what is neither an oidc-watch alert nor an alarm is logged
//!    and dropped.
//! 2. Claim the SNS `MessageId` (a conditional write): a redelivery of a message that was
//!    posted is a duplicate and posts nothing; one still being posted by another invocation
//!    fails this one, to be retried after the other's lease.
//! 3. Probe alerts: at most one per owner per `PROBE_ALERT_INTERVAL_SECONDS`.
//! 4. Alarms on oidc-watch metrics: the failures in the window by cause and by role
//!    (`GetMetricData`).
//! 5. Render in the channel's format and post; on a channel with threads (a Slack bot
//!    token) later alerts of the same incident or spike, and an alarm's return to OK, go
//!    into the thread of its first message, and a recovery is also broadcast.
//! 6. On a channel failure, release the claim and fail the invocation: Lambda retries,
//!    and the DLQ keeps what still fails.

pub mod adaptive_card;
pub mod config;
pub mod escape;
pub mod http;
pub mod links;
pub mod notice;
pub mod ports;
pub mod render;
pub mod secrets;
pub mod slack;
pub mod snippet;
pub mod teams;
pub mod words;

use aws_lambda_events::sns::SnsRecord;
use diagnosis::alert::AlertKind;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::notice::{parse_message, Notice};
use crate::ports::{
    AlarmBreakdown, BreakdownRequest, Channel, ChannelError, NotifierStore, PortError, PostRequest, ThreadRef,
};

/// How long one invocation holds a message before another may take it over (covers the
/// bounded retries of [`http::RetryPolicy`]).
pub const DELIVERY_LEASE_SECONDS: i64 = 120;
/// How long a delivered message id is remembered (SNS and Lambda retry for far less).
pub const DELIVERY_TTL_SECONDS: i64 = 7 * 86_400;
/// How long a thread stays open for later messages.
pub const THREAD_TTL_SECONDS: i64 = 14 * 86_400;

/// Everything the handler needs, built once at init.
pub struct Deps<C, D, B> {
    pub config: Config,
    pub channel: C,
    pub store: D,
    pub breakdown: B,
    /// Epoch seconds; injected so tests can move time.
    pub clock: Box<dyn Fn() -> i64 + Send + Sync>,
}

impl<C, D, B> Deps<C, D, B> {
    /// The function's own wiring: the wall clock.
    pub fn new(config: Config, channel: C, store: D, breakdown: B) -> Self {
        Deps {
            config,
            channel,
            store,
            breakdown,
            clock: Box::new(oidc_watch_aws::wall_clock_seconds),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("{channel}: {error}")]
    Channel {
        channel: &'static str,
        error: ChannelError,
    },
    #[error("state table: {0}")]
    State(PortError),
    /// Another invocation holds the message's claim and has not posted it yet: retry once
    /// its lease runs out (if it died, the retry posts; if it posted, the retry is a duplicate).
    #[error("message {0} is being delivered by another invocation")]
    InFlight(String),
}

/// Every error fails the invocation, so Lambda retries it and then hands it to the DLQ;
/// the type says whether a retry can help.
impl From<HandlerError> for Diagnostic {
    fn from(error: HandlerError) -> Diagnostic {
        let error_type = match &error {
            HandlerError::Channel { channel, error } if error.retryable() => format!("Retryable.{channel}"),
            HandlerError::Channel { channel, .. } => format!("NonRetryable.{channel}Rejected"),
            HandlerError::State(_) => "Retryable.StateStore".to_owned(),
            HandlerError::InFlight(_) => "Retryable.InFlight".to_owned(),
        };
        Diagnostic {
            error_type,
            error_message: error.to_string(),
        }
    }
}

/// What one invocation did, for `cargo lambda invoke` and tests.
#[derive(Debug, Default, Serialize)]
pub struct Outcome {
    pub deliveries: Vec<DeliveryOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Posted,
    /// Posted already (or being posted) by another delivery of the same SNS message.
    Duplicate,
    /// A probe from an owner alerted about recently.
    RateLimited,
    /// Not an oidc-watch alert or alarm notification.
    Dropped,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryOutcome {
    pub message_id: String,
    pub status: Status,
    pub kind: Option<String>,
    pub thread: Option<String>,
    /// Posted as a reply in an existing thread.
    pub in_thread: bool,
    pub ts: Option<String>,
    pub reason: Option<String>,
}

impl DeliveryOutcome {
    fn new(message_id: &str, status: Status) -> Self {
        DeliveryOutcome {
            message_id: message_id.to_owned(),
            status,
            kind: None,
            thread: None,
            in_thread: false,
            ts: None,
            reason: None,
        }
    }
}

/// Longest piece of a foreign message logged.
const MAX_LOGGED: usize = 256;

fn bounded(value: &str) -> String {
    diagnosis::text::bound(value, MAX_LOGGED)
}

#[tracing::instrument(skip_all, fields(request_id = %event.context.request_id))]
pub async fn handle<C, D, B>(event: LambdaEvent<Value>, deps: &Deps<C, D, B>) -> Result<Outcome, HandlerError>
where
    C: Channel,
    D: NotifierStore,
    B: AlarmBreakdown,
{
    let mut outcome = Outcome::default();
    let Some(records) = event.payload.get("Records").and_then(Value::as_array) else {
        tracing::warn!("not an SNS event; dropped");
        outcome.deliveries.push(DeliveryOutcome {
            reason: Some("not an SNS event".to_owned()),
            ..DeliveryOutcome::new("-", Status::Dropped)
        });
        return Ok(outcome);
    };
    for raw in records {
        match serde_json::from_value::<SnsRecord>(raw.clone()) {
            Ok(record) => outcome.deliveries.push(deliver(&record, deps).await?),
            Err(error) => {
                tracing::warn!(error = %error, "malformed SNS record; dropped");
                outcome.deliveries.push(DeliveryOutcome {
                    reason: Some(format!("malformed SNS record: {error}")),
                    ..DeliveryOutcome::new("-", Status::Dropped)
                });
            }
        }
    }
    Ok(outcome)
}

/// The thread a notice belongs to, and how it relates to it.
enum Threading {
    /// Always starts a new thread (an alarm going to ALARM).
    Opens,
    /// Joins its thread if there is one, else starts it.
    Joins,
    /// Closes its thread: a reply, also shown in the channel; top-level if no thread.
    Resolves,
}

/// The thread a notice belongs to, a second key it is also filed under, and how it
/// relates to the thread. A spike is also filed under its scope, so its recovery finds it
/// even when the monitor gives the recovery a thread id of its own.
fn threading(notice: &Notice) -> (String, Option<String>, Threading) {
    match notice {
        Notice::Alert { alert: a, .. } => {
            let scope = a.spike.as_ref().map(|s| format!("spike-scope#{}", s.scope));
            match a.kind {
                AlertKind::Recovery => (a.thread_id.clone(), scope, Threading::Resolves),
                AlertKind::Spike => (a.thread_id.clone(), scope, Threading::Joins),
                _ => (a.thread_id.clone(), None, Threading::Joins),
            }
        }
        Notice::Alarm(a) => (
            format!("alarm:{}", a.alarm_arn),
            None,
            if a.is_alarm() {
                Threading::Opens
            } else {
                Threading::Resolves
            },
        ),
    }
}

fn kind_of(notice: &Notice) -> String {
    match notice {
        Notice::Alert { alert: a, .. } => a.kind.as_str().to_owned(),
        Notice::Alarm(a) => format!("alarm-{}", a.new_state_value.to_ascii_lowercase()),
    }
}

async fn deliver<C, D, B>(record: &SnsRecord, deps: &Deps<C, D, B>) -> Result<DeliveryOutcome, HandlerError>
where
    C: Channel,
    D: NotifierStore,
    B: AlarmBreakdown,
{
    let message_id = record.sns.message_id.as_str();
    let notice = match parse_message(&record.sns.message) {
        Ok(notice) => notice,
        Err(error) => {
            tracing::warn!(
                message_id = %bounded(message_id),
                subject = ?record.sns.subject.as_deref().map(bounded),
                error = %error,
                "not an oidc-watch alert or alarm; dropped"
            );
            return Ok(DeliveryOutcome {
                reason: Some(error.to_string()),
                ..DeliveryOutcome::new(message_id, Status::Dropped)
            });
        }
    };
    let now = (deps.clock)();
    let mut outcome = DeliveryOutcome {
        kind: Some(kind_of(&notice)),
        ..DeliveryOutcome::new(message_id, Status::Posted)
    };
    // One alert published twice (the monitor retried after SNS's answer was lost) has two
    // message ids but one alert id: claim the alert, not the message.
    let claim = match &notice {
        Notice::Alert { id, .. } => id
            .as_ref()
            .map_or_else(|| message_id.to_owned(), |id| format!("alert:{id}")),
        Notice::Alarm(_) => message_id.to_owned(),
    };
    let claim = claim.as_str();
    if !deps
        .store
        .begin_delivery(claim, now, DELIVERY_LEASE_SECONDS, now + DELIVERY_TTL_SECONDS)
        .await
        .map_err(HandlerError::State)?
    {
        if !deps
            .store
            .delivery_posted(claim)
            .await
            .map_err(HandlerError::State)?
        {
            return Err(HandlerError::InFlight(bounded(message_id)));
        }
        tracing::info!(message_id = %bounded(message_id), "redelivery of a message already posted; skipped");
        outcome.status = Status::Duplicate;
        return Ok(outcome);
    }
    match post(&notice, message_id, now, deps, &mut outcome).await {
        Ok(()) => {
            if let Err(error) = deps
                .store
                .finish_delivery(claim, now + DELIVERY_TTL_SECONDS)
                .await
            {
                // Posted: failing now would post again on the retry. The lease still
                // covers a prompt redelivery.
                tracing::warn!(error = %error, "could not mark the message delivered");
            }
            Ok(outcome)
        }
        Err(error) => {
            if let Err(release) = deps.store.abandon_delivery(claim).await {
                tracing::warn!(error = %release, "could not release the delivery claim; the lease will expire");
            }
            tracing::error!(error = %error, message_id = %bounded(message_id), "delivery failed; the invocation fails so it is retried");
            Err(error)
        }
    }
}

async fn post<C, D, B>(
    notice: &Notice,
    message_id: &str,
    now: i64,
    deps: &Deps<C, D, B>,
    outcome: &mut DeliveryOutcome,
) -> Result<(), HandlerError>
where
    C: Channel,
    D: NotifierStore,
    B: AlarmBreakdown,
{
    let config = &deps.config;
    let (owner, account) = match notice {
        Notice::Alert { alert: a, .. } => (
            a.diagnosis.as_ref().and_then(notice::route_owner),
            Some(a.account_id.clone()),
        ),
        Notice::Alarm(a) => (None, Some(a.aws_account_id.clone())),
    };
    if let Notice::Alert { alert, .. } = notice {
        if alert.kind == AlertKind::Probe {
            let owner = alert.probe_owner();
            let granted = deps
                .store
                .take_token(
                    &format!("notify-probe#{owner}"),
                    message_id,
                    now,
                    config.probe_alert_interval_seconds,
                )
                .await
                .map_err(HandlerError::State)?;
            if !granted {
                tracing::info!(owner = %bounded(&owner), "probe from an owner alerted about recently; muted");
                outcome.status = Status::RateLimited;
                return Ok(());
            }
        }
    }
    let breakdown = match notice {
        Notice::Alarm(alarm) if config.alarm_breakdown && alarm.watches(&config.metrics_namespace) => {
            match alarm.window() {
                Some((start, end)) => {
                    let request = BreakdownRequest {
                        start,
                        end,
                        period: alarm.period(),
                    };
                    match deps.breakdown.breakdown(&request).await {
                        Ok(b) => Some(b),
                        Err(error) => {
                            tracing::warn!(error = %error, "alarm breakdown unavailable; posting without it");
                            None
                        }
                    }
                }
                None => None,
            }
        }
        _ => None,
    };
    let payload = deps.channel.render(notice, breakdown.as_ref());
    let channel = config
        .routes
        .channel_for(owner.as_deref(), account.as_deref())
        .or(config.channel.as_deref());

    let (thread_id, alias, threading) = threading(notice);
    outcome.thread = Some(thread_id.clone());
    let resolves = matches!(threading, Threading::Resolves);
    let mut reply_to: Option<ThreadRef> = None;
    let mut opens = false;
    if deps.channel.threads() {
        let mut existing = deps.store.thread(&thread_id).await.map_err(HandlerError::State)?;
        if let (None, Threading::Resolves, Some(alias)) = (&existing, &threading, &alias) {
            existing = deps.store.thread(alias).await.map_err(HandlerError::State)?;
        }
        match (threading, existing) {
            (Threading::Opens, _) | (Threading::Joins, None) => opens = true,
            (Threading::Joins | Threading::Resolves, Some(thread)) => reply_to = Some(thread),
            (Threading::Resolves, None) => {}
        }
    }
    let posted = deps
        .channel
        .post(PostRequest {
            payload: &payload,
            channel: reply_to.as_ref().map(|t| t.channel.as_str()).or(channel),
            thread_ts: reply_to.as_ref().map(|t| t.ts.as_str()),
            broadcast: resolves && reply_to.is_some(),
        })
        .await
        .map_err(|error| HandlerError::Channel {
            channel: deps.channel.name(),
            error,
        })?;
    outcome.in_thread = reply_to.is_some();
    outcome.ts = posted.ts.clone();
    if opens {
        if let (Some(ts), Some(channel)) = (posted.ts, posted.channel.or(channel.map(str::to_owned))) {
            let thread = ThreadRef { channel, ts };
            for key in std::iter::once(&thread_id).chain(alias.as_ref()) {
                if let Err(error) = deps
                    .store
                    .save_thread(key, &thread, now + THREAD_TTL_SECONDS)
                    .await
                {
                    tracing::warn!(error = %error, "could not save the thread; later messages start their own");
                }
            }
        }
    }
    tracing::info!(
        message_id = %bounded(message_id),
        kind = %kind_of(notice),
        in_thread = outcome.in_thread,
        channel = deps.channel.name(),
        "posted"
    );
    Ok(())
}
