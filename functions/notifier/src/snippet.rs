//! The fix as a trust-policy fragment people can paste: the failing condition as it
//! should read, or the `Principal` / `Action` the statement needs.
//!
//! Built from the diagnosis' structured fields (the failed condition's operator, key and
//! expected values, the token's actual value), never by scraping prose, except for the
//! replacement a `Case` or `ImmutableFormat` fix names, which the diagnosis computes and
//! only states in its `fix`. Values are bounded like every other untrusted value; a
//! fragment whose values had to be cut says so.

use serde_json::{json, Map, Value};

use crate::escape::bound;
use crate::notice::{DiagnosisView, FailedConditionView};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Our own words: where the fragment goes.
    pub title: String,
    /// Pretty JSON, not yet escaped for Slack.
    pub json: String,
    /// A value was cut to the length limit: the fragment is not literally right.
    pub shortened: bool,
}

/// The fragment for `d`, when its cause has one.
pub fn trust_policy_snippet(d: &DiagnosisView) -> Option<Snippet> {
    match d.cause.as_deref()? {
        "SubjectMismatch" | "AudienceMismatch" => condition_snippet(d),
        "PrincipalMismatch" => {
            let arn = d.provider_arn.as_deref()?;
            let (arn, shortened) = bounded(arn);
            Some(fragment(
                "The statement's principal".to_owned(),
                json!({"Principal": {"Federated": arn}}),
                shortened,
            ))
        }
        "ActionNotAllowed" => Some(fragment(
            "The statement's action".to_owned(),
            json!({"Action": "sts:AssumeRoleWithWebIdentity"}),
            false,
        )),
        "MissingTagSessionPermission" => Some(fragment(
            "The statement's action".to_owned(),
            json!({"Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]}),
            false,
        )),
        _ => None,
    }
}

fn bounded(value: &str) -> (String, bool) {
    let cut = bound(value);
    let shortened = cut != value;
    (cut, shortened)
}

fn condition_snippet(d: &DiagnosisView) -> Option<Snippet> {
    let condition = d.failed_conditions.first()?;
    let actual: Vec<String> = match &condition.actual {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    let kind = d.subject_mismatch.as_deref().unwrap_or("");
    let (operator, values, how) = match kind {
        "WildcardUnderStringEquals" => (
            "StringLike".to_owned(),
            condition.expected.clone(),
            "move the values to StringLike",
        ),
        "Whitespace" => (
            condition.operator.clone(),
            condition.expected.iter().map(|v| v.trim().to_owned()).collect(),
            "without the stray whitespace",
        ),
        "Case" | "ImmutableFormat" => match replacement(d.fix.as_deref().unwrap_or(""), condition) {
            Some(values) => (condition.operator.clone(), values, "with the corrected value"),
            None => (
                condition.operator.clone(),
                with_added(&condition.expected, &actual),
                "with this job's value added",
            ),
        },
        _ if actual.is_empty() => return None,
        _ => (
            condition.operator.clone(),
            with_added(&condition.expected, &actual),
            "with this job's value added",
        ),
    };
    let mut shortened = false;
    let values: Vec<Value> = values
        .iter()
        .map(|v| {
            let (v, cut) = bounded(v);
            shortened |= cut;
            Value::String(v)
        })
        .collect();
    let (key, cut) = bounded(&condition.key);
    shortened |= cut;
    let (operator, cut) = bounded(&operator);
    shortened |= cut;
    let values = match values.len() {
        1 => values.into_iter().next().unwrap_or(Value::Null),
        _ => Value::Array(values),
    };
    let mut by_key = Map::new();
    by_key.insert(key, values);
    let mut by_operator = Map::new();
    by_operator.insert(operator, Value::Object(by_key));
    Some(fragment(
        format!("Statement {}'s condition, {how}", condition.statement),
        json!({ "Condition": Value::Object(by_operator) }),
        shortened,
    ))
}

fn with_added(expected: &[String], actual: &[String]) -> Vec<String> {
    let mut values = expected.to_vec();
    for value in actual {
        if !values.contains(value) {
            values.push(value.clone());
        }
    }
    values
}

/// The expected values with the one a `replace "A" with "B"` fix names swapped.
fn replacement(fix: &str, condition: &FailedConditionView) -> Option<Vec<String>> {
    let at = fix.find("replace \"")?;
    let (from, rest) = quoted(&fix[at + "replace ".len()..])?;
    let rest = rest.strip_prefix(" with ")?;
    let (to, _) = quoted(rest)?;
    condition.expected.contains(&from).then(|| {
        condition
            .expected
            .iter()
            .map(|v| if *v == from { to.clone() } else { v.clone() })
            .collect()
    })
}

/// One `"…"` value as `diagnosis::text::quote` writes it; `None` when the value was cut
/// or had characters escaped (then it is not the literal value).
fn quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                _ => return None,
            },
            '…' => return None,
            c => out.push(c),
        }
    }
    None
}

/// `{"Condition": …}` printed as the member to paste into a statement:
/// `"Condition": { … }`, without the outer braces.
fn fragment(title: String, object: Value, shortened: bool) -> Snippet {
    let pretty = serde_json::to_string_pretty(&object).unwrap_or_default();
    let lines: Vec<&str> = pretty.lines().collect();
    let inner = match lines.len() {
        n if n >= 3 => lines[1..n - 1]
            .iter()
            .map(|l| l.strip_prefix("  ").unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => pretty.clone(),
    };
    Snippet {
        title,
        json: inner,
        shortened,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(cause: &str, kind: Option<&str>, expected: &[&str], actual: Value, fix: &str) -> DiagnosisView {
        DiagnosisView {
            cause: Some(cause.to_owned()),
            subject_mismatch: kind.map(str::to_owned),
            fix: Some(fix.to_owned()),
            failed_conditions: vec![FailedConditionView {
                statement: 0,
                operator: "StringEquals".to_owned(),
                key: "token.actions.githubusercontent.com:sub".to_owned(),
                expected: expected.iter().map(|s| s.to_string()).collect(),
                actual,
            }],
            ..DiagnosisView::default()
        }
    }

    #[test]
    fn adds_the_jobs_value() {
        let d = view(
            "SubjectMismatch",
            Some("Branch"),
            &["repo:a/b:ref:refs/heads/main"],
            json!("repo:a/b:ref:refs/heads/dev"),
            "",
        );
        let s = trust_policy_snippet(&d).unwrap();
        assert_eq!(
            s.json,
            "\"Condition\": {\n  \"StringEquals\": {\n    \"token.actions.githubusercontent.com:sub\": [\n      \"repo:a/b:ref:refs/heads/main\",\n      \"repo:a/b:ref:refs/heads/dev\"\n    ]\n  }\n}"
        );
        assert!(!s.shortened);
    }

    #[test]
    fn replaces_what_the_fix_names() {
        let d = view(
            "SubjectMismatch",
            Some("Case"),
            &["repo:acme-labs/x:*"],
            json!("repo:Acme-Labs/x:ref:refs/heads/main"),
            "In statement 0, replace \"repo:acme-labs/x:*\" with \"repo:Acme-Labs/x:*\" (owner…)",
        );
        assert!(trust_policy_snippet(&d)
            .unwrap()
            .json
            .contains("\"repo:Acme-Labs/x:*\""));
        let d = view(
            "SubjectMismatch",
            Some("WildcardUnderStringEquals"),
            &["repo:a/b:*"],
            json!("x"),
            "",
        );
        assert!(trust_policy_snippet(&d)
            .unwrap()
            .json
            .contains("\"StringLike\": {"));
        let d = view(
            "SubjectMismatch",
            Some("Whitespace"),
            &["repo:a/b "],
            json!("repo:a/b"),
            "",
        );
        assert!(trust_policy_snippet(&d).unwrap().json.contains("\"repo:a/b\"\n"));
    }

    #[test]
    fn no_fragment_without_structure() {
        assert_eq!(
            trust_policy_snippet(&view("ExplicitDeny", None, &["x"], json!("x"), "")),
            None
        );
        assert_eq!(
            trust_policy_snippet(&view("UnverifiableCondition", None, &["x"], Value::Null, "")),
            None
        );
        assert_eq!(
            trust_policy_snippet(&view("SubjectMismatch", None, &["x"], Value::Null, "")),
            None
        );
        let long = view(
            "SubjectMismatch",
            Some("Branch"),
            &["x"],
            json!("y".repeat(500)),
            "",
        );
        assert!(trust_policy_snippet(&long).unwrap().shortened);
    }
}
