//! The text format: what a person reads first. Every string that did not come from this
//! program (subjects, claims, policy values, and the diagnosis's own explanation, fix and
//! findings, which quote them) goes through [`escape_controls`] before it reaches the
//! terminal, so no control (`Cc`), format (`Cf`), line or paragraph separator, tag or
//! Hangul filler character is printed raw (docs/design.md, "Untrusted input"). Our own line
//! breaks and, with colour on, our own ANSI colour codes are the only control characters
//! written.

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

    pub(crate) fn paint(&self, code: &str, text: &str) -> String {
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
    let owner = d
        .owner
        .as_ref()
        .map_or_else(|| "(none named)".to_owned(), ToString::to_string);
    field(
        out,
        palette,
        "owner",
        &format!("{} · {}", escape_controls(&owner), d.trust.as_str()),
    )?;
    if let Some(run) = &d.github_run_id {
        let repository = d
            .claims
            .repository
            .as_deref()
            .map(escape_controls)
            .unwrap_or_default();
        field(
            out,
            palette,
            "run",
            &format!("{} ({repository})", escape_controls(run)),
        )?;
    }
    field(out, palette, "why", &escape_controls(&d.explanation))?;
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
                escape_controls(&failed.operator),
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
        field(out, palette, "fix", &palette.bold(&escape_controls(fix)))?;
    }
    if let Some(change) = &d.suggested_change {
        field(
            out,
            palette,
            "change",
            &format!(
                "{} (verified: admits this job, no other owner)",
                escape_controls(&diagnosis::alert::change_summary(change))
            ),
        )?;
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
                escape_controls(&finding.message)
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

#[cfg(test)]
mod tests {
    //! Every code point that `diagnosis::text::needs_escape` selects
    //! (Cc, Cf, Zl, Zp, the tag block and the Hangul fillers: the diagnosis's
    //! `tests/invisible_text.rs` checks that set category by category), in every untrusted
    //! field of a diagnosis, leaves the text renderer escaped.

    use std::sync::Arc;

    use diagnosis::audit::{Finding, FindingCode, Severity};
    use diagnosis::text::needs_escape;
    use diagnosis::{diagnose, read_input, AccountSnapshot, Diagnosis, InputItem};
    use serde_json::{json, Value};

    use super::{write_text, Palette};

    fn events() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
    }

    /// A real diagnosis of a job whose subject carries `c`, and `c` in every other field
    /// the renderer prints.
    fn hostile(sample: &Value, snapshot: &AccountSnapshot, c: char) -> Diagnosis {
        let mut event = sample.clone();
        let subject = format!("repo:acme/web-app:ref:refs/heads/feature/{c}login{c}form");
        let provider = event["detail"]["userIdentity"]["identityProvider"]
            .as_str()
            .unwrap()
            .to_owned();
        event["detail"]["userIdentity"]["userName"] = json!(subject);
        event["detail"]["userIdentity"]["principalId"] =
            json!(format!("{provider}:sts.amazonaws.com:{subject}"));
        let bytes = serde_json::to_vec(&event).unwrap();
        let Ok(InputItem::Event(event)) = &read_input(&bytes)[0] else {
            panic!("not an AssumeRoleWithWebIdentity event")
        };
        let mut d = diagnose(event, Some(snapshot));
        let v = format!("x{c}y");
        d.event_time = Some(v.clone());
        d.account_id = Some(v.clone());
        d.region = Some(v.clone());
        d.error_code = Some(v.clone());
        d.role_arn = Some(format!("arn:aws:iam::111122223333:role/gha{c}deploy"));
        d.audience = Some(v.clone());
        d.github_run_id = Some(format!("1819{c}0844520"));
        d.claims.repository = Some(format!("acme/web{c}app"));
        let mut failed = d.failed_conditions.first().cloned().expect("a failed condition");
        failed.key = v.clone();
        failed.operator = v.clone();
        failed.expected = vec![v.clone(); 2];
        failed.actual = json!(v);
        d.failed_conditions.push(failed.clone());
        failed.actual = json!([v, v]);
        d.failed_conditions.push(failed);
        // What the diagnosis escaped already is escaped again, harmlessly; raw here, it
        // checks that the renderer does not rely on that.
        d.explanation = format!("explained {v}");
        d.fix = Some(format!("fix {v}"));
        d.findings = Arc::from(vec![Finding {
            code: FindingCode::NoSubjectCondition,
            severity: Severity::High,
            statement: 0,
            message: v,
        }]);
        d
    }

    fn text(d: &Diagnosis, source: &str, colour: bool) -> String {
        let mut out = Vec::new();
        write_text(&mut out, d, source, &Palette::new(colour)).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_output_escapes_every_invisible_character() {
        let sample: Value = serde_json::from_slice(
            &std::fs::read(
                events().join("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"),
            )
            .unwrap(),
        )
        .unwrap();
        let snapshot = AccountSnapshot::from_json(
            &std::fs::read_to_string(events().join("accounts/111122223333-github-acme.json")).unwrap(),
        )
        .unwrap();
        let chars: Vec<char> = (0..=0x10FFFF_u32)
            .filter_map(char::from_u32)
            .filter(|&c| needs_escape(c))
            .collect();
        assert!(chars.len() >= 270, "only {} characters", chars.len());
        let harmless = hostile(&sample, &snapshot, 'z');
        let baselines = [false, true].map(|colour| text(&harmless, "events/xz.json", colour));
        for c in chars {
            let d = hostile(&sample, &snapshot, c);
            let source = format!("events/x{c}.json");
            for (colour, baseline) in [false, true].into_iter().zip(&baselines) {
                let output = text(&d, &source, colour);
                // Our own line breaks (and colour codes) are the only ones: as many as
                // with a harmless character.
                assert_eq!(
                    output.matches(c).count(),
                    baseline.matches(c).count(),
                    "raw U+{:04X} (colour {colour}) in {output}",
                    c as u32
                );
                let escaped = format!("\\u{{{:04x}}}", c as u32);
                assert!(output.contains(&escaped), "no {escaped} in {output}");
                if !colour && c != '\n' {
                    assert!(!output.contains(c), "raw U+{:04X} in {output}", c as u32);
                }
            }
        }
    }
}
