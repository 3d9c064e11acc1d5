//! The handler with in-memory ports: one message per alert, nothing for what is not an
//! alert, no double post on redelivery, probes muted per owner, threads in bot mode,
//! routing, alarm enrichment, and failures that fail the invocation.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use common::*;
use diagnosis::alert::Alert;
use diagnosis::ports::memory::{FixedBreakdown, MemoryNotifierStore as MemoryStore};
use lambda_runtime::Diagnostic;
use oidc_notifier::config::Config;
use oidc_notifier::ports::memory::MemorySlack;
use oidc_notifier::ports::{Breakdown, ThreadRef};
use oidc_notifier::{Deps, HandlerError, Status};
use serde_json::{json, Value};

type TestDeps = Deps<MemorySlack, MemoryStore, FixedBreakdown>;

const T0: i64 = 1_791_297_000;

fn config(extra: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("SLACK_SECRET_ID", "oidc-watch/slack"),
        ("STATE_TABLE_NAME", "oidc-watch-state"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::from_map(&env).unwrap()
}

fn deps_with(slack: MemorySlack, config: Config, clock: Arc<AtomicI64>) -> TestDeps {
    Deps {
        config,
        channel: slack,
        store: MemoryStore::default(),
        breakdown: FixedBreakdown {
            breakdown: Breakdown {
                by_cause: vec![("SubjectMismatch".into(), 3.0)],
                by_role: vec![("gha-deploy-main-only".into(), 3.0)],
                ..Breakdown::default()
            },
            ..FixedBreakdown::default()
        },
        clock: Box::new(move || clock.load(Ordering::SeqCst)),
    }
}

fn webhook() -> TestDeps {
    deps_with(MemorySlack::default(), config(&[]), Arc::new(AtomicI64::new(T0)))
}

fn bot(extra: &[(&str, &str)]) -> TestDeps {
    let mut settings = vec![("SLACK_MODE", "bot"), ("SLACK_CHANNEL", "C0DEFAULT")];
    settings.extend_from_slice(extra);
    deps_with(
        MemorySlack::bot(),
        config(&settings),
        Arc::new(AtomicI64::new(T0)),
    )
}

fn alerts() -> Vec<(&'static str, Alert)> {
    vec![
        (
            "incident",
            incident("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"),
        ),
        ("probe", probe()),
        ("foreign-success", foreign_success()),
        ("spike", spike()),
        ("recovery", recovery()),
    ]
}

#[tokio::test]
async fn every_alert_and_alarm_posts_exactly_one_message() {
    let deps = webhook();
    let mut expected = 0;
    for (i, (kind, alert)) in alerts().into_iter().enumerate() {
        let outcome = invoke(&deps, alert_event(&format!("m-{i}"), &alert))
            .await
            .unwrap();
        assert_eq!(statuses(&outcome), [Status::Posted], "{kind}");
        assert_eq!(outcome.deliveries[0].kind.as_deref(), Some(kind));
        expected += 1;
    }
    for file in [
        "sns-cloudwatch-alarm-single-metric.json",
        "sns-cloudwatch-alarm-metric-math.json",
        "sns-cloudwatch-alarm-ok.json",
    ] {
        let outcome = invoke(&deps, fixture(file)).await.unwrap();
        assert_eq!(statuses(&outcome), [Status::Posted], "{file}");
        expected += 1;
    }
    let posts = deps.channel.posts();
    assert_eq!(posts.len(), expected);
    for post in &posts {
        assert!(post.payload["blocks"].as_array().is_some_and(|b| !b.is_empty()));
        assert_eq!(
            (post.channel.as_deref(), post.thread_ts.as_deref()),
            (None, None),
            "webhook"
        );
    }
}

#[tokio::test]
async fn what_is_not_an_alert_is_dropped() {
    let deps = webhook();
    let cases = [
        json!({"detail-type": "AWS API Call via CloudTrail"}),
        json!({"Records": [{"EventSource": "aws:sns"}]}),
        sns_event("x-1", None, "Hello\r\nworld!", &[]),
        sns_event("x-2", None, "{\"AlarmNameX\": 1}", &[]),
        sns_event(
            "x-3",
            None,
            r#"{"version":"1.0","source":"custom","metadata":{"additionalContext":{"kind":"x"}}}"#,
            &[],
        ),
    ];
    for payload in cases {
        let outcome = invoke(&deps, payload.clone()).await.unwrap();
        assert_eq!(statuses(&outcome), [Status::Dropped], "{payload}");
    }
    assert!(deps.channel.posts().is_empty());
}

#[tokio::test]
async fn a_redelivered_message_is_not_posted_twice() {
    let deps = webhook();
    let event = alert_event("m-1", &spike());
    assert_eq!(
        statuses(&invoke(&deps, event.clone()).await.unwrap()),
        [Status::Posted]
    );
    assert_eq!(
        statuses(&invoke(&deps, event.clone()).await.unwrap()),
        [Status::Duplicate]
    );
    assert_eq!(deps.channel.posts().len(), 1);
}

#[tokio::test]
async fn one_alert_published_twice_is_posted_once() {
    // The monitor publishes again when SNS's answer was lost: a new message id, the same alert.
    let deps = webhook();
    let incident = incident("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
    for (message_id, status) in [("m-1", Status::Posted), ("m-2", Status::Duplicate)] {
        assert_eq!(
            statuses(&invoke(&deps, alert_event(message_id, &incident)).await.unwrap()),
            [status]
        );
    }
    assert_eq!(deps.channel.posts().len(), 1);
    // Its recovery shares the thread but is another alert.
    invoke(&deps, alert_event("m-3", &spike())).await.unwrap();
    invoke(&deps, alert_event("m-4", &recovery())).await.unwrap();
    assert_eq!(deps.channel.posts().len(), 3);
}

#[tokio::test]
async fn when_slack_is_down_the_invocation_fails_and_its_retry_posts_once() {
    let deps = webhook();
    *deps.channel.fail_next.lock().unwrap() = 1;
    let event = alert_event("m-1", &probe());
    let error = invoke(&deps, event.clone()).await.unwrap_err();
    assert!(
        matches!(error, HandlerError::Channel { channel: "Slack", ref error } if error.retryable()),
        "{error}"
    );
    let diagnostic: Diagnostic = error.into();
    assert_eq!(diagnostic.error_type, "Retryable.Slack");
    assert!(deps.channel.posts().is_empty());
    // SNS/Lambda retry the same message: the claim was released, the probe token is the
    // message's own, and it posts once.
    assert_eq!(
        statuses(&invoke(&deps, event.clone()).await.unwrap()),
        [Status::Posted]
    );
    assert_eq!(
        statuses(&invoke(&deps, event).await.unwrap()),
        [Status::Duplicate]
    );
    assert_eq!(deps.channel.posts().len(), 1);
}

#[tokio::test]
async fn a_state_table_failure_fails_the_invocation_before_posting() {
    let mut deps = webhook();
    deps.store = MemoryStore::failing();
    let error = invoke(&deps, alert_event("m-1", &spike())).await.unwrap_err();
    assert_eq!(Diagnostic::from(error).error_type, "Retryable.StateStore");
    assert!(deps.channel.posts().is_empty());
}

#[tokio::test]
async fn probes_are_muted_per_owner() {
    let clock = Arc::new(AtomicI64::new(T0));
    let deps = deps_with(
        MemorySlack::default(),
        config(&[("PROBE_ALERT_INTERVAL_SECONDS", "600")]),
        clock.clone(),
    );
    let first = invoke(&deps, alert_event("p-1", &probe())).await.unwrap();
    // Another probe of the same owner: another incident.
    let another = Alert {
        thread_id: "another-incident".into(),
        ..probe()
    };
    let second = invoke(&deps, alert_event("p-2", &another)).await.unwrap();
    assert_eq!(statuses(&first), [Status::Posted]);
    assert_eq!(statuses(&second), [Status::RateLimited]);
    // A muted message is done: its redelivery posts nothing either.
    assert_eq!(
        statuses(&invoke(&deps, alert_event("p-2", &another)).await.unwrap()),
        [Status::Duplicate]
    );
    // Another owner is not muted.
    let mut other = Alert {
        thread_id: "other-org-incident".into(),
        ..probe()
    };
    if let Some(d) = other.diagnosis.as_mut() {
        d.claims.owner = Some("other-org".into());
        d.owner = diagnosis::owner::Owner::parse("github:other-org").ok();
    }
    assert_eq!(
        statuses(&invoke(&deps, alert_event("p-3", &other)).await.unwrap()),
        [Status::Posted]
    );
    // After the interval the first owner alerts again.
    clock.store(T0 + 601, Ordering::SeqCst);
    let later = Alert {
        thread_id: "a-later-incident".into(),
        ..probe()
    };
    assert_eq!(
        statuses(&invoke(&deps, alert_event("p-4", &later)).await.unwrap()),
        [Status::Posted]
    );
    assert_eq!(deps.channel.posts().len(), 3);
}

#[tokio::test]
async fn bot_mode_threads_an_incident_and_its_recovery() {
    let deps = bot(&[]);
    let first = invoke(&deps, alert_event("s-1", &spike())).await.unwrap();
    assert!(!first.deliveries[0].in_thread);
    let root = deps.channel.posts()[0].clone();
    assert_eq!(root.channel.as_deref(), Some("C0DEFAULT"));
    assert_eq!(
        deps.store.thread_of("spike-all-1791296700"),
        Some(ThreadRef {
            channel: "C0DEFAULT".into(),
            ts: root.ts.clone()
        })
    );
    // A later alert of the same spike joins the thread; the recovery does too, and is
    // broadcast to the channel.
    // The spike alerts again after its cooldown, at a higher count.
    let again = Alert {
        attempts: 60,
        ..spike()
    };
    let again = invoke(&deps, alert_event("s-2", &again)).await.unwrap();
    let recovered = invoke(&deps, alert_event("s-3", &recovery())).await.unwrap();
    assert!(again.deliveries[0].in_thread && recovered.deliveries[0].in_thread);
    let posts = deps.channel.posts();
    assert_eq!(posts.len(), 3);
    assert_eq!(posts[1].thread_ts.as_deref(), Some(root.ts.as_str()));
    assert!(!posts[1].broadcast);
    assert_eq!(posts[2].thread_ts.as_deref(), Some(root.ts.as_str()));
    assert!(posts[2].broadcast);
    // A recovery the monitor gave a thread id of its own still finds the spike's thread.
    let deps2 = bot(&[]);
    invoke(&deps2, alert_event("s-1", &spike())).await.unwrap();
    let mut late = recovery();
    late.thread_id = "spike-all-1791299999".into();
    let recovered = invoke(&deps2, alert_event("s-9", &late)).await.unwrap();
    assert!(recovered.deliveries[0].in_thread);
    assert_eq!(
        deps2.channel.posts()[1].thread_ts,
        Some(deps2.channel.posts()[0].ts.clone())
    );
    // A different incident starts its own thread.
    let other = invoke(
        &deps,
        alert_event(
            "i-1",
            &incident("audience-mismatch/github-owner-url-audience.json"),
        ),
    )
    .await
    .unwrap();
    assert!(!other.deliveries[0].in_thread);
    assert_eq!(deps.channel.posts()[3].thread_ts, None);
}

#[tokio::test]
async fn bot_mode_threads_an_alarm_until_it_is_ok_again() {
    let deps = bot(&[]);
    let alarm = fixture("sns-cloudwatch-alarm-single-metric.json");
    let mut ok = alarm.clone();
    let mut message: Value = serde_json::from_str(&message_of(&alarm)).unwrap();
    message["NewStateValue"] = json!("OK");
    message["OldStateValue"] = json!("ALARM");
    ok["Records"][0]["Sns"]["Message"] = json!(message.to_string());
    ok["Records"][0]["Sns"]["MessageId"] = json!("ok-1");
    let mut again = alarm.clone();
    again["Records"][0]["Sns"]["MessageId"] = json!("alarm-2");

    invoke(&deps, alarm).await.unwrap();
    let resolved = invoke(&deps, ok).await.unwrap();
    let reopened = invoke(&deps, again).await.unwrap();
    let posts = deps.channel.posts();
    assert_eq!(posts.len(), 3);
    assert!(resolved.deliveries[0].in_thread);
    assert_eq!(posts[1].thread_ts.as_deref(), Some(posts[0].ts.as_str()));
    assert!(posts[1].broadcast);
    // A new ALARM starts a new thread.
    assert!(!reopened.deliveries[0].in_thread);
    assert_eq!(posts[2].thread_ts, None);
}

#[tokio::test]
async fn bot_mode_routes_owners_and_accounts_to_channels() {
    let deps = bot(&[(
        "SLACK_ROUTES",
        "owner:evil-corp=C0SECURITY,account:444455556666=C0PLATFORM",
    )]);
    invoke(&deps, alert_event("r-1", &probe())).await.unwrap();
    invoke(
        &deps,
        alert_event(
            "r-2",
            &incident("subject-mismatch/other/eks-service-account-name-differs.json"),
        ),
    )
    .await
    .unwrap();
    invoke(&deps, alert_event("r-3", &spike())).await.unwrap();
    let channels: Vec<Option<String>> = deps.channel.posts().into_iter().map(|p| p.channel).collect();
    assert_eq!(
        channels,
        [
            Some("C0SECURITY".into()),
            Some("C0PLATFORM".into()),
            Some("C0DEFAULT".into())
        ]
    );
}

#[tokio::test]
async fn alarms_on_oidc_watch_metrics_get_the_breakdown_for_their_window() {
    let deps = webhook();
    invoke(&deps, fixture("sns-cloudwatch-alarm-metric-math.json"))
        .await
        .unwrap();
    invoke(&deps, fixture("sns-cloudwatch-alarm-ok.json"))
        .await
        .unwrap();
    let requests = deps.breakdown.requests.lock().unwrap().clone();
    // 14:30:00 UTC state change, 3 periods of 300 s; the Lambda alarm is not ours.
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].start, requests[0].end, requests[0].period),
        (T0 - 900, T0, 300)
    );
    let posted = deps.channel.posts()[0].payload.to_string();
    assert!(posted.contains("`SubjectMismatch`: 3"), "{posted}");

    let off = deps_with(
        MemorySlack::default(),
        config(&[("ALARM_BREAKDOWN", "off")]),
        Arc::new(AtomicI64::new(T0)),
    );
    invoke(&off, fixture("sns-cloudwatch-alarm-single-metric.json"))
        .await
        .unwrap();
    assert!(off.breakdown.requests.lock().unwrap().is_empty());
    assert_eq!(off.channel.posts().len(), 1);
}

#[tokio::test]
async fn every_fixture_posts_through_the_handler() {
    let deps = bot(&[]);
    let mut count = 0;
    for entry in std::fs::read_dir(fixtures_dir()).unwrap().flatten() {
        if entry.path().extension().is_none_or(|e| e != "json") {
            continue;
        }
        let event: Value = serde_json::from_str(&std::fs::read_to_string(entry.path()).unwrap()).unwrap();
        let outcome = invoke(&deps, event).await.unwrap();
        assert_ne!(
            statuses(&outcome),
            [Status::Dropped],
            "{}",
            entry.path().display()
        );
        count += 1;
    }
    assert!(count >= 8);
}
