//! How a token's `sub` differs from the nearest value a trust policy allows, and the
//! value that would let it in.

use crate::pattern;
use crate::policy::{BaseOperator, Operator};
use crate::subject::{GitHubContext, GitHubFormat, GitHubSubject, ProviderKind, Subject};
use crate::text::quote;

crate::names::named_enum! {
    pub enum SubjectMismatch {
    Branch,
    Tag,
    Environment,
    PullRequest,
    Repository,
    Case,
    ImmutableFormat,
    CustomTemplate,
    WildcardUnderStringEquals,
    Whitespace,
    Other,
    }
    unknown => Other
}

impl SubjectMismatch {
    /// Lower is nearer: a slip in an otherwise right value beats a different job.
    fn distance(self) -> u8 {
        match self {
            SubjectMismatch::WildcardUnderStringEquals
            | SubjectMismatch::Whitespace
            | SubjectMismatch::Case => 0,
            SubjectMismatch::ImmutableFormat => 1,
            SubjectMismatch::Branch
            | SubjectMismatch::Tag
            | SubjectMismatch::Environment
            | SubjectMismatch::PullRequest => 2,
            SubjectMismatch::CustomTemplate => 3,
            SubjectMismatch::Other => 4,
            SubjectMismatch::Repository => 5,
        }
    }
}

/// The judgement on one failing `sub` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MismatchVerdict {
    pub kind: SubjectMismatch,
    /// The allowed value the subject is nearest to.
    pub nearest: String,
    pub explanation: String,
    pub fix: String,
    /// The policy edit the fix describes, for a verified `suggested_change`.
    pub edit: ValueEdit,
}

/// How the values of the failing `sub` condition change to let this job in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueEdit {
    /// Add the job's exact subject.
    AddSubject,
    /// Replace `remove` with `add` (a slip in the value: case, whitespace).
    Replace { remove: String, add: String },
    /// Add `add` beside the existing value (both forms in use).
    AddBeside { add: String },
    /// Move `value` to another operator (a wildcard under StringEquals).
    Move { value: String, operator: &'static str },
}

/// Judges `sub` against the values of one failing condition and picks the nearest.
pub fn judge(
    kind: ProviderKind,
    subject: &Subject,
    sub: &str,
    operator: Operator,
    key: &str,
    expected: &[String],
    statement: usize,
) -> MismatchVerdict {
    let verdicts = expected
        .iter()
        .map(|value| judge_value(kind, subject, sub, operator, key, value, statement));
    verdicts
        .min_by_key(|v| v.kind.distance())
        .unwrap_or_else(|| MismatchVerdict {
            kind: SubjectMismatch::Other,
            nearest: String::new(),
            explanation: format!(
                "Statement {statement} has an empty list of values for {key}, so no subject matches."
            ),
            fix: format!(
                "Add {} to the values of {key} in statement {statement}.",
                quote(sub)
            ),
            edit: ValueEdit::AddSubject,
        })
}

fn like_or_equal(operator: Operator, value: &str, sub: &str) -> bool {
    match operator.base {
        BaseOperator::StringLike => pattern::like(value, sub),
        BaseOperator::StringEqualsIgnoreCase => value.to_lowercase() == sub.to_lowercase(),
        _ => value == sub,
    }
}

fn strip_whitespace(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{FEFF}'))
        .collect()
}

fn judge_value(
    kind: ProviderKind,
    subject: &Subject,
    sub: &str,
    operator: Operator,
    key: &str,
    value: &str,
    statement: usize,
) -> MismatchVerdict {
    let q_sub = quote(sub);
    let q_value = quote(value);
    let op = operator_name(operator);
    let verdict = |kind, explanation: String, fix: String| MismatchVerdict {
        kind,
        nearest: value.to_owned(),
        explanation,
        fix,
        edit: ValueEdit::AddSubject,
    };
    let requires = format!("Statement {statement} requires {key} {op} {q_value}");

    if matches!(
        operator.base,
        BaseOperator::StringEquals | BaseOperator::StringEqualsIgnoreCase
    ) && pattern::has_wildcard(value)
        && pattern::like(value, sub)
    {
        return MismatchVerdict {
            edit: ValueEdit::Move {
                value: value.to_owned(),
                operator: "StringLike",
            },
            ..verdict(
                SubjectMismatch::WildcardUnderStringEquals,
                format!("{requires}, but under {op} `*` and `?` are literal characters, so it matches no real subject; the token's sub is {q_sub}."),
                format!("In statement {statement}, move {key} from {op} to StringLike: \"StringLike\": {{\"{key}\": {q_value}}}."),
            )
        };
    }
    let trimmed = strip_whitespace(value);
    if trimmed != value && like_or_equal(operator, &trimmed, sub) {
        let fix = format!(
            "In statement {statement}, replace {q_value} with {}.",
            quote(&trimmed)
        );
        return MismatchVerdict {
            edit: ValueEdit::Replace {
                remove: value.to_owned(),
                add: trimmed,
            },
            ..verdict(
                SubjectMismatch::Whitespace,
                format!("{requires}, which holds whitespace or invisible characters that the token's sub {q_sub} does not; IAM compares exactly."),
                fix,
            )
        };
    }
    let case_fixed = match operator.base {
        BaseOperator::StringLike => pattern::with_case_of(value, sub),
        _ => (value.to_lowercase() == sub.to_lowercase()).then(|| sub.to_owned()),
    };
    if let Some(fixed) = case_fixed {
        let fix = format!(
            "In statement {statement}, replace {q_value} with {} (owner and repository names keep their case in the sub).",
            quote(&fixed)
        );
        return MismatchVerdict {
            edit: ValueEdit::Replace {
                remove: value.to_owned(),
                add: fixed,
            },
            ..verdict(
                SubjectMismatch::Case,
                format!("{requires}, which differs from the token's sub {q_sub} only in letter case; {op} is case-sensitive."),
                fix,
            )
        };
    }

    let expected = Subject::parse(kind, value);
    if let (Subject::GitHub(actual), Subject::GitHub(allowed)) = (subject, &expected) {
        return judge_github(actual, allowed, sub, value, &requires, key, op, statement);
    }
    let (kind_found, detail) = compare_generic(subject, &expected);
    verdict(
        kind_found,
        format!("{requires}, but the token's sub is {q_sub}{detail}."),
        add_value_fix(statement, key, op, sub),
    )
}

fn operator_name(operator: Operator) -> &'static str {
    match operator.base {
        BaseOperator::StringEquals => "StringEquals",
        BaseOperator::StringLike => "StringLike",
        BaseOperator::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
        BaseOperator::StringNotEquals => "StringNotEquals",
        BaseOperator::StringNotLike => "StringNotLike",
        BaseOperator::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
        _ => "the condition",
    }
}

fn add_value_fix(statement: usize, key: &str, op: &str, value: &str) -> String {
    let op = if op == "StringEquals" || op == "StringLike" {
        op
    } else {
        "StringLike"
    };
    format!(
        "If this job should assume the role, add {} to the {op} values of {key} in statement {statement}.",
        quote(value)
    )
}

#[allow(clippy::too_many_arguments)]
fn judge_github(
    actual: &GitHubSubject,
    allowed: &GitHubSubject,
    sub: &str,
    value: &str,
    requires: &str,
    key: &str,
    op: &str,
    statement: usize,
) -> MismatchVerdict {
    let q_sub = quote(sub);
    let verdict = |kind, explanation: String, fix: String| MismatchVerdict {
        kind,
        nearest: value.to_owned(),
        explanation,
        fix,
        edit: ValueEdit::AddSubject,
    };
    let immutable = |s: &GitHubSubject| s.owner_id.is_some() || s.repository_id.is_some();

    if actual.format == GitHubFormat::Custom || allowed.format == GitHubFormat::Custom {
        let (explanation, fix) = if actual.format == GitHubFormat::Custom {
            (
                format!("{requires}, in the default repo:OWNER/REPO:… shape, but this repository sends a customised subject ({q_sub}): an include_claim_keys template changes its whole shape."),
                format!(
                    "Add a value in the template's shape, e.g. {} to the {} values of {key} in statement {statement}; or reset the template with PUT /repos/OWNER/REPO/actions/oidc/customization/sub {{\"use_default\": true}}.",
                    quote(sub),
                    if op == "StringEquals" { "StringEquals" } else { "StringLike" }
                ),
            )
        } else {
            (
                format!("{requires}, a customised subject template, but the token's sub {q_sub} is in the default shape: the repository does not use that template (use_default is true)."),
                format!(
                    "Opt the repository into the template (PUT /repos/OWNER/REPO/actions/oidc/customization/sub {{\"use_default\": false}}), or add {} to the values of {key} in statement {statement}.",
                    quote(sub)
                ),
            )
        };
        return verdict(SubjectMismatch::CustomTemplate, explanation, fix);
    }

    if immutable(actual) != immutable(allowed) {
        let names_match = |a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(a), Some(b)) => pattern::like(b, a),
            _ => true,
        };
        let same_names = names_match(&actual.owner, &allowed.owner)
            && names_match(&actual.repository_name, &allowed.repository_name);
        if same_names {
            let mut edit = ValueEdit::AddSubject;
            let (explanation, fix) = if immutable(actual) {
                let rewritten = rewrite_repository(value, allowed, actual);
                edit = ValueEdit::AddBeside {
                    add: rewritten.clone(),
                };
                (
                    format!("{requires}, which names the repository by name, but the token's sub {q_sub} uses GitHub's immutable owner@id/repo@id form (repositories created or renamed after 2026-07-15, or opted in)."),
                    format!(
                        "In statement {statement}, replace {} with {} (or add it beside the old value while both forms are in use).",
                        quote(value),
                        quote(&rewritten)
                    ),
                )
            } else {
                (
                    format!("{requires}, in the immutable owner@id/repo@id form, but the token's sub {q_sub} names the repository by name: the repository does not send immutable subjects."),
                    format!(
                        "Opt the repository into immutable subject claims, or add {} to the values of {key} in statement {statement}.",
                        quote(sub)
                    ),
                )
            };
            return MismatchVerdict {
                edit,
                ..verdict(SubjectMismatch::ImmutableFormat, explanation, fix)
            };
        }
    }

    let repo_matches = match (actual.repository_in_subject(), allowed.repository_in_subject()) {
        (Some(a), Some(b)) => pattern::like(&b, &a),
        _ => true,
    };
    if !repo_matches {
        let same_owner = match (&actual.owner, &allowed.owner) {
            (Some(a), Some(b)) => pattern::like(b, a),
            _ => false,
        };
        let repository = actual.repository().unwrap_or_default();
        let fix = if same_owner {
            add_value_fix(statement, key, op, sub)
        } else {
            format!(
                "The owner {} appears nowhere in this value. If the job is not one of yours, this is a probe and the policy did its job; otherwise add {} to the values of {key} in statement {statement}.",
                quote(actual.owner.as_deref().unwrap_or("")),
                quote(sub)
            )
        };
        return verdict(
            SubjectMismatch::Repository,
            format!(
                "{requires}, but the token comes from repository {}: {q_sub}.",
                quote(&repository)
            ),
            fix,
        );
    }

    let describe = |c: &GitHubContext| match c {
        GitHubContext::Branch(b) if b == "*" => "any branch".to_owned(),
        GitHubContext::Branch(b) if pattern::has_wildcard(b) => format!("branches matching {}", quote(b)),
        GitHubContext::Branch(b) => format!("branch {}", quote(b)),
        GitHubContext::Tag(t) if t == "*" => "any tag".to_owned(),
        GitHubContext::Tag(t) if pattern::has_wildcard(t) => format!("tags matching {}", quote(t)),
        GitHubContext::Tag(t) => format!("tag {}", quote(t)),
        GitHubContext::Ref(r) => format!("ref {}", quote(r)),
        GitHubContext::PullRequest => "a pull_request run".to_owned(),
        GitHubContext::Environment(e) => format!("environment {}", quote(e)),
        GitHubContext::Pattern(p) => format!("any context matching {}", quote(p)),
        GitHubContext::None => "no context".to_owned(),
    };
    let kind = match (&actual.context, &allowed.context) {
        (GitHubContext::Environment(_), _) | (_, GitHubContext::Environment(_)) => {
            SubjectMismatch::Environment
        }
        (GitHubContext::PullRequest, _) | (_, GitHubContext::PullRequest) => SubjectMismatch::PullRequest,
        (GitHubContext::Tag(_), _) | (_, GitHubContext::Tag(_)) => SubjectMismatch::Tag,
        (GitHubContext::Branch(_), GitHubContext::Branch(_)) => SubjectMismatch::Branch,
        _ => SubjectMismatch::Other,
    };
    let why = match (&actual.context, kind) {
        (GitHubContext::Environment(_), SubjectMismatch::Environment) => {
            " A job that references an environment gets environment:NAME in its sub instead of its ref."
        }
        (GitHubContext::PullRequest, SubjectMismatch::PullRequest) => {
            " Pull-request runs get :pull_request in their sub, with no branch."
        }
        _ => "",
    };
    let explanation = format!(
        "{requires}, which allows {}, but the job ran for {}: {q_sub}.{why}",
        describe(&allowed.context),
        describe(&actual.context)
    );
    let fix = match (&actual.context, actual.repository_in_subject()) {
        (GitHubContext::Branch(_), Some(repo)) if op != "StringEquals" => format!(
            "If this branch should deploy, add {} to the StringLike values of {key} in statement {statement} ({} would allow every branch).",
            quote(sub),
            quote(&format!("repo:{repo}:ref:refs/heads/*"))
        ),
        (GitHubContext::Tag(_), Some(repo)) if op != "StringEquals" => format!(
            "If tag runs should deploy, add {} to the StringLike values of {key} in statement {statement} ({} would allow every tag).",
            quote(sub),
            quote(&format!("repo:{repo}:ref:refs/tags/*"))
        ),
        _ => add_value_fix(statement, key, op, sub),
    };
    verdict(kind, explanation, fix)
}

/// `repo:acme/infra:*` with the ids of `repo:acme@1/infra@2:…` gives `repo:acme@1/infra@2:*`.
fn rewrite_repository(value: &str, allowed: &GitHubSubject, actual: &GitHubSubject) -> String {
    let (Some(owner), Some(repo)) = (allowed.owner.as_deref(), allowed.repository_name.as_deref()) else {
        return value.to_owned();
    };
    let with_id = |name: &str, id: &Option<String>| match id {
        Some(id) if !pattern::has_wildcard(name) => format!("{name}@{id}"),
        _ => name.to_owned(),
    };
    let from = format!("{owner}/{repo}");
    let to = format!(
        "{}/{}",
        with_id(owner, &actual.owner_id),
        with_id(repo, &actual.repository_id)
    );
    value.replacen(&from, &to, 1)
}

/// For subjects other than GitHub's: which part differs.
fn compare_generic(actual: &Subject, expected: &Subject) -> (SubjectMismatch, String) {
    match (actual, expected) {
        (Subject::GitLab(a), Subject::GitLab(e)) | (Subject::Buildkite(a), Subject::Buildkite(e)) => {
            let differs = |k: &str| match (a.get(k), e.get(k)) {
                (Some(x), Some(y)) => !pattern::like(y, x),
                _ => false,
            };
            if differs("project_path") || differs("pipeline") || differs("organization") {
                (
                    SubjectMismatch::Repository,
                    " (another project or pipeline)".to_owned(),
                )
            } else if differs("ref_type") || a.get("ref").is_some_and(|r| r.starts_with("refs/tags/")) {
                (SubjectMismatch::Tag, " (a tag, not the allowed ref)".to_owned())
            } else if differs("ref") {
                let hint = match (a.get("ref"), e.get("ref")) {
                    (Some(x), Some(y)) if y.starts_with("refs/heads/") && !x.starts_with("refs/") => {
                        "; GitLab puts the bare branch name in ref, without refs/heads/"
                    }
                    _ => "",
                };
                (SubjectMismatch::Branch, format!(" (another branch{hint})"))
            } else {
                (SubjectMismatch::Other, String::new())
            }
        }
        (Subject::CircleCi(a), Subject::CircleCi(e)) => {
            if !pattern::like(&e.project_id, &a.project_id) {
                (SubjectMismatch::Repository, " (another project)".to_owned())
            } else if a.vcs_origin.is_some() != e.vcs_origin.is_some() {
                (
                    SubjectMismatch::Other,
                    " (v1 and v2 CircleCI tokens have different subjects)".to_owned(),
                )
            } else {
                (SubjectMismatch::Branch, String::new())
            }
        }
        _ => (SubjectMismatch::Other, String::new()),
    }
}
