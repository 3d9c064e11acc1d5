//! The audit's output: JSON lines (README, "oidc-watch audit"), text grouped by account and
//! role, a Markdown table, SARIF 2.1.0. Strangers choose subjects, owner logins and
//! repository names, so every string is escaped for the format it lands in.

pub use crate::render::Palette;
use std::io::{self, Write};

use diagnosis::audit::{AccountFinding, FindingCode, Severity};
use diagnosis::text::{escape_controls, to_json};
use serde_json::{json, Value};

const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
const INFORMATION_URI: &str = "https://github.com/oidc-watch/oidc-watch#oidc-watch-audit";

/// What each code means, for SARIF rules and the text legend.
pub fn describe(code: FindingCode) -> &'static str {
    match code {
        FindingCode::NoSubjectCondition => "The statement has no StringEquals/StringLike condition on sub: any identity of the provider can assume the role.",
        FindingCode::OwnerWildcard => "A wildcard in the owner position of sub: any GitHub user's repository can match.",
        FindingCode::ForAllValuesOnClaim => "ForAllValues on the single-valued sub or aud: true when the claim is missing.",
        FindingCode::IfExistsOnClaim => "IfExists on sub or aud: true when the claim is missing.",
        FindingCode::NoAudienceCondition => "No condition on aud: only the provider's client-ID list limits the audience.",
        FindingCode::StringLikeWithoutWildcard => "StringLike with a value that has no wildcard.",
        FindingCode::UnsupportedConditionKey => "A condition on a key STS does not set for this provider: positive operators never match.",
        FindingCode::WildcardUnderStringEquals => "A wildcard under StringEquals, where it is literal: the value never matches.",
        FindingCode::NameBasedSubject => "A name-based GitHub subject: it stops matching once the repository sends immutable subjects.",
        FindingCode::UnusedProvider => "An OIDC provider no role trusts.",
        FindingCode::MissingProvider => "A trust policy names an OIDC provider the account does not have.",
        FindingCode::UnusedClientId => "A client ID of the provider that no aud condition uses.",
        FindingCode::AudienceNotAllowed => "An aud condition on an audience no client ID of the provider allows.",
        FindingCode::ThumbprintNotUsed => "The thumbprint list of a provider AWS verifies by its trusted CAs.",
        FindingCode::OwnerNotFound => "A GitHub owner the policy names does not exist: anyone may register it.",
        FindingCode::RepositoryNotFound => "A GitHub repository the policy names does not exist: its owner may create it anew.",
        FindingCode::RepositoryRenamed => "A GitHub repository the policy names was renamed or transferred.",
        FindingCode::ImmutableSubjectsNotNamed => "A repository sends immutable subjects while the policy names it by name.",
        FindingCode::OwnerWildcardMatchesStrangers => "An owner wildcard matches GitHub accounts that are not yours.",
        FindingCode::UnusedRole => "No recorded successful call assumed the role within --unused-days.",
        FindingCode::UnusedTrust => "A statement or sub value no recorded successful call used.",
    }
}

pub fn json_lines(out: &mut impl Write, findings: &[AccountFinding]) -> io::Result<()> {
    for finding in findings {
        writeln!(out, "{}", to_json(finding).map_err(io::Error::from)?)?;
    }
    Ok(())
}

fn sarif_level(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// Where a finding is: the role's statement, the role, or the provider.
fn location(finding: &AccountFinding) -> String {
    let mut name = format!("aws:{}", finding.account);
    if let Some(role) = &finding.role {
        name.push_str(&format!("/role/{role}"));
    } else if let Some(provider) = &finding.provider {
        name.push_str(&format!("/oidc-provider/{provider}"));
    }
    if let Some(statement) = finding.statement {
        name.push_str(&format!("/statement/{statement}"));
    }
    name
}

pub fn sarif(out: &mut impl Write, findings: &[AccountFinding], notes: &[String]) -> io::Result<()> {
    let rules: Vec<Value> = FindingCode::ALL
        .iter()
        .map(|code| {
            json!({
                "id": code.as_str(),
                "name": code.as_str(),
                "shortDescription": {"text": describe(*code)},
                "helpUri": INFORMATION_URI,
            })
        })
        .collect();
    let results: Vec<Value> = findings
        .iter()
        .map(|f| {
            let rule_index = FindingCode::ALL.iter().position(|c| *c == f.code);
            let mut result = json!({
                "ruleId": f.code.as_str(),
                "ruleIndex": rule_index,
                "level": sarif_level(f.severity),
                "message": {"text": escape_controls(&f.message)},
                "locations": [{"logicalLocations": [{
                    "fullyQualifiedName": escape_controls(&location(f)),
                    "kind": "resource",
                }]}],
                "partialFingerprints": {"oidcWatchFindingKey/v1": escape_controls(&f.key())},
                "properties": {
                    "account": f.account,
                    "role": f.role,
                    "provider": f.provider,
                    "statement": f.statement,
                    "severity": f.severity.as_str(),
                    "value": f.value,
                },
            });
            if let Some(change) = &f.suggested_change {
                result["properties"]["suggested_change"] =
                    serde_json::to_value(change).unwrap_or(Value::Null);
            }
            result
        })
        .collect();
    let notifications: Vec<Value> = notes
        .iter()
        .map(|n| json!({"level": "note", "message": {"text": escape_controls(n)}}))
        .collect();
    let log = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "oidc-watch",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": INFORMATION_URI,
                "rules": rules,
            }},
            "invocations": [{"executionSuccessful": true, "toolExecutionNotifications": notifications}],
            "results": results,
        }],
    });
    writeln!(out, "{}", to_json(&log).map_err(io::Error::from)?)
}

/// Text for a Markdown table cell: no raw controls, no line breaks, nothing Markdown or
/// HTML would read as markup.
pub fn markdown_cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in escape_controls(text).chars() {
        match c {
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '~' | '!' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub fn markdown(out: &mut impl Write, findings: &[AccountFinding], notes: &[String]) -> io::Result<()> {
    writeln!(out, "## oidc-watch audit\n")?;
    if findings.is_empty() {
        writeln!(out, "No findings.")?;
    } else {
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        writeln!(
            out,
            "{} findings: {} high, {} medium, {} low.\n",
            findings.len(),
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low)
        )?;
        writeln!(
            out,
            "| Severity | Account | Role | Statement | Code | Finding | Suggested change |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|---|")?;
        for f in findings {
            let change = f.suggested_change.as_ref().map_or(String::new(), |c| {
                let mut parts = Vec::new();
                if !c.remove.is_empty() {
                    parts.push(format!("remove {}", c.remove.join(", ")));
                }
                if !c.add.is_empty() {
                    parts.push(format!("add {}", c.add.join(", ")));
                }
                format!(
                    "{} {}: {}",
                    c.operator.as_deref().unwrap_or(""),
                    c.key,
                    parts.join("; ")
                )
            });
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                f.severity,
                markdown_cell(&f.account),
                markdown_cell(f.role.as_deref().or(f.provider.as_deref()).unwrap_or("")),
                f.statement.map(|s| s.to_string()).unwrap_or_default(),
                f.code,
                markdown_cell(&f.message),
                markdown_cell(&change)
            )?;
        }
    }
    if !notes.is_empty() {
        writeln!(out)?;
        for note in notes {
            writeln!(out, "> {}", markdown_cell(note))?;
        }
    }
    Ok(())
}

fn severity(palette: &Palette, severity: Severity) -> String {
    let label = format!("{:<6}", severity.as_str());
    match severity {
        Severity::High => palette.paint("1;31", &label),
        Severity::Medium => palette.paint("33", &label),
        Severity::Low => palette.paint("2", &label),
    }
}

pub fn text(
    out: &mut impl Write,
    findings: &[AccountFinding],
    notes: &[String],
    palette: &Palette,
) -> io::Result<()> {
    let mut sorted: Vec<&AccountFinding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        (
            &a.account,
            a.role.is_none(),
            &a.role,
            &a.provider,
            a.severity,
            a.statement,
        )
            .cmp(&(
                &b.account,
                b.role.is_none(),
                &b.role,
                &b.provider,
                b.severity,
                b.statement,
            ))
    });
    let mut account: Option<&str> = None;
    let mut group: Option<String> = None;
    for f in sorted {
        if account != Some(f.account.as_str()) {
            writeln!(
                out,
                "{}",
                palette.paint("1", &format!("account {}", escape_controls(&f.account)))
            )?;
            account = Some(&f.account);
            group = None;
        }
        let this_group = match (&f.role, &f.provider) {
            (Some(role), _) => format!("role {role}"),
            (None, Some(provider)) => format!("provider {provider}"),
            (None, None) => "account".to_owned(),
        };
        if group.as_deref() != Some(this_group.as_str()) {
            writeln!(out, "  {}", escape_controls(&this_group))?;
            group = Some(this_group);
        }
        let statement = f
            .statement
            .map(|s| format!(" [statement {s}]"))
            .unwrap_or_default();
        writeln!(
            out,
            "    {} {}{}",
            severity(palette, f.severity),
            f.code,
            statement
        )?;
        writeln!(out, "      {}", escape_controls(&f.message))?;
        if let Some(change) = &f.suggested_change {
            let operator = escape_controls(change.operator.as_deref().unwrap_or(""));
            let key = escape_controls(&change.key);
            for value in &change.remove {
                writeln!(
                    out,
                    "      {} {operator} {}: {}",
                    palette.paint("31", "-"),
                    key,
                    escape_controls(value)
                )?;
            }
            for value in &change.add {
                writeln!(
                    out,
                    "      {} {operator} {}: {}",
                    palette.paint("32", "+"),
                    key,
                    escape_controls(value)
                )?;
            }
        }
    }
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    writeln!(
        out,
        "{} findings: {} high, {} medium, {} low",
        findings.len(),
        count(Severity::High),
        count(Severity::Medium),
        count(Severity::Low)
    )?;
    for note in notes {
        writeln!(out, "note: {}", escape_controls(note))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_cells_carry_no_markup_or_line_breaks() {
        let cell = markdown_cell("a|b <img src=x> [x](http://e) `c`\n\u{202e}*d*");
        assert!(!cell.contains('\n') && !cell.contains('<') && !cell.contains('\u{202e}'));
        assert!(cell.contains("a\\|b") && cell.contains("\\[x\\]\\(http://e\\)") && cell.contains("\\*d\\*"));
    }
}
