//! The text format: what a person reads first. Untrusted strings are escaped before they
//! reach the terminal.

use std::io::{self, Write};

use diagnosis::audit::Severity;
use diagnosis::diagnose::Confidence;
use diagnosis::text::escape_controls;
use diagnosis::{Cause, Diagnosis};

#[derive(Default)]
pub struct Summary {
    pub failures: usize,
    pub successes: usize,
    pub skipped: usize,
    pub unreadable: usize,
}

pub struct Palette {
    colour: bool,
}

impl Palette {
    pub fn new(colour: bool) -> Self {
        Palette { colour }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    fn red(&self, text: &str) -> String {
        self.paint("1;31", text)
    }
    fn green(&self, text: &str) -> String {
        self.paint("1;32", text)
    }
    fn yellow(&self, text: &str) -> String {
        self.paint("33", text)
    }
    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }
}

fn field(out: &mut impl Write, palette: &Palette, label: &str, value: &str) -> io::Result<()> {
    writeln!(out, "  {} {}", palette.dim(&format!("{label:<9}")), value)
}

pub fn write_text(out: &mut impl Write, d: &Diagnosis, source: &str, palette: &Palette) -> io::Result<()> {
    let clean = |s: &Option<String>| escape_controls(s.as_deref().unwrap_or("-")).into_owned();
    let headline = match (d.cause, d.subject_mismatch) {
        (Cause::None, _) => palette.green("OK  assumed"),
        (cause, Some(kind)) => palette.red(&format!("✗ {} ({})", cause.as_str(), kind.as_str())),
        (cause, None) => palette.red(&format!("✗ {}", cause.as_str())),
    };
    let confidence = match (d.confidence, d.evidence) {
        (Confidence::Certain, _) => "certain",
        (Confidence::Probable, _) => "probable",
        (Confidence::Unknown, "event-only") => "unknown: event only, no account snapshot",
        (Confidence::Unknown, _) => "unknown",
    };
    writeln!(
        out,
        "{headline}  {}",
        palette.dim(&format!(
            "{confidence} · {} · {} {} · {}",
            clean(&d.event_time),
            clean(&d.account_id),
            clean(&d.region),
            escape_controls(source)
        ))
    )?;
    if let Some(code) = &d.error_code {
        field(out, palette, "error", &escape_controls(code))?;
    }
    field(out, palette, "role", &clean(&d.role_arn))?;
    field(out, palette, "subject", &palette.bold(&clean(&d.subject)))?;
    field(out, palette, "audience", &clean(&d.audience))?;
    if let Some(run) = &d.github_run_id {
        let repository = d
            .claims
            .repository
            .as_deref()
            .map(escape_controls)
            .unwrap_or_default();
        field(out, palette, "run", &format!("{run} ({repository})"))?;
    }
    field(out, palette, "why", &d.explanation)?;
    for failed in d.failed_conditions.iter().take(5) {
        let expected: Vec<String> = failed
            .expected
            .iter()
            .map(|v| format!("{:?}", escape_controls(v)))
            .collect();
        field(
            out,
            palette,
            "expected",
            &format!(
                "statement {}: {} {} {}",
                failed.statement,
                escape_controls(&failed.key),
                failed.operator,
                expected.join(" | ")
            ),
        )?;
        let actual = match &failed.actual {
            serde_json::Value::Null => "(missing)".to_owned(),
            serde_json::Value::String(s) => format!("{:?}", escape_controls(s)),
            other => escape_controls(&other.to_string()).into_owned(),
        };
        field(out, palette, "actual", &actual)?;
    }
    if let Some(fix) = &d.fix {
        field(out, palette, "fix", &palette.bold(fix))?;
    }
    let low = d.findings.iter().filter(|f| f.severity == Severity::Low).count();
    for finding in d.findings.iter().filter(|f| f.severity != Severity::Low) {
        let severity = format!("{:?}", finding.severity).to_lowercase();
        field(
            out,
            palette,
            "finding",
            &format!(
                "{} {:?}: {}",
                palette.yellow(&severity),
                finding.code,
                finding.message
            ),
        )?;
    }
    if low > 0 {
        field(
            out,
            palette,
            "finding",
            &palette.dim(&format!(
                "{low} low-severity finding(s); --format json lists them"
            )),
        )?;
    }
    writeln!(out)
}

pub fn write_summary(out: &mut impl Write, summary: &Summary, palette: &Palette) -> io::Result<()> {
    let mut line = format!(
        "{} events: {} failed, {} succeeded",
        summary.failures + summary.successes,
        summary.failures,
        summary.successes
    );
    if summary.skipped > 0 {
        line.push_str(&format!("; {} other CloudTrail events skipped", summary.skipped));
    }
    if summary.unreadable > 0 {
        line.push_str(&format!(
            "; {} records or files could not be read (see above)",
            summary.unreadable
        ));
    }
    writeln!(out, "{}", palette.dim(&line))
}
