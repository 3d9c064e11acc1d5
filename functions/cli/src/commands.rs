//! `diagnose` and `evaluate`: the same pipeline as oidc-monitor, reading files instead of
//! events (`snapshot` is in its own module).

use std::collections::{BTreeSet, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use diagnosis::claims::Claims;
use diagnosis::evaluate::{evaluate as evaluate_policy, Request};
use diagnosis::owner::{owners_of_account, Owner, Owners};
use diagnosis::policy::PolicyDocument;
use diagnosis::{diagnose_with, AccountSnapshot, Cause, InputItem, Ownership};

use crate::input::{expand, files_below, parse, read_in_parallel, PathOrStdin};
use crate::render::{Palette, Summary};
use crate::report::{Report, ReportBuilder};
use crate::Format;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("{path}: {message}")]
    Snapshot { path: String, message: String },
    #[error("{path}: {message}")]
    Policy { path: String, message: String },
    #[error("{path}: {message}")]
    Request { path: String, message: String },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
    /// An AWS call failed: the call, AWS's message, and what to do.
    #[error("{0}")]
    Aws(String),
    #[error("{0}")]
    Usage(String),
    #[error("--report {path}: {message}")]
    Report { path: String, message: String },
}

/// What `diagnose` was asked, straight from its flags.
pub struct DiagnoseRun<'a> {
    pub inputs: &'a [String],
    pub account_paths: &'a [PathBuf],
    pub owners: Option<&'a str>,
    pub format: Option<Format>,
    pub no_color: bool,
    pub remote: crate::s3::Filters,
    pub lookup: Option<crate::lookup::Range>,
    pub live_read_role: Option<&'a str>,
    pub report_path: Option<&'a Path>,
    pub emit_metrics: Option<crate::backfill::EmitMetrics>,
}

pub fn diagnose(run: DiagnoseRun<'_>) -> Result<ExitCode, CommandError> {
    let DiagnoseRun {
        inputs,
        account_paths,
        owners,
        format,
        no_color,
        remote,
        lookup,
        live_read_role,
        report_path,
        emit_metrics,
    } = run;
    let report_format = report_path.map(ReportFormat::of).transpose()?;
    let mut report = report_format.map(|_| ReportBuilder::default());
    let owners = Owners::parse_list(owners.unwrap_or(""))
        .map_err(|e| CommandError::Usage(format!("--owners: {e}")))?;
    let (mut accounts, snapshot_files) = load_accounts(account_paths)?;
    // Who is ours per account, computed once: every role of the snapshot counts.
    let mut trusted: HashMap<String, BTreeSet<Owner>> = accounts
        .iter()
        .map(|(id, snapshot)| (id.clone(), owners_of_account(snapshot)))
        .collect();
    let mut live = live_read_role
        .map(|role| crate::live::LiveAccounts::new(role.to_owned()))
        .transpose()?;
    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let format = format.unwrap_or(if terminal { Format::Text } else { Format::Json });
    let palette = Palette::new(terminal && !no_color && std::env::var_os("NO_COLOR").is_none());
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut summary = Summary::default();
    let mut backfill = emit_metrics
        .map(|options| crate::backfill::MetricsBackfill::new(options, oidc_watch_aws::wall_clock_seconds()));

    let (urls, local): (Vec<&String>, Vec<&String>) = inputs.iter().partition(|i| i.starts_with("s3://"));
    let urls = urls
        .into_iter()
        .map(|u| {
            crate::s3::S3Url::parse(u)
                .ok_or_else(|| CommandError::Usage(format!("{u}: not an s3://bucket/prefix/ URL")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let local: Vec<String> = local.into_iter().cloned().collect();
    let local_sources: Vec<_> = expand(&local)
        .into_iter()
        .filter(|source| match source {
            Ok(PathOrStdin::Path(path)) => !snapshot_files.iter().any(|f| same_file(f, path)),
            _ => true,
        })
        .collect();
    let remote_inputs = (!urls.is_empty())
        .then(|| crate::s3::inputs(urls, remote.clone()))
        .into_iter()
        .flatten()
        .map(|input| input.map(parse));
    let lookup_inputs = lookup
        .map(|range| crate::lookup::inputs(remote.regions.clone(), range))
        .into_iter()
        .flatten()
        .map(|input| input.map(parse));

    for parsed in read_in_parallel(local_sources)
        .chain(remote_inputs)
        .chain(lookup_inputs)
    {
        let input = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                eprintln!("oidc-watch: {error}");
                summary.unreadable += 1;
                continue;
            }
        };
        for row in &input.unreadable {
            eprintln!("oidc-watch: {}: {row}", input.name);
            summary.unreadable += 1;
        }
        let before = (summary.failures + summary.successes, summary.unreadable);
        for item in input.items {
            match item {
                Ok(InputItem::Event(event)) => {
                    let account_id = event
                        .record
                        .recipient_account_id
                        .as_ref()
                        .or(event.envelope_account.as_ref());
                    if let (Some(live), Some(id)) = (live.as_mut(), account_id) {
                        if !accounts.contains_key(id) {
                            if let Some(snapshot) = live.account(id) {
                                trusted.insert(id.clone(), owners_of_account(snapshot));
                                accounts.insert(id.clone(), snapshot.clone());
                            }
                        }
                    }
                    let account = account_id.and_then(|id| accounts.get(id));
                    let ownership = Ownership {
                        owners: &owners,
                        trusted: account_id.and_then(|id| trusted.get(id.as_str())),
                    };
                    let claims = Claims::from_event(&event);
                    let diagnosis = match &mut backfill {
                        Some(backfill) => {
                            let diagnosis = diagnose_with(claims.clone(), account, ownership);
                            backfill.add(&claims, &diagnosis, account);
                            diagnosis
                        }
                        None => diagnose_with(claims, account, ownership),
                    };
                    summary.count(&diagnosis);
                    if let Some(report) = &mut report {
                        report.add(&diagnosis);
                    }
                    match format {
                        Format::Json => {
                            serde_json::to_writer(&mut out, &diagnosis).map_err(std::io::Error::from)?;
                            out.write_all(b"\n")?;
                        }
                        Format::Text => {
                            crate::render::write_text(&mut out, &diagnosis, &input.name, &palette)?
                        }
                    }
                }
                Ok(InputItem::Skipped { .. }) => summary.skipped += 1,
                Err(error) => {
                    eprintln!("oidc-watch: {}: {error}", input.name);
                    summary.unreadable += 1;
                }
            }
        }
        // Most log files of a trail hold no web-identity call: only local files are named.
        if (summary.failures + summary.successes, summary.unreadable) == before
            && !input.name.starts_with("s3://")
            && !input.name.starts_with("lookup:")
        {
            eprintln!("oidc-watch: {}: no AssumeRoleWithWebIdentity events", input.name);
        }
    }
    if format == Format::Text {
        crate::render::write_summary(&mut out, &summary, &palette)?;
    }
    out.flush()?;
    if let (Some(mut report), Some(format), Some(path)) = (report, report_format, report_path) {
        report.inputs(summary.unreadable, summary.skipped);
        write_report(path, format, &report.finish())?;
    }
    let metrics_written = match backfill {
        Some(backfill) => backfill.write()?,
        None => true,
    };
    Ok(if summary.unreadable == 0 && metrics_written {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Clone, Copy)]
enum ReportFormat {
    Html,
    Markdown,
}

impl ReportFormat {
    /// From the file's extension, checked before any input is read.
    fn of(path: &Path) -> Result<ReportFormat, CommandError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("html" | "htm") => Ok(ReportFormat::Html),
            Some("md" | "markdown") => Ok(ReportFormat::Markdown),
            _ => Err(CommandError::Usage(format!(
                "--report {}: the file must end in .html or .md",
                path.display()
            ))),
        }
    }
}

fn write_report(path: &Path, format: ReportFormat, report: &Report) -> Result<(), CommandError> {
    let text = match format {
        ReportFormat::Html => crate::report::html::render(report),
        ReportFormat::Markdown => crate::report::markdown::render(report),
    };
    std::fs::write(path, text).map_err(|e| CommandError::Report {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Snapshots by account id (several files for one account are merged: a list is complete
/// if one of them says so), and their files.
fn load_accounts(
    paths: &[PathBuf],
) -> Result<(HashMap<String, AccountSnapshot>, Vec<PathBuf>), CommandError> {
    let mut accounts: HashMap<String, AccountSnapshot> = HashMap::new();
    let mut snapshot_files = Vec::new();
    for path in paths {
        let files = if path.is_dir() {
            files_below(path, &[".json"])
        } else {
            vec![path.clone()]
        };
        for file in files {
            snapshot_files.push(file.clone());
            let snapshot = read_snapshot(&file)?;
            match accounts.get_mut(&snapshot.account_id) {
                Some(existing) => existing.merge(snapshot),
                None => {
                    accounts.insert(snapshot.account_id.clone(), snapshot);
                }
            }
        }
    }
    Ok((accounts, snapshot_files))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn read_snapshot(path: &Path) -> Result<AccountSnapshot, CommandError> {
    let fail = |message: String| CommandError::Snapshot {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    AccountSnapshot::from_json(&text).map_err(|e| fail(e.to_string()))
}

pub fn evaluate(policy_path: &Path, request_path: &Path) -> Result<ExitCode, CommandError> {
    let policy_text = std::fs::read_to_string(policy_path).map_err(|e| CommandError::Policy {
        path: policy_path.display().to_string(),
        message: e.to_string(),
    })?;
    let policy = PolicyDocument::parse_str(&policy_text).map_err(|e| CommandError::Policy {
        path: policy_path.display().to_string(),
        message: e.to_string(),
    })?;
    let request_fail = |message: String| CommandError::Request {
        path: request_path.display().to_string(),
        message,
    };
    let request_text = std::fs::read_to_string(request_path).map_err(|e| request_fail(e.to_string()))?;
    let request: Request = serde_json::from_str(&request_text).map_err(|e| request_fail(e.to_string()))?;
    let evaluation = evaluate_policy(&policy, &request);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &evaluation).map_err(std::io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(ExitCode::SUCCESS)
}

impl Summary {
    fn count(&mut self, diagnosis: &diagnosis::Diagnosis) {
        if diagnosis.cause == Cause::None {
            self.successes += 1;
        } else {
            self.failures += 1;
        }
    }
}
