//! Every file in `events/` parses, and every scenario diagnoses to the cause (and
//! `subject_mismatch` kind) that its directory names, with its account's snapshot.

use std::path::Path;

use diagnosis::{diagnose, read_input, Cause, Confidence, InputItem};
use oidc_watch_tests::{events_dir, files_below, pascal_case, sample_accounts};

/// `events/<cause>/<file>` or `events/subject-mismatch/<kind>/<file>`.
fn promised(path: &Path) -> Option<(String, Option<String>)> {
    let relative = path.strip_prefix(events_dir()).ok()?;
    let parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    match parts.as_slice() {
        [cause, _file] if cause != "accounts" && cause != "replay" => Some((pascal_case(cause), None)),
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
    for path in files_below(&events_dir(), &[".json"]) {
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
    let promised: Vec<(String, Option<String>)> = files_below(&events_dir(), &[".json"])
        .iter()
        .filter_map(|p| promised(p))
        .collect();
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
    for path in files_below(&events_dir(), &[".json"]) {
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
    let items = read_input(&log);
    let events = items
        .iter()
        .filter(|i| matches!(i, Ok(InputItem::Event(_))))
        .count();
    let skipped = items
        .iter()
        .filter(|i| matches!(i, Ok(InputItem::Skipped { .. })))
        .count();
    assert_eq!((events, skipped, items.len()), (3, 2, 5));
}
