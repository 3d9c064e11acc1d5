//! Whether a role's trust policy lets a subject in: the claims a job's token would carry,
//! given to the diagnosis engine as a denied call, so that a denial comes with the same
//! cause, failing condition and verified `suggested_change` that `diagnose` gives.

use std::collections::HashMap;

use diagnosis::claims::{account_of_arn, role_name_of, Claims, Outcome, Provider};
use diagnosis::owner::Owners;
use diagnosis::subject::{ProviderKind, Subject};
use diagnosis::suggest::SuggestedChange;
use diagnosis::{diagnose_with, AccountSnapshot, Cause, Ownership};
use serde::Serialize;

pub const GITHUB_ISSUER: &str = "token.actions.githubusercontent.com";
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Allowed,
    Denied,
    /// The trust policy is known, but the subject, audience or a condition is not.
    Unknown,
    /// No trust policy to judge by (no `--account` snapshot of the role's account, or the
    /// role could not be resolved).
    NotChecked,
}

#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdict: Verdict,
    pub cause: Option<Cause>,
    pub explanation: Option<String>,
    pub fix: Option<String>,
    pub suggested_change: Option<SuggestedChange>,
}

impl Judgement {
    fn plain(verdict: Verdict, explanation: Option<String>) -> Judgement {
        Judgement {
            verdict,
            cause: None,
            explanation,
            fix: None,
            suggested_change: None,
        }
    }
}

/// The trust policies known, and who is ours.
pub struct Judge {
    pub accounts: HashMap<String, AccountSnapshot>,
    pub owners: Owners,
}

impl Judge {
    /// `subject` is `None` when it is not one literal (a glob or unknown); `audience`
    /// `None` when it is an unresolved expression.
    pub fn judge(&self, role_arn: Option<&str>, subject: Option<&str>, audience: Option<&str>) -> Judgement {
        let Some(role_arn) = role_arn else {
            return Judgement::plain(Verdict::NotChecked, None);
        };
        let (Some(account_id), Some(role_name)) = (account_of_arn(role_arn), role_name_of(role_arn)) else {
            return Judgement::plain(
                Verdict::NotChecked,
                Some("role-to-assume is not a role ARN".to_owned()),
            );
        };
        let Some(account) = self.accounts.get(&account_id) else {
            return Judgement::plain(Verdict::NotChecked, None);
        };
        if account.role(&role_name).is_none() && !account.is_role_absent(&role_name) {
            return Judgement::plain(
                Verdict::NotChecked,
                Some(format!(
                    "the snapshot of account {account_id} does not list the role and does not say its role list is complete"
                )),
            );
        }
        let Some(subject) = subject else {
            let why = "the subject is not one literal value (a glob or an unresolved expression), so no verdict is given";
            return Judgement::plain(Verdict::Unknown, Some(why.to_owned()));
        };
        let partition = role_arn
            .split(':')
            .nth(1)
            .filter(|p| !p.is_empty())
            .unwrap_or("aws");
        let provider = Provider::parse(&format!(
            "arn:{partition}:iam::{account_id}:oidc-provider/{GITHUB_ISSUER}"
        ));
        let parsed_subject = Subject::parse(ProviderKind::GitHub, subject);
        let claims = Claims {
            event_id: None,
            event_time: None,
            request_id: None,
            account_id: Some(account_id.clone()),
            region: None,
            outcome: Outcome::Failure,
            error_code: Some("AccessDenied".to_owned()),
            error_message: None,
            role_arn: Some(role_arn.to_owned()),
            role_name: Some(role_name),
            provider,
            subject: Some(subject.to_owned()),
            audience: audience.map(str::to_owned),
            derived: parsed_subject.derived(),
            parsed_subject,
            session_name: None,
            duration_seconds: None,
            session_tags: Default::default(),
            source_identity: None,
            source_ip: None,
            user_agent: None,
            endpoint_type: None,
            github_run_id: None,
            github_run_attempt: None,
        };
        let ownership = Ownership {
            owners: &self.owners,
            trusted: None,
        };
        let diagnosis = diagnose_with(claims, Some(account), ownership);
        let verdict = match diagnosis.cause {
            // The trust policy allows it: the engine can only blame something outside it.
            Cause::DeniedOutsideTrustPolicy | Cause::None => {
                return Judgement::plain(Verdict::Allowed, None);
            }
            Cause::UnverifiableCondition | Cause::Unknown => Verdict::Unknown,
            _ => Verdict::Denied,
        };
        Judgement {
            verdict,
            cause: Some(diagnosis.cause),
            explanation: Some(diagnosis.explanation),
            fix: diagnosis.fix,
            suggested_change: diagnosis.suggested_change,
        }
    }
}
