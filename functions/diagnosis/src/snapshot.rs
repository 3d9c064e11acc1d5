//! An account's IAM state in AWS's own shapes: `aws iam get-role`,
//! `aws iam get-open-id-connect-provider`, or `get-account-authorization-details`.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::audit::{audit, Finding};
use crate::claims::account_of_arn;
use crate::policy::{PolicyDocument, PolicyError};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("account snapshot is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("account snapshot names no account: give AccountId, or roles with ARNs")]
    NoAccount,
}

#[derive(Debug, Clone)]
pub struct AccountSnapshot {
    pub account_id: String,
    pub roles: Vec<Role>,
    pub providers: Vec<OidcProvider>,
}

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub arn: String,
    pub max_session_duration: u64,
    /// A policy IAM would not store still lets every other role be diagnosed.
    pub trust_policy: Result<PolicyDocument, PolicyError>,
    /// The audit of the trust policy: it depends on the role alone, so it is done once.
    pub findings: Arc<[Finding]>,
}

impl Role {
    pub fn new(
        name: String,
        arn: String,
        max_session_duration: u64,
        trust_policy: Result<PolicyDocument, PolicyError>,
    ) -> Self {
        let findings = trust_policy.as_ref().map(audit).unwrap_or_default().into();
        Role {
            name,
            arn,
            max_session_duration,
            trust_policy,
            findings,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OidcProvider {
    pub arn: Option<String>,
    #[serde(default)]
    pub url: String,
    #[serde(rename = "ClientIDList", default)]
    pub client_ids: Vec<String>,
    #[serde(default)]
    pub thumbprint_list: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawSnapshot {
    account_id: Option<String>,
    #[serde(default)]
    roles: Vec<RawRole>,
    #[serde(default)]
    role_detail_list: Vec<RawRole>,
    #[serde(rename = "OpenIDConnectProviders", default)]
    providers: Vec<OidcProvider>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawRole {
    role_name: String,
    arn: String,
    max_session_duration: Option<u64>,
    assume_role_policy_document: Option<Value>,
}

/// IAM's default when a role does not say.
pub const DEFAULT_MAX_SESSION_DURATION: u64 = 3600;

impl AccountSnapshot {
    pub fn from_json(text: &str) -> Result<Self, SnapshotError> {
        let raw: RawSnapshot = serde_json::from_str(text)?;
        let roles: Vec<Role> = raw
            .roles
            .into_iter()
            .chain(raw.role_detail_list)
            .map(|r| {
                let trust_policy = match &r.assume_role_policy_document {
                    Some(document) => PolicyDocument::from_value(document),
                    None => Err(PolicyError::NoStatement),
                };
                let max_session_duration = r.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_DURATION);
                Role::new(r.role_name, r.arn, max_session_duration, trust_policy)
            })
            .collect();
        let providers: Vec<OidcProvider> = raw
            .providers
            .into_iter()
            .map(|mut p| {
                p.url = p.url.trim_start_matches("https://").to_owned();
                if p.url.is_empty() {
                    if let Some((_, url)) = p.arn.as_deref().and_then(|a| a.split_once(":oidc-provider/")) {
                        p.url = url.to_owned();
                    }
                }
                p
            })
            .collect();
        let account_id = raw
            .account_id
            .or_else(|| roles.iter().find_map(|r| account_of_arn(&r.arn)))
            .or_else(|| providers.iter().find_map(|p| account_of_arn(p.arn.as_deref()?)))
            .ok_or(SnapshotError::NoAccount)?;
        Ok(AccountSnapshot {
            account_id,
            roles,
            providers,
        })
    }

    /// Roles are looked up by name: IAM role names are unique per account and
    /// case-insensitive.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// The account's provider for this issuer URL.
    pub fn provider(&self, url: &str) -> Option<&OidcProvider> {
        self.providers.iter().find(|p| p.url.eq_ignore_ascii_case(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_design_shape_with_encoded_policy() {
        let snapshot = AccountSnapshot::from_json(
            r#"{"AccountId":"1","Roles":[{"RoleName":"Deploy","Arn":"arn:aws:iam::1:role/Deploy",
                "AssumeRolePolicyDocument":"%7B%22Statement%22%3A%5B%5D%7D"}],
              "OpenIDConnectProviders":[{"Arn":"arn:aws:iam::1:oidc-provider/gitlab.com","Url":"https://gitlab.com",
                "ClientIDList":["https://gitlab.com"]}]}"#,
        )
        .unwrap();
        let role = snapshot.role("deploy").unwrap();
        assert_eq!(role.max_session_duration, 3600);
        assert!(role.trust_policy.as_ref().unwrap().statements.is_empty());
        assert_eq!(
            snapshot.provider("gitlab.com").unwrap().client_ids,
            ["https://gitlab.com"]
        );
    }

    #[test]
    fn reads_account_authorization_details() {
        let snapshot = AccountSnapshot::from_json(
            r#"{"RoleDetailList":[{"RoleName":"x","Arn":"arn:aws:iam::777:role/x","MaxSessionDuration":7200,
                "AssumeRolePolicyDocument":{"Statement":"bad"}}]}"#,
        )
        .unwrap();
        assert_eq!(snapshot.account_id, "777");
        assert!(snapshot.role("x").unwrap().trust_policy.is_err());
        assert!(matches!(
            AccountSnapshot::from_json("{}"),
            Err(SnapshotError::NoAccount)
        ));
    }
}
