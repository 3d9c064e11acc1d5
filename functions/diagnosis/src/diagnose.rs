//! From claims and the account's IAM state to a cause, the failing condition and the fix.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::audit::Finding;
use crate::claims::{Claims, Outcome, Provider};
use crate::evaluate::{
    evaluate, ConditionTrace, Decision, Provenance, Request, StatementTrace, Tri,
    ASSUME_ROLE_WITH_WEB_IDENTITY, TAG_SESSION,
};
use crate::keys::{is_provided_claim, request_context, split_claim_key, KeyFilter};
use crate::mismatch::{self, SubjectMismatch, ValueEdit};
use crate::owner::{owner_of, owners_of_account, trust_of, Owner, OwnerScope, Owners, Trust};
use crate::policy::{Operator, PolicyDocument};
use crate::record::WebIdentityEvent;
use crate::snapshot::{AccountSnapshot, Role};
use crate::subject::{DerivedClaims, GitHubContext, GitHubFormat, Subject};
use crate::suggest::{propose, Edit, Job, Refusal, SuggestedChange, Target};
use crate::text::{clean, finish_message, quote};

crate::names::named_enum! {
    pub enum Cause {
    None,
    RoleNotFound,
    OidcProviderMissing,
    AudienceNotInProvider,
    ThumbprintMismatch,
    PrincipalMismatch,
    ActionNotAllowed,
    AudienceMismatch,
    SubjectMismatch,
    UnverifiableCondition,
    ExplicitDeny,
    SessionDurationExceeded,
    MissingTagSessionPermission,
    TokenExpired,
    IdpUnreachable,
    DeniedOutsideTrustPolicy,
    Unknown,
    }
    unknown => Unknown
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    Certain,
    Probable,
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailedCondition {
    pub statement: usize,
    pub operator: String,
    pub key: String,
    pub expected: Vec<String>,
    /// A string, a list for multivalued keys, or null when the key was missing.
    pub actual: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
}

/// One event's diagnosis: the JSON contract of `oidc-watch diagnose` (docs/contracts.md,
/// "The diagnosis JSON").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub role_arn: Option<String>,
    pub role_name: Option<String>,
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_arn: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub claims: DerivedClaims,
    /// The owner the token names (`provider:name`), if any: ALLOWED_OWNERS syntax.
    pub owner: Option<Owner>,
    pub trust: Trust,
    pub cause: Cause,
    pub subject_mismatch: Option<SubjectMismatch>,
    pub confidence: Confidence,
    pub explanation: String,
    pub fix: Option<String>,
    /// The verified trust-policy change, when the cause lives in the trust policy and a
    /// safe change exists; `fix` says why not otherwise.
    pub suggested_change: Option<SuggestedChange>,
    pub failed_conditions: Vec<FailedCondition>,
    /// Shared with the role's cached audit: the same for every event of a role.
    pub findings: Arc<[Finding]>,
    /// `account-snapshot` when the role and providers were known, else `event-only`.
    pub evidence: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub session_tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_run_id: Option<String>,
}

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

fn classify(claims: &Claims, account: Option<&AccountSnapshot>, role: Option<&Role>) -> Verdict {
    if claims.outcome == Outcome::Success {
        return Verdict::new(
            Cause::None,
            Confidence::Certain,
            format!(
                "The call succeeded: {} assumed {}.",
                subject_text(claims),
                role_text(claims)
            ),
            None,
        );
    }
    match claims.error_code.as_deref() {
        Some("AccessDenied") | None => {}
        Some(code) => return from_error_code(code, claims, account, role),
    }
    let Some(role_name) = claims.role_name.as_deref() else {
        return Verdict::new(
            Cause::Unknown,
            Confidence::Unknown,
            "The event names no role: requestParameters.roleArn is empty and resources lists no role, so there is no trust policy to evaluate.".to_owned(),
            "Find the role-to-assume of the job that ran at this time (its GitHub run id or session name is in the event) and check its trust policy.".to_owned(),
        );
    };
    let Some(account) = account else {
        return from_event_alone(claims);
    };
    let Some(role) = role else {
        return role_not_found(claims, role_name, account);
    };
    let Some(provider) = &claims.provider else {
        return Verdict::new(
            Cause::Unknown,
            Confidence::Unknown,
            "The event names no identity provider (userIdentity.identityProvider and principalId are missing).".to_owned(),
            None,
        );
    };
    if let Some(verdict) = check_provider(claims, provider, account) {
        return verdict;
    }
    let verdict = judge_role(claims, provider, role);
    if provider.arn.is_some() && account.provider(&provider.url).is_none() {
        // Not proven absent either, or check_provider would have said so.
        return providers_not_in_snapshot(verdict, provider, account);
    }
    verdict
}

/// The role's own verdict, once the provider is not the problem.
fn judge_role(claims: &Claims, provider: &Provider, role: &Role) -> Verdict {
    if let Some(requested) = claims.duration_seconds.filter(|&d| d > role.max_session_duration) {
        return duration_exceeded(requested, role);
    }
    let policy = match &role.trust_policy {
        Ok(policy) => policy,
        Err(error) => {
            return Verdict::new(
                Cause::Unknown,
                Confidence::Unknown,
                format!("The trust policy of role {} cannot be read: {error}.", role.name),
                "Check the role's AssumeRolePolicyDocument in the snapshot.".to_owned(),
            )
        }
    };
    judge_policy(claims, provider, role, policy)
}

/// IAM role names are at most 64 characters; longer ones get no "did you mean".
const MAX_ROLE_NAME: usize = 64;

/// The role is not in the snapshot: RoleNotFound only when the snapshot proves it absent
/// (a complete role list, or IAM's `NoSuchEntity`); otherwise the event alone decides.
fn role_not_found(claims: &Claims, role_name: &str, account: &AccountSnapshot) -> Verdict {
    if account.is_role_without_web_identity(role_name) {
        return role_without_web_identity(claims, role_name, account);
    }
    let nearest = account
        .roles
        .iter()
        .filter(|_| role_name.len() <= MAX_ROLE_NAME)
        .map(|r| {
            (
                edit_distance(&r.name.to_lowercase(), &role_name.to_lowercase()),
                &r.name,
            )
        })
        .filter(|(d, _)| *d <= 3)
        .min();
    if !account.is_role_absent(role_name) {
        return role_not_in_snapshot(claims, role_name, account, nearest.map(|(_, n)| n.as_str()));
    }
    let hint = match nearest {
        Some((_, name)) => format!(" Did you mean {}?", quote(name)),
        None => String::new(),
    };
    Verdict::new(
        Cause::RoleNotFound,
        Confidence::Certain,
        format!(
            "Account {} has no role named {}; STS answers a missing role with the same AccessDenied as a trust-policy mismatch.{hint}",
            account.account_id,
            quote(role_name)
        ),
        format!(
            "Correct role-to-assume in the workflow{}, or create the role.",
            nearest.map(|(_, n)| format!(" to arn:aws:iam::{}:role/{n}", account.account_id)).unwrap_or_default()
        ),
    )
}

/// The snapshot neither lists the role nor says its role list is complete, so the role
/// may exist: the most probable cause from the event alone, never RoleNotFound.
fn role_not_in_snapshot(
    claims: &Claims,
    role_name: &str,
    account: &AccountSnapshot,
    nearest: Option<&str>,
) -> Verdict {
    let mut verdict = from_event_alone(claims);
    let account_id = clean(&account.account_id);
    let missing = format!(
        "the snapshot of account {account_id} does not list role {} and does not say that its role list is complete, so the role may exist",
        quote(role_name)
    );
    let event_only = format!("no account snapshot for account {account_id}");
    verdict.explanation = if verdict.explanation.contains(&event_only) {
        verdict.explanation.replacen(&event_only, &missing, 1)
    } else {
        format!("{} Note: {missing}.", verdict.explanation.trim_end())
    };
    if let Some(name) = nearest {
        verdict.explanation.push_str(&format!(
            " The snapshot lists {}: if that is the role the job meant, role-to-assume is misspelled.",
            quote(name)
        ));
    }
    let snapshot_hint = format!(
        "write a complete snapshot (oidc-watch snapshot --roles {}) for a certain answer",
        clean(role_name)
    );
    verdict.fix = verdict
        .fix
        .map(|fix| fix.replacen("run again with --account for a certain answer", &snapshot_hint, 1));
    if let Some(name) = nearest {
        verdict.fix = Some(format!(
            "If the job meant arn:aws:iam::{account_id}:role/{}, correct role-to-assume in the workflow. {}",
            clean(name),
            verdict.fix.unwrap_or_default()
        ));
    }
    verdict
}

/// The role exists, but the snapshot left it out: its trust policy names no federated
/// principal and does not allow sts:AssumeRoleWithWebIdentity ([`crate::snapshot::concerns_web_identity`]).
fn role_without_web_identity(claims: &Claims, role_name: &str, account: &AccountSnapshot) -> Verdict {
    let principal = claims
        .provider
        .as_ref()
        .map_or("<the provider's ARN>".to_owned(), |p| clean(p.principal()));
    Verdict::new(
        Cause::PrincipalMismatch,
        Confidence::Probable,
        format!(
            "Role {} exists in account {}, but its trust policy admits no web identity: the snapshot leaves such roles out (RolesWithoutWebIdentity), as no statement names a federated principal or allows sts:AssumeRoleWithWebIdentity.",
            quote(role_name),
            clean(&account.account_id)
        ),
        format!(
            "Point role-to-assume at the role meant for this job, or add a statement to the trust policy of {} with \"Principal\": {{\"Federated\": \"{principal}\"}}, \"Action\": \"sts:AssumeRoleWithWebIdentity\" and conditions on the token's aud and sub.",
            quote(role_name)
        ),
    )
}

/// The snapshot does not list the account's providers (no OpenIDConnectProviders): the
/// trust policy's verdict stands, but whether the issuer is registered was not checked, so
/// it is at most probable.
fn providers_not_in_snapshot(
    mut verdict: Verdict,
    provider: &Provider,
    account: &AccountSnapshot,
) -> Verdict {
    if verdict.confidence == Confidence::Certain {
        verdict.confidence = Confidence::Probable;
    }
    let explanation = verdict.explanation.trim_end();
    let stop = if explanation.ends_with(['.', '?', '!']) {
        ""
    } else {
        "."
    };
    verdict.explanation = format!(
        "{explanation}{stop} The snapshot of account {} does not list its OIDC providers, so whether https://{} is registered was not checked.",
        clean(&account.account_id),
        clean(&provider.url)
    );
    verdict
}

fn check_provider(claims: &Claims, provider: &Provider, account: &AccountSnapshot) -> Option<Verdict> {
    provider.arn.as_ref()?;
    let Some(registered) = account.provider(&provider.url) else {
        // Only a complete provider list proves the provider missing.
        return account.is_provider_absent(&provider.url).then(|| {
            provider_missing(
                provider,
                &account.account_id,
                claims.audience.as_deref(),
                Confidence::Certain,
            )
        });
    };
    let audience = claims.audience.as_deref()?;
    if registered.client_ids.iter().any(|c| c == audience) {
        return None;
    }
    Some(audience_not_in_provider(
        audience,
        registered.arn.as_deref().unwrap_or(provider.principal()),
        &registered.client_ids,
        Confidence::Certain,
    ))
}

fn provider_missing(
    provider: &Provider,
    account: &str,
    audience: Option<&str>,
    confidence: Confidence,
) -> Verdict {
    let url = clean(&provider.url);
    let (account, audience) = (clean(account), audience.map(clean));
    let slug_hint = match url.strip_prefix("token.actions.githubusercontent.com/") {
        Some(slug) => format!(
            " The issuer carries the enterprise slug {}: the enterprise turned on GitHub's unique issuer URL, so the plain token.actions.githubusercontent.com provider no longer matches.",
            quote(slug)
        ),
        None => String::new(),
    };
    Verdict::new(
        Cause::OidcProviderMissing,
        confidence,
        format!(
            "Account {account} has no IAM OIDC provider for the token's issuer https://{}.{slug_hint}",
            url
        ),
        format!(
            "aws iam create-open-id-connect-provider --url https://{} --client-id-list {}{}",
            url,
            audience.as_deref().unwrap_or("sts.amazonaws.com"),
            if slug_hint.is_empty() {
                String::new()
            } else {
                format!(
                    " (then name {} in the roles' Principal.Federated and condition keys), or turn the enterprise's include_enterprise_slug off",
                    clean(&provider.arn_in(&account))
                )
            }
        ),
    )
}

fn audience_not_in_provider(
    audience: &str,
    provider_arn: &str,
    client_ids: &[String],
    confidence: Confidence,
) -> Verdict {
    let (audience, provider_arn) = (clean(audience), clean(provider_arn));
    let registered = if client_ids.is_empty() {
        "none".to_owned()
    } else {
        client_ids.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ")
    };
    Verdict::new(
        Cause::AudienceNotInProvider,
        confidence,
        format!("The token's aud {} is not in the client-ID list of {provider_arn} (registered: {registered}).", quote(&audience)),
        format!(
            "aws iam add-client-id-to-open-id-connect-provider --open-id-connect-provider-arn {provider_arn} --client-id {audience}; or request the token with a registered audience (configure-aws-credentials: audience: sts.amazonaws.com)."
        ),
    )
}

fn duration_exceeded(requested: u64, role: &Role) -> Verdict {
    Verdict::new(
        Cause::SessionDurationExceeded,
        Confidence::Certain,
        format!(
            "The job asked for a {requested}-second session, above role {}'s MaxSessionDuration of {} seconds.",
            role.name, role.max_session_duration
        ),
        format!(
            "Set role-duration-seconds to at most {} in the workflow, or raise the limit: aws iam update-role --role-name {} --max-session-duration {}",
            role.max_session_duration,
            role.name,
            requested.min(43_200)
        ),
    )
}

/// Non-AccessDenied error codes and the STS messages that tell them apart (docs/design.md,
/// "The cause cascade").
fn from_error_code(
    code: &str,
    claims: &Claims,
    account: Option<&AccountSnapshot>,
    role: Option<&Role>,
) -> Verdict {
    let message = claims.error_message.as_deref().unwrap_or("");
    let confirmed = |seen: bool| {
        if seen {
            Confidence::Certain
        } else {
            Confidence::Probable
        }
    };
    match code {
        "InvalidIdentityToken" if message.contains("No OpenIDConnect provider found") => {
            let provider = claims.provider.clone().or_else(|| {
                let url = message.split("https://").nth(1)?.trim().trim_end_matches('.');
                Provider::parse(url)
            });
            let account_id = clean(claims.account_id.as_deref().unwrap_or("(the role's account)"));
            match provider {
                Some(p) => {
                    let confirmed = confirmed(account.is_some_and(|a| a.is_provider_absent(&p.url)));
                    provider_missing(&p, &account_id, claims.audience.as_deref(), confirmed)
                }
                None => Verdict::new(
                    Cause::OidcProviderMissing,
                    Confidence::Probable,
                    format!("STS found no IAM OIDC provider for the token's issuer in account {account_id}."),
                    "Create the provider with aws iam create-open-id-connect-provider for the issuer URL the token carries.".to_owned(),
                ),
            }
        }
        "InvalidIdentityToken" if message.contains("Incorrect token audience") => {
            let audience = claims.audience.as_deref().unwrap_or("(the token's aud)");
            let registered = account.zip(claims.provider.as_ref()).and_then(|(a, p)| a.provider(&p.url));
            let arn = clean(claims.provider.as_ref().map_or("", |p| p.principal()));
            let client_ids = registered.map(|r| r.client_ids.clone()).unwrap_or_default();
            audience_not_in_provider(audience, &arn, &client_ids, confirmed(registered.is_some()))
        }
        "InvalidIdentityToken" if message.contains("thumbprint") => {
            let arn = clean(claims.provider.as_ref().map_or("", |p| p.principal()));
            Verdict::new(
                Cause::ThumbprintMismatch,
                Confidence::Certain,
                format!("The issuer's TLS certificate does not match the thumbprints registered on {arn}. AWS stopped using thumbprints for GitHub.com in July 2023, so this is a self-hosted or other issuer whose certificate changed."),
                format!("aws iam update-open-id-connect-provider-thumbprint --open-id-connect-provider-arn {arn} --thumbprint-list <SHA-1 of the issuer's top intermediate CA certificate>"),
            )
        }
        "InvalidIdentityToken"
            if message.contains("verification key") || message.contains(".well-known/openid-configuration") =>
        {
            idp_unreachable(claims, Confidence::Certain)
        }
        "IDPCommunicationError" => idp_unreachable(claims, Confidence::Certain),
        "InvalidIdentityToken" if message.contains("roles claim") => Verdict::new(
            Cause::Unknown,
            Confidence::Probable,
            format!("The token carries an https://aws.amazon.com/roles claim that does not list {}.", role_text(claims)),
            "Add the role's ARN to the roles claim the identity provider issues, or stop issuing the claim.".to_owned(),
        ),
        "ExpiredTokenException" | "ExpiredToken" => token_expired(message),
        "ValidationError" if message.contains("DurationSeconds") => match role {
            Some(role) if claims.duration_seconds.is_some() => {
                duration_exceeded(claims.duration_seconds.unwrap_or_default(), role)
            }
            _ => Verdict::new(
                Cause::SessionDurationExceeded,
                Confidence::Probable,
                format!(
                    "The job asked for a {}-second session, above the role's MaxSessionDuration.",
                    claims.duration_seconds.map_or("longer".to_owned(), |d| d.to_string())
                ),
                "Lower role-duration-seconds in the workflow, or raise the role's MaxSessionDuration (aws iam update-role --max-session-duration).".to_owned(),
            ),
        },
        _ => Verdict::new(
            Cause::Unknown,
            Confidence::Probable,
            format!("STS rejected the call with {}: {}", quote(code), quote(message)),
            error_code_hint(code).map(str::to_owned),
        ),
    }
}

fn error_code_hint(code: &str) -> Option<&'static str> {
    Some(match code {
        "ValidationError" => {
            "A request parameter failed validation, e.g. a role-session-name outside [\\w+=,.@-]*."
        }
        "PackedPolicyTooLarge" => "Shorten the session policy or the session tags.",
        "RegionDisabledException" => {
            "Activate STS in this region (IAM account settings), or call another region's endpoint."
        }
        "MalformedPolicyDocument" => "Fix the inline session policy passed with the call.",
        "IDPRejectedClaim" => "The identity provider rejected the token; request a fresh one.",
        _ => return None,
    })
}

fn idp_unreachable(claims: &Claims, confidence: Confidence) -> Verdict {
    let issuer = claims
        .provider
        .as_ref()
        .map_or("the issuer".to_owned(), |p| format!("https://{}", clean(&p.url)));
    Verdict::new(
        Cause::IdpUnreachable,
        confidence,
        format!("STS could not fetch {issuer}/.well-known/openid-configuration or its signing keys in time (5 seconds)."),
        format!("Usually transient: re-run the job. For a self-hosted issuer, {issuer}/.well-known/openid-configuration and its jwks_uri must be reachable from the internet."),
    )
}

fn token_expired(message: &str) -> Verdict {
    let numbers: Vec<i64> = message
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| s.len() >= 9)
        .filter_map(|s| s.parse().ok())
        .collect();
    let late = match numbers.as_slice() {
        [now, expiry, ..] if now > expiry => {
            format!(" It was presented {} seconds after it expired.", now - expiry)
        }
        _ => String::new(),
    };
    Verdict::new(
        Cause::TokenExpired,
        Confidence::Certain,
        format!("STS rejected the token as expired or too old.{late}"),
        "Request the OIDC token right before the AWS call (a long step between them lets it expire); check the runner's clock, as IAM allows only 5 minutes of skew.".to_owned(),
    )
}

/// Without the role: the most probable cause from the event alone.
fn from_event_alone(claims: &Claims) -> Verdict {
    let without = format!(
        "Without the trust policy of {} (no account snapshot for account {}), this is the most probable cause from the event alone: ",
        role_text(claims),
        clean(claims.account_id.as_deref().unwrap_or("unknown"))
    );
    let check = format!(
        "Compare the sub {} with the {}:sub values in the role's trust policy, or run again with --account for a certain answer.",
        quote(claims.subject.as_deref().unwrap_or("")),
        clean(claims.provider.as_ref().map_or("<provider>", |p| p.url.as_str()))
    );
    let guess = match &claims.parsed_subject {
        Subject::GitHub(s) if s.format == GitHubFormat::Immutable => Some((
            SubjectMismatch::ImmutableFormat,
            "the sub uses GitHub's immutable owner@id/repo@id form, which name-based trust policies (repo:owner/repo:*) do not match.",
        )),
        Subject::GitHub(s) if s.format == GitHubFormat::Custom => Some((
            SubjectMismatch::CustomTemplate,
            "the sub follows a customised claim template, which default-shaped trust policies do not match.",
        )),
        Subject::GitHub(s) => match s.context {
            GitHubContext::Environment(_) => Some((SubjectMismatch::Environment, "the job references an environment, so its sub carries environment:NAME instead of its branch; policies written for ref:refs/heads/… do not match it.")),
            GitHubContext::PullRequest => Some((SubjectMismatch::PullRequest, "pull-request runs get :pull_request in their sub, which branch-pinned policies do not match.")),
            GitHubContext::Tag(_) => Some((SubjectMismatch::Tag, "the job ran for a tag, which branch-pinned policies do not match.")),
            GitHubContext::Branch(_) | GitHubContext::Ref(_) => Some((SubjectMismatch::Branch, "most denials are a sub condition that does not allow this branch or repository.")),
            GitHubContext::Pattern(_) | GitHubContext::None => None,
        },
        _ => None,
    };
    let mut verdict = match (guess, &claims.subject) {
        (Some((kind, why)), _) => {
            let mut v = Verdict::new(
                Cause::SubjectMismatch,
                Confidence::Unknown,
                format!("{without}{why}"),
                check,
            );
            v.subject_mismatch = Some(kind);
            v
        }
        (None, Some(_)) => {
            let mut v = Verdict::new(
                Cause::SubjectMismatch,
                Confidence::Unknown,
                format!("{without}most AccessDenied answers to web-identity calls are a sub condition that does not allow the token's subject."),
                check,
            );
            v.subject_mismatch = Some(SubjectMismatch::Other);
            v
        }
        (None, None) => Verdict::new(
            Cause::Unknown,
            Confidence::Unknown,
            "The event shows neither the token's subject nor the role's trust policy.".to_owned(),
            None,
        ),
    };
    if claims.role_arn.is_none() {
        verdict.explanation.push_str(" The event names no role.");
    }
    verdict
}

/// Why a trust policy denied, from the evaluation of every statement.
fn judge_policy(claims: &Claims, provider: &Provider, role: &Role, policy: &PolicyDocument) -> Verdict {
    let request = Request {
        principal: provider.principal().to_owned(),
        action: ASSUME_ROLE_WITH_WEB_IDENTITY.to_owned(),
        context: request_context(claims, &KeyFilter::of(policy)),
    };
    let evaluation = evaluate(policy, &request);
    let statements = &evaluation.statements;
    let derived_used = |s: &StatementTrace| {
        s.conditions
            .iter()
            .any(|c| c.provenance == Some(Provenance::Derived))
    };
    let certain_unless_derived = |s: &StatementTrace| {
        if derived_used(s) {
            Confidence::Probable
        } else {
            Confidence::Certain
        }
    };

    if let Some(deny) = statements
        .iter()
        .find(|s| s.effect == "Deny" && s.matched == Tri::True)
    {
        let mut verdict = Verdict::new(
            Cause::ExplicitDeny,
            certain_unless_derived(deny),
            format!(
                "Statement {}{} of role {} is a Deny that matches this request{}: an explicit Deny overrides every Allow.",
                deny.index,
                sid_text(deny),
                role.name,
                conditions_text(deny)
            ),
            format!(
                "If {} should get in, narrow or remove the Deny in statement {}; otherwise the policy worked as intended.",
                subject_text(claims),
                deny.index
            ),
        );
        verdict.failed_conditions = deny.conditions.iter().map(|c| failed(deny.index, c)).collect();
        return verdict;
    }

    let allowing = statements.iter().find(|s| s.is_allow() && s.matched == Tri::True);
    let uncertain_deny = statements
        .iter()
        .find(|s| s.effect == "Deny" && s.matched == Tri::Unknown);
    if let Some(allow) = allowing {
        if let Some(deny) = uncertain_deny {
            return unverifiable(deny, role, "may deny");
        }
        if !claims.session_tags.is_empty() {
            let tag_request = Request {
                action: TAG_SESSION.to_owned(),
                ..request
            };
            if evaluate(policy, &tag_request).decision != Decision::Allow {
                let tags: Vec<String> = claims.session_tags.keys().take(10).map(|k| quote(k)).collect();
                return Verdict::new(
                    Cause::MissingTagSessionPermission,
                    certain_unless_derived(allow),
                    format!(
                        "The request carries session tags ({}), so STS also needs sts:TagSession, which no Allow statement of role {} grants; statement {} allows everything else.",
                        tags.join(", "),
                        role.name,
                        allow.index
                    ),
                    format!(
                        "In statement {}, set \"Action\": [\"sts:AssumeRoleWithWebIdentity\", \"sts:TagSession\"].",
                        allow.index
                    ),
                )
                .with_edit(Edit {
                    statement: allow.index,
                    target: Target::Action,
                    add: vec![TAG_SESSION.to_owned()],
                    remove: Vec::new(),
                });
            }
        }
        return Verdict::new(
            Cause::DeniedOutsideTrustPolicy,
            Confidence::Probable,
            format!(
                "Statement {} of role {}'s current trust policy allows this subject and audience, yet STS denied the call: a resource control policy (RCP) on STS denied it, or the trust policy was different when the call was made.",
                allow.index, role.name
            ),
            format!(
                "Look for an RCP attached to the account or its OUs that denies sts:AssumeRoleWithWebIdentity, and for UpdateAssumeRolePolicy calls on {} around {} in CloudTrail.",
                role.name,
                claims.event_time.as_deref().unwrap_or("the event's time")
            ),
        );
    }

    let allows: Vec<&StatementTrace> = statements.iter().filter(|s| s.is_allow()).collect();
    if let Some(maybe) = allows.iter().find(|s| s.matched == Tri::Unknown) {
        return unverifiable(maybe, role, "allows only if");
    }
    let federated: Vec<&StatementTrace> = allows.iter().copied().filter(|s| s.principal_matched).collect();
    if federated.is_empty() {
        let named: Vec<String> = policy
            .statements
            .iter()
            .flat_map(|s| s.federated_principals().iter().map(|p| quote(p)))
            .take(5)
            .collect();
        let target = allows.first().map_or(0, |s| s.index);
        let verdict = Verdict::new(
            Cause::PrincipalMismatch,
            Confidence::Certain,
            format!(
                "No Allow statement of role {} names the token's provider {} in Principal.Federated{}.",
                role.name,
                clean(provider.principal()),
                if named.is_empty() {
                    String::new()
                } else {
                    format!("; the policy names {}", named.join(", "))
                }
            ),
            format!(
                "In statement {target}, set \"Principal\": {{\"Federated\": \"{}\"}}.",
                clean(provider.principal())
            ),
        );
        return match allows.first() {
            Some(statement) => verdict.with_edit(Edit {
                statement: statement.index,
                target: Target::FederatedPrincipal,
                add: vec![provider.principal().to_owned()],
                remove: Vec::new(),
            }),
            None => verdict,
        };
    }
    let acting: Vec<&StatementTrace> = federated.iter().copied().filter(|s| s.action_matched).collect();
    if acting.is_empty() {
        let statement = federated[0];
        let actions = policy.statements[statement.index]
            .action
            .clone()
            .unwrap_or_default();
        return Verdict::new(
            Cause::ActionNotAllowed,
            Confidence::Certain,
            format!(
                "Statement {} names the provider, but its Action {} does not allow sts:AssumeRoleWithWebIdentity{}.",
                statement.index,
                actions.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", "),
                if actions.iter().any(|a| a.eq_ignore_ascii_case("sts:AssumeRole")) {
                    " (sts:AssumeRole is for IAM principals, not web identities)"
                } else {
                    ""
                }
            ),
            format!("In statement {}, set \"Action\": \"sts:AssumeRoleWithWebIdentity\".", statement.index),
        )
        .with_edit(Edit {
            statement: statement.index,
            target: Target::Action,
            add: vec![ASSUME_ROLE_WITH_WEB_IDENTITY.to_owned()],
            remove: Vec::new(),
        });
    }
    // The statement written for this job: the fewest failing conditions, and among
    // those the one whose `sub` condition already matches.
    let sub_fails = |s: &StatementTrace| {
        s.failed_conditions().any(|c| {
            split_claim_key(&c.key).is_some_and(|(prefix, claim)| {
                prefix.eq_ignore_ascii_case(&provider.url) && claim.eq_ignore_ascii_case("sub")
            })
        })
    };
    let nearest = acting
        .iter()
        .copied()
        .min_by_key(|s| (s.failed_conditions().count(), sub_fails(s)))
        .unwrap_or(acting[0]);
    conditions_verdict(claims, provider, nearest)
}

fn unverifiable(statement: &StatementTrace, role: &Role, verb: &str) -> Verdict {
    let unknown: Vec<&ConditionTrace> = statement
        .conditions
        .iter()
        .filter(|c| c.result == Tri::Unknown)
        .collect();
    let described: Vec<String> = unknown
        .iter()
        .map(|c| format!("{} {} {}", c.key, c.operator, list(&c.expected)))
        .collect();
    let mut verdict = Verdict::new(
        Cause::UnverifiableCondition,
        Confidence::Probable,
        format!(
            "Statement {}{} of role {} {verb} {}: claims CloudTrail does not record. Everything the event shows matches, so one of these is the likely reason.",
            statement.index,
            sid_text(statement),
            role.name,
            described.join(" and ")
        ),
        "Print the job's token claims (e.g. with github/actions-oidc-debugger) and compare them with these values; correct the condition or the workflow.".to_owned(),
    );
    verdict.failed_conditions = unknown.iter().map(|c| failed(statement.index, c)).collect();
    verdict
}

/// The nearest Allow statement failed on conditions: say which and why.
fn conditions_verdict(claims: &Claims, provider: &Provider, statement: &StatementTrace) -> Verdict {
    #[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
    enum Part {
        Audience,
        Subject,
        DerivedClaim,
        NotProvided,
        Other,
    }
    let part_of = |c: &ConditionTrace| -> Part {
        match split_claim_key(&c.key) {
            Some((prefix, claim)) if prefix.eq_ignore_ascii_case(&provider.url) => {
                match claim.to_ascii_lowercase().as_str() {
                    "aud" => Part::Audience,
                    "sub" => Part::Subject,
                    _ if c.provenance == Some(Provenance::Derived) => Part::DerivedClaim,
                    claim if !is_provided_claim(provider.kind, claim) => Part::NotProvided,
                    _ => Part::Other,
                }
            }
            Some((_, claim)) if claim.eq_ignore_ascii_case("sub") || claim.eq_ignore_ascii_case("aud") => {
                Part::NotProvided
            }
            Some(_) => Part::NotProvided,
            None => Part::Other,
        }
    };
    let failing: Vec<&ConditionTrace> = statement.failed_conditions().collect();
    let failed_conditions: Vec<FailedCondition> =
        failing.iter().map(|c| failed(statement.index, c)).collect();
    let Some(first) = failing.iter().copied().min_by_key(|c| part_of(c)) else {
        return Verdict::new(
            Cause::Unknown,
            Confidence::Unknown,
            format!(
                "Statement {} did not match, for no reason the evaluation can name.",
                statement.index
            ),
            None,
        );
    };
    // One failing condition is fixed by one edit; several need the prose fix.
    let single = failing.len() == 1 && !Operator::parse(&first.operator).base.is_negated();
    let add_to_first = |values: Vec<String>, remove: Vec<String>, operator: &str| Edit {
        statement: statement.index,
        target: Target::Condition {
            operator: operator.to_owned(),
            key: first.key.clone(),
        },
        add: values,
        remove,
    };
    let mut verdict = match part_of(first) {
        Part::Audience => {
            let aud = claims.audience.as_deref().unwrap_or("");
            let edit = add_to_first(vec![aud.to_owned()], Vec::new(), &first.operator);
            let mut v = Verdict::new(
                Cause::AudienceMismatch,
                Confidence::Certain,
                format!(
                    "Statement {} requires {} {} {}, but the token's aud is {}.",
                    statement.index,
                    first.key,
                    first.operator,
                    list(&first.expected),
                    quote(aud)
                ),
                format!(
                    "Request the token with audience {} (configure-aws-credentials: audience: {}), or add {} to the {} values in statement {}.",
                    quote(first.expected.first().map_or("sts.amazonaws.com", String::as_str)),
                    first.expected.first().map_or("sts.amazonaws.com", String::as_str),
                    quote(aud),
                    first.key,
                    statement.index
                ),
            );
            v.edit = (single && !aud.is_empty()).then_some(edit);
            v
        }
        Part::Subject => {
            let sub = claims.subject.as_deref().unwrap_or("");
            let judged = mismatch::judge(
                provider.kind,
                &claims.parsed_subject,
                sub,
                Operator::parse(&first.operator),
                &first.key,
                &first.expected,
                statement.index,
            );
            let mut v = Verdict::new(Cause::SubjectMismatch, Confidence::Certain, judged.explanation, judged.fix);
            v.subject_mismatch = Some(judged.kind);
            let edit = match judged.edit {
                ValueEdit::AddSubject => add_to_first(vec![sub.to_owned()], Vec::new(), &first.operator),
                ValueEdit::AddBeside { add } => add_to_first(vec![add], Vec::new(), &first.operator),
                ValueEdit::Replace { remove, add } => add_to_first(vec![add], vec![remove], &first.operator),
                ValueEdit::Move { value, operator } => add_to_first(vec![value.clone()], vec![value], operator),
            };
            let pull_request = matches!(
                claims.parsed_subject.as_github().map(|s| &s.context),
                Some(GitHubContext::PullRequest)
            );
            if pull_request {
                // Anyone who can open a pull request can start such a run.
                v.fix = Some(format!(
                    "No trust-policy change is safe: {} is the subject of every pull-request run, which anyone who can open a pull request can start (pull_request_target runs get id-token). Deploy from a protected branch or an environment with required reviewers, and trust that subject instead.",
                    quote(sub)
                ));
            } else if single && !sub.is_empty() {
                v.edit = Some(edit);
            } else if !single {
                v.no_edit = Some(format!(
                    "statement {} fails on {} conditions, so no single change lets this job in",
                    statement.index,
                    failing.len()
                ));
            }
            v
        }
        Part::DerivedClaim => {
            let claim = split_claim_key(&first.key).map_or("", |(_, c)| c).to_ascii_lowercase();
            let kind = match claim.as_str() {
                "environment" => SubjectMismatch::Environment,
                "ref" if claims.derived.ref_type.as_deref() == Some("tag") => SubjectMismatch::Tag,
                "ref" => SubjectMismatch::Branch,
                "repository" | "repository_id" | "repository_owner_id" => SubjectMismatch::Repository,
                _ => SubjectMismatch::Other,
            };
            let actual = first.actual.as_ref().and_then(|a| a.first()).map_or(String::new(), |a| quote(a));
            let mut v = Verdict::new(
                Cause::SubjectMismatch,
                Confidence::Probable,
                format!(
                    "Statement {} requires {} {} {}, but the job's {claim} is {actual} (read from its sub {}).",
                    statement.index,
                    first.key,
                    first.operator,
                    list(&first.expected),
                    quote(claims.subject.as_deref().unwrap_or(""))
                ),
                format!("If this job should get in, add {actual} to the values of {} in statement {}.", first.key, statement.index),
            );
            v.subject_mismatch = Some(kind);
            if let (true, Some(value)) = (single, first.actual.as_ref().and_then(|a| a.first())) {
                v.edit = Some(add_to_first(vec![value.clone()], Vec::new(), &first.operator));
            }
            v
        }
        Part::NotProvided => Verdict::new(
            Cause::UnverifiableCondition,
            Confidence::Certain,
            format!(
                "Statement {} requires {} {} {}, but STS never sets {} for provider {}: the key is always missing, so this condition can never be true.",
                statement.index,
                first.key,
                first.operator,
                list(&first.expected),
                first.key,
                clean(&provider.url)
            ),
            format!(
                "Remove the condition on {} from statement {}, or use a key STS provides ({}:sub, {}:aud, or a provider-specific claim it evaluates).",
                first.key, statement.index, clean(&provider.url), clean(&provider.url)
            ),
        ),
        Part::Other => Verdict::new(
            Cause::Unknown,
            Confidence::Probable,
            format!(
                "Statement {} requires {} {} {}, and the request's value {} does not satisfy it.",
                statement.index,
                first.key,
                first.operator,
                list(&first.expected),
                first.actual.as_ref().map_or("(missing)".to_owned(), |a| list(a))
            ),
            format!("Check the condition on {} in statement {}.", first.key, statement.index),
        ),
    };
    verdict.failed_conditions = failed_conditions;
    verdict
}

fn failed(statement: usize, condition: &ConditionTrace) -> FailedCondition {
    FailedCondition {
        statement,
        operator: condition.operator.clone(),
        key: condition.key.clone(),
        expected: condition.expected.clone(),
        actual: match condition.actual.as_deref() {
            None => Value::Null,
            Some([one]) => Value::String(one.clone()),
            Some(many) => Value::Array(many.iter().cloned().map(Value::String).collect()),
        },
        provenance: condition.provenance,
    }
}

fn list(values: &[String]) -> String {
    match values {
        [one] => quote(one),
        many => format!(
            "[{}]",
            many.iter()
                .take(5)
                .map(|v| quote(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn sid_text(statement: &StatementTrace) -> String {
    statement
        .sid
        .as_deref()
        .map_or(String::new(), |sid| format!(" ({})", quote(sid)))
}

fn conditions_text(statement: &StatementTrace) -> String {
    let parts: Vec<String> = statement
        .conditions
        .iter()
        .map(|c| format!("{} {} {}", c.key, c.operator, list(&c.expected)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(" and "))
    }
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
