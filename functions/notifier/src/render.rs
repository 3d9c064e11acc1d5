//! Notices to Slack Block Kit, with a plain `text` fallback for notifications and clients
//! that show no blocks. Pure: the same notice always renders the same JSON (the golden
//! tests pin it).
//!
//! Every untrusted string goes through [`crate::escape`]; our own words do not need to.
//! Every text object is cut to its Slack limit by [`fit`] (see [`limits`]), and
//! [`limit_violations`] checks a finished payload against those limits.

use diagnosis::alert::{dominant_role, AlertKind, Severity, SpikeSummary};
use serde_json::{json, Value};

use crate::escape::{code, code_block, fit, mrkdwn, mrkdwn_lines, value};
use crate::links;
use crate::notice::{AlarmNotice, AlertNotice, DiagnosisView, Notice};
use crate::ports::Breakdown;
use crate::snippet::{trust_policy_snippet, Snippet};

/// Slack's documented Block Kit limits, and the bounds we choose below them.
pub mod limits {
    /// Blocks per message.
    pub const MAX_BLOCKS: usize = 50;
    /// A section's `text`.
    pub const MAX_SECTION_TEXT: usize = 3000;
    /// Fields per section.
    pub const MAX_FIELDS: usize = 10;
    /// One section field's text.
    pub const MAX_FIELD_TEXT: usize = 2000;
    /// A header's `plain_text`.
    pub const MAX_HEADER_TEXT: usize = 150;
    /// Elements per context block.
    pub const MAX_CONTEXT_ELEMENTS: usize = 10;
    /// One context element's text (text objects allow 3000; we keep context short).
    pub const MAX_CONTEXT_TEXT: usize = 2000;
    /// The top-level `text`. Slack truncates past 40,000 characters and advises under
    /// 4,000; as a notification preview it should be far shorter.
    pub const MAX_FALLBACK_TEXT: usize = 3000;
    /// `block_id`.
    pub const MAX_BLOCK_ID: usize = 255;
    /// Expected values listed per failed condition.
    pub const MAX_EXPECTED_VALUES: usize = 5;
    /// Failed conditions, findings and top entries shown.
    pub const MAX_CONDITIONS: usize = 3;
    pub const MAX_FINDINGS: usize = 3;
    pub const MAX_TOP: usize = 5;
    /// Prose that may quote untrusted values (explanation, fix, alarm reason): the
    /// producer bounds the values it quotes; this bounds a forged message.
    pub const MAX_PROSE_CHARS: usize = 1500;
    pub const MAX_FINDING_CHARS: usize = 500;
    /// Notes of the alert path shown (each bounded like a finding).
    pub const MAX_NOTES: usize = 3;
}

use limits::*;

/// A rendered message: fallback text and blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub text: String,
    pub blocks: Vec<Value>,
}

impl Rendered {
    /// The message body for a webhook or `chat.postMessage` (channel and thread are the
    /// delivery's business). Links never unfurl: a hostile URL gets no preview.
    pub fn payload(&self) -> Value {
        json!({
            "text": self.text,
            "blocks": self.blocks,
            "unfurl_links": false,
            "unfurl_media": false,
        })
    }
}

/// The same message with its blocks dropped: what is sent when Slack rejects the blocks.
pub fn text_only(payload: &Value) -> Value {
    let mut payload = payload.clone();
    if let Some(object) = payload.as_object_mut() {
        object.remove("blocks");
    }
    payload
}

pub fn render(notice: &Notice, breakdown: Option<&Breakdown>) -> Rendered {
    match notice {
        Notice::Alert(alert) => render_alert(alert),
        Notice::Alarm(alarm) => render_alarm(alarm, breakdown),
    }
}

struct Blocks(Vec<Value>);

impl Blocks {
    fn new() -> Self {
        Blocks(Vec::new())
    }

    /// `text` is escaped already.
    fn header(&mut self, text: &str) {
        self.0.push(json!({
            "type": "header",
            "text": {"type": "plain_text", "text": fit(text, MAX_HEADER_TEXT), "emoji": true}
        }));
    }

    fn section(&mut self, text: &str) {
        if !text.trim().is_empty() {
            self.0.push(json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": fit(text, MAX_SECTION_TEXT)}
            }));
        }
    }

    fn fields(&mut self, fields: &[String]) {
        let fields: Vec<Value> = fields
            .iter()
            .filter(|f| !f.trim().is_empty())
            .take(MAX_FIELDS)
            .map(|f| json!({"type": "mrkdwn", "text": fit(f, MAX_FIELD_TEXT)}))
            .collect();
        if !fields.is_empty() {
            self.0.push(json!({"type": "section", "fields": fields}));
        }
    }

    fn context(&mut self, elements: &[String]) {
        let elements: Vec<Value> = elements
            .iter()
            .filter(|e| !e.trim().is_empty())
            .take(MAX_CONTEXT_ELEMENTS)
            .map(|e| json!({"type": "mrkdwn", "text": fit(e, MAX_CONTEXT_TEXT)}))
            .collect();
        if !elements.is_empty() {
            self.0.push(json!({"type": "context", "elements": elements}));
        }
    }

    fn finish(mut self) -> Vec<Value> {
        if self.0.len() > MAX_BLOCKS {
            let dropped = self.0.len() - (MAX_BLOCKS - 1);
            self.0.truncate(MAX_BLOCKS - 1);
            self.context(&[format!("… {dropped} more blocks left out")]);
        }
        self.0
    }
}

fn emoji(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => ":rotating_light:",
        Severity::High => ":red_circle:",
        Severity::Medium => ":large_orange_circle:",
        Severity::Low => ":large_yellow_circle:",
        Severity::Info => ":large_blue_circle:",
    }
}

fn upper(severity: Severity) -> String {
    severity.as_str().to_uppercase()
}

/// Prose from the producer, escaped and cut to `max` characters.
fn prose(text: &str, max: usize) -> String {
    fit(&mrkdwn(text), max)
}

fn field(label: &str, content: String) -> String {
    format!("*{label}*\n{content}")
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `300 s` as `5 min`, `3600 s` as `1 h`.
fn duration(seconds: i64) -> String {
    match seconds {
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Epoch seconds as `2026-10-06 14:30 UTC`.
fn utc(t: i64) -> String {
    let u = diagnosis::time::Utc::from_epoch(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        u.year, u.month, u.day, u.hour, u.minute
    )
}

/// A count that is whole prints without decimals.
fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{}", (n * 100.0).round() / 100.0)
    }
}

// ---------------------------------------------------------------------------------------
// oidc-monitor alerts

pub fn render_alert(alert: &AlertNotice) -> Rendered {
    match alert.kind {
        AlertKind::Spike | AlertKind::Recovery => render_spike(alert),
        _ => render_incident(alert),
    }
}

fn cause_line(alert: &AlertNotice) -> String {
    let cause = match alert.cause.as_deref() {
        None => "AssumeRoleWithWebIdentity failed",
        Some("Unknown") => "Unknown cause",
        Some(cause) => cause,
    };
    match alert.subject_mismatch.as_deref() {
        Some(kind) => format!("{} ({})", value(cause), value(kind)),
        None => value(cause),
    }
}

fn role_of(d: Option<&DiagnosisView>) -> Option<&str> {
    d.and_then(|d| d.role_name.as_deref().or(d.role_arn.as_deref()))
}

/// Who ran the job: the repository, else what the subject says about it.
fn who(d: Option<&DiagnosisView>) -> Option<String> {
    let d = d?;
    let c = &d.claims;
    if let Some(repository) = &c.repository {
        return Some(repository.clone());
    }
    if let (Some(ns), Some(sa)) = (&c.namespace, &c.service_account) {
        return Some(format!("{ns}/{sa}"));
    }
    if let (Some(org), Some(ws)) = (&c.organization, &c.workspace) {
        return Some(format!("{org}/{ws}"));
    }
    d.subject.clone()
}

/// Branch, tag, environment or pull request, from the claims.
fn context_field(d: &DiagnosisView) -> Option<String> {
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

fn headline(alert: &AlertNotice) -> String {
    let severity = format!("{} {}", emoji(alert.severity), upper(alert.severity));
    match alert.kind {
        AlertKind::Probe => format!("{severity} · Probe from an outside owner: {}", cause_line(alert)),
        AlertKind::ForeignSuccess => format!("{severity} · An outside identity assumed a role"),
        _ => format!("{severity} · {}", cause_line(alert)),
    }
}

fn summary(alert: &AlertNotice) -> String {
    let d = alert.diagnosis.as_ref();
    let role = role_of(d).map_or("an unknown role".to_owned(), code);
    let account = code(&alert.account);
    let region = d
        .and_then(|d| d.region.as_deref())
        .map_or(String::new(), |r| format!(" ({})", value(r)));
    let who = who(d).map_or("A job".to_owned(), |w| code(&w));
    let owner = code(&alert.owner());
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

fn fields(alert: &AlertNotice, d: Option<&DiagnosisView>) -> Vec<String> {
    let mut fields = vec![
        field("Role", role_of(d).map_or("-".to_owned(), code)),
        field("Account", code(&alert.account)),
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
    if let Some(confidence) = &d.confidence {
        let evidence = d
            .evidence
            .as_deref()
            .map_or(String::new(), |e| format!(" ({})", value(e)));
        fields.push(field("Confidence", format!("{}{evidence}", value(confidence))));
    }
    fields
}

fn condition_text(d: &DiagnosisView) -> String {
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

fn links_line(d: &DiagnosisView) -> String {
    let partition = links::partition_of(d.role_arn.as_deref());
    let mut found = Vec::new();
    if let (Some(region), Some(event_id)) = (&d.region, &d.event_id) {
        if let Some(url) = links::cloudtrail_event(partition, region, event_id) {
            found.push(format!("<{url}|CloudTrail event>"));
        }
    }
    if let (Some(role), false) = (&d.role_name, d.cause.as_deref() == Some("RoleNotFound")) {
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

fn footer(kind: &str, thread: &str, event: Option<&str>) -> String {
    let event = event.map_or(String::new(), |e| format!(" · event {}", code(e)));
    format!("oidc-watch {kind} · thread {}{event}", code(thread))
}

fn render_incident(alert: &AlertNotice) -> Rendered {
    let d = alert.diagnosis.as_ref();
    let mut blocks = Blocks::new();
    blocks.header(&headline(alert));
    blocks.section(&summary(alert));
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
                    value(&f.severity),
                    value(&f.code),
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
const CODE_FENCES: usize = 8;

/// The suggested change: its summary, then the edited statement as one code block that
/// fits its own section (so a cut never splits the fences).
fn snippet_sections(blocks: &mut Blocks, snippet: &Snippet) {
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

/// The alert path's own notes (rate limits), as a context block.
fn notes(alert: &AlertNotice) -> Vec<String> {
    alert
        .notes
        .iter()
        .take(MAX_NOTES)
        .map(|n| format!(":information_source: {}", prose(n, MAX_FINDING_CHARS)))
        .collect()
}

/// ``Owner `github:acme` · ours``: whose job it was, and whether that owner is ours.
fn owner_line(d: &DiagnosisView) -> Option<String> {
    if d.owner.is_none() && d.trust.is_none() {
        return None;
    }
    let owner = d
        .owner
        .as_deref()
        .map_or("No owner in the token".to_owned(), |o| {
            format!("Owner {}", code(o))
        });
    let trust = match d.trust.as_deref() {
        None => return Some(owner),
        Some("ours") => "ours".to_owned(),
        Some("foreign") => "not one of ours".to_owned(),
        Some("unknown") => {
            "ours or not: unknown (no ALLOWED_OWNERS, no trust policy naming owners)".to_owned()
        }
        Some(other) => value(other),
    };
    Some(format!("{owner} · {trust}"))
}

fn incident_fallback(alert: &AlertNotice) -> String {
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
        value(&alert.account),
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

fn top_list(items: &[(String, u64)], unknown_role: bool) -> String {
    if items.is_empty() {
        return "-".to_owned();
    }
    items
        .iter()
        .take(MAX_TOP)
        .map(|(name, n)| {
            let note = if unknown_role && name == diagnosis::metrics::UNKNOWN_DIMENSION {
                " (roles that do not exist)"
            } else {
                ""
            };
            format!("• {}{note}: {n}", code(name))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_spike(alert: &AlertNotice) -> Rendered {
    let spike = alert.spike.clone().unwrap_or(SpikeSummary {
        scope: "-".to_owned(),
        window_seconds: 0,
        failures: alert.attempts,
        baseline: 0.0,
        top_roles: Vec::new(),
        top_causes: Vec::new(),
    });
    let window = duration(spike.window_seconds);
    // The monitor's spikes have the one scope `all`; an older monitor's may name a role.
    let (in_scope, in_scope_text) = match spike.scope.as_str() {
        "all" => (String::new(), String::new()),
        scope => (
            format!(" in scope {}", code(scope)),
            format!(" in scope {}", value(scope)),
        ),
    };
    let (on_role, on_role_text) =
        dominant_role(&spike).map_or((String::new(), String::new()), |(role, n)| {
            (
                format!(", {n} of them on role {}", code(role)),
                format!(", {n} of them on role {}", value(role)),
            )
        });
    let mut blocks = Blocks::new();
    let (header, summary) = if alert.kind == AlertKind::Recovery {
        (
            ":white_check_mark: Recovered · OIDC assume-role failures back to normal".to_owned(),
            format!(
                "Failures{in_scope} are back to normal: {} in the last {window}, against a \
                 baseline of {:.1} per window.",
                spike.failures, spike.baseline
            ),
        )
    } else {
        (
            format!(
                "{} {} · Spike in OIDC assume-role failures",
                emoji(alert.severity),
                upper(alert.severity)
            ),
            format!(
                "*{}* failures in the last {window}{in_scope}{on_role}, against a baseline of \
                 {:.1} per window.",
                spike.failures, spike.baseline
            ),
        )
    };
    blocks.header(&header);
    blocks.section(&summary);
    blocks.context(&notes(alert));
    blocks.fields(&[
        field("Scope", code(&spike.scope)),
        field("Account", code(&alert.account)),
        field("Failures", spike.failures.to_string()),
        field("Window", window.clone()),
        field("Baseline", format!("{:.1} per window", spike.baseline)),
    ]);
    blocks.fields(&[
        field("Top roles", top_list(&spike.top_roles, true)),
        field("Top causes", top_list(&spike.top_causes, false)),
    ]);
    blocks.context(&[footer(alert.kind.as_str(), &alert.thread_id, None)]);
    let text = if alert.kind == AlertKind::Recovery {
        format!(
            "[{}] Recovered: OIDC assume-role failures{in_scope_text} back to normal ({} in the last {window}).",
            upper(alert.severity),
            spike.failures
        )
    } else {
        let causes: Vec<String> = spike
            .top_causes
            .iter()
            .take(MAX_TOP)
            .map(|(c, n)| format!("{} {n}", value(c)))
            .collect();
        format!(
            "[{}] Spike: {} OIDC assume-role failures in the last {window}{in_scope_text}{on_role_text} (baseline {:.1}). Top causes: {}.",
            upper(alert.severity),
            spike.failures,
            spike.baseline,
            if causes.is_empty() {
                "-".to_owned()
            } else {
                causes.join(", ")
            }
        )
    };
    Rendered {
        text: fit(&text, MAX_FALLBACK_TEXT),
        blocks: blocks.finish(),
    }
}

// ---------------------------------------------------------------------------------------
// CloudWatch alarms

fn state_emoji(state: &str) -> &'static str {
    match state {
        "ALARM" => ":rotating_light:",
        "OK" => ":white_check_mark:",
        _ => ":grey_question:",
    }
}

fn comparison(operator: &str) -> String {
    match operator {
        "GreaterThanThreshold" => ">".to_owned(),
        "GreaterThanOrEqualToThreshold" => ">=".to_owned(),
        "LessThanThreshold" => "<".to_owned(),
        "LessThanOrEqualToThreshold" => "<=".to_owned(),
        "LessThanLowerOrGreaterThanUpperThreshold" => "outside the band".to_owned(),
        "GreaterThanUpperThreshold" => "above the band".to_owned(),
        "LessThanLowerThreshold" => "below the band".to_owned(),
        other => other.to_owned(),
    }
}

fn dimensions(dimensions: &[crate::notice::AlarmDimension]) -> String {
    if dimensions.is_empty() {
        return String::new();
    }
    let list: Vec<String> = dimensions
        .iter()
        .take(MAX_FIELDS)
        .map(|d| format!("{}={}", value(&d.name), value(&d.value)))
        .collect();
    format!(" [{}]", list.join(", "))
}

fn metric_text(alarm: &AlarmNotice) -> String {
    let t = &alarm.trigger;
    if t.metrics.is_empty() {
        let statistic = t
            .statistic
            .as_deref()
            .or(t.extended_statistic.as_deref())
            .unwrap_or("-");
        return format!(
            "*Metric*\n{} {} ({}, {}){}",
            code(t.namespace.as_deref().unwrap_or("-")),
            code(t.metric_name.as_deref().unwrap_or("-")),
            value(statistic),
            duration(alarm.period()),
            dimensions(&t.dimensions)
        );
    }
    let mut text = String::from("*Metric math*");
    for query in t.metrics.iter().take(MAX_FIELDS) {
        let returned = if query.return_data.unwrap_or(false) {
            " (alarmed on)"
        } else {
            ""
        };
        let label = query
            .label
            .as_deref()
            .filter(|l| !l.is_empty())
            .map_or(String::new(), |l| format!(" {}", value(l)));
        match (&query.expression, &query.metric_stat) {
            (Some(expression), _) => text.push_str(&format!(
                "\n• {} = {}{label}{returned}",
                code(&query.id),
                code(expression)
            )),
            (None, Some(stat)) => text.push_str(&format!(
                "\n• {} = {} {} ({}, {}){}{label}{returned}",
                code(&query.id),
                code(stat.metric.namespace.as_deref().unwrap_or("-")),
                code(stat.metric.metric_name.as_deref().unwrap_or("-")),
                value(&stat.stat),
                duration(stat.period),
                dimensions(&stat.metric.dimensions)
            )),
            (None, None) => text.push_str(&format!("\n• {}{label}{returned}", code(&query.id))),
        }
    }
    if t.metrics.len() > MAX_FIELDS {
        text.push_str(&format!("\n… and {} more", t.metrics.len() - MAX_FIELDS));
    }
    text
}

fn breakdown_list(items: &[(String, f64)]) -> String {
    items
        .iter()
        .take(MAX_TOP)
        .map(|(name, n)| format!("• {}: {}", code(name), number(*n)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn render_alarm(alarm: &AlarmNotice, breakdown: Option<&Breakdown>) -> Rendered {
    let name = if alarm.alarm_name.is_empty() {
        "unnamed alarm"
    } else {
        &alarm.alarm_name
    };
    let new = if alarm.new_state_value.is_empty() {
        "UNKNOWN"
    } else {
        &alarm.new_state_value
    };
    let mut blocks = Blocks::new();
    blocks.header(&format!("{} {} · {}", state_emoji(new), value(new), value(name)));
    let mut summary = format!(
        "CloudWatch alarm {} changed from {} to *{}*.",
        code(name),
        value(if alarm.old_state_value.is_empty() {
            "-"
        } else {
            &alarm.old_state_value
        }),
        value(new)
    );
    if let Some(description) = alarm.alarm_description.as_deref().filter(|d| !d.is_empty()) {
        summary.push('\n');
        summary.push_str(&prose(description, MAX_PROSE_CHARS));
    }
    blocks.section(&summary);
    let t = &alarm.trigger;
    let threshold = t.threshold.map_or("-".to_owned(), number);
    let condition = format!(
        "{} {} for {} of {} × {}",
        value(&comparison(&t.comparison_operator)),
        threshold,
        t.datapoints_to_alarm.unwrap_or(t.evaluation_periods).max(1),
        t.evaluation_periods.max(1),
        duration(alarm.period())
    );
    let changed = alarm
        .changed_at()
        .map_or_else(|| value(&alarm.state_change_time), utc);
    blocks.fields(&[
        field("Account", code(&alarm.aws_account_id)),
        field(
            "Region",
            alarm.region_code().map_or_else(|| value(&alarm.region), code),
        ),
        field("Condition", condition),
        field("Changed", changed),
    ]);
    blocks.section(&metric_text(alarm));
    if !alarm.new_state_reason.is_empty() {
        blocks.section(&field("Reason", prose(&alarm.new_state_reason, MAX_PROSE_CHARS)));
    }
    if let Some(b) = breakdown {
        let when = format!("{} to {}", utc(b.start), utc(b.end));
        if b.by_cause.is_empty() && b.by_role.is_empty() {
            blocks.section(&format!(
                "*Failures in the window* ({when})\nNone recorded by cause or role."
            ));
        } else {
            blocks.section(&format!("*Failures in the window* ({when})"));
            blocks.fields(&[
                field("By cause", breakdown_list(&b.by_cause)),
                field("By role", breakdown_list(&b.by_role)),
            ]);
        }
    }
    if let Some(url) = links::cloudwatch_alarm(&alarm.alarm_arn) {
        blocks.context(&[format!("<{url}|Alarm in CloudWatch>")]);
    }
    blocks.context(&[format!(
        "oidc-watch · CloudWatch alarm {}",
        code(&alarm.alarm_arn)
    )]);
    let mut text = format!(
        "[{}] {}: {} ({} → {}).",
        value(new),
        value(name),
        prose(&alarm.new_state_reason, MAX_PROSE_CHARS),
        value(&alarm.old_state_value),
        value(new)
    );
    if let Some(b) = breakdown.filter(|b| !b.by_cause.is_empty()) {
        let top: Vec<String> = b
            .by_cause
            .iter()
            .take(MAX_TOP)
            .map(|(c, n)| format!("{} {}", value(c), number(*n)))
            .collect();
        text.push_str(&format!(" Top causes: {}.", top.join(", ")));
    }
    Rendered {
        text: fit(&text, MAX_FALLBACK_TEXT),
        blocks: blocks.finish(),
    }
}

// ---------------------------------------------------------------------------------------
// Limits

fn text_of(object: &Value) -> Option<&str> {
    object.get("text").and_then(Value::as_str)
}

fn check_text(path: &str, object: &Value, max: usize, problems: &mut Vec<String>) {
    match text_of(object) {
        None => problems.push(format!("{path}: no text")),
        Some(t) if t.trim().is_empty() => problems.push(format!("{path}: empty text")),
        Some(t) if t.chars().count() > max => {
            problems.push(format!("{path}: {} characters > {max}", t.chars().count()))
        }
        _ => {}
    }
}

/// Every way `payload` breaks Slack's documented Block Kit limits (empty when it does not).
pub fn limit_violations(payload: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match payload.get("text").and_then(Value::as_str) {
        None => problems.push("text: missing (the fallback is required)".to_owned()),
        Some(t) if t.chars().count() > MAX_FALLBACK_TEXT => problems.push(format!(
            "text: {} characters > {MAX_FALLBACK_TEXT}",
            t.chars().count()
        )),
        _ => {}
    }
    let blocks = payload
        .get("blocks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if blocks.len() > MAX_BLOCKS {
        problems.push(format!("{} blocks > {MAX_BLOCKS}", blocks.len()));
    }
    for (i, block) in blocks.iter().enumerate() {
        let path = format!("blocks[{i}]");
        if let Some(id) = block.get("block_id").and_then(Value::as_str) {
            if id.chars().count() > MAX_BLOCK_ID {
                problems.push(format!("{path}.block_id too long"));
            }
        }
        match block.get("type").and_then(Value::as_str) {
            Some("header") => {
                let text = &block["text"];
                if text.get("type").and_then(Value::as_str) != Some("plain_text") {
                    problems.push(format!("{path}: header text must be plain_text"));
                }
                check_text(&format!("{path}.text"), text, MAX_HEADER_TEXT, &mut problems);
            }
            Some("section") => {
                let text = block.get("text");
                let fields = block.get("fields").and_then(Value::as_array);
                if text.is_none() && fields.is_none() {
                    problems.push(format!("{path}: section without text or fields"));
                }
                if let Some(text) = text {
                    check_text(&format!("{path}.text"), text, MAX_SECTION_TEXT, &mut problems);
                }
                if let Some(fields) = fields {
                    if fields.is_empty() || fields.len() > MAX_FIELDS {
                        problems.push(format!("{path}: {} fields", fields.len()));
                    }
                    for (j, f) in fields.iter().enumerate() {
                        check_text(&format!("{path}.fields[{j}]"), f, MAX_FIELD_TEXT, &mut problems);
                    }
                }
            }
            Some("context") => {
                let elements = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if elements.is_empty() || elements.len() > MAX_CONTEXT_ELEMENTS {
                    problems.push(format!("{path}: {} context elements", elements.len()));
                }
                for (j, e) in elements.iter().enumerate() {
                    check_text(
                        &format!("{path}.elements[{j}]"),
                        e,
                        MAX_CONTEXT_TEXT,
                        &mut problems,
                    );
                }
            }
            Some("divider") => {}
            other => problems.push(format!("{path}: unexpected block type {other:?}")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(utc(1_791_297_000), "2026-10-06 14:30 UTC");
        assert_eq!(duration(300), "5 min");
        assert_eq!(duration(7200), "2 h");
        assert_eq!(duration(90), "90 s");
        assert_eq!(number(12.0), "12");
        assert_eq!(number(1.25), "1.25");
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(2.0 / 3.0), "0.67");
    }

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

    #[test]
    fn too_many_blocks_are_cut_with_a_note() {
        let mut blocks = Blocks::new();
        for i in 0..80 {
            blocks.section(&format!("s{i}"));
        }
        let blocks = blocks.finish();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert!(blocks[MAX_BLOCKS - 1].to_string().contains("31 more blocks"));
        let payload = json!({"text": "t", "blocks": blocks});
        assert!(
            limit_violations(&payload).is_empty(),
            "{:?}",
            limit_violations(&payload)
        );
    }
}
