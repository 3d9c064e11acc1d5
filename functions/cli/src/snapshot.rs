//! `oidc-watch snapshot`: the account's IAM state, read with the caller's credentials, in
//! exactly the format `diagnose --account` reads, saying what it knows to be complete.
//!
//! * `AccountId`: STS `GetCallerIdentity`.
//! * `Roles`: with `--roles`, `GetRole` for each name (`Complete.Roles` lists the names, so
//!   one that was `NoSuchEntity` is known not to exist); without, every role from the
//!   paginated `ListRoles` whose trust policy concerns a web identity
//!   (`diagnosis::snapshot::concerns_web_identity`), the others named in `RolesWithoutWebIdentity`, and
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

use diagnosis::snapshot::SnapshotFile;
use oidc_watch_aws::account_snapshot::{
    read_account_snapshot, unique_names, AccountSnapshotError, RoleSelection,
};

use crate::commands::CommandError;

/// Each IAM or STS call (each ListRoles page) may take this long, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(60);
/// IAM is global; a region is still needed to resolve its endpoint.
const DEFAULT_REGION: &str = "us-east-1";
const PERMISSIONS: &str = "sts:GetCallerIdentity, iam:ListRoles (or iam:GetRole with --roles), iam:ListOpenIDConnectProviders and iam:GetOpenIDConnectProvider";

pub fn snapshot(roles: Option<&[String]>, output: Option<&Path>) -> Result<ExitCode, CommandError> {
    let names: Option<Vec<String>> = roles.map(unique_names);
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

pub(crate) async fn sdk_config() -> aws_config::SdkConfig {
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
    let selection = names.map_or(RoleSelection::All, RoleSelection::Named);
    let file = read_account_snapshot(&config, None, selection)
        .await
        .map_err(|e| aws_error(&e, PERMISSIONS))?;
    if let Some(names) = names {
        let account = file.account_id.as_deref().unwrap_or("?");
        for name in names {
            if !file.roles.iter().any(|r| r.role_name.eq_ignore_ascii_case(name)) {
                eprintln!(
                    "oidc-watch: account {account} has no role named {name:?} (NoSuchEntity); the snapshot records that"
                );
            }
        }
    }
    Ok(file)
}

/// The failed call, AWS's own message or the error chain, and what to do about it
/// (`permissions`: what the command needs, named when AWS refused).
pub(crate) fn aws_error(error: &AccountSnapshotError, permissions: &str) -> CommandError {
    let detail = error.to_string();
    let lower = detail.to_ascii_lowercase();
    let code = match error {
        AccountSnapshotError::Call { code, .. } => code.as_deref(),
        _ => None,
    };
    let transport = matches!(error, AccountSnapshotError::Call { code: None, .. });
    let hint = match code {
        _ if error.is_access_denied() => format!("The snapshot needs {permissions}."),
        Some(
            "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidAccessKeyId",
        ) => "AWS refused the credentials: check AWS_PROFILE or AWS_ACCESS_KEY_ID, or sign in again.".to_owned(),
        None if transport && lower.contains("credential") => "No usable AWS credentials: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run aws sso login.".to_owned(),
        None if transport && (lower.contains("connect") || lower.contains("timeout") || lower.contains("timed out")) => {
            "IAM or STS could not be reached: check the network, and AWS_ENDPOINT_URL if it is set.".to_owned()
        }
        _ => String::new(),
    };
    if hint.is_empty() {
        return CommandError::Aws(detail);
    }
    let separator = if matches!(error, AccountSnapshotError::Providers(_)) {
        ". "
    } else {
        "\n"
    };
    CommandError::Aws(format!("{detail}{separator}{hint}"))
}
