//! What STS's error code and message say on their own.

use super::*;

use crate::claims::{Claims, Provider};
use crate::snapshot::{AccountSnapshot, Role};
use crate::text::{clean, quote};

/// Non-AccessDenied error codes and the STS messages that tell them apart (docs/design.md,
/// "The cause cascade").
pub(super) fn from_error_code(
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

pub(super) fn error_code_hint(code: &str) -> Option<&'static str> {
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

pub(super) fn idp_unreachable(claims: &Claims, confidence: Confidence) -> Verdict {
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

pub(super) fn token_expired(message: &str) -> Verdict {
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
