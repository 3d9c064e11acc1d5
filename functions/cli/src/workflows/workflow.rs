//! The parts of a GitHub Actions workflow that decide its OIDC token: triggers and their
//! filters, `permissions`, jobs with their environment, matrix, reusable-workflow call
//! and `aws-actions/configure-aws-credentials` steps.

use std::collections::BTreeMap;

use super::permissions::Permissions;
use crate::yaml::{self, Node, Value};

pub const CONFIGURE_AWS_CREDENTIALS: &str = "aws-actions/configure-aws-credentials";

/// Workflow files as GitHub reads them: every document, closing brackets left of their key
/// accepted.
pub const WORKFLOW_YAML: yaml::Options = yaml::Options {
    max_nodes: 200_000,
    first_document_only: false,
    flow_closers_anywhere: true,
};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ShapeError {
    pub line: usize,
    pub message: String,
}

fn shape(line: usize, message: impl Into<String>) -> ShapeError {
    ShapeError {
        line,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Default)]
pub struct Workflow {
    pub name: Option<String>,
    pub triggers: Vec<Trigger>,
    pub permissions: Option<Permissions>,
    pub jobs: Vec<Job>,
    /// `on.workflow_call.inputs.<name>.default`, when literal.
    pub call_input_defaults: BTreeMap<String, String>,
}

impl Workflow {
    pub fn is_reusable(&self) -> bool {
        self.triggers.iter().any(|t| t.event == "workflow_call")
    }
}

/// One event under `on:`, with the ref filters that shape the subject.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trigger {
    pub event: String,
    pub line: usize,
    pub branches: Option<Vec<String>>,
    pub branches_ignore: bool,
    pub tags: Option<Vec<String>>,
    pub tags_ignore: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Environment {
    pub name: String,
    pub line: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Job {
    pub id: String,
    pub line: usize,
    pub permissions: Option<Permissions>,
    pub environment: Option<Environment>,
    /// `uses:` of a job that calls a reusable workflow, and its line.
    pub uses: Option<(String, usize)>,
    /// `with:` of such a job: literal inputs for the called workflow.
    pub with: BTreeMap<String, Option<String>>,
    pub matrix: Matrix,
    pub aws_steps: Vec<AwsStep>,
}

/// `strategy.matrix` values per key, as far as they are literal.
#[derive(Debug, Clone, Default)]
pub struct Matrix {
    pub values: BTreeMap<String, Vec<String>>,
    /// `exclude` (or a matrix given by an expression): the listed values may not all run.
    pub uncertain: bool,
}

/// A `configure-aws-credentials` step with `role-to-assume` and no static keys.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsStep {
    pub line: usize,
    pub uses: String,
    pub role: String,
    pub audience: Option<String>,
}

pub fn from_document(doc: &Node) -> Result<Workflow, ShapeError> {
    if doc.is_null() {
        return Ok(Workflow::default());
    }
    if !doc.is_mapping() {
        return Err(shape(doc.line, "a workflow is a mapping (name:, on:, jobs:)"));
    }
    let mut workflow = Workflow {
        name: doc.get("name").and_then(Node::as_str).map(str::to_owned),
        ..Workflow::default()
    };
    // YAML 1.1 readers turn a bare `on` into `true`; GitHub and yaml-rust2 keep the string.
    if let Some(on) = doc.get("on").or_else(|| doc.get("true")) {
        workflow.triggers = triggers(on)?;
        workflow.call_input_defaults = call_input_defaults(on);
    }
    if let Some((key, node)) = doc.entry("permissions") {
        workflow.permissions = Some(Permissions::parse(node, key.line)?);
    }
    if let Some(jobs) = doc.get("jobs") {
        if !jobs.is_mapping() && !jobs.is_null() {
            return Err(shape(jobs.line, "jobs: must be a mapping of job ids to jobs"));
        }
        for (key, body) in jobs.entries() {
            let id = key
                .as_str()
                .ok_or_else(|| shape(key.line, "a job id must be a string"))?;
            workflow.jobs.push(job(id, key.line, body)?);
        }
    }
    Ok(workflow)
}

fn triggers(on: &Node) -> Result<Vec<Trigger>, ShapeError> {
    let event = |name: &str, line: usize| Trigger {
        event: name.to_owned(),
        line,
        ..Trigger::default()
    };
    match &on.value {
        Value::Scalar { text, .. } => Ok(vec![event(text, on.line)]),
        Value::Sequence(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(|name| event(name, item.line))
                    .ok_or_else(|| shape(item.line, "each event under on: must be a name"))
            })
            .collect(),
        Value::Mapping(entries) => entries
            .iter()
            .map(|(key, config)| {
                let name = key
                    .as_str()
                    .ok_or_else(|| shape(key.line, "each event under on: must be a name"))?;
                let mut trigger = event(name, key.line);
                let list = |k: &str| {
                    config
                        .get(k)
                        .map(|n| n.strings().into_iter().map(str::to_owned).collect())
                };
                trigger.branches = list("branches");
                trigger.tags = list("tags");
                trigger.branches_ignore = config.get("branches-ignore").is_some();
                trigger.tags_ignore = config.get("tags-ignore").is_some();
                Ok(trigger)
            })
            .collect(),
        Value::Null { .. } => Err(shape(on.line, "on: names no event")),
    }
}

fn call_input_defaults(on: &Node) -> BTreeMap<String, String> {
    let Some(inputs) = on.get("workflow_call").and_then(|c| c.get("inputs")) else {
        return BTreeMap::new();
    };
    inputs
        .entries()
        .iter()
        .filter_map(|(name, spec)| {
            let default = spec.get("default")?.as_str()?;
            Some((name.as_str()?.to_owned(), default.to_owned()))
        })
        .collect()
}

fn job(id: &str, line: usize, body: &Node) -> Result<Job, ShapeError> {
    if !body.is_mapping() {
        return Err(shape(body.line, format!("job {id:?} must be a mapping")));
    }
    let mut job = Job {
        id: id.to_owned(),
        line,
        ..Job::default()
    };
    if let Some((key, node)) = body.entry("permissions") {
        job.permissions = Some(Permissions::parse(node, key.line)?);
    }
    if let Some((env_key, env)) = body.entry("environment") {
        let name = match &env.value {
            Value::Scalar { text, .. } => Some(text.as_str()),
            Value::Mapping(_) => env.get("name").and_then(Node::as_str),
            _ => None,
        };
        match name {
            Some(name) => {
                job.environment = Some(Environment {
                    name: name.to_owned(),
                    line: env_key.line,
                })
            }
            None if env.is_null() => {}
            None => {
                return Err(shape(
                    env.line,
                    "environment: must be a name or a mapping with name:",
                ))
            }
        }
    }
    if let Some(uses) = body.get("uses") {
        let text = uses
            .as_str()
            .ok_or_else(|| shape(uses.line, "uses: of a job must be a workflow reference"))?;
        job.uses = Some((text.to_owned(), uses.line));
        if let Some(with) = body.get("with") {
            job.with = with
                .entries()
                .iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str().map(str::to_owned))))
                .collect();
        }
    }
    if let Some(strategy) = body.get("strategy") {
        job.matrix = matrix(strategy.get("matrix"));
    }
    if let Some(steps) = body.get("steps") {
        for step in steps.items() {
            if let Some(aws) = aws_step(step) {
                job.aws_steps.push(aws);
            }
        }
    }
    Ok(job)
}

fn matrix(node: Option<&Node>) -> Matrix {
    let Some(node) = node else {
        return Matrix::default();
    };
    if !node.is_mapping() {
        return Matrix {
            uncertain: true,
            ..Matrix::default()
        };
    }
    let mut matrix = Matrix::default();
    for (key, value) in node.entries() {
        match key.as_str() {
            Some("exclude") => matrix.uncertain = true,
            Some("include") => {
                for item in value.items() {
                    for (k, v) in item.entries() {
                        if let (Some(k), Some(v)) = (k.as_str(), v.as_str()) {
                            matrix.values.entry(k.to_owned()).or_default().push(v.to_owned());
                        }
                    }
                }
            }
            Some(name) => {
                let values: Vec<String> = value
                    .items()
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                if values.len() == value.items().len() && !values.is_empty() {
                    matrix.values.entry(name.to_owned()).or_default().extend(values);
                }
            }
            None => {}
        }
    }
    matrix
}

/// A step that gets AWS credentials by OIDC, if `step` is one.
fn aws_step(step: &Node) -> Option<AwsStep> {
    let uses = step.get("uses")?;
    let action = uses.as_str()?;
    let (name, _version) = action.split_once('@')?;
    if !name.eq_ignore_ascii_case(CONFIGURE_AWS_CREDENTIALS) {
        return None;
    }
    let with = step.get("with")?;
    let role = with.get("role-to-assume")?;
    let role = role.as_str()?.trim();
    if role.is_empty() || with.get("aws-access-key-id").is_some_and(|k| !k.is_null()) {
        return None;
    }
    Some(AwsStep {
        line: step.line,
        uses: action.to_owned(),
        role: role.to_owned(),
        audience: with.get("audience").and_then(Node::as_str).map(str::to_owned),
    })
}
