//! Trust-policy evaluation with IAM semantics (docs/design.md, "Evaluating the trust
//! policy"), recording for every statement which part matched or failed, and why.
//!
//! Evaluation is three-valued: a key that STS sees but CloudTrail does not record is
//! `Unknown`, so the diagnosis can tell "this condition fails" from "cannot be checked".

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize, Serializer};

use crate::pattern::{self, Token};
use crate::policy::{BaseOperator, Condition, Effect, PolicyDocument, Principal, SetQualifier, Statement};

pub const ASSUME_ROLE_WITH_WEB_IDENTITY: &str = "sts:AssumeRoleWithWebIdentity";
pub const TAG_SESSION: &str = "sts:TagSession";

/// Kleene three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    pub fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::Unknown, _) | (_, Tri::Unknown) => Tri::Unknown,
            _ => Tri::True,
        }
    }

    fn from_bool(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// `true`, `false`, or `null` for unknown.
impl Serialize for Tri {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Tri::True => serializer.serialize_bool(true),
            Tri::False => serializer.serialize_bool(false),
            Tri::Unknown => serializer.serialize_none(),
        }
    }
}

/// Where a context value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Given by the caller, or recorded verbatim in the CloudTrail event.
    Recorded,
    /// Worked out from the recorded `sub` (e.g. the repository of a GitHub subject).
    Derived,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextValue {
    pub values: Vec<String>,
    pub provenance: Provenance,
}

/// The request context: condition keys (case-insensitive) and their values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    entries: HashMap<String, ContextValue>,
    unknown: HashSet<String>,
    /// Keys `<prefix><claim>` (lower case) whose value the evidence does not show.
    unknown_claims: Option<(String, &'static [&'static str])>,
}

pub enum Lookup<'a> {
    Present(&'a ContextValue),
    Absent,
    Unknown,
}

impl Context {
    pub fn insert(&mut self, key: &str, values: Vec<String>, provenance: Provenance) {
        let key = if key.bytes().any(|b| b.is_ascii_uppercase()) {
            key.to_ascii_lowercase()
        } else {
            key.to_owned()
        };
        self.entries.insert(key, ContextValue { values, provenance });
    }

    pub fn with_capacity(capacity: usize) -> Self {
        Context {
            entries: HashMap::with_capacity(capacity),
            ..Context::default()
        }
    }

    /// Marks a key STS may have had but that the evidence does not show.
    pub fn mark_unknown(&mut self, key: &str) {
        let key = key.to_ascii_lowercase();
        if !self.entries.contains_key(&key) {
            self.unknown.insert(key);
        }
    }

    /// Marks every `<prefix><claim>` as unknown unless a value is inserted for it.
    pub fn mark_unknown_claims(&mut self, prefix: &str, claims: &'static [&'static str]) {
        self.unknown_claims = Some((prefix.to_ascii_lowercase(), claims));
    }

    pub fn lookup(&self, key_lower: &str) -> Lookup<'_> {
        if let Some(value) = self.entries.get(key_lower) {
            return Lookup::Present(value);
        }
        let unknown_claim = self.unknown_claims.as_ref().is_some_and(|(prefix, claims)| {
            key_lower
                .strip_prefix(prefix.as_str())
                .is_some_and(|claim| claims.contains(&claim))
        });
        if unknown_claim || self.unknown.contains(key_lower) {
            Lookup::Unknown
        } else {
            Lookup::Absent
        }
    }
}

impl<'de> Deserialize<'de> for Context {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let raw = HashMap::<String, OneOrMany>::deserialize(deserializer)?;
        let mut context = Context::default();
        for (key, value) in raw {
            let values = match value {
                OneOrMany::One(v) => vec![v],
                OneOrMany::Many(v) => v,
            };
            context.insert(&key, values, Provenance::Recorded);
        }
        Ok(context)
    }
}

/// The request of `oidc-watch evaluate`.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    pub principal: String,
    #[serde(default = "default_action")]
    pub action: String,
    #[serde(default)]
    pub context: Context,
}

fn default_action() -> String {
    ASSUME_ROLE_WITH_WEB_IDENTITY.to_owned()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Decision {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub decision: Decision,
    pub statements: Vec<StatementTrace>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatementTrace {
    pub index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: String,
    pub principal_matched: bool,
    pub action_matched: bool,
    pub conditions: Vec<ConditionTrace>,
    /// Principal, action and every condition matched.
    pub matched: Tri,
}

impl StatementTrace {
    pub fn is_allow(&self) -> bool {
        self.effect == "Allow"
    }

    pub fn failed_conditions(&self) -> impl Iterator<Item = &ConditionTrace> {
        self.conditions.iter().filter(|c| c.result == Tri::False)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConditionTrace {
    pub operator: String,
    pub key: String,
    pub expected: Vec<String>,
    /// The request's values; `None` when the key is absent or unknown.
    pub actual: Option<Vec<String>>,
    pub result: Tri,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<Provenance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<&'static str>,
}

pub fn evaluate(policy: &PolicyDocument, request: &Request) -> Evaluation {
    let statements: Vec<StatementTrace> = policy
        .statements
        .iter()
        .enumerate()
        .map(|(index, statement)| trace_statement(index, statement, policy.variables_enabled(), request))
        .collect();
    let decision = decide(&statements);
    Evaluation { decision, statements }
}

/// The decision taking every unknown condition as unmet.
pub fn decide(statements: &[StatementTrace]) -> Decision {
    if statements
        .iter()
        .any(|s| !s.is_allow() && s.effect == "Deny" && s.matched == Tri::True)
    {
        Decision::ExplicitDeny
    } else if statements.iter().any(|s| s.is_allow() && s.matched == Tri::True) {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

fn trace_statement(
    index: usize,
    statement: &Statement,
    variables: bool,
    request: &Request,
) -> StatementTrace {
    let principal_matched = principal_matches(statement, &request.principal);
    let action_matched = action_matches(statement, &request.action);
    let conditions: Vec<ConditionTrace> = statement
        .conditions
        .iter()
        .map(|condition| trace_condition(condition, variables, &request.context))
        .collect();
    let effect = match &statement.effect {
        Effect::Allow => "Allow".to_owned(),
        Effect::Deny => "Deny".to_owned(),
        Effect::Invalid(other) => other.clone(),
    };
    let applies = matches!(statement.effect, Effect::Allow | Effect::Deny);
    let matched = conditions.iter().fold(
        Tri::from_bool(applies && principal_matched && action_matched),
        |acc, c| acc.and(c.result),
    );
    StatementTrace {
        index,
        sid: statement.sid.clone(),
        effect,
        principal_matched,
        action_matched,
        conditions,
        matched,
    }
}

fn principal_matches(statement: &Statement, principal: &str) -> bool {
    let named = |p: &Principal| match p {
        Principal::Everyone => true,
        Principal::Typed { federated, .. } => federated.iter().any(|f| f == principal || f == "*"),
    };
    match (&statement.principal, &statement.not_principal) {
        (Some(p), _) => named(p),
        (None, Some(not)) => !named(not),
        (None, None) => false,
    }
}

fn action_matches(statement: &Statement, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    let any = |patterns: &[String]| {
        patterns
            .iter()
            .any(|p| pattern::like(&p.to_ascii_lowercase(), &action))
    };
    match (&statement.action, &statement.not_action) {
        (Some(actions), _) => any(actions),
        (None, Some(not_actions)) => !any(not_actions),
        (None, None) => false,
    }
}

fn trace_condition(condition: &Condition, variables: bool, context: &Context) -> ConditionTrace {
    let (result, actual, provenance, note) = match context.lookup(&condition.key_lower) {
        Lookup::Unknown => (
            Tri::Unknown,
            None,
            None,
            Some("the evidence does not show this key"),
        ),
        Lookup::Absent => (condition_on_absent_key(condition), None, None, None),
        Lookup::Present(value) => {
            let result = condition_on_values(condition, &value.values, variables, context);
            (result, Some(value.values.clone()), Some(value.provenance), None)
        }
    };
    let note = note.or(match condition.operator.base {
        BaseOperator::Unsupported => Some("not an IAM condition operator"),
        _ => None,
    });
    ConditionTrace {
        operator: condition.operator_name.clone(),
        key: condition.key.clone(),
        expected: condition.values.clone(),
        actual,
        result,
        provenance,
        note,
    }
}

fn condition_on_absent_key(condition: &Condition) -> Tri {
    let op = condition.operator;
    if op.base == BaseOperator::Null {
        return Tri::from_bool(condition.values.iter().any(|v| v.eq_ignore_ascii_case("true")));
    }
    if op.base == BaseOperator::Unsupported {
        return Tri::False;
    }
    if op.if_exists {
        return Tri::True;
    }
    match op.set {
        Some(SetQualifier::ForAllValues) => Tri::True,
        Some(SetQualifier::ForAnyValue) => Tri::False,
        None => Tri::from_bool(op.base.is_negated()),
    }
}

fn condition_on_values(condition: &Condition, values: &[String], variables: bool, context: &Context) -> Tri {
    let op = condition.operator;
    match op.base {
        BaseOperator::Null => {
            return Tri::from_bool(condition.values.iter().any(|v| v.eq_ignore_ascii_case("false")))
        }
        BaseOperator::Unsupported => return Tri::False,
        _ => {}
    }
    let resolved: Vec<Resolved> = condition
        .values
        .iter()
        .map(|v| resolve(v, variables && (op.base.is_string() || is_arn(op.base)), context))
        .collect();
    if resolved.iter().any(|r| matches!(r, Resolved::Unknown)) {
        return Tri::Unknown;
    }
    // Per request value: a positive operator needs some policy value to match, a negated
    // one needs every policy value to differ (NOR).
    let per_value = |value: &str| {
        let any = resolved
            .iter()
            .any(|policy_value| base_match(op.base, policy_value, value));
        if op.base.is_negated() {
            !any
        } else {
            any
        }
    };
    // AWS: "If the key values in the request resolve to an empty data set (for example, an
    // empty string), ... ForAllValues returns true, and ... ForAnyValue returns false."
    let values = if op.set.is_some() && matches!(values, [only] if only.is_empty()) {
        &[][..]
    } else {
        values
    };
    let result = match op.set {
        Some(SetQualifier::ForAllValues) => values.iter().all(|v| per_value(v)),
        Some(SetQualifier::ForAnyValue) => values.iter().any(|v| per_value(v)),
        None if values.is_empty() => op.base.is_negated(),
        None => values.iter().any(|v| per_value(v)),
    };
    Tri::from_bool(result)
}

fn is_arn(op: BaseOperator) -> bool {
    matches!(
        op,
        BaseOperator::ArnEquals
            | BaseOperator::ArnLike
            | BaseOperator::ArnNotEquals
            | BaseOperator::ArnNotLike
    )
}

/// A policy value after `${...}` substitution. Substituted text is literal even under
/// `StringLike`: wildcards that come from a variable's value do not match anything else.
enum Resolved {
    Plain(String),
    Tokens(Vec<Token>),
    /// A variable whose key is missing and has no default: matches no request value.
    Unresolvable,
    Unknown,
}

fn resolve(value: &str, variables: bool, context: &Context) -> Resolved {
    if !variables || !value.contains("${") {
        return Resolved::Plain(value.to_owned());
    }
    let mut tokens = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        tokens.extend(pattern::tokenize(&rest[..start]));
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            tokens.extend(pattern::tokenize(&rest[start..]));
            rest = "";
            break;
        };
        let inner = &after[..end];
        match inner {
            "*" => tokens.push(Token::Literal('*')),
            "?" => tokens.push(Token::Literal('?')),
            "$" => tokens.push(Token::Literal('$')),
            _ => {
                let (key, default) = match inner.split_once(',') {
                    Some((key, default)) => {
                        let default = default.trim();
                        let default = default
                            .strip_prefix('\'')
                            .and_then(|d| d.strip_suffix('\''))
                            .unwrap_or(default);
                        (key.trim(), Some(default))
                    }
                    None => (inner.trim(), None),
                };
                match context.lookup(&key.to_ascii_lowercase()) {
                    Lookup::Present(v) if v.values.len() == 1 => {
                        tokens.extend(v.values[0].chars().map(Token::Literal))
                    }
                    Lookup::Unknown => return Resolved::Unknown,
                    _ => match default {
                        Some(default) => tokens.extend(default.chars().map(Token::Literal)),
                        None => return Resolved::Unresolvable,
                    },
                }
            }
        }
        rest = &after[end + 1..];
    }
    tokens.extend(pattern::tokenize(rest));
    Resolved::Tokens(tokens)
}

impl Resolved {
    /// The value as plain text, for operators without wildcards.
    fn literal(&self) -> Option<String> {
        match self {
            Resolved::Plain(s) => Some(s.clone()),
            Resolved::Tokens(tokens) => Some(
                tokens
                    .iter()
                    .map(|t| match t {
                        Token::Literal(c) => *c,
                        Token::AnyRun => '*',
                        Token::AnyOne => '?',
                    })
                    .collect(),
            ),
            Resolved::Unresolvable | Resolved::Unknown => None,
        }
    }

    fn like(&self, text: &str, ignore_case: bool) -> bool {
        match self {
            Resolved::Plain(p) if !ignore_case => pattern::like(p, text),
            Resolved::Plain(p) => pattern::matches_tokens(&pattern::tokenize(p), text, true).is_some(),
            Resolved::Tokens(tokens) => pattern::matches_tokens(tokens, text, ignore_case).is_some(),
            Resolved::Unresolvable | Resolved::Unknown => false,
        }
    }
}

fn base_match(op: BaseOperator, policy_value: &Resolved, value: &str) -> bool {
    use BaseOperator::*;
    let Some(literal) = policy_value.literal() else {
        return false;
    };
    match op {
        StringEquals | StringNotEquals | BinaryEquals => literal == value,
        StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
            literal == value || literal.to_lowercase() == value.to_lowercase()
        }
        StringLike | StringNotLike => policy_value.like(value, false),
        NumericEquals | NumericNotEquals => numeric(&literal, value, |a, b| a == b),
        NumericLessThan => numeric(&literal, value, |p, v| v < p),
        NumericLessThanEquals => numeric(&literal, value, |p, v| v <= p),
        NumericGreaterThan => numeric(&literal, value, |p, v| v > p),
        NumericGreaterThanEquals => numeric(&literal, value, |p, v| v >= p),
        DateEquals | DateNotEquals => date(&literal, value, |p, v| v == p),
        DateLessThan => date(&literal, value, |p, v| v < p),
        DateLessThanEquals => date(&literal, value, |p, v| v <= p),
        DateGreaterThan => date(&literal, value, |p, v| v > p),
        DateGreaterThanEquals => date(&literal, value, |p, v| v >= p),
        Bool => literal.eq_ignore_ascii_case(value),
        IpAddress | NotIpAddress => ip_in_cidr(&literal, value),
        ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => arn_like(&literal, value),
        Null | Unsupported => false,
    }
}

fn numeric(policy: &str, value: &str, cmp: impl Fn(f64, f64) -> bool) -> bool {
    match (policy.trim().parse::<f64>(), value.trim().parse::<f64>()) {
        (Ok(p), Ok(v)) => cmp(p, v),
        _ => false,
    }
}

fn date(policy: &str, value: &str, cmp: impl Fn(i64, i64) -> bool) -> bool {
    match (epoch_seconds(policy), epoch_seconds(value)) {
        (Some(p), Some(v)) => cmp(p, v),
        _ => false,
    }
}

/// Epoch seconds, or a W3C ISO 8601 date/time (`2026-01-02`, `2026-01-02T03:04Z`,
/// `2026-01-02T03:04:05.5+05:30`), as IAM's date operators accept.
pub fn epoch_seconds(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<i64>() {
        return Some(seconds);
    }
    let (date, time) = text.split_once('T').unwrap_or((text, "00:00Z"));
    let mut parts = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (parts.next()??, parts.next()??, parts.next()??);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month[(m - 1) as usize] {
        return None;
    }
    let (clock, offset) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, 0)
    } else {
        let sign_at = time.rfind(['+', '-'])?;
        let (clock, zone) = time.split_at(sign_at);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = zone[1..]
            .split_once(':')
            .unwrap_or((zone.get(1..3)?, zone.get(3..).unwrap_or("0")));
        let (zh, zm) = (zh.parse::<i64>().ok()?, zm.parse::<i64>().ok()?);
        if zh > 23 || zm > 59 {
            return None;
        }
        (clock, sign * (zh * 3600 + zm * 60))
    };
    let clock = clock.split('.').next()?;
    let mut hms = clock.split(':');
    let hh = hms.next()?.parse::<i64>().ok()?;
    let mm = hms.next()?.parse::<i64>().ok()?;
    let ss = hms.next().map_or(Some(0), |s| s.parse::<i64>().ok())?;
    if hh > 23 || mm > 59 || ss > 60 || hms.next().is_some() {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

fn ip_in_cidr(cidr: &str, value: &str) -> bool {
    let (network, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    match (network.trim().parse::<IpAddr>(), value.trim().parse::<IpAddr>()) {
        (Ok(IpAddr::V4(n)), Ok(IpAddr::V4(v))) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(n) & mask == u32::from(v) & mask
        }
        (Ok(IpAddr::V6(n)), Ok(IpAddr::V6(v))) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(n) & mask == u128::from(v) & mask
        }
        _ => false,
    }
}

/// ARN operators match each of the six colon-separated parts on its own.
fn arn_like(policy: &str, value: &str) -> bool {
    let policy_parts: Vec<&str> = policy.splitn(6, ':').collect();
    let value_parts: Vec<&str> = value.splitn(6, ':').collect();
    policy_parts.len() == 6
        && value_parts.len() == 6
        && policy_parts
            .iter()
            .zip(&value_parts)
            .all(|(p, v)| pattern::like(p, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_seconds_reads_iso_dates() {
        assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(epoch_seconds("2026-11-23T13:18:29Z"), Some(1_795_439_909));
        assert_eq!(epoch_seconds("2000-03-01"), Some(951_868_800));
        assert_eq!(epoch_seconds("42"), Some(42));
        assert_eq!(epoch_seconds("2026-13-01"), None);
        assert_eq!(
            epoch_seconds("2026-01-01T05:00:00+05:00"),
            epoch_seconds("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            epoch_seconds("2025-12-31T19:00-05:00"),
            epoch_seconds("2026-01-01T00:00:00Z")
        );
        assert_eq!(epoch_seconds("2026-02-31"), None);
        assert_eq!(epoch_seconds("2026-01-01T25:99:99Z"), None);
        assert_eq!(epoch_seconds("2024-02-29T12:00:00.250Z"), Some(1_709_208_000));
        assert_eq!(epoch_seconds("soon"), None);
    }

    #[test]
    fn cidr_matching() {
        assert!(ip_in_cidr("192.0.2.0/24", "192.0.2.77"));
        assert!(!ip_in_cidr("192.0.2.0/24", "192.0.3.1"));
        assert!(ip_in_cidr("0.0.0.0/0", "8.8.8.8"));
        assert!(ip_in_cidr("2001:db8::/32", "2001:db8::1"));
        assert!(!ip_in_cidr("2001:db8::/32", "192.0.2.1"));
    }

    #[test]
    fn arn_parts_match_separately() {
        assert!(arn_like(
            "arn:aws:iam::*:role/gha-*",
            "arn:aws:iam::123:role/gha-deploy"
        ));
        assert!(!arn_like(
            "arn:aws:iam::*:role/gha-*",
            "arn:aws:iam::123:user/gha-x"
        ));
        assert!(!arn_like("arn:*", "arn:aws:iam::123:role/x"));
    }

    #[test]
    fn tri_logic() {
        assert_eq!(Tri::True.and(Tri::Unknown), Tri::Unknown);
        assert_eq!(Tri::False.and(Tri::Unknown), Tri::False);
    }
}
