//! `oidc-watch impact`: what a trust-policy change does before it is applied. The
//! subjects that assumed the role (CloudTrail history) are judged under the old and the
//! new policy by the diagnosis engine; a stranger's variants of each are tried; and the
//! new policy's audit is compared with the old one's.
//!
//! Exit codes: 0 the change breaks no observed subject and admits no new shape; 1 it
//! does; 2 bad input, or a new policy that cannot be known (unresolved template values).

mod compare;
mod observed;
mod policy_source;
mod render;
mod subjects;
mod template_yaml;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use diagnosis::claims::account_of_arn;
use diagnosis::owner::Owners;
use diagnosis::pattern::has_wildcard;
use diagnosis::policy::{BaseOperator, PolicyDocument};
use diagnosis::AccountSnapshot;

use compare::RoleContext;
use policy_source::{Form, Known, Outcome, Source};
use subjects::{synthetic_claims, Observed, Subjects};

#[derive(Debug, thiserror::Error)]
pub enum ImpactError {
    #[error("{path}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Input {
        path: String,
        line: Option<usize>,
        message: String,
    },
    #[error("{0}")]
    History(String),
    #[error("--workflows: {0}")]
    Workflows(String),
    #[error("{0}")]
    Observed(String),
    #[error("{0}")]
    Usage(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImpactFormat {
    Text,
    Json,
}

#[derive(Args)]
pub struct ImpactArgs {
    /// The role whose trust policy changes: its name (a template's RoleName or logical id,
    /// a Terraform plan's name or address).
    #[arg(long, value_name = "NAME")]
    role: String,
    /// The new trust policy: a policy (JSON, or URL-encoded JSON), a CloudFormation/SAM
    /// template (JSON or YAML), or `terraform show -json` output of a plan.
    #[arg(long, value_name = "NEW")]
    policy: PathBuf,
    /// The old trust policy, in any form --policy takes. Default: the role's policy in
    /// the --account snapshot.
    #[arg(long, value_name = "POLICY")]
    old: Option<PathBuf>,
    /// Account snapshot (`oidc-watch snapshot`) holding the role, or a directory of them.
    #[arg(long = "account", value_name = "SNAPSHOT")]
    accounts: Vec<PathBuf>,
    /// CloudTrail files, archives or directories (as `diagnose` reads): the successful
    /// calls of the role are the subjects judged.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    history: Vec<String>,
    /// The monitor's state table: the successful subjects it recorded for the role are
    /// judged (standard AWS credentials; AWS_ENDPOINT_URL is honoured).
    #[arg(long, value_name = "TABLE")]
    observed: Option<String>,
    /// For --observed: the role's account (default: from the snapshot, --history or
    /// --old's role ARN).
    #[arg(long, value_name = "ID")]
    account_id: Option<String>,
    /// Workflow files, folders or repository roots (as `check-workflows` reads them): the
    /// subjects of the jobs that assume the role are judged too.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    workflows: Vec<PathBuf>,
    /// For --workflows: the repository (default: git remote origin).
    #[arg(long, value_name = "OWNER/REPO")]
    repository: Option<String>,
    /// For --workflows: the default branch (default: from git).
    #[arg(long, value_name = "BRANCH")]
    default_branch: Option<String>,
    /// For --workflows: the repository's include_claim_keys template.
    #[arg(long, value_name = "KEY,KEY")]
    sub_template: Option<String>,
    /// For --workflows: the role behind ${{ secrets.NAME }} or ${{ vars.NAME }}; repeatable.
    #[arg(long = "workflow-role", value_name = "NAME=ARN")]
    workflow_roles: Vec<String>,
    /// A template parameter or pseudo-parameter value, K=V; repeatable.
    #[arg(long = "parameter", value_name = "K=V")]
    parameters: Vec<String>,
    /// Owners that are yours, as for `diagnose` (default: those the old policy names).
    #[arg(long, value_name = "LIST")]
    owners: Option<String>,
    /// Also fail (exit 1) when a subject's verdict under the new policy turns on a claim
    /// CloudTrail does not record.
    #[arg(long)]
    strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: ImpactFormat,
}

pub fn run(args: &ImpactArgs) -> Result<ExitCode, ImpactError> {
    let owners = Owners::parse_list(args.owners.as_deref().unwrap_or(""))
        .map_err(|e| ImpactError::Usage(format!("--owners: {e}")))?;
    let mut parameters = BTreeMap::new();
    for entry in &args.parameters {
        let Some((key, value)) = entry.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            return Err(ImpactError::Usage(format!("--parameter {entry:?}: expected K=V")));
        };
        parameters.insert(key.to_owned(), value.to_owned());
    }
    if args.old.is_none() && args.accounts.is_empty() {
        return Err(ImpactError::Usage(
            "give the old policy: --account SNAPSHOT (the role's current trust policy) or --old POLICY"
                .to_owned(),
        ));
    }

    // The old policy, and where the role lives.
    let snapshot_role = find_role(&args.accounts, &args.role)?;
    let mut subjects = Subjects::default();
    let account_hint = snapshot_role.as_ref().map(|r| r.account_id.clone());
    subjects::read_history(&args.history, &args.role, account_hint.as_deref(), &mut subjects)?;
    let (calls, failures) = (subjects.calls, subjects.failures);
    let from_history: Vec<Observed> = std::mem::take(&mut subjects).into_vec();

    let role_arn = snapshot_role
        .as_ref()
        .map(|r| r.arn.clone())
        .or_else(|| from_history.iter().find_map(|o| o.claims.role_arn.clone()));
    if let Some(id) = &args.account_id {
        if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ImpactError::Usage(format!(
                "--account-id {}: expected 12 digits",
                diagnosis::text::quote(id)
            )));
        }
    }
    let account_id = args
        .account_id
        .clone()
        .or_else(|| role_arn.as_deref().and_then(account_of_arn))
        .or_else(|| snapshot_role.as_ref().map(|r| r.account_id.clone()))
        .or_else(|| from_history.iter().find_map(|o| o.claims.account_id.clone()));
    let partition = role_arn
        .as_deref()
        .and_then(|arn| arn.split(':').nth(1))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .or_else(|| account_id.as_ref().map(|_| "aws".to_owned()));
    let known = Known {
        parameters,
        account_id: account_id.clone(),
        partition,
    };

    let old_source = match (&args.old, &snapshot_role) {
        (Some(path), _) => policy_source::read(path, &args.role, &known)?,
        (None, Some(role)) => Source {
            file: role.file.clone(),
            form: Form::Snapshot,
            resource: Some(role.arn.clone()),
            line: None,
            outcome: Outcome::Known(role.policy.clone()),
        },
        (None, None) => {
            return Err(ImpactError::Input {
                path: args
                    .accounts
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                line: None,
                message: format!(
                    "no role named {} in the snapshot",
                    diagnosis::text::quote(&args.role)
                ),
            })
        }
    };
    let old_policy = match &old_source.outcome {
        Outcome::Known(policy) => policy.clone(),
        Outcome::Unknown(unresolved) => {
            let first = unresolved.first();
            return Err(ImpactError::Input {
                path: old_source.file.clone(),
                line: first.and_then(|u| u.line),
                message: format!(
                    "the old policy cannot be known: {}",
                    first.map_or("unresolved values".to_owned(), |u| u.reason.clone())
                ),
            });
        }
        Outcome::Deleted => {
            return Err(ImpactError::Input {
                path: old_source.file.clone(),
                line: None,
                message: "the old policy's source deletes the role".to_owned(),
            })
        }
    };
    let new_source = policy_source::read(&args.policy, &args.role, &known)?;

    // Workflow jobs present their subjects to the old policy's GitHub provider.
    let mut notes = Vec::new();
    let mut subjects = Subjects::default();
    for observed in from_history {
        subjects.insert(observed);
    }
    if let Some(table) = &args.observed {
        let Some(account) = account_id.as_deref() else {
            return Err(ImpactError::Usage(
                "--observed: the role's account is not known: give --account-id, or --account SNAPSHOT"
                    .to_owned(),
            ));
        };
        let provider_arn = github_provider(&old_policy, Some(account));
        let arn = role_arn
            .clone()
            .unwrap_or_else(|| format!("arn:aws:iam::{account}:role/{}", args.role));
        let recorded = observed::read(table, account, &args.role)?;
        if recorded.is_empty() {
            notes.push(format!(
                "--observed {table}: no successful subject of role {} is recorded.",
                diagnosis::text::quote(&args.role)
            ));
        }
        for success in recorded {
            let mut claims = synthetic_claims(
                success.provider.as_deref().unwrap_or(&provider_arn),
                &success.subject,
                success.audience.as_deref().unwrap_or("sts.amazonaws.com"),
                Some(&arn),
            );
            claims.event_time = Some(diagnosis::time::iso8601(success.last_seen));
            subjects.add(claims, subjects::Origin::Observed, &format!("{table} (monitor)"));
        }
    }
    if !args.workflows.is_empty() {
        let provider_arn = github_provider(&old_policy, account_id.as_deref());
        let inputs = subjects::WorkflowInputs {
            paths: &args.workflows,
            repository: args.repository.clone(),
            default_branch: args.default_branch.clone(),
            sub_template: args.sub_template.clone(),
            roles: args.workflow_roles.clone(),
        };
        notes.extend(subjects::read_workflows(
            &inputs,
            &args.role,
            &provider_arn,
            &mut subjects,
        )?);
    }
    let observed = subjects.into_vec();

    let role = RoleContext {
        name: &args.role,
        arn: role_arn.unwrap_or_else(|| {
            format!(
                "arn:aws:iam::{}:role/{}",
                account_id.as_deref().unwrap_or("000000000000"),
                args.role
            )
        }),
        account_id: account_id.unwrap_or_else(|| "000000000000".to_owned()),
        owners: &owners,
    };
    let seeds = seeds_of(&old_policy, &role.arn);
    let comparison = match &new_source.outcome {
        Outcome::Known(new) => Some(compare::compare(&old_policy, Some(new), &observed, &seeds, &role)),
        Outcome::Deleted => Some(compare::compare(&old_policy, None, &observed, &seeds, &role)),
        Outcome::Unknown(_) => None,
    };
    let report = render::Report::new(
        &args.role,
        &old_source,
        &new_source,
        comparison,
        calls,
        failures,
        !args.history.is_empty() || !args.workflows.is_empty() || args.observed.is_some(),
        args.strict,
        notes,
    );

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match args.format {
        ImpactFormat::Json => {
            let text = diagnosis::text::to_json(&report).map_err(std::io::Error::from)?;
            out.write_all(text.as_bytes())?;
            out.write_all(b"\n")?;
        }
        ImpactFormat::Text => render::write_text(&mut out, &report)?,
    }
    out.flush()?;
    Ok(ExitCode::from(report.exit_code()))
}

/// The role as the snapshots have it.
struct SnapshotRole {
    file: String,
    account_id: String,
    arn: String,
    policy: PolicyDocument,
}

fn find_role(paths: &[PathBuf], name: &str) -> Result<Option<SnapshotRole>, ImpactError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(crate::input::files_below(path, &[".json"]));
        } else {
            files.push(path.clone());
        }
    }
    let mut found = None;
    for file in &files {
        let snapshot = read_snapshot(file)?;
        let Some(role) = snapshot.role(name) else {
            continue;
        };
        let policy = role.trust_policy.clone().map_err(|e| ImpactError::Input {
            path: file.display().to_string(),
            line: None,
            message: format!(
                "role {}: AssumeRolePolicyDocument: {e}",
                diagnosis::text::quote(name)
            ),
        })?;
        if found.is_some() {
            return Err(ImpactError::Usage(format!(
                "several snapshots hold a role named {}: give the one account's snapshot",
                diagnosis::text::quote(name)
            )));
        }
        found = Some(SnapshotRole {
            file: file.display().to_string(),
            account_id: snapshot.account_id.clone(),
            arn: role.arn.clone(),
            policy,
        });
    }
    if found.is_none() && !files.is_empty() {
        return Err(ImpactError::Input {
            path: files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            line: None,
            message: format!("no role named {} in the snapshot", diagnosis::text::quote(name)),
        });
    }
    Ok(found)
}

fn read_snapshot(path: &Path) -> Result<AccountSnapshot, ImpactError> {
    let fail = |line: Option<usize>, message: String| ImpactError::Input {
        path: path.display().to_string(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(None, e.to_string()))?;
    AccountSnapshot::from_json(&text).map_err(|e| {
        let line = match &e {
            diagnosis::snapshot::SnapshotError::Json(json) => Some(json.line()),
            _ => None,
        };
        fail(line, e.to_string())
    })
}

/// The GitHub provider the old policy trusts (the first), else GitHub's in the account.
fn github_provider(policy: &PolicyDocument, account_id: Option<&str>) -> String {
    policy
        .statements
        .iter()
        .filter(|s| s.is_allow())
        .flat_map(|s| s.federated_principals())
        .find(|p| {
            let url = p.split_once(":oidc-provider/").map_or(p.as_str(), |(_, u)| u);
            diagnosis::subject::ProviderKind::from_url(url) == diagnosis::subject::ProviderKind::GitHub
        })
        .cloned()
        .unwrap_or_else(|| {
            format!(
                "arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com",
                account_id.unwrap_or("000000000000")
            )
        })
}

/// The exact `sub` values the old policy names: their stranger's variants are tried even
/// when no call was seen.
fn seeds_of(policy: &PolicyDocument, role_arn: &str) -> Vec<Observed> {
    let mut seeds = Subjects::default();
    for statement in policy.statements.iter().filter(|s| s.is_allow()) {
        for principal in statement.federated_principals() {
            let url = principal
                .split_once(":oidc-provider/")
                .map_or(principal.as_str(), |(_, u)| u)
                .to_ascii_lowercase();
            let positive = |c: &&diagnosis::policy::Condition| {
                matches!(
                    c.operator.base,
                    BaseOperator::StringEquals
                        | BaseOperator::StringLike
                        | BaseOperator::StringEqualsIgnoreCase
                ) && c.operator.set.is_none()
            };
            let audience = statement
                .conditions
                .iter()
                .filter(positive)
                .filter(|c| c.key_lower == format!("{url}:aud"))
                .flat_map(|c| c.values.iter())
                .find(|v| !has_wildcard(v))
                .cloned()
                .unwrap_or_else(|| "sts.amazonaws.com".to_owned());
            for condition in statement
                .conditions
                .iter()
                .filter(positive)
                .filter(|c| c.key_lower == format!("{url}:sub"))
            {
                for value in condition.values.iter().filter(|v| !has_wildcard(v)) {
                    let claims = synthetic_claims(principal, value, &audience, Some(role_arn));
                    seeds.add(claims, subjects::Origin::Policy, "old policy");
                }
            }
        }
    }
    seeds.into_vec()
}
