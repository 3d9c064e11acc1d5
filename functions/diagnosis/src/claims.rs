//! What one event says about the call: role, provider, `sub`, `aud` and the request.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::{RequestParameters, ResponseElements, UserIdentity, WebIdentityEvent};
use crate::subject::{DerivedClaims, ProviderKind, Subject};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Success,
    Failure,
}

/// The token's issuer as IAM names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provider {
    /// `arn:aws:iam::<account>:oidc-provider/<url>`; `None` for built-in providers.
    pub arn: Option<String>,
    pub account_id: Option<String>,
    /// Host and path without scheme: the prefix of its condition keys.
    pub url: String,
    pub kind: ProviderKind,
}

impl Provider {
    /// From `identityProvider`: an IAM OIDC provider ARN, or a bare host for built-ins.
    pub fn parse(identity_provider: &str) -> Option<Provider> {
        let identity_provider = identity_provider.trim();
        if identity_provider.is_empty() {
            return None;
        }
        if let Some((head, url)) = identity_provider.split_once(":oidc-provider/") {
            let account_id = head
                .rsplit(':')
                .next()
                .filter(|a| !a.is_empty())
                .map(str::to_owned);
            return Some(Provider {
                arn: Some(identity_provider.to_owned()),
                account_id,
                url: url.to_owned(),
                kind: ProviderKind::from_url(url),
            });
        }
        let url = identity_provider.trim_start_matches("https://");
        Some(Provider {
            arn: None,
            account_id: None,
            url: url.to_owned(),
            kind: ProviderKind::from_url(url),
        })
    }

    /// The name a trust policy gives this provider in `Principal.Federated`.
    pub fn principal(&self) -> &str {
        self.arn.as_deref().unwrap_or(&self.url)
    }

    /// The provider ARN this issuer would have in `account`.
    pub fn arn_in(&self, account: &str) -> String {
        let partition = self
            .arn
            .as_deref()
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| !p.is_empty())
            .unwrap_or("aws");
        format!("arn:{partition}:iam::{account}:oidc-provider/{}", self.url)
    }
}

/// Everything the diagnosis needs from one event. Strings are as recorded (untrusted).
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub request_id: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub role_arn: Option<String>,
    pub role_name: Option<String>,
    pub provider: Option<Provider>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub parsed_subject: Subject,
    pub derived: DerivedClaims,
    pub session_name: Option<String>,
    pub duration_seconds: Option<u64>,
    pub session_tags: BTreeMap<String, String>,
    pub source_identity: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub endpoint_type: Option<String>,
    pub github_run_id: Option<String>,
    pub github_run_attempt: Option<String>,
}

impl Claims {
    pub fn from_event(event: &WebIdentityEvent) -> Claims {
        let record = &event.record;
        let no_identity = UserIdentity::default();
        let no_response = ResponseElements::default();
        let no_request = RequestParameters::default();
        let identity = record.user_identity.as_ref().unwrap_or(&no_identity);
        let response = record.response_elements.as_ref().unwrap_or(&no_response);
        let request = record.request_parameters.as_ref().unwrap_or(&no_request);

        let provider = identity
            .identity_provider
            .as_deref()
            .and_then(Provider::parse)
            .or_else(|| response.provider.as_deref().and_then(Provider::parse))
            .or_else(|| {
                identity
                    .principal_id
                    .as_deref()
                    .and_then(provider_from_principal_id)
            });

        let subject = non_empty(identity.user_name.clone())
            .or_else(|| non_empty(response.subject_from_web_identity_token.clone()));
        let audience = non_empty(response.audience.clone()).or_else(|| {
            audience_from_principal_id(
                identity.principal_id.as_deref()?,
                provider.as_ref()?,
                subject.as_deref(),
            )
        });
        let subject = subject.or_else(|| {
            let principal_id = identity.principal_id.as_deref()?;
            let rest = principal_id
                .strip_prefix(provider.as_ref()?.principal())?
                .strip_prefix(':')?;
            rest.strip_prefix(audience.as_deref()?)?
                .strip_prefix(':')
                .map(str::to_owned)
        });

        let role_arn = non_empty(request.role_arn.clone()).or_else(|| {
            record.resources.as_ref()?.iter().find_map(|r| {
                let arn = r.arn.as_deref()?;
                (r.resource_type.as_deref() == Some("AWS::IAM::Role") || arn.contains(":role/"))
                    .then(|| arn.to_owned())
            })
        });
        let role_name = role_arn.as_deref().and_then(role_name_of);
        let account_id = non_empty(record.recipient_account_id.clone())
            .or_else(|| event.envelope_account.clone())
            .or_else(|| role_arn.as_deref().and_then(account_of_arn))
            .or_else(|| {
                record
                    .resources
                    .as_ref()?
                    .iter()
                    .find_map(|r| r.account_id.clone())
            });

        let kind = provider.as_ref().map_or(ProviderKind::Other, |p| p.kind);
        let parsed_subject = subject
            .as_deref()
            .map_or(Subject::Opaque, |s| Subject::parse(kind, s));
        let derived = parsed_subject.derived();

        let endpoint_type = record
            .additional_event_data
            .as_ref()
            .and_then(|d| d.request_details.as_ref())
            .and_then(|d| d.endpoint_type.clone())
            .or_else(|| {
                let host = record
                    .tls_details
                    .as_ref()?
                    .client_provided_host_header
                    .as_deref()?;
                Some(
                    if host == "sts.amazonaws.com" {
                        "global"
                    } else {
                        "regional"
                    }
                    .to_owned(),
                )
            });
        let user_agent = record.user_agent.clone();
        let github_run_id = user_agent
            .as_deref()
            .and_then(|ua| user_agent_metadata(ua, "md/run_id#"));
        let github_run_attempt = user_agent
            .as_deref()
            .and_then(|ua| user_agent_metadata(ua, "md/attempt#"));

        Claims {
            event_id: record.event_id.clone().or_else(|| event.envelope_id.clone()),
            event_time: record.event_time.clone(),
            request_id: record.request_id.clone(),
            account_id,
            region: record
                .aws_region
                .clone()
                .or_else(|| event.envelope_region.clone()),
            outcome: if record.error_code.is_some() {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            error_code: record.error_code.clone(),
            error_message: record.error_message.clone(),
            role_arn,
            role_name,
            provider,
            subject,
            audience,
            parsed_subject,
            derived,
            session_name: request.role_session_name.clone(),
            duration_seconds: request.duration_seconds,
            session_tags: request.principal_tags.clone().unwrap_or_default(),
            source_identity: request.source_identity.clone(),
            source_ip: record.source_ip_address.clone(),
            user_agent,
            endpoint_type,
            github_run_id,
            github_run_attempt,
        }
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// `arn:aws:iam::123:role/path/name` gives `name`.
pub fn role_name_of(arn: &str) -> Option<String> {
    let (_, path) = arn.split_once(":role/")?;
    path.rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

pub fn account_of_arn(arn: &str) -> Option<String> {
    let account = arn.split(':').nth(4)?;
    (!account.is_empty()).then(|| account.to_owned())
}

/// Without `identityProvider`: the provider ARN is the part of `principalId` up to the
/// first `:` after `oidc-provider/` (a provider URL holds no colon).
fn provider_from_principal_id(principal_id: &str) -> Option<Provider> {
    let start = principal_id.find(":oidc-provider/")? + ":oidc-provider/".len();
    let end = principal_id[start..]
        .find(':')
        .map_or(principal_id.len(), |i| start + i);
    Provider::parse(&principal_id[..end])
}

/// `principalId` is `<provider>:<aud>:<sub>`: strip the known prefix and suffix. The
/// `aud` and `sub` both may hold colons, so never split on `:`.
fn audience_from_principal_id(
    principal_id: &str,
    provider: &Provider,
    subject: Option<&str>,
) -> Option<String> {
    let rest = principal_id
        .strip_prefix(provider.principal())?
        .strip_prefix(':')?;
    let audience = match subject {
        Some(sub) => rest.strip_suffix(sub)?.strip_suffix(':')?,
        None => {
            let scheme = if rest.starts_with("https://") || rest.starts_with("http://") {
                rest.find("//")? + 2
            } else {
                0
            };
            &rest[..scheme + rest[scheme..].find(':')?]
        }
    };
    (!audience.is_empty()).then(|| audience.to_owned())
}

/// `md/run_id#123` in configure-aws-credentials' user agent (v6.2.0 and later).
fn user_agent_metadata(user_agent: &str, prefix: &str) -> Option<String> {
    let start = user_agent.find(prefix)? + prefix.len();
    user_agent[start..]
        .split_whitespace()
        .next()
        .filter(|v| !v.is_empty() && v.len() <= 64)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{CloudTrailRecord, Resource};

    const GITHUB: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

    fn event(identity: UserIdentity) -> WebIdentityEvent {
        WebIdentityEvent {
            record: CloudTrailRecord {
                user_identity: Some(identity),
                ..CloudTrailRecord::default()
            },
            ..WebIdentityEvent::default()
        }
    }

    #[test]
    fn audience_is_what_lies_between_provider_and_subject() {
        let claims = Claims::from_event(&event(UserIdentity {
            principal_id: Some(format!(
                "{GITHUB}:https://github.com/acme:repo:acme/x:ref:refs/heads/main"
            )),
            user_name: Some("repo:acme/x:ref:refs/heads/main".into()),
            identity_provider: Some(GITHUB.into()),
            ..UserIdentity::default()
        }));
        assert_eq!(claims.audience.as_deref(), Some("https://github.com/acme"));
        assert_eq!(
            claims.provider.as_ref().map(|p| p.url.as_str()),
            Some("token.actions.githubusercontent.com")
        );
        assert_eq!(claims.derived.repository.as_deref(), Some("acme/x"));
    }

    #[test]
    fn provider_and_subject_recovered_from_principal_id_alone() {
        let claims = Claims::from_event(&event(UserIdentity {
            principal_id: Some(format!("{GITHUB}:sts.amazonaws.com:repo:acme/x:pull_request")),
            ..UserIdentity::default()
        }));
        assert_eq!(claims.provider.and_then(|p| p.arn).as_deref(), Some(GITHUB));
        assert_eq!(claims.audience.as_deref(), Some("sts.amazonaws.com"));
        assert_eq!(claims.subject.as_deref(), Some("repo:acme/x:pull_request"));
    }

    #[test]
    fn enterprise_slug_and_built_in_providers() {
        let slug =
            Provider::parse("arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com/acme").unwrap();
        assert_eq!(
            (slug.url.as_str(), slug.kind),
            ("token.actions.githubusercontent.com/acme", ProviderKind::GitHub)
        );
        let ghes =
            Provider::parse("arn:aws:iam::1:oidc-provider/github.acme.internal/_services/token").unwrap();
        assert_eq!(ghes.kind, ProviderKind::GitHub);
        let google = Provider::parse("accounts.google.com").unwrap();
        assert_eq!(
            (google.arn.as_deref(), google.principal()),
            (None, "accounts.google.com")
        );
        assert_eq!(
            slug.arn_in("999"),
            "arn:aws:iam::999:oidc-provider/token.actions.githubusercontent.com/acme"
        );
    }

    #[test]
    fn role_falls_back_to_resources_and_run_id_comes_from_user_agent() {
        let mut e = event(UserIdentity::default());
        e.record.request_parameters = Some(RequestParameters::default());
        e.record.resources = Some(vec![Resource {
            account_id: Some("111122223333".into()),
            resource_type: Some("AWS::IAM::Role".into()),
            arn: Some("arn:aws:iam::111122223333:role/ci/deploy".into()),
        }]);
        e.record.user_agent = Some("aws-sdk-js/3.1 configure-aws-credentials-for-github-actions md/action#__run md/run_id#16123456789 md/attempt#2".into());
        let claims = Claims::from_event(&e);
        assert_eq!(claims.role_name.as_deref(), Some("deploy"));
        assert_eq!(claims.account_id.as_deref(), Some("111122223333"));
        assert_eq!(claims.github_run_id.as_deref(), Some("16123456789"));
        assert_eq!(claims.github_run_attempt.as_deref(), Some("2"));
        assert_eq!(claims.outcome, Outcome::Success);
    }
}
