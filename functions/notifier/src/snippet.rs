//! The trust-policy change as people can paste it, rendered from the diagnosis'
//! `suggested_change`: the edited statement of `policy` (the whole trust policy after the
//! change, verified by the producer to admit this job and no other owner's), and a
//! one-line summary of what it adds and removes under which operator and key.
//!
//! Nothing here reads `fix`: that is prose for people, and the values it quotes are the
//! producer's rendering of them, not the values. No `suggested_change`, no snippet; the
//! message then shows the fix, which says why no policy change is safe.
//!
//! Every string of the statement (keys and values) is bounded like every other untrusted
//! value; a snippet whose strings had to be cut or escaped says so.

use serde_json::{Map, Value};

use crate::escape::{bound, code};
use crate::render::limits::MAX_EXPECTED_VALUES;
use diagnosis::suggest::SuggestedChange;
use diagnosis::Diagnosis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Index of the statement the change edits.
    pub statement: usize,
    /// What the change does, in one line of `mrkdwn`, values escaped already.
    pub summary: String,
    /// The edited statement as it reads after the change: pretty JSON, strings bounded,
    /// not yet escaped for Slack.
    pub json: String,
    /// A string was cut to the length limit or had characters escaped: the JSON is not
    /// literally the policy.
    pub shortened: bool,
}

/// The snippet for `d`'s suggested change, when it has one whose statement is in its
/// policy.
pub fn trust_policy_snippet(d: &Diagnosis) -> Option<Snippet> {
    let change = d.suggested_change.as_ref()?;
    let statement = edited_statement(&change.policy, change.statement)?;
    let mut shortened = false;
    let statement = bounded(statement, &mut shortened);
    Some(Snippet {
        statement: change.statement,
        summary: summary(change),
        json: serde_json::to_string_pretty(&statement).ok()?,
        shortened,
    })
}

/// `policy.Statement[index]`, or the single `Statement` object when `index` is 0: where
/// the producer applied the edit.
fn edited_statement(policy: &Value, index: usize) -> Option<&Value> {
    let statement = match policy.get("Statement")? {
        Value::Array(items) => items.get(index)?,
        item @ Value::Object(_) if index == 0 => item,
        _ => return None,
    };
    statement.is_object().then_some(statement)
}

/// `value` with every string (object keys too) passed through [`bound`].
fn bounded(value: &Value, shortened: &mut bool) -> Value {
    match value {
        Value::String(s) => Value::String(cut(s, shortened)),
        Value::Array(items) => Value::Array(items.iter().map(|v| bounded(v, shortened)).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                out.insert(cut(key, shortened), bounded(v, shortened));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn cut(text: &str, shortened: &mut bool) -> String {
    let cut = bound(text);
    *shortened |= cut != text;
    cut
}

/// `` `a`, `b` and 3 more ``.
fn values(items: &[String]) -> String {
    let mut shown: Vec<String> = items.iter().take(MAX_EXPECTED_VALUES).map(|v| code(v)).collect();
    if items.len() > MAX_EXPECTED_VALUES {
        shown.push(format!("and {} more", items.len() - MAX_EXPECTED_VALUES));
    }
    shown.join(", ")
}

/// The change in one line: ``Add `v` to `StringEquals` `key` in statement 0.`` The
/// producer removes `remove` from every operator on the key, then adds `add` under
/// `operator`; the line says exactly that.
fn summary(change: &SuggestedChange) -> String {
    let target = match &change.operator {
        Some(operator) => format!("{} {}", code(operator), code(&change.key)),
        None => code(&change.key),
    };
    let n = change.statement;
    let same =
        |a: &[String], b: &[String]| a.iter().all(|v| b.contains(v)) && b.iter().all(|v| a.contains(v));
    match (change.add.is_empty(), change.remove.is_empty()) {
        (false, true) => format!("Add {} to {target} in statement {n}.", values(&change.add)),
        (true, false) => format!(
            "Remove {} from {} in statement {n}.",
            values(&change.remove),
            code(&change.key)
        ),
        (false, false) if same(&change.add, &change.remove) => {
            format!("Move {} to {target} in statement {n}.", values(&change.add))
        }
        (false, false) => format!(
            "Remove {} from {} and add {} to {target} in statement {n}.",
            values(&change.remove),
            code(&change.key),
            values(&change.add)
        ),
        (true, true) => format!("Edit {target} in statement {n}."),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn with_change(change: Value, fix: &str) -> Diagnosis {
        Diagnosis {
            cause: diagnosis::Cause::SubjectMismatch,
            fix: Some(fix.to_owned()),
            suggested_change: serde_json::from_value(change).ok(),
            ..Diagnosis::default()
        }
    }

    fn policy(statement: Value) -> Value {
        json!({"Version": "2012-10-17", "Statement": statement})
    }

    #[test]
    fn shows_the_edited_statement_of_the_policy() {
        let edited = json!({
            "Effect": "Allow",
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {"k:sub": ["repo:a/b:ref:refs/heads/main", "repo:a/b:ref:refs/heads/dev"]}}
        });
        let d = with_change(
            json!({
                "statement": 1, "operator": "StringEquals", "key": "k:sub",
                "add": ["repo:a/b:ref:refs/heads/dev"], "remove": [],
                "policy": policy(json!([{"Effect": "Deny", "Action": "*"}, edited.clone()])),
            }),
            "",
        );
        let s = trust_policy_snippet(&d).unwrap();
        assert_eq!(s.json, serde_json::to_string_pretty(&edited).unwrap());
        assert_eq!(s.statement, 1);
        assert_eq!(
            s.summary,
            "Add `repo:a/b:ref:refs/heads/dev` to `StringEquals` `k:sub` in statement 1."
        );
        assert!(!s.shortened);
        // A single Statement object is statement 0.
        let d = with_change(
            json!({"statement": 0, "operator": null, "key": "Action",
                   "add": ["sts:TagSession"], "remove": [], "policy": policy(edited.clone())}),
            "",
        );
        let s = trust_policy_snippet(&d).unwrap();
        assert_eq!(s.json, serde_json::to_string_pretty(&edited).unwrap());
        assert_eq!(s.summary, "Add `sts:TagSession` to `Action` in statement 0.");
    }

    #[test]
    fn never_from_the_fix() {
        let fix = "In statement 0, replace \"repo:acme-labs/x:*\" with \"repo:Acme-Labs/x:*\".";
        assert_eq!(trust_policy_snippet(&with_change(Value::Null, fix)), None);
        let d = Diagnosis {
            suggested_change: None,
            ..with_change(Value::Null, fix)
        };
        assert_eq!(trust_policy_snippet(&d), None);
    }

    #[test]
    fn no_snippet_when_the_statement_is_not_in_the_policy() {
        for (statement, p) in [
            (3, policy(json!([{"Effect": "Allow"}]))),
            (1, policy(json!({"Effect": "Allow"}))),
            (0, policy(json!(["not an object"]))),
            (0, json!("not a policy")),
        ] {
            let d = with_change(
                json!({"statement": statement, "key": "k", "add": ["v"], "policy": p}),
                "",
            );
            assert_eq!(trust_policy_snippet(&d), None, "{statement}");
        }
    }

    #[test]
    fn long_strings_are_cut_and_said_to_be() {
        let long = "y".repeat(500);
        let d = with_change(
            json!({"statement": 0, "operator": "StringLike", "key": "k:sub",
                   "add": [long.clone()], "remove": ["old"],
                   "policy": policy(json!([{"Condition": {"StringLike": {"k:sub": long}}}]))}),
            "",
        );
        let s = trust_policy_snippet(&d).unwrap();
        assert!(s.shortened && !s.json.contains(&long));
        assert!(s.summary.starts_with("Remove `old` from `k:sub` and add `yyy"));
    }
}
