//! Alerts: what happened, how bad, and the diagnosis, as an Amazon Q Developer custom
//! notification (DESIGN.md "Alert message") with a plain-text body for email.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::diagnose::{Cause, Diagnosis};
use crate::text::quote;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertKind {
    /// The first failure of an incident in one of our own repositories.
    Incident,
    /// A failure from an owner outside `ALLOWED_OWNERS`.
    Probe,
    /// A success from an owner outside `ALLOWED_OWNERS`: someone else got in.
    ForeignSuccess,
    Spike,
    Recovery,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Incident => "incident",
            AlertKind::Probe => "probe",
            AlertKind::ForeignSuccess => "foreign-success",
            AlertKind::Spike => "spike",
            AlertKind::Recovery => "recovery",
        }
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
            "Spike of AssumeRoleWithWebIdentity failures ({}): {} in {} s",
            s.scope, s.failures, s.window_seconds
        ),
        (AlertKind::Recovery, Some(s)) => format!(
            "Recovered: AssumeRoleWithWebIdentity failures ({}) back to normal",
            s.scope
        ),
        (AlertKind::ForeignSuccess, _) => format!("SECURITY: an outside identity assumed a role{role}"),
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

fn description(alert: &Alert) -> String {
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
    format!("Subject {subject}{attempts}. {}", d.explanation)
}

impl Alert {
    /// The SNS message for Amazon Q Developer (and oidc-notifier, which reads
    /// `metadata.additionalContext.diagnosis`).
    pub fn to_q_notification(&self) -> Value {
        let mut context: BTreeMap<&str, String> = BTreeMap::new();
        context.insert("kind", self.kind.as_str().to_owned());
        context.insert("severity", self.severity.as_str().to_owned());
        context.insert("account", self.account_id.clone());
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
                    context.insert(key, value);
                }
            }
            context.insert("diagnosis", serde_json::to_string(d).unwrap_or_default());
        }
        if let Some(spike) = &self.spike {
            context.insert("spike", serde_json::to_string(spike).unwrap_or_default());
        }
        let next_steps: Vec<String> = self
            .diagnosis
            .as_ref()
            .and_then(|d| d.fix.clone())
            .into_iter()
            .collect();
        let mut keywords = vec![self.severity.as_str().to_owned(), self.kind.as_str().to_owned()];
        if let Some(cause) = self.cause {
            keywords.push(cause.as_str().to_owned());
        }
        json!({
            "version": "1.0",
            "source": "custom",
            "id": self.thread_id,
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
                "relatedResources": self.diagnosis.as_ref().and_then(|d| d.role_arn.clone()).into_iter().collect::<Vec<_>>(),
                "additionalContext": context,
            }
        })
    }

    /// The body email subscribers get.
    pub fn to_plain_text(&self) -> String {
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
            if let Some(fix) = &d.fix {
                text.push_str(&format!("\nFix: {fix}\n"));
            }
        }
        text.push_str(&format!("\nThread: {}\n", self.thread_id));
        text
    }
}

/// Whose job this was, judged from the subject's owner against `ALLOWED_OWNERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triage {
    /// One of ours, or no owner to judge by (EKS, opaque subjects), or no allow-list.
    Ours,
    Foreign {
        owner: String,
    },
}

pub fn triage(diagnosis: &Diagnosis, allowed_owners: &[String]) -> Triage {
    if allowed_owners.is_empty() {
        return Triage::Ours;
    }
    match diagnosis.claims.owner.as_deref() {
        Some(owner) if !allowed_owners.iter().any(|a| a.eq_ignore_ascii_case(owner)) => Triage::Foreign {
            owner: owner.to_owned(),
        },
        _ => Triage::Ours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{diagnose, read_input, InputItem};

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
    fn owners_outside_the_allow_list_are_foreign() {
        let d = sample("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
        assert_eq!(triage(&d, &[]), Triage::Ours);
        assert_eq!(triage(&d, &["ACME".into()]), Triage::Ours);
        assert_eq!(
            triage(&d, &["other".into()]),
            Triage::Foreign { owner: "acme".into() }
        );
        let eks = sample("subject-mismatch/other/eks-service-account-name-differs.json");
        assert_eq!(triage(&eks, &["other".into()]), Triage::Ours);
    }
}
