//! An account's IAM state in AWS's own shapes: `aws iam get-role`,
//! `aws iam get-open-id-connect-provider`, `get-account-authorization-details`, or what
//! `oidc-watch snapshot` writes.
//!
//! A list proves that something is absent only when the snapshot says the list is
//! complete ([`Completeness`]): a section that is missing is unknown, never empty. A file
//! without `OpenIDConnectProviders` says nothing about the account's providers, and a
//! role not listed is not proof that the role does not exist unless `Complete.Roles` says
//! so (or IAM answered `NoSuchEntity` for it).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{audit, Finding};
use crate::claims::account_of_arn;
use crate::evaluate::ASSUME_ROLE_WITH_WEB_IDENTITY;
use crate::pattern::like_ignore_case;
use crate::policy::{PolicyDocument, PolicyError, Principal};

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
    /// Roles that exist but whose trust policy does not concern a web identity
    /// ([`concerns_web_identity`]): `oidc-watch snapshot` names them instead of listing them.
    pub roles_without_web_identity: Vec<String>,
    pub providers: Vec<OidcProvider>,
    /// What leaving something out of these lists proves.
    pub complete: Completeness,
}

/// What a snapshot's lists prove by omission. Nothing, unless the snapshot says so.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Completeness {
    /// Every role of the account is in `roles` or `roles_without_web_identity`: a role in
    /// neither does not exist (`"Complete": {"Roles": true}`).
    pub all_roles: bool,
    /// Role names IAM was asked about one by one (`GetRole`): one of these in neither list
    /// was `NoSuchEntity` (`"Complete": {"Roles": ["name", ...]}`, and the live adapter).
    pub looked_up_roles: Vec<String>,
    /// Every OIDC provider of the account is in `providers`: true when the snapshot has
    /// an `OpenIDConnectProviders` list (even an empty one), unless
    /// `"Complete": {"OpenIDConnectProviders": false}` says the list is partial.
    pub all_providers: bool,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OidcProvider {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default)]
    pub url: String,
    #[serde(rename = "ClientIDList", default)]
    pub client_ids: Vec<String>,
    #[serde(default)]
    pub thumbprint_list: Vec<String>,
}

/// The snapshot file: what [`AccountSnapshot::from_json`] reads and `oidc-watch snapshot`
/// writes (README, "Account snapshots").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapshotFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<RoleEntry>,
    /// `get-account-authorization-details`' name for the roles: read, never written.
    #[serde(default, skip_serializing)]
    pub role_detail_list: Vec<RoleEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles_without_web_identity: Vec<String>,
    /// `None` (the key is absent): the providers are unknown. A list, even an empty one:
    /// these are the account's providers.
    #[serde(
        rename = "OpenIDConnectProviders",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub providers: Option<Vec<OidcProvider>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complete: Option<CompleteMarkers>,
}

/// One role: the fields of `aws iam get-role`'s `Role` that the diagnosis reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleEntry {
    pub role_name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<u64>,
    /// JSON, or the URL-encoded JSON string the IAM API returns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_role_policy_document: Option<Value>,
}

/// `"Complete": {"Roles": true | ["name", ...], "OpenIDConnectProviders": true | false}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompleteMarkers {
    #[serde(default)]
    pub roles: RolesMarker,
    #[serde(
        rename = "OpenIDConnectProviders",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub providers: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RolesMarker {
    /// `true`: every role of the account is listed (or named in `RolesWithoutWebIdentity`).
    All(bool),
    /// The names that were looked up: one of them not listed does not exist.
    Named(Vec<String>),
}

impl Default for RolesMarker {
    fn default() -> Self {
        RolesMarker::All(false)
    }
}

/// IAM's default when a role does not say.
pub const DEFAULT_MAX_SESSION_DURATION: u64 = 3600;
/// IAM's largest MaxSessionDuration: what a snapshot that does not give the limit
/// (get-account-authorization-details never does) is judged by, so a missing limit never
/// makes a `SessionDurationExceeded`.
pub const LARGEST_MAX_SESSION_DURATION: u64 = 43_200;

impl AccountSnapshot {
    pub fn from_json(text: &str) -> Result<Self, SnapshotError> {
        Self::from_file(serde_json::from_str(text)?)
    }

    pub fn from_file(file: SnapshotFile) -> Result<Self, SnapshotError> {
        let roles: Vec<Role> = file
            .roles
            .into_iter()
            .chain(file.role_detail_list)
            .map(RoleEntry::into_role)
            .collect();
        let providers_given = file.providers.is_some();
        let providers: Vec<OidcProvider> = file
            .providers
            .unwrap_or_default()
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
        let account_id = file
            .account_id
            .or_else(|| roles.iter().find_map(|r| account_of_arn(&r.arn)))
            .or_else(|| providers.iter().find_map(|p| account_of_arn(p.arn.as_deref()?)))
            .ok_or(SnapshotError::NoAccount)?;
        let markers = file.complete.unwrap_or_default();
        let (all_roles, looked_up_roles) = match markers.roles {
            RolesMarker::All(all) => (all, Vec::new()),
            RolesMarker::Named(names) => (false, names),
        };
        Ok(AccountSnapshot {
            account_id,
            roles,
            roles_without_web_identity: file.roles_without_web_identity,
            providers,
            complete: Completeness {
                all_roles,
                looked_up_roles,
                all_providers: markers.providers.unwrap_or(providers_given),
            },
        })
    }

    /// What IAM answered for one event: `GetRole` for `role_name` (`None`: `NoSuchEntity`)
    /// and every provider `ListOpenIDConnectProviders` listed. The role not being there is
    /// then proof that it does not exist; other roles are unknown.
    pub fn from_iam(
        account_id: &str,
        role_name: &str,
        role: Option<Role>,
        providers: Vec<OidcProvider>,
    ) -> Self {
        AccountSnapshot {
            account_id: account_id.to_owned(),
            roles: role.into_iter().collect(),
            roles_without_web_identity: Vec::new(),
            providers,
            complete: Completeness {
                all_roles: false,
                looked_up_roles: vec![role_name.to_owned()],
                all_providers: true,
            },
        }
    }

    /// Adds another snapshot of the same account: the lists are joined, and a list is
    /// complete if either snapshot says so (a superset of a complete list is complete).
    pub fn merge(&mut self, other: AccountSnapshot) {
        self.roles.extend(other.roles);
        self.roles_without_web_identity
            .extend(other.roles_without_web_identity);
        self.providers.extend(other.providers);
        self.complete.all_roles |= other.complete.all_roles;
        self.complete
            .looked_up_roles
            .extend(other.complete.looked_up_roles);
        self.complete.all_providers |= other.complete.all_providers;
    }

    /// Roles are looked up by name: IAM role names are unique per account and
    /// case-insensitive.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// The role exists, and the snapshot left it out because its trust policy does not
    /// concern a web identity.
    pub fn is_role_without_web_identity(&self, name: &str) -> bool {
        self.role(name).is_none()
            && self
                .roles_without_web_identity
                .iter()
                .any(|r| r.eq_ignore_ascii_case(name))
    }

    /// The snapshot proves that the account has no role of this name.
    pub fn is_role_absent(&self, name: &str) -> bool {
        self.role(name).is_none()
            && !self.is_role_without_web_identity(name)
            && (self.complete.all_roles
                || self
                    .complete
                    .looked_up_roles
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(name)))
    }

    /// The account's provider for this issuer URL.
    pub fn provider(&self, url: &str) -> Option<&OidcProvider> {
        self.providers.iter().find(|p| p.url.eq_ignore_ascii_case(url))
    }

    /// The snapshot proves that the account has no provider for this issuer URL.
    pub fn is_provider_absent(&self, url: &str) -> bool {
        self.complete.all_providers && self.provider(url).is_none()
    }
}

impl RoleEntry {
    fn into_role(self) -> Role {
        let trust_policy = match &self.assume_role_policy_document {
            Some(document) => PolicyDocument::from_value(document),
            None => Err(PolicyError::NoStatement),
        };
        let max_session_duration = self.max_session_duration.unwrap_or(LARGEST_MAX_SESSION_DURATION);
        Role::new(self.role_name, self.arn, max_session_duration, trust_policy)
    }
}

/// Whether a trust policy (JSON, or the URL-encoded JSON IAM returns) concerns a web
/// identity, so that a snapshot must carry it: a statement names a federated principal,
/// everyone, or a `NotPrincipal`; an `Action` covers `sts:AssumeRoleWithWebIdentity` or
/// there is a `NotAction`; or the policy mentions an OIDC provider or the action anywhere
/// (a condition key, a mistyped principal). A policy that cannot be read is kept too. A
/// role for which this is false cannot be assumed with `AssumeRoleWithWebIdentity` at all.
pub fn concerns_web_identity(document: &Value) -> bool {
    let Ok(policy) = PolicyDocument::from_value(document) else {
        return true;
    };
    let statement_concerns = policy.statements.iter().any(|s| {
        let principal = match &s.principal {
            Some(Principal::Everyone) => true,
            Some(Principal::Typed { federated, other }) => {
                !federated.is_empty() || other.iter().any(|p| p == "*")
            }
            None => false,
        };
        let action = s.not_action.is_some()
            || s.action
                .iter()
                .flatten()
                .any(|a| like_ignore_case(a, ASSUME_ROLE_WITH_WEB_IDENTITY));
        principal || s.not_principal.is_some() || action
    });
    statement_concerns || {
        let text = match document {
            Value::String(text) => percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .to_ascii_lowercase(),
            other => other.to_string().to_ascii_lowercase(),
        };
        text.contains(":oidc-provider/") || text.contains("assumerolewithwebidentity")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `aws iam get-account-authorization-details --filter Role` for the sample account.
    const AUTHORIZATION_DETAILS: &str =
        include_str!("../../cli/tests/fixtures/accounts/111122223333-authorization-details.json");

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
        assert_eq!(
            role.max_session_duration, LARGEST_MAX_SESSION_DURATION,
            "a limit the snapshot does not give is no evidence of a lower one"
        );
        assert!(role.trust_policy.as_ref().unwrap().statements.is_empty());
        assert_eq!(
            snapshot.provider("gitlab.com").unwrap().client_ids,
            ["https://gitlab.com"]
        );
        // The providers were given: they are all there is. The roles were not said to be.
        assert!(snapshot.is_provider_absent("token.actions.githubusercontent.com"));
        assert!(!snapshot.is_role_absent("other"));
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

    #[test]
    fn an_absent_section_is_unknown_never_empty() {
        // What `aws iam get-account-authorization-details --filter Role` writes: roles, no
        // providers (that call never returns them), and no word on completeness.
        let snapshot = AccountSnapshot::from_json(AUTHORIZATION_DETAILS).unwrap();
        assert_eq!(snapshot.account_id, "111122223333");
        assert!(snapshot.role("gha-deploy-prod").is_some());
        assert!(snapshot.providers.is_empty());
        assert!(!snapshot.complete.all_providers);
        assert!(!snapshot.is_provider_absent("token.actions.githubusercontent.com"));
        assert!(!snapshot.is_role_absent("gha-deploy-prdo"));

        // An explicit empty list is knowledge: the account has no provider.
        let none = AccountSnapshot::from_json(r#"{"AccountId":"1","OpenIDConnectProviders":[]}"#).unwrap();
        assert!(none.is_provider_absent("gitlab.com"));
        // null is the same as absent.
        let null = AccountSnapshot::from_json(r#"{"AccountId":"1","OpenIDConnectProviders":null}"#).unwrap();
        assert!(!null.is_provider_absent("gitlab.com"));
        // A list said to be partial proves nothing by omission.
        let partial = AccountSnapshot::from_json(
            r#"{"AccountId":"1","OpenIDConnectProviders":[{"Url":"gitlab.com"}],
                "Complete":{"OpenIDConnectProviders":false}}"#,
        )
        .unwrap();
        assert!(partial.provider("gitlab.com").is_some());
        assert!(!partial.is_provider_absent("app.terraform.io"));
    }

    #[test]
    fn complete_markers_say_what_omission_proves() {
        let all = AccountSnapshot::from_json(
            r#"{"AccountId":"1","Roles":[{"RoleName":"a","Arn":"arn:aws:iam::1:role/a"}],
                "RolesWithoutWebIdentity":["Admin"],"OpenIDConnectProviders":[],
                "Complete":{"Roles":true,"OpenIDConnectProviders":true}}"#,
        )
        .unwrap();
        assert!(all.complete.all_roles && all.complete.all_providers);
        assert!(all.is_role_absent("b"));
        assert!(!all.is_role_absent("A"), "listed");
        assert!(!all.is_role_absent("admin"), "exists, without web identity");
        assert!(all.is_role_without_web_identity("admin"));

        let named = AccountSnapshot::from_json(
            r#"{"AccountId":"1","Roles":[{"RoleName":"a","Arn":"arn:aws:iam::1:role/a"}],
                "Complete":{"Roles":["a","Typo"]}}"#,
        )
        .unwrap();
        assert!(named.is_role_absent("typo"), "looked up and not found");
        assert!(!named.is_role_absent("never-asked"));
        assert!(!named.is_provider_absent("gitlab.com"), "no providers given");

        // "Complete": {"OpenIDConnectProviders": true} without a list: there are none.
        let declared =
            AccountSnapshot::from_json(r#"{"AccountId":"1","Complete":{"OpenIDConnectProviders":true}}"#)
                .unwrap();
        assert!(declared.is_provider_absent("gitlab.com"));
        // Not a bool or a list of names: an error, not a guess.
        assert!(AccountSnapshot::from_json(r#"{"AccountId":"1","Complete":{"Roles":"yes"}}"#).is_err());
    }

    #[test]
    fn the_live_adapter_knows_the_role_it_asked_for_and_every_provider() {
        let absent = AccountSnapshot::from_iam("1", "Deleted-Role", None, Vec::new());
        assert!(absent.is_role_absent("deleted-role"));
        assert!(!absent.is_role_absent("another-role"));
        assert!(absent.is_provider_absent("gitlab.com"));
    }

    #[test]
    fn merged_snapshots_keep_what_either_knows() {
        let mut roles_only = AccountSnapshot::from_json(AUTHORIZATION_DETAILS).unwrap();
        let sample = AccountSnapshot::from_json(include_str!(
            "../../../events/accounts/111122223333-github-acme.json"
        ))
        .unwrap();
        assert!(sample.complete.all_roles && sample.complete.all_providers);
        roles_only.merge(sample);
        assert!(roles_only.is_provider_absent("token.actions.githubusercontent.com/acme-enterprise"));
        assert!(!roles_only.is_provider_absent("token.actions.githubusercontent.com"));
        assert!(roles_only.is_role_absent("gha-deploy-prdo"));
    }

    /// Every sample event of the sample account, with the complete sample snapshot and with
    /// only the roles as `get-account-authorization-details` gives them.
    fn sample_events_of_111122223333() -> Vec<(String, crate::WebIdentityEvent)> {
        let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
        let mut pending = vec![events.clone()];
        let mut found = Vec::new();
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                let relative = path.strip_prefix(&events).unwrap().to_string_lossy().into_owned();
                if relative.starts_with("accounts") || relative.starts_with("replay") {
                    continue;
                }
                if path.is_dir() {
                    pending.push(path);
                } else if relative.ends_with(".json") {
                    for item in crate::read_input(&std::fs::read(&path).unwrap()) {
                        if let Ok(crate::InputItem::Event(event)) = item {
                            if event.envelope_account.as_deref() == Some("111122223333") {
                                found.push((relative.clone(), *event));
                            }
                        }
                    }
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    #[test]
    fn missing_evidence_is_never_certain() {
        use crate::diagnose::{diagnose, Cause, Confidence};
        let complete = AccountSnapshot::from_json(include_str!(
            "../../../events/accounts/111122223333-github-acme.json"
        ))
        .unwrap();
        let roles_only = AccountSnapshot::from_json(AUTHORIZATION_DETAILS).unwrap();
        let events = sample_events_of_111122223333();
        assert!(events.len() >= 20, "{}", events.len());
        for (name, event) in &events {
            let full = diagnose(event, Some(&complete));
            let partial = diagnose(event, Some(&roles_only));
            let code = event.record.error_code.as_deref();
            if full.role_name.is_none() {
                // No role, no snapshot evidence either way.
                assert_eq!(
                    (partial.cause, partial.confidence),
                    (full.cause, full.confidence),
                    "{name}"
                );
            } else if code == Some("AccessDenied") {
                // Neither a provider nor a role is proven missing by a list that is not complete.
                assert!(
                    !matches!(
                        partial.cause,
                        Cause::OidcProviderMissing
                            | Cause::AudienceNotInProvider
                            | Cause::ThumbprintMismatch
                            | Cause::RoleNotFound
                    ),
                    "{name}: {:?}: {}",
                    partial.cause,
                    partial.explanation
                );
                assert_ne!(
                    partial.confidence,
                    Confidence::Certain,
                    "{name}: {}",
                    partial.explanation
                );
                if full.cause == Cause::RoleNotFound {
                    assert!(
                        partial.explanation.contains("does not list role"),
                        "{name}: {}",
                        partial.explanation
                    );
                    assert!(
                        partial.explanation.contains("gha-deploy-prod"),
                        "{name}: the near name is still offered"
                    );
                } else {
                    // The trust policy still decides, and the explanation says what was not checked.
                    assert_eq!(partial.cause, full.cause, "{name}: {}", partial.explanation);
                    assert_eq!(partial.subject_mismatch, full.subject_mismatch, "{name}");
                    assert!(
                        partial.explanation.contains("does not list its OIDC providers"),
                        "{name}: {}",
                        partial.explanation
                    );
                }
            } else if full.cause == Cause::OidcProviderMissing {
                // STS's own message still says so, but the snapshot cannot confirm it.
                assert_eq!(full.confidence, Confidence::Certain, "{name}");
                assert_eq!(partial.cause, Cause::OidcProviderMissing, "{name}");
                assert_eq!(partial.confidence, Confidence::Probable, "{name}");
            } else {
                assert_eq!(partial.cause, full.cause, "{name}: {}", partial.explanation);
            }
        }
    }

    #[test]
    fn a_role_not_listed_is_not_found_only_when_the_list_is_complete() {
        use crate::diagnose::{diagnose, Cause, Confidence};
        let (_, typo) = sample_events_of_111122223333()
            .into_iter()
            .find(|(name, _)| name.starts_with("role-not-found"))
            .unwrap();
        let complete = AccountSnapshot::from_json(include_str!(
            "../../../events/accounts/111122223333-github-acme.json"
        ))
        .unwrap();
        let found = diagnose(&typo, Some(&complete));
        assert_eq!(
            (found.cause, found.confidence),
            (Cause::RoleNotFound, Confidence::Certain)
        );
        // IAM said NoSuchEntity for this very name: as certain.
        let live = AccountSnapshot::from_iam(
            "111122223333",
            "gha-deploy-prdo",
            None,
            complete.providers.clone(),
        );
        let from_iam = diagnose(&typo, Some(&live));
        assert_eq!(
            (from_iam.cause, from_iam.confidence),
            (Cause::RoleNotFound, Confidence::Certain)
        );
        // The same list without "Complete": the role may exist.
        let mut unsure = complete.clone();
        unsure.complete = Completeness::default();
        let guessed = diagnose(&typo, Some(&unsure));
        assert_ne!(guessed.cause, Cause::RoleNotFound);
        assert_eq!(guessed.confidence, Confidence::Unknown);
        assert!(
            !guessed.explanation.contains("no account snapshot"),
            "{}",
            guessed.explanation
        );
        assert!(
            guessed
                .fix
                .as_deref()
                .unwrap_or("")
                .contains("oidc-watch snapshot"),
            "{:?}",
            guessed.fix
        );
        // A role that exists but trusts no web identity.
        let mut named = unsure.clone();
        named.complete.all_roles = true;
        named
            .roles_without_web_identity
            .push("gha-deploy-prdo".to_owned());
        let exists = diagnose(&typo, Some(&named));
        assert_eq!(
            (exists.cause, exists.confidence),
            (Cause::PrincipalMismatch, Confidence::Probable)
        );
    }

    #[test]
    fn the_written_format_reads_back_the_same() {
        let file = SnapshotFile {
            account_id: Some("111122223333".to_owned()),
            roles: vec![RoleEntry {
                role_name: "gha-deploy".to_owned(),
                arn: "arn:aws:iam::111122223333:role/gha-deploy".to_owned(),
                path: Some("/".to_owned()),
                max_session_duration: Some(7200),
                assume_role_policy_document: Some(serde_json::json!({
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow",
                        "Principal": {"Federated": "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"},
                        "Action": "sts:AssumeRoleWithWebIdentity"}]})),
            }],
            role_detail_list: Vec::new(),
            roles_without_web_identity: vec!["admin".to_owned()],
            providers: Some(vec![OidcProvider {
                arn: Some(
                    "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com".to_owned(),
                ),
                url: "token.actions.githubusercontent.com".to_owned(),
                client_ids: vec!["sts.amazonaws.com".to_owned()],
                thumbprint_list: Vec::new(),
            }]),
            complete: Some(CompleteMarkers {
                roles: RolesMarker::All(true),
                providers: Some(true),
            }),
        };
        let text = serde_json::to_string_pretty(&file).unwrap();
        for key in [
            "\"AccountId\"",
            "\"Roles\"",
            "\"RolesWithoutWebIdentity\"",
            "\"OpenIDConnectProviders\"",
            "\"Complete\"",
            "\"ClientIDList\"",
        ] {
            assert!(text.contains(key), "{key} in {text}");
        }
        let read: SnapshotFile = serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&read).unwrap(),
            serde_json::to_value(&file).unwrap()
        );
        let snapshot = AccountSnapshot::from_json(&text).unwrap();
        assert_eq!(snapshot.role("gha-deploy").unwrap().max_session_duration, 7200);
        assert!(snapshot.role("gha-deploy").unwrap().trust_policy.is_ok());
        assert_eq!(snapshot.providers, file.providers.unwrap());
        assert!(snapshot.is_role_absent("gha-deploy-prdo") && snapshot.is_role_without_web_identity("admin"));
        assert!(snapshot.is_provider_absent("gitlab.com"));
    }

    #[test]
    fn which_trust_policies_concern_a_web_identity() {
        let concerns = |policy: serde_json::Value| concerns_web_identity(&policy);
        let statement = |s: serde_json::Value| serde_json::json!({"Version": "2012-10-17", "Statement": [s]});
        // The usual OIDC role, and one with the wrong action: both must be in a snapshot.
        assert!(concerns(statement(serde_json::json!({"Effect": "Allow",
            "Principal": {"Federated": "arn:aws:iam::1:oidc-provider/gitlab.com"}, "Action": "sts:AssumeRole"}))));
        assert!(concerns(statement(serde_json::json!({"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:*"}))));
        assert!(concerns(statement(
            serde_json::json!({"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"})
        )));
        assert!(concerns(statement(serde_json::json!({"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"token.actions.githubusercontent.com:sub": "x"}},
            "Resource": "arn:aws:iam::1:oidc-provider/token.actions.githubusercontent.com"}))));
        assert!(concerns(serde_json::json!({"Statement": "unreadable"})));
        // URL-encoded, as ListRoles returns it.
        assert!(concerns(serde_json::Value::String(
            "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Federated%22%3A%22x%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D".to_owned()
        )));
        // A service role and an account role do not.
        assert!(!concerns(statement(serde_json::json!({"Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}))));
        assert!(!concerns(statement(serde_json::json!({"Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}))));
    }
}
