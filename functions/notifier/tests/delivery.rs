//! The Slack adapter (reqwest, real HTTP) against a local Slack stand-in on loopback:
//! webhook and `chat.postMessage` requests, 429 with `Retry-After`, 5xx backoff, bounded
//! give-up, rejected blocks, and the handler end to end (one message per alert, threads,
//! a retried delivery not posted twice).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::chat::{ChatStandIn, Reply};
use common::*;
use diagnosis::ports::memory::{FixedBreakdown, MemoryNotifierStore as MemoryStore};
use oidc_notifier::config::Config;
use oidc_notifier::http::{RetryPolicy, Secret};
use oidc_notifier::ports::{Channel, ChannelError, PostRequest, Posted};
use oidc_notifier::slack::{SlackClient, Target};
use oidc_notifier::{Deps, Status};
use serde_json::{json, Value};

/// Fast backoff, a one-second `Retry-After` allowed.
fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        max_total_wait: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    }
}

fn webhook_client(stub: &ChatStandIn) -> SlackClient {
    SlackClient::new(
        Target::Webhook {
            url: Secret::new(stub.webhook_url()),
        },
        policy(),
    )
    .unwrap()
}

fn bot_client(stub: &ChatStandIn) -> SlackClient {
    SlackClient::new(
        Target::Bot {
            api_url: stub.api_url(),
            token: Secret::new(common::chat::BOT_TOKEN),
        },
        policy(),
    )
    .unwrap()
}

fn message() -> Value {
    json!({"text": "fallback", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]})
}

fn request(payload: &Value) -> PostRequest<'_> {
    PostRequest {
        payload,
        channel: Some("C0TEST"),
        thread_ts: None,
        broadcast: false,
    }
}

#[tokio::test]
async fn webhook_posts_the_message_once() {
    let stub = ChatStandIn::start();
    let client = webhook_client(&stub);
    assert!(!client.threads());
    let payload = message();
    let posted = client.post(request(&payload)).await.unwrap();
    assert_eq!(posted, Posted::default());
    let requests = stub.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/hooks/services/T000/B000/XXXX")
    );
    assert_eq!(r.header("content-type"), Some("application/json; charset=utf-8"));
    assert_eq!(r.header("authorization"), None);
    // A webhook is bound to its channel: no channel or thread in the body.
    assert_eq!(r.json(), payload);
}

#[tokio::test]
async fn bot_posts_with_token_channel_and_thread() {
    let stub = ChatStandIn::start();
    let client = bot_client(&stub);
    assert!(client.threads());
    let payload = message();
    let root = client.post(request(&payload)).await.unwrap();
    let ts = root.ts.clone().unwrap();
    assert_eq!(root.channel.as_deref(), Some("C0TEST"));
    client
        .post(PostRequest {
            thread_ts: Some(&ts),
            broadcast: true,
            ..request(&payload)
        })
        .await
        .unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/api/chat.postMessage");
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer xoxb-test-token")
    );
    assert_eq!(requests[0].json()["channel"], "C0TEST");
    assert_eq!(requests[0].json().get("thread_ts"), None);
    assert_eq!(requests[1].json()["thread_ts"], json!(ts));
    assert_eq!(requests[1].json()["reply_broadcast"], true);
    assert_eq!(requests[1].json()["blocks"], payload["blocks"]);
}

#[tokio::test]
async fn a_429_is_honoured_with_its_retry_after() {
    let stub = ChatStandIn::start();
    stub.script([Reply::rate_limited(1)]);
    let client = bot_client(&stub);
    let payload = message();
    client.post(request(&payload)).await.unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    let waited = requests[1].at - requests[0].at;
    assert!(waited >= Duration::from_millis(990), "waited {waited:?}");
    assert_eq!(stub.posted().len(), 1);
}

#[tokio::test]
async fn a_retry_after_beyond_the_bound_gives_up_at_once() {
    let stub = ChatStandIn::start();
    stub.script([Reply::rate_limited(120)]);
    let client = webhook_client(&stub);
    let payload = message();
    let started = Instant::now();
    let error = client.post(request(&payload)).await.unwrap_err();
    assert_eq!(
        error,
        ChannelError::RateLimited {
            retry_after: Some(120),
            attempts: 1
        }
    );
    assert!(error.retryable());
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff_then_given_up() {
    let stub = ChatStandIn::start();
    stub.script([Reply::server_error()]);
    let client = webhook_client(&stub);
    let payload = message();
    client.post(request(&payload)).await.unwrap();
    assert_eq!(stub.requests().len(), 2);
    assert_eq!(stub.posted().len(), 1);

    let down = ChatStandIn::start();
    down.script(std::iter::repeat_n(Reply::server_error(), 10));
    let error = webhook_client(&down).post(request(&payload)).await.unwrap_err();
    assert!(
        matches!(error, ChannelError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(error.retryable());
    assert_eq!(down.requests().len(), 3, "bounded by max_attempts");
}

#[tokio::test]
async fn slack_transient_errors_are_retried_and_rejections_are_not() {
    let stub = ChatStandIn::start();
    stub.script([Reply::api_error("internal_error")]);
    let client = bot_client(&stub);
    let payload = message();
    client.post(request(&payload)).await.unwrap();
    assert_eq!(stub.requests().len(), 2);

    let stub = ChatStandIn::start();
    stub.script([Reply::api_error("invalid_auth")]);
    let error = bot_client(&stub).post(request(&payload)).await.unwrap_err();
    assert_eq!(
        error,
        ChannelError::Rejected {
            error: "invalid_auth".into()
        }
    );
    assert!(!error.retryable());
    assert_eq!(stub.requests().len(), 1);
}

#[tokio::test]
async fn refused_blocks_fall_back_to_the_text() {
    let stub = ChatStandIn::start();
    stub.script([Reply::api_error("invalid_blocks")]);
    let payload = message();
    bot_client(&stub).post(request(&payload)).await.unwrap();
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].json().get("blocks").is_some());
    assert_eq!(requests[1].json().get("blocks"), None);
    assert_eq!(requests[1].json()["text"], "fallback");
}

#[tokio::test]
async fn an_unreachable_slack_is_a_retryable_error_without_the_secret() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let client = SlackClient::new(
        Target::Webhook {
            url: Secret::new(format!("http://127.0.0.1:{port}/hooks/services/T000/B000/SECRET")),
        },
        policy(),
    )
    .unwrap();
    let payload = message();
    let error = client.post(request(&payload)).await.unwrap_err();
    assert!(
        matches!(error, ChannelError::Unavailable { attempts: 3, .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains("SECRET"), "{error}");
}

// ---------------------------------------------------------------------------------------
// The handler with the real Slack adapter.

const T0: i64 = 1_791_297_000;

fn deps(client: SlackClient, bot: bool) -> Deps<SlackClient, MemoryStore, FixedBreakdown> {
    let mut env: HashMap<String, String> = HashMap::from([
        ("SLACK_SECRET_ID".into(), "oidc-watch/slack".into()),
        ("STATE_TABLE_NAME".into(), "oidc-watch-state".into()),
    ]);
    if bot {
        env.insert("SLACK_MODE".into(), "bot".into());
        env.insert("SLACK_CHANNEL".into(), "C0ALERTS".into());
    }
    let clock = Arc::new(AtomicI64::new(T0));
    Deps {
        config: Config::from_map(&env).unwrap(),
        channel: client,
        store: MemoryStore::default(),
        breakdown: FixedBreakdown::default(),
        clock: Box::new(move || clock.load(Ordering::SeqCst)),
    }
}

#[tokio::test]
async fn end_to_end_one_message_per_alert_in_threads() {
    let stub = ChatStandIn::start();
    let deps = deps(bot_client(&stub), true);
    let events = [
        alert_event(
            "e-1",
            &incident("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"),
        ),
        alert_event("e-2", &spike()),
        alert_event("e-3", &recovery()),
        fixture("sns-cloudwatch-alarm-single-metric.json"),
    ];
    for event in events {
        let outcome = invoke(&deps, event).await.unwrap();
        assert_eq!(outcome.deliveries[0].status, Status::Posted);
    }
    let posted = stub.posted();
    assert_eq!(posted.len(), 4, "one message per alert");
    let bodies: Vec<Value> = posted.iter().map(|r| r.json()).collect();
    assert!(bodies
        .iter()
        .all(|b| b["channel"] == "C0ALERTS" && b["unfurl_links"] == false));
    // The recovery went into the spike's thread.
    let spike_ts = serde_json::from_str::<Value>(&posted[1].reply).unwrap()["ts"].clone();
    assert_eq!(bodies[2]["thread_ts"], spike_ts);
    assert_eq!(bodies[2]["reply_broadcast"], true);
    assert_eq!(bodies[1].get("thread_ts"), None);
}

#[tokio::test]
async fn end_to_end_a_retried_delivery_is_not_posted_twice() {
    let stub = ChatStandIn::start();
    let deps = deps(webhook_client(&stub), false);
    let event = alert_event(
        "r-1",
        &incident("audience-mismatch/github-owner-url-audience.json"),
    );
    // Slack is down for the whole first invocation: it fails, for Lambda to retry.
    stub.script(std::iter::repeat_n(Reply::server_error(), 3));
    assert!(invoke(&deps, event.clone()).await.is_err());
    assert_eq!(stub.posted().len(), 0);
    // Lambda's retry: posted. SNS redelivers it again: a duplicate, not posted.
    assert_eq!(
        invoke(&deps, event.clone()).await.unwrap().deliveries[0].status,
        Status::Posted
    );
    assert_eq!(
        invoke(&deps, event).await.unwrap().deliveries[0].status,
        Status::Duplicate
    );
    assert_eq!(stub.posted().len(), 1);
    assert_eq!(stub.requests().len(), 4);
}

#[tokio::test]
async fn end_to_end_a_429_is_honoured() {
    let stub = ChatStandIn::start();
    stub.script([Reply::rate_limited(1)]);
    let deps = deps(webhook_client(&stub), false);
    let outcome = invoke(&deps, alert_event("t-1", &spike())).await.unwrap();
    assert_eq!(outcome.deliveries[0].status, Status::Posted);
    let requests = stub.requests();
    assert_eq!((requests.len(), stub.posted().len()), (2, 1));
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(990));
}
