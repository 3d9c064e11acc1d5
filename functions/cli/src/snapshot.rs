//! `oidc-watch snapshot`: the account's IAM state, read with the caller's credentials, in
//! exactly the format `diagnose --account` reads, saying what it knows to be complete.
//!
//! * `AccountId`: STS `GetCallerIdentity`.
//! * `Roles`: with `--roles`, `GetRole` for each name (`Complete.Roles` lists the names, so
//!   one that was `NoSuchEntity` is known not to exist); without, every role from the
//!   paginated `ListRoles` whose trust policy concerns a web identity
//!   ([`concerns_web_identity`]), the others named in `RolesWithoutWebIdentity`, and
//!   `Complete.Roles: true`.
//! * `OpenIDConnectProviders`: `ListOpenIDConnectProviders`, then
//!   `GetOpenIDConnectProvider` for each; `Complete.OpenIDConnectProviders: true`.
//!
//! The SDK configuration is the standard one (credential chain, profile, region,
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_IAM`/`_STS`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use diagnosis::snapshot::{
    concerns_web_identity, CompleteMarkers, OidcProvider, RoleEntry, RolesMarker, SnapshotFile,
};
use serde_json::Value;

use crate::commands::CommandError;

/// Each IAM or STS call (each ListRoles page) may take this long, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// IAM is global; a region is still needed to resolve its endpoint.
const DEFAULT_REGION: &str = "us-east-1";
const PERMISSIONS: &str = "sts:GetCallerIdentity, iam:ListRoles (or iam:GetRole with --roles), iam:ListOpenIDConnectProviders and iam:GetOpenIDConnectProvider";

pub fn snapshot(roles: Option<&[String]>, output: Option<&Path>) -> Result<ExitCode, CommandError> {
    let names: Option<Vec<String>> = roles.map(|names| {
        let mut unique: Vec<String> = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            if !unique.iter().any(|u| u.eq_ignore_ascii_case(name)) {
                unique.push(name.to_owned());
            }
        }
        unique
    });
    if names.as_ref().is_some_and(Vec::is_empty) {
        return Err(CommandError::Usage(
            "--roles needs at least one role name".to_owned(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Output)?;
    let file = runtime.block_on(read_account(names.as_deref()))?;
    let mut text = serde_json::to_string_pretty(&file).map_err(std::io::Error::from)?;
    text.push('\n');
    match output {
        Some(path) => write_file(path, &text)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    eprintln!(
        "oidc-watch: account {}: {} role(s){}, {} OIDC provider(s){}",
        file.account_id.as_deref().unwrap_or("?"),
        file.roles.len(),
        if file.roles_without_web_identity.is_empty() {
            String::new()
        } else {
            format!(
                " ({} more trust no web identity and are only named)",
                file.roles_without_web_identity.len()
            )
        },
        file.providers.as_ref().map_or(0, Vec::len),
        output.map_or(String::new(), |p| format!(", written to {}", p.display()))
    );
    Ok(ExitCode::SUCCESS)
}

/// The file appears only once it is whole: written beside it, then renamed.
fn write_file(path: &Path, text: &str) -> Result<(), CommandError> {
    let fail = |e: std::io::Error| CommandError::Snapshot {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    std::fs::write(&partial, text).map_err(fail)?;
    std::fs::rename(&partial, path).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        fail(e)
    })
}

async fn sdk_config() -> aws_config::SdkConfig {
    let config = oidc_watch_aws::load_sdk_config(OPERATION_TIMEOUT).await;
    if config.region().is_some() {
        return config;
    }
    config
        .into_builder()
        .region(aws_config::Region::new(DEFAULT_REGION))
        .build()
}

async fn read_account(names: Option<&[String]>) -> Result<SnapshotFile, CommandError> {
    let config = sdk_config().await;
    let sts = aws_sdk_sts::Client::new(&config);
    let iam = aws_sdk_iam::Client::new(&config);
    let identity = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| aws_error("sts:GetCallerIdentity", &e))?;
    let account = identity
        .account
        .ok_or_else(|| CommandError::Aws("sts:GetCallerIdentity returned no account".to_owned()))?;
    let (roles, roles_without_web_identity, marker) = match names {
        Some(names) => (
            named_roles(&iam, &account, names).await?,
            Vec::new(),
            RolesMarker::Named(names.to_vec()),
        ),
        None => {
            let (roles, others) = listed_roles(&iam).await?;
            (roles, others, RolesMarker::All(true))
        }
    };
    let providers = providers(&iam).await?;
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

async fn named_roles(
    iam: &aws_sdk_iam::Client,
    account: &str,
    names: &[String],
) -> Result<Vec<RoleEntry>, CommandError> {
    let mut roles = Vec::new();
    for name in names {
        match get_role(iam, name).await? {
            Some(role) => roles.push(role),
            None => eprintln!(
                "oidc-watch: account {account} has no role named {name:?} (NoSuchEntity); the snapshot records that"
            ),
        }
    }
    Ok(roles)
}

/// `GetRole`; `None` on `NoSuchEntity`.
async fn get_role(iam: &aws_sdk_iam::Client, name: &str) -> Result<Option<RoleEntry>, CommandError> {
    match iam.get_role().role_name(name).send().await {
        Ok(output) => Ok(output.role.map(entry)),
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) =>
        {
            Ok(None)
        }
        Err(error) => Err(aws_error(&format!("iam:GetRole {name:?}"), &error)),
    }
}

/// Every role, through all `ListRoles` pages: those whose trust policy concerns a web
/// identity in full, the names of the others.
async fn listed_roles(iam: &aws_sdk_iam::Client) -> Result<(Vec<RoleEntry>, Vec<String>), CommandError> {
    let mut pages = iam.list_roles().into_paginator().send();
    let mut roles = Vec::new();
    let mut others = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("iam:ListRoles", &e))?;
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
        percent_encoding::percent_decode_str(trimmed)
            .decode_utf8()
            .ok()
            .and_then(|json| serde_json::from_str(&json).ok())
    };
    parsed
        .filter(Value::is_object)
        .unwrap_or_else(|| Value::String(document.to_owned()))
}

/// The providers, fetched as the monitor fetches them.
async fn providers(iam: &aws_sdk_iam::Client) -> Result<Vec<OidcProvider>, CommandError> {
    oidc_watch_aws::iam::fetch_providers(iam).await.map_err(|error| {
        let denied = ["AccessDenied", "Unauthorized"]
            .iter()
            .any(|c| error.message.contains(c));
        let hint = if denied {
            format!(" The snapshot needs {PERMISSIONS}.")
        } else {
            String::new()
        };
        CommandError::Aws(format!("{error}.{hint}"))
    })
}

/// The call, AWS's own message or the error chain, and what to do about it.
fn aws_error<E, R>(call: &str, error: &SdkError<E, R>) -> CommandError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    let detail = match error.code() {
        Some(_) => oidc_watch_aws::describe(error),
        // A transport, timeout or credentials failure: its causes, without the Debug dump.
        None => causes(error),
    };
    let lower = detail.to_ascii_lowercase();
    let hint = match error.code() {
        Some(
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "UnauthorizedAccess",
        ) => format!("The snapshot needs {PERMISSIONS}."),
        Some(
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidAccessKeyId",
        ) => "AWS refused the credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID, or sign in again.".to_owned(),
        None if lower.contains("credential") => "No usable AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run aws sso login.".to_owned(),
        None if lower.contains("connect") || lower.contains("timeout") || lower.contains("timed out") => {
            "IAM or STS could not be reached: check the network, and AWS_ENDPOINT_URL if it is set.".to_owned()
        }
        _ => String::new(),
    };
    if hint.is_empty() {
        return CommandError::Aws(format!("{call}: {detail}"));
    }
    CommandError::Aws(format!("{call}: {detail}\n{hint}"))
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
}
