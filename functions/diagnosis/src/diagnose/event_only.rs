//! The best guess when nothing but the event is known.

use super::*;

use crate::claims::Claims;
use crate::mismatch::SubjectMismatch;
use crate::subject::{GitHubContext, GitHubFormat, Subject};
use crate::text::{clean, quote};

/// Without the role: the most probable cause from the event alone.
pub(super) fn from_event_alone(claims: &Claims) -> Verdict {
    let without = format!(
        "Without the trust policy of {} (no account snapshot for account {}), this is the most probable cause from the event alone: ",
        role_text(claims),
        clean(claims.account_id.as_deref().unwrap_or("unknown"))
    );
    let check = format!(
        "Compare the sub {} with the {}:sub values in the role's trust policy, or run again with --account for a certain answer.",
        quote(claims.subject.as_deref().unwrap_or("")),
        clean(claims.provider.as_ref().map_or("<provider>", |p| p.url.as_str()))
    );
    let guess = match &claims.parsed_subject {
        Subject::GitHub(s) if s.format == GitHubFormat::Immutable => Some((
            SubjectMismatch::ImmutableFormat,
            "the sub uses GitHub's immutable owner@id/repo@id form, which name-based trust policies (repo:owner/repo:*) do not match.",
        )),
        Subject::GitHub(s) if s.format == GitHubFormat::Custom => Some((
            SubjectMismatch::CustomTemplate,
            "the sub follows a customised claim template, which default-shaped trust policies do not match.",
        )),
        Subject::GitHub(s) => match s.context {
            GitHubContext::Environment(_) => Some((SubjectMismatch::Environment, "the job references an environment, so its sub carries environment:NAME instead of its branch; policies written for ref:refs/heads/… do not match it.")),
            GitHubContext::PullRequest => Some((SubjectMismatch::PullRequest, "pull-request runs get :pull_request in their sub, which branch-pinned policies do not match.")),
            GitHubContext::Tag(_) => Some((SubjectMismatch::Tag, "the job ran for a tag, which branch-pinned policies do not match.")),
            GitHubContext::Branch(_) | GitHubContext::Ref(_) => Some((SubjectMismatch::Branch, "most denials are a sub condition that does not allow this branch or repository.")),
            GitHubContext::Pattern(_) | GitHubContext::None => None,
        },
        _ => None,
    };
    let mut verdict = match (guess, &claims.subject) {
        (Some((kind, why)), _) => {
            let mut v = Verdict::new(
                Cause::SubjectMismatch,
                Confidence::Unknown,
                format!("{without}{why}"),
                check,
            );
            v.subject_mismatch = Some(kind);
            v
        }
        (None, Some(_)) => {
            let mut v = Verdict::new(
                Cause::SubjectMismatch,
                Confidence::Unknown,
                format!("{without}most AccessDenied answers to web-identity calls are a sub condition that does not allow the token's subject."),
                check,
            );
            v.subject_mismatch = Some(SubjectMismatch::Other);
            v
        }
        (None, None) => Verdict::new(
            Cause::Unknown,
            Confidence::Unknown,
            "The event shows neither the token's subject nor the role's trust policy.".to_owned(),
            None,
        ),
    };
    if claims.role_arn.is_none() {
        verdict.explanation.push_str(" The event names no role.");
    }
    verdict
}
