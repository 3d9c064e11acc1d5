//! No character of general categories Cc, Cf, Zl or Zp, of the tag block
//! U+E0000–U+E007F, or Hangul filler leaves the system raw. Every such code point (all
//! of 0..=0x10FFFF, selected by category with `unicode-properties`, independently of
//! `text::is_invisible`) goes through each renderer of the diagnosis: `text::quote`,
//! `clean`, `finish_message` and `escape_controls`, a real diagnosis of an event whose
//! subject carries it, and the alert's Amazon Q notification and email body.

use diagnosis::alert::{Alert, AlertKind, Severity, SpikeSummary};
use diagnosis::testing::{event_of, sample_account, sample_json, with_subject};
use diagnosis::text::{self, clean, escape_controls, finish_message, needs_escape, quote};
use diagnosis::{diagnose, AccountSnapshot, Diagnosis};
use serde_json::{json, Value};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

const SAMPLE: &str = "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json";

/// Letters (`Lo`) that render as nothing.
const HANGUL_FILLERS: [char; 4] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}'];

/// What must never leave raw, by category (docs/design.md, "Untrusted input").
fn required(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || ('\u{E0000}'..='\u{E007F}').contains(&c)
        || HANGUL_FILLERS.contains(&c)
}

/// Every code point of those categories, walked over the whole code space (once).
fn hostile_chars() -> &'static [char] {
    static CHARS: std::sync::OnceLock<Vec<char>> = std::sync::OnceLock::new();
    CHARS.get_or_init(|| {
        let chars: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| required(c))
            .collect();
        // Cc 65, Cf 170 (97 of them tags), Zl, Zp, 31 unassigned tags, 4 fillers.
        assert!(chars.len() >= 270, "only {} characters", chars.len());
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

/// For multi-line text, whose own line breaks are U+000A: `c` occurs in `output` no more
/// often than in `baseline`, the same message with a harmless character in its place.
fn assert_no_more(output: &str, baseline: &str, c: char, context: &str) {
    let count = |s: &str| s.matches(c).count();
    assert_eq!(
        count(output),
        count(baseline),
        "{context}: raw U+{:04X} in {output:?}",
        c as u32
    );
}

#[test]
fn the_escaped_set_is_exactly_the_required_set() {
    for c in (0..=0x10FFFF_u32).filter_map(char::from_u32) {
        // U+2065 (unassigned, amid the invisible operators and bidi isolates) was escaped
        // before and still is.
        let want = required(c) || c == '\u{2065}';
        assert_eq!(
            needs_escape(c),
            want,
            "U+{:04X} ({:?})",
            c as u32,
            c.general_category()
        );
        assert_eq!(needs_escape(c), c.is_control() || text::is_invisible(c));
    }
}

#[test]
fn text_functions_escape_every_invisible_character() {
    let chars = hostile_chars();
    for &c in chars {
        let value = format!("repo:acme/web{c}app:ref:refs/heads/main{c}");
        let want = escaped(c);
        for (name, output) in [
            ("quote", quote(&value)),
            ("clean", clean(&value)),
            ("escape_controls", escape_controls(&value).into_owned()),
            ("finish_message", finish_message(format!("Subject {value}."))),
        ] {
            assert_clean(&output, c, name);
            assert!(output.contains(&want), "{name}: no {want} in {output:?}");
        }
    }
    // Many at once, as a message full of them: nothing raw, nothing lost but by the bound.
    let all: String = chars.iter().collect();
    let escaped_all = escape_controls(&all);
    let finished = finish_message(all.clone());
    for &c in chars {
        assert_clean(&escaped_all, c, "escape_controls, all");
        assert!(escaped_all.contains(&escaped(c)));
        assert_clean(&finished, c, "finish_message, all");
    }
    for chunk in chars.chunks(60) {
        let value: String = chunk.iter().flat_map(|&c| [c, 'x']).collect();
        let quoted = quote(&value);
        let cleaned = clean(&value);
        for &c in chunk {
            assert_clean(&quoted, c, "quote, batch");
            assert!(quoted.contains(&escaped(c)), "quote, batch: {}", escaped(c));
            assert_clean(&cleaned, c, "clean, batch");
        }
    }
    // The JSON form keeps the text (a reader gets it back) without carrying it raw.
    let json = text::to_json(&json!({ "subject": all })).unwrap();
    for &c in chars {
        assert_clean(&json, c, "to_json");
    }
    let back: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(back["subject"].as_str(), Some(all.as_str()));
}

fn snapshot() -> AccountSnapshot {
    sample_account("111122223333")
}

/// The sample's diagnosis (with its account's snapshot) had `subject` made the call.
fn diagnosis_with_subject(sample: &Value, snapshot: &AccountSnapshot, subject: &str) -> Diagnosis {
    diagnose(&event_of(&with_subject(sample, subject)), Some(snapshot))
}

/// A diagnosis of a real event whose subject carries `c`, with every other untrusted
/// field that an alert repeats carrying it too.
fn hostile_diagnosis(sample: &Value, snapshot: &AccountSnapshot, c: char) -> Diagnosis {
    let mut d = diagnosis_with_subject(
        sample,
        snapshot,
        &format!("repo:acme/web-app:ref:refs/heads/feature/{c}login{c}form"),
    );
    assert!(
        !needs_escape(c) || d.explanation.contains(&escaped(c)),
        "U+{:04X}: the explanation does not quote the subject: {}",
        c as u32,
        d.explanation
    );
    d.claims.repository = Some(format!("acme/web{c}app"));
    d.claims.owner = Some(format!("ac{c}me"));
    d.role_arn = Some(format!("arn:aws:iam::111122223333:role/gha{c}deploy"));
    d.role_name = Some(format!("gha{c}deploy"));
    d.region = Some(format!("us-east-1{c}"));
    d.github_run_id = Some(format!("1819{c}0844520"));
    d
}

fn alert_of(kind: AlertKind, c: char, d: Diagnosis) -> Alert {
    Alert {
        kind,
        severity: Severity::High,
        thread_id: "inc-1".into(),
        account_id: format!("1111{c}22223333"),
        cause: Some(d.cause),
        attempts: 3,
        diagnosis: Some(d),
        spike: None,
        notes: Vec::new(),
        changes: Vec::new(),
        digest: None,
    }
}

fn sample() -> Value {
    sample_json(SAMPLE)
}

/// What Amazon Q Developer shows and email subscribers read: title, description, next
/// steps, summary, and the plain-text body.
#[test]
fn alerts_escape_every_invisible_character() {
    let (sample, snapshot) = (sample(), snapshot());
    let harmless = hostile_diagnosis(&sample, &snapshot, 'x');
    for &c in hostile_chars() {
        let d = hostile_diagnosis(&sample, &snapshot, c);
        assert_clean(&d.explanation, c, "explanation");
        assert_clean(d.fix.as_deref().unwrap_or_default(), c, "fix");
        for kind in [AlertKind::Incident, AlertKind::Probe, AlertKind::ForeignSuccess] {
            let alert = alert_of(kind, c, d.clone());
            let q = alert.to_q_notification();
            let context = format!("U+{:04X} {kind:?}", c as u32);
            let title = q["content"]["title"].as_str().unwrap();
            let description = q["content"]["description"].as_str().unwrap();
            assert_clean(title, c, &format!("{context} title"));
            assert_clean(description, c, &format!("{context} description"));
            assert!(description.contains(&escaped(c)), "{context}: {description}");
            assert_clean(
                q["metadata"]["summary"].as_str().unwrap(),
                c,
                &format!("{context} summary"),
            );
            let next_steps = q["content"]["nextSteps"].as_array().unwrap();
            assert!(!next_steps.is_empty(), "{context}: no fix");
            for step in next_steps {
                assert_clean(step.as_str().unwrap(), c, &format!("{context} nextSteps"));
            }
            let plain = alert.to_plain_text();
            let baseline = alert_of(kind, 'x', harmless.clone()).to_plain_text();
            assert_no_more(&plain, &baseline, c, &format!("{context} plain text"));
            assert!(plain.contains(&escaped(c)), "{context}: {plain}");
        }
    }
}

/// Spikes quote their top roles and causes.
#[test]
fn spike_alerts_escape_every_invisible_character() {
    let spike = |name: String| Alert {
        kind: AlertKind::Spike,
        severity: Severity::High,
        thread_id: "spike-all-1".into(),
        account_id: "111122223333".into(),
        cause: None,
        attempts: 9,
        diagnosis: None,
        spike: Some(SpikeSummary {
            scope: "all".into(),
            window_seconds: 300,
            failures: 9,
            baseline: 1.0,
            top_roles: vec![(name.clone(), 5)],
            top_causes: vec![(name, 4)],
        }),
        notes: Vec::new(),
        changes: Vec::new(),
        digest: None,
    };
    for chunk in hostile_chars().chunks(40) {
        let name: String = chunk.iter().flat_map(|&c| [c, 'r']).collect();
        let alert = spike(name);
        let q = alert.to_q_notification();
        let description = q["content"]["description"].as_str().unwrap();
        let plain = alert.to_plain_text();
        let baseline = spike("xr".repeat(chunk.len())).to_plain_text();
        for &c in chunk {
            assert_clean(q["content"]["title"].as_str().unwrap(), c, "spike title");
            assert_clean(description, c, "spike description");
            assert!(description.contains(&escaped(c)));
            assert_no_more(&plain, &baseline, c, "spike plain text");
        }
    }
}

/// Every string of `value`, keys included.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (key, v) in map {
                out.push(key.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// The whole Q notification, `metadata.additionalContext` included (its `diagnosis`
/// member is what oidc-notifier reads back), as SNS carries it.
#[test]
fn q_notification_additional_context_escapes_every_invisible_character() {
    let (sample, snapshot) = (sample(), snapshot());
    for &c in hostile_chars() {
        let d = hostile_diagnosis(&sample, &snapshot, c);
        let mut alert = alert_of(AlertKind::Incident, c, d);
        let q = alert.to_q_notification();
        let mut all = Vec::new();
        strings(&q, &mut all);
        for s in &all {
            assert_clean(s, c, &format!("U+{:04X} Q notification", c as u32));
        }
        assert_clean(&serde_json::to_string(&q).unwrap(), c, "SNS message");
        alert.spike = Some(SpikeSummary {
            scope: format!("role:gha{c}deploy"),
            window_seconds: 300,
            failures: 9,
            baseline: 1.0,
            top_roles: vec![(format!("gha{c}deploy"), 5)],
            top_causes: vec![],
        });
        alert.kind = AlertKind::Spike;
        let q = alert.to_q_notification();
        let mut all = Vec::new();
        strings(&q, &mut all);
        for s in &all {
            assert_clean(s, c, &format!("U+{:04X} spike notification", c as u32));
        }
    }
}
