//! From claims and the account's IAM state to a cause, the failing condition and the fix.
//!
//! - [`contract`]: the diagnosis JSON and the cause names;
//! - [`account`]: what the account says before any policy is read: the role, the
//!   provider, its audiences, the session duration;
//! - [`policy`]: the trust policy's judgement, statement by statement;
//! - [`error_codes`]: what STS's error code and message say on their own;
//! - [`event_only`]: the best guess when nothing but the event is known.

mod account;
mod contract;
mod error_codes;
mod event_only;
mod policy;

pub use contract::{Cause, Confidence, Diagnosis, FailedCondition, EVIDENCE};

use account::*;
use error_codes::*;
use event_only::*;
use policy::*;

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::claims::Claims;
use crate::mismatch::SubjectMismatch;
use crate::owner::{owner_of, owners_of_account, trust_of, Owner, OwnerScope, Owners, Trust};
use crate::record::WebIdentityEvent;
use crate::snapshot::{AccountSnapshot, Role};
use crate::suggest::{propose, Edit, Job, Refusal, SuggestedChange};
use crate::text::{finish_message, quote};

/// What classification decided, before it is dressed with the event's facts.
#[derive(Debug, Clone)]
struct Verdict {
    cause: Cause,
    subject_mismatch: Option<SubjectMismatch>,
    confidence: Confidence,
    explanation: String,
    fix: Option<String>,
    failed_conditions: Vec<FailedCondition>,
    /// The trust-policy edit the fix describes, verified before it is proposed.
    edit: Option<Edit>,
    /// Why no edit is proposed, when the cause lives in the trust policy.
    no_edit: Option<String>,
}

impl Verdict {
    fn new(
        cause: Cause,
        confidence: Confidence,
        explanation: String,
        fix: impl Into<Option<String>>,
    ) -> Self {
        Verdict {
            cause,
            subject_mismatch: None,
            confidence,
            explanation,
            fix: fix.into(),
            failed_conditions: Vec::new(),
            edit: None,
            no_edit: None,
        }
    }

    fn with_edit(mut self, edit: Edit) -> Self {
        self.edit = Some(edit);
        self
    }
}

/// Who is ours, for one diagnosis.
#[derive(Debug, Clone, Copy)]
pub struct Ownership<'a> {
    pub owners: &'a Owners,
    /// The owners the account's trust policies name, when the caller keeps them (the
    /// monitor across roles, the CLI per snapshot); else they come from the snapshot.
    pub trusted: Option<&'a BTreeSet<Owner>>,
}

static FROM_TRUST_POLICIES: Owners = Owners::FromTrustPolicies;

impl Default for Ownership<'_> {
    fn default() -> Self {
        Ownership {
            owners: &FROM_TRUST_POLICIES,
            trusted: None,
        }
    }
}

/// Diagnoses one event. `account` is the IAM state of the event's account, if known: a
/// snapshot of another account is ignored. Ours are the owners its trust policies name.
pub fn diagnose(event: &WebIdentityEvent, account: Option<&AccountSnapshot>) -> Diagnosis {
    diagnose_with(Claims::from_event(event), account, Ownership::default())
}

/// Diagnoses from claims the caller keeps using.
pub fn diagnose_claims(claims: &Claims, account: Option<&AccountSnapshot>) -> Diagnosis {
    diagnose_with(claims.clone(), account, Ownership::default())
}

/// Diagnoses with an explicit idea of who is ours.
pub fn diagnose_with(claims: Claims, account: Option<&AccountSnapshot>, ownership: Ownership) -> Diagnosis {
    let account = account.filter(|a| claims.account_id.as_deref() == Some(a.account_id.as_str()));
    let role = account.and_then(|a| a.role(claims.role_name.as_deref()?));
    let owner = owner_of(&claims);
    let trust = judge_trust(&claims, owner.as_ref(), account, ownership);
    let mut verdict = classify(&claims, account, role);
    let suggested_change = suggest(&claims, role, owner.as_ref(), trust, &mut verdict);
    let findings = role.map_or_else(|| Arc::from([]), |r| Arc::clone(&r.findings));
    let (provider, provider_arn) = match claims.provider {
        Some(p) => (Some(p.url), p.arn),
        None => (None, None),
    };
    Diagnosis {
        event_id: claims.event_id,
        event_time: claims.event_time,
        account_id: claims.account_id,
        region: claims.region,
        outcome: claims.outcome,
        error_code: claims.error_code,
        error_message: claims.error_message,
        role_arn: claims.role_arn,
        role_name: claims.role_name,
        provider,
        provider_arn,
        subject: claims.subject,
        audience: claims.audience,
        claims: claims.derived,
        owner,
        trust,
        cause: verdict.cause,
        subject_mismatch: verdict.subject_mismatch,
        confidence: verdict.confidence,
        explanation: finish_message(verdict.explanation),
        fix: verdict.fix.map(finish_message),
        suggested_change,
        failed_conditions: verdict.failed_conditions,
        findings,
        evidence: if account.is_some() {
            "account-snapshot"
        } else {
            "event-only"
        },
        session_name: claims.session_name,
        duration_seconds: claims.duration_seconds,
        session_tags: claims.session_tags,
        endpoint_type: claims.endpoint_type,
        source_ip: claims.source_ip,
        github_run_id: claims.github_run_id,
    }
}

fn judge_trust(
    claims: &Claims,
    owner: Option<&Owner>,
    account: Option<&AccountSnapshot>,
    ownership: Ownership,
) -> Trust {
    // An EKS cluster's issuer is ours once our account registered it.
    if let (Some(owner), Some(account), Some(provider)) = (owner, account, &claims.provider) {
        if owner.scope == OwnerScope::Eks && account.provider(&provider.url).is_some() {
            return Trust::Ours;
        }
    }
    let from_account;
    let trusted = match (ownership.trusted, account) {
        (Some(trusted), _) => Some(trusted),
        (None, Some(account)) => {
            from_account = owners_of_account(account);
            Some(&from_account)
        }
        (None, None) => None,
    };
    trust_of(owner, ownership.owners, trusted)
}

/// Verifies the verdict's edit; when it is refused, `fix` says why instead of advising
/// a change that would let in someone we cannot name.
fn suggest(
    claims: &Claims,
    role: Option<&Role>,
    owner: Option<&Owner>,
    trust: Trust,
    verdict: &mut Verdict,
) -> Option<SuggestedChange> {
    let refusal = match (&verdict.edit, role.map(|r| &r.trust_policy), &claims.provider) {
        (Some(edit), Some(Ok(policy)), Some(provider)) => {
            let job = Job {
                claims,
                provider,
                owner,
                trust,
            };
            match propose(edit, policy, &job) {
                Ok(change) => return Some(change),
                Err(refusal) => refusal,
            }
        }
        _ => {
            if let Some(why) = verdict.no_edit.take() {
                let fix = verdict.fix.take().unwrap_or_default();
                verdict.fix = Some(
                    format!("{fix} {}", Refusal::NotAnAddition { why }.explain(claims))
                        .trim()
                        .to_owned(),
                );
            }
            return None;
        }
    };
    let note = refusal.explain(claims);
    verdict.fix = Some(match refusal {
        // The prose fix still holds; no single verified edit does it all.
        Refusal::StillDenied | Refusal::NotAnAddition { .. } | Refusal::TooLarge | Refusal::Unlocatable => {
            format!("{} {note}", verdict.fix.take().unwrap_or_default())
                .trim()
                .to_owned()
        }
        // The prose fix would let in someone we cannot name: replace it.
        _ => note,
    });
    None
}

fn subject_text(claims: &Claims) -> String {
    claims.subject.as_deref().map_or("the caller".to_owned(), quote)
}

fn role_text(claims: &Claims) -> String {
    claims.role_arn.as_deref().map_or("the role".to_owned(), quote)
}

/// Levenshtein distance, for "did you mean" on role names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            current[j + 1] = (previous[j] + usize::from(ca != *cb))
                .min(previous[j + 1] + 1)
                .min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("gha-deploy-prdo", "gha-deploy-prod"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn cause_names_are_the_contract_and_read_back() {
        assert_eq!(Cause::ALL.len(), 17);
        assert_eq!(SubjectMismatch::ALL.len(), 11);
        for &cause in Cause::ALL {
            let name = serde_json::to_value(cause).unwrap();
            assert_eq!(name, cause.as_str());
            assert_eq!(serde_json::from_value::<Cause>(name).unwrap(), cause);
        }
        for &kind in SubjectMismatch::ALL {
            let name = serde_json::to_value(kind).unwrap();
            assert_eq!(name, kind.as_str());
            assert_eq!(serde_json::from_value::<SubjectMismatch>(name).unwrap(), kind);
        }
        // A name from a newer producer is its catch-all, not an error; a non-string is.
        assert_eq!(
            serde_json::from_str::<Cause>("\"SomethingNew\"").unwrap(),
            Cause::Unknown
        );
        assert_eq!(
            serde_json::from_str::<SubjectMismatch>("\"Nested\"").unwrap(),
            SubjectMismatch::Other
        );
        assert!(serde_json::from_str::<Cause>("3").is_err());
    }
}
