//! Alerts: what happened, how bad, and the diagnosis, as an Amazon Q Developer custom
//! notification (docs/contracts.md, "The alert message") with a plain-text body for email.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::diagnose::{Cause, Diagnosis};
use crate::suggest::SuggestedChange;
use crate::text::{escape_controls, quote, to_json};

mod digest;
pub use digest::{
    alert_severity, digest_alert, finding_label, groups, AuditDigest, FindingGroup, Truncated, UnreadAccount,
    MAX_DIGEST_ACCOUNTS, MAX_DIGEST_FINDINGS,
};

crate::names::named_enum! {
    /// How bad an alert is; a grade from a newer producer reads as `High`.
    #[derive(PartialOrd, Ord)]
    pub enum Severity {
        Critical = "critical",
        High = "high",
        Medium = "medium",
        Low = "low",
        Info = "info",
    }
    unknown => High
}

crate::names::named_enum! {
    /// An alert kind this notifier does not know is refused: it cannot say what it means.
    pub enum AlertKind {
        /// The first failure of an incident in one of our own repositories.
        Incident = "incident",
        /// A failure from an owner outside `ALLOWED_OWNERS`.
        Probe = "probe",
        /// A success from an owner outside `ALLOWED_OWNERS`: someone else got in.
        ForeignSuccess = "foreign-success",
        Spike = "spike",
        Recovery = "recovery",
        /// An IAM change that widened a role's trust (`changes` holds it, with the diff).
        TrustChange = "trust-change",
        /// What oidc-auditor's scheduled audit found new or resolved (`digest` holds it).
        AuditDigest = "audit-digest",
    }
}

/// A spike or its recovery, for one scope (all roles, or one role).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpikeSummary {
    pub scope: String,
    pub window_seconds: i64,
    pub failures: u64,
    pub baseline: f64,
    pub top_roles: Vec<(String, u64)>,
    pub top_causes: Vec<(String, u64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    /// Stable per incident or spike: the thread every later message joins.
    pub thread_id: String,
    pub account_id: String,
    pub cause: Option<Cause>,
    pub attempts: u64,
    pub diagnosis: Option<Diagnosis>,
    pub spike: Option<SpikeSummary>,
    /// Sentences about the alert path itself (rate limits), shown after the description.
    pub notes: Vec<String>,
    /// IAM changes of the role or provider shortly before (incident, spike, recovery), or
    /// the widening change itself (trust-change).
    pub changes: Vec<crate::change::ChangeNote>,
    /// The audit digest (audit-digest only).
    pub digest: Option<AuditDigest>,
}

/// SNS message attributes, for subscription filter policies.
pub fn message_attributes(alert: &Alert) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("severity", alert.severity.as_str().to_owned()),
        ("cause", alert.cause.map_or("None", Cause::as_str).to_owned()),
        ("account", alert.account_id.clone()),
        ("kind", alert.kind.as_str().to_owned()),
    ])
}

fn title(alert: &Alert) -> String {
    let role = alert
        .diagnosis
        .as_ref()
        .and_then(|d| d.role_name.as_deref())
        .map_or(String::new(), |r| format!(" on {}", quote(r)));
    match (alert.kind, &alert.spike) {
        (AlertKind::Spike, Some(s)) => format!(
            "Spike of AssumeRoleWithWebIdentity failures: {} in {} s{}",
            s.failures,
            s.window_seconds,
            dominant_role(s).map_or(String::new(), |(role, n)| format!(
                ", {n} of them on role {}",
                quote(role)
            ))
        ),
        (AlertKind::Recovery, Some(_)) => {
            "Recovered: AssumeRoleWithWebIdentity failures back to normal".to_owned()
        }
        (AlertKind::ForeignSuccess, _) => format!("SECURITY: an outside identity assumed a role{role}"),
        (AlertKind::TrustChange, _) => trust_change_title(alert),
        (AlertKind::AuditDigest, _) => alert
            .digest
            .as_ref()
            .map_or_else(|| "Trust-policy audit".to_owned(), digest::title),
        (AlertKind::Probe, _) => format!("Probe: an outside identity tried to assume a role{role}"),
        _ => format!(
            "{}{}{role}",
            alert
                .cause
                .map_or("AssumeRoleWithWebIdentity failed", Cause::as_str),
            alert
                .diagnosis
                .as_ref()
                .and_then(|d| d.subject_mismatch)
                .map_or(String::new(), |k| format!(" ({})", k.as_str())),
        ),
    }
}

/// The role that carries most (more than half) of a spike.
pub fn dominant_role(spike: &SpikeSummary) -> Option<(&str, u64)> {
    let (role, n) = spike.top_roles.first()?;
    (role != "-" && n * 2 > spike.failures).then_some((role.as_str(), *n))
}

fn description(alert: &Alert) -> String {
    let mut text = describe(alert);
    if alert.kind != AlertKind::TrustChange {
        for change in &alert.changes {
            text.push_str(" Change: ");
            text.push_str(&change.sentence);
            text.push('.');
        }
    }
    for note in &alert.notes {
        text.push(' ');
        text.push_str(note);
    }
    text
}

fn trust_change_title(alert: &Alert) -> String {
    match alert.changes.first() {
        Some(c) => {
            let target = match (&c.role, &c.provider) {
                (Some(role), _) => format!("role {}", quote(role)),
                (None, Some(provider)) => format!("provider {}", quote(provider)),
                _ => "IAM".to_owned(),
            };
            let by = c
                .actor
                .as_deref()
                .map_or(String::new(), |a| format!(" by {}", quote(a)));
            format!("Trust widened on {target}: {}{by}", c.action)
        }
        None => "Trust widened".to_owned(),
    }
}

/// The trust-change alert's body: what changed and why it widens trust.
fn describe_trust_change(alert: &Alert) -> String {
    alert
        .changes
        .iter()
        .map(|c| {
            let why = c.widening.join("; ");
            format!("The change {}. It widens trust: {why}.", c.summary)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn describe(alert: &Alert) -> String {
    if alert.kind == AlertKind::TrustChange {
        return describe_trust_change(alert);
    }
    if let Some(d) = &alert.digest {
        return digest::describe(d);
    }
    if let Some(spike) = &alert.spike {
        let top = |items: &[(String, u64)]| {
            items
                .iter()
                .take(5)
                .map(|(name, n)| format!("{} ({n})", quote(name)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return format!(
            "{} failures in the last {} s against a baseline of {:.1} per window. Top roles: {}. Top causes: {}.",
            spike.failures,
            spike.window_seconds,
            spike.baseline,
            top(&spike.top_roles),
            top(&spike.top_causes)
        );
    }
    let Some(d) = &alert.diagnosis else {
        return String::new();
    };
    let subject = d.subject.as_deref().map_or("-".to_owned(), quote);
    let attempts = if alert.attempts > 1 {
        format!(" ({} attempts)", alert.attempts)
    } else {
        String::new()
    };
    let change = d.suggested_change.as_ref().map_or(String::new(), |c| {
        format!(" Suggested change: {}.", change_summary(c))
    });
    format!("Subject {subject}{attempts}. {}{change}", d.explanation)
}

impl Alert {
    /// The alert's identity: the same for every publish of one alert (a retry after a
    /// lost answer from SNS), different for each alert of a thread. Receivers deduplicate
    /// by it.
    pub fn alert_id(&self) -> String {
        match self.kind {
            // One alert per incident, by construction.
            // One digest per thread: the thread is a hash of the digest's content.
            AlertKind::Incident
            | AlertKind::Probe
            | AlertKind::ForeignSuccess
            | AlertKind::TrustChange
            | AlertKind::AuditDigest => {
                format!("{}:{}", self.kind.as_str(), self.thread_id)
            }
            // A spike thread may alert again after its cooldown: the count it was decided
            // on (kept with the pending alert, so a repeated publish has it too) tells
            // the alerts apart.
            AlertKind::Spike | AlertKind::Recovery => {
                format!("{}:{}:{}", self.kind.as_str(), self.thread_id, self.attempts)
            }
        }
    }

    /// The SNS message for Amazon Q Developer (and oidc-notifier, which reads
    /// `metadata.additionalContext.diagnosis`).
    pub fn to_q_notification(&self) -> Value {
        let mut context: BTreeMap<&str, String> = BTreeMap::new();
        context.insert("kind", self.kind.as_str().to_owned());
        context.insert("severity", self.severity.as_str().to_owned());
        context.insert("account", escape_controls(&self.account_id).into_owned());
        context.insert("attempts", self.attempts.to_string());
        if let Some(cause) = self.cause {
            context.insert("cause", cause.as_str().to_owned());
        }
        if let Some(d) = &self.diagnosis {
            let fields = [
                ("role_arn", d.role_arn.clone()),
                ("subject", d.subject.clone()),
                ("repository", d.claims.repository.clone()),
                ("region", d.region.clone()),
                ("event_id", d.event_id.clone()),
                ("run_id", d.github_run_id.clone()),
                (
                    "subject_mismatch",
                    d.subject_mismatch.map(|k| k.as_str().to_owned()),
                ),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    context.insert(key, escape_controls(&value).into_owned());
                }
            }
            if let Some(owner) = &d.owner {
                context.insert("owner", escape_controls(&owner.to_string()).into_owned());
            }
            context.insert("trust", d.trust.as_str().to_owned());
            if let Some(change) = &d.suggested_change {
                context.insert("suggested_change", to_json(change).unwrap_or_default());
            }
            context.insert("diagnosis", to_json(d).unwrap_or_default());
        }
        if let Some(spike) = &self.spike {
            context.insert("spike", to_json(spike).unwrap_or_default());
        }
        if !self.notes.is_empty() {
            context.insert("notes", to_json(&self.notes).unwrap_or_default());
        }
        if !self.changes.is_empty() {
            context.insert("changes", to_json(&self.changes).unwrap_or_default());
        }
        if let Some(d) = &self.digest {
            context.insert("digest", to_json(d).unwrap_or_default());
        }
        let mut next_steps: Vec<String> = self
            .diagnosis
            .iter()
            .flat_map(|d| {
                let change = d
                    .suggested_change
                    .as_ref()
                    .map(|c| format!("Verified trust-policy change: {}.", change_summary(c)));
                d.fix.clone().into_iter().chain(change)
            })
            .collect();
        if let Some(d) = &self.digest {
            next_steps.extend(digest::next_steps(d));
        }
        let mut keywords = vec![self.severity.as_str().to_owned(), self.kind.as_str().to_owned()];
        if let Some(cause) = self.cause {
            keywords.push(cause.as_str().to_owned());
        }
        json!({
            "version": "1.0",
            "source": "custom",
            "id": self.alert_id(),
            "content": {
                "textType": "client-markdown",
                "title": title(self),
                "description": description(self),
                "nextSteps": next_steps,
                "keywords": keywords,
            },
            "metadata": {
                "threadId": self.thread_id,
                "summary": title(self),
                "eventType": format!("oidc-watch.{}", self.kind.as_str()),
                "relatedResources": self
                    .diagnosis
                    .as_ref()
                    .and_then(|d| d.role_arn.as_deref())
                    .map(|arn| escape_controls(arn).into_owned())
                    .into_iter()
                    .collect::<Vec<_>>(),
                "additionalContext": context,
            }
        })
    }

    /// Reads back what [`Alert::to_q_notification`] wrote: `from_q_notification(&a.
    /// to_q_notification()) == a`. Tolerant of a producer one release behind or ahead:
    /// unknown members are ignored, missing ones take their defaults, a cause or severity
    /// it does not know reads as `Unknown` or `High`, and a malformed optional member
    /// (an owner, a suggested change) is left out. An unknown kind, or a diagnosis or
    /// spike that is not JSON, is refused: there is nothing right to render then.
    pub fn from_q_notification(value: &Value) -> Result<Alert, AlertReadError> {
        if !is_q_notification(value) {
            return Err(AlertReadError::NotAnAlert);
        }
        let malformed = |message: String| AlertReadError::Malformed(message);
        let context = &value["metadata"]["additionalContext"];
        let get = |key: &str| context[key].as_str().filter(|v| !v.is_empty());
        let kind_name = get("kind").unwrap_or_default();
        let kind = AlertKind::from_name(kind_name)
            .ok_or_else(|| malformed(format!("unknown kind {:?}", crate::text::bound(kind_name, 64))))?;
        let diagnosis = match get("diagnosis") {
            Some(text) => {
                let mut members: Value =
                    serde_json::from_str(text).map_err(|e| malformed(format!("diagnosis: {e}")))?;
                // The same facts as top-level context members, for a diagnosis without them.
                for key in ["owner", "trust", "suggested_change"] {
                    if let (Some(object), Some(text)) = (members.as_object_mut(), get(key)) {
                        if !object.contains_key(key) {
                            let member = match key {
                                "suggested_change" => serde_json::from_str(text).unwrap_or(Value::Null),
                                _ => Value::String(text.to_owned()),
                            };
                            object.insert(key.to_owned(), member);
                        }
                    }
                }
                Some(
                    serde_json::from_value::<Diagnosis>(members)
                        .map_err(|e| malformed(format!("diagnosis: {e}")))?,
                )
            }
            None => None,
        };
        let spike = match get("spike") {
            Some(text) => Some(
                serde_json::from_str::<SpikeSummary>(text).map_err(|e| malformed(format!("spike: {e}")))?,
            ),
            None => None,
        };
        let notes = get("notes")
            .and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|note| note.as_str().map(str::to_owned))
            .filter(|note| !note.trim().is_empty())
            .collect();
        // A change note that does not read is left out, like a malformed note.
        let changes = get("changes")
            .and_then(|text| serde_json::from_str::<Vec<Value>>(text).ok())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|change| serde_json::from_value(change).ok())
            .collect();
        let digest = match get("digest") {
            Some(text) => Some(AuditDigest::from_json(text).map_err(|e| malformed(format!("digest: {e}")))?),
            None if kind == AlertKind::AuditDigest => {
                return Err(malformed("audit-digest without a digest".to_owned()))
            }
            None => None,
        };
        let thread_id = value["metadata"]["threadId"]
            .as_str()
            .or_else(|| value["id"].as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| malformed("no threadId".to_owned()))?
            .to_owned();
        Ok(Alert {
            kind,
            severity: get("severity").map_or(Severity::High, |s| {
                Severity::from_name(s).unwrap_or(Severity::High)
            }),
            thread_id,
            account_id: get("account").unwrap_or("-").to_owned(),
            cause: get("cause")
                .map(|c| Cause::from_name(c).unwrap_or(Cause::Unknown))
                .or_else(|| diagnosis.as_ref().map(|d| d.cause)),
            attempts: get("attempts").and_then(|a| a.parse().ok()).unwrap_or(1),
            diagnosis,
            spike,
            notes,
            changes,
            digest,
        })
    }

    /// The alert's one-line title, as Amazon Q shows it.
    pub fn title(&self) -> String {
        title(self)
    }

    /// The owner probe alerts are rate-limited by: the token's owner (`provider:name`,
    /// lowercased), or `no-owner` when it names none. The monitor and the notifier key
    /// their probe tokens by it.
    pub fn probe_owner(&self) -> String {
        self.diagnosis
            .as_ref()
            .map_or_else(|| "no-owner".to_owned(), probe_owner)
    }

    /// The body email subscribers get.
    pub fn to_plain_text(&self) -> String {
        if let Some(d) = &self.digest {
            return digest::plain_text(self, d);
        }
        let mut text = format!(
            "[{}] {}\n\n{}\n",
            self.severity.as_str().to_uppercase(),
            title(self),
            description(self)
        );
        if let Some(d) = &self.diagnosis {
            let line = |label: &str, value: Option<&str>| {
                value.map_or(String::new(), |v| {
                    format!("{label:<10} {}\n", crate::text::escape_controls(v))
                })
            };
            text.push('\n');
            text.push_str(&line("Account:", Some(&self.account_id)));
            text.push_str(&line("Region:", d.region.as_deref()));
            text.push_str(&line("Role:", d.role_arn.as_deref()));
            text.push_str(&line("Subject:", d.subject.as_deref()));
            text.push_str(&line("Run:", d.github_run_id.as_deref()));
            text.push_str(&line(
                "Owner:",
                d.owner.as_ref().map(ToString::to_string).as_deref(),
            ));
            text.push_str(&line("Trust:", Some(d.trust.as_str())));
            if let Some(fix) = &d.fix {
                text.push_str(&format!("\nFix: {fix}\n"));
            }
            if let Some(change) = &d.suggested_change {
                let policy = serde_json::to_string_pretty(&change.policy).unwrap_or_default();
                text.push_str(&format!(
                    "\nSuggested change ({}), verified: it admits this job and no other owner's. The trust policy after it:\n{}\n",
                    crate::text::escape_controls(&change_summary(change)),
                    crate::text::escape_controls(&policy)
                ));
            }
        }
        if self.kind == AlertKind::TrustChange {
            for change in &self.changes {
                for d in &change.diff {
                    let values = |v: &[String]| v.iter().map(|x| quote(x)).collect::<Vec<_>>().join(", ");
                    text.push_str(&format!(
                        "\nStatement {} {}: removed [{}], added [{}]",
                        d.statement,
                        escape_controls(&d.target),
                        values(&d.removed),
                        values(&d.added)
                    ));
                }
                text.push_str(&format!("\nEvent:     {}\n", escape_controls(&change.event_id)));
            }
        }
        text.push_str(&format!("\nThread: {}\n", self.thread_id));
        text
    }
}

/// An Amazon Q Developer custom notification carrying oidc-watch's context.
pub fn is_q_notification(value: &Value) -> bool {
    value["source"].as_str() == Some("custom") && value["metadata"]["additionalContext"].is_object()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertReadError {
    #[error("not an oidc-watch alert")]
    NotAnAlert,
    #[error("malformed oidc-watch alert: {0}")]
    Malformed(String),
}

/// See [`Alert::probe_owner`].
pub fn probe_owner(d: &Diagnosis) -> String {
    d.owner
        .as_ref()
        .map_or_else(|| "no-owner".to_owned(), |o| o.to_string().to_ascii_lowercase())
}

/// Stable per (account, role, subject, cause): the retries of one job share it. SHA-256
/// of the length-prefixed parts: the subject is a stranger's choice, so no collision may
/// be searched for that would mute someone else's alert.
pub fn incident_key(d: &Diagnosis) -> String {
    use sha2::{Digest, Sha256};
    let role = d.role_arn.as_deref().unwrap_or("").to_ascii_lowercase();
    let parts = [
        d.account_id.as_deref().unwrap_or(""),
        role.as_str(),
        d.subject.as_deref().unwrap_or(""),
        d.cause.as_str(),
    ];
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The suggested change in one line, for people.
pub fn change_summary(change: &SuggestedChange) -> String {
    let values = |items: &[String]| items.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ");
    let target = match &change.operator {
        Some(operator) => format!("{operator} {}", change.key),
        None => change.key.clone(),
    };
    match (change.add.is_empty(), change.remove.is_empty()) {
        (false, true) => format!(
            "statement {}: add {} to {target}",
            change.statement,
            values(&change.add)
        ),
        (true, false) => format!(
            "statement {}: remove {} from {}",
            change.statement,
            values(&change.remove),
            change.key
        ),
        _ => format!(
            "statement {}: replace {} with {} in {target}",
            change.statement,
            values(&change.remove),
            values(&change.add)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Confidence;
    use crate::owner::Trust;
    use crate::{diagnose, read_input, InputItem, SubjectMismatch};

    fn sample(path: &str) -> Diagnosis {
        let bytes = std::fs::read(format!("{}/../../events/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let Ok(InputItem::Event(event)) = &read_input(&bytes)[0] else {
            panic!()
        };
        diagnose(event, None)
    }

    #[test]
    fn q_notification_has_the_documented_shape_and_string_context() {
        let d = sample("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
        let alert = Alert {
            kind: AlertKind::Incident,
            severity: Severity::High,
            thread_id: "inc-1".into(),
            account_id: "111122223333".into(),
            cause: Some(d.cause),
            attempts: 12,
            diagnosis: Some(d),
            spike: None,
            notes: Vec::new(),
            changes: Vec::new(),
            digest: None,
        };
        let q = alert.to_q_notification();
        assert_eq!(
            (q["version"].as_str(), q["source"].as_str()),
            (Some("1.0"), Some("custom"))
        );
        assert_eq!(q["metadata"]["threadId"], "inc-1");
        let context = q["metadata"]["additionalContext"].as_object().unwrap();
        assert!(
            context.values().all(Value::is_string),
            "Amazon Q wants a string map"
        );
        let diagnosis: Value = serde_json::from_str(context["diagnosis"].as_str().unwrap()).unwrap();
        assert_eq!(diagnosis["cause"], "SubjectMismatch");
        assert!(q["content"]["description"]
            .as_str()
            .unwrap()
            .contains("12 attempts"));
        assert_eq!(message_attributes(&alert)["severity"], "high");
        assert!(alert
            .to_plain_text()
            .starts_with("[HIGH] SubjectMismatch (Branch)"));
    }

    #[test]
    fn incident_keys_are_sha256_and_ignore_role_case() {
        let d = sample("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
        let key = incident_key(&d);
        assert_eq!(key.len(), 64);
        let mut upper = d.clone();
        upper.role_arn = d
            .role_arn
            .as_ref()
            .map(|a| a.to_uppercase().replace("ARN:AWS:IAM", "arn:aws:iam"));
        assert_eq!(incident_key(&upper), key);
        let mut other = d.clone();
        other.subject = Some(format!("{}x", d.subject.clone().unwrap_or_default()));
        assert_ne!(incident_key(&other), key);
    }

    fn alerts_of_every_sample() -> Vec<Alert> {
        let accounts = crate::testing::sample_accounts();
        let mut alerts = Vec::new();
        for path in crate::testing::scenario_files() {
            for item in read_input(&std::fs::read(&path).unwrap()) {
                let Ok(InputItem::Event(event)) = item else {
                    continue;
                };
                let d = diagnose(&event, crate::testing::snapshot_for(&accounts, &event));
                alerts.push(Alert {
                    kind: if d.cause == Cause::None {
                        AlertKind::ForeignSuccess
                    } else {
                        AlertKind::Incident
                    },
                    severity: Severity::High,
                    thread_id: incident_key(&d),
                    account_id: d.account_id.clone().unwrap_or_default(),
                    cause: Some(d.cause),
                    attempts: 3,
                    diagnosis: Some(d),
                    spike: None,
                    notes: vec!["Alert rate limit reached.".to_owned()],
                    changes: Vec::new(),
                    digest: None,
                });
            }
        }
        alerts
    }

    #[test]
    fn every_sample_alert_reads_back_as_itself() {
        let alerts = alerts_of_every_sample();
        assert!(alerts.len() >= 30, "{} alerts", alerts.len());
        assert!(alerts
            .iter()
            .any(|a| a.diagnosis.as_ref().is_some_and(|d| d.suggested_change.is_some())));
        for alert in alerts {
            let read = Alert::from_q_notification(&alert.to_q_notification());
            assert_eq!(
                read.as_ref(),
                Ok(&alert),
                "{:?}",
                alert.diagnosis.as_ref().map(|d| &d.event_id)
            );
            let d = alert.diagnosis.as_ref().unwrap();
            let json = serde_json::to_string(d).unwrap();
            assert_eq!(&serde_json::from_str::<Diagnosis>(&json).unwrap(), d);
        }
        let spike = Alert {
            kind: AlertKind::Spike,
            severity: Severity::Medium,
            thread_id: "spike-1".into(),
            account_id: "111122223333".into(),
            cause: None,
            attempts: 40,
            diagnosis: None,
            spike: Some(SpikeSummary {
                scope: "all".into(),
                window_seconds: 300,
                failures: 40,
                baseline: 1.5,
                top_roles: vec![("gha-deploy".into(), 30)],
                top_causes: vec![("SubjectMismatch".into(), 40)],
            }),
            notes: Vec::new(),
            changes: Vec::new(),
            digest: None,
        };
        assert_eq!(Alert::from_q_notification(&spike.to_q_notification()), Ok(spike));
    }

    fn widening_change() -> crate::change::ChangeNote {
        crate::change::ChangeNote {
            event_id: "e-1".into(),
            action: crate::change::ChangeAction::UpdateAssumeRolePolicy,
            at: 1_790_000_000,
            actor: Some("arn:aws:sts::111122223333:assumed-role/admin/alice".into()),
            role: Some("gha-deploy".into()),
            provider: None,
            summary: "added \"repo:*/web:*\" to statement 0 (StringLike k)".into(),
            diff: vec![crate::change::ValueChange {
                statement: 0,
                target: "StringLike k".into(),
                added: vec!["repo:*/web:*".into()],
                removed: Vec::new(),
            }],
            widening: vec!["OwnerWildcard: statement 0 matches any owner".into()],
            sentence: "began 3 min after UpdateAssumeRolePolicy".into(),
        }
    }

    #[test]
    fn a_trust_change_alert_says_what_widened_and_reads_back() {
        let alert = Alert {
            kind: AlertKind::TrustChange,
            severity: Severity::High,
            thread_id: "trust-change-e-1".into(),
            account_id: "111122223333".into(),
            cause: None,
            attempts: 1,
            diagnosis: None,
            spike: None,
            notes: Vec::new(),
            changes: vec![widening_change()],
            digest: None,
        };
        let q = alert.to_q_notification();
        assert_eq!(
            q["content"]["title"],
            "Trust widened on role \"gha-deploy\": UpdateAssumeRolePolicy by \"arn:aws:sts::111122223333:assumed-role/admin/alice\""
        );
        let description = q["content"]["description"].as_str().unwrap();
        assert!(
            description.contains("OwnerWildcard") && description.contains("repo:*/web:*"),
            "{description}"
        );
        assert_eq!(q["id"], "trust-change:trust-change-e-1");
        assert_eq!(Alert::from_q_notification(&q), Ok(alert.clone()));
        assert!(alert
            .to_plain_text()
            .contains("Statement 0 StringLike k: removed [], added [\"repo:*/web:*\"]"));
        // An incident's note is said after its explanation.
        let mut incident = alerts_of_every_sample().remove(0);
        incident.changes = vec![widening_change()];
        let description = incident.to_q_notification()["content"]["description"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            description.contains("Change: began 3 min after UpdateAssumeRolePolicy."),
            "{description}"
        );
        assert_eq!(
            Alert::from_q_notification(&incident.to_q_notification()),
            Ok(incident)
        );
    }

    fn alert_with(diagnosis: &str, extra: &str) -> Result<Alert, AlertReadError> {
        let message = format!(
            r#"{{"version":"1.0","source":"custom","metadata":{{"threadId":"t","additionalContext":{{"kind":"incident","diagnosis":{}{extra}}}}}}}"#,
            serde_json::to_string(diagnosis).unwrap()
        );
        Alert::from_q_notification(&serde_json::from_str(&message).unwrap())
    }

    #[test]
    fn a_newer_or_older_producer_is_read_tolerantly() {
        let d = alert_with(
            r#"{"owner":"github:acme","trust":"ours","cause":"SomethingNew","confidence":"sure","subject_mismatch":"Novel",
                "claims":{"format":"github-v9","repository":"acme/web"},"evidence":"crystal-ball","new_member":[1],
                "findings":[{"code":"NoSubjectCondition","severity":"high","statement":0,"message":"m"},{"code":"NewCode"}],
                "suggested_change":{"statement":1,"operator":null,"key":"Action","add":["sts:TagSession"],"remove":[],"policy":{"Statement":[]}}}"#,
            r#","severity":"apocalyptic","cause":"AlsoNew""#,
        )
        .unwrap();
        assert_eq!((d.severity, d.cause), (Severity::High, Some(Cause::Unknown)));
        let d = d.diagnosis.unwrap();
        assert_eq!(d.owner.map(|o| o.to_string()).as_deref(), Some("github:acme"));
        assert_eq!(
            (d.trust, d.cause, d.confidence),
            (Trust::Ours, Cause::Unknown, Confidence::Unknown)
        );
        assert_eq!(d.subject_mismatch, Some(SubjectMismatch::Other));
        assert_eq!((d.claims.format, d.evidence), ("opaque", "event-only"));
        assert_eq!(d.claims.repository.as_deref(), Some("acme/web"));
        assert_eq!(d.findings.len(), 1, "the finding of a new kind is left out");
        let change = d.suggested_change.unwrap();
        assert_eq!(
            (change.statement, change.key.as_str(), change.operator),
            (1, "Action", None)
        );
        // Older producers, and malformed optional members: the alert still reads.
        let d = alert_with(r#"{"cause":"SubjectMismatch"}"#, "")
            .unwrap()
            .diagnosis
            .unwrap();
        assert_eq!(
            (d.owner, d.trust, d.suggested_change),
            (None, Trust::Unknown, None)
        );
        let d = alert_with(
            r#"{"suggested_change":{"statement":"x"},"owner":"not an owner*"}"#,
            "",
        )
        .unwrap()
        .diagnosis
        .unwrap();
        assert_eq!((d.suggested_change, d.owner), (None, None));
        // The context's members stand in for a diagnosis without them.
        let d = alert_with(
            "{}",
            r#","owner":"gitlab:g","trust":"foreign","suggested_change":"{\"statement\":0,\"key\":\"k\"}""#,
        )
        .unwrap()
        .diagnosis
        .unwrap();
        assert_eq!(d.owner.map(|o| o.to_string()).as_deref(), Some("gitlab:g"));
        assert_eq!(d.trust, Trust::Foreign);
        assert_eq!(d.suggested_change.map(|c| c.key), Some("k".to_owned()));
    }

    #[test]
    fn what_cannot_be_rendered_is_refused() {
        let read = |text: &str| Alert::from_q_notification(&serde_json::from_str(text).unwrap());
        assert_eq!(read(r#"{"a":1}"#), Err(AlertReadError::NotAnAlert));
        assert!(matches!(
            read(
                r#"{"version":"1.0","source":"custom","metadata":{"threadId":"t","additionalContext":{"kind":"nope"}}}"#
            ),
            Err(AlertReadError::Malformed(_))
        ));
        assert!(matches!(
            alert_with("not json", ""),
            Err(AlertReadError::Malformed(_))
        ));
        assert!(matches!(
            read(r#"{"version":"1.0","source":"custom","metadata":{"additionalContext":{"kind":"probe"}}}"#),
            Err(AlertReadError::Malformed(_))
        ));
    }
}
