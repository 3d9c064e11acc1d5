//! Every file in `events/` parses, and every scenario diagnoses to the cause (and
//! `subject_mismatch` kind) that its directory names, with its account's snapshot. The
//! other inputs there (snapshots, replay files, SNS events) read as what they are.

use std::path::Path;

use diagnosis::testing::{
    event_files, events_dir, files_below, input_counts, pascal_case, relative_to_events, sample_accounts,
    sns_dir, InputCounts, NOT_SCENARIOS,
};
use diagnosis::{diagnose, read_input, Cause, Confidence, InputItem};
use serde_json::Value;

/// `events/<cause>/<file>` or `events/subject-mismatch/<kind>/<file>`.
fn promised(path: &Path) -> Option<(String, Option<String>)> {
    let relative = path.strip_prefix(events_dir()).ok()?;
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [cause, _file] if !NOT_SCENARIOS.contains(&cause.as_str()) => Some((pascal_case(cause), None)),
        [cause, kind, _file] if cause == "subject-mismatch" => {
            Some((pascal_case(cause), Some(pascal_case(kind))))
        }
        _ => None,
    }
}

#[test]
fn every_scenario_diagnoses_to_the_cause_its_path_names() {
    let accounts = sample_accounts();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for path in event_files() {
        let Some((cause, kind)) = promised(&path) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let items = read_input(&bytes);
        assert_eq!(
            items.len(),
            1,
            "{}: one envelope per scenario file",
            path.display()
        );
        let Ok(InputItem::Event(event)) = &items[0] else {
            panic!("{}: {:?}", path.display(), items[0]);
        };
        assert!(
            event.envelope_id.is_some(),
            "{}: scenarios are EventBridge envelopes",
            path.display()
        );
        let account = accounts
            .iter()
            .find(|a| Some(&a.account_id) == event.envelope_account.as_ref());
        assert!(
            account.is_some(),
            "{}: no snapshot for its account",
            path.display()
        );
        let diagnosis = diagnose(event, account);
        let got_kind = diagnosis.subject_mismatch.map(|k| k.as_str().to_owned());
        if diagnosis.cause.as_str() != cause || got_kind != kind {
            wrong.push(format!(
                "{}: expected {cause} {kind:?}, got {} {got_kind:?}\n    {}",
                path.strip_prefix(events_dir()).unwrap().display(),
                diagnosis.cause.as_str(),
                diagnosis.explanation
            ));
        }
        assert!(!diagnosis.explanation.is_empty());
        if diagnosis.cause != Cause::None {
            assert!(
                diagnosis.fix.is_some(),
                "{}: a failure needs a fix",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(
        wrong.is_empty(),
        "{} of {checked} scenarios diagnosed wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(checked >= 30, "only {checked} scenarios found");
}

#[test]
fn every_cause_and_mismatch_kind_has_a_sample() {
    let promised: Vec<(String, Option<String>)> = event_files().iter().filter_map(|p| promised(p)).collect();
    for cause in Cause::ALL {
        assert!(
            promised.iter().any(|(c, _)| c == cause.as_str()),
            "no sample for {}",
            cause.as_str()
        );
    }
    for kind in diagnosis::SubjectMismatch::ALL {
        assert!(
            promised.iter().any(|(_, k)| k.as_deref() == Some(kind.as_str())),
            "no sample for SubjectMismatch {}",
            kind.as_str()
        );
    }
}

#[test]
fn without_a_snapshot_failures_say_their_confidence_is_lower() {
    for path in event_files() {
        let Some((cause, _)) = promised(&path) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let Ok(InputItem::Event(event)) = &read_input(&bytes)[0] else {
            panic!()
        };
        let diagnosis = diagnose(event, None);
        assert_eq!(diagnosis.evidence, "event-only");
        if cause == "AccessDenied" || diagnosis.error_code.as_deref() == Some("AccessDenied") {
            assert_eq!(diagnosis.confidence, Confidence::Unknown, "{}", path.display());
            assert!(
                diagnosis.explanation.contains("Without the trust policy")
                    || diagnosis.cause == Cause::Unknown
            );
        }
    }
}

#[test]
fn replay_files_parse_and_skip_other_events() {
    let dir = events_dir().join("replay");
    let log = std::fs::read(dir.join("cloudtrail-log-file-mixed.json")).unwrap();
    assert_eq!(
        input_counts(&log),
        InputCounts {
            events: 3,
            skipped: 2,
            errors: 0
        }
    );
}

/// The SNS events of `events/sns/` are full Lambda SNS events whose message is JSON, and
/// read as input (`oidc-watch diagnose events/`) they hold no web-identity call and no error.
#[test]
fn sns_files_are_sns_events_that_hold_no_cloudtrail_record() {
    let files = files_below(&sns_dir(), &[".json"]);
    assert!(files.len() >= 8, "only {} SNS events", files.len());
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let event: Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let records = event["Records"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no Records", path.display()));
        assert!(!records.is_empty(), "{}", path.display());
        for record in records {
            assert_eq!(record["EventSource"], "aws:sns", "{}", path.display());
            let message = record["Sns"]["Message"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: no Sns.Message", path.display()));
            serde_json::from_str::<Value>(message)
                .unwrap_or_else(|e| panic!("{}: Sns.Message: {e}", path.display()));
        }
        let counts = input_counts(&bytes);
        assert_eq!(
            (counts.events, counts.errors),
            (0, 0),
            "{}: {counts:?}",
            path.display()
        );
    }
}

/// The IAM change events of `events/changes/` read as typed changes of the account the
/// snapshots describe, one per file, and the web-identity reader skips them.
#[test]
fn change_files_read_as_iam_changes() {
    let files = files_below(&events_dir().join("changes"), &[".json"]);
    assert!(files.len() >= 8, "{} change files", files.len());
    let mut actions = std::collections::BTreeSet::new();
    for path in files {
        let items = read_input(&std::fs::read(&path).unwrap());
        let [Ok(InputItem::Skipped {
            change: Some(change), ..
        })] = items.as_slice()
        else {
            panic!("{}: {items:?}", path.display());
        };
        assert_eq!(change.account, "111122223333", "{}", path.display());
        assert!(change.actor.is_some(), "{}: who made it", path.display());
        assert!(
            change.role.is_some() || change.provider.is_some(),
            "{}",
            path.display()
        );
        if change.action == diagnosis::change::ChangeAction::UpdateAssumeRolePolicy {
            assert!(change.policy().is_some(), "{}: the policy after", path.display());
        }
        actions.insert(change.action);
    }
    assert_eq!(
        actions.len(),
        diagnosis::change::ChangeAction::ALL.len(),
        "every action has a sample"
    );
}

/// Every `.json` file of `events/` is a scenario, a snapshot, a replay input or an SNS event.
#[test]
fn every_file_is_in_a_known_place() {
    for path in event_files() {
        let relative = relative_to_events(&path);
        let top = relative.split('/').next().unwrap_or_default();
        assert!(
            promised(&path).is_some() || NOT_SCENARIOS.contains(&top),
            "{relative}: not under a cause, subject-mismatch/<kind>, accounts, changes, replay or sns"
        );
    }
}
