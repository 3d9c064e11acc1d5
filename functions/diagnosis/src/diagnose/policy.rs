//! The trust policy's judgement, statement by statement: which condition failed, and why.

use super::*;

use serde_json::Value;

use crate::claims::{Claims, Provider};
use crate::evaluate::{
    evaluate, ConditionTrace, Decision, Provenance, Request, StatementTrace, Tri,
    ASSUME_ROLE_WITH_WEB_IDENTITY, TAG_SESSION,
};
use crate::keys::{is_provided_claim, request_context, split_claim_key, KeyFilter};
use crate::mismatch::{self, SubjectMismatch, ValueEdit};
use crate::policy::{Operator, PolicyDocument};
use crate::snapshot::Role;
use crate::subject::GitHubContext;
use crate::suggest::{Edit, Target};
use crate::text::{clean, quote};

/// Why a trust policy denied, from the evaluation of every statement.
pub(super) fn judge_policy(
    claims: &Claims,
    provider: &Provider,
    role: &Role,
    policy: &PolicyDocument,
) -> Verdict {
    let request = Request {
        principal: provider.principal().to_owned(),
        action: ASSUME_ROLE_WITH_WEB_IDENTITY.to_owned(),
        context: request_context(claims, &KeyFilter::of(policy)),
    };
    let evaluation = evaluate(policy, &request);
    let statements = &evaluation.statements;
    let derived_used = |s: &StatementTrace| {
        s.conditions
            .iter()
            .any(|c| c.provenance == Some(Provenance::Derived))
    };
    let certain_unless_derived = |s: &StatementTrace| {
        if derived_used(s) {
            Confidence::Probable
        } else {
            Confidence::Certain
        }
    };

    if let Some(deny) = statements
        .iter()
        .find(|s| s.effect == "Deny" && s.matched == Tri::True)
    {
        let mut verdict = Verdict::new(
            Cause::ExplicitDeny,
            certain_unless_derived(deny),
            format!(
                "Statement {}{} of role {} is a Deny that matches this request{}: an explicit Deny overrides every Allow.",
                deny.index,
                sid_text(deny),
                role.name,
                conditions_text(deny)
            ),
            format!(
                "If {} should get in, narrow or remove the Deny in statement {}; otherwise the policy worked as intended.",
                subject_text(claims),
                deny.index
            ),
        );
        verdict.failed_conditions = deny.conditions.iter().map(|c| failed(deny.index, c)).collect();
        return verdict;
    }

    let allowing = statements.iter().find(|s| s.is_allow() && s.matched == Tri::True);
    let uncertain_deny = statements
        .iter()
        .find(|s| s.effect == "Deny" && s.matched == Tri::Unknown);
    if let Some(allow) = allowing {
        if let Some(deny) = uncertain_deny {
            return unverifiable(deny, role, "may deny");
        }
        if !claims.session_tags.is_empty() {
            let tag_request = Request {
                action: TAG_SESSION.to_owned(),
                ..request
            };
            if evaluate(policy, &tag_request).decision != Decision::Allow {
                let tags: Vec<String> = claims.session_tags.keys().take(10).map(|k| quote(k)).collect();
                return Verdict::new(
                    Cause::MissingTagSessionPermission,
                    certain_unless_derived(allow),
                    format!(
                        "The request carries session tags ({}), so STS also needs sts:TagSession, which no Allow statement of role {} grants; statement {} allows everything else.",
                        tags.join(", "),
                        role.name,
                        allow.index
                    ),
                    format!(
                        "In statement {}, set \"Action\": [\"sts:AssumeRoleWithWebIdentity\", \"sts:TagSession\"].",
                        allow.index
                    ),
                )
                .with_edit(Edit {
                    statement: allow.index,
                    target: Target::Action,
                    add: vec![TAG_SESSION.to_owned()],
                    remove: Vec::new(),
                });
            }
        }
        return Verdict::new(
            Cause::DeniedOutsideTrustPolicy,
            Confidence::Probable,
            format!(
                "Statement {} of role {}'s current trust policy allows this subject and audience, yet STS denied the call: a resource control policy (RCP) on STS denied it, or the trust policy was different when the call was made.",
                allow.index, role.name
            ),
            format!(
                "Look for an RCP attached to the account or its OUs that denies sts:AssumeRoleWithWebIdentity, and for UpdateAssumeRolePolicy calls on {} around {} in CloudTrail.",
                role.name,
                claims.event_time.as_deref().unwrap_or("the event's time")
            ),
        );
    }

    let allows: Vec<&StatementTrace> = statements.iter().filter(|s| s.is_allow()).collect();
    if let Some(maybe) = allows.iter().find(|s| s.matched == Tri::Unknown) {
        return unverifiable(maybe, role, "allows only if");
    }
    let federated: Vec<&StatementTrace> = allows.iter().copied().filter(|s| s.principal_matched).collect();
    if federated.is_empty() {
        let named: Vec<String> = policy
            .statements
            .iter()
            .flat_map(|s| s.federated_principals().iter().map(|p| quote(p)))
            .take(5)
            .collect();
        let target = allows.first().map_or(0, |s| s.index);
        let verdict = Verdict::new(
            Cause::PrincipalMismatch,
            Confidence::Certain,
            format!(
                "No Allow statement of role {} names the token's provider {} in Principal.Federated{}.",
                role.name,
                clean(provider.principal()),
                if named.is_empty() {
                    String::new()
                } else {
                    format!("; the policy names {}", named.join(", "))
                }
            ),
            format!(
                "In statement {target}, set \"Principal\": {{\"Federated\": \"{}\"}}.",
                clean(provider.principal())
            ),
        );
        return match allows.first() {
            Some(statement) => verdict.with_edit(Edit {
                statement: statement.index,
                target: Target::FederatedPrincipal,
                add: vec![provider.principal().to_owned()],
                remove: Vec::new(),
            }),
            None => verdict,
        };
    }
    let acting: Vec<&StatementTrace> = federated.iter().copied().filter(|s| s.action_matched).collect();
    if acting.is_empty() {
        let statement = federated[0];
        let actions = policy.statements[statement.index]
            .action
            .clone()
            .unwrap_or_default();
        return Verdict::new(
            Cause::ActionNotAllowed,
            Confidence::Certain,
            format!(
                "Statement {} names the provider, but its Action {} does not allow sts:AssumeRoleWithWebIdentity{}.",
                statement.index,
                actions.iter().map(|a| quote(a)).collect::<Vec<_>>().join(", "),
                if actions.iter().any(|a| a.eq_ignore_ascii_case("sts:AssumeRole")) {
                    " (sts:AssumeRole is for IAM principals, not web identities)"
                } else {
                    ""
                }
            ),
            format!("In statement {}, set \"Action\": \"sts:AssumeRoleWithWebIdentity\".", statement.index),
        )
        .with_edit(Edit {
            statement: statement.index,
            target: Target::Action,
            add: vec![ASSUME_ROLE_WITH_WEB_IDENTITY.to_owned()],
            remove: Vec::new(),
        });
    }
    // The statement written for this job: the fewest failing conditions, and among
    // those the one whose `sub` condition already matches.
    let sub_fails = |s: &StatementTrace| {
        s.failed_conditions().any(|c| {
            split_claim_key(&c.key).is_some_and(|(prefix, claim)| {
                prefix.eq_ignore_ascii_case(&provider.url) && claim.eq_ignore_ascii_case("sub")
            })
        })
    };
    let nearest = acting
        .iter()
        .copied()
        .min_by_key(|s| (s.failed_conditions().count(), sub_fails(s)))
        .unwrap_or(acting[0]);
    conditions_verdict(claims, provider, nearest)
}

pub(super) fn unverifiable(statement: &StatementTrace, role: &Role, verb: &str) -> Verdict {
    let unknown: Vec<&ConditionTrace> = statement
        .conditions
        .iter()
        .filter(|c| c.result == Tri::Unknown)
        .collect();
    let described: Vec<String> = unknown
        .iter()
        .map(|c| format!("{} {} {}", c.key, c.operator, list(&c.expected)))
        .collect();
    let mut verdict = Verdict::new(
        Cause::UnverifiableCondition,
        Confidence::Probable,
        format!(
            "Statement {}{} of role {} {verb} {}: claims CloudTrail does not record. Everything the event shows matches, so one of these is the likely reason.",
            statement.index,
            sid_text(statement),
            role.name,
            described.join(" and ")
        ),
        "Print the job's token claims (e.g. with github/actions-oidc-debugger) and compare them with these values; correct the condition or the workflow.".to_owned(),
    );
    verdict.failed_conditions = unknown.iter().map(|c| failed(statement.index, c)).collect();
    verdict
}

/// The nearest Allow statement failed on conditions: say which and why.
pub(super) fn conditions_verdict(
    claims: &Claims,
    provider: &Provider,
    statement: &StatementTrace,
) -> Verdict {
    #[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
    enum Part {
        Audience,
        Subject,
        DerivedClaim,
        NotProvided,
        Other,
    }
    let part_of = |c: &ConditionTrace| -> Part {
        match split_claim_key(&c.key) {
            Some((prefix, claim)) if prefix.eq_ignore_ascii_case(&provider.url) => {
                match claim.to_ascii_lowercase().as_str() {
                    "aud" => Part::Audience,
                    "sub" => Part::Subject,
                    _ if c.provenance == Some(Provenance::Derived) => Part::DerivedClaim,
                    claim if !is_provided_claim(provider.kind, claim) => Part::NotProvided,
                    _ => Part::Other,
                }
            }
            Some((_, claim)) if claim.eq_ignore_ascii_case("sub") || claim.eq_ignore_ascii_case("aud") => {
                Part::NotProvided
            }
            Some(_) => Part::NotProvided,
            None => Part::Other,
        }
    };
    let failing: Vec<&ConditionTrace> = statement.failed_conditions().collect();
    let failed_conditions: Vec<FailedCondition> =
        failing.iter().map(|c| failed(statement.index, c)).collect();
    let Some(first) = failing.iter().copied().min_by_key(|c| part_of(c)) else {
        return Verdict::new(
            Cause::Unknown,
            Confidence::Unknown,
            format!(
                "Statement {} did not match, for no reason the evaluation can name.",
                statement.index
            ),
            None,
        );
    };
    // One failing condition is fixed by one edit; several need the prose fix.
    let single = failing.len() == 1 && !Operator::parse(&first.operator).base.is_negated();
    let add_to_first = |values: Vec<String>, remove: Vec<String>, operator: &str| Edit {
        statement: statement.index,
        target: Target::Condition {
            operator: operator.to_owned(),
            key: first.key.clone(),
        },
        add: values,
        remove,
    };
    let mut verdict = match part_of(first) {
        Part::Audience => {
            let aud = claims.audience.as_deref().unwrap_or("");
            let edit = add_to_first(vec![aud.to_owned()], Vec::new(), &first.operator);
            let mut v = Verdict::new(
                Cause::AudienceMismatch,
                Confidence::Certain,
                format!(
                    "Statement {} requires {} {} {}, but the token's aud is {}.",
                    statement.index,
                    first.key,
                    first.operator,
                    list(&first.expected),
                    quote(aud)
                ),
                format!(
                    "Request the token with audience {} (configure-aws-credentials: audience: {}), or add {} to the {} values in statement {}.",
                    quote(first.expected.first().map_or("sts.amazonaws.com", String::as_str)),
                    first.expected.first().map_or("sts.amazonaws.com", String::as_str),
                    quote(aud),
                    first.key,
                    statement.index
                ),
            );
            v.edit = (single && !aud.is_empty()).then_some(edit);
            v
        }
        Part::Subject => {
            let sub = claims.subject.as_deref().unwrap_or("");
            let judged = mismatch::judge(
                provider.kind,
                &claims.parsed_subject,
                sub,
                Operator::parse(&first.operator),
                &first.key,
                &first.expected,
                statement.index,
            );
            let mut v = Verdict::new(Cause::SubjectMismatch, Confidence::Certain, judged.explanation, judged.fix);
            v.subject_mismatch = Some(judged.kind);
            let edit = match judged.edit {
                ValueEdit::AddSubject => add_to_first(vec![sub.to_owned()], Vec::new(), &first.operator),
                ValueEdit::AddBeside { add } => add_to_first(vec![add], Vec::new(), &first.operator),
                ValueEdit::Replace { remove, add } => add_to_first(vec![add], vec![remove], &first.operator),
                ValueEdit::Move { value, operator } => add_to_first(vec![value.clone()], vec![value], operator),
            };
            let pull_request = matches!(
                claims.parsed_subject.as_github().map(|s| &s.context),
                Some(GitHubContext::PullRequest)
            );
            if pull_request {
                // Anyone who can open a pull request can start such a run.
                v.fix = Some(format!(
                    "No trust-policy change is safe: {} is the subject of every pull-request run, which anyone who can open a pull request can start (pull_request_target runs get id-token). Deploy from a protected branch or an environment with required reviewers, and trust that subject instead.",
                    quote(sub)
                ));
            } else if single && !sub.is_empty() {
                v.edit = Some(edit);
            } else if !single {
                v.no_edit = Some(format!(
                    "statement {} fails on {} conditions, so no single change lets this job in",
                    statement.index,
                    failing.len()
                ));
            }
            v
        }
        Part::DerivedClaim => {
            let claim = split_claim_key(&first.key).map_or("", |(_, c)| c).to_ascii_lowercase();
            let kind = match claim.as_str() {
                "environment" => SubjectMismatch::Environment,
                "ref" if claims.derived.ref_type.as_deref() == Some("tag") => SubjectMismatch::Tag,
                "ref" => SubjectMismatch::Branch,
                "repository" | "repository_id" | "repository_owner_id" => SubjectMismatch::Repository,
                _ => SubjectMismatch::Other,
            };
            let actual = first.actual.as_ref().and_then(|a| a.first()).map_or(String::new(), |a| quote(a));
            let mut v = Verdict::new(
                Cause::SubjectMismatch,
                Confidence::Probable,
                format!(
                    "Statement {} requires {} {} {}, but the job's {claim} is {actual} (read from its sub {}).",
                    statement.index,
                    first.key,
                    first.operator,
                    list(&first.expected),
                    quote(claims.subject.as_deref().unwrap_or(""))
                ),
                format!("If this job should get in, add {actual} to the values of {} in statement {}.", first.key, statement.index),
            );
            v.subject_mismatch = Some(kind);
            if let (true, Some(value)) = (single, first.actual.as_ref().and_then(|a| a.first())) {
                v.edit = Some(add_to_first(vec![value.clone()], Vec::new(), &first.operator));
            }
            v
        }
        Part::NotProvided => Verdict::new(
            Cause::UnverifiableCondition,
            Confidence::Certain,
            format!(
                "Statement {} requires {} {} {}, but STS never sets {} for provider {}: the key is always missing, so this condition can never be true.",
                statement.index,
                first.key,
                first.operator,
                list(&first.expected),
                first.key,
                clean(&provider.url)
            ),
            format!(
                "Remove the condition on {} from statement {}, or use a key STS provides ({}:sub, {}:aud, or a provider-specific claim it evaluates).",
                first.key, statement.index, clean(&provider.url), clean(&provider.url)
            ),
        ),
        Part::Other => Verdict::new(
            Cause::Unknown,
            Confidence::Probable,
            format!(
                "Statement {} requires {} {} {}, and the request's value {} does not satisfy it.",
                statement.index,
                first.key,
                first.operator,
                list(&first.expected),
                first.actual.as_ref().map_or("(missing)".to_owned(), |a| list(a))
            ),
            format!("Check the condition on {} in statement {}.", first.key, statement.index),
        ),
    };
    verdict.failed_conditions = failed_conditions;
    verdict
}

pub(super) fn failed(statement: usize, condition: &ConditionTrace) -> FailedCondition {
    FailedCondition {
        statement,
        operator: condition.operator.clone(),
        key: condition.key.clone(),
        expected: condition.expected.clone(),
        actual: match condition.actual.as_deref() {
            None => Value::Null,
            Some([one]) => Value::String(one.clone()),
            Some(many) => Value::Array(many.iter().cloned().map(Value::String).collect()),
        },
        provenance: condition.provenance,
    }
}

pub(super) fn list(values: &[String]) -> String {
    match values {
        [one] => quote(one),
        many => format!(
            "[{}]",
            many.iter()
                .take(5)
                .map(|v| quote(v))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub(super) fn sid_text(statement: &StatementTrace) -> String {
    statement
        .sid
        .as_deref()
        .map_or(String::new(), |sid| format!(" ({})", quote(sid)))
}

pub(super) fn conditions_text(statement: &StatementTrace) -> String {
    let parts: Vec<String> = statement
        .conditions
        .iter()
        .map(|c| format!("{} {} {}", c.key, c.operator, list(&c.expected)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(" and "))
    }
}
