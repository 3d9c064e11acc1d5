//! `oidc-watch check-workflows`: the OIDC failures that never reach CloudTrail (no
//! `id-token: write`, a subject the trust policy refuses, a job waiting on environment
//! protection), found from the workflow files and the trust policies before anything runs.
//!
//! Library-style entry: [`check_paths`] gives one [`FileReport`] per workflow file, each
//! with a [`JobReport`] per job and OIDC step (the JSON contract in README, "Pre-flight").

mod check;
pub mod identity;
mod live;
mod permissions;
mod render;
mod subjects;
mod verdict;
mod workflow;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use diagnosis::owner::Owners;
use diagnosis::suggest::SuggestedChange;
use diagnosis::{AccountSnapshot, Cause};
use serde::Serialize;

pub use permissions::IdToken;
pub use subjects::{Repository, SubjectSettings, Template};
pub use verdict::Verdict;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A workflow file that cannot be read as a workflow: where and why.
    #[error("{file}:{line}: {message}")]
    Input {
        file: String,
        line: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Path { path: String, message: String },
    #[error("{path}: {message}")]
    Snapshot { path: String, message: String },
    #[error("--live: {0}")]
    Live(String),
    #[error("GitHub API: {0}")]
    GitHubApi(String),
    #[error("{0}")]
    Usage(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Note,
    Warning,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubjectReport {
    pub trigger: String,
    /// The `sub` claim, a glob of them (`certain: false`), or `unknown`.
    pub subject: String,
    pub certain: bool,
    pub verdict: Verdict,
    pub cause: Option<Cause>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    pub suggested_change: Option<SuggestedChange>,
}

/// The called job a caller's report is about.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRef {
    pub file: String,
    pub job: String,
    pub line: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobReport {
    pub file: String,
    pub job: String,
    /// The `configure-aws-credentials` step, or the caller's `uses:`.
    pub line: usize,
    /// `role-to-assume` as written.
    pub role: Option<String>,
    /// The role's ARN, when it is literal or given with `--role`.
    pub role_arn: Option<String>,
    /// The requested audience; `None` when it is an unresolved expression.
    pub audience: Option<String>,
    pub id_token: IdToken,
    pub triggers: Vec<String>,
    pub environment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<CallRef>,
    pub subjects: Vec<SubjectReport>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    pub file: String,
    pub jobs: Vec<JobReport>,
}

/// Everything a check needs besides the files.
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub settings: SubjectSettings,
    /// `--role NAME=ARN`: the role behind `${{ secrets.NAME }}` / `${{ vars.NAME }}`.
    pub roles: BTreeMap<String, String>,
    /// Snapshots by account id.
    pub accounts: HashMap<String, AccountSnapshot>,
}

/// Checks the workflow files under `paths` (files, folders of workflows, repository
/// roots). Any file that is not a readable workflow is an error naming its file and line.
pub fn check_paths(paths: &[PathBuf], options: &Options) -> Result<Vec<FileReport>, CheckError> {
    let parsed = check::find_sources(paths)?
        .into_iter()
        .map(check::parse_source)
        .collect::<Result<Vec<_>, _>>()?;
    let owners = match &options.settings.repository {
        Some(repository) => {
            let entry = match &options.settings.immutable {
                Some((owner_id, _)) => format!("github:{}@{owner_id}", repository.owner),
                None => format!("github:{}", repository.owner),
            };
            Owners::parse_list(&entry).map_err(|e| CheckError::Usage(e.to_string()))?
        }
        None => Owners::default(),
    };
    let judge = verdict::Judge {
        accounts: options.accounts.clone(),
        owners,
    };
    Ok(check::check(&parsed, options, &judge))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    /// One JSON object per line, per job and OIDC step.
    Json,
    Sarif,
    /// GitHub Actions workflow commands (`::error file=...,line=...::`).
    Github,
}

/// `oidc-watch check-workflows` arguments.
#[derive(Debug, clap::Args)]
pub struct CheckWorkflowsArgs {
    /// Repository roots, folders of workflow files, or workflow files [default: .].
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The repository the workflows belong to [default: from git remote origin].
    #[arg(long, value_name = "OWNER/REPO")]
    pub repository: Option<String>,
    /// Its default branch, for workflow_dispatch and schedule [default: from git].
    #[arg(long, value_name = "BRANCH")]
    pub default_branch: Option<String>,
    /// The repository's include_claim_keys subject template, e.g. repo,context,job_workflow_ref.
    #[arg(long, value_name = "KEY,KEY")]
    pub sub_template: Option<String>,
    /// GitHub's immutable subject: repo:OWNER@OWNER_ID/REPO@REPO_ID:...
    #[arg(long, value_name = "OWNER_ID/REPO_ID")]
    pub immutable: Option<String>,
    /// Read the subject template from GitHub's API at URL (https://api.github.com), with
    /// the token in GITHUB_TOKEN.
    #[arg(long, value_name = "URL")]
    pub github_api: Option<String>,
    /// Account snapshot file or directory (as diagnose --account); repeatable. Gives each
    /// subject a verdict from the role's trust policy.
    #[arg(long = "account", value_name = "SNAPSHOT")]
    pub accounts: Vec<PathBuf>,
    /// The role behind ${{ secrets.NAME }} or ${{ vars.NAME }}; repeatable.
    #[arg(long = "role", value_name = "NAME=ARN")]
    pub roles: Vec<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: OutputFormat,
    /// Exit 1 when a finding is at least this severe.
    #[arg(long, value_enum, default_value = "error")]
    pub fail_on: Severity,
}

/// `live`: read the roles' trust policies from IAM too (`--live`).
pub fn run(args: &CheckWorkflowsArgs, live: bool) -> Result<ExitCode, CheckError> {
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths.clone()
    };
    let mut options = identity::options(args, &paths)?;
    let mut reports = check_paths(&paths, &options)?;
    if live {
        for (account, snapshot) in live::accounts(&reports)? {
            match options.accounts.get_mut(&account) {
                Some(known) => known.merge(snapshot),
                None => {
                    options.accounts.insert(account, snapshot);
                }
            }
        }
        reports = check_paths(&paths, &options)?;
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let worst = reports
        .iter()
        .flat_map(|f| &f.jobs)
        .flat_map(|j| &j.findings)
        .map(|f| f.severity)
        .max();
    match args.format {
        OutputFormat::Text => render::text(&mut out, &reports, &options)?,
        OutputFormat::Json => render::json_lines(&mut out, &reports)?,
        OutputFormat::Sarif => render::sarif(&mut out, &reports)?,
        OutputFormat::Github => render::github(&mut out, &reports)?,
    }
    out.flush()?;
    Ok(if worst.is_some_and(|w| w >= args.fail_on) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
