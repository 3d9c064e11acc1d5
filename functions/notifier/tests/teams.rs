//! The Teams adapter (reqwest, real HTTP) through the handler, against the chat stand-in's
//! Workflows webhook on loopback: one Adaptive Card per alert, nothing a stranger wrote
//! forms a mention, a link or markup, `429` honoured, a refused card sent as its title,
//! a redelivery not posted twice.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::chat::{ChatStandIn, Recorded, Reply};
use common::*;
use diagnosis::ports::memory::{FixedBreakdown, MemoryNotifierStore as MemoryStore};
use oidc_notifier::config::{ChannelKind, Config};
use oidc_notifier::http::{RetryPolicy, Secret};
use oidc_notifier::teams::TeamsClient;
use oidc_notifier::{Deps, Status};
use serde_json::Value;

const T0: i64 = 1_791_297_000;

fn deps(stub: &ChatStandIn) -> Deps<TeamsClient, MemoryStore, FixedBreakdown> {
    let env = HashMap::from([
        ("NOTIFIER_CHANNEL".to_owned(), "teams".to_owned()),
        ("TEAMS_SECRET_ID".to_owned(), "oidc-watch/teams".to_owned()),
        ("STATE_TABLE_NAME".to_owned(), "oidc-watch-state".to_owned()),
    ]);
    let config = Config::from_map(&env).unwrap();
    assert_eq!(config.kind, ChannelKind::Teams);
    let policy = RetryPolicy {
        max_attempts: 3,
        base_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(2),
        max_total_wait: Duration::from_secs(5),
        request_timeout: Duration::from_secs(5),
    };
    let clock = Arc::new(AtomicI64::new(T0));
    Deps {
        channel: TeamsClient::new(Secret::new(stub.teams_url()), policy).unwrap(),
        config,
        store: MemoryStore::default(),
        breakdown: FixedBreakdown::default(),
        clock: Box::new(move || clock.load(Ordering::SeqCst)),
    }
}

async fn posted_statuses(deps: &Deps<TeamsClient, MemoryStore, FixedBreakdown>, event: Value) -> Vec<Status> {
    statuses(&invoke(deps, event).await.unwrap())
}

/// The card of a posted message.
fn card(posted: &Recorded) -> Value {
    let message = posted.json();
    assert_eq!(message["type"], "message");
    let attachment = &message["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = attachment["content"].clone();
    assert_eq!(
        (card["type"].as_str(), card["version"].as_str()),
        (Some("AdaptiveCard"), Some("1.4"))
    );
    card
}

/// Every text in the card: `TextBlock`s (Markdown) and `TextRun`s (literal).
fn texts(card: &Value) -> (Vec<String>, Vec<String>) {
    let (mut blocks, mut runs) = (Vec::new(), Vec::new());
    for element in card["body"].as_array().into_iter().flatten() {
        match element["type"].as_str() {
            Some("TextBlock") => blocks.push(element["text"].as_str().unwrap_or_default().to_owned()),
            Some("RichTextBlock") => {
                for inline in element["inlines"].as_array().into_iter().flatten() {
                    assert_eq!(inline["type"], "TextRun");
                    runs.push(inline["text"].as_str().unwrap_or_default().to_owned());
                }
            }
            other => panic!("unexpected element {other:?}"),
        }
    }
    (blocks, runs)
}

#[tokio::test]
async fn one_card_per_alert_and_a_redelivery_posts_nothing() {
    let stub = ChatStandIn::start();
    let deps = deps(&stub);
    let events = [
        alert_event(
            "m-1",
            &incident("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"),
        ),
        alert_event("m-2", &probe()),
        alert_event("m-3", &foreign_success()),
        alert_event("m-4", &spike()),
        alert_event("m-5", &recovery()),
    ];
    for event in &events {
        assert_eq!(posted_statuses(&deps, event.clone()).await, [Status::Posted]);
    }
    assert_eq!(
        posted_statuses(&deps, events[0].clone()).await,
        [Status::Duplicate]
    );
    let posted = stub.posted();
    assert_eq!(posted.len(), events.len());
    for p in &posted {
        assert!(p.path.starts_with("/workflows/"), "{}", p.path);
        let card = card(p);
        let body = serde_json::to_string(&card).unwrap();
        assert!(body.len() < 28_000);
        assert!(card.get("msteams").and_then(|m| m.get("entities")).is_none());
    }
    let incident = card(&posted[0]);
    let (blocks, runs) = texts(&incident);
    assert!(blocks[0].contains("SubjectMismatch (Branch)"), "{blocks:?}");
    assert!(
        runs.iter()
            .any(|r| r == "repo:acme/web-app:ref:refs/heads/feature/login-form"),
        "{runs:?}"
    );
    assert!(blocks.iter().any(|b| b.starts_with("Trust-policy change")));
    let links: Vec<&str> = incident["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["url"].as_str().unwrap_or_default())
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.starts_with("https://console.aws.amazon.com/cloudtrailv2/")),
        "{links:?}"
    );
    // A stranger's probe gets no fix.
    let (probe_blocks, _) = texts(&card(&posted[1]));
    assert!(!probe_blocks
        .iter()
        .any(|b| b == "Fix" || b.starts_with("Trust-policy change")));
}

#[tokio::test]
async fn a_strangers_text_forms_no_mention_link_or_markup() {
    let stub = ChatStandIn::start();
    let deps = deps(&stub);
    let hostile =
        "x<at>Boss</at> [click](https://evil.example/p) **b** _i_ @here https://evil.example\u{202e}";
    let subject = format!("repo:acme/web-app:ref:refs/heads/{hostile}");
    let alert = incident_from(
        diagnosis_of_value(&with_subject(
            "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json",
            &subject,
        )),
        2,
    );
    assert_eq!(
        posted_statuses(&deps, alert_event("h-1", &alert)).await,
        [Status::Posted]
    );
    let posted = stub.posted();
    let card = card(&posted[0]);
    let (blocks, runs) = texts(&card);
    for block in &blocks {
        assert!(
            !block.contains("evil") && !block.contains("Boss"),
            "untrusted text in a Markdown block: {block}"
        );
    }
    assert!(runs.iter().any(|r| r.contains("Boss")), "the subject is shown");
    let all = serde_json::to_string(&card).unwrap();
    assert!(!all.contains("<at>"), "a mention could form");
    assert!(!all.contains("://evil"), "a link could form");
    assert!(!all.contains('\u{202e}'), "an invisible character survived");
    for action in card["actions"].as_array().into_iter().flatten() {
        let url = action["url"].as_str().unwrap_or_default();
        assert!(!url.contains("evil"), "{url}");
    }
}

#[tokio::test]
async fn a_429_is_honoured_and_a_refused_card_goes_as_its_title() {
    let stub = ChatStandIn::start();
    let deps = deps(&stub);
    stub.script([Reply::rate_limited(1)]);
    assert_eq!(
        posted_statuses(&deps, alert_event("r-1", &spike())).await,
        [Status::Posted]
    );
    let requests = stub.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(990));

    stub.script([Reply {
        status: 413,
        headers: vec![],
        body: "request entity too large".into(),
    }]);
    assert_eq!(
        posted_statuses(&deps, alert_event("r-2", &recovery())).await,
        [Status::Posted]
    );
    let posted = stub.posted();
    assert_eq!(posted.len(), 2);
    let (blocks, _) = texts(&card(&posted[1]));
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert!(blocks[0].contains("Recovered"));

    stub.fail_always(404);
    let event = alert_event(
        "r-3",
        &incident("subject-mismatch/tag/github-release-tag-vs-main-only-policy.json"),
    );
    let error = invoke(&deps, event).await.unwrap_err();
    let diagnostic = lambda_runtime::Diagnostic::from(error);
    assert_eq!(diagnostic.error_type, "NonRetryable.TeamsRejected");
}
