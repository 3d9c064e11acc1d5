//! The `sub` claims a job can present, per trigger and filter, under the repository's
//! subject template (github/docs `reference/security/oidc.md`): the default
//! `repo:OWNER/REPO:<context>`, an `include_claim_keys` template, or the immutable
//! `repo:OWNER@OWNER_ID/REPO@REPO_ID:<context>`. What cannot be known is `unknown`.

use std::collections::BTreeMap;
use std::fmt;

use super::workflow::{Matrix, Trigger};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub owner: String,
    pub name: String,
}

impl Repository {
    /// `OWNER/REPO` with GitHub's name characters.
    pub fn parse(text: &str) -> Option<Repository> {
        let (owner, name) = text.trim().split_once('/')?;
        let owner_ok = !owner.is_empty()
            && owner.len() <= 39
            && owner.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name != "."
            && name != ".."
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        (owner_ok && name_ok).then(|| Repository {
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Template {
    #[default]
    Default,
    /// `include_claim_keys`, in order.
    Claims(Vec<String>),
}

impl Template {
    pub fn parse(list: &str) -> Template {
        let keys: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_owned)
            .collect();
        if keys.is_empty() || keys == ["repo", "context"] {
            Template::Default
        } else {
            Template::Claims(keys)
        }
    }
}

/// What the subject depends on besides the job: who the repository is, and how GitHub
/// builds its `sub`.
#[derive(Debug, Clone, Default)]
pub struct SubjectSettings {
    pub repository: Option<Repository>,
    pub default_branch: Option<String>,
    pub template: Template,
    /// `(owner id, repository id)` of the immutable subject.
    pub immutable: Option<(String, String)>,
}

/// Part of a subject: known, a glob (several values, not one certain literal), or unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Literal(String),
    Glob(String),
    Unknown,
}

impl Piece {
    fn map(self, f: impl FnOnce(String) -> String) -> Piece {
        match self {
            Piece::Literal(s) => Piece::Literal(f(s)),
            Piece::Glob(s) => Piece::Glob(f(s)),
            Piece::Unknown => Piece::Unknown,
        }
    }

    fn join(pieces: Vec<Piece>, separator: &str) -> Piece {
        let mut glob = false;
        let mut parts = Vec::with_capacity(pieces.len());
        for piece in pieces {
            match piece {
                Piece::Literal(s) => parts.push(s),
                Piece::Glob(s) => {
                    glob = true;
                    parts.push(s);
                }
                Piece::Unknown => return Piece::Unknown,
            }
        }
        let text = parts.join(separator);
        if glob {
            Piece::Glob(text)
        } else {
            Piece::Literal(text)
        }
    }
}

/// One way a workflow starts: its event and the ref the run gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub event: String,
    pub git_ref: Piece,
    /// The context is `pull_request` (unless an environment overrides it).
    pub pull_request: bool,
    /// The event certainly gives that context (review events are less documented).
    pub context_certain: bool,
}

fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '+', '[', ']'])
}

fn filter_refs(prefix: &str, patterns: &[String]) -> Vec<Piece> {
    patterns
        .iter()
        .filter(|p| !p.starts_with('!'))
        .map(|p| {
            let full = if p.starts_with("refs/") {
                p.clone()
            } else {
                format!("{prefix}{p}")
            };
            if p.contains("${{") {
                Piece::Unknown
            } else if is_glob(p) {
                Piece::Glob(full)
            } else {
                Piece::Literal(full)
            }
        })
        .collect()
}

/// The runs `trigger` starts. `workflow_call` is not among them: its runs are its callers'.
pub fn runs(trigger: &Trigger, default_branch: Option<&str>) -> Vec<Run> {
    let run = |git_ref: Piece| Run {
        event: trigger.event.clone(),
        git_ref,
        pull_request: false,
        context_certain: true,
    };
    let default_ref = || match default_branch {
        Some(branch) => Piece::Literal(format!("refs/heads/{branch}")),
        None => Piece::Unknown,
    };
    let any_branch = || Piece::Glob("refs/heads/*".to_owned());
    let any_tag = || Piece::Glob("refs/tags/*".to_owned());
    let branches = trigger.branches.as_ref().filter(|b| !b.is_empty());
    match trigger.event.as_str() {
        "push" => {
            let tags = trigger.tags.as_ref().filter(|t| !t.is_empty());
            let mut refs = Vec::new();
            if let Some(branches) = branches {
                refs.extend(filter_refs("refs/heads/", branches));
            } else if trigger.branches_ignore {
                refs.push(any_branch());
            }
            if let Some(tags) = tags {
                refs.extend(filter_refs("refs/tags/", tags));
            } else if trigger.tags_ignore {
                refs.push(any_tag());
            }
            let filtered =
                branches.is_some() || tags.is_some() || trigger.branches_ignore || trigger.tags_ignore;
            if !filtered {
                refs = vec![any_branch(), any_tag()];
            }
            refs.into_iter().map(run).collect()
        }
        "pull_request" | "pull_request_target" | "pull_request_review" | "pull_request_review_comment" => {
            let git_ref = if trigger.event == "pull_request_target" {
                match branches {
                    Some(b) if b.len() == 1 => filter_refs("refs/heads/", b).pop().unwrap_or(Piece::Unknown),
                    Some(_) => Piece::Glob("refs/heads/*".to_owned()),
                    None => default_ref(),
                }
            } else {
                Piece::Glob("refs/pull/*/merge".to_owned())
            };
            vec![Run {
                pull_request: true,
                context_certain: matches!(trigger.event.as_str(), "pull_request" | "pull_request_target"),
                ..run(git_ref)
            }]
        }
        "merge_group" => match branches {
            Some(branches) => filter_refs("", branches)
                .into_iter()
                .map(|base| match base {
                    Piece::Literal(b) | Piece::Glob(b) => Piece::Glob(format!(
                        "refs/heads/gh-readonly-queue/{}/*",
                        b.trim_start_matches("refs/heads/")
                    )),
                    Piece::Unknown => Piece::Unknown,
                })
                .map(run)
                .collect(),
            None => vec![run(Piece::Glob("refs/heads/gh-readonly-queue/*".to_owned()))],
        },
        "release" => vec![run(any_tag())],
        "create" => vec![run(any_branch()), run(any_tag())],
        "workflow_call" => Vec::new(),
        "workflow_dispatch"
        | "schedule"
        | "workflow_run"
        | "repository_dispatch"
        | "issues"
        | "issue_comment"
        | "discussion"
        | "discussion_comment"
        | "watch"
        | "fork"
        | "label"
        | "milestone"
        | "gollum"
        | "page_build"
        | "public"
        | "status"
        | "check_run"
        | "check_suite"
        | "delete"
        | "project"
        | "project_card"
        | "project_column"
        | "registry_package"
        | "branch_protection_rule" => vec![run(default_ref())],
        _ => vec![run(Piece::Unknown)],
    }
}

/// Literal values for `${{ inputs.X }}` and `${{ matrix.X }}` where they are known.
#[derive(Debug, Clone, Default)]
pub struct Scope<'a> {
    pub inputs: BTreeMap<String, String>,
    pub matrix: Option<&'a Matrix>,
}

/// Every value `text` can take, `None` when an expression in it cannot be resolved;
/// `bool` is whether the list is certainly what runs.
pub fn resolve(text: &str, scope: &Scope) -> Option<(Vec<String>, bool)> {
    let mut results = vec![String::new()];
    let mut certain = true;
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        let end = rest[start..].find("}}")? + start;
        let expression = rest[start + 3..end].trim();
        let literal = &rest[..start];
        let values: Vec<String> = if let Some(name) = expression.strip_prefix("inputs.") {
            vec![scope.inputs.get(name)?.clone()]
        } else if let Some(name) = expression.strip_prefix("matrix.") {
            let matrix = scope.matrix?;
            certain &= !matrix.uncertain;
            let mut values = matrix.values.get(name)?.clone();
            values.dedup();
            values
        } else {
            return None;
        };
        if values.iter().any(|v| v.contains("${{")) || results.len() * values.len() > 64 {
            return None;
        }
        results = results
            .iter()
            .flat_map(|r| values.iter().map(move |v| format!("{r}{literal}{v}")))
            .collect();
        rest = &rest[end + 2..];
    }
    for r in &mut results {
        r.push_str(rest);
    }
    results.sort();
    results.dedup();
    Some((results, certain))
}

/// `:` inside a claim value, as GitHub writes it.
fn encode(value: &str) -> String {
    value.replace(':', "%3A")
}

/// What a subject needs about the job beyond its run.
#[derive(Debug, Clone)]
pub struct JobFacts<'a> {
    /// The environment's possible names, or `None` without an environment; an empty list
    /// is an environment whose name cannot be resolved.
    pub environment: Option<&'a (Vec<String>, bool)>,
    /// `OWNER/REPO/.github/workflows/x.yml` of the workflow the job is defined in, and
    /// the ref it is pinned to when it is called as `OWNER/REPO/...@ref` (`None`: the
    /// run's own ref).
    pub workflow_path: Option<(String, Option<Piece>)>,
    pub workflow_name: Option<&'a str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PossibleSubject {
    pub trigger: String,
    pub subject: Piece,
}

pub fn subjects(run: &Run, job: &JobFacts, settings: &SubjectSettings) -> Vec<PossibleSubject> {
    let contexts: Vec<(Piece, Option<Piece>)> = match job.environment {
        Some((names, certain)) if !names.is_empty() => names
            .iter()
            .map(|name| {
                let piece = if *certain {
                    Piece::Literal(encode(name))
                } else {
                    Piece::Glob(encode(name))
                };
                (piece.clone().map(|n| format!("environment:{n}")), Some(piece))
            })
            .collect(),
        Some(_) => vec![(Piece::Unknown, Some(Piece::Unknown))],
        None if run.pull_request => {
            let context = if run.context_certain {
                Piece::Literal("pull_request".to_owned())
            } else {
                Piece::Glob("pull_request".to_owned())
            };
            vec![(context, None)]
        }
        None => vec![(run.git_ref.clone().map(|r| format!("ref:{}", encode(&r))), None)],
    };
    contexts
        .into_iter()
        .map(|(context, environment)| PossibleSubject {
            trigger: run.event.clone(),
            subject: subject(run, context, environment, job, settings),
        })
        .collect()
}

fn subject(
    run: &Run,
    context: Piece,
    environment: Option<Piece>,
    job: &JobFacts,
    settings: &SubjectSettings,
) -> Piece {
    let Some(repository) = &settings.repository else {
        return Piece::Unknown;
    };
    let repo = match &settings.immutable {
        Some((owner_id, repo_id)) => format!("{}@{owner_id}/{}@{repo_id}", repository.owner, repository.name),
        None => repository.to_string(),
    };
    let keys = match &settings.template {
        Template::Default => return Piece::join(vec![Piece::Literal(format!("repo:{repo}")), context], ":"),
        Template::Claims(keys) => keys,
    };
    let literal = |s: String| Piece::Literal(s);
    let pieces = keys
        .iter()
        .map(|key| {
            let value = match key.as_str() {
                "repo" => literal(repo.clone()),
                "context" => context.clone(),
                "repository" => literal(repository.to_string()),
                "repository_owner" => literal(repository.owner.clone()),
                "repository_id" => settings
                    .immutable
                    .as_ref()
                    .map_or(Piece::Unknown, |(_, r)| literal(r.clone())),
                "repository_owner_id" => settings
                    .immutable
                    .as_ref()
                    .map_or(Piece::Unknown, |(o, _)| literal(o.clone())),
                "ref" => run.git_ref.clone().map(|r| encode(&r)),
                "ref_type" => match &run.git_ref {
                    Piece::Literal(r) | Piece::Glob(r) if r.starts_with("refs/tags/") => {
                        literal("tag".to_owned())
                    }
                    Piece::Literal(r) | Piece::Glob(r)
                        if r.starts_with("refs/heads/") || r.starts_with("refs/pull/") =>
                    {
                        literal("branch".to_owned())
                    }
                    _ => Piece::Unknown,
                },
                "environment" => environment.clone().unwrap_or(Piece::Unknown),
                "event_name" => literal(run.event.clone()),
                "workflow" => job.workflow_name.map_or(Piece::Unknown, |n| literal(encode(n))),
                "job_workflow_ref" => match &job.workflow_path {
                    Some((path, Some(pinned))) => pinned.clone().map(|p| format!("{path}@{p}")),
                    Some((path, None)) => run.git_ref.clone().map(|r| format!("{path}@{r}")),
                    None => Piece::Unknown,
                },
                _ => Piece::Unknown,
            };
            // `context` is written bare: `repo:o/r:environment:prod`.
            if key == "context" {
                value
            } else {
                Piece::join(vec![literal(key.clone()), value], ":")
            }
        })
        .collect();
    Piece::join(pieces, ":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SubjectSettings {
        SubjectSettings {
            repository: Repository::parse("acme/web"),
            default_branch: Some("main".to_owned()),
            ..SubjectSettings::default()
        }
    }

    fn push(branches: &[&str]) -> Trigger {
        Trigger {
            event: "push".to_owned(),
            branches: Some(branches.iter().map(|b| b.to_string()).collect()),
            ..Trigger::default()
        }
    }

    fn facts() -> JobFacts<'static> {
        JobFacts {
            environment: None,
            workflow_path: Some(("acme/web/.github/workflows/d.yml".to_owned(), None)),
            workflow_name: Some("deploy"),
        }
    }

    #[test]
    fn default_template() {
        let runs = runs(&push(&["main", "release/*"]), Some("main"));
        let subs: Vec<Piece> = runs
            .iter()
            .flat_map(|r| subjects(r, &facts(), &settings()))
            .map(|s| s.subject)
            .collect();
        assert_eq!(
            subs,
            vec![
                Piece::Literal("repo:acme/web:ref:refs/heads/main".to_owned()),
                Piece::Glob("repo:acme/web:ref:refs/heads/release/*".to_owned())
            ]
        );
    }

    #[test]
    fn custom_and_immutable() {
        let mut settings = settings();
        settings.template = Template::parse("repo,context,job_workflow_ref");
        settings.immutable = Some(("11".to_owned(), "22".to_owned()));
        let run = &runs(&push(&["main"]), Some("main"))[0];
        let sub = &subjects(run, &facts(), &settings)[0].subject;
        assert_eq!(
            sub,
            &Piece::Literal(
                "repo:acme@11/web@22:ref:refs/heads/main:job_workflow_ref:acme/web/.github/workflows/d.yml@refs/heads/main".to_owned()
            )
        );
    }

    #[test]
    fn resolves_inputs_and_matrix() {
        let matrix = Matrix {
            values: [("env".to_owned(), vec!["a".to_owned(), "b".to_owned()])].into(),
            uncertain: false,
        };
        let scope = Scope {
            inputs: [("p".to_owned(), "x".to_owned())].into(),
            matrix: Some(&matrix),
        };
        assert_eq!(
            resolve("${{ inputs.p }} ${{ matrix.env }}", &scope),
            Some((vec!["x a".to_owned(), "x b".to_owned()], true))
        );
        assert_eq!(resolve("${{ github.ref }}", &scope), None);
        assert_eq!(resolve("${{ inputs.q }}", &scope), None);
    }
}
