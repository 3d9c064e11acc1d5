//! From workflow files to reports: which jobs get AWS credentials by OIDC, the `id-token`
//! permission they end up with, the subjects they can present, and each subject's verdict.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use diagnosis::text::clean;

use super::permissions::{access, called_access, in_force, Access, IdToken, Permissions, SUGGESTED_BLOCK};
use super::subjects::{
    resolve, runs, subjects, JobFacts, Piece, PossibleSubject, Run, Scope, SubjectSettings,
};
use super::verdict::{Judge, Verdict, DEFAULT_AUDIENCE};
use super::workflow::{from_document, AwsStep, Job, Workflow, WORKFLOW_YAML};
use super::{CallRef, CheckError, FileReport, Finding, JobReport, Options, Severity, SubjectReport};

/// A workflow file found under the paths given.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    /// Relative to the repository root (`.github/workflows/x.yml`) when the file lies in
    /// one, else as given.
    pub display: String,
    /// The repository root and `.github/workflows/x.yml`, for reusable-workflow calls.
    pub key: Option<(PathBuf, String)>,
}

fn is_workflow_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e == "yml" || e == "yaml")
}

fn source(path: &Path, given: &Path) -> Source {
    let workflows_dir = path.parent();
    let root = workflows_dir
        .filter(|d| d.ends_with(".github/workflows"))
        .and_then(|d| d.parent())
        .and_then(|d| d.parent());
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match (root, name) {
        (Some(root), Some(name)) => {
            let key = format!(".github/workflows/{name}");
            Source {
                path: path.to_path_buf(),
                display: key.clone(),
                key: Some((root.to_path_buf(), key)),
            }
        }
        _ => Source {
            path: path.to_path_buf(),
            display: given.display().to_string(),
            key: None,
        },
    }
}

/// The workflow files under `paths`: a file as is; a directory's `.github/workflows/`,
/// or its own `*.yml`/`*.yaml` when it is not a repository root (no `.git`, no `.github`).
pub fn find_sources(paths: &[PathBuf]) -> Result<Vec<Source>, CheckError> {
    let mut sources = Vec::new();
    for given in paths {
        if given.is_file() {
            sources.push(source(given, given));
            continue;
        }
        if !given.is_dir() {
            return Err(CheckError::Path {
                path: given.display().to_string(),
                message: "no such file or directory".to_owned(),
            });
        }
        let nested = given.join(".github/workflows");
        let repository_root = given.join(".git").exists() || given.join(".github").is_dir();
        let dir = if nested.is_dir() {
            nested
        } else if repository_root {
            // A repository without workflows: its other YAML files are not workflows.
            continue;
        } else {
            given.clone()
        };
        let entries = std::fs::read_dir(&dir).map_err(|e| CheckError::Path {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && is_workflow_file(p))
            .collect();
        files.sort();
        for file in files {
            let display = file.strip_prefix(given).unwrap_or(&file).to_path_buf();
            sources.push(source(&file, &display));
        }
    }
    Ok(sources)
}

/// One parsed file: its workflows (one per YAML document).
pub struct Parsed {
    pub source: Source,
    pub workflows: Vec<Workflow>,
}

pub fn parse_source(source: Source) -> Result<Parsed, CheckError> {
    let bytes = std::fs::read(&source.path).map_err(|e| CheckError::Path {
        path: source.display.clone(),
        message: e.to_string(),
    })?;
    let text = String::from_utf8(bytes).map_err(|_| CheckError::Input {
        file: source.display.clone(),
        line: 1,
        message: "not UTF-8 text".to_owned(),
    })?;
    let workflows = parse_text(&text).map_err(|(line, message)| CheckError::Input {
        file: source.display.clone(),
        line,
        message,
    })?;
    Ok(Parsed { source, workflows })
}

/// The workflows of one file's text, or the line and reason it cannot be read.
pub fn parse_text(text: &str) -> Result<Vec<Workflow>, (usize, String)> {
    let documents = crate::yaml::parse(text, &WORKFLOW_YAML)
        .map_err(|e| (e.line, format!("column {}: {}", e.column, e.message)))?;
    documents
        .iter()
        .map(|doc| from_document(doc).map_err(|e| (e.line, e.message)))
        .collect()
}

/// A job in a parsed file.
#[derive(Clone, Copy)]
struct At<'a> {
    file: &'a Parsed,
    workflow: &'a Workflow,
    job: &'a Job,
}

/// Where `uses:` of a job points in the checked tree, and the ref it pins.
fn resolve_call<'a>(
    caller: At<'a>,
    files: &'a [Parsed],
    options: &Options,
) -> Option<(&'a Parsed, Option<Piece>)> {
    let (uses, _) = caller.job.uses.as_ref()?;
    let (root, key, pin) = if let Some(local) = uses.strip_prefix("./") {
        let (root, _) = caller.file.source.key.as_ref()?;
        (root.clone(), local.to_owned(), None)
    } else {
        let (path, git_ref) = uses.split_once('@')?;
        let mut parts = path.splitn(3, '/');
        let (owner, repo, rest) = (parts.next()?, parts.next()?, parts.next()?);
        let ours = options.settings.repository.as_ref()?;
        if !owner.eq_ignore_ascii_case(&ours.owner) || !repo.eq_ignore_ascii_case(&ours.name) {
            return None;
        }
        let (root, _) = caller.file.source.key.as_ref()?;
        let pin = if git_ref.len() == 40 && git_ref.bytes().all(|b| b.is_ascii_hexdigit()) {
            Piece::Literal(git_ref.to_owned())
        } else {
            // `@main` may be a branch or a tag: GitHub writes refs/heads/... or refs/tags/....
            Piece::Unknown
        };
        (root.clone(), rest.to_owned(), Some(pin))
    };
    files
        .iter()
        .find(|f| {
            f.source
                .key
                .as_ref()
                .is_some_and(|(r, k)| *r == root && *k == key)
        })
        .map(|f| (f, pin))
}

pub fn check(files: &[Parsed], options: &Options, judge: &Judge) -> Vec<FileReport> {
    let jobs: Vec<At> = files
        .iter()
        .flat_map(|file| {
            file.workflows
                .iter()
                .flat_map(move |workflow| workflow.jobs.iter().map(move |job| At { file, workflow, job }))
        })
        .collect();
    let calls: Vec<(At, &Parsed, Option<Piece>)> = jobs
        .iter()
        .filter_map(|&caller| resolve_call(caller, files, options).map(|(callee, pin)| (caller, callee, pin)))
        .collect();
    let mut reports: Vec<FileReport> = files
        .iter()
        .map(|f| FileReport {
            file: f.source.display.clone(),
            jobs: Vec::new(),
        })
        .collect();
    for (index, file) in files.iter().enumerate() {
        for workflow in &file.workflows {
            for job in &workflow.jobs {
                let at = At { file, workflow, job };
                for step in &job.aws_steps {
                    let callers: Vec<(At, Option<Piece>)> = calls
                        .iter()
                        .filter(|(_, callee, _)| std::ptr::eq(*callee, file))
                        .map(|(caller, _, pin)| (*caller, pin.clone()))
                        .collect();
                    reports[index]
                        .jobs
                        .push(direct(at, step, &callers, options, judge));
                }
            }
        }
    }
    for (caller, callee, pin) in &calls {
        let index = files
            .iter()
            .position(|f| std::ptr::eq(f, caller.file))
            .unwrap_or(0);
        for workflow in &callee.workflows {
            for job in &workflow.jobs {
                let at = At {
                    file: callee,
                    workflow,
                    job,
                };
                for step in &job.aws_steps {
                    if let Some(report) = reports.get_mut(index) {
                        report
                            .jobs
                            .push(through_call(*caller, at, pin.clone(), step, options, judge));
                    }
                }
            }
        }
    }
    reports
}

fn environment_values(at: At, scope: &Scope) -> Option<(Vec<String>, bool)> {
    let environment = at.job.environment.as_ref()?;
    Some(resolve(&environment.name, scope).unwrap_or((Vec::new(), false)))
}

fn workflow_path(at: At, options: &Options, pin: Option<Piece>) -> Option<(String, Option<Piece>)> {
    let repository = options.settings.repository.as_ref()?;
    let (_, key) = at.file.source.key.as_ref()?;
    Some((format!("{repository}/{key}"), pin))
}

/// Subjects of `at`'s job for `runs`, with `scope` resolving its expressions.
fn subjects_of(
    at: At,
    runs: &[Run],
    scope: &Scope,
    pin: Option<Piece>,
    settings: &SubjectSettings,
    options: &Options,
) -> Vec<PossibleSubject> {
    let environment = environment_values(at, scope);
    let facts = JobFacts {
        environment: environment.as_ref(),
        workflow_path: workflow_path(at, options, pin),
        workflow_name: at.workflow.name.as_deref(),
    };
    runs.iter()
        .flat_map(|run| subjects(run, &facts, settings))
        .collect()
}

fn own_runs(workflow: &Workflow, settings: &SubjectSettings) -> Vec<Run> {
    workflow
        .triggers
        .iter()
        .flat_map(|t| runs(t, settings.default_branch.as_deref()))
        .collect()
}

fn unknown_call() -> PossibleSubject {
    PossibleSubject {
        trigger: "workflow_call".to_owned(),
        subject: Piece::Unknown,
    }
}

fn scope_of<'a>(callee: At<'a>, caller: Option<At>) -> Scope<'a> {
    let mut inputs = callee.workflow.call_input_defaults.clone();
    if let Some(caller) = caller {
        for (name, value) in &caller.job.with {
            match value {
                Some(value) => {
                    inputs.insert(name.clone(), value.clone());
                }
                None => {
                    inputs.remove(name);
                }
            }
        }
    } else {
        inputs.clear();
    }
    Scope {
        inputs,
        matrix: Some(&callee.job.matrix),
    }
}

/// The report of a job that has the `configure-aws-credentials` step itself.
fn direct(
    at: At,
    step: &AwsStep,
    callers: &[(At, Option<Piece>)],
    options: &Options,
    judge: &Judge,
) -> JobReport {
    let settings = &options.settings;
    let block = in_force(at.job.permissions.as_ref(), at.workflow.permissions.as_ref());
    let own = access(block);
    let reusable = at.workflow.is_reusable();
    let started_alone = at.workflow.triggers.iter().any(|t| t.event != "workflow_call");
    let id_token = if reusable && !started_alone && (block.is_none() || own == Access::Write) {
        IdToken::DependsOnCaller
    } else {
        IdToken::from_access(own)
    };
    let mut findings = Vec::new();
    if id_token != IdToken::Granted && id_token != IdToken::DependsOnCaller {
        findings.push(id_token_finding(
            at.job,
            block,
            block.map_or(step.line, |b| b.line),
            id_token,
            None,
        ));
    }
    let own_scope = Scope {
        inputs: Default::default(),
        matrix: Some(&at.job.matrix),
    };
    let mut possible = subjects_of(
        at,
        &own_runs(at.workflow, settings),
        &own_scope,
        None,
        settings,
        options,
    );
    if reusable {
        if callers.is_empty() {
            possible.push(unknown_call());
        }
        for (caller, pin) in callers {
            let caller_access = access(in_force(
                caller.job.permissions.as_ref(),
                caller.workflow.permissions.as_ref(),
            ));
            let got = called_access(caller_access, block);
            if got != Access::Write && (block.is_none() || own == Access::Write) {
                findings.push(Finding {
                    code: "id-token-missing-from-caller",
                    severity: Severity::Error,
                    line: step.line,
                    message: format!(
                        "when called by job {} of {} (line {}), job {} gets no id-token: write: a called workflow gets at most what its caller grants. Add to job {} of {}:\n{}",
                        clean(&caller.job.id),
                        clean(&caller.file.source.display),
                        caller.job.line,
                        clean(&at.job.id),
                        clean(&caller.job.id),
                        clean(&caller.file.source.display),
                        indent(SUGGESTED_BLOCK)
                    ),
                });
            }
            let mut caller_runs = own_runs(caller.workflow, settings);
            // Callers of the caller are not followed.
            if caller.workflow.is_reusable() {
                possible.push(unknown_call());
            }
            caller_runs.retain(|r| r.event != "workflow_call");
            let scope = scope_of(at, Some(*caller));
            possible.extend(subjects_of(
                at,
                &caller_runs,
                &scope,
                pin.clone(),
                settings,
                options,
            ));
        }
    }
    let triggers = at.workflow.triggers.iter().map(|t| t.event.clone()).collect();
    let scope = match callers {
        [(caller, _)] => scope_of(at, Some(*caller)),
        _ => own_scope,
    };
    finish(
        Draft {
            at,
            line: step.line,
            step,
            id_token,
            triggers,
            calls: None,
            possible,
            findings,
            trigger_workflow: at.workflow,
            scope,
        },
        options,
        judge,
    )
}

/// The report of a job that calls, in the checked tree, a workflow whose job `callee`
/// has the step.
fn through_call(
    caller: At,
    callee: At,
    pin: Option<Piece>,
    step: &AwsStep,
    options: &Options,
    judge: &Judge,
) -> JobReport {
    let settings = &options.settings;
    let caller_block = in_force(
        caller.job.permissions.as_ref(),
        caller.workflow.permissions.as_ref(),
    );
    let callee_block = in_force(
        callee.job.permissions.as_ref(),
        callee.workflow.permissions.as_ref(),
    );
    let got = called_access(access(caller_block), callee_block);
    let id_token = IdToken::from_access(got);
    let line = caller.job.uses.as_ref().map_or(caller.job.line, |(_, l)| *l);
    let mut findings = Vec::new();
    if id_token != IdToken::Granted {
        let capped = callee_block.filter(|b| b.id_token() < Access::Write);
        let finding = match capped {
            Some(block) => Finding {
                code: "id-token-missing",
                severity: Severity::Error,
                line,
                message: format!(
                    "job {} calls {}, whose job {} cannot get an OIDC token: in {}, {}. Add id-token: write there (and to this job's permissions)",
                    clean(&caller.job.id),
                    clean(&callee.file.source.display),
                    clean(&callee.job.id),
                    clean(&callee.file.source.display),
                    block.why_not()
                ),
            },
            None => id_token_finding(caller.job, caller_block, caller_block.map_or(line, |b| b.line), id_token, Some(callee)),
        };
        findings.push(finding);
    }
    let mut runs = own_runs(caller.workflow, settings);
    let mut possible = Vec::new();
    if caller.workflow.is_reusable() {
        possible.push(unknown_call());
        runs.retain(|r| r.event != "workflow_call");
    }
    let scope = scope_of(callee, Some(caller));
    possible.extend(subjects_of(callee, &runs, &scope, pin, settings, options));
    let triggers = caller.workflow.triggers.iter().map(|t| t.event.clone()).collect();
    finish(
        Draft {
            at: callee,
            line,
            step,
            id_token,
            triggers,
            calls: Some(CallRef {
                file: callee.file.source.display.clone(),
                job: callee.job.id.clone(),
                line: step.line,
            }),
            possible,
            findings,
            trigger_workflow: caller.workflow,
            scope,
        },
        options,
        judge,
    )
    .with_identity(caller)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn id_token_finding(
    job: &Job,
    block: Option<&Permissions>,
    line: usize,
    id_token: IdToken,
    via: Option<At>,
) -> Finding {
    let why = match block {
        None => "no permissions block applies, and the repository default never includes id-token".to_owned(),
        Some(block) => block.why_not(),
    };
    let via = via.map_or(String::new(), |callee| {
        format!(
            " for the workflow it calls ({}, job {})",
            clean(&callee.file.source.display),
            clean(&callee.job.id)
        )
    });
    let how = match block {
        Some(block) if job.permissions.as_ref() == Some(block) && matches!(block.grant, super::permissions::Grant::Scopes { empty: false, .. }) => {
            format!("Add `id-token: write` to the permissions block of job {} on line {}", clean(&job.id), block.line)
        }
        _ => format!(
            "Add to job {} (a job-level block replaces the workflow's, so keep contents: read for actions/checkout):\n{}",
            clean(&job.id),
            indent(SUGGESTED_BLOCK)
        ),
    };
    Finding {
        code: if id_token == IdToken::ReadOnly {
            "id-token-read-only"
        } else {
            "id-token-missing"
        },
        severity: Severity::Error,
        line,
        message: format!(
            "job {} cannot request an OIDC token{via}: {why}. {how}",
            clean(&job.id)
        ),
    }
}

struct Draft<'a> {
    /// The job with the step.
    at: At<'a>,
    line: usize,
    step: &'a AwsStep,
    id_token: IdToken,
    triggers: Vec<String>,
    calls: Option<CallRef>,
    possible: Vec<PossibleSubject>,
    findings: Vec<Finding>,
    /// The workflow whose triggers start the run.
    trigger_workflow: &'a Workflow,
    scope: Scope<'a>,
}

/// The role ARN `role-to-assume` names, when it can be known.
fn role_arn(role: &str, scope: &Scope, options: &Options) -> Option<String> {
    let inner = role
        .strip_prefix("${{")
        .and_then(|r| r.strip_suffix("}}"))
        .map(str::trim);
    if let Some(name) = inner.and_then(|e| e.strip_prefix("secrets.").or_else(|| e.strip_prefix("vars."))) {
        return options.roles.get(name).cloned();
    }
    match resolve(role, scope) {
        Some((values, true)) if values.len() == 1 && values[0].starts_with("arn:") => {
            values.into_iter().next()
        }
        _ => None,
    }
}

fn finish(draft: Draft, options: &Options, judge: &Judge) -> JobReport {
    let Draft {
        at,
        line,
        step,
        id_token,
        triggers,
        calls,
        possible,
        mut findings,
        trigger_workflow,
        scope,
    } = draft;
    let role_arn = role_arn(&step.role, &scope, options);
    let audience = match &step.audience {
        None => Some(DEFAULT_AUDIENCE.to_owned()),
        Some(text) => match resolve(text, &scope) {
            Some((values, true)) if values.len() == 1 => values.into_iter().next(),
            _ => None,
        },
    };
    if role_arn.is_none() && !judge.accounts.is_empty() {
        findings.push(Finding {
            code: "role-unresolved",
            severity: Severity::Note,
            line: step.line,
            message: format!(
                "role-to-assume {} cannot be resolved here; pass --role NAME=ARN for ${{{{ secrets.NAME }}}} or ${{{{ vars.NAME }}}} to judge its trust policy",
                clean(&step.role)
            ),
        });
    }
    if let Some(environment) = &at.job.environment {
        findings.push(Finding {
            code: "environment-protection",
            severity: Severity::Note,
            line: environment.line,
            message: format!(
                "job {} runs in environment {}: if it has protection rules (required reviewers, a wait timer, branch rules), the job waits or is refused before any token exists; that is not an OIDC failure. Its subject is environment:<name>, whatever the trigger",
                clean(&at.job.id),
                clean(&environment.name)
            ),
        });
    }
    if id_token == IdToken::Granted || id_token == IdToken::DependsOnCaller {
        if let Some(trigger) = trigger_workflow
            .triggers
            .iter()
            .find(|t| t.event == "pull_request")
        {
            findings.push(Finding {
                code: "fork-pull-request",
                severity: Severity::Note,
                line: trigger.line,
                message: "pull_request runs from forks never get a write token, id-token included: from a fork this job cannot assume the role".to_owned(),
            });
        }
    }
    let mut seen = BTreeSet::new();
    let mut subjects = Vec::new();
    for p in possible {
        let (text, certain) = match &p.subject {
            Piece::Literal(s) => (s.clone(), true),
            Piece::Glob(s) => (s.clone(), false),
            Piece::Unknown => ("unknown".to_owned(), false),
        };
        if !seen.insert((p.trigger.clone(), text.clone())) {
            continue;
        }
        let literal = certain.then_some(text.as_str());
        let judgement = judge.judge(role_arn.as_deref(), literal, audience.as_deref());
        if judgement.verdict == Verdict::Denied {
            findings.push(Finding {
                code: "subject-denied",
                severity: Severity::Error,
                line,
                message: format!(
                    "the trust policy of {} denies {} ({}): {}{}",
                    clean(role_arn.as_deref().unwrap_or("the role")),
                    clean(&text),
                    clean(&p.trigger),
                    judgement.explanation.as_deref().unwrap_or(""),
                    judgement
                        .fix
                        .as_deref()
                        .map(|f| format!(" Fix: {f}"))
                        .unwrap_or_default()
                ),
            });
        }
        subjects.push(SubjectReport {
            trigger: p.trigger,
            subject: text,
            certain,
            verdict: judgement.verdict,
            cause: judgement.cause,
            explanation: judgement.explanation,
            fix: judgement.fix,
            suggested_change: judgement.suggested_change,
        });
    }
    JobReport {
        file: at.file.source.display.clone(),
        job: at.job.id.clone(),
        line,
        role: Some(step.role.clone()),
        role_arn,
        audience,
        id_token,
        triggers,
        environment: at.job.environment.as_ref().map(|e| e.name.clone()),
        calls,
        subjects,
        findings,
    }
}

impl JobReport {
    /// The report of the called job, said of the caller: its file, job and lines.
    fn with_identity(mut self, caller: At) -> JobReport {
        self.file = caller.file.source.display.clone();
        self.job = caller.job.id.clone();
        for finding in &mut self.findings {
            if matches!(finding.code, "environment-protection" | "role-unresolved") {
                finding.line = self.line;
            }
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{check, parse_text, Parsed, Source};
    use crate::workflows::subjects::Repository;
    use crate::workflows::verdict::Judge;
    use crate::workflows::Options;

    /// The whole check on `text` as `.github/workflows/x.yml`, when it parses.
    fn check_text(text: &str) -> Result<usize, (usize, String)> {
        let workflows = parse_text(text)?;
        let parsed = Parsed {
            source: Source {
                path: "x.yml".into(),
                display: ".github/workflows/x.yml".to_owned(),
                key: Some((".".into(), ".github/workflows/x.yml".to_owned())),
            },
            workflows,
        };
        let mut options = Options::default();
        options.settings.repository = Repository::parse("acme/web");
        let judge = Judge {
            accounts: Default::default(),
            owners: Default::default(),
        };
        Ok(check(&[parsed], &options, &judge).len())
    }

    fn line_count(text: &str) -> usize {
        text.split('\n').count()
    }

    /// Workflow-shaped lines: indentation, a key, an indicator and a value.
    fn workflow_line() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("on"),
            Just("jobs"),
            Just("permissions"),
            Just("id-token"),
            Just("environment"),
            Just("uses"),
            Just("with"),
            Just("role-to-assume"),
            Just("steps"),
            Just("- uses"),
            Just("branches"),
            Just("strategy"),
            Just("matrix"),
            Just("<<"),
        ];
        let value = prop_oneof![
            Just(String::new()),
            Just("write".to_owned()),
            Just("read-all".to_owned()),
            Just("{}".to_owned()),
            Just("[main, 'v*']".to_owned()),
            Just("&a {x: 1}".to_owned()),
            Just("*a".to_owned()),
            Just("aws-actions/configure-aws-credentials@v4".to_owned()),
            Just("./.github/workflows/x.yml".to_owned()),
            Just("${{ matrix.env }}".to_owned()),
            Just("\"${{ inputs.e }}\"".to_owned()),
            "[ -~]{0,12}",
        ];
        (0usize..8, key, value)
            .prop_map(|(indent, key, value)| format!("{}{key}: {value}", "  ".repeat(indent)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            if let Err((line, _)) = parse_text(&text) {
                prop_assert!(line <= line_count(&text) + 1);
            }
        }

        #[test]
        fn yaml_punctuation_never_panics(text in "([a-z0-9 ]|[-:\\[\\]{}&*!|>#,'\"?%@`~]|\n|\t|  ){0,200}") {
            if let Err((line, _)) = parse_text(&text) {
                prop_assert!(line <= line_count(&text) + 1);
            }
        }

        #[test]
        fn edited_fixtures_never_panic(
            file in 0usize..4,
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<char>(), 0u8..3), 1..12),
        ) {
            let fixtures = [
                include_str!("../../../../tests/data/workflows/acme-web/.github/workflows/deploy.yml"),
                include_str!("../../../../tests/data/workflows/acme-web/.github/workflows/reusable-caller.yml"),
                include_str!("../../../../tests/data/workflows/acme-web/.github/workflows/environments.yml"),
                include_str!("../../../../tests/data/workflows/acme-web/.github/workflows/anchors.yml"),
            ];
            let mut text: Vec<char> = fixtures[file].chars().collect();
            for (at, c, kind) in edits {
                if text.is_empty() {
                    break;
                }
                let i = at.index(text.len());
                match kind {
                    0 => text[i] = c,
                    1 => text.insert(i, c),
                    _ => {
                        text.remove(i);
                    }
                }
            }
            let text: String = text.into_iter().collect();
            match check_text(&text) {
                Ok(files) => prop_assert_eq!(files, 1),
                Err((line, _)) => prop_assert!(line <= line_count(&text) + 1),
            }
        }

        #[test]
        fn workflow_shaped_text_never_panics(lines in prop::collection::vec(workflow_line(), 0..40)) {
            let text = lines.join("\n");
            match check_text(&text) {
                Ok(files) => prop_assert_eq!(files, 1),
                Err((line, _)) => prop_assert!(line <= line_count(&text) + 1),
            }
        }
    }
}
