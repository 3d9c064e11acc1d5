//! Notices to a Microsoft Teams message with one Adaptive Card (schema 1.4), the body a
//! Teams Workflows incoming webhook takes. Pure: the same notice always renders the same
//! JSON.
//!
//! Untrusted text (subjects, repository and role names, everything a diagnosis quotes
//! from them) is only ever a `TextRun` of a `RichTextBlock`, which Teams shows literally:
//! no Markdown, so no link, emphasis or list can be formed from it. Our own words are
//! `TextBlock`s. Every untrusted run also goes through [`untrusted`]: control and invisible
//! characters escaped, cut to a bound, `://` broken so a client cannot turn a stranger's
//! URL into a link, and `<at>` broken so no mention can form (the card never carries the
//! `msteams.entities` a mention needs either). Links are our own, built by
//! [`crate::links`], and only ever an `Action.OpenUrl`.
//!
//! Teams refuses messages over about 28 KB: [`render`] drops the optional parts of a card
//! that would be larger, and falls back to the title alone.

use diagnosis::alert::{
    change_summary, dominant_role, finding_label, groups, Alert, AlertKind, AuditDigest, Severity,
};
use diagnosis::audit::AccountFinding;
use diagnosis::{Cause, Diagnosis};
use serde_json::{json, Value};

use crate::links;
use crate::notice::{route_owner, AlarmNotice, Notice};
use crate::ports::Breakdown;
use crate::snippet::trust_policy_snippet;
use crate::words::{comparison, duration, number, plural, role_of, spike_of, trust_words, utc, who};

/// Teams' documented limits for a posted message, and the bounds we choose below them.
pub mod limits {
    /// The whole message body, in bytes (Teams: "approximately 28 KB").
    pub const MAX_MESSAGE_BYTES: usize = 27_000;
    /// One untrusted value, in characters.
    pub const MAX_VALUE_CHARS: usize = 200;
    /// Producer prose that quotes untrusted values (explanation, fix, reasons).
    pub const MAX_PROSE_CHARS: usize = 1500;
    /// The edited statement of a suggested change.
    pub const MAX_SNIPPET_CHARS: usize = 6000;
    /// Failed conditions, findings, notes and top entries shown.
    pub const MAX_CONDITIONS: usize = 3;
    pub const MAX_FINDINGS: usize = 3;
    pub const MAX_NOTES: usize = 3;
    pub const MAX_TOP: usize = 5;
    pub const MAX_EXPECTED_VALUES: usize = 5;
    /// Findings of an audit digest shown per list (new, resolved).
    pub const MAX_DIGEST_SHOWN: usize = 12;
}

use limits::*;

/// Breaks `://` and `<at`: a word joiner (U+2060) between their characters.
const JOINER: char = '\u{2060}';

/// `text` as an untrusted run may show it: escaped, bounded, defused.
pub fn untrusted(text: &str, max: usize) -> String {
    let bounded = diagnosis::text::bound(text, max);
    let mut out = String::with_capacity(bounded.len() + 4);
    let chars: Vec<char> = bounded.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        out.push(*c);
        let next = |k: usize| chars.get(i + k).copied();
        let breaks_url = *c == ':' && next(1) == Some('/') && next(2) == Some('/');
        let breaks_mention =
            *c == '<' && matches!(next(1), Some('a' | 'A')) && matches!(next(2), Some('t' | 'T'));
        if breaks_url || breaks_mention {
            out.push(JOINER);
        }
    }
    out
}

/// One piece of a line: our words, or a stranger's value.
enum Run {
    Ours(String),
    Value(String),
    Prose(String),
    Bold(String),
}

fn ours(text: impl Into<String>) -> Run {
    Run::Ours(text.into())
}

fn value(text: &str) -> Run {
    Run::Value(text.to_owned())
}

/// A card under construction.
struct Card {
    body: Vec<Value>,
    actions: Vec<Value>,
}

impl Card {
    fn new() -> Self {
        Card {
            body: Vec::new(),
            actions: Vec::new(),
        }
    }

    /// A title in our own words.
    fn title(&mut self, text: &str, severity: Severity) {
        let color = match severity {
            Severity::Critical | Severity::High => "Attention",
            Severity::Medium | Severity::Low => "Warning",
            Severity::Info => "Good",
        };
        self.body.push(json!({
            "type": "TextBlock", "text": text, "weight": "Bolder", "size": "Medium",
            "color": color, "wrap": true,
        }));
    }

    /// A line of runs; untrusted runs are defused here.
    fn line(&mut self, runs: Vec<Run>) {
        let inlines: Vec<Value> = runs
            .into_iter()
            .filter_map(|run| {
                let (text, extra) = match run {
                    Run::Ours(t) => (t, json!({})),
                    Run::Bold(t) => (t, json!({"weight": "Bolder"})),
                    Run::Value(t) => (untrusted(&t, MAX_VALUE_CHARS), json!({"fontType": "Monospace"})),
                    Run::Prose(t) => (untrusted(&t, MAX_PROSE_CHARS), json!({})),
                };
                if text.is_empty() {
                    return None;
                }
                let mut inline = json!({"type": "TextRun", "text": text});
                if let (Some(inline), Some(extra)) = (inline.as_object_mut(), extra.as_object()) {
                    inline.extend(extra.clone());
                }
                Some(inline)
            })
            .collect();
        if !inlines.is_empty() {
            self.body
                .push(json!({"type": "RichTextBlock", "inlines": inlines}));
        }
    }

    /// `Label: value`.
    fn fact(&mut self, label: &str, text: &str) {
        self.line(vec![Run::Bold(format!("{label}: ")), value(text)]);
    }

    /// A heading in our own words.
    fn heading(&mut self, text: &str) {
        self.body.push(json!({
            "type": "TextBlock", "text": text, "weight": "Bolder", "wrap": true, "spacing": "Medium",
        }));
    }

    /// Untrusted preformatted text (the edited statement).
    fn code(&mut self, text: &str) {
        self.body.push(json!({
            "type": "RichTextBlock",
            "inlines": [{"type": "TextRun", "text": untrusted(text, MAX_SNIPPET_CHARS), "fontType": "Monospace"}],
        }));
    }

    fn link(&mut self, title: &str, url: Option<String>) {
        if let Some(url) = url {
            self.actions
                .push(json!({"type": "Action.OpenUrl", "title": title, "url": url}));
        }
    }

    fn footer(&mut self, kind: &str, thread: &str, event: Option<&str>) {
        let mut runs = vec![ours(format!("oidc-watch {kind} · thread ")), value(thread)];
        if let Some(event) = event {
            runs.push(ours(" · event "));
            runs.push(value(event));
        }
        self.line(runs);
    }

    fn message(&self, body: &[Value]) -> Value {
        let mut content = json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": body,
        });
        if !self.actions.is_empty() {
            content["actions"] = Value::Array(self.actions.clone());
        }
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": content,
            }],
        })
    }

    /// The message, with as many blocks as fit Teams' size limit (the title and the
    /// first lines always).
    fn finish(self) -> Value {
        let mut keep = self.body.len();
        loop {
            let message = self.message(&self.body[..keep]);
            let size = serde_json::to_vec(&message).map_or(usize::MAX, |b| b.len());
            if size <= MAX_MESSAGE_BYTES || keep <= 1 {
                return message;
            }
            keep -= 1;
        }
    }
}

pub fn render(notice: &Notice, breakdown: Option<&Breakdown>) -> Value {
    match notice {
        Notice::Alert { alert, .. } => match alert.kind {
            AlertKind::Spike | AlertKind::Recovery => spike(alert),
            AlertKind::TrustChange => trust_change(alert),
            AlertKind::AuditDigest => match &alert.digest {
                Some(digest) => audit_digest(alert, digest),
                None => incident(alert),
            },
            _ => incident(alert),
        },
        Notice::Alarm(alarm) => alarm_card(alarm, breakdown),
    }
}

fn cause_words(alert: &Alert) -> String {
    let cause = match alert.cause {
        None => "AssumeRoleWithWebIdentity failed",
        Some(Cause::Unknown) => "Unknown cause",
        Some(cause) => cause.as_str(),
    };
    match alert.diagnosis.as_ref().and_then(|d| d.subject_mismatch) {
        Some(kind) => format!("{cause} ({})", kind.as_str()),
        None => cause.to_owned(),
    }
}

fn severity_words(severity: Severity) -> String {
    severity.as_str().to_uppercase()
}

fn notes(card: &mut Card, alert: &Alert) {
    if alert.kind != AlertKind::TrustChange {
        for change in alert.changes.iter().take(MAX_NOTES) {
            card.line(vec![ours("✏️ Change: "), Run::Prose(change.sentence.clone())]);
        }
    }
    for note in alert.notes.iter().take(MAX_NOTES) {
        card.line(vec![ours("ℹ️ "), Run::Prose(note.clone())]);
    }
}

/// A change that widened a role's trust: what, why, and the diff per statement.
fn trust_change(alert: &Alert) -> Value {
    let mut card = Card::new();
    card.title(
        &format!(
            "{} · Trust widened by an IAM change",
            severity_words(alert.severity)
        ),
        alert.severity,
    );
    for c in alert.changes.iter().take(MAX_NOTES) {
        let mut line = vec![value(c.action.as_str()), ours(" of ")];
        match (&c.role, &c.provider) {
            (Some(role), _) => line.extend([ours("role "), value(role)]),
            (None, Some(provider)) => line.extend([ours("provider "), value(provider)]),
            _ => line.push(ours("IAM")),
        }
        if let Some(actor) = &c.actor {
            line.extend([ours(" by "), value(actor)]);
        }
        line.extend([
            ours(" in account "),
            value(&alert.account_id),
            ours(" widened who may assume it."),
        ]);
        card.line(line);
        card.heading("Change");
        card.line(vec![Run::Prose(c.summary.clone())]);
        card.heading("Why it widens trust");
        for why in c.widening.iter().take(MAX_FINDINGS) {
            card.line(vec![ours("• "), Run::Prose(why.clone())]);
        }
        if !c.diff.is_empty() {
            card.heading("Diff");
            for d in c.diff.iter().take(MAX_CONDITIONS) {
                let mut line = vec![ours(format!("statement {} ", d.statement)), value(&d.target)];
                if !d.removed.is_empty() {
                    line.extend([ours(" removed "), value(&d.removed.join(", "))]);
                }
                if !d.added.is_empty() {
                    line.extend([ours(" added "), value(&d.added.join(", "))]);
                }
                card.line(line);
            }
        }
        card.footer(alert.kind.as_str(), &alert.thread_id, Some(&c.event_id));
    }
    notes(&mut card, alert);
    card.finish()
}

/// Groups of findings, each finding's code and message (and verified change, for new
/// ones); at most `shown` findings.
fn digest_groups(card: &mut Card, findings: &[AccountFinding], shown: usize, new: bool) -> usize {
    let mut listed = 0;
    for group in groups(findings) {
        if listed >= shown {
            break;
        }
        let mut line = Vec::new();
        if new {
            line.push(Run::Bold(format!("{} · ", group.severity.as_str())));
        }
        line.extend([ours("account "), value(group.account)]);
        match (group.role, group.provider) {
            (Some(role), _) => line.extend([ours(" · role "), value(role)]),
            (None, Some(provider)) => line.extend([ours(" · provider "), value(provider)]),
            _ => {}
        }
        card.line(line);
        for f in group.findings.iter().take(shown - listed) {
            listed += 1;
            let mut line = vec![ours("• "), value(&finding_label(f))];
            if new {
                line.extend([ours(": "), Run::Prose(f.message.clone())]);
            }
            card.line(line);
            if let Some(change) = f.suggested_change.as_ref().filter(|_| new) {
                card.line(vec![
                    ours("   Verified change: "),
                    Run::Prose(change_summary(change)),
                ]);
            }
        }
    }
    listed
}

/// oidc-auditor's digest: new findings by severity, account and role; resolved ones.
fn audit_digest(alert: &Alert, d: &AuditDigest) -> Value {
    let mut card = Card::new();
    card.title(
        &format!(
            "{} · Trust-policy audit: {} new, {} resolved",
            severity_words(alert.severity),
            d.new_count(),
            d.resolved_count()
        ),
        alert.severity,
    );
    let mut line = vec![ours(format!(
        "The scheduled audit of {} (",
        plural(d.accounts.len() as u64, "account", "accounts")
    ))];
    for (i, account) in d.accounts.iter().take(MAX_TOP).enumerate() {
        if i > 0 {
            line.push(ours(", "));
        }
        line.push(value(account));
    }
    if d.accounts.len() > MAX_TOP {
        line.push(ours(format!(" and {} more", d.accounts.len() - MAX_TOP)));
    }
    line.push(ours(format!(
        ") found {} and {} since its last run; {} unchanged.",
        plural(d.new_count() as u64, "new finding", "new findings"),
        plural(d.resolved_count() as u64, "resolved finding", "resolved findings"),
        d.unchanged
    )));
    card.line(line);
    for (heading, findings, total, new) in [
        ("New findings", &d.new, d.new_count(), true),
        (
            "Resolved since the last audit",
            &d.resolved,
            d.resolved_count(),
            false,
        ),
    ] {
        if total == 0 {
            continue;
        }
        card.heading(heading);
        let listed = digest_groups(&mut card, findings, MAX_DIGEST_SHOWN, new);
        if total > listed {
            card.line(vec![ours(format!(
                "{} not shown; the email and `oidc-watch audit` list them.",
                plural((total - listed) as u64, "more finding", "more findings")
            ))]);
        }
    }
    for u in d.unread.iter().take(MAX_NOTES) {
        card.line(vec![
            ours("⚠️ Account "),
            value(&u.account),
            ours(" was not read ("),
            Run::Prose(u.error.clone()),
            ours("); its previous findings stand."),
        ]);
    }
    card.footer(alert.kind.as_str(), &alert.thread_id, None);
    card.finish()
}

fn incident(alert: &Alert) -> Value {
    let d = alert.diagnosis.as_ref();
    let severity = severity_words(alert.severity);
    let mut card = Card::new();
    card.title(
        &match alert.kind {
            AlertKind::Probe => format!("{severity} · Probe from an outside owner: {}", cause_words(alert)),
            AlertKind::ForeignSuccess => format!("{severity} · An outside identity assumed a role"),
            _ => format!("{severity} · {}", cause_words(alert)),
        },
        alert.severity,
    );
    let who = who(d).unwrap_or_else(|| "-".to_owned());
    let role = role_of(d).unwrap_or("an unknown role");
    let owner = d.and_then(route_owner).unwrap_or_else(|| "-".to_owned());
    let region = d.and_then(|d| d.region.as_deref()).unwrap_or("-");
    let summary = match alert.kind {
        AlertKind::Probe => vec![
            value(&who),
            ours(", owned by "),
            value(&owner),
            ours(" outside the allowed owners, tried to assume "),
            value(role),
            ours(" in account "),
            value(&alert.account_id),
            ours(" ("),
            value(region),
            ours(
                ") and was refused. Do not add it to the trust policy unless you know who this \
                  is. Further probes from this owner are muted for a while.",
            ),
        ],
        AlertKind::ForeignSuccess => vec![
            value(&who),
            ours(", owned by "),
            value(&owner),
            ours(" outside the allowed owners, assumed "),
            value(role),
            ours(" in account "),
            value(&alert.account_id),
            ours(" ("),
            value(region),
            ours(
                "). Check what the session did in CloudTrail, then narrow the role's sub \
                  condition to your own repositories.",
            ),
        ],
        _ => vec![
            value(&who),
            ours(" could not assume "),
            value(role),
            ours(" in account "),
            value(&alert.account_id),
            ours(" ("),
            value(region),
            ours(format!(
                "): {}.",
                match alert.attempts {
                    0 | 1 => "first attempt".to_owned(),
                    n => plural(n, "attempt", "attempts"),
                }
            )),
        ],
    };
    card.line(summary);
    notes(&mut card, alert);
    if let Some(d) = d {
        facts(&mut card, alert, d);
        if let Some(subject) = &d.subject {
            card.fact("Subject", subject);
        }
        if !d.explanation.is_empty() {
            card.heading("Why");
            card.line(vec![Run::Prose(d.explanation.clone())]);
        }
        if !d.failed_conditions.is_empty() {
            card.heading("Failing condition");
            conditions(&mut card, d);
        }
        // A stranger's job gets no fix: the "fix" would let them in.
        if alert.kind == AlertKind::Incident {
            if let Some(fix) = &d.fix {
                card.heading("Fix");
                card.line(vec![Run::Prose(fix.clone())]);
            }
            if let (Some(snippet), Some(change)) = (trust_policy_snippet(d), &d.suggested_change) {
                card.heading("Trust-policy change (verified: it admits this job and no other owner's)");
                card.line(vec![Run::Prose(format!("{}.", change_summary(change)))]);
                card.code(&snippet.json);
            }
        }
        if !d.findings.is_empty() {
            card.heading("Trust-policy findings");
            for f in d.findings.iter().take(MAX_FINDINGS) {
                card.line(vec![
                    Run::Bold(format!("{} {}: ", f.severity.as_str(), f.code.as_str())),
                    Run::Prose(f.message.clone()),
                ]);
            }
            let more = d.findings.len().saturating_sub(MAX_FINDINGS);
            if more > 0 {
                card.line(vec![ours(format!("… and {more} more"))]);
            }
        }
        links_of(&mut card, d);
    }
    card.footer(
        alert.kind.as_str(),
        &alert.thread_id,
        d.and_then(|d| d.event_id.as_deref()),
    );
    card.finish()
}

fn facts(card: &mut Card, alert: &Alert, d: &Diagnosis) {
    card.fact("Role", role_of(Some(d)).unwrap_or("-"));
    card.fact("Account", &alert.account_id);
    card.fact("Region", d.region.as_deref().unwrap_or("-"));
    let c = &d.claims;
    if let Some(repository) = &c.repository {
        card.fact("Repository", repository);
    } else if let (Some(ns), Some(sa)) = (&c.namespace, &c.service_account) {
        card.fact("Service account", &format!("{ns}/{sa}"));
    } else if let (Some(org), Some(ws)) = (&c.organization, &c.workspace) {
        card.fact("Workspace", &format!("{org}/{ws}"));
    }
    if let Some(environment) = &c.environment {
        card.fact("Environment", environment);
    } else if c.pull_request {
        card.fact("Pull request", c.git_ref.as_deref().unwrap_or("yes"));
    } else if let Some(git_ref) = c.git_ref.as_deref() {
        match c.ref_type.as_deref() {
            Some("branch") => card.fact("Branch", git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref)),
            Some("tag") => card.fact("Tag", git_ref.strip_prefix("refs/tags/").unwrap_or(git_ref)),
            _ => card.fact("Ref", git_ref),
        }
    }
    card.line(vec![
        Run::Bold("Attempts: ".to_owned()),
        ours(alert.attempts.to_string()),
    ]);
    if let Some(provider) = &d.provider {
        card.fact("Provider", provider);
    }
    card.line(vec![
        Run::Bold("Confidence: ".to_owned()),
        ours(format!("{} ({})", d.confidence.as_str(), d.evidence)),
    ]);
    let mut owner = vec![Run::Bold("Owner: ".to_owned())];
    match &d.owner {
        Some(o) => owner.push(value(&o.to_string())),
        None => owner.push(ours("no owner in the token")),
    }
    owner.push(ours(format!(" · {}", trust_words(d.trust))));
    card.line(owner);
}

fn conditions(card: &mut Card, d: &Diagnosis) {
    for c in d.failed_conditions.iter().take(MAX_CONDITIONS) {
        card.line(vec![
            ours(format!("Statement {} · ", c.statement)),
            value(&c.operator),
            ours(" · "),
            value(&c.key),
        ]);
        let mut expected = vec![ours("expected: ")];
        for (i, v) in c.expected.iter().take(MAX_EXPECTED_VALUES).enumerate() {
            if i > 0 {
                expected.push(ours(", "));
            }
            expected.push(value(v));
        }
        if c.expected.len() > MAX_EXPECTED_VALUES {
            expected.push(ours(format!(
                " and {} more",
                c.expected.len() - MAX_EXPECTED_VALUES
            )));
        }
        card.line(expected);
        let actual = match &c.actual {
            Value::String(s) => value(s),
            Value::Null => ours("not in the token, or not recorded by CloudTrail"),
            other => value(&other.to_string()),
        };
        card.line(vec![ours("actual: "), actual]);
    }
    if d.failed_conditions.len() > MAX_CONDITIONS {
        card.line(vec![ours(format!(
            "… and {} more",
            d.failed_conditions.len() - MAX_CONDITIONS
        ))]);
    }
}

fn links_of(card: &mut Card, d: &Diagnosis) {
    let partition = links::partition_of(d.role_arn.as_deref());
    if let (Some(region), Some(event_id)) = (&d.region, &d.event_id) {
        card.link(
            "CloudTrail event",
            links::cloudtrail_event(partition, region, event_id),
        );
    }
    if let (Some(role), false) = (&d.role_name, d.cause == Cause::RoleNotFound) {
        card.link("IAM role", links::iam_role(partition, role));
    }
    if let (Some(repository), Some(run)) = (&d.claims.repository, &d.github_run_id) {
        card.link(
            "GitHub run",
            links::github_run(d.provider.as_deref(), repository, run),
        );
    }
}

fn top(card: &mut Card, label: &str, items: &[(String, u64)]) {
    card.heading(label);
    if items.is_empty() {
        card.line(vec![ours("-")]);
    }
    for (name, n) in items.iter().take(MAX_TOP) {
        card.line(vec![ours("• "), value(name), ours(format!(": {n}"))]);
    }
}

fn spike(alert: &Alert) -> Value {
    let spike = spike_of(alert);
    let window = duration(spike.window_seconds);
    let mut card = Card::new();
    if alert.kind == AlertKind::Recovery {
        card.title(
            "✅ Recovered · OIDC assume-role failures back to normal",
            Severity::Info,
        );
        card.line(vec![ours(format!(
            "Failures are back to normal: {} in the last {window}, against a baseline of {:.1} per window.",
            spike.failures, spike.baseline
        ))]);
    } else {
        card.title(
            &format!(
                "{} · Spike in OIDC assume-role failures",
                severity_words(alert.severity)
            ),
            alert.severity,
        );
        let mut summary = vec![ours(format!("{} failures in the last {window}", spike.failures))];
        if let Some((role, n)) = dominant_role(&spike) {
            summary.push(ours(format!(", {n} of them on role ")));
            summary.push(value(role));
        }
        summary.push(ours(format!(
            ", against a baseline of {:.1} per window.",
            spike.baseline
        )));
        card.line(summary);
    }
    notes(&mut card, alert);
    card.fact("Scope", &spike.scope);
    card.fact("Account", &alert.account_id);
    top(&mut card, "Top roles", &spike.top_roles);
    top(&mut card, "Top causes", &spike.top_causes);
    card.footer(alert.kind.as_str(), &alert.thread_id, None);
    card.finish()
}

fn alarm_card(alarm: &AlarmNotice, breakdown: Option<&Breakdown>) -> Value {
    let new = if alarm.new_state_value.is_empty() {
        "UNKNOWN"
    } else {
        &alarm.new_state_value
    };
    let name = if alarm.alarm_name.is_empty() {
        "unnamed alarm"
    } else {
        &alarm.alarm_name
    };
    let mut card = Card::new();
    let state = match new {
        "ALARM" => "🚨 ALARM",
        "OK" => "✅ OK",
        _ => "❔ state changed",
    };
    card.title(&format!("{state} · CloudWatch alarm"), alarm.severity());
    card.line(vec![
        ours("CloudWatch alarm "),
        value(name),
        ours(" changed from "),
        value(if alarm.old_state_value.is_empty() {
            "-"
        } else {
            &alarm.old_state_value
        }),
        ours(" to "),
        value(new),
        ours("."),
    ]);
    if let Some(description) = alarm.alarm_description.as_deref().filter(|d| !d.is_empty()) {
        card.line(vec![Run::Prose(description.to_owned())]);
    }
    card.fact("Account", &alarm.aws_account_id);
    card.fact("Region", alarm.region_code().unwrap_or(&alarm.region));
    let t = &alarm.trigger;
    card.line(vec![
        Run::Bold("Condition: ".to_owned()),
        value(&comparison(&t.comparison_operator)),
        ours(format!(
            " {} for {} of {} × {}",
            t.threshold.map_or("-".to_owned(), number),
            t.datapoints_to_alarm.unwrap_or(t.evaluation_periods).max(1),
            t.evaluation_periods.max(1),
            duration(alarm.period())
        )),
    ]);
    match alarm.changed_at() {
        Some(at) => card.line(vec![Run::Bold("Changed: ".to_owned()), ours(utc(at))]),
        None => card.fact("Changed", &alarm.state_change_time),
    }
    if let (Some(namespace), Some(metric)) = (&t.namespace, &t.metric_name) {
        card.line(vec![
            Run::Bold("Metric: ".to_owned()),
            value(namespace),
            ours(" "),
            value(metric),
        ]);
    }
    if !alarm.new_state_reason.is_empty() {
        card.heading("Reason");
        card.line(vec![Run::Prose(alarm.new_state_reason.clone())]);
    }
    if let Some(b) = breakdown {
        card.heading(&format!(
            "Failures in the window ({} to {})",
            utc(b.start),
            utc(b.end)
        ));
        if b.by_cause.is_empty() && b.by_role.is_empty() {
            card.line(vec![ours("None recorded by cause or role.")]);
        }
        for (label, items) in [("By cause", &b.by_cause), ("By role", &b.by_role)] {
            for (name, n) in items.iter().take(MAX_TOP) {
                card.line(vec![
                    ours(format!("{label}: ")),
                    value(name),
                    ours(format!(": {}", number(*n))),
                ]);
            }
        }
    }
    card.link("Alarm in CloudWatch", links::cloudwatch_alarm(&alarm.alarm_arn));
    card.line(vec![
        ours("oidc-watch · CloudWatch alarm "),
        value(&alarm.alarm_arn),
    ]);
    card.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untrusted_text_forms_no_link_or_mention() {
        assert_eq!(
            untrusted("https://evil.example/x", 200),
            "https:\u{2060}//evil.example/x"
        );
        assert_eq!(untrusted("<at>Boss</at>", 200), "<\u{2060}at>Boss</at>");
        assert_eq!(untrusted("a\u{202E}b", 200), "a\\u{202e}b");
        assert!(untrusted(&"x".repeat(5000), 200).chars().count() <= 200);
    }

    #[test]
    fn an_oversized_card_keeps_its_title_and_fits() {
        let mut card = Card::new();
        card.title("title", Severity::High);
        for _ in 0..400 {
            card.line(vec![Run::Prose("y".repeat(1400))]);
        }
        let message = card.finish();
        assert!(serde_json::to_vec(&message).unwrap().len() <= MAX_MESSAGE_BYTES);
        assert_eq!(message["attachments"][0]["content"]["body"][0]["text"], "title");
    }
}
