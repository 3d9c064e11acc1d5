//! The trust-policy generator of the property tests (`no_panic.rs`) and the differential
//! test against iam-rs (`differential_iam_rs.rs`): one grammar of statements and policies.
//! Each test supplies the alphabet its statements draw from (what effects, principals,
//! actions and conditions look like, how many statements, which versions); this module
//! assembles them into `Statement` objects and policy documents the one way IAM reads them.
//! Included with `#[path = "support/policy_gen.rs"] mod policy_gen;`.

#![allow(dead_code)]

use proptest::collection::SizeRange;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

/// The six string condition operators, without `IfExists` or a set qualifier.
pub const STRING_OPERATORS: [&str; 6] = [
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
];

/// What the statements and the policy of one test are made of. `None` from an element's
/// strategy leaves the element out of the statement.
#[derive(Clone)]
pub struct Grammar {
    pub effect: BoxedStrategy<&'static str>,
    pub principal: BoxedStrategy<Option<Value>>,
    /// `("Action" | "NotAction", value)`.
    pub action: BoxedStrategy<(&'static str, Value)>,
    pub condition: BoxedStrategy<Option<Value>>,
    pub sid: BoxedStrategy<Option<String>>,
    /// How many statements a policy has.
    pub statements: SizeRange,
    /// `None`: no `Version` element.
    pub version: BoxedStrategy<Option<&'static str>>,
    /// Whether a lone statement is written as an object instead of a one-element array.
    pub lone_statement_as_object: BoxedStrategy<bool>,
}

/// One `Statement` object: `Effect`, `Principal`, `Action`/`NotAction`, `Condition`, `Sid`.
pub fn statement(grammar: &Grammar) -> BoxedStrategy<Value> {
    (
        grammar.effect.clone(),
        grammar.principal.clone(),
        grammar.action.clone(),
        grammar.condition.clone(),
        grammar.sid.clone(),
    )
        .prop_map(|(effect, principal, (action_key, action), condition, sid)| {
            let mut statement = Map::new();
            statement.insert("Effect".into(), json!(effect));
            if let Some(principal) = principal {
                statement.insert("Principal".into(), principal);
            }
            statement.insert(action_key.into(), action);
            if let Some(condition) = condition {
                statement.insert("Condition".into(), condition);
            }
            if let Some(sid) = sid {
                statement.insert("Sid".into(), json!(sid));
            }
            Value::Object(statement)
        })
        .boxed()
}

/// A policy document: `Version` and `Statement`.
pub fn policy(grammar: &Grammar) -> BoxedStrategy<Value> {
    (
        prop::collection::vec(statement(grammar), grammar.statements.clone()),
        grammar.version.clone(),
        grammar.lone_statement_as_object.clone(),
    )
        .prop_map(|(statements, version, lone_as_object)| {
            let mut policy = Map::new();
            if let Some(version) = version {
                policy.insert("Version".into(), json!(version));
            }
            let statements = match <[Value; 1]>::try_from(statements) {
                Ok([lone]) if lone_as_object => lone,
                Ok([lone]) => Value::Array(vec![lone]),
                Err(statements) => Value::Array(statements),
            };
            policy.insert("Statement".into(), statements);
            Value::Object(policy)
        })
        .boxed()
}
