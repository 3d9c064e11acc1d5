//! `oidc-watch`: the oidc-monitor pipeline on your machine.
//!
//! 1. `diagnose` reads CloudTrail `AssumeRoleWithWebIdentity` events (EventBridge envelopes,
//!    bare records, CloudTrail log files, JSON lines; plain or gzipped; files, directories
//!    or stdin) and account snapshots, and prints each event's cause, failing condition
//!    and fix.
//! 2. `evaluate` evaluates one trust policy for one request with IAM semantics.
//! 3. `snapshot` writes the account snapshot `diagnose --account` reads, from IAM with the
//!    caller's credentials, marking which of its lists are complete.
//!
//! Exit codes: 0 when every input was read, 1 when some record or file could not be read,
//! 2 for bad arguments, snapshots, policies or requests, and failed AWS calls.

mod audit;
mod commands;
mod impact;
mod input;
mod live;
mod query;
mod render;
mod report;
mod s3;
mod snapshot;
mod tabular;
mod workflows;
mod yaml;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "oidc-watch",
    version,
    about = "Why could this CI job not assume its AWS role?"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Diagnose AssumeRoleWithWebIdentity CloudTrail events.
    Diagnose {
        /// Event files or directories (.json, .jsonl, .gz, .csv), s3://bucket/prefix/, or -
        /// for stdin.
        #[arg(required = true, value_name = "EVENT")]
        inputs: Vec<String>,
        /// Account snapshot file, or a directory of them; repeatable. Each event uses the
        /// snapshot of its own account.
        #[arg(long = "account", value_name = "SNAPSHOT")]
        accounts: Vec<PathBuf>,
        /// Output format [default: text on a terminal, json otherwise].
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Never colour the text output (NO_COLOR is honoured too).
        #[arg(long)]
        no_color: bool,
        /// Owners that are yours, as in ALLOWED_OWNERS: provider:owner entries, a bare name
        /// is a GitHub owner (acme,gitlab:acme-group,github:acme@1234). Default: the owners
        /// the snapshots' trust policies name. Only your own jobs get a suggested change.
        #[arg(long, value_name = "LIST")]
        owners: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
        /// Read each event's account from IAM (your credentials for your own account, the
        /// --read-role for others) where no --account snapshot has it.
        #[arg(long)]
        live: bool,
        /// With --live: the role assumed in other accounts.
        #[arg(
            long,
            value_name = "NAME",
            default_value = "oidc-watch-read",
            requires = "live"
        )]
        read_role: String,
        /// Also write a report of the run to FILE: .html (one self-contained page with
        /// charts) or .md (Markdown tables). The diagnoses still go to stdout.
        #[arg(long, value_name = "FILE.html|FILE.md")]
        report: Option<PathBuf>,
    },
    /// Evaluate one trust policy for one request and print the decision per statement.
    Evaluate {
        /// The trust policy: JSON, or the URL-encoded JSON that `aws iam get-role` returns.
        #[arg(long, value_name = "POLICY.json")]
        policy: PathBuf,
        /// {"principal": "<provider ARN>", "action": "...", "context": {"<key>": "v" | ["v"]}}
        #[arg(long, value_name = "REQUEST.json")]
        request: PathBuf,
    },
    /// Write an account snapshot from IAM, with your AWS credentials (AWS_PROFILE,
    /// AWS_ENDPOINT_URL and the rest of the standard configuration are honoured).
    Snapshot {
        /// Only these roles (GetRole each). Default: every role whose trust policy concerns
        /// a web identity (ListRoles); the others are only named.
        #[arg(long, value_name = "NAME,NAME", value_delimiter = ',')]
        roles: Option<Vec<String>>,
        /// Write the snapshot to FILE (once it is complete) instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// What a trust-policy change does before it is applied: the subjects that assumed
    /// the role, judged under the old and the new policy, and the shapes it newly admits.
    Impact(impact::ImpactArgs),
    /// The SQL for Athena or CloudTrail Lake that selects AssumeRoleWithWebIdentity records
    /// with the columns `diagnose` reads back from the engine's result file.
    Query(query::QueryArgs),
    /// Audit every trust policy that names an OIDC provider, and every provider, of one or
    /// more accounts, with what GitHub and CloudTrail history say. Exit 1 on findings at or
    /// above --fail-on, 2 on bad input.
    Audit(audit::AuditArgs),
    /// Pre-flight: the OIDC jobs of workflow files, their id-token permission, the subjects
    /// they present and, with --account, each subject's verdict. Exit 1 on findings at or
    /// above --fail-on, 2 on bad input.
    CheckWorkflows {
        #[command(flatten)]
        args: workflows::CheckWorkflowsArgs,
        /// Read the trust policies of the roles the jobs name from IAM, with your AWS
        /// credentials (as `snapshot --roles`), instead of or besides --account.
        #[arg(long)]
        live: bool,
    },
}

/// Which CloudTrail log files of an `s3://` input are read (by their folders).
#[derive(clap::Args)]
struct RemoteArgs {
    /// s3:// inputs: days from this one (7d, 12h, 2026-11-01, or an ISO time).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// s3:// inputs: days before this one [default: now].
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// s3:// inputs: only these accounts' folders, comma-separated.
    #[arg(long = "accounts", value_name = "ID,ID", value_delimiter = ',')]
    only_accounts: Vec<String>,
    /// s3:// inputs: only these regions' folders, comma-separated.
    #[arg(long, value_name = "REGION,REGION", value_delimiter = ',')]
    regions: Vec<String>,
}

impl RemoteArgs {
    fn filters(&self, now: i64) -> Result<s3::Filters, commands::CommandError> {
        let time = |flag: &str, value: &Option<String>| match value {
            None => Ok(None),
            Some(v) => query::when(v, now).map(Some).ok_or_else(|| {
                commands::CommandError::Usage(format!(
                    "{flag}: {v:?} is not a time (7d, 12h, 2026-11-01 or 2026-11-01T06:00:00Z)"
                ))
            }),
        };
        Ok(s3::Filters {
            since: time("--since", &self.since)?,
            until: time("--until", &self.until)?,
            accounts: self.only_accounts.clone(),
            regions: self.regions.clone(),
        })
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Text,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Diagnose {
            inputs,
            accounts,
            format,
            no_color,
            owners,
            remote,
            live,
            read_role,
            report,
        } => remote
            .filters(oidc_watch_aws::wall_clock_seconds())
            .and_then(|filters| {
                let live = live.then_some(read_role.as_str());
                commands::diagnose(
                    &inputs,
                    &accounts,
                    owners.as_deref(),
                    format,
                    no_color,
                    &filters,
                    live,
                    report.as_deref(),
                )
            }),
        Command::Evaluate { policy, request } => commands::evaluate(&policy, &request),
        Command::Snapshot { roles, output } => snapshot::snapshot(roles.as_deref(), output.as_deref()),
        Command::Impact(args) => impact::run(&args).map_err(|e| commands::CommandError::Usage(e.to_string())),
        Command::Query(args) => query::run(&args, oidc_watch_aws::wall_clock_seconds()),
        Command::Audit(args) => audit::run(&args).map_err(|e| commands::CommandError::Usage(e.to_string())),
        Command::CheckWorkflows { args, live } => {
            workflows::run(&args, live).map_err(|e| commands::CommandError::Usage(e.to_string()))
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("oidc-watch: {error}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
