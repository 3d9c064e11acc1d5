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
mod backfill;
mod commands;
mod impact;
mod input;
mod live;
mod lookup;
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
        #[arg(required_unless_present = "lookup", value_name = "EVENT")]
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
        #[command(flatten)]
        metrics: EmitMetricsArgs,
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

/// Which CloudTrail log files of an `s3://` input are read (by their folders), and what
/// `--lookup` asks LookupEvents for.
#[derive(clap::Args)]
struct RemoteArgs {
    /// Also read the AssumeRoleWithWebIdentity events of CloudTrail's LookupEvents (your
    /// credentials' account; 90 days of history, 2 requests/s, a progress bar on a
    /// terminal), from --since [default: 7d] in --regions [default: the configured one].
    #[arg(long)]
    lookup: bool,
    /// s3:// inputs and --lookup: days from this one (7d, 12h, 2026-11-01, or an ISO time).
    #[arg(long, value_name = "WHEN")]
    since: Option<String>,
    /// s3:// inputs and --lookup: days before this one [default: now].
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// s3:// inputs: only these accounts' folders, comma-separated.
    #[arg(long = "accounts", value_name = "ID,ID", value_delimiter = ',')]
    only_accounts: Vec<String>,
    /// s3:// inputs: only these regions' folders; --lookup: these regions. Comma-separated.
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

    /// The LookupEvents range, when --lookup asks for one (and a note when it is cut).
    fn lookup(&self, filters: &s3::Filters, now: i64) -> Option<lookup::Range> {
        self.lookup.then(|| {
            let (range, note) = lookup::Range::new(filters.since, filters.until, now);
            if let Some(note) = note {
                eprintln!("oidc-watch: {note}");
            }
            range
        })
    }
}

/// `diagnose --emit-metrics`: where the replayed metrics and their ledger go.
#[derive(clap::Args)]
struct EmitMetricsArgs {
    /// Also write the events as the monitor's CloudWatch metrics at their own times (the
    /// last 14 days; older events are counted and skipped), in the configured region. Each
    /// minute of each account and region is written once: it is first claimed in the state
    /// table, so a rerun over the same range writes nothing again.
    #[arg(long, requires = "state_table")]
    emit_metrics: bool,
    /// With --emit-metrics: the stack's state table (its StateTableName output), which
    /// keeps the ledger of minutes written.
    #[arg(long, value_name = "NAME", env = "STATE_TABLE_NAME")]
    state_table: Option<String>,
    /// With --emit-metrics: the stack's metric namespace (its MetricsNamespace parameter).
    #[arg(
        long,
        value_name = "NAME",
        default_value = diagnosis::metrics::DEFAULT_NAMESPACE,
        requires = "emit_metrics"
    )]
    namespace: String,
}

impl EmitMetricsArgs {
    fn options(self) -> Result<Option<backfill::EmitMetrics>, commands::CommandError> {
        let (true, Some(state_table)) = (self.emit_metrics, self.state_table) else {
            return Ok(None);
        };
        diagnosis::metrics::validate_namespace(&self.namespace)
            .map_err(|e| commands::CommandError::Usage(format!("--namespace: {e}")))?;
        Ok(Some(backfill::EmitMetrics {
            state_table,
            namespace: self.namespace,
        }))
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
            metrics,
        } => {
            let now = oidc_watch_aws::wall_clock_seconds();
            remote
                .filters(now)
                .and_then(|filters| Ok((filters, metrics.options()?)))
                .and_then(|(filters, emit_metrics)| {
                    commands::diagnose(commands::DiagnoseRun {
                        inputs: &inputs,
                        account_paths: &accounts,
                        owners: owners.as_deref(),
                        format,
                        no_color,
                        lookup: remote.lookup(&filters, now),
                        remote: filters,
                        live_read_role: live.then_some(read_role.as_str()),
                        report_path: report.as_deref(),
                        emit_metrics,
                    })
                })
        }
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

    fn parse(args: &[&str]) -> Result<super::Cli, clap::Error> {
        use clap::Parser;
        super::Cli::try_parse_from(std::iter::once("oidc-watch").chain(args.iter().copied()))
    }

    fn emit_metrics(cli: super::Cli) -> Option<(String, String)> {
        let super::Command::Diagnose { metrics, .. } = cli.command else {
            panic!("not diagnose")
        };
        metrics
            .options()
            .ok()
            .flatten()
            .map(|m| (m.state_table, m.namespace))
    }

    #[test]
    fn emit_metrics_needs_a_state_table_and_nothing_else_needs_it() {
        assert!(parse(&["diagnose", "--emit-metrics", "x.json"]).is_err());
        assert!(parse(&["diagnose", "--namespace", "Mine", "x.json"]).is_err());
        let plain = parse(&["diagnose", "x.json"]).expect("diagnose without backfill");
        assert_eq!(emit_metrics(plain), None);
        let given = parse(&["diagnose", "--emit-metrics", "--state-table", "t", "x.json"]).expect("backfill");
        assert_eq!(emit_metrics(given), Some(("t".into(), "OidcWatch".into())));
        let named = parse(&[
            "diagnose",
            "--emit-metrics",
            "--state-table",
            "t",
            "--namespace",
            "Team/OidcWatch",
            "x.json",
        ])
        .expect("backfill with a namespace");
        assert_eq!(emit_metrics(named), Some(("t".into(), "Team/OidcWatch".into())));
    }

    #[test]
    fn a_namespace_cloudwatch_refuses_is_a_usage_error() {
        let cli = parse(&[
            "diagnose",
            "--emit-metrics",
            "--state-table",
            "t",
            "--namespace",
            "AWS/Lambda",
            "x.json",
        ])
        .expect("parsed");
        let super::Command::Diagnose { metrics, .. } = cli.command else {
            panic!("not diagnose")
        };
        assert!(metrics.options().is_err());
    }
}
