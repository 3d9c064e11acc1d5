//! What the account says before any policy is read: the role (or the names it resembles),
//! the provider, its audiences, the session duration.

use super::*;

use crate::claims::{Claims, Outcome, Provider};
use crate::snapshot::{AccountSnapshot, Role};
use crate::text::{clean, quote};

pub(super) fn classify(claims: &Claims, account: Option<&AccountSnapshot>, role: Option<&Role>) -> Verdict {
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
pub(super) fn judge_role(claims: &Claims, provider: &Provider, role: &Role) -> Verdict {
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
pub(super) const MAX_ROLE_NAME: usize = 64;

/// The role is not in the snapshot: RoleNotFound only when the snapshot proves it absent
/// (a complete role list, or IAM's `NoSuchEntity`); otherwise the event alone decides.
pub(super) fn role_not_found(claims: &Claims, role_name: &str, account: &AccountSnapshot) -> Verdict {
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
pub(super) fn role_not_in_snapshot(
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
pub(super) fn role_without_web_identity(
    claims: &Claims,
    role_name: &str,
    account: &AccountSnapshot,
) -> Verdict {
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
pub(super) fn providers_not_in_snapshot(
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

pub(super) fn check_provider(
    claims: &Claims,
    provider: &Provider,
    account: &AccountSnapshot,
) -> Option<Verdict> {
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

pub(super) fn provider_missing(
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

pub(super) fn audience_not_in_provider(
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

pub(super) fn duration_exceeded(requested: u64, role: &Role) -> Verdict {
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
