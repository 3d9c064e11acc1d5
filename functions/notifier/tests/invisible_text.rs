//! In Slack: no control (`Cc`), format (`Cf`), line or paragraph
//! separator (`Zl`, `Zp`), tag (U+E0000–U+E007F) or Hangul filler character reaches a
//! message raw. Every such code point goes through the escaping functions, through the
//! real producer (event -> diagnosis -> Q notification -> `render`), and through a forged
//! alert and alarm with every field carrying it.
//!
//! The set is `diagnosis::text::needs_escape` over the whole code space; the diagnosis's
//! `tests/invisible_text.rs` proves, category by category with `unicode-properties`, that
//! it is exactly those characters (plus the unassigned U+2065). Two characters the
//! notifier writes itself are allowed where it writes them: U+000A between lines and
//! U+200D ([`MENTION_BREAK`]) after an `@`; so a whole message may carry them no more
//! often than the same message made with a harmless character in place of the hostile one.

mod common;

use common::*;
use diagnosis::alert::{Alert, AlertKind, Severity, SpikeSummary};
use diagnosis::text::needs_escape;
use oidc_notifier::escape::{bound, code, fit, mrkdwn, mrkdwn_lines, value, MENTION_BREAK};
use oidc_notifier::notice::parse_message;
use oidc_notifier::render::render;
use serde_json::{json, Value};

const SAMPLE: &str = "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json";

/// Every code point that must not reach Slack raw (once).
fn hostile_chars() -> &'static [char] {
    static CHARS: std::sync::OnceLock<Vec<char>> = std::sync::OnceLock::new();
    CHARS.get_or_init(|| {
        let chars: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| needs_escape(c))
            .collect();
        assert!(chars.len() >= 270, "only {} characters", chars.len());
        for c in [
            '\u{2028}',
            '\u{061C}',
            '\u{00AD}',
            '\u{180E}',
            '\u{3164}',
            '\u{E0041}',
        ] {
            assert!(chars.contains(&c), "U+{:04X}", c as u32);
        }
        chars
    })
}

fn escaped(c: char) -> String {
    format!("\\u{{{:04x}}}", c as u32)
}

fn assert_clean(output: &str, c: char, context: &str) {
    assert!(
        !output.contains(c),
        "{context}: raw U+{:04X} in {output:?}",
        c as u32
    );
}

/// Every string value of a payload, joined: `text`s, `url`s, `block_id`s, all of them.
fn all_strings(value: &Value) -> String {
    fn walk(value: &Value, out: &mut String) {
        match value {
            Value::String(s) => {
                out.push_str(s);
                out.push_str(" | ");
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    walk(value, &mut out);
    out
}

/// `c` occurs in `payload`'s strings no more often than in `baseline`'s (see the module
/// docs), and a raw `U+200D` only after an `@`.
fn assert_payload_clean(payload: &Value, baseline: &Value, c: char, context: &str) {
    let (text, base) = (all_strings(payload), all_strings(baseline));
    let count = |s: &str| s.matches(c).count();
    assert_eq!(
        count(&text),
        count(&base),
        "{context}: raw U+{:04X} in {text:?}",
        c as u32
    );
    if c == MENTION_BREAK {
        let chars: Vec<char> = text.chars().collect();
        for (i, &d) in chars.iter().enumerate() {
            assert!(
                d != MENTION_BREAK || (i > 0 && chars[i - 1] == '@'),
                "{context}: {text:?}"
            );
        }
    } else if c != '\n' {
        assert_clean(&text, c, context);
    }
}

#[test]
fn escaping_functions_escape_every_invisible_character() {
    for &c in hostile_chars() {
        let piece = format!("repo:acme/web{c}app:ref:refs/heads/{c}main");
        let want = escaped(c);
        for (name, output) in [
            ("mrkdwn", mrkdwn(&piece)),
            ("mrkdwn_lines", mrkdwn_lines(&piece)),
            ("bound", bound(&piece)),
            ("value", value(&piece)),
            ("code", code(&piece)),
            ("fit", fit(&mrkdwn(&piece.repeat(40)), 777)),
        ] {
            if name == "mrkdwn_lines" && c == '\n' {
                continue; // it keeps line breaks: it is for our own multi-line text
            }
            assert_clean(&output, c, &format!("{name} U+{:04X}", c as u32));
            assert!(output.contains(&want), "{name}: no {want} in {output:?}");
        }
    }
    // Many at once.
    for chunk in hostile_chars().chunks(20) {
        let piece: String = chunk.iter().flat_map(|&c| [c, '-']).collect();
        let (escaped_text, valued) = (mrkdwn(&piece), value(&piece));
        for &c in chunk {
            assert_clean(&escaped_text, c, "mrkdwn, batch");
            assert!(escaped_text.contains(&escaped(c)));
            assert_clean(&valued, c, "value, batch");
        }
    }
}

/// The producer's diagnosis of a job whose subject, repository, role, region and run
/// carry `c`.
fn producer_diagnosis(c: char) -> diagnosis::Diagnosis {
    let event = with_subject(
        SAMPLE,
        &format!("repo:acme/web-app:ref:refs/heads/feature/{c}login{c}form"),
    );
    let mut d = diagnosis_of_value(&event);
    d.claims.repository = Some(format!("acme/web{c}app"));
    d.claims.owner = Some(format!("ac{c}me"));
    d.claims.git_ref = Some(format!("refs/heads/feature/{c}login{c}form"));
    d.role_arn = Some(format!("arn:aws:iam::111122223333:role/gha{c}deploy"));
    d.role_name = Some(format!("gha{c}deploy"));
    d.region = Some(format!("us-east-1{c}"));
    d.github_run_id = Some(format!("1819{c}0844520"));
    d
}

/// The Slack message for the producer's alert of `kind`, in an account that carries `c`.
fn slack_of(kind: AlertKind, c: char, d: &diagnosis::Diagnosis) -> Value {
    let alert = Alert {
        kind,
        severity: Severity::High,
        account_id: format!("1111{c}22223333"),
        ..incident_from(d.clone(), 3)
    };
    let notice = parse_message(&sns_message(&alert)).unwrap();
    render(&notice, None).payload()
}

const KINDS: [AlertKind; 3] = [AlertKind::Incident, AlertKind::Probe, AlertKind::ForeignSuccess];

/// A stranger's job, through the real producer.
#[test]
fn alerts_from_real_events_escape_every_invisible_character() {
    let harmless = producer_diagnosis('x');
    let baselines = KINDS.map(|kind| slack_of(kind, 'x', &harmless));
    for &c in hostile_chars() {
        let d = producer_diagnosis(c);
        for (kind, baseline) in KINDS.iter().zip(&baselines) {
            let payload = slack_of(*kind, c, &d);
            let context = format!("U+{:04X} {kind:?}", c as u32);
            assert_payload_clean(&payload, baseline, c, &context);
            assert!(
                all_strings(&payload).contains(&escaped(c)),
                "{context}: the subject is not shown escaped"
            );
        }
    }
}

fn forged_view(v: &str) -> Value {
    json!({
        "event_id": v, "event_time": v, "account_id": v,
        "region": format!("us-east-1{v}"),
        "role_arn": format!("arn:aws:iam::111122223333:role/{v}"),
        "role_name": v, "provider": v, "provider_arn": v,
        "subject": format!("repo:acme/{v}:ref:refs/heads/{v}"),
        "audience": v,
        "claims": {
            "format": "github",
            "repository": format!("acme/{v}"),
            "owner": v,
            "ref": format!("refs/heads/{v}"),
            "ref_type": "branch",
        },
        "cause": "SubjectMismatch",
        "subject_mismatch": "Branch",
        "confidence": v,
        "explanation": format!("explained {v}"),
        "fix": format!("replace \"{v}\" with \"main\""),
        "failed_conditions": [{"statement": 0, "operator": v, "key": v, "expected": [v, v], "actual": v}],
        "findings": [{"code": v, "severity": v, "message": v}],
        "evidence": v,
        "duration_seconds": 1,
        "github_run_id": format!("123{v}"),
    })
}

fn forged_message(kind: &str, v: &str) -> Value {
    let spike = SpikeSummary {
        scope: v.to_owned(),
        window_seconds: 300,
        failures: 9,
        baseline: 1.0,
        top_roles: vec![(v.to_owned(), 5)],
        top_causes: vec![(v.to_owned(), 4)],
    };
    let message = json!({
        "version": "1.0",
        "source": "custom",
        "id": v,
        "content": {"title": v, "description": v},
        "metadata": {
            "threadId": v,
            "additionalContext": {
                "kind": kind,
                "severity": "critical",
                "account": v,
                "attempts": "7",
                "cause": v,
                "subject_mismatch": v,
                "diagnosis": serde_json::to_string(&forged_view(v)).unwrap(),
                "spike": serde_json::to_string(&spike).unwrap(),
            }
        }
    });
    let notice = parse_message(&message.to_string()).unwrap();
    render(&notice, None).payload()
}

/// `chunk` between harmless letters, and the same with `x` in place of each.
fn pieces(chunk: &[char]) -> (String, String) {
    let hostile = chunk.iter().flat_map(|&c| [c, 'q']).collect();
    let harmless = "xq".repeat(chunk.len());
    (hostile, harmless)
}

/// A forged or buggy producer: every field of the alert message carries the characters,
/// unescaped (ten at a time, short enough that no value bound cuts them away).
#[test]
fn forged_alert_fields_escape_every_invisible_character() {
    for kind in ["incident", "probe", "foreign-success", "spike", "recovery"] {
        for chunk in hostile_chars().chunks(10) {
            let (hostile, harmless) = pieces(chunk);
            let payload = forged_message(kind, &hostile);
            let baseline = forged_message(kind, &harmless);
            for &c in chunk {
                assert_payload_clean(&payload, &baseline, c, &format!("{kind} U+{:04X}", c as u32));
            }
        }
    }
}

fn forged_alarm(v: &str) -> Value {
    let mut event = fixture("sns-cloudwatch-alarm-metric-math.json");
    let mut alarm: Value = serde_json::from_str(&message_of(&event)).unwrap();
    for key in [
        "AlarmName",
        "AlarmDescription",
        "NewStateReason",
        "OldStateValue",
        "AWSAccountId",
        "Region",
        "StateChangeTime",
    ] {
        alarm[key] = json!(v);
    }
    alarm["AlarmArn"] = json!(format!("arn:aws:cloudwatch:us-east-1:111122223333:alarm:{v}"));
    alarm["Trigger"]["ComparisonOperator"] = json!(v);
    for query in alarm["Trigger"]["Metrics"].as_array_mut().unwrap() {
        query["Id"] = json!(v);
        query["Label"] = json!(v);
        if query.get("Expression").is_some() {
            query["Expression"] = json!(v);
        } else {
            query["MetricStat"]["Stat"] = json!(v);
            query["MetricStat"]["Metric"]["Namespace"] = json!(v);
            query["MetricStat"]["Metric"]["Dimensions"] = json!([{"name": v, "value": v}]);
        }
    }
    event["Records"][0]["Sns"]["Message"] = json!(alarm.to_string());
    let notice = parse_message(&message_of(&event)).unwrap();
    let breakdown = oidc_notifier::ports::Breakdown {
        start: 0,
        end: 60,
        by_cause: vec![(v.to_owned(), 3.0)],
        by_role: vec![(v.to_owned(), 2.0)],
    };
    render(&notice, Some(&breakdown)).payload()
}

#[test]
fn forged_alarm_fields_escape_every_invisible_character() {
    for chunk in hostile_chars().chunks(10) {
        let (hostile, harmless) = pieces(chunk);
        let payload = forged_alarm(&hostile);
        let baseline = forged_alarm(&harmless);
        for &c in chunk {
            assert_payload_clean(&payload, &baseline, c, &format!("alarm U+{:04X}", c as u32));
        }
    }
}
