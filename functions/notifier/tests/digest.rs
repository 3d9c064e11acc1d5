//! The audit digest in every channel: Slack blocks, the Teams card and the email text
//! name each new finding (code, message, verified change) under its severity, account
//! and role, and list the resolved ones; strangers' text forms no mention, link or markup.

mod common;

use common::*;
use diagnosis::audit::{Digest, FindingCode, Severity as S};
use oidc_notifier::notice::parse_message;
use oidc_notifier::render::{limit_violations, render};

fn notice(alert: &diagnosis::alert::Alert) -> oidc_notifier::notice::Notice {
    parse_message(&sns_message(alert)).unwrap()
}

#[test]
fn every_channel_names_the_new_and_the_resolved_findings() {
    let alert = audit_digest();
    let slack = render(&notice(&alert), None).payload().to_string();
    let card = oidc_notifier::adaptive_card::render(&notice(&alert), None).to_string();
    let email = alert.to_plain_text();
    for (channel, text) in [("slack", &slack), ("teams", &card), ("email", &email)] {
        for needle in [
            "gha-deploy-prod",
            "OwnerWildcard",
            "lets any GitHub user's repository assume this role",
            "RepositoryRenamed",
            "repo:acme/storefront:*",
            "gha-legacy-deploy",
            "NoSubjectCondition",
            "444455556666",
        ] {
            assert!(text.contains(needle), "{channel}: missing {needle} in {text}");
        }
    }
    // Highest severity first, the resolved list after the new one.
    for (channel, text) in [("slack", &slack), ("teams", &card), ("email", &email)] {
        let wildcard = text.find("OwnerWildcard").unwrap();
        let renamed = text.find("RepositoryRenamed").unwrap();
        let resolved = text.find("NoSubjectCondition").unwrap();
        assert!(wildcard < renamed && renamed < resolved, "{channel}: {text}");
    }
    assert!(
        slack.contains("HIGH · Trust-policy audit: 3 new, 1 resolved"),
        "{slack}"
    );
}

#[test]
fn strangers_text_in_a_digest_is_defused() {
    let mut hostile = account_finding(
        Some("<!channel>`x`"),
        FindingCode::OwnerWildcard,
        S::High,
        "Statement 0 allows \"repo:<https://evil.example|click>/*:*\" @here <at>boss</at>",
    );
    hostile.value = Some("repo:*".into());
    let digest = Digest {
        new: vec![hostile],
        ..Digest::default()
    };
    let alert = diagnosis::alert::digest_alert("111122223333", &["111122223333".into()], &digest, &[]);
    let payload = render(&notice(&alert), None).payload();
    assert!(limit_violations(&payload).is_empty());
    let slack = payload.to_string();
    assert!(
        !slack.contains("<!channel>") && !slack.contains("<https://evil"),
        "{slack}"
    );
    assert!(slack.contains("&lt;!channel&gt;"), "{slack}");
    assert!(!slack.contains("@here"), "a mention must be broken: {slack}");
    let card = oidc_notifier::adaptive_card::render(&notice(&alert), None).to_string();
    assert!(!card.contains("https://evil") && !card.contains("<at>"), "{card}");
}

#[test]
fn a_large_digest_fits_slack_and_teams() {
    let mut digest = Digest::default();
    for i in 0..60 {
        digest.new.push(account_finding(
            Some(&format!("role-{i:02}-{}", "r".repeat(50))),
            FindingCode::NoSubjectCondition,
            if i % 2 == 0 { S::High } else { S::Low },
            &"m".repeat(2000),
        ));
        digest.resolved.push(account_finding(
            Some(&format!("old-{i:02}")),
            FindingCode::OwnerWildcard,
            S::High,
            "gone",
        ));
    }
    let alert = diagnosis::alert::digest_alert("111122223333", &["111122223333".into()], &digest, &[]);
    let payload = render(&notice(&alert), None).payload();
    assert_eq!(limit_violations(&payload), Vec::<String>::new());
    let slack = payload.to_string();
    assert!(slack.contains("more new findings not shown"), "{slack}");
    let card = oidc_notifier::adaptive_card::render(&notice(&alert), None);
    let bytes = serde_json::to_vec(&card).unwrap().len();
    assert!(
        bytes <= oidc_notifier::adaptive_card::limits::MAX_MESSAGE_BYTES,
        "{bytes}"
    );
    assert!(card
        .to_string()
        .contains("Trust-policy audit: 60 new, 60 resolved"));
}
