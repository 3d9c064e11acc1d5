//! Verified trust-policy changes. A change is proposed only after the edited policy has
//! been evaluated: it must allow this job's claims, and must not allow the same subject
//! under an owner nobody here controls. It never adds a value anyone can mint.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::{Claims, Provider};
use crate::evaluate::{evaluate, Decision, Request, Tri, ASSUME_ROLE_WITH_WEB_IDENTITY, TAG_SESSION};
use crate::keys::{request_context, split_claim_key, KeyFilter};
use crate::owner::{stranger_subject, subject_owner, Owner, OwnerScope, Trust};
use crate::policy::PolicyDocument;
use crate::subject::Subject;
use crate::text::quote;

/// IAM's largest trust policy (characters, whitespace excluded) with a raised quota.
const MAX_TRUST_POLICY_CHARS: usize = 4096;

/// `suggested_change` of the diagnosis JSON contract.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SuggestedChange {
    /// Index of the statement the change edits.
    pub statement: usize,
    /// The condition operator the values go under; `null` for `Action` and
    /// `Principal.Federated`.
    pub operator: Option<String>,
    /// A condition key, or `Action`, or `Principal.Federated`.
    pub key: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
    /// The whole trust policy after the change.
    pub policy: Value,
}

/// Where an edit writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Condition { operator: String, key: String },
    Action,
    FederatedPrincipal,
}

/// One edit of one statement: `remove` goes first (from every operator on the key),
/// then `add` under the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub statement: usize,
    pub target: Target,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

/// Why no policy change is proposed; the text goes into `fix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The job is not ours (or nobody said who is).
    NotOurs {
        trust: Trust,
        owner: Option<Owner>,
    },
    /// The subject names no owner: anyone can mint it.
    Ownerless {
        subject: String,
    },
    /// A value to add has no owner part or a wildcard there.
    Unownable {
        value: String,
    },
    /// The edited policy still denies this job.
    StillDenied,
    /// The edited policy would admit the same subject under another owner.
    AdmitsStranger {
        statement: usize,
    },
    /// The failing condition cannot be fixed by adding values (negated operators, several
    /// failing conditions, keys STS never sets).
    NotAnAddition {
        why: String,
    },
    TooLarge,
    /// The policy's JSON is not where the evaluation found it.
    Unlocatable,
}

impl Refusal {
    /// The sentence `fix` ends with when no change is proposed.
    pub fn explain(&self, claims: &Claims) -> String {
        match self {
            Refusal::NotOurs { trust: Trust::Unknown, .. } => "No trust-policy change is suggested: nothing says which owners are yours (set ALLOWED_OWNERS, or give an account snapshot whose trust policies name them).".to_owned(),
            Refusal::NotOurs { owner, .. } => format!(
                "No trust-policy change is suggested: the owner {} is not one of yours; if this is not your job, this is a probe and the policy did its job. If it is, add the owner to ALLOWED_OWNERS first.",
                owner.as_ref().map_or_else(|| "(none)".to_owned(), |o| quote(&o.to_string()))
            ),
            Refusal::Ownerless { subject } => format!(
                "No trust-policy change is safe: the subject {} names no repository owner, so anyone on the provider can mint it. Change the repository's subject template so it includes the repository (GitHub: PUT /repos/OWNER/REPO/actions/oidc/customization/sub with {{\"include_claim_keys\": [\"repo\", \"context\"]}}), then trust that subject.",
                quote(subject)
            ),
            Refusal::Unownable { value } => format!(
                "No trust-policy change is safe: the value {} has no fixed owner, so a stranger could match it.",
                quote(value)
            ),
            Refusal::StillDenied => "No single trust-policy change was found that lets this job in; check every failing condition above.".to_owned(),
            Refusal::AdmitsStranger { statement } => format!(
                "No trust-policy change is safe: statement {statement} would then also admit {} under another owner. Add a sub condition naming your owner first.",
                claims.subject.as_deref().map_or_else(|| "this subject".to_owned(), quote)
            ),
            Refusal::NotAnAddition { why } => format!("No trust-policy change is suggested: {why}."),
            Refusal::TooLarge => "No trust-policy change is suggested: the policy would exceed IAM's trust-policy size limit.".to_owned(),
            Refusal::Unlocatable => "No trust-policy change is suggested: the statement could not be located in the policy document.".to_owned(),
        }
    }
}

/// What the proposal is judged against.
pub struct Job<'a> {
    pub claims: &'a Claims,
    pub provider: &'a Provider,
    pub owner: Option<&'a Owner>,
    pub trust: Trust,
}

/// Applies `edit` to `policy` and proposes it, if it passes every check.
pub fn propose(edit: &Edit, policy: &PolicyDocument, job: &Job) -> Result<SuggestedChange, Refusal> {
    if job.trust != Trust::Ours {
        return Err(Refusal::NotOurs {
            trust: job.trust,
            owner: job.owner.cloned(),
        });
    }
    let scope = OwnerScope::of(job.provider.kind);
    let owned_by_provider = matches!(scope, Some(OwnerScope::Eks | OwnerScope::Bitbucket));
    if let Target::Condition { key, .. } = &edit.target {
        let is_sub = split_claim_key(key).is_some_and(|(prefix, claim)| {
            prefix.eq_ignore_ascii_case(&job.provider.url) && claim.eq_ignore_ascii_case("sub")
        });
        if is_sub && !owned_by_provider {
            let Some(scope) = scope else {
                return Err(Refusal::Unownable {
                    value: edit.add.first().cloned().unwrap_or_default(),
                });
            };
            for value in &edit.add {
                let named = subject_owner(scope, &Subject::parse(job.provider.kind, value));
                if !named.zip(job.owner).is_some_and(|(named, ours)| named.is(ours)) {
                    return Err(Refusal::Unownable { value: value.clone() });
                }
            }
        }
    }
    let edited = apply(&policy.source, edit).ok_or(Refusal::Unlocatable)?;
    let size: usize = serde_json::to_string(&edited).map_or(usize::MAX, |text| {
        text.chars().filter(|c| !c.is_whitespace()).count()
    });
    if size > MAX_TRUST_POLICY_CHARS {
        return Err(Refusal::TooLarge);
    }
    let document = PolicyDocument::from_value(&edited).map_err(|_| Refusal::Unlocatable)?;
    if !allows(&document, job.claims, job.provider) {
        return Err(Refusal::StillDenied);
    }
    let stranger = stranger_of(job, scope).ok_or_else(|| Refusal::Ownerless {
        subject: job.claims.subject.clone().unwrap_or_default(),
    })?;
    if let Some(statement) = may_allow(&document, &stranger) {
        return Err(Refusal::AdmitsStranger { statement });
    }
    let (operator, key) = match &edit.target {
        Target::Condition { operator, key } => (Some(operator.clone()), key.clone()),
        Target::Action => (None, "Action".to_owned()),
        Target::FederatedPrincipal => (None, "Principal.Federated".to_owned()),
    };
    Ok(SuggestedChange {
        statement: edit.statement,
        operator,
        key,
        add: edit.add.clone(),
        remove: edit.remove.clone(),
        policy: edited,
    })
}

fn request_for(policy: &PolicyDocument, claims: &Claims, provider: &Provider, action: &str) -> Request {
    Request {
        principal: provider.principal().to_owned(),
        action: action.to_owned(),
        context: request_context(claims, &KeyFilter::of(policy)),
    }
}

/// The policy allows the job, tags included, with every condition known to hold.
fn allows(policy: &PolicyDocument, claims: &Claims, provider: &Provider) -> bool {
    let allowed =
        |action| evaluate(policy, &request_for(policy, claims, provider, action)).decision == Decision::Allow;
    allowed(ASSUME_ROLE_WITH_WEB_IDENTITY) && (claims.session_tags.is_empty() || allowed(TAG_SESSION))
}

/// An Allow statement that matches, or might match, the stranger's request.
fn may_allow(policy: &PolicyDocument, stranger: &Claims) -> Option<usize> {
    let provider = stranger.provider.as_ref()?;
    let evaluation = evaluate(
        policy,
        &request_for(policy, stranger, provider, ASSUME_ROLE_WITH_WEB_IDENTITY),
    );
    evaluation
        .statements
        .iter()
        .find(|s| s.is_allow() && s.matched != Tri::False)
        .map(|s| s.index)
}

/// The job's claims as a stranger would present them: the same subject under another
/// owner, or, where the provider is the owner (EKS, Bitbucket), another provider.
fn stranger_of(job: &Job, scope: Option<OwnerScope>) -> Option<Claims> {
    let mut stranger = job.claims.clone();
    match scope? {
        OwnerScope::Eks | OwnerScope::Bitbucket => {
            let mut provider = job.provider.clone();
            provider.url = format!("{}-oidc-watch-stranger", provider.url);
            provider.arn = provider.account_id.as_deref().map(|a| provider.arn_in(a));
            stranger.provider = Some(provider);
        }
        scope => {
            let sub = job.claims.subject.as_deref()?;
            let replaced = stranger_subject(scope, &job.claims.parsed_subject, sub)?;
            stranger.parsed_subject = Subject::parse(job.provider.kind, &replaced);
            stranger.derived = stranger.parsed_subject.derived();
            stranger.subject = Some(replaced);
        }
    }
    Some(stranger)
}

/// `source` with `edit` applied; `None` when the statement is not there.
pub fn apply(source: &Value, edit: &Edit) -> Option<Value> {
    let mut policy = source.clone();
    let statement = match policy.get_mut("Statement")? {
        Value::Array(items) => items.get_mut(edit.statement)?,
        item @ Value::Object(_) if edit.statement == 0 => item,
        _ => return None,
    };
    let statement = statement.as_object_mut()?;
    match &edit.target {
        Target::Condition { operator, key } => {
            let conditions = statement
                .entry("Condition")
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()?;
            if !edit.remove.is_empty() {
                for block in conditions.values_mut() {
                    let Some(block) = block.as_object_mut() else {
                        continue;
                    };
                    for (_, values) in block.iter_mut().filter(|(k, _)| k.eq_ignore_ascii_case(key)) {
                        remove_values(values, &edit.remove);
                    }
                    block.retain(|_, v| !is_empty_list(v));
                }
                conditions.retain(|_, block| block.as_object().is_none_or(|b| !b.is_empty()));
            }
            if !edit.add.is_empty() {
                let block = conditions
                    .entry(operator.clone())
                    .or_insert_with(|| Value::Object(Map::new()))
                    .as_object_mut()?;
                let spelling = block
                    .keys()
                    .find(|k| k.eq_ignore_ascii_case(key))
                    .cloned()
                    .unwrap_or_else(|| key.clone());
                let values = block.entry(spelling).or_insert_with(|| Value::Array(Vec::new()));
                add_values(values, &edit.add);
            }
        }
        Target::Action => {
            let values = statement
                .entry("Action")
                .or_insert_with(|| Value::Array(Vec::new()));
            add_values(values, &edit.add);
        }
        Target::FederatedPrincipal => {
            let principal = statement
                .entry("Principal")
                .or_insert_with(|| Value::Object(Map::new()));
            if !principal.is_object() {
                return None;
            }
            let values = principal
                .as_object_mut()?
                .entry("Federated")
                .or_insert_with(|| Value::Array(Vec::new()));
            add_values(values, &edit.add);
        }
    }
    Some(policy)
}

fn is_empty_list(value: &Value) -> bool {
    value.as_array().is_some_and(Vec::is_empty)
}

fn remove_values(values: &mut Value, remove: &[String]) {
    match values {
        Value::String(s) if remove.contains(s) => *values = Value::Array(Vec::new()),
        Value::Array(items) => items.retain(|v| v.as_str().is_none_or(|s| !remove.iter().any(|r| r == s))),
        _ => {}
    }
}

fn add_values(values: &mut Value, add: &[String]) {
    let mut items = match values.take() {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        single => vec![single],
    };
    for value in add {
        if !items.iter().any(|v| v.as_str() == Some(value)) {
            items.push(Value::String(value.clone()));
        }
    }
    *values = if items.len() == 1 {
        items.remove(0)
    } else {
        Value::Array(items)
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn edits_land_in_the_statement_and_keep_the_rest() {
        let source = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"Federated": "p", "AWS": "arn:aws:iam::1:root"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"T:sub": "repo:a/b:*", "t:aud": "sts.amazonaws.com"}}}]});
        let moved = apply(
            &source,
            &Edit {
                statement: 0,
                target: Target::Condition {
                    operator: "StringLike".into(),
                    key: "t:sub".into(),
                },
                add: vec!["repo:a/b:*".into()],
                remove: vec!["repo:a/b:*".into()],
            },
        )
        .unwrap();
        assert_eq!(
            moved["Statement"][0]["Condition"],
            json!({"StringEquals": {"t:aud": "sts.amazonaws.com"}, "StringLike": {"t:sub": "repo:a/b:*"}})
        );
        assert_eq!(moved["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::1:root");
        let tagged = apply(
            &source,
            &Edit {
                statement: 0,
                target: Target::Action,
                add: vec!["sts:TagSession".into()],
                remove: vec![],
            },
        )
        .unwrap();
        assert_eq!(
            tagged["Statement"][0]["Action"],
            json!(["sts:AssumeRoleWithWebIdentity", "sts:TagSession"])
        );
        let missing = Edit {
            statement: 3,
            target: Target::Action,
            add: vec![],
            remove: vec![],
        };
        assert_eq!(apply(&source, &missing), None);
    }
}
