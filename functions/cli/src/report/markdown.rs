//! The report as GitHub-flavoured Markdown: the same sections as the page, as tables, for
//! a pull request, an issue or a wiki. Every value a stranger chose goes through
//! [`untrusted_markdown`]; the policy after a change goes in a fenced block, whose JSON
//! lines cannot close the fence (each starts with indentation and a JSON token).

use std::fmt::Write;

use diagnosis::alert::change_summary;

use super::escape::{untrusted_markdown as md, CELL_CHARS, TEXT_CHARS};
use super::{
    bucket_label, cause_label, count, percent, policy_text, time, Report, Top, MAX_DIAGNOSIS_DETAILS,
    MAX_INCIDENT_ROWS, MAX_TRACKED, TOP_ROWS,
};

pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let t = &report.totals;
    out.push_str("# oidc-watch report\n\n");
    match report.span() {
        Some((first, last)) => {
            let _ = writeln!(
                out,
                "AssumeRoleWithWebIdentity calls from {} to {}. Retries of one job (account, role, subject, cause) within {} s of its first attempt are one incident, as in oidc-monitor.\n",
                time(Some(first)),
                time(Some(last)),
                report.window_seconds
            );
        }
        None => out.push_str("No call has a readable time.\n\n"),
    }

    let probes = report.probe_incidents();
    out.push_str("## Summary\n\n| | |\n|---|---:|\n");
    let rows = [
        ("Calls", t.events.to_string()),
        ("Failures", t.failures.to_string()),
        ("Successes", t.successes.to_string()),
        ("Failure rate", percent(t.failure_rate())),
        (
            "Incidents (our jobs)",
            (report.incidents.len() - probes).to_string(),
        ),
        ("Probes (not ours)", probes.to_string()),
        ("Successes of owners not ours", t.foreign_successes.to_string()),
        ("Failures of unknown trust", t.unknown_trust_failures.to_string()),
        ("Records or files not read", t.unreadable.to_string()),
        ("Other CloudTrail records skipped", t.skipped.to_string()),
        (
            "Failures repeating an event id already read",
            report.repeated_failures.to_string(),
        ),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "| {label} | {value} |");
    }
    out.push('\n');

    if let Some(timeline) = &report.timeline {
        let _ = writeln!(
            out,
            "## Failure rate over time (per {})\n\nBuckets with calls only.\n\n| from | failures | successes | failure rate |\n|---|---:|---:|---:|",
            timeline.width_name
        );
        for b in timeline.buckets.iter().filter(|b| b.failures + b.successes > 0) {
            let calls = b.failures + b.successes;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                bucket_label(b.start, timeline.width_seconds),
                b.failures,
                b.successes,
                percent(Some(b.failures as f64 / calls as f64))
            );
        }
        out.push('\n');
    }

    out.push_str("## Failures by cause\n\n");
    if report.causes.is_empty() {
        out.push_str("No failures.\n\n");
    } else {
        out.push_str("| cause | failures |\n|---|---:|\n");
        for (cause, count) in &report.causes {
            let _ = writeln!(out, "| `{}` | {count} |", cause.as_str());
        }
        out.push('\n');
    }

    out.push_str("## Failures by role\n\n");
    let failing: Vec<_> = report.roles.iter().filter(|r| r.failures > 0).collect();
    if failing.is_empty() {
        out.push_str("No role failed.\n\n");
    } else {
        out.push_str("| role | account | failures | successes |\n|---|---|---:|---:|\n");
        for role in failing.iter().take(TOP_ROWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md(&role.name, CELL_CHARS),
                md(role.account.as_deref().unwrap_or("-"), CELL_CHARS),
                role.failures,
                role.successes
            );
        }
        if failing.len() > TOP_ROWS {
            let rest: usize = failing.iter().skip(TOP_ROWS).map(|r| r.failures).sum();
            let _ = writeln!(
                out,
                "\n{} more roles with {rest} failures.",
                failing.len() - TOP_ROWS
            );
        }
        out.push('\n');
    }

    top(&mut out, "Top repositories", "repository", &report.repositories);
    top(&mut out, "Top subjects", "subject", &report.subjects);

    out.push_str("## Incidents\n\n");
    if report.incidents.is_empty() {
        out.push_str("No failures.\n\n");
    } else {
        out.push_str(
            "| first | last | attempts | kind | cause | role | subject |\n|---|---|---:|---|---|---|---|\n",
        );
        for incident in report.incidents.iter().take(MAX_INCIDENT_ROWS) {
            let Some(job) = report.diagnoses.get(incident.diagnosis) else {
                continue;
            };
            let d = &job.diagnosis;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | `{}` | {} | {} |",
                time(incident.first),
                time(incident.last),
                incident.attempts,
                incident.kind.as_str(),
                cause_label(d),
                md(
                    d.role_name.as_deref().or(d.role_arn.as_deref()).unwrap_or("-"),
                    CELL_CHARS
                ),
                md(d.subject.as_deref().unwrap_or("-"), CELL_CHARS)
            );
        }
        if report.incidents.len() > MAX_INCIDENT_ROWS {
            let _ = writeln!(
                out,
                "\n{} more incidents are counted above but not listed.",
                report.incidents.len() - MAX_INCIDENT_ROWS
            );
        }
        out.push('\n');
    }

    out.push_str("## Probes by owner\n\n");
    if report.probes.is_empty() {
        out.push_str("No failures from owners that are not yours.\n\n");
    } else {
        out.push_str("| owner | attempts | incidents | subjects | roles | first | last |\n|---|---:|---:|---:|---:|---|---|\n");
        for probe in report.probes.iter().take(MAX_INCIDENT_ROWS) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(&probe.owner, CELL_CHARS),
                probe.attempts,
                probe.incidents,
                probe.subjects,
                probe.roles,
                time(probe.first),
                time(probe.last)
            );
        }
        out.push_str("\nNo policy change is ever suggested for these: they are not your jobs.\n\n");
    }

    out.push_str("## Findings per role\n\n");
    let with: Vec<_> = report.roles.iter().filter(|r| !r.findings.is_empty()).collect();
    if with.is_empty() {
        out.push_str("No findings about the trust policies seen.\n\n");
    } else {
        out.push_str("| role | severity | finding | statement | what |\n|---|---|---|---:|---|\n");
        for role in with.iter().take(MAX_DIAGNOSIS_DETAILS) {
            for finding in role.findings.iter() {
                let _ = writeln!(
                    out,
                    "| {} | {} | `{}` | {} | {} |",
                    md(&role.name, CELL_CHARS),
                    finding.severity.as_str(),
                    finding.code.as_str(),
                    finding.statement,
                    md(&finding.message, TEXT_CHARS)
                );
            }
        }
        out.push('\n');
    }

    out.push_str("## Incident diagnoses\n\nEach failing job once, most attempts first.\n\n");
    if report.diagnoses.is_empty() {
        out.push_str("No failures.\n\n");
    }
    for (index, job) in report.diagnoses.iter().take(MAX_DIAGNOSIS_DETAILS).enumerate() {
        let d = &job.diagnosis;
        let owner = d.owner.as_ref().map(ToString::to_string);
        let _ = writeln!(
            out,
            "### {}. `{}` on {}\n\n\
             - **kind**: {} · {} in {}\n\
             - **role**: {}\n\
             - **subject**: {}\n\
             - **owner**: {} · {}\n\
             - **first event**: {} · {}\n\
             - **confidence**: {}\n\
             - **why**: {}",
            index + 1,
            cause_label(d),
            md(
                d.role_name.as_deref().or(d.role_arn.as_deref()).unwrap_or("-"),
                CELL_CHARS
            ),
            job.kind.as_str(),
            count(job.attempts, "attempt", "attempts"),
            count(job.incidents, "incident", "incidents"),
            md(d.role_arn.as_deref().unwrap_or("-"), TEXT_CHARS),
            md(d.subject.as_deref().unwrap_or("-"), TEXT_CHARS),
            md(owner.as_deref().unwrap_or("-"), CELL_CHARS),
            d.trust.as_str(),
            md(d.event_id.as_deref().unwrap_or("-"), CELL_CHARS),
            md(d.event_time.as_deref().unwrap_or("-"), CELL_CHARS),
            d.confidence.as_str(),
            md(&d.explanation, TEXT_CHARS)
        );
        if let Some(fix) = &d.fix {
            let _ = writeln!(out, "- **fix**: {}", md(fix, TEXT_CHARS));
        }
        match &d.suggested_change {
            Some(change) => {
                let _ = writeln!(
                    out,
                    "- **verified change**: {}\n\n```json\n{}\n```\n",
                    md(&change_summary(change), TEXT_CHARS),
                    policy_text(&change.policy)
                );
            }
            None => out.push_str("- **verified change**: none (the fix says why)\n\n"),
        }
    }
    if report.diagnoses.len() > MAX_DIAGNOSIS_DETAILS {
        let _ = writeln!(
            out,
            "{} more failing jobs are in the incidents table; their diagnoses are in the JSON output.\n",
            report.diagnoses.len() - MAX_DIAGNOSIS_DETAILS
        );
    }
    let _ = writeln!(
        out,
        "---\nMade by `oidc-watch diagnose --report`. Tables keyed by a stranger-chosen value count up to {MAX_TRACKED} distinct values exactly."
    );
    out
}

fn top(out: &mut String, title: &str, column: &str, top: &Top) {
    let _ = writeln!(out, "## {title} (by failures)\n");
    if top.rows.is_empty() {
        out.push_str("None named.\n\n");
        return;
    }
    let _ = writeln!(out, "| {column} | failures |\n|---|---:|");
    for (value, count) in &top.rows {
        let _ = writeln!(out, "| {} | {count} |", md(value, CELL_CHARS));
    }
    if top.others > 0 {
        let _ = writeln!(
            out,
            "\n{} more with {} failures ({} distinct).",
            top.distinct - top.rows.len(),
            top.others,
            top.distinct
        );
    }
    if top.untracked > 0 {
        let _ = writeln!(
            out,
            "\n{} failures name no {column} (or one past the first {MAX_TRACKED}).",
            top.untracked
        );
    }
    out.push('\n');
}
