//! `oidc-watch audit`: every trust policy that names an OIDC provider, and every provider,
//! of one or more accounts (snapshot files, or IAM with `--live`), judged with what GitHub
//! and CloudTrail history say (README, "oidc-watch audit").
//!
//! Exit codes: 0 when no finding is at or above `--fail-on`, 1 when one is, 2 on bad
//! input (arguments, snapshots, history files, failed AWS calls).

mod github;
mod history;
mod render;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use diagnosis::audit::{
    audit_account, github_lookups, AccountFinding, AuditOptions, GithubFacts, History, Severity,
};
use diagnosis::owner::{Owner, Owners};
use diagnosis::snapshot::SnapshotFile;
use diagnosis::AccountSnapshot;
use oidc_watch_aws::account_snapshot::{read_account_snapshot, ReadRole, RoleSelection};

use crate::input::files_below;

const DEFAULT_GITHUB_API: &str = "https://api.github.com";
const LIVE_PERMISSIONS: &str = "sts:GetCallerIdentity, iam:ListRoles, iam:GetRole, iam:ListOpenIDConnectProviders and iam:GetOpenIDConnectProvider (and sts:AssumeRole on the read role with --accounts)";
/// The STS session name the read role is assumed with: the member account's CloudTrail
/// shows who read it.
const SESSION_NAME: &str = "oidc-watch-audit";

#[derive(Args)]
pub struct AuditArgs {
    /// Account snapshot file (as `oidc-watch snapshot` writes), or a directory of them;
    /// repeatable. Several files of one account are merged.
    #[arg(long = "account", value_name = "SNAPSHOT")]
    pub snapshots: Vec<PathBuf>,
    /// Read the accounts from IAM with your AWS credentials (AWS_PROFILE, AWS_ENDPOINT_URL
    /// and the rest of the standard configuration are honoured).
    #[arg(long)]
    pub live: bool,
    /// With --live: these accounts, each read through --read-role (your own account, if
    /// listed, with your own credentials).
    #[arg(
        long = "accounts",
        value_name = "ID,ID",
        value_delimiter = ',',
        requires = "live"
    )]
    pub account_ids: Vec<String>,
    /// With --accounts: the role assumed in each account, arn:aws:iam::<id>:role/<NAME>.
    #[arg(long, value_name = "NAME")]
    pub read_role: Option<String>,
    /// The GitHub API (GitHub Enterprise Server: https://HOST/api/v3). GITHUB_TOKEN, if
    /// set, is sent; without it only public lookups are made.
    #[arg(long, value_name = "URL", default_value = DEFAULT_GITHUB_API)]
    pub github_api: String,
    /// Ask GitHub nothing.
    #[arg(long)]
    pub no_github: bool,
    /// CloudTrail files or directories (.json, .jsonl, .gz): their successful
    /// AssumeRoleWithWebIdentity calls are the record of what works.
    #[arg(long = "history", value_name = "FILE")]
    pub history: Vec<String>,
    /// A role with no recorded success in this many days is reported (needs --history
    /// reaching back that far; 0: never).
    #[arg(long, value_name = "N", default_value_t = 90)]
    pub unused_days: u32,
    /// Output format [default: text on a terminal, json otherwise].
    #[arg(long, value_enum)]
    pub format: Option<AuditFormat>,
    /// Exit 1 when a finding at or above this severity exists.
    #[arg(long, value_enum, default_value = "high")]
    pub fail_on: FailOn,
    /// Never colour the text output (NO_COLOR is honoured too).
    #[arg(long)]
    pub no_color: bool,
    /// Owners that are yours besides those the trust policies name exactly, as in
    /// ALLOWED_OWNERS (acme,github:acme@1234). Suggested changes only add these.
    #[arg(long, value_name = "LIST")]
    pub owners: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Text,
    Json,
    Sarif,
    Markdown,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    High,
    Medium,
    Low,
    None,
}

impl FailOn {
    fn fails(self, severity: Severity) -> bool {
        match self {
            FailOn::High => severity <= Severity::High,
            FailOn::Medium => severity <= Severity::Medium,
            FailOn::Low => true,
            FailOn::None => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{0}")]
    Usage(String),
    #[error("{path}: {message}")]
    Snapshot { path: String, message: String },
    #[error("--history: {0}")]
    History(String),
    #[error("{0}")]
    Aws(String),
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

pub fn run(args: &AuditArgs) -> Result<ExitCode, AuditError> {
    if args.snapshots.is_empty() && !args.live {
        return Err(AuditError::Usage(
            "give --account SNAPSHOT (a file or directory), or --live".to_owned(),
        ));
    }
    if !args.account_ids.is_empty() && args.read_role.is_none() {
        return Err(AuditError::Usage("--accounts needs --read-role NAME".to_owned()));
    }
    if let Some(bad) = args
        .account_ids
        .iter()
        .map(|a| a.trim())
        .find(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(AuditError::Usage(format!(
            "--accounts: {bad:?} is not an AWS account ID (twelve digits)"
        )));
    }
    let known_owners: Vec<Owner> = match Owners::parse_list(args.owners.as_deref().unwrap_or(""))
        .map_err(|e| AuditError::Usage(format!("--owners: {e}")))?
    {
        Owners::Allowed(owners) => owners,
        Owners::FromTrustPolicies => Vec::new(),
    };
    let github_api = args.github_api.trim_end_matches('/');
    let http = github_api.starts_with("https://") || github_api.starts_with("http://");
    if !args.no_github && !http {
        return Err(AuditError::Usage(format!(
            "--github-api: {github_api:?} is not an http(s) URL"
        )));
    }

    let mut accounts = load_snapshots(&args.snapshots)?;
    if args.live {
        for snapshot in read_live(args)? {
            merge(&mut accounts, snapshot);
        }
    }
    let histories = if args.history.is_empty() {
        BTreeMap::new()
    } else {
        history::read(&args.history)?
    };
    let empty_history = history::empty_like(&histories);

    let mut notes: Vec<String> = Vec::new();
    let facts: Option<GithubFacts> = if args.no_github {
        None
    } else {
        let mut lookups = diagnosis::audit::GithubLookups::default();
        for snapshot in accounts.values() {
            let more = github_lookups(snapshot);
            lookups.owners.extend(more.owners);
            lookups.repositories.extend(more.repositories);
            lookups.owner_patterns.extend(more.owner_patterns);
        }
        let token = std::env::var("GITHUB_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty());
        let facts = github::facts(
            github_api,
            token.as_deref().map(str::trim),
            &lookups,
            &history::immutable_repositories(&histories),
        );
        notes.extend(facts.skipped.iter().cloned());
        Some(facts)
    };
    if !args.history.is_empty() && empty_history.is_none() {
        notes.push("--history held no event with a time: roles and trust are not judged by use.".to_owned());
    }

    let now = oidc_watch_aws::wall_clock_seconds();
    let mut findings: Vec<AccountFinding> = Vec::new();
    for (id, snapshot) in &accounts {
        let history: Option<&History> = if args.history.is_empty() {
            None
        } else {
            histories.get(id).or(empty_history.as_ref())
        };
        let options = AuditOptions {
            now,
            unused_days: args.unused_days,
            history,
            github: facts.as_ref(),
            known_owners: &known_owners,
        };
        findings.extend(audit_account(snapshot, &options));
    }

    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let format = args.format.unwrap_or(if terminal {
        AuditFormat::Text
    } else {
        AuditFormat::Json
    });
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        AuditFormat::Json => {
            render::json_lines(&mut out, &findings)?;
            for note in &notes {
                eprintln!("oidc-watch: {}", diagnosis::text::escape_controls(note));
            }
        }
        AuditFormat::Sarif => render::sarif(&mut out, &findings, &notes)?,
        AuditFormat::Markdown => render::markdown(&mut out, &findings, &notes)?,
        AuditFormat::Text => {
            let colour = terminal && !args.no_color && std::env::var_os("NO_COLOR").is_none();
            render::text(&mut out, &findings, &notes, &render::Palette::new(colour))?;
        }
    }
    out.flush()?;
    eprintln!(
        "oidc-watch: audited {} account(s): {} finding(s)",
        accounts.len(),
        findings.len()
    );
    Ok(if findings.iter().any(|f| args.fail_on.fails(f.severity)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn merge(accounts: &mut BTreeMap<String, AccountSnapshot>, snapshot: AccountSnapshot) {
    match accounts.get_mut(&snapshot.account_id) {
        Some(existing) => existing.merge(snapshot),
        None => {
            accounts.insert(snapshot.account_id.clone(), snapshot);
        }
    }
}

fn load_snapshots(paths: &[PathBuf]) -> Result<BTreeMap<String, AccountSnapshot>, AuditError> {
    let mut accounts = BTreeMap::new();
    for path in paths {
        let files = if path.is_dir() {
            files_below(path, &[".json"])
        } else {
            vec![path.clone()]
        };
        for file in files {
            merge(&mut accounts, read_snapshot(&file)?);
        }
    }
    Ok(accounts)
}

fn read_snapshot(path: &Path) -> Result<AccountSnapshot, AuditError> {
    let fail = |message: String| AuditError::Snapshot {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    AccountSnapshot::from_json(&text).map_err(|e| fail(e.to_string()))
}

fn read_live(args: &AuditArgs) -> Result<Vec<AccountSnapshot>, AuditError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(AuditError::Output)?;
    let files: Vec<SnapshotFile> = runtime.block_on(async {
        let config = crate::snapshot::sdk_config().await;
        let aws = |e: oidc_watch_aws::account_snapshot::AccountSnapshotError| {
            AuditError::Aws(crate::snapshot::aws_error(&e, LIVE_PERMISSIONS).to_string())
        };
        if args.account_ids.is_empty() {
            return Ok(vec![read_account_snapshot(&config, None, RoleSelection::All)
                .await
                .map_err(aws)?]);
        }
        let mut files = Vec::new();
        let read_role = args.read_role.clone().unwrap_or_default();
        for account in &args.account_ids {
            let via = ReadRole {
                account: account.trim().to_owned(),
                role_name: read_role.clone(),
                session_name: SESSION_NAME.to_owned(),
            };
            files.push(
                read_account_snapshot(&config, Some(&via), RoleSelection::All)
                    .await
                    .map_err(|e| AuditError::Aws(format!("account {}: {}", via.account, aws(e))))?,
            );
        }
        Ok::<_, AuditError>(files)
    })?;
    files
        .into_iter()
        .map(|file| {
            AccountSnapshot::from_file(file)
                .map_err(|e| AuditError::Aws(format!("IAM answered with an unusable account: {e}")))
        })
        .collect()
}
