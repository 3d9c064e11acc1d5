//! The four output formats of `check-workflows`. Text from workflows and repositories is
//! a stranger's: every format escapes control and invisible characters.

use std::collections::BTreeMap;
use std::io::{self, Write};

use diagnosis::text::{escape_controls, to_json};
use serde_json::{json, Value};

use super::{FileReport, Finding, Options, Severity};

fn clean(text: &str) -> String {
    escape_controls(text).into_owned()
}

pub fn text(out: &mut impl Write, reports: &[FileReport], options: &Options) -> io::Result<()> {
    let settings = &options.settings;
    writeln!(
        out,
        "repository {} · default branch {}",
        settings
            .repository
            .as_ref()
            .map_or("unknown".to_owned(), |r| clean(&r.to_string())),
        settings
            .default_branch
            .as_deref()
            .map_or("unknown".to_owned(), clean)
    )?;
    let mut jobs = 0;
    let mut counts: BTreeMap<Severity, usize> = BTreeMap::new();
    for file in reports {
        for job in &file.jobs {
            jobs += 1;
            writeln!(out)?;
            writeln!(
                out,
                "{}:{} job {}{}",
                clean(&job.file),
                job.line,
                clean(&job.job),
                job.calls
                    .as_ref()
                    .map(|c| format!(" (calls {} job {})", clean(&c.file), clean(&c.job)))
                    .unwrap_or_default()
            )?;
            writeln!(
                out,
                "  role {} · id-token {} · audience {} · environment {}",
                job.role_arn
                    .as_deref()
                    .or(job.role.as_deref())
                    .map_or("unknown".to_owned(), clean),
                job.id_token.as_str(),
                job.audience.as_deref().map_or("unknown".to_owned(), clean),
                job.environment.as_deref().map_or("none".to_owned(), clean)
            )?;
            for subject in &job.subjects {
                let verdict = serde_json::to_value(subject.verdict)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let cause = subject
                    .cause
                    .map(|c| format!(" ({})", c.as_str()))
                    .unwrap_or_default();
                writeln!(
                    out,
                    "  {:<20} {}{}  {verdict}{cause}",
                    clean(&subject.trigger),
                    clean(&subject.subject),
                    if subject.certain { "" } else { " (not one literal)" }
                )?;
                if let Some(fix) = &subject.fix {
                    writeln!(out, "      fix: {}", clean(fix))?;
                }
            }
            for finding in &job.findings {
                *counts.entry(finding.severity).or_default() += 1;
                let message: Vec<String> = finding.message.split('\n').map(clean).collect();
                let message = message.join("\n      ");
                writeln!(
                    out,
                    "  {}[{}] line {}: {message}",
                    finding.severity.as_str(),
                    finding.code,
                    finding.line
                )?;
            }
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{} workflow files, {jobs} OIDC jobs: {} errors, {} warnings, {} notes",
        reports.len(),
        counts.get(&Severity::Error).unwrap_or(&0),
        counts.get(&Severity::Warning).unwrap_or(&0),
        counts.get(&Severity::Note).unwrap_or(&0)
    )
}

/// One object per line, like `diagnose --format json`.
pub fn json_lines(out: &mut impl Write, reports: &[FileReport]) -> io::Result<()> {
    for job in reports.iter().flat_map(|f| &f.jobs) {
        let line = to_json(job).map_err(io::Error::from)?;
        out.write_all(line.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn rule_description(code: &str) -> &'static str {
    match code {
        "id-token-missing" => "The job cannot request an OIDC token: no id-token: write permission.",
        "id-token-read-only" => "The job has id-token: read, which cannot request an OIDC token.",
        "id-token-missing-from-caller" => {
            "A caller of this reusable workflow does not grant id-token: write."
        }
        "subject-denied" => "The role's trust policy denies a subject this job presents.",
        "environment-protection" => "The job may wait for environment approval before any token exists.",
        "fork-pull-request" => "pull_request runs from forks get no id-token.",
        "role-unresolved" => "role-to-assume cannot be resolved to an ARN.",
        _ => "oidc-watch finding.",
    }
}

pub fn sarif(out: &mut impl Write, reports: &[FileReport]) -> io::Result<()> {
    let mut rules: BTreeMap<&str, Value> = BTreeMap::new();
    let mut results = Vec::new();
    for job in reports.iter().flat_map(|f| &f.jobs) {
        for finding in &job.findings {
            rules.entry(finding.code).or_insert_with(|| {
                json!({
                    "id": finding.code,
                    "shortDescription": {"text": rule_description(finding.code)},
                    "defaultConfiguration": {"level": finding.severity.as_str()},
                })
            });
            results.push(json!({
                "ruleId": finding.code,
                "level": finding.severity.as_str(),
                "message": {"text": finding.message},
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": {"uri": job.file},
                        "region": {"startLine": finding.line.max(1)},
                    }
                }],
            }));
        }
    }
    let log = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "oidc-watch",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.into_values().collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    });
    let text = to_json(&log).map_err(io::Error::from)?;
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")
}

/// A workflow command's message: `%`, CR and LF escaped.
fn escape_data(text: &str) -> String {
    clean(&text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A"))
}

/// A workflow command's property value: also `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

pub fn github(out: &mut impl Write, reports: &[FileReport]) -> io::Result<()> {
    for job in reports.iter().flat_map(|f| &f.jobs) {
        for Finding {
            code,
            severity,
            line,
            message,
        } in &job.findings
        {
            let command = match severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Note => "notice",
            };
            writeln!(
                out,
                "::{command} file={},line={line},title={}::{}",
                escape_property(&job.file),
                escape_property(&format!("oidc-watch {code}")),
                escape_data(message)
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_command_escapes() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }
}
