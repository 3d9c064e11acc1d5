//! The subjects whose calls a trust-policy change is judged by: those that assumed the
//! role successfully (CloudTrail files and archives, the monitor's record), and those a
//! caller names.

use std::collections::BTreeMap;

use diagnosis::claims::{Claims, Outcome};
use diagnosis::record::{CloudTrailRecord, RequestParameters, ResponseElements, UserIdentity};
use diagnosis::{read_input, InputItem, WebIdentityEvent};
use serde::Serialize;

use super::ImpactError;
use crate::input::{expand, PathOrStdin};

/// Where a subject was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// A successful call in CloudTrail (`--history`).
    History,
    /// A subject the monitor recorded as having assumed the role (`--observed`).
    Observed,
    /// A job of a workflow file (`--workflows`, read as `check-workflows` reads it).
    Workflow,
    /// An exact `sub` value of the old policy: only its stranger's variants are tried.
    Policy,
}

#[derive(Debug, Clone)]
pub struct Observed {
    /// The claims of one of its calls (one with session tags, if any had them).
    pub claims: Claims,
    pub origins: Vec<Origin>,
    /// Successful calls seen.
    pub calls: usize,
    pub last_seen: Option<String>,
    /// Where it was seen: `file` or `file: workflow job`.
    pub seen_in: Vec<String>,
}

impl Observed {
    pub fn key(&self) -> (String, String, String) {
        key_of(&self.claims)
    }
}

fn key_of(claims: &Claims) -> (String, String, String) {
    (
        claims
            .provider
            .as_ref()
            .map(|p| p.url.to_ascii_lowercase())
            .unwrap_or_default(),
        claims.subject.clone().unwrap_or_default(),
        claims.audience.clone().unwrap_or_default(),
    )
}

/// Most places listed per subject.
const MAX_SEEN_IN: usize = 5;

#[derive(Debug, Default)]
pub struct Subjects {
    by_key: BTreeMap<(String, String, String), Observed>,
    /// Successful calls of the role read from history.
    pub calls: usize,
    /// Web-identity records of the role that failed: not evidence of what works.
    pub failures: usize,
}

impl Subjects {
    pub fn into_vec(self) -> Vec<Observed> {
        self.by_key.into_values().collect()
    }

    /// Puts back a subject taken out with [`Subjects::into_vec`].
    pub fn insert(&mut self, observed: Observed) {
        self.by_key.insert(observed.key(), observed);
    }

    pub fn add(&mut self, claims: Claims, origin: Origin, seen_in: &str) {
        let time = claims.event_time.clone();
        let entry = self.by_key.entry(key_of(&claims)).or_insert_with(|| Observed {
            claims: claims.clone(),
            origins: Vec::new(),
            calls: 0,
            last_seen: None,
            seen_in: Vec::new(),
        });
        if !entry.origins.contains(&origin) {
            entry.origins.push(origin);
            entry.origins.sort();
        }
        if origin == Origin::History {
            entry.calls += 1;
        }
        if matches!(origin, Origin::History | Origin::Observed) && time > entry.last_seen {
            entry.last_seen = time;
        }
        if entry.claims.session_tags.is_empty() && !claims.session_tags.is_empty() {
            entry.claims.session_tags = claims.session_tags;
        }
        if entry.seen_in.len() < MAX_SEEN_IN && !entry.seen_in.iter().any(|s| s == seen_in) {
            entry.seen_in.push(seen_in.to_owned());
        }
    }
}

/// Reads every CloudTrail input and keeps the successful calls of `role` (in `account`,
/// when known). An input that cannot be read is an error naming the file and line.
pub fn read_history(
    inputs: &[String],
    role: &str,
    account: Option<&str>,
    subjects: &mut Subjects,
) -> Result<(), ImpactError> {
    for source in expand(inputs) {
        let source = source.map_err(|e| ImpactError::History(e.to_string()))?;
        if let PathOrStdin::Path(path) = &source {
            if !path.exists() {
                return Err(ImpactError::Input {
                    path: path.display().to_string(),
                    line: None,
                    message: "no such file or directory".to_owned(),
                });
            }
        }
        let input = source.read().map_err(|e| ImpactError::History(e.to_string()))?;
        for item in read_input(&input.bytes) {
            let event = match item {
                Ok(InputItem::Event(event)) => event,
                Ok(InputItem::Skipped { .. }) => continue,
                Err(error) => {
                    return Err(ImpactError::Input {
                        path: input.name.clone(),
                        line: Some(error.line),
                        message: format!("record {}: {}", error.record, error.message),
                    })
                }
            };
            let claims = Claims::from_event(&event);
            let same_role = claims
                .role_name
                .as_deref()
                .is_some_and(|name| name.eq_ignore_ascii_case(role));
            let same_account = match (account, claims.account_id.as_deref()) {
                (Some(want), Some(got)) => want == got,
                _ => true,
            };
            if !same_role || !same_account {
                continue;
            }
            if claims.outcome != Outcome::Success {
                subjects.failures += 1;
                continue;
            }
            if claims.subject.is_none() || claims.provider.is_none() {
                continue;
            }
            subjects.calls += 1;
            subjects.add(claims, Origin::History, &input.name);
        }
    }
    Ok(())
}

/// What `--workflows` needs besides the paths: `check-workflows`' identity flags.
pub struct WorkflowInputs<'a> {
    pub paths: &'a [std::path::PathBuf],
    pub repository: Option<String>,
    pub default_branch: Option<String>,
    pub sub_template: Option<String>,
    pub roles: Vec<String>,
}

/// The subjects the workflow jobs that assume `role` present, by `check-workflows`' own
/// reading of the files. Subjects it knows only as a pattern, and jobs whose role or
/// audience is an unresolved expression, are left out (the notes say how many).
pub fn read_workflows(
    inputs: &WorkflowInputs,
    role: &str,
    provider_arn: &str,
    subjects: &mut Subjects,
) -> Result<Vec<String>, ImpactError> {
    use crate::workflows::{check_paths, identity, CheckWorkflowsArgs, OutputFormat, Severity};
    let args = CheckWorkflowsArgs {
        paths: inputs.paths.to_vec(),
        repository: inputs.repository.clone(),
        default_branch: inputs.default_branch.clone(),
        sub_template: inputs.sub_template.clone(),
        immutable: None,
        github_api: None,
        accounts: Vec::new(),
        roles: inputs.roles.clone(),
        format: OutputFormat::Json,
        fail_on: Severity::Error,
    };
    let workflow_error = |e: crate::workflows::CheckError| ImpactError::Workflows(e.to_string());
    let options = identity::options(&args, inputs.paths).map_err(workflow_error)?;
    let reports = check_paths(inputs.paths, &options).map_err(workflow_error)?;
    let (mut unresolved_roles, mut patterns, mut unknown_audience) = (0usize, 0usize, 0usize);
    for job in reports.iter().flat_map(|f| &f.jobs) {
        let named = match job.role_arn.as_deref() {
            Some(arn) => diagnosis::claims::role_name_of(arn).is_some_and(|n| n.eq_ignore_ascii_case(role)),
            None => {
                let written = job.role.as_deref().unwrap_or("");
                if written.contains("${{") {
                    unresolved_roles += 1;
                }
                written.eq_ignore_ascii_case(role)
            }
        };
        if !named {
            continue;
        }
        let Some(audience) = job.audience.as_deref() else {
            unknown_audience += job.subjects.len();
            continue;
        };
        let seen_in = format!("{}:{} job {}", job.file, job.line, job.job);
        for subject in &job.subjects {
            if !subject.certain {
                patterns += 1;
                continue;
            }
            let claims = synthetic_claims(provider_arn, &subject.subject, audience, job.role_arn.as_deref());
            subjects.add(claims, Origin::Workflow, &seen_in);
        }
    }
    let mut notes = Vec::new();
    if unresolved_roles > 0 {
        notes.push(format!("{unresolved_roles} workflow job(s) assume a role given by an expression: pass --workflow-role NAME=ARN to include them."));
    }
    if patterns > 0 {
        notes.push(format!(
            "{patterns} workflow subject(s) are patterns (branch globs, unresolved expressions): not judged."
        ));
    }
    if unknown_audience > 0 {
        notes.push(format!(
            "{unknown_audience} workflow subject(s) request an audience given by an expression: not judged."
        ));
    }
    Ok(notes)
}

/// The claims a job would present: the same shape a CloudTrail record gives.
pub fn synthetic_claims(provider_arn: &str, subject: &str, audience: &str, role_arn: Option<&str>) -> Claims {
    let event = WebIdentityEvent {
        record: CloudTrailRecord {
            event_name: Some(diagnosis::record::EVENT_NAME.to_owned()),
            user_identity: Some(UserIdentity {
                identity_type: Some("WebIdentityUser".to_owned()),
                user_name: Some(subject.to_owned()),
                identity_provider: Some(provider_arn.to_owned()),
                ..UserIdentity::default()
            }),
            request_parameters: Some(RequestParameters {
                role_arn: role_arn.map(str::to_owned),
                ..RequestParameters::default()
            }),
            response_elements: Some(ResponseElements {
                subject_from_web_identity_token: Some(subject.to_owned()),
                provider: Some(provider_arn.to_owned()),
                audience: Some(audience.to_owned()),
                ..ResponseElements::default()
            }),
            ..CloudTrailRecord::default()
        },
        ..WebIdentityEvent::default()
    };
    Claims::from_event(&event)
}
