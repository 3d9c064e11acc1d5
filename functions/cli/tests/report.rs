//! `oidc-watch diagnose --report`, run as a user runs it: the report's numbers are the
//! JSON output's, counted from the same run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn oidc_watch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("run oidc-watch")
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Failures by cause, as the JSON lines say.
fn causes(diagnoses: &[Value]) -> BTreeMap<String, usize> {
    let mut causes = BTreeMap::new();
    for d in diagnoses {
        let cause = d["cause"].as_str().unwrap_or_default();
        if cause != "None" {
            *causes.entry(cause.to_owned()).or_default() += 1;
        }
    }
    causes
}

/// The value of `attribute="..."` after each occurrence of `marker` in `page`.
fn attributes<'a>(page: &'a str, marker: &str, attribute: &str) -> Vec<&'a str> {
    page.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &page[i..];
            let end = rest.find('>')?;
            let tag = &rest[..end];
            let start = tag.find(&format!("{attribute}=\""))? + attribute.len() + 2;
            let value = &tag[start..];
            Some(&value[..value.find('"')?])
        })
        .collect()
}

fn run_with_report(inputs: &[&str], report: &Path) -> (Output, String) {
    let report_arg = report.to_str().expect("utf-8 path");
    let mut args = vec!["diagnose"];
    args.extend_from_slice(inputs);
    args.extend_from_slice(&[
        "--account",
        "events/accounts/",
        "--format",
        "json",
        "--report",
        report_arg,
    ]);
    let output = oidc_watch(&args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(report).expect("the report was written");
    (output, text)
}

#[test]
fn the_html_report_counts_what_the_json_lines_say() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.html");
    let (output, page) = run_with_report(&["events/", "events/replay/"], &path);
    let diagnoses = json_lines(&output);
    let failures = diagnoses.iter().filter(|d| d["cause"] != "None").count();

    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(
        attributes(&page, "<section id=\"summary\"", "data-events"),
        [diagnoses.len().to_string()]
    );
    assert_eq!(
        attributes(&page, "<section id=\"summary\"", "data-failures"),
        [failures.to_string()]
    );
    assert_eq!(
        attributes(&page, "<section id=\"summary\"", "data-successes"),
        [(diagnoses.len() - failures).to_string()]
    );
    let causes_in_page: BTreeMap<String, usize> = attributes(&page, "data-cause=", "data-cause")
        .into_iter()
        .zip(attributes(&page, "data-cause=", "data-count"))
        .map(|(cause, count)| (cause.to_owned(), count.parse().unwrap()))
        .collect();
    assert_eq!(causes_in_page, causes(&diagnoses));
    // The chart's buckets hold every dated call.
    let charted: usize = attributes(&page, "<g class=\"bucket\"", "data-failures")
        .iter()
        .chain(attributes(&page, "<g class=\"bucket\"", "data-successes").iter())
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    // Two drawings of one chart (wide and narrow).
    assert_eq!(charted, 2 * diagnoses.len());
    // Self-contained: nothing is fetched.
    for needle in [
        "<script", "<link", "<img", "<iframe", "<object", "src=", "@import", "url(",
    ] {
        assert!(!page.contains(needle), "{needle} in the page");
    }
    let links = attributes(&page, "<a ", "href");
    assert!(!links.is_empty());
    assert!(links.iter().all(|href| href.starts_with("#d-")), "{links:?}");
}

#[test]
fn the_markdown_report_counts_what_the_json_lines_say() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.md");
    let (output, md) = run_with_report(&["events/"], &path);
    let diagnoses = json_lines(&output);
    let row = |label: &str| -> usize {
        md.lines()
            .find_map(|l| l.strip_prefix(&format!("| {label} | ")))
            .and_then(|rest| rest.trim_end_matches(" |").parse().ok())
            .unwrap_or_else(|| panic!("no {label} row"))
    };
    assert_eq!(row("Calls"), diagnoses.len());
    assert_eq!(
        row("Failures"),
        diagnoses.iter().filter(|d| d["cause"] != "None").count()
    );
    let section = md
        .split("## Failures by cause")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let in_md: BTreeMap<String, usize> = section
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("| `")?;
            let (cause, count) = rest.split_once("` | ")?;
            Some((cause.to_owned(), count.trim_end_matches(" |").parse().ok()?))
        })
        .collect();
    assert_eq!(in_md, causes(&diagnoses));
}

#[test]
fn stdout_is_the_same_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.md");
    let (with, _) = run_with_report(&["events/replay/"], &path);
    let without = oidc_watch(&[
        "diagnose",
        "events/replay/",
        "--account",
        "events/accounts/",
        "--format",
        "json",
    ]);
    assert_eq!(with.stdout, without.stdout);
}

#[test]
fn a_report_file_that_is_neither_html_nor_markdown_is_refused_before_reading() {
    let output = oidc_watch(&[
        "diagnose",
        "events/",
        "--account",
        "events/accounts/",
        "--report",
        "out.pdf",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    assert!(String::from_utf8_lossy(&output.stderr).contains(".html or .md"));
    let unwritable = oidc_watch(&[
        "diagnose",
        "events/replay/",
        "--report",
        "/nonexistent/dir/r.html",
    ]);
    assert_eq!(unwritable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unwritable.stderr).contains("--report /nonexistent/dir/r.html"));
}

/// A retry burst, a later retry, and probes of a stranger, made from the branch-mismatch
/// sample by changing its time, id and repository.
fn burst_file(dir: &Path) -> PathBuf {
    let sample = repo().join("events/subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
    let envelope: Value = serde_json::from_str(&std::fs::read_to_string(sample).unwrap()).unwrap();
    let record = serde_json::to_string(&envelope["detail"]).unwrap();
    let at = |minutes: i64| format!("2026-10-06T{:02}:{:02}:00Z", 14 + minutes / 60, minutes % 60);
    let mut lines = Vec::new();
    let mut add = |minutes: i64, repository: &str, id: usize| {
        let mut r: Value = serde_json::from_str(&record.replace("acme/web-app", repository)).unwrap();
        r["eventTime"] = Value::from(at(minutes));
        r["eventID"] = Value::from(format!("00000000-0000-4000-8000-{id:012}"));
        lines.push(serde_json::to_string(&r).unwrap());
    };
    // One job retried three times within 15 minutes, then once more 40 minutes later.
    add(0, "acme/web-app", 1);
    add(1, "acme/web-app", 2);
    add(14, "acme/web-app", 3);
    add(54, "acme/web-app", 4);
    // A stranger: two attempts on one repository, one on another.
    add(5, "evil-org/web-app", 5);
    add(6, "evil-org/web-app", 6);
    add(7, "evil-org/<script>alert(1)</script>|x", 7);
    let path = dir.join("burst.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn bursts_collapse_into_incidents_and_strangers_into_probes() {
    let dir = tempfile::tempdir().unwrap();
    let input = burst_file(dir.path());
    let input = input.to_str().unwrap();
    let (output, page) = run_with_report(&[input], &dir.path().join("r.html"));
    let diagnoses = json_lines(&output);
    assert_eq!(diagnoses.len(), 7);
    let trust: Vec<&str> = diagnoses.iter().map(|d| d["trust"].as_str().unwrap()).collect();
    assert_eq!(
        trust,
        ["ours", "ours", "ours", "ours", "foreign", "foreign", "foreign"]
    );

    assert_eq!(
        attributes(&page, "<section id=\"summary\"", "data-incidents"),
        ["4"]
    );
    assert_eq!(attributes(&page, "<section id=\"summary\"", "data-probes"), ["2"]);
    let mut attempts = attributes(&page, "<section id=\"incidents\"", "data-count");
    attempts.extend(attributes(
        page.split("<section id=\"incidents\"")
            .nth(1)
            .unwrap()
            .split("</section>")
            .next()
            .unwrap(),
        "<tr data-attempts",
        "data-attempts",
    ));
    // By first attempt: 14:00 (3 attempts), 14:05 (2, the stranger), 14:07, 14:54.
    assert_eq!(attempts, ["4", "3", "2", "1", "1"]);
    let probes = page
        .split("<section id=\"probes\"")
        .nth(1)
        .unwrap()
        .split("</section>")
        .next()
        .unwrap();
    assert!(probes.contains("<code>github:evil-org</code>"), "{probes}");
    assert_eq!(attributes(probes, "<tr data-attempts", "data-attempts"), ["3"]);
    assert!(!page.contains("<script>alert"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;|x"));

    let (_, md) = run_with_report(&[input], &dir.path().join("r.md"));
    assert!(md.contains("| github:evil-org | 3 | 2 | 2 | 1 |"), "{md}");
    assert!(
        md.contains(r"evil-org/&lt;script&gt;alert\(1\)&lt;/script&gt;\|x"),
        "{md}"
    );
    // Our own job's incident carries its verified change.
    assert!(md.contains("- **verified change**: statement"), "{md}");
}
