//! Each subject under the old and the new trust policy, with the diagnosis engine; the
//! shapes of a stranger's token the new policy lets in and the old did not; and what the
//! audit finds in the new policy that it did not find in the old.

use std::collections::{BTreeSet, HashSet};

use diagnosis::audit::{audit, Finding, FindingCode, Severity};
use diagnosis::claims::{Claims, Outcome};
use diagnosis::diagnose::FailedCondition;
use diagnosis::evaluate::{evaluate, Decision, Request, Tri, ASSUME_ROLE_WITH_WEB_IDENTITY, TAG_SESSION};
use diagnosis::keys::{request_context, KeyFilter};
use diagnosis::owner::{owners_named_by, stranger_subject, Owner, OwnerScope, Owners};
use diagnosis::policy::PolicyDocument;
use diagnosis::snapshot::{
    AccountSnapshot, CompleteMarkers, OidcProvider, RoleEntry, RolesMarker, SnapshotFile,
};
use diagnosis::subject::{GitHubFormat, ProviderKind, Subject};
use diagnosis::suggest::SuggestedChange;
use diagnosis::{diagnose_with, Cause, Confidence, Diagnosis, Ownership};
use serde::Serialize;

use super::subjects::{Observed, Origin};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Allowed,
    Denied,
    /// The policy's answer turns on a claim the evidence does not show.
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allowed => "allowed",
            Verdict::Denied => "denied",
            Verdict::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    /// Allowed before, denied after: the change breaks this subject.
    Breaks,
    /// Allowed before; after, it turns on a claim the evidence does not show.
    MayBreak,
    Unchanged,
    /// Denied (or unknown) before, allowed after.
    Fixes,
    /// Denied before and after (the policy changed since the call succeeded).
    StillDenied,
    /// Unknown before and after, or unknown before and denied after.
    Unclear,
}

/// One subject's verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct SubjectImpact {
    pub subject: String,
    pub audience: Option<String>,
    pub provider: Option<String>,
    pub origins: Vec<Origin>,
    pub calls: usize,
    pub last_seen: Option<String>,
    pub seen_in: Vec<String>,
    pub old: Verdict,
    pub new: Verdict,
    pub change: Change,
    /// Under the new policy, when it does not allow: the diagnosis engine's cause, the
    /// statement it judged nearest, its failing conditions, explanation and fix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_conditions: Vec<FailedCondition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    /// A verified change of the new policy that keeps this subject in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggested_change: Option<SuggestedChange>,
}

/// The kind of stranger's variant of an observed subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum VariantKind {
    /// The same repository and context under an owner nobody here controls.
    OtherOwner,
    /// The subject's context without any repository: any repository whose subject
    /// template is the context alone mints it.
    Ownerless,
    /// Another repository of the same owner.
    OtherRepository,
    OtherBranch,
    Tag,
    PullRequest,
    OtherEnvironment,
}

impl VariantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            VariantKind::OtherOwner => "other-owner",
            VariantKind::Ownerless => "ownerless",
            VariantKind::OtherRepository => "other-repository",
            VariantKind::OtherBranch => "other-branch",
            VariantKind::Tag => "tag",
            VariantKind::PullRequest => "pull-request",
            VariantKind::OtherEnvironment => "other-environment",
        }
    }

    /// Whoever mints it need not be one of your owners.
    pub fn is_stranger(self) -> bool {
        matches!(self, VariantKind::OtherOwner | VariantKind::Ownerless)
    }
}

/// A shape the new policy admits (or may admit) and the old did not.
#[derive(Debug, Clone, Serialize)]
pub struct Admitted {
    pub kind: VariantKind,
    pub subject: String,
    pub audience: Option<String>,
    /// The observed subject it was made from.
    pub from: String,
    /// The Allow statement of the new policy that admits it.
    pub statement: Option<usize>,
    /// False when the new policy admits it only if a claim the variant does not fix
    /// matches.
    pub certain: bool,
    /// Not one of your owners, or no owner at all.
    pub stranger: bool,
}

/// What the audit finds in the new policy and not in the old.
#[derive(Debug, Clone, Serialize)]
pub struct Widening {
    #[serde(flatten)]
    pub finding: Finding,
}

/// Where the role lives, for the diagnosis engine.
pub struct RoleContext<'a> {
    pub name: &'a str,
    pub arn: String,
    pub account_id: String,
    pub owners: &'a Owners,
}

pub struct Comparison {
    pub subjects: Vec<SubjectImpact>,
    pub admitted: Vec<Admitted>,
    pub widening: Vec<Widening>,
    /// Other new audit findings: what may break, rather than widen.
    pub findings: Vec<Finding>,
}

pub fn compare(
    old: &PolicyDocument,
    new: Option<&PolicyDocument>,
    observed: &[Observed],
    seeds: &[Observed],
    role: &RoleContext,
) -> Comparison {
    let trusted: BTreeSet<Owner> = owners_named_by(old);
    let subjects = observed
        .iter()
        .map(|o| judge_subject(old, new, o, role, &trusted))
        .collect();
    let (admitted, (widening, findings)) = match new {
        Some(new) => (newly_admitted(old, new, observed, seeds), widening(old, new)),
        None => (Vec::new(), (Vec::new(), Vec::new())),
    };
    Comparison {
        subjects,
        admitted,
        widening,
        findings,
    }
}

fn judge_subject(
    old: &PolicyDocument,
    new: Option<&PolicyDocument>,
    observed: &Observed,
    role: &RoleContext,
    trusted: &BTreeSet<Owner>,
) -> SubjectImpact {
    let (old_verdict, _) = judge(old, &observed.claims, role, trusted);
    let (new_verdict, diagnosis) = match new {
        Some(new) => judge(new, &observed.claims, role, trusted),
        // The role is deleted: nothing admits anyone.
        None => (Verdict::Denied, None),
    };
    let change = match (old_verdict, new_verdict) {
        (Verdict::Allowed, Verdict::Allowed) => Change::Unchanged,
        (Verdict::Allowed, Verdict::Denied) => Change::Breaks,
        (Verdict::Allowed, Verdict::Unknown) => Change::MayBreak,
        (_, Verdict::Allowed) => Change::Fixes,
        (Verdict::Denied, Verdict::Denied) => Change::StillDenied,
        _ => Change::Unclear,
    };
    let mut impact = SubjectImpact {
        subject: observed.claims.subject.clone().unwrap_or_default(),
        audience: observed.claims.audience.clone(),
        provider: observed.claims.provider.as_ref().map(|p| p.url.clone()),
        origins: observed.origins.clone(),
        calls: observed.calls,
        last_seen: observed.last_seen.clone(),
        seen_in: observed.seen_in.clone(),
        old: old_verdict,
        new: new_verdict,
        change,
        cause: None,
        statement: None,
        failed_conditions: Vec::new(),
        explanation: None,
        fix: None,
        suggested_change: None,
    };
    if new.is_none() {
        impact.cause = Some(Cause::RoleNotFound);
        impact.explanation = Some("The change deletes the role.".to_owned());
    }
    if let Some(d) = diagnosis.filter(|_| new_verdict != Verdict::Allowed) {
        impact.cause = Some(d.cause);
        impact.statement = d.failed_conditions.first().map(|c| c.statement);
        impact.failed_conditions = d.failed_conditions;
        impact.explanation = Some(d.explanation);
        impact.fix = d.fix;
        impact.suggested_change = d.suggested_change;
    }
    impact
}

/// The diagnosis engine's answer for `claims` under `policy`, as if the call had just
/// been denied: the role holds `policy`, the provider is registered for the token's
/// audience (a trust-policy change changes neither), and the session length fits.
fn judge(
    policy: &PolicyDocument,
    claims: &Claims,
    role: &RoleContext,
    trusted: &BTreeSet<Owner>,
) -> (Verdict, Option<Diagnosis>) {
    let Some(provider) = &claims.provider else {
        return (Verdict::Unknown, None);
    };
    let file = SnapshotFile {
        account_id: Some(role.account_id.clone()),
        roles: vec![RoleEntry {
            role_name: role.name.to_owned(),
            arn: role.arn.clone(),
            path: None,
            max_session_duration: None,
            assume_role_policy_document: Some((*policy.source).clone()),
        }],
        providers: Some(vec![OidcProvider {
            arn: provider.arn.clone(),
            url: provider.url.clone(),
            client_ids: claims.audience.iter().cloned().collect(),
            thumbprint_list: Vec::new(),
        }]),
        complete: Some(CompleteMarkers {
            roles: RolesMarker::All(true),
            providers: Some(true),
        }),
        ..SnapshotFile::default()
    };
    let Ok(snapshot) = AccountSnapshot::from_file(file) else {
        return (Verdict::Unknown, None);
    };
    let mut denied = claims.clone();
    denied.outcome = Outcome::Failure;
    denied.error_code = Some("AccessDenied".to_owned());
    denied.error_message = None;
    denied.account_id = Some(role.account_id.clone());
    denied.role_arn = Some(role.arn.clone());
    denied.role_name = Some(role.name.to_owned());
    denied.duration_seconds = None;
    let ownership = Ownership {
        owners: role.owners,
        trusted: Some(trusted),
    };
    let diagnosis = diagnose_with(denied, Some(&snapshot), ownership);
    let verdict = match diagnosis.cause {
        // Everything the trust policy decides allows the call.
        Cause::DeniedOutsideTrustPolicy => Verdict::Allowed,
        // A condition on a claim STS never sets for this provider fails for certain.
        Cause::UnverifiableCondition if diagnosis.confidence == Confidence::Certain => Verdict::Denied,
        Cause::UnverifiableCondition | Cause::Unknown => Verdict::Unknown,
        _ => Verdict::Denied,
    };
    (verdict, Some(diagnosis))
}

/// Whether `policy` admits `claims`: `True`, `Unknown` when an Allow statement turns on a
/// claim the variant does not fix (or a Deny might apply), `False` otherwise; with the
/// Allow statement that does.
fn admits(policy: &PolicyDocument, claims: &Claims) -> (Tri, Option<usize>) {
    let Some(provider) = &claims.provider else {
        return (Tri::False, None);
    };
    let request = |action: &str| Request {
        principal: provider.principal().to_owned(),
        action: action.to_owned(),
        context: request_context(claims, &KeyFilter::of(policy)),
    };
    let evaluation = evaluate(policy, &request(ASSUME_ROLE_WITH_WEB_IDENTITY));
    let deny_maybe = evaluation
        .statements
        .iter()
        .any(|s| s.effect == "Deny" && s.matched == Tri::Unknown);
    let allowing = |matched: Tri| {
        evaluation
            .statements
            .iter()
            .find(|s| s.is_allow() && s.matched == matched)
            .map(|s| s.index)
    };
    match evaluation.decision {
        Decision::ExplicitDeny => (Tri::False, None),
        Decision::Allow => {
            let tagged = claims.session_tags.is_empty()
                || evaluate(policy, &request(TAG_SESSION)).decision == Decision::Allow;
            match (tagged, deny_maybe) {
                (false, _) => (Tri::False, None),
                (true, false) => (Tri::True, allowing(Tri::True)),
                (true, true) => (Tri::Unknown, allowing(Tri::True)),
            }
        }
        Decision::ImplicitDeny => match allowing(Tri::Unknown) {
            Some(index) => (Tri::Unknown, Some(index)),
            None => (Tri::False, None),
        },
    }
}

const OTHER_REPOSITORY: &str = "oidc-watch-other-repo";
const OTHER_REPOSITORY_ID: &str = "999999998";
const OTHER_BRANCH: &str = "ref:refs/heads/oidc-watch-other-branch";
const OTHER_TAG: &str = "ref:refs/tags/oidc-watch-other-tag";
const OTHER_ENVIRONMENT: &str = "environment:oidc-watch-other-env";

/// A stranger's variants of one observed subject.
fn variants(observed: &Claims) -> Vec<(VariantKind, String)> {
    let (Some(sub), Some(provider)) = (observed.subject.as_deref(), &observed.provider) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(scope) = OwnerScope::of(provider.kind) {
        if let Some(stranger) = stranger_subject(scope, &observed.parsed_subject, sub) {
            out.push((VariantKind::OtherOwner, stranger));
        }
    }
    let Subject::GitHub(github) = &observed.parsed_subject else {
        return out;
    };
    if provider.kind != ProviderKind::GitHub || github.format == GitHubFormat::Custom {
        return out;
    }
    // repo:OWNER/REPO:<context>, or repo:OWNER@ID/REPO@ID:<context>.
    let Some((repository, context)) = sub.strip_prefix("repo:").and_then(|rest| rest.split_once(':')) else {
        return out;
    };
    let Some((owner, _)) = repository.split_once('/') else {
        return out;
    };
    let other_repository = match github.format {
        GitHubFormat::Immutable => format!("{owner}/{OTHER_REPOSITORY}@{OTHER_REPOSITORY_ID}"),
        _ => format!("{owner}/{OTHER_REPOSITORY}"),
    };
    out.push((VariantKind::Ownerless, context.to_owned()));
    out.push((
        VariantKind::OtherRepository,
        format!("repo:{other_repository}:{context}"),
    ));
    for (kind, other) in [
        (VariantKind::OtherBranch, OTHER_BRANCH),
        (VariantKind::Tag, OTHER_TAG),
        (VariantKind::PullRequest, "pull_request"),
        (VariantKind::OtherEnvironment, OTHER_ENVIRONMENT),
    ] {
        if other != context {
            out.push((kind, format!("repo:{repository}:{other}")));
        }
    }
    out
}

fn with_subject(claims: &Claims, sub: &str) -> Claims {
    let mut variant = claims.clone();
    let kind = claims.provider.as_ref().map_or(ProviderKind::Other, |p| p.kind);
    variant.parsed_subject = Subject::parse(kind, sub);
    variant.derived = variant.parsed_subject.derived();
    variant.subject = Some(sub.to_owned());
    variant
}

fn newly_admitted(
    old: &PolicyDocument,
    new: &PolicyDocument,
    observed: &[Observed],
    seeds: &[Observed],
) -> Vec<Admitted> {
    let known: HashSet<(String, String, String)> = observed.iter().chain(seeds).map(Observed::key).collect();
    let mut seen = HashSet::new();
    let mut admitted = Vec::new();
    for subject in observed.iter().chain(seeds) {
        let claims = &subject.claims;
        for (kind, sub) in variants(claims) {
            let variant = with_subject(claims, &sub);
            let key = (
                claims
                    .provider
                    .as_ref()
                    .map(|p| p.url.to_ascii_lowercase())
                    .unwrap_or_default(),
                sub.clone(),
                claims.audience.clone().unwrap_or_default(),
            );
            if known.contains(&key) || !seen.insert(key) {
                continue;
            }
            let (after, statement) = admits(new, &variant);
            if after == Tri::False || admits(old, &variant).0 != Tri::False {
                continue;
            }
            admitted.push(Admitted {
                kind,
                subject: sub,
                audience: claims.audience.clone(),
                from: claims.subject.clone().unwrap_or_default(),
                statement,
                certain: after == Tri::True,
                stranger: kind.is_stranger(),
            });
        }
    }
    admitted.sort_by_key(|a| (a.kind, a.subject.clone()));
    admitted
}

/// Audit findings of the new policy that the old one did not have, statement numbers
/// aside: those that widen who may assume the role, and the others (Medium and up).
fn widening(old: &PolicyDocument, new: &PolicyDocument) -> (Vec<Widening>, Vec<Finding>) {
    let key = |f: &Finding| {
        let message = f
            .message
            .strip_prefix(&format!("Statement {}", f.statement))
            .unwrap_or(&f.message)
            .to_owned();
        (format!("{:?}", f.code), message)
    };
    let before: HashSet<(String, String)> = audit(old).iter().map(key).collect();
    let (mut widening, mut others) = (Vec::new(), Vec::new());
    for finding in audit(new).into_iter().filter(|f| !before.contains(&key(f))) {
        let widens = matches!(
            finding.code,
            FindingCode::NoSubjectCondition
                | FindingCode::OwnerWildcard
                | FindingCode::ForAllValuesOnClaim
                | FindingCode::IfExistsOnClaim
                | FindingCode::NoAudienceCondition
        );
        if widens {
            widening.push(Widening { finding });
        } else if finding.severity != Severity::Low {
            others.push(finding);
        }
    }
    (widening, others)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::impact::subjects::synthetic_claims;

    const GITHUB: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

    #[test]
    fn variants_change_one_thing_each() {
        let claims = synthetic_claims(
            GITHUB,
            "repo:acme/app:ref:refs/heads/main",
            "sts.amazonaws.com",
            None,
        );
        let found: Vec<(VariantKind, String)> = variants(&claims);
        let subjects: Vec<&str> = found.iter().map(|(_, s)| s.as_str()).collect();
        assert!(
            subjects.contains(&"repo:oidc-watch-stranger/app:ref:refs/heads/main"),
            "{subjects:?}"
        );
        assert!(subjects.contains(&"ref:refs/heads/main"));
        assert!(subjects.contains(&"repo:acme/oidc-watch-other-repo:ref:refs/heads/main"));
        assert!(subjects.contains(&"repo:acme/app:pull_request"));
        assert!(subjects.contains(&"repo:acme/app:environment:oidc-watch-other-env"));
        let pr = synthetic_claims(GITHUB, "repo:acme/app:pull_request", "sts.amazonaws.com", None);
        assert!(!variants(&pr).iter().any(|(k, _)| *k == VariantKind::PullRequest));
    }
}
