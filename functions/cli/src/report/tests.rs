use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const ROLE: &str = "arn:aws:iam::111122223333:role/gha-deploy";
const T0: i64 = 1_762_090_816; // 2025-11-02T13:40:16Z

/// A diagnosis as the JSON contract reads it: only what the report looks at.
fn diagnosis(fields: Value) -> Diagnosis {
    let mut base = json!({
        "event_id": null,
        "account_id": "111122223333",
        "role_arn": ROLE,
        "role_name": "gha-deploy",
        "outcome": "Failure",
        "cause": "SubjectMismatch",
        "subject_mismatch": "Branch",
        "subject": "repo:acme/web:ref:refs/heads/feature",
        "claims": {"format": "github", "repository": "acme/web"},
        "owner": "github:acme",
        "trust": "ours",
        "explanation": "Statement 0 requires …",
        "fix": "Add …",
        "findings": [],
    });
    if let (Some(base), Some(fields)) = (base.as_object_mut(), fields.as_object()) {
        for (k, v) in fields {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).expect("a diagnosis")
}

fn at(t: i64) -> Value {
    json!(diagnosis::time::iso8601(t))
}

fn report(diagnoses: &[Diagnosis]) -> Report {
    let mut builder = ReportBuilder::default();
    for d in diagnoses {
        builder.add(d);
    }
    builder.finish()
}

#[test]
fn retries_within_the_window_of_the_first_attempt_are_one_incident() {
    let attempts: Vec<Diagnosis> = [0, 60, 900, 901, 5000]
        .iter()
        .enumerate()
        .map(|(i, dt)| diagnosis(json!({"event_id": format!("e{i}"), "event_time": at(T0 + dt)})))
        .collect();
    // Delivered out of order, as CloudTrail delivers: the windows still run on event time.
    let mut shuffled = attempts.clone();
    shuffled.reverse();
    for input in [&attempts, &shuffled] {
        let r = report(input);
        let seen: Vec<(Option<i64>, Option<i64>, usize)> = r
            .incidents
            .iter()
            .map(|i| (i.first, i.last, i.attempts))
            .collect();
        assert_eq!(
            seen,
            vec![
                (Some(T0), Some(T0 + 900), 3),
                (Some(T0 + 901), Some(T0 + 901), 1),
                (Some(T0 + 5000), Some(T0 + 5000), 1),
            ]
        );
        assert_eq!(r.diagnoses.len(), 1, "one job");
        assert_eq!(r.diagnoses[0].attempts, 5);
        assert_eq!(r.diagnoses[0].incidents, 3);
        assert_eq!(
            r.diagnoses[0].diagnosis.event_id.as_deref(),
            Some("e0"),
            "the earliest attempt's diagnosis"
        );
    }
}

#[test]
fn a_record_read_twice_is_one_attempt() {
    let first = diagnosis(json!({"event_id": "e1", "event_time": at(T0)}));
    let second = diagnosis(json!({"event_id": "e2", "event_time": at(T0 + 60)}));
    let r = report(&[first.clone(), second, first]);
    assert_eq!(r.totals.failures, 3, "the totals are the JSON lines'");
    assert_eq!(r.repeated_failures, 1);
    assert_eq!(r.incidents.len(), 1);
    assert_eq!(r.incidents[0].attempts, 2);
}

#[test]
fn another_subject_role_or_cause_is_another_incident() {
    let r = report(&[
        diagnosis(json!({"event_time": at(T0)})),
        diagnosis(json!({"event_time": at(T0 + 1), "subject": "repo:acme/web:ref:refs/heads/other"})),
        diagnosis(json!({"event_time": at(T0 + 2), "role_arn": "arn:aws:iam::111122223333:role/other"})),
        diagnosis(json!({"event_time": at(T0 + 3), "cause": "AudienceMismatch", "subject_mismatch": null})),
        // The role's name in another case is the same role, as for the monitor.
        diagnosis(json!({"event_time": at(T0 + 4), "role_arn": ROLE.to_uppercase()})),
    ]);
    assert_eq!(r.incidents.len(), 4);
    assert_eq!(r.incidents.iter().map(|i| i.attempts).sum::<usize>(), 5);
}

#[test]
fn failures_of_owners_not_ours_are_probes_by_owner() {
    let probe = |t: i64, subject: &str, owner: &str, role: &str| {
        diagnosis(json!({
            "event_time": at(t), "subject": subject, "owner": owner, "trust": "foreign",
            "role_arn": format!("arn:aws:iam::111122223333:role/{role}"), "role_name": role,
        }))
    };
    let r = report(&[
        probe(T0, "repo:evil/a:ref:refs/heads/main", "github:Evil", "gha-deploy"),
        probe(
            T0 + 10,
            "repo:evil/a:ref:refs/heads/main",
            "github:Evil",
            "gha-deploy",
        ),
        probe(
            T0 + 20,
            "repo:evil/b:ref:refs/heads/main",
            "github:Evil",
            "gha-admin",
        ),
        probe(T0 + 30, "repo:other/c:pull_request", "github:other", "gha-deploy"),
        diagnosis(json!({"event_time": at(T0 + 40)})),
    ]);
    let rows: Vec<(&str, usize, usize, usize, usize)> = r
        .probes
        .iter()
        .map(|p| (p.owner.as_str(), p.attempts, p.incidents, p.subjects, p.roles))
        .collect();
    assert_eq!(
        rows,
        vec![("github:evil", 3, 2, 2, 2), ("github:other", 1, 1, 1, 1)]
    );
    assert_eq!(r.probe_incidents(), 3);
    assert_eq!(r.incidents.len(), 4);
}

#[test]
fn every_table_adds_up_to_the_totals() {
    let mut input = Vec::new();
    for i in 0..40 {
        let cause = ["SubjectMismatch", "AudienceMismatch", "None", "RoleNotFound"][i % 4];
        let outcome = if cause == "None" { "Success" } else { "Failure" };
        input.push(diagnosis(json!({
            "event_time": at(T0 + i as i64 * 3600),
            "cause": cause, "outcome": outcome,
            "role_arn": format!("arn:aws:iam::111122223333:role/r{}", i % 3),
            "role_name": format!("r{}", i % 3),
            "subject": format!("repo:acme/web:ref:refs/heads/b{}", i % 5),
            "claims": {"format": "github", "repository": format!("acme/r{}", i % 7)},
        })));
    }
    input.push(diagnosis(json!({"event_time": "not a time"})));
    let r = report(&input);
    let t = &r.totals;
    assert_eq!(t.events, 41);
    assert_eq!(t.successes, 10);
    assert_eq!(t.failures, 31);
    assert_eq!(t.undated, 1);
    assert_eq!(r.causes.iter().map(|c| c.1).sum::<usize>(), t.failures);
    assert_eq!(r.roles.iter().map(|r| r.failures).sum::<usize>(), t.failures);
    assert_eq!(r.roles.iter().map(|r| r.successes).sum::<usize>(), t.successes);
    let top = |top: &Top| top.rows.iter().map(|r| r.1).sum::<usize>() + top.others + top.untracked;
    assert_eq!(top(&r.repositories), t.failures);
    assert_eq!(top(&r.subjects), t.failures);
    assert_eq!(
        r.incidents.iter().map(|i| i.attempts).sum::<usize>() + r.repeated_failures,
        t.failures
    );
    let timeline = r.timeline.as_ref().expect("dated events");
    let charted: usize = timeline.buckets.iter().map(|b| b.failures + b.successes).sum();
    assert_eq!(charted, t.events - t.undated);
    assert_eq!(timeline.width_name, "hour");
    assert_eq!(t.failure_rate(), Some(31.0 / 41.0));
}

#[test]
fn the_bucket_width_follows_the_span() {
    let width = |span: i64| {
        report(&[
            diagnosis(json!({"event_time": at(T0)})),
            diagnosis(json!({"event_time": at(T0 + span)})),
        ])
        .timeline
        .expect("dated")
        .width_name
    };
    assert_eq!(width(90), "minute");
    assert_eq!(width(90 * 60), "minute");
    assert_eq!(width(10 * 3600), "15 minutes");
    assert_eq!(width(4 * 86_400), "hour");
    assert_eq!(width(20 * 86_400), "6 hours");
    assert_eq!(width(100 * 86_400), "day");
    assert_eq!(width(2 * 365 * 86_400), "week");
    for span in [0, 59, 3599, 86_399, 40 * 86_400, 20 * 365 * 86_400] {
        let r = report(&[
            diagnosis(json!({"event_time": at(T0)})),
            diagnosis(json!({"event_time": at(T0 + span)})),
        ]);
        let buckets = r.timeline.expect("dated").buckets;
        assert!(buckets.len() <= MAX_BUCKETS, "{span}: {}", buckets.len());
        assert_eq!(buckets.iter().map(|b| b.failures).sum::<usize>(), 2);
    }
}

#[test]
fn successes_of_owners_not_ours_are_counted_apart() {
    let r = report(&[
        diagnosis(json!({"cause": "None", "outcome": "Success", "trust": "foreign", "owner": "github:evil"})),
        diagnosis(json!({"cause": "None", "outcome": "Success"})),
    ]);
    assert_eq!(r.totals.foreign_successes, 1);
    assert!(r.incidents.is_empty());
    assert!(html::render(&r).contains("successes of owners not ours"));
}

fn hostile() -> Vec<Diagnosis> {
    let long = format!("repo:evil/{}:ref:refs/heads/main", "x".repeat(5000));
    vec![
        diagnosis(json!({
            "event_time": at(T0),
            "subject": "repo:evil/<script>alert(1)</script>|x`y`:ref:refs/heads/main",
            "claims": {"format": "github", "repository": "evil/<img src=x onerror=alert(1)>|"},
            "owner": "github:evil", "trust": "foreign",
            "role_name": "</code><script>alert(2)</script>",
            "explanation": "Subject \"<b>bold</b>\" \u{1b}[31m\u{202e}reversed\n# heading",
        })),
        diagnosis(
            json!({"event_time": at(T0 + 1), "subject": long, "trust": "foreign", "owner": "github:evil"}),
        ),
    ]
}

#[test]
fn hostile_values_are_escaped_in_html() {
    let page = html::render(&report(&hostile()));
    assert!(!page.contains("<script"), "a script tag got through");
    assert!(!page.contains("<img"), "an img tag got through");
    assert!(!page.contains("<b>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;/code&gt;&lt;script&gt;alert(2)"));
    assert!(
        !page.chars().any(|c| c == '\u{1b}' || c == '\u{202e}'),
        "raw control character"
    );
    assert!(page.contains("\\u{202e}"));
    // The 5000-character subject is cut in every cell and detail it appears in.
    assert!(!page.contains(&"x".repeat(4500)), "an unbounded subject");
    assert!(page.contains(&"x".repeat(80)));
}

#[test]
fn hostile_values_are_escaped_in_markdown() {
    let md = markdown::render(&report(&hostile()));
    assert!(!md.contains("<script") && !md.contains("<img") && !md.contains("<b>"));
    assert!(
        md.contains("&lt;script&gt;alert\\(1\\)&lt;/script&gt;\\|x\\`y\\`"),
        "{md}"
    );
    // The explanation's line break is escaped, so its "# heading" starts no line.
    assert!(md.lines().all(|line| !line.starts_with("# heading")));
    assert!(md.contains("\\u{000a}\\# heading"), "{md}");
    assert!(!md.chars().any(|c| c == '\u{1b}' || c == '\u{202e}'));
    assert!(!md.contains(&"x".repeat(4500)));
}

/// Every incident row of the Markdown has exactly the table's seven columns, whatever the
/// subject holds.
#[test]
fn markdown_incident_rows_keep_their_columns() {
    let md = markdown::render(&report(&hostile()));
    let section = md
        .split("## Incidents")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("incidents section");
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| 20")).collect();
    assert_eq!(rows.len(), 2, "{section}");
    for row in rows {
        let cells = row
            .char_indices()
            .filter(|&(i, c)| c == '|' && (i == 0 || row.as_bytes()[i - 1] != b'\\'))
            .count();
        assert_eq!(cells, 8, "{row}");
    }
}

/// The tags the page itself writes; any other tag would have come from the input.
const OUR_TAGS: &[&str] = &[
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p",
    "time", "section", "div", "span", "svg", "line", "text", "g", "rect", "path", "circle", "i", "code",
    "table", "thead", "tbody", "tr", "th", "td", "a", "details", "summary", "dl", "dt", "dd", "strong",
    "pre", "footer",
];

fn tags(page: &str) -> Vec<String> {
    page.match_indices('<')
        .map(|(i, _)| {
            page[i + 1..]
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '!' || *c == '-')
                .collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn no_tag_from_input_reaches_the_page(
        tag in prop::sample::select(vec!["script", "img", "iframe", "object", "svg", "style", "a", "x-evil", "b"]),
        before in "[ -~]{0,30}",
        after in "[ -~\u{0}-\u{1f}\u{202e}\u{200b}]{0,30}",
        attribute in "[ -~]{0,20}",
    ) {
        let value = format!("{before}<{tag} {attribute}>{after}</{tag}>\"'&");
        let d = diagnosis(json!({
            "event_time": at(T0),
            "subject": format!("repo:x/y:{value}"),
            "claims": {"format": "github", "repository": value.clone()},
            "owner": "github:x", "trust": "foreign",
            "role_name": value.clone(),
            "role_arn": format!("arn:aws:iam::111122223333:role/{value}"),
            "explanation": value.clone(),
            "fix": value.clone(),
            "account_id": value.clone(),
            "region": value.clone(),
            "event_id": value.clone(),
        }));
        let page = html::render(&report(&[d.clone(), d]));
        // The page's own tags only: every `<` the input held was escaped.
        let baseline = html::render(&report(&[diagnosis(json!({"event_time": at(T0), "trust": "foreign"}))]));
        for name in tags(&page) {
            prop_assert!(OUR_TAGS.contains(&name.as_str()), "tag {name:?} in the page");
        }
        for tag in ["script", "img", "iframe", "object", "x-evil", "b"] {
            prop_assert_eq!(
                page.matches(&format!("<{tag} ")).count() + page.matches(&format!("<{tag}>")).count(),
                baseline.matches(&format!("<{tag} ")).count() + baseline.matches(&format!("<{tag}>")).count(),
                "<{}> count differs", tag
            );
        }
        prop_assert_eq!(page.matches("<svg").count(), baseline.matches("<svg").count());
        prop_assert_eq!(page.matches("<style").count(), 1);
        let raw = page.chars().any(|c| (c.is_control() && c != '\n') || c == '\u{202e}' || c == '\u{200b}');
        prop_assert!(!raw, "a raw control or invisible character");
    }
}
