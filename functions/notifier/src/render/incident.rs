//! Incidents, probes and outside successes: who failed to assume what, why, and the fix.

use super::*;

pub fn render_alert(alert: &Alert) -> Rendered {
    match alert.kind {
        AlertKind::Spike | AlertKind::Recovery => render_spike(alert),
        AlertKind::TrustChange => render_trust_change(alert),
        AlertKind::AuditDigest => match &alert.digest {
            Some(digest) => render_digest(alert, digest),
            None => render_incident(alert),
        },
        _ => render_incident(alert),
    }
}

pub(super) fn cause_line(alert: &Alert) -> String {
    let cause = match alert.cause {
        None => "AssumeRoleWithWebIdentity failed",
        Some(Cause::Unknown) => "Unknown cause",
        Some(cause) => cause.as_str(),
    };
    match alert.diagnosis.as_ref().and_then(|d| d.subject_mismatch) {
        Some(kind) => format!("{} ({})", value(cause), value(kind.as_str())),
        None => value(cause),
    }
}

/// Branch, tag, environment or pull request, from the claims.
pub(super) fn context_field(d: &Diagnosis) -> Option<String> {
    let c = &d.claims;
    if let Some(environment) = &c.environment {
        return Some(field("Environment", code(environment)));
    }
    if c.pull_request {
        return Some(field(
            "Pull request",
            c.git_ref.as_deref().map_or("yes".to_owned(), code),
        ));
    }
    let git_ref = c.git_ref.as_deref()?;
    Some(match (c.ref_type.as_deref(), git_ref) {
        (Some("branch"), r) => field("Branch", code(r.strip_prefix("refs/heads/").unwrap_or(r))),
        (Some("tag"), r) => field("Tag", code(r.strip_prefix("refs/tags/").unwrap_or(r))),
        (_, r) => field("Ref", code(r)),
    })
}

pub(super) fn headline(alert: &Alert) -> String {
    let severity = format!("{} {}", emoji(alert.severity), upper(alert.severity));
    match alert.kind {
        AlertKind::Probe => format!("{severity} · Probe from an outside owner: {}", cause_line(alert)),
        AlertKind::ForeignSuccess => format!("{severity} · An outside identity assumed a role"),
        _ => format!("{severity} · {}", cause_line(alert)),
    }
}

pub(super) fn summary(alert: &Alert) -> String {
    let d = alert.diagnosis.as_ref();
    let role = role_of(d).map_or("an unknown role".to_owned(), code);
    let account = code(&alert.account_id);
    let region = d
        .and_then(|d| d.region.as_deref())
        .map_or(String::new(), |r| format!(" ({})", value(r)));
    let who = who(d).map_or("A job".to_owned(), |w| code(&w));
    let owner = code(&d.and_then(route_owner).unwrap_or_else(|| "-".to_owned()));
    match alert.kind {
        AlertKind::Probe => format!(
            ":warning: {who}, owned by {owner} outside the allowed owners, tried to assume {role} \
             in account {account}{region} and was refused. Do not add it to the trust policy \
             unless you know who this is. Further probes from this owner are muted for a while."
        ),
        AlertKind::ForeignSuccess => format!(
            ":rotating_light: {who}, owned by {owner} outside the allowed owners, *assumed* {role} \
             in account {account}{region}. Check what the session did in CloudTrail, then \
             narrow the role's `sub` condition to your own repositories."
        ),
        _ => format!(
            "{who} could not assume {role} in account {account}{region}: {}.",
            match alert.attempts {
                0 | 1 => "first attempt".to_owned(),
                n => plural(n, "attempt", "attempts"),
            }
        ),
    }
}

pub(super) fn fields(alert: &Alert, d: Option<&Diagnosis>) -> Vec<String> {
    let mut fields = vec![
        field("Role", role_of(d).map_or("-".to_owned(), code)),
        field("Account", code(&alert.account_id)),
    ];
    let Some(d) = d else {
        fields.push(field("Attempts", alert.attempts.to_string()));
        return fields;
    };
    fields.push(field("Region", d.region.as_deref().map_or("-".to_owned(), code)));
    let c = &d.claims;
    if let Some(repository) = &c.repository {
        fields.push(field("Repository", code(repository)));
    } else if let (Some(ns), Some(sa)) = (&c.namespace, &c.service_account) {
        fields.push(field("Service account", code(&format!("{ns}/{sa}"))));
    } else if let (Some(org), Some(ws)) = (&c.organization, &c.workspace) {
        fields.push(field("Workspace", code(&format!("{org}/{ws}"))));
    }
    if let Some(context) = context_field(d) {
        fields.push(context);
    }
    fields.push(field("Attempts", alert.attempts.to_string()));
    if let Some(provider) = &d.provider {
        fields.push(field("Provider", code(provider)));
    }
    fields.push(field(
        "Confidence",
        format!("{} ({})", value(d.confidence.as_str()), value(d.evidence)),
    ));
    fields
}

pub(super) fn condition_text(d: &Diagnosis) -> String {
    let mut text = String::from("*Failing condition*");
    for c in d.failed_conditions.iter().take(MAX_CONDITIONS) {
        let mut expected: Vec<String> = c
            .expected
            .iter()
            .take(MAX_EXPECTED_VALUES)
            .map(|v| code(v))
            .collect();
        if c.expected.len() > MAX_EXPECTED_VALUES {
            expected.push(format!("and {} more", c.expected.len() - MAX_EXPECTED_VALUES));
        }
        let actual = match &c.actual {
            Value::String(s) => code(s),
            Value::Array(items) => items
                .iter()
                .take(MAX_EXPECTED_VALUES)
                .map(|v| code(v.as_str().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", "),
            Value::Null => "_not in the token, or not recorded by CloudTrail_".to_owned(),
            other => code(&other.to_string()),
        };
        text.push_str(&format!(
            "\nStatement {} · {} · {}\n• expected: {}\n• actual: {}",
            c.statement,
            code(&c.operator),
            code(&c.key),
            if expected.is_empty() {
                "-".to_owned()
            } else {
                expected.join(", ")
            },
            actual
        ));
    }
    if d.failed_conditions.len() > MAX_CONDITIONS {
        text.push_str(&format!(
            "\n… and {} more",
            d.failed_conditions.len() - MAX_CONDITIONS
        ));
    }
    text
}

pub(super) fn links_line(d: &Diagnosis) -> String {
    let partition = links::partition_of(d.role_arn.as_deref());
    let mut found = Vec::new();
    if let (Some(region), Some(event_id)) = (&d.region, &d.event_id) {
        if let Some(url) = links::cloudtrail_event(partition, region, event_id) {
            found.push(format!("<{url}|CloudTrail event>"));
        }
    }
    if let (Some(role), false) = (&d.role_name, d.cause == Cause::RoleNotFound) {
        if let Some(url) = links::iam_role(partition, role) {
            found.push(format!("<{url}|IAM role>"));
        }
    }
    if let (Some(repository), Some(run)) = (&d.claims.repository, &d.github_run_id) {
        if let Some(url) = links::github_run(d.provider.as_deref(), repository, run) {
            found.push(format!("<{url}|GitHub run>"));
        }
    }
    found.join("  ·  ")
}

pub(super) fn render_incident(alert: &Alert) -> Rendered {
    let d = alert.diagnosis.as_ref();
    let mut blocks = Blocks::new();
    blocks.header(&headline(alert));
    blocks.section(&summary(alert));
    blocks.context(&change_notes(alert));
    blocks.context(&notes(alert));
    blocks.fields(&fields(alert, d));
    if let Some(line) = d.and_then(owner_line) {
        blocks.context(&[line]);
    }
    if let Some(d) = d {
        if let Some(subject) = &d.subject {
            blocks.section(&field("Subject", code(subject)));
        }
        if !d.explanation.is_empty() {
            blocks.section(&field("Why", prose(&d.explanation, MAX_PROSE_CHARS)));
        }
        if !d.failed_conditions.is_empty() {
            blocks.section(&condition_text(d));
        }
        // A stranger's job gets no fix: the "fix" would let them in.
        if alert.kind == AlertKind::Incident {
            if let Some(fix) = &d.fix {
                blocks.section(&field("Fix", prose(fix, MAX_PROSE_CHARS)));
            }
            if let Some(snippet) = trust_policy_snippet(d) {
                snippet_sections(&mut blocks, &snippet);
            }
        }
        let findings: Vec<String> = d
            .findings
            .iter()
            .take(MAX_FINDINGS)
            .map(|f| {
                format!(
                    "• *{}* {}: {}",
                    value(f.severity.as_str()),
                    value(f.code.as_str()),
                    prose(&f.message, MAX_FINDING_CHARS)
                )
            })
            .collect();
        if !findings.is_empty() {
            let more = d.findings.len().saturating_sub(MAX_FINDINGS);
            let more = if more > 0 {
                format!("\n… and {more} more")
            } else {
                String::new()
            };
            blocks.section(&format!("*Trust-policy findings*\n{}{more}", findings.join("\n")));
        }
        blocks.context(&[links_line(d)]);
    }
    blocks.context(&[footer(
        alert.kind.as_str(),
        &alert.thread_id,
        d.and_then(|d| d.event_id.as_deref()),
    )]);
    Rendered {
        text: incident_fallback(alert),
        blocks: blocks.finish(),
    }
}

/// What [`code_block`] adds around its content: "```\n" and "\n```".
pub(super) const CODE_FENCES: usize = 8;

/// The suggested change: its summary, then the edited statement as one code block that
/// fits its own section (so a cut never splits the fences).
pub(super) fn snippet_sections(blocks: &mut Blocks, snippet: &Snippet) {
    blocks.section(&format!(
        "*Trust-policy change* (verified: it admits this job and no other owner's)\n{}",
        snippet.summary
    ));
    let body = mrkdwn_lines(&snippet.json);
    let mut head = format!("Statement {} after the change", snippet.statement);
    if snippet.shortened {
        head.push_str(" (values were shortened: check them before use)");
    }
    head.push_str(":\n");
    let mut room = MAX_SECTION_TEXT.saturating_sub(head.chars().count());
    if body.chars().count() + CODE_FENCES > room {
        head = format!(
            "Statement {} after the change, cut to fit Slack: take the whole policy from the \
             email or `oidc-watch diagnose`:\n",
            snippet.statement
        );
        room = MAX_SECTION_TEXT.saturating_sub(head.chars().count());
    }
    blocks.section(&format!("{head}{}", code_block(&body, room)));
}

/// ``Owner `github:acme` · ours``: whose job it was, and whether that owner is ours.
pub(super) fn owner_line(d: &Diagnosis) -> Option<String> {
    let owner = d.owner.as_ref().map_or("No owner in the token".to_owned(), |o| {
        format!("Owner {}", code(&o.to_string()))
    });
    Some(format!("{owner} · {}", trust_words(d.trust)))
}

pub(super) fn incident_fallback(alert: &Alert) -> String {
    let d = alert.diagnosis.as_ref();
    let role = role_of(d).map_or("an unknown role".to_owned(), value);
    let who = who(d).map_or("a job".to_owned(), |w| value(&w));
    let what = match alert.kind {
        AlertKind::Probe => format!("probe from an outside owner: {who} tried to assume {role}"),
        AlertKind::ForeignSuccess => format!("an outside identity ({who}) assumed {role}"),
        _ => format!("{}: {who} could not assume {role}", cause_line(alert)),
    };
    let mut text = format!(
        "[{}] {what} in account {} ({}).",
        upper(alert.severity),
        value(&alert.account_id),
        plural(alert.attempts.max(1), "attempt", "attempts")
    );
    if let Some(d) = d.filter(|d| !d.explanation.is_empty()) {
        text.push(' ');
        text.push_str(&prose(&d.explanation, MAX_PROSE_CHARS));
    }
    for note in alert.notes.iter().take(MAX_NOTES) {
        text.push(' ');
        text.push_str(&prose(note, MAX_FINDING_CHARS));
    }
    fit(&text, MAX_FALLBACK_TEXT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_fit_their_section_and_say_when_they_are_not_literal() {
        let snippet = |json: String, shortened: bool| Snippet {
            statement: 2,
            summary: "Add `x` to `Action` in statement 2.".to_owned(),
            json,
            shortened,
        };
        let mut blocks = Blocks::new();
        snippet_sections(
            &mut blocks,
            &snippet("{\n  \"Effect\": \"Allow\"\n}".to_owned(), true),
        );
        let text = blocks.0[1]["text"]["text"].as_str().unwrap().to_owned();
        assert_eq!(
            text,
            "Statement 2 after the change (values were shortened: check them before use):\n```\n{\n  \"Effect\": \"Allow\"\n}\n```"
        );
        let mut blocks = Blocks::new();
        let long = format!("{{\n{}\n}}", "  \"a<b\": 1,\n".repeat(400));
        snippet_sections(&mut blocks, &snippet(long, false));
        let text = blocks.0[1]["text"]["text"].as_str().unwrap().to_owned();
        assert!(text.starts_with("Statement 2 after the change, cut to fit Slack"));
        assert!(text.chars().count() <= MAX_SECTION_TEXT && text.ends_with("…\n```"));
        assert!(text.contains("a&lt;b") && !text.contains("a<b"));
        assert_eq!(text.matches("```").count(), 2);
    }
}
