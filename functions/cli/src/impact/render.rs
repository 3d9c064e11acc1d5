//! The impact report: its JSON contract (README, "Pre-flight") and its text form.

use std::io::Write;

use diagnosis::audit::Finding;
use diagnosis::text::{clean, escape_controls, quote};
use serde::Serialize;

use super::compare::{Admitted, Change, Comparison, SubjectImpact, Verdict, Widening};
use super::policy_source::{Form, Outcome, Source, Unresolved};

#[derive(Debug, Serialize)]
pub struct PolicyInfo {
    pub file: String,
    pub form: Form,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// `known`, `unknown` (see `unresolved`) or `deleted`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unresolved: Vec<Unresolved>,
}

impl PolicyInfo {
    fn of(source: &Source) -> Self {
        let (status, unresolved) = match &source.outcome {
            Outcome::Known(_) => ("known", Vec::new()),
            Outcome::Unknown(unresolved) => ("unknown", unresolved.clone()),
            Outcome::Deleted => ("deleted", Vec::new()),
        };
        PolicyInfo {
            file: source.file.clone(),
            form: source.form,
            resource: source.resource.clone(),
            line: source.line,
            status,
            unresolved,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub subjects: usize,
    pub breaks: usize,
    pub may_break: usize,
    pub unchanged: usize,
    pub fixes: usize,
    pub newly_admitted: usize,
    pub strangers_admitted: usize,
    pub widening: usize,
    /// Successful calls of the role read from --history.
    pub history_calls: usize,
    /// Failed calls of the role in --history: not evidence of what works, so not judged.
    pub history_failures: usize,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub role: String,
    pub old: PolicyInfo,
    pub new: PolicyInfo,
    /// `breaks`, `admits`, `breaks-and-admits`, `neutral`, or `unknown` (the new policy
    /// cannot be known).
    pub verdict: &'static str,
    pub summary: Summary,
    pub subjects: Vec<SubjectImpact>,
    pub newly_admitted: Vec<Admitted>,
    pub widening: Vec<Widening>,
    pub findings: Vec<Finding>,
    pub notes: Vec<String>,
    #[serde(skip)]
    strict: bool,
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        role: &str,
        old: &Source,
        new: &Source,
        comparison: Option<Comparison>,
        history_calls: usize,
        history_failures: usize,
        history_given: bool,
        strict: bool,
        mut notes: Vec<String>,
    ) -> Report {
        let compared = comparison.is_some();
        let (subjects, admitted, widening, findings) = match comparison {
            Some(c) => (c.subjects, c.admitted, c.widening, c.findings),
            None => (Vec::new(), Vec::new(), Vec::new(), Vec::new()),
        };
        if compared && !history_given {
            notes.push("No --history or --workflows: no observed subject was judged; only the stranger's variants of the old policy's exact subjects and the audit were compared.".to_owned());
        } else if compared && subjects.is_empty() {
            notes.push(format!(
                "--history and --workflows hold no successful call or job of role {}: no observed subject was judged.",
                quote(role)
            ));
        }
        let count = |change: Change| subjects.iter().filter(|s| s.change == change).count();
        let summary = Summary {
            subjects: subjects.len(),
            breaks: count(Change::Breaks),
            may_break: count(Change::MayBreak),
            unchanged: count(Change::Unchanged),
            fixes: count(Change::Fixes),
            newly_admitted: admitted.len(),
            strangers_admitted: admitted.iter().filter(|a| a.stranger).count(),
            widening: widening.len(),
            history_calls,
            history_failures,
        };
        let breaks = summary.breaks > 0 || (strict && summary.may_break > 0);
        let admits = summary.newly_admitted > 0 || summary.widening > 0;
        let verdict = match (&new.outcome, breaks, admits) {
            (Outcome::Unknown(_), _, _) => "unknown",
            (_, true, true) => "breaks-and-admits",
            (_, true, false) => "breaks",
            (_, false, true) => "admits",
            (_, false, false) => "neutral",
        };
        Report {
            role: role.to_owned(),
            old: PolicyInfo::of(old),
            new: PolicyInfo::of(new),
            verdict,
            summary,
            subjects,
            newly_admitted: admitted,
            widening,
            findings,
            notes,
            strict,
        }
    }

    pub fn exit_code(&self) -> u8 {
        match self.verdict {
            "neutral" => 0,
            "unknown" => 2,
            _ => 1,
        }
    }
}

fn source_text(info: &PolicyInfo) -> String {
    let mut text = format!("{} ({}", clean(&info.file), info.form.as_str());
    if let Some(resource) = &info.resource {
        text.push_str(&format!(" {}", clean(resource)));
    }
    if let Some(line) = info.line {
        text.push_str(&format!(", line {line}"));
    }
    text.push(')');
    text
}

fn verdict_text(v: Verdict) -> &'static str {
    v.as_str()
}

pub fn write_text(out: &mut impl Write, report: &Report) -> std::io::Result<()> {
    writeln!(
        out,
        "Impact on role {} of {}",
        quote(&report.role),
        source_text(&report.new)
    )?;
    writeln!(out, "  old policy: {}", source_text(&report.old))?;
    if !report.new.unresolved.is_empty() {
        writeln!(
            out,
            "\nThe new policy cannot be known: these values are unresolved (never guessed)."
        )?;
        for u in &report.new.unresolved {
            let at = u.line.map(|l| format!("line {l}: ")).unwrap_or_default();
            writeln!(out, "  UNKNOWN  {at}{}: {}", clean(&u.path), clean(&u.reason))?;
        }
    }
    if report.new.status == "deleted" {
        writeln!(out, "\nThe change deletes the role.")?;
    }
    if !report.subjects.is_empty() {
        writeln!(
            out,
            "\nSubjects (seen in CloudTrail or presented by workflow jobs):"
        )?;
    }
    for s in &report.subjects {
        let label = match s.change {
            Change::Breaks => "BREAKS",
            Change::MayBreak => "MAY BREAK",
            Change::Unchanged => "ok",
            Change::Fixes => "fixed",
            Change::StillDenied => "denied",
            Change::Unclear => "unclear",
        };
        let mut seen = Vec::new();
        if s.calls > 0 {
            seen.push(format!("{} call{}", s.calls, if s.calls == 1 { "" } else { "s" }));
        }
        if let Some(last) = &s.last_seen {
            seen.push(format!("last {}", clean(last)));
        }
        if s.calls == 0 {
            if let Some(place) = s.seen_in.first() {
                seen.push(format!("in {}", clean(place)));
            }
        }
        if let Some(aud) = &s.audience {
            seen.insert(0, format!("aud {}", quote(aud)));
        }
        writeln!(
            out,
            "  {label:<9} {} ({}): {} before, {} after",
            quote(&s.subject),
            seen.join(", "),
            verdict_text(s.old),
            verdict_text(s.new)
        )?;
        if s.new == Verdict::Allowed {
            continue;
        }
        if let Some(cause) = s.cause {
            writeln!(out, "            cause: {}", cause.as_str())?;
        }
        for c in &s.failed_conditions {
            let expected: Vec<String> = c.expected.iter().map(|e| quote(e)).collect();
            let actual = match &c.actual {
                serde_json::Value::Null => "nothing".to_owned(),
                serde_json::Value::String(v) => quote(v),
                other => clean(&other.to_string()),
            };
            writeln!(
                out,
                "            statement {}: {} {} [{}], the token has {}",
                c.statement,
                clean(&c.operator),
                clean(&c.key),
                expected.join(", "),
                actual
            )?;
        }
        if let Some(change) = &s.suggested_change {
            let add: Vec<String> = change.add.iter().map(|a| quote(a)).collect();
            writeln!(
                out,
                "            keep it: in statement {}, add {} under {} {}",
                change.statement,
                add.join(", "),
                clean(change.operator.as_deref().unwrap_or("")),
                clean(&change.key)
            )?;
        } else if let Some(fix) = &s.fix {
            writeln!(out, "            fix: {}", escape_controls(fix))?;
        }
    }
    if !report.newly_admitted.is_empty() {
        writeln!(out, "\nShapes newly admitted (the old policy denied them):")?;
        for a in &report.newly_admitted {
            let by = a
                .statement
                .map(|s| format!(" by statement {s}"))
                .unwrap_or_default();
            writeln!(
                out,
                "  ADMITS    {} {}{by}{}{}; made from {}",
                a.kind.as_str(),
                quote(&a.subject),
                if a.certain {
                    ""
                } else {
                    " (if claims CloudTrail does not record match)"
                },
                if a.stranger { ", a stranger's token" } else { "" },
                quote(&a.from)
            )?;
        }
    }
    if !report.widening.is_empty() {
        writeln!(out, "\nWidening the audit finds in the new policy only:")?;
        for w in &report.widening {
            writeln!(
                out,
                "  WIDENS    {:?}: {}",
                w.finding.code,
                escape_controls(&w.finding.message)
            )?;
        }
    }
    if !report.findings.is_empty() {
        writeln!(out, "\nOther findings new in this policy:")?;
        for f in &report.findings {
            writeln!(out, "  note      {:?}: {}", f.code, escape_controls(&f.message))?;
        }
    }
    for note in &report.notes {
        writeln!(out, "\nNote: {}", escape_controls(note))?;
    }
    let s = &report.summary;
    let verdict = match report.verdict {
        "neutral" => "no observed subject breaks and no new shape is admitted".to_owned(),
        "unknown" => "the new policy cannot be evaluated until its unresolved values are known".to_owned(),
        _ => {
            let mut parts = Vec::new();
            if s.breaks > 0 || (report.strict && s.may_break > 0) {
                parts.push(format!(
                    "breaks {} observed subject{}",
                    s.breaks + if report.strict { s.may_break } else { 0 },
                    if s.breaks == 1 { "" } else { "s" }
                ));
            }
            if s.newly_admitted > 0 {
                parts.push(format!(
                    "admits {} new shape{} ({} a stranger's)",
                    s.newly_admitted,
                    if s.newly_admitted == 1 { "" } else { "s" },
                    s.strangers_admitted
                ));
            }
            if s.widening > 0 {
                parts.push(format!(
                    "widens the policy ({} finding{})",
                    s.widening,
                    if s.widening == 1 { "" } else { "s" }
                ));
            }
            parts.join(", ")
        }
    };
    writeln!(
        out,
        "\n{} subject{} judged ({} unchanged, {} may break). Verdict: {verdict}.",
        s.subjects,
        if s.subjects == 1 { "" } else { "s" },
        s.unchanged,
        s.may_break
    )
}
