//! The audit digest (`audit-digest`): what oidc-auditor's scheduled audit found new and
//! resolved since its last run, bounded so the alert fits one SNS message whatever the
//! policies say (docs/contracts.md, "The audit digest").
//!
//! Role names, values and messages come from trust policies that name strangers'
//! repositories: every string is bounded here, and each renderer escapes it for its markup.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{change_summary, Alert, AlertKind, Severity};
use crate::audit::{self, AccountFinding, Digest};
use crate::text::{bound, quote};

/// Findings listed per list (new, resolved); the rest are counted in `truncated`.
pub const MAX_DIGEST_FINDINGS: usize = 25;
/// Accounts named in a digest (audited, or not read).
pub const MAX_DIGEST_ACCOUNTS: usize = 100;
const MAX_MESSAGE_CHARS: usize = 1000;
const MAX_VALUE_CHARS: usize = 512;
const MAX_NAME_CHARS: usize = 256;
const MAX_ERROR_CHARS: usize = 500;
/// Values of a suggested change kept (each bounded like a value).
const MAX_CHANGE_VALUES: usize = 10;
/// Findings the one-paragraph description (Amazon Q, email) names.
const DESCRIBED_FINDINGS: usize = 5;

/// The `digest` member of an audit-digest alert.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditDigest {
    /// The accounts the audit read.
    pub accounts: Vec<String>,
    /// New findings, highest severity first, at most [`MAX_DIGEST_FINDINGS`].
    pub new: Vec<AccountFinding>,
    /// Findings the previous audit had and this one has not, at most [`MAX_DIGEST_FINDINGS`].
    pub resolved: Vec<AccountFinding>,
    /// Findings both audits have.
    pub unchanged: usize,
    /// Findings counted but not listed.
    #[serde(default)]
    pub truncated: Truncated,
    /// Accounts that could not be read: their previous findings stand.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unread: Vec<UnreadAccount>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncated {
    pub new: usize,
    pub resolved: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadAccount {
    pub account: String,
    pub error: String,
}

/// Findings of one severity about one role (or one provider) of one account.
#[derive(Debug, Clone, PartialEq)]
pub struct FindingGroup<'a> {
    pub severity: audit::Severity,
    pub account: &'a str,
    pub role: Option<&'a str>,
    /// The provider, for a group of provider findings (no role).
    pub provider: Option<&'a str>,
    pub findings: Vec<&'a AccountFinding>,
}

/// `findings` grouped by severity (highest first), account and role, in that order.
pub fn groups(findings: &[AccountFinding]) -> Vec<FindingGroup<'_>> {
    let mut sorted: Vec<&AccountFinding> = findings.iter().collect();
    sorted.sort_by(|a, b| {
        (a.severity, &a.account, &a.role, &a.provider, a.statement).cmp(&(
            b.severity,
            &b.account,
            &b.role,
            &b.provider,
            b.statement,
        ))
    });
    let mut out: Vec<FindingGroup<'_>> = Vec::new();
    for finding in sorted {
        let provider = finding
            .role
            .is_none()
            .then_some(finding.provider.as_deref())
            .flatten();
        match out.last_mut() {
            Some(g)
                if g.severity == finding.severity
                    && g.account == finding.account
                    && g.role == finding.role.as_deref()
                    && g.provider == provider =>
            {
                g.findings.push(finding)
            }
            _ => out.push(FindingGroup {
                severity: finding.severity,
                account: &finding.account,
                role: finding.role.as_deref(),
                provider,
                findings: vec![finding],
            }),
        }
    }
    out
}

impl FindingGroup<'_> {
    /// `account 111122223333, role "x"` (or `provider "…"`), for plain text.
    pub fn subject(&self) -> String {
        let what = match (self.role, self.provider) {
            (Some(role), _) => format!(", role {}", quote(role)),
            (None, Some(provider)) => format!(", provider {}", quote(provider)),
            _ => String::new(),
        };
        format!("account {}{what}", quote(self.account))
    }
}

/// One finding's line: `statement 0 · OwnerWildcard`.
pub fn finding_label(finding: &AccountFinding) -> String {
    match finding.statement {
        Some(statement) => format!("statement {statement} · {}", finding.code.as_str()),
        None => finding.code.as_str().to_owned(),
    }
}

pub fn alert_severity(severity: audit::Severity) -> Severity {
    match severity {
        audit::Severity::High => Severity::High,
        audit::Severity::Medium => Severity::Medium,
        audit::Severity::Low => Severity::Low,
    }
}

fn bounded_finding(finding: &AccountFinding) -> AccountFinding {
    let name = |v: &Option<String>| v.as_deref().map(|v| bound(v, MAX_NAME_CHARS));
    AccountFinding {
        account: bound(&finding.account, MAX_NAME_CHARS),
        role: name(&finding.role),
        provider: name(&finding.provider),
        statement: finding.statement,
        code: finding.code,
        severity: finding.severity,
        value: finding.value.as_deref().map(|v| bound(v, MAX_VALUE_CHARS)),
        message: bound(&finding.message, MAX_MESSAGE_CHARS),
        // The policy after the change can be kilobytes: the digest says what to change,
        // the audit (`oidc-watch audit`) shows the whole policy.
        suggested_change: finding.suggested_change.as_ref().map(|c| {
            let values = |v: &[String]| {
                v.iter()
                    .take(MAX_CHANGE_VALUES)
                    .map(|x| bound(x, MAX_VALUE_CHARS))
                    .collect()
            };
            crate::suggest::SuggestedChange {
                statement: c.statement,
                operator: c.operator.as_deref().map(|o| bound(o, MAX_NAME_CHARS)),
                key: bound(&c.key, MAX_NAME_CHARS),
                add: values(&c.add),
                remove: values(&c.remove),
                policy: Value::Null,
            }
        }),
    }
}

fn bounded_list(findings: &[AccountFinding]) -> (Vec<AccountFinding>, usize) {
    let mut sorted: Vec<&AccountFinding> = findings.iter().collect();
    sorted.sort_by(|a, b| (a.severity, &a.account, &a.role).cmp(&(b.severity, &b.account, &b.role)));
    let listed = sorted
        .iter()
        .take(MAX_DIGEST_FINDINGS)
        .map(|f| bounded_finding(f))
        .collect();
    (listed, findings.len().saturating_sub(MAX_DIGEST_FINDINGS))
}

impl AuditDigest {
    /// The digest of `digest` over `accounts`, bounded.
    pub fn of(accounts: &[String], digest: &Digest, unread: &[UnreadAccount]) -> AuditDigest {
        let (new, new_left) = bounded_list(&digest.new);
        let (resolved, resolved_left) = bounded_list(&digest.resolved);
        AuditDigest {
            accounts: accounts
                .iter()
                .take(MAX_DIGEST_ACCOUNTS)
                .map(|a| bound(a, MAX_NAME_CHARS))
                .collect(),
            new,
            resolved,
            unchanged: digest.unchanged,
            truncated: Truncated {
                new: new_left,
                resolved: resolved_left,
            },
            unread: unread
                .iter()
                .take(MAX_DIGEST_ACCOUNTS)
                .map(|u| UnreadAccount {
                    account: bound(&u.account, MAX_NAME_CHARS),
                    error: bound(&u.error, MAX_ERROR_CHARS),
                })
                .collect(),
        }
    }

    pub fn new_count(&self) -> usize {
        self.new.len() + self.truncated.new
    }

    pub fn resolved_count(&self) -> usize {
        self.resolved.len() + self.truncated.resolved
    }

    /// The highest severity of a new finding; `info` when findings were only resolved.
    pub fn severity(&self) -> Severity {
        self.new
            .iter()
            .map(|f| f.severity)
            .min()
            .map_or(Severity::Info, alert_severity)
    }

    /// `account 111122223333` or `3 accounts`.
    pub fn accounts_words(&self) -> String {
        match self.accounts.as_slice() {
            [one] => format!("account {one}"),
            many => format!("{} accounts", many.len()),
        }
    }

    /// Reads the `digest` member; findings of a kind this release does not know are left
    /// out (and counted as not listed).
    pub fn from_json(text: &str) -> Result<AuditDigest, serde_json::Error> {
        let mut value: Value = serde_json::from_str(text)?;
        let mut left_out = Truncated::default();
        for (key, count) in [("new", &mut left_out.new), ("resolved", &mut left_out.resolved)] {
            if let Some(Value::Array(items)) = value.get_mut(key) {
                let before = items.len();
                items.retain(|item| serde_json::from_value::<AccountFinding>(item.clone()).is_ok());
                *count = before - items.len();
            }
        }
        let mut digest: AuditDigest = serde_json::from_value(value)?;
        digest.truncated.new += left_out.new;
        digest.truncated.resolved += left_out.resolved;
        Ok(digest)
    }
}

/// The audit-digest alert of one run: its thread (and id) is a hash of what is new and
/// resolved, so a retried run publishes the same alert.
pub fn digest_alert(
    account_id: &str,
    accounts: &[String],
    digest: &Digest,
    unread: &[UnreadAccount],
) -> Alert {
    use sha2::{Digest as _, Sha256};
    let mut hasher = Sha256::new();
    for (tag, list) in [("new", &digest.new), ("resolved", &digest.resolved)] {
        let mut keys: Vec<String> = list.iter().map(AccountFinding::key).collect();
        keys.sort();
        for key in [tag.to_owned()].iter().chain(&keys) {
            hasher.update((key.len() as u64).to_be_bytes());
            hasher.update(key.as_bytes());
        }
    }
    let hash: String = hasher
        .finalize()
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect();
    let summary = AuditDigest::of(accounts, digest, unread);
    Alert {
        kind: AlertKind::AuditDigest,
        severity: summary.severity(),
        thread_id: format!("audit-digest-{hash}"),
        account_id: account_id.to_owned(),
        cause: None,
        attempts: 1,
        diagnosis: None,
        spike: None,
        notes: Vec::new(),
        changes: Vec::new(),
        digest: Some(summary),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub(super) fn title(d: &AuditDigest) -> String {
    let new = d.new_count();
    let resolved = d.resolved_count();
    let in_accounts = d.accounts_words();
    match (new, resolved) {
        (0, r) => format!(
            "Trust-policy audit: {} resolved in {in_accounts}",
            plural(r, "finding", "findings")
        ),
        (n, 0) => format!(
            "Trust-policy audit: {} ({} the highest) in {in_accounts}",
            plural(n, "new finding", "new findings"),
            d.severity().as_str()
        ),
        (n, r) => format!(
            "Trust-policy audit: {} ({} the highest), {r} resolved in {in_accounts}",
            plural(n, "new finding", "new findings"),
            d.severity().as_str()
        ),
    }
}

fn sentence(f: &AccountFinding) -> String {
    let target = match (&f.role, &f.provider) {
        (Some(role), _) => format!("role {}", quote(role)),
        (None, Some(provider)) => format!("provider {}", quote(provider)),
        _ => "the account".to_owned(),
    };
    format!(
        "[{}] {} {target} {}: {}",
        f.severity.as_str(),
        quote(&f.account),
        finding_label(f),
        f.message
    )
}

pub(super) fn describe(d: &AuditDigest) -> String {
    let mut parts = Vec::new();
    if d.new_count() > 0 {
        let listed: Vec<String> = d.new.iter().take(DESCRIBED_FINDINGS).map(sentence).collect();
        let more = d.new_count() - listed.len();
        let more = if more > 0 {
            format!(" … and {more} more")
        } else {
            String::new()
        };
        parts.push(format!("New: {}{more}", listed.join(" ")));
    }
    if d.resolved_count() > 0 {
        let listed: Vec<String> = d
            .resolved
            .iter()
            .take(DESCRIBED_FINDINGS)
            .map(|f| {
                format!(
                    "{} {}",
                    quote(f.role.as_deref().or(f.provider.as_deref()).unwrap_or("-")),
                    f.code.as_str()
                )
            })
            .collect();
        let more = d.resolved_count() - listed.len();
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        parts.push(format!("Resolved: {}{more}.", listed.join(", ")));
    }
    parts.push(format!(
        "{} unchanged.",
        plural(d.unchanged, "finding", "findings")
    ));
    for u in &d.unread {
        parts.push(format!(
            "Account {} was not read ({}); its findings stand.",
            quote(&u.account),
            u.error
        ));
    }
    parts.join(" ")
}

/// The suggested changes of new findings, for `nextSteps`.
pub(super) fn next_steps(d: &AuditDigest) -> Vec<String> {
    d.new
        .iter()
        .filter_map(|f| {
            let change = f.suggested_change.as_ref()?;
            let role = f.role.as_deref().map_or("-".to_owned(), quote);
            Some(format!("Role {role}: {}.", change_summary(change)))
        })
        .take(DESCRIBED_FINDINGS)
        .collect()
}

/// The email body: every listed finding, grouped by severity, account and role.
pub(super) fn plain_text(alert: &Alert, d: &AuditDigest) -> String {
    use crate::text::escape_controls;
    let mut text = format!(
        "[{}] {}\n\n",
        alert.severity.as_str().to_uppercase(),
        escape_controls(&title(d))
    );
    text.push_str(&format!(
        "Audited: {}\n",
        d.accounts
            .iter()
            .map(|a| escape_controls(a).into_owned())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let mut list = |heading: &str, findings: &[AccountFinding], total: usize, left: usize| {
        if total == 0 {
            return;
        }
        text.push_str(&format!("\n{heading} ({total}):\n"));
        let mut severity = None;
        for group in groups(findings) {
            if severity != Some(group.severity) {
                severity = Some(group.severity);
                text.push_str(&format!("\n{}\n", group.severity.as_str().to_uppercase()));
            }
            text.push_str(&format!("  {}\n", escape_controls(&group.subject())));
            for f in &group.findings {
                text.push_str(&format!(
                    "    - {}: {}\n",
                    finding_label(f),
                    escape_controls(&f.message)
                ));
                if let Some(change) = &f.suggested_change {
                    text.push_str(&format!(
                        "      Suggested change (verified): {}\n",
                        escape_controls(&change_summary(change))
                    ));
                }
            }
        }
        if left > 0 {
            text.push_str(&format!(
                "\n{} not listed.\n",
                plural(left, "more finding is", "more findings are")
            ));
        }
    };
    list("New findings", &d.new, d.new_count(), d.truncated.new);
    list(
        "Resolved findings",
        &d.resolved,
        d.resolved_count(),
        d.truncated.resolved,
    );
    text.push_str(&format!("\nUnchanged: {}\n", d.unchanged));
    for u in &d.unread {
        text.push_str(&format!(
            "Not read: account {} ({}); its previous findings stand.\n",
            escape_controls(&u.account),
            escape_controls(&u.error)
        ));
    }
    text.push_str(&format!("\nThread: {}\n", alert.thread_id));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{FindingCode, Severity as FindingSeverity};

    pub(crate) fn finding(
        account: &str,
        role: &str,
        code: FindingCode,
        severity: FindingSeverity,
    ) -> AccountFinding {
        AccountFinding {
            account: account.into(),
            role: Some(role.into()),
            provider: Some("token.actions.githubusercontent.com".into()),
            statement: Some(0),
            code,
            severity,
            value: None,
            message: format!("Statement 0 of {role}: {}", code.as_str()),
            suggested_change: None,
        }
    }

    fn sample() -> Digest {
        Digest {
            new: vec![
                finding(
                    "111122223333",
                    "web",
                    FindingCode::NameBasedSubject,
                    FindingSeverity::Low,
                ),
                finding(
                    "111122223333",
                    "deploy",
                    FindingCode::OwnerWildcard,
                    FindingSeverity::High,
                ),
            ],
            resolved: vec![finding(
                "444455556666",
                "old",
                FindingCode::NoSubjectCondition,
                FindingSeverity::High,
            )],
            unchanged: 4,
        }
    }

    #[test]
    fn the_digest_alert_reads_back_and_names_the_highest_new_finding() {
        let accounts = ["111122223333".to_owned(), "444455556666".to_owned()];
        let alert = digest_alert("111122223333", &accounts, &sample(), &[]);
        assert_eq!(alert.severity, Severity::High);
        let q = alert.to_q_notification();
        assert_eq!(
            q["content"]["title"],
            "Trust-policy audit: 2 new findings (high the highest), 1 resolved in 2 accounts"
        );
        let context = q["metadata"]["additionalContext"].as_object().unwrap();
        assert!(context.values().all(Value::is_string));
        let digest: Value = serde_json::from_str(context["digest"].as_str().unwrap()).unwrap();
        assert_eq!(digest["new"][0]["code"], "OwnerWildcard", "highest first");
        assert_eq!(digest["unchanged"], 4);
        assert_eq!(Alert::from_q_notification(&q), Ok(alert.clone()));
        assert_eq!(q["id"], format!("audit-digest:{}", alert.thread_id));
        // The same run again (a retry) is the same alert; another digest is another.
        assert_eq!(
            digest_alert("111122223333", &accounts, &sample(), &[]).thread_id,
            alert.thread_id
        );
        let mut other = sample();
        other.resolved.clear();
        assert_ne!(
            digest_alert("111122223333", &accounts, &other, &[]).thread_id,
            alert.thread_id
        );
    }

    #[test]
    fn resolved_only_is_info_and_the_email_groups_findings() {
        let mut d = sample();
        d.new.clear();
        let alert = digest_alert("111122223333", &["111122223333".into()], &d, &[]);
        assert_eq!(alert.severity, Severity::Info);
        assert_eq!(
            alert.title(),
            "Trust-policy audit: 1 finding resolved in account 111122223333"
        );
        let email = digest_alert("111122223333", &["111122223333".into()], &sample(), &[]).to_plain_text();
        let high = email.find("\nHIGH\n").unwrap();
        let low = email.find("\nLOW\n").unwrap();
        assert!(high < low, "{email}");
        assert!(email.contains("  account \"111122223333\", role \"deploy\"\n    - statement 0 · OwnerWildcard: Statement 0 of deploy"), "{email}");
        assert!(email.contains("Resolved findings (1):"), "{email}");
    }

    #[test]
    fn a_large_or_hostile_digest_is_bounded() {
        let mut d = Digest::default();
        for i in 0..200 {
            let mut f = finding(
                "111122223333",
                &format!("r{i}"),
                FindingCode::OwnerWildcard,
                FindingSeverity::High,
            );
            f.message = "x".repeat(100_000);
            f.value = Some("\u{202e}evil".repeat(1000));
            d.new.push(f);
        }
        let alert = digest_alert("111122223333", &["111122223333".into()], &d, &[]);
        let summary = alert.digest.as_ref().unwrap();
        assert_eq!(
            (summary.new.len(), summary.truncated.new, summary.new_count()),
            (MAX_DIGEST_FINDINGS, 175, 200)
        );
        let q = alert.to_q_notification().to_string();
        assert!(q.len() < 100_000, "{} bytes", q.len());
        assert!(!q.contains('\u{202e}'));
        assert!(alert.to_plain_text().contains("175 more findings are not listed"));
    }

    #[test]
    fn a_finding_of_a_newer_kind_is_left_out_and_counted() {
        let alert = digest_alert("111122223333", &["111122223333".into()], &sample(), &[]);
        let q = alert.to_q_notification();
        let text = q["metadata"]["additionalContext"]["digest"].as_str().unwrap();
        let newer = text.replacen("\"OwnerWildcard\"", "\"SomethingNew\"", 1);
        let read = AuditDigest::from_json(&newer).unwrap();
        assert_eq!((read.new.len(), read.truncated.new), (1, 1));
    }
}
