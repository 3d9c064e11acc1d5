//! One account's IAM state as a [`SnapshotFile`]: what `oidc-watch snapshot` writes, what
//! `oidc-watch audit --live` and the scheduled auditor judge.
//!
//! * `AccountId`: STS `GetCallerIdentity` (with the read role's credentials when one is
//!   assumed: the account IAM answers for, never the one asked for).
//! * `Roles`: with names, `GetRole` for each (`Complete.Roles` lists the names, so one that
//!   was `NoSuchEntity` is known not to exist); without, every role from the paginated
//!   `ListRoles` whose trust policy concerns a web identity ([`concerns_web_identity`]),
//!   the others named in `RolesWithoutWebIdentity`, and `Complete.Roles: true`.
//! * `OpenIDConnectProviders`: `ListOpenIDConnectProviders`, then
//!   `GetOpenIDConnectProvider` for each; `Complete.OpenIDConnectProviders: true`.
//!
//! Another account is read through `arn:aws:iam::<account>:role/<read-role>` (STS
//! `AssumeRole`), as [`crate::iam::IamAccountState`] reads it; the caller's own account
//! with the caller's credentials.

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use diagnosis::snapshot::{concerns_web_identity, CompleteMarkers, RoleEntry, RolesMarker, SnapshotFile};
use serde_json::Value;

/// The IAM operations [`read_account_snapshot`] calls.
pub const IAM_OPERATIONS: &[&str] = &[
    "GetOpenIDConnectProvider",
    "GetRole",
    "ListOpenIDConnectProviders",
    "ListRoles",
];
/// The STS operations [`read_account_snapshot`] calls.
pub const STS_OPERATIONS: &[&str] = &["AssumeRole", "GetCallerIdentity"];

/// How to reach another account: assume `arn:aws:iam::<account>:role/<role_name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRole {
    /// Twelve digits.
    pub account: String,
    pub role_name: String,
    /// The STS session name, so the account's CloudTrail says who read it.
    pub session_name: String,
}

/// Which roles to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleSelection<'a> {
    /// Every role (`ListRoles`).
    All,
    /// These names (`GetRole` each), unique without regard to case.
    Named(&'a [String]),
}

#[derive(Debug, thiserror::Error)]
pub enum AccountSnapshotError {
    /// An IAM or STS call failed. `code` is AWS's error code, `None` for a transport,
    /// timeout or credentials failure.
    #[error("{call}: {detail}")]
    Call {
        call: String,
        code: Option<String>,
        detail: String,
    },
    /// The providers could not be read (the message names the call).
    #[error("{0}")]
    Providers(String),
    #[error("{0:?} is not an AWS account ID (twelve digits)")]
    NotAnAccount(String),
    /// The read role's credentials are for another account than the one asked for.
    #[error("AssumeRole {role_arn} gave credentials for account {actual}, not {expected}")]
    WrongAccount {
        role_arn: String,
        expected: String,
        actual: String,
    },
    #[error("{0}")]
    Incomplete(String),
}

impl AccountSnapshotError {
    /// IAM or STS refused for lack of permission.
    pub fn is_access_denied(&self) -> bool {
        match self {
            AccountSnapshotError::Call { code, .. } => matches!(
                code.as_deref(),
                Some(
                    "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnauthorizedAccess"
                )
            ),
            AccountSnapshotError::Providers(message) => ["AccessDenied", "Unauthorized"]
                .iter()
                .any(|c| message.contains(c)),
            _ => false,
        }
    }
}

/// Reads one account. With `read_role` for an account other than the caller's, every call
/// but the first `GetCallerIdentity` is made with the read role's credentials.
pub async fn read_account_snapshot(
    config: &aws_config::SdkConfig,
    read_role: Option<&ReadRole>,
    roles: RoleSelection<'_>,
) -> Result<SnapshotFile, AccountSnapshotError> {
    let sts = aws_sdk_sts::Client::new(config);
    let (sts, iam) = match read_role {
        None => (sts, aws_sdk_iam::Client::new(config)),
        Some(read_role) => {
            if !is_account_id(&read_role.account) {
                return Err(AccountSnapshotError::NotAnAccount(read_role.account.clone()));
            }
            if caller_account(&sts).await? == read_role.account {
                (sts, aws_sdk_iam::Client::new(config))
            } else {
                let assumed = assume(&sts, read_role).await?;
                (
                    aws_sdk_sts::Client::from_conf(
                        aws_sdk_sts::config::Builder::from(config)
                            .credentials_provider(assumed.clone())
                            .build(),
                    ),
                    aws_sdk_iam::Client::from_conf(
                        aws_sdk_iam::config::Builder::from(config)
                            .credentials_provider(assumed)
                            .build(),
                    ),
                )
            }
        }
    };
    let account = caller_account(&sts).await?;
    if let Some(read_role) = read_role {
        if account != read_role.account {
            return Err(AccountSnapshotError::WrongAccount {
                role_arn: role_arn(read_role),
                expected: read_role.account.clone(),
                actual: account,
            });
        }
    }
    let (roles, roles_without_web_identity, marker) = match roles {
        RoleSelection::Named(names) => {
            let names = unique_names(names);
            (
                named_roles(&iam, &names).await?,
                Vec::new(),
                RolesMarker::Named(names),
            )
        }
        RoleSelection::All => {
            let (roles, others) = listed_roles(&iam).await?;
            (roles, others, RolesMarker::All(true))
        }
    };
    let providers = crate::iam::fetch_providers(&iam)
        .await
        .map_err(|e| AccountSnapshotError::Providers(e.to_string()))?;
    Ok(SnapshotFile {
        account_id: Some(account),
        roles,
        role_detail_list: Vec::new(),
        roles_without_web_identity,
        providers: Some(providers),
        complete: Some(CompleteMarkers {
            roles: marker,
            providers: Some(true),
        }),
    })
}

/// The names, trimmed, without empty ones and without repeats in another case.
pub fn unique_names(names: &[String]) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        if !unique.iter().any(|u| u.eq_ignore_ascii_case(name)) {
            unique.push(name.to_owned());
        }
    }
    unique
}

fn role_arn(read_role: &ReadRole) -> String {
    format!("arn:aws:iam::{}:role/{}", read_role.account, read_role.role_name)
}

fn is_account_id(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

async fn caller_account(sts: &aws_sdk_sts::Client) -> Result<String, AccountSnapshotError> {
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| call_error("sts:GetCallerIdentity".to_owned(), &e))?;
    identity.account.ok_or_else(|| {
        AccountSnapshotError::Incomplete("sts:GetCallerIdentity returned no account".to_owned())
    })
}

async fn assume(
    sts: &aws_sdk_sts::Client,
    read_role: &ReadRole,
) -> Result<aws_sdk_iam::config::Credentials, AccountSnapshotError> {
    let arn = role_arn(read_role);
    let assumed = sts
        .assume_role()
        .role_arn(&arn)
        .role_session_name(&read_role.session_name)
        .send()
        .await
        .map_err(|e| call_error(format!("sts:AssumeRole {arn}"), &e))?;
    let credentials = assumed.credentials.ok_or_else(|| {
        AccountSnapshotError::Incomplete(format!("sts:AssumeRole {arn} returned no credentials"))
    })?;
    Ok(aws_sdk_iam::config::Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key,
        Some(credentials.session_token),
        None,
        "oidc-watch-read-role",
    ))
}

async fn named_roles(
    iam: &aws_sdk_iam::Client,
    names: &[String],
) -> Result<Vec<RoleEntry>, AccountSnapshotError> {
    let mut roles = Vec::new();
    for name in names {
        if let Some(role) = get_role(iam, name).await? {
            roles.push(role);
        }
    }
    Ok(roles)
}

/// `GetRole`; `None` on `NoSuchEntity`.
async fn get_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<RoleEntry>, AccountSnapshotError> {
    match iam.get_role().role_name(name).send().await {
        Ok(output) => Ok(output.role.map(entry)),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(call_error(format!("iam:GetRole {name:?}"), &error)),
    }
}

/// Every role, through all `ListRoles` pages: those whose trust policy concerns a web
/// identity in full, the names of the others.
async fn listed_roles(
    iam: &aws_sdk_iam::Client,
) -> Result<(Vec<RoleEntry>, Vec<String>), AccountSnapshotError> {
    let mut pages = iam.list_roles().into_paginator().send();
    let mut roles = Vec::new();
    let mut others = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| call_error("iam:ListRoles".to_owned(), &e))?;
        for role in page.roles {
            let listed = entry(role);
            let concerns = listed
                .assume_role_policy_document
                .as_ref()
                .is_none_or(concerns_web_identity);
            if !concerns {
                others.push(listed.role_name);
            } else if listed.max_session_duration.is_none() {
                // ListRoles may leave it out; the diagnosis must not assume IAM's default.
                roles.push(get_role(iam, &listed.role_name).await?.unwrap_or(listed));
            } else {
                roles.push(listed);
            }
        }
    }
    Ok((roles, others))
}

fn entry(role: aws_sdk_iam::types::Role) -> RoleEntry {
    RoleEntry {
        assume_role_policy_document: role.assume_role_policy_document.as_deref().map(policy_value),
        max_session_duration: role.max_session_duration.and_then(|m| u64::try_from(m).ok()),
        path: Some(role.path).filter(|p| !p.is_empty()),
        arn: role.arn,
        role_name: role.role_name,
    }
}

/// The trust policy as JSON: IAM returns it URL-encoded. Kept as the string IAM sent when
/// it is not JSON either way, so the diagnosis reports it as unreadable instead of losing it.
fn policy_value(document: &str) -> Value {
    let trimmed = document.trim();
    let parsed = if trimmed.starts_with('{') {
        serde_json::from_str(trimmed).ok()
    } else {
        String::from_utf8(percent_decode(trimmed))
            .ok()
            .and_then(|json| serde_json::from_str(&json).ok())
    };
    parsed
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::String(document.to_owned()))
}

/// `%XX` to the byte it stands for; anything else as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'%')
            .then(|| bytes.get(index + 1..index + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                decoded.push(byte);
                index += 3;
            }
            None => {
                decoded.push(bytes[index]);
                index += 1;
            }
        }
    }
    decoded
}

fn call_error<E, R>(call: String, error: &SdkError<E, R>) -> AccountSnapshotError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let code = error.code().map(str::to_owned);
    let detail = match code {
        Some(_) => crate::describe(error),
        // A transport, timeout or credentials failure: its causes, without the Debug dump.
        None => causes(error),
    };
    AccountSnapshotError::Call { call, code, detail }
}

/// The error and its sources, each once.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_policies_are_stored_as_json() {
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(
            policy_value(encoded),
            serde_json::json!({"Version": "2012-10-17", "Statement": []})
        );
        assert_eq!(
            policy_value(r#" {"Statement": []} "#),
            serde_json::json!({"Statement": []})
        );
        assert_eq!(
            policy_value("%7Bnot json"),
            Value::String("%7Bnot json".to_owned())
        );
        assert_eq!(policy_value("%FF"), Value::String("%FF".to_owned()));
    }

    #[test]
    fn percent_decoding_leaves_what_is_not_an_escape() {
        assert_eq!(percent_decode("a%20b%2"), b"a b%2".to_vec());
        assert_eq!(percent_decode("%zz%41%c3%a9"), "%zzAé".as_bytes().to_vec());
        assert_eq!(percent_decode("%"), b"%".to_vec());
    }

    #[test]
    fn names_are_unique_without_regard_to_case() {
        let names = ["Deploy", " deploy ", "", "ci"].map(String::from);
        assert_eq!(unique_names(&names), ["Deploy", "ci"]);
    }
}
