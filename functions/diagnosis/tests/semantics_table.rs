//! The IAM semantics table (the rules of docs/design.md, "Evaluating the trust policy") as
//! data: every row is one line, and one test per table runs all rows and reports every
//! failing row by name.
//!
//! Notation inside the JSON of a row:
//! - `{gh}` stands for the GitHub issuer `token.actions.githubusercontent.com`, so
//!   `"{gh}:sub"` is the `sub` condition key and `${{gh}:repository}` the policy variable
//!   `${token.actions.githubusercontent.com:repository}`.
//! - `{arn}` stands for the GitHub provider ARN in account 111122223333.
//!
//! [`CONDITIONS`] rows give a `Condition` block, a request context and whether the block
//! holds. Each row runs twice: in an `Allow` statement (Allow / ImplicitDeny) and in a
//! `Deny` statement beside an unconditional `Allow` (ExplicitDeny / Allow).
//! [`STATEMENTS`] rows give a whole policy and the decision.

#[path = "support/policy_gen.rs"]
mod policy_gen;

use diagnosis::evaluate::{evaluate, Decision, Evaluation, Provenance, Request, Tri};
use diagnosis::policy::PolicyDocument;
use policy_gen::STRING_OPERATORS;
use serde_json::{json, Value};

const GH: &str = "token.actions.githubusercontent.com";
const ARN: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
const ACTION: &str = "sts:AssumeRoleWithWebIdentity";
const V2012: Option<&str> = Some("2012-10-17");
const V2008: Option<&str> = Some("2008-10-17");
const NO_VERSION: Option<&str> = None;

/// One row of the condition table.
struct Case {
    name: &'static str,
    /// The policy's `Version`: policy variables exist only under 2012-10-17.
    version: Option<&'static str>,
    condition: &'static str,
    context: &'static str,
    holds: bool,
}

const fn c(name: &'static str, condition: &'static str, context: &'static str, holds: bool) -> Case {
    Case {
        name,
        version: V2012,
        condition,
        context,
        holds,
    }
}

const fn v(
    name: &'static str,
    version: Option<&'static str>,
    condition: &'static str,
    context: &'static str,
    holds: bool,
) -> Case {
    Case {
        name,
        version,
        condition,
        context,
        holds,
    }
}

const T: bool = true;
const F: bool = false;

#[rustfmt::skip]
const CONDITIONS: &[Case] = &[
    // --- StringEquals: exact, case-sensitive, no wildcards; values OR.
    c("StringEquals/present/equal",                 r#"{"StringEquals":{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringEquals/present/different",             r#"{"StringEquals":{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("StringEquals/present/case differs",          r#"{"StringEquals":{"{gh}:sub":"repo:O/R:ref:refs/heads/main"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringEquals/star is literal/no match",      r#"{"StringEquals":{"{gh}:sub":"repo:o/r:*"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringEquals/star is literal/itself",        r#"{"StringEquals":{"{gh}:sub":"repo:o/r:*"}}"#, r#"{"{gh}:sub":"repo:o/r:*"}"#, T),
    c("StringEquals/question mark is literal",      r#"{"StringEquals":{"{gh}:sub":"repo:o/r:ref:refs/heads/mai?"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringEquals/missing",                       r#"{"StringEquals":{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}}"#, r#"{}"#, F),
    c("StringEquals/empty string",                  r#"{"StringEquals":{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}}"#, r#"{"{gh}:sub":""}"#, F),
    c("StringEquals/several values/one equal (OR)", r#"{"StringEquals":{"{gh}:sub":["repo:o/r:pull_request","repo:o/r:ref:refs/heads/main"]}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringEquals/several values/none equal",     r#"{"StringEquals":{"{gh}:sub":["repo:o/r:pull_request","repo:o/r:ref:refs/tags/v1"]}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringEquals/number value is its text",      r#"{"StringEquals":{"{gh}:repository_id":456789}}"#, r#"{"{gh}:repository_id":"456789"}"#, T),
    // --- StringNotEquals: negated; missing key true; values NOR.
    c("StringNotEquals/present/equal",              r#"{"StringNotEquals":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("StringNotEquals/present/different",          r#"{"StringNotEquals":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringNotEquals/present/case differs",       r#"{"StringNotEquals":{"{gh}:sub":"repo:O/R:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("StringNotEquals/missing",                    r#"{"StringNotEquals":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{}"#, T),
    c("StringNotEquals/empty string",               r#"{"StringNotEquals":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":""}"#, T),
    c("StringNotEquals/several values/one equal (NOR)", r#"{"StringNotEquals":{"{gh}:sub":["repo:o/r:pull_request","repo:o/r:ref:refs/heads/main"]}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringNotEquals/several values/none equal",  r#"{"StringNotEquals":{"{gh}:sub":["repo:o/r:pull_request","repo:o/r:ref:refs/tags/v1"]}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    // --- StringEqualsIgnoreCase.
    c("StringEqualsIgnoreCase/present/other case",  r#"{"StringEqualsIgnoreCase":{"{gh}:sub":"REPO:Acme/Web:REF:REFS/HEADS/MAIN"}}"#, r#"{"{gh}:sub":"repo:acme/web:ref:refs/heads/main"}"#, T),
    c("StringEqualsIgnoreCase/present/different",   r#"{"StringEqualsIgnoreCase":{"{gh}:sub":"repo:acme/web:ref:refs/heads/main"}}"#, r#"{"{gh}:sub":"repo:acme/web:pull_request"}"#, F),
    c("StringEqualsIgnoreCase/star is literal",     r#"{"StringEqualsIgnoreCase":{"{gh}:sub":"repo:acme/*"}}"#, r#"{"{gh}:sub":"repo:acme/web:pull_request"}"#, F),
    c("StringEqualsIgnoreCase/missing",             r#"{"StringEqualsIgnoreCase":{"{gh}:sub":"repo:acme/web:pull_request"}}"#, r#"{}"#, F),
    c("StringEqualsIgnoreCase/empty string",        r#"{"StringEqualsIgnoreCase":{"{gh}:sub":"repo:acme/web:pull_request"}}"#, r#"{"{gh}:sub":""}"#, F),
    c("StringEqualsIgnoreCase/several values (OR)", r#"{"StringEqualsIgnoreCase":{"{gh}:sub":["repo:x/y:pull_request","REPO:ACME/WEB:PULL_REQUEST"]}}"#, r#"{"{gh}:sub":"repo:acme/web:pull_request"}"#, T),
    c("StringEqualsIgnoreCase/several values/none", r#"{"StringEqualsIgnoreCase":{"{gh}:sub":["repo:x/y:pull_request","repo:acme/web:ref:refs/heads/main"]}}"#, r#"{"{gh}:sub":"repo:acme/web:pull_request"}"#, F),
    // --- StringNotEqualsIgnoreCase.
    c("StringNotEqualsIgnoreCase/present/other case", r#"{"StringNotEqualsIgnoreCase":{"{gh}:sub":"REPO:ACME/WEB:PULL_REQUEST"}}"#, r#"{"{gh}:sub":"repo:acme/web:pull_request"}"#, F),
    c("StringNotEqualsIgnoreCase/present/different",  r#"{"StringNotEqualsIgnoreCase":{"{gh}:sub":"repo:acme/web:pull_request"}}"#, r#"{"{gh}:sub":"repo:acme/web:ref:refs/heads/main"}"#, T),
    c("StringNotEqualsIgnoreCase/missing",            r#"{"StringNotEqualsIgnoreCase":{"{gh}:sub":"repo:acme/web:pull_request"}}"#, r#"{}"#, T),
    c("StringNotEqualsIgnoreCase/empty string",       r#"{"StringNotEqualsIgnoreCase":{"{gh}:sub":"repo:acme/web:pull_request"}}"#, r#"{"{gh}:sub":""}"#, T),
    c("StringNotEqualsIgnoreCase/several/one equal (NOR)", r#"{"StringNotEqualsIgnoreCase":{"{gh}:sub":["repo:x/y:pull_request","REPO:ACME/WEB:PULL_REQUEST"]}}"#, r#"{"{gh}:sub":"repo:acme/web:pull_request"}"#, F),
    c("StringNotEqualsIgnoreCase/several/none equal",  r#"{"StringNotEqualsIgnoreCase":{"{gh}:sub":["repo:x/y:pull_request","repo:x/z:pull_request"]}}"#, r#"{"{gh}:sub":"repo:acme/web:pull_request"}"#, T),
    // --- StringLike: case-sensitive, `*` any run (crossing `/` and `:`), `?` exactly one.
    c("StringLike/present/repo:o/r:* matches",      r#"{"StringLike":{"{gh}:sub":"repo:o/r:*"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/feat/x"}"#, T),
    c("StringLike/star crosses slash and colon",    r#"{"StringLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringLike/star inside crosses colons",      r#"{"StringLike":{"{gh}:sub":"repo:o/r*main"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringLike/leading star",                    r#"{"StringLike":{"{gh}:sub":"*:ref:refs/heads/main"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringLike/star matches empty run",          r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/main*"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringLike/star needs the literal before it",r#"{"StringLike":{"{gh}:sub":"repo:o/r:*"}}"#, r#"{"{gh}:sub":"repo:o/r"}"#, F),
    c("StringLike/present/case-sensitive",          r#"{"StringLike":{"{gh}:sub":"repo:O/*"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringLike/question mark one character",     r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/mai?"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, T),
    c("StringLike/question mark not two",           r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/ma?"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringLike/question mark not zero",          r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/main?"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("StringLike/question mark matches slash",     r#"{"StringLike":{"{gh}:sub":"repo:o?r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("StringLike/no wildcard is exact",            r#"{"StringLike":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("StringLike/no wildcard, no partial match",   r#"{"StringLike":{"{gh}:sub":"repo:o/r"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("StringLike/name pattern vs immutable sub",   r#"{"StringLike":{"{gh}:sub":"repo:o/r:*"}}"#, r#"{"{gh}:sub":"repo:o@123/r@456:ref:refs/heads/main"}"#, F),
    c("StringLike/missing",                         r#"{"StringLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{}"#, F),
    c("StringLike/empty string",                    r#"{"StringLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:sub":""}"#, F),
    c("StringLike/lone star matches empty string",  r#"{"StringLike":{"{gh}:sub":"*"}}"#, r#"{"{gh}:sub":""}"#, T),
    c("StringLike/several values/one matches (OR)", r#"{"StringLike":{"{gh}:sub":["repo:x/*","repo:o/*"]}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("StringLike/several values/none matches",     r#"{"StringLike":{"{gh}:sub":["repo:x/*","repo:y/*"]}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    // --- StringNotLike.
    c("StringNotLike/present/matches",              r#"{"StringNotLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("StringNotLike/present/does not match",       r#"{"StringNotLike":{"{gh}:sub":"repo:x/*"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("StringNotLike/missing",                      r#"{"StringNotLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{}"#, T),
    c("StringNotLike/empty string",                 r#"{"StringNotLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:sub":""}"#, T),
    c("StringNotLike/several/one matches (NOR)",    r#"{"StringNotLike":{"{gh}:sub":["repo:x/*","*:pull_request"]}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("StringNotLike/several/none matches",         r#"{"StringNotLike":{"{gh}:sub":["repo:x/*","repo:y/*"]}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    // --- ...IfExists: missing key is true; present key gets the base operator.
    c("StringEqualsIfExists/missing",               r#"{"StringEqualsIfExists":{"{gh}:environment":"prod"}}"#, r#"{}"#, T),
    c("StringEqualsIfExists/present/equal",         r#"{"StringEqualsIfExists":{"{gh}:environment":"prod"}}"#, r#"{"{gh}:environment":"prod"}"#, T),
    c("StringEqualsIfExists/present/different",     r#"{"StringEqualsIfExists":{"{gh}:environment":"prod"}}"#, r#"{"{gh}:environment":"dev"}"#, F),
    c("StringEqualsIfExists/empty string",          r#"{"StringEqualsIfExists":{"{gh}:environment":"prod"}}"#, r#"{"{gh}:environment":""}"#, F),
    c("StringNotEqualsIfExists/missing",            r#"{"StringNotEqualsIfExists":{"{gh}:environment":"prod"}}"#, r#"{}"#, T),
    c("StringNotEqualsIfExists/present/equal",      r#"{"StringNotEqualsIfExists":{"{gh}:environment":"prod"}}"#, r#"{"{gh}:environment":"prod"}"#, F),
    c("StringNotEqualsIfExists/present/different",  r#"{"StringNotEqualsIfExists":{"{gh}:environment":"prod"}}"#, r#"{"{gh}:environment":"dev"}"#, T),
    c("StringEqualsIgnoreCaseIfExists/missing",     r#"{"StringEqualsIgnoreCaseIfExists":{"{gh}:environment":"Prod"}}"#, r#"{}"#, T),
    c("StringEqualsIgnoreCaseIfExists/present/case",r#"{"StringEqualsIgnoreCaseIfExists":{"{gh}:environment":"Prod"}}"#, r#"{"{gh}:environment":"PROD"}"#, T),
    c("StringEqualsIgnoreCaseIfExists/present/diff",r#"{"StringEqualsIgnoreCaseIfExists":{"{gh}:environment":"Prod"}}"#, r#"{"{gh}:environment":"dev"}"#, F),
    c("StringNotEqualsIgnoreCaseIfExists/missing",  r#"{"StringNotEqualsIgnoreCaseIfExists":{"{gh}:environment":"Prod"}}"#, r#"{}"#, T),
    c("StringNotEqualsIgnoreCaseIfExists/present/case", r#"{"StringNotEqualsIgnoreCaseIfExists":{"{gh}:environment":"Prod"}}"#, r#"{"{gh}:environment":"PROD"}"#, F),
    c("StringNotEqualsIgnoreCaseIfExists/present/diff", r#"{"StringNotEqualsIgnoreCaseIfExists":{"{gh}:environment":"Prod"}}"#, r#"{"{gh}:environment":"dev"}"#, T),
    c("StringLikeIfExists/missing",                 r#"{"StringLikeIfExists":{"{gh}:environment":"prod-*"}}"#, r#"{}"#, T),
    c("StringLikeIfExists/present/matches",         r#"{"StringLikeIfExists":{"{gh}:environment":"prod-*"}}"#, r#"{"{gh}:environment":"prod-eu"}"#, T),
    c("StringLikeIfExists/present/no match",        r#"{"StringLikeIfExists":{"{gh}:environment":"prod-*"}}"#, r#"{"{gh}:environment":"dev"}"#, F),
    c("StringNotLikeIfExists/missing",              r#"{"StringNotLikeIfExists":{"{gh}:environment":"prod-*"}}"#, r#"{}"#, T),
    c("StringNotLikeIfExists/present/matches",      r#"{"StringNotLikeIfExists":{"{gh}:environment":"prod-*"}}"#, r#"{"{gh}:environment":"prod-eu"}"#, F),
    c("StringNotLikeIfExists/present/no match",     r#"{"StringNotLikeIfExists":{"{gh}:environment":"prod-*"}}"#, r#"{"{gh}:environment":"dev"}"#, T),
    c("NumericLessThanIfExists/missing",            r#"{"NumericLessThanIfExists":{"sts:DurationSeconds":"3600"}}"#, r#"{}"#, T),
    c("NumericLessThanIfExists/present/too big",    r#"{"NumericLessThanIfExists":{"sts:DurationSeconds":"3600"}}"#, r#"{"sts:DurationSeconds":"7200"}"#, F),
    // --- Null: "true" = key absent, "false" = key present.
    c("Null true/missing",                          r#"{"Null":{"{gh}:environment":"true"}}"#, r#"{}"#, T),
    c("Null true/present",                          r#"{"Null":{"{gh}:environment":"true"}}"#, r#"{"{gh}:environment":"prod"}"#, F),
    c("Null false/present",                         r#"{"Null":{"{gh}:environment":"false"}}"#, r#"{"{gh}:environment":"prod"}"#, T),
    c("Null false/missing",                         r#"{"Null":{"{gh}:environment":"false"}}"#, r#"{}"#, F),
    c("Null true as JSON boolean/missing",          r#"{"Null":{"{gh}:environment":true}}"#, r#"{}"#, T),
    c("Null false as JSON boolean/present",         r#"{"Null":{"{gh}:environment":false}}"#, r#"{"{gh}:environment":"prod"}"#, T),
    // --- ForAnyValue: true if some request value matches some policy value; false on a
    // missing key or an empty data set (an empty list, or an empty string).
    c("ForAnyValue:StringEquals/missing",           r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{}"#, F),
    c("ForAnyValue:StringEquals/empty list",        r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":[]}"#, F),
    c("ForAnyValue:StringEquals/empty string",      r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":""}"#, F),
    c("ForAnyValue:StringEquals/list of empty string", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":[""]}"#, F),
    c("ForAnyValue:StringEquals/one value/match",   r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["env"]}"#, T),
    c("ForAnyValue:StringEquals/one value/no match",r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["cost"]}"#, F),
    c("ForAnyValue:StringEquals/several/one match", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["cost","team"]}"#, T),
    c("ForAnyValue:StringEquals/several/no match",  r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["cost","owner"]}"#, F),
    c("ForAnyValue:StringEquals/single string",     r#"{"ForAnyValue:StringEquals":{"{gh}:aud":"sts.amazonaws.com"}}"#, r#"{"{gh}:aud":"sts.amazonaws.com"}"#, T),
    c("ForAnyValue:StringEqualsIgnoreCase/case",    r#"{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":["Team"]}}"#, r#"{"aws:TagKeys":["cost","TEAM"]}"#, T),
    c("ForAnyValue:StringLike/one matches",         r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["team-*"]}}"#, r#"{"aws:TagKeys":["cost","team-a"]}"#, T),
    c("ForAnyValue:StringLike/empty string sub",    r#"{"ForAnyValue:StringLike":{"{gh}:sub":"*"}}"#, r#"{"{gh}:sub":""}"#, F),
    c("ForAnyValue:StringEqualsIfExists/missing",   r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["team"]}}"#, r#"{}"#, T),
    // --- ForAllValues: true if every request value matches some policy value; true on a
    // missing key or an empty data set.
    c("ForAllValues:StringEquals/missing",          r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{}"#, T),
    c("ForAllValues:StringEquals/empty list",       r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":[]}"#, T),
    c("ForAllValues:StringEquals/empty string",     r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":""}"#, T),
    c("ForAllValues:StringEquals/one value/match",  r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["team"]}"#, T),
    c("ForAllValues:StringEquals/one value/no match", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["cost"]}"#, F),
    c("ForAllValues:StringEquals/several/all match",r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["env","team"]}"#, T),
    c("ForAllValues:StringEquals/several/one stray",r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["team","cost"]}"#, F),
    c("ForAllValues:StringLike/all match",          r#"{"ForAllValues:StringLike":{"aws:TagKeys":["team-*"]}}"#, r#"{"aws:TagKeys":["team-a","team-b"]}"#, T),
    c("ForAllValues:StringLike/one stray",          r#"{"ForAllValues:StringLike":{"aws:TagKeys":["team-*"]}}"#, r#"{"aws:TagKeys":["team-a","cost"]}"#, F),
    c("ForAllValues:StringLike/empty string sub",   r#"{"ForAllValues:StringLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:sub":""}"#, T),
    // --- Negated set operators.
    c("ForAnyValue:StringNotEquals/one differs",    r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["team","cost"]}"#, T),
    c("ForAnyValue:StringNotEquals/none differs",   r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["team","env"]}"#, F),
    c("ForAnyValue:StringNotEquals/missing",        r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{}"#, F),
    c("ForAnyValue:StringNotEquals/empty list",     r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":[]}"#, F),
    c("ForAnyValue:StringNotEquals/empty string",   r#"{"ForAnyValue:StringNotEquals":{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}}"#, r#"{"{gh}:sub":""}"#, F),
    c("ForAllValues:StringNotEquals/none equal",    r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["cost","owner"]}"#, T),
    c("ForAllValues:StringNotEquals/one equal",     r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":["cost","env"]}"#, F),
    c("ForAllValues:StringNotEquals/missing",       r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{}"#, T),
    c("ForAllValues:StringNotEquals/empty list",    r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":[]}"#, T),
    c("ForAllValues:StringNotEquals/empty string",  r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["team","env"]}}"#, r#"{"aws:TagKeys":""}"#, T),
    c("ForAnyValue:StringNotLike/one differs",      r#"{"ForAnyValue:StringNotLike":{"aws:TagKeys":["admin*"]}}"#, r#"{"aws:TagKeys":["admin-1","cost"]}"#, T),
    c("ForAnyValue:StringNotLike/none differs",     r#"{"ForAnyValue:StringNotLike":{"aws:TagKeys":["admin*"]}}"#, r#"{"aws:TagKeys":["admin-1"]}"#, F),
    c("ForAllValues:StringNotLike/none like",       r#"{"ForAllValues:StringNotLike":{"aws:TagKeys":["admin*"]}}"#, r#"{"aws:TagKeys":["cost","team"]}"#, T),
    c("ForAllValues:StringNotLike/one like",        r#"{"ForAllValues:StringNotLike":{"aws:TagKeys":["admin*"]}}"#, r#"{"aws:TagKeys":["cost","admin-1"]}"#, F),
    // --- Several keys under one operator, several operators: AND.
    c("one operator, two keys/both hold",           r#"{"StringEquals":{"{gh}:aud":"sts.amazonaws.com","{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:aud":"sts.amazonaws.com","{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("one operator, two keys/one fails",           r#"{"StringEquals":{"{gh}:aud":"sts.amazonaws.com","{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:aud":"sts.amazonaws.com","{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("one operator, two keys/one missing",         r#"{"StringEquals":{"{gh}:aud":"sts.amazonaws.com","{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("two operators/both hold",                    r#"{"StringEquals":{"{gh}:aud":"sts.amazonaws.com"},"StringLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:aud":"sts.amazonaws.com","{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("two operators/sub fails",                    r#"{"StringEquals":{"{gh}:aud":"sts.amazonaws.com"},"StringLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:aud":"sts.amazonaws.com","{gh}:sub":"repo:x/r:pull_request"}"#, F),
    c("two operators/aud fails",                    r#"{"StringEquals":{"{gh}:aud":"sts.amazonaws.com"},"StringLike":{"{gh}:sub":"repo:o/*"}}"#, r#"{"{gh}:aud":"https://github.com/o","{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("allow branch, exclude via negated operator", r#"{"StringLike":{"{gh}:sub":"repo:o/r:*"},"StringNotLike":{"{gh}:sub":"*:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("empty Condition block",                      r#"{}"#, r#"{}"#, T),
    // --- Condition key names are case-insensitive (values are not).
    c("key case/policy upper, request lower",       r#"{"StringEquals":{"TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:SUB":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("key case/policy lower, request mixed",       r#"{"StringEquals":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"Token.Actions.GitHubUserContent.com:Sub":"repo:o/r:pull_request"}"#, T),
    c("key case/aws:SourceIP vs AWS:SourceIp",      r#"{"IpAddress":{"aws:SourceIP":"192.0.2.0/24"}}"#, r#"{"AWS:SourceIp":"192.0.2.7"}"#, T),
    c("key case/negated operator sees the key",     r#"{"StringNotEquals":{"{GH}:SUB":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("key case/values stay case-sensitive",        r#"{"StringEquals":{"TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:SUB":"REPO:O/R:PULL_REQUEST"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    // --- Policy variables: only under Version 2012-10-17, literal otherwise.
    c("variable/substituted under 2012-10-17",      r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}:*"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main","{gh}:repository":"o/r"}"#, T),
    c("variable/other repository",                  r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}:*"}}"#, r#"{"{gh}:sub":"repo:x/r:ref:refs/heads/main","{gh}:repository":"o/r"}"#, F),
    c("variable/name is case-insensitive",          r#"{"StringLike":{"{gh}:sub":"repo:${TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:Repository}:*"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request","{gh}:repository":"o/r"}"#, T),
    c("variable/aws key under StringEquals",        r#"{"StringEquals":{"sts:RoleSessionName":"gha-${aws:RequestedRegion}"}}"#, r#"{"sts:RoleSessionName":"gha-us-east-1","aws:RequestedRegion":"us-east-1"}"#, T),
    c("variable/aws key under StringNotEquals",     r#"{"StringNotEquals":{"sts:RoleSessionName":"gha-${aws:RequestedRegion}"}}"#, r#"{"sts:RoleSessionName":"gha-us-east-1","aws:RequestedRegion":"us-east-1"}"#, F),
    v("variable/no Version: literal, no match",   NO_VERSION, r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}:*"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main","{gh}:repository":"o/r"}"#, F),
    v("variable/no Version: literal text matches", NO_VERSION, r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}:*"}}"#, r#"{"{gh}:sub":"repo:${{gh}:repository}:pull_request","{gh}:repository":"o/r"}"#, T),
    v("variable/2008-10-17: literal, no match",   V2008, r#"{"StringEquals":{"sts:RoleSessionName":"gha-${aws:RequestedRegion}"}}"#, r#"{"sts:RoleSessionName":"gha-us-east-1","aws:RequestedRegion":"us-east-1"}"#, F),
    v("variable/2008-10-17: literal text matches", V2008, r#"{"StringEquals":{"sts:RoleSessionName":"gha-${aws:RequestedRegion}"}}"#, r#"{"sts:RoleSessionName":"gha-${aws:RequestedRegion}","aws:RequestedRegion":"us-east-1"}"#, T),
    v("variable/no Version: escape is literal",   NO_VERSION, r#"{"StringEquals":{"{gh}:sub":"repo:o/r:${*}"}}"#, r#"{"{gh}:sub":"repo:o/r:${*}"}"#, T),
    // Escapes: ${*} ${?} ${$} are the literal characters.
    c("escape ${*}/literal star matches star",      r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/${*}"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/*"}"#, T),
    c("escape ${*}/is not a wildcard",              r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/${*}"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("escape ${?}/literal question mark",          r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/mai${?}"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/mai?"}"#, T),
    c("escape ${?}/is not a wildcard",              r#"{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/heads/mai${?}"}}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, F),
    c("escape ${$}/literal dollar",                 r#"{"StringEquals":{"{gh}:environment":"${$}prod"}}"#, r#"{"{gh}:environment":"$prod"}"#, T),
    c("escape with wildcards beside it",            r#"{"StringLike":{"{gh}:sub":"repo:o/*:environment:${*}-?"}}"#, r#"{"{gh}:sub":"repo:o/r:environment:*-1"}"#, T),
    // Default values.
    c("default/key missing uses default",           r#"{"StringEquals":{"{gh}:environment":"${aws:PrincipalTag/env, 'prod'}"}}"#, r#"{"{gh}:environment":"prod"}"#, T),
    c("default/key missing, other value",           r#"{"StringEquals":{"{gh}:environment":"${aws:PrincipalTag/env, 'prod'}"}}"#, r#"{"{gh}:environment":"dev"}"#, F),
    c("default/key present wins",                   r#"{"StringEquals":{"{gh}:environment":"${aws:PrincipalTag/env, 'prod'}"}}"#, r#"{"{gh}:environment":"dev","aws:PrincipalTag/env":"dev"}"#, T),
    c("default/no space after comma",               r#"{"StringEquals":{"{gh}:environment":"${aws:PrincipalTag/env,'prod'}"}}"#, r#"{"{gh}:environment":"prod"}"#, T),
    c("default/under StringLike with wildcard",     r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository, 'o/r'}:*"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    // A variable whose key is missing (and has no default): positive fails, negated holds.
    c("missing variable/StringEquals",              r#"{"StringEquals":{"{gh}:sub":"repo:${{gh}:repository}:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("missing variable/StringLike",                r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}*"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("missing variable/StringNotEquals",           r#"{"StringNotEquals":{"{gh}:sub":"repo:${{gh}:repository}:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("missing variable/StringNotLike",             r#"{"StringNotLike":{"{gh}:sub":"repo:${{gh}:repository}*"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, T),
    c("missing variable/not the literal text",      r#"{"StringEquals":{"{gh}:sub":"repo:${{gh}:repository}:pull_request"}}"#, r#"{"{gh}:sub":"repo:${{gh}:repository}:pull_request"}"#, F),
    // Wildcards inside a substituted value are literal, even under StringLike.
    c("substituted star is literal/no match",       r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request","{gh}:repository":"o/*"}"#, F),
    c("substituted star is literal/itself",         r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/*:pull_request","{gh}:repository":"o/*"}"#, T),
    c("substituted ? is literal",                   r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}:*"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request","{gh}:repository":"o/?"}"#, F),
    c("policy star beside substituted value",       r#"{"StringLike":{"{gh}:sub":"repo:${{gh}:repository}*"}}"#, r#"{"{gh}:sub":"repo:o/r:environment:prod","{gh}:repository":"o/r"}"#, T),
    // --- Numeric, Bool, Date, IpAddress, Arn: briefly.
    c("NumericLessThanEquals/equal",                r#"{"NumericLessThanEquals":{"sts:DurationSeconds":"3600"}}"#, r#"{"sts:DurationSeconds":"3600"}"#, T),
    c("NumericLessThanEquals/above",                r#"{"NumericLessThanEquals":{"sts:DurationSeconds":"3600"}}"#, r#"{"sts:DurationSeconds":"3601"}"#, F),
    c("NumericLessThan/equal is not less",          r#"{"NumericLessThan":{"sts:DurationSeconds":"3600"}}"#, r#"{"sts:DurationSeconds":"3600"}"#, F),
    c("NumericGreaterThan/above",                   r#"{"NumericGreaterThan":{"sts:DurationSeconds":900}}"#, r#"{"sts:DurationSeconds":"901"}"#, T),
    c("NumericGreaterThanEquals/below",             r#"{"NumericGreaterThanEquals":{"sts:DurationSeconds":900}}"#, r#"{"sts:DurationSeconds":"899"}"#, F),
    c("NumericEquals/numerically equal",            r#"{"NumericEquals":{"sts:DurationSeconds":"3600"}}"#, r#"{"sts:DurationSeconds":"3600.0"}"#, T),
    c("NumericEquals/not a number",                 r#"{"NumericEquals":{"sts:DurationSeconds":"3600"}}"#, r#"{"sts:DurationSeconds":"one hour"}"#, F),
    c("NumericEquals/missing",                      r#"{"NumericEquals":{"sts:DurationSeconds":"3600"}}"#, r#"{}"#, F),
    c("NumericNotEquals/missing",                   r#"{"NumericNotEquals":{"sts:DurationSeconds":"3600"}}"#, r#"{}"#, T),
    c("NumericNotEquals/several values (NOR)",      r#"{"NumericNotEquals":{"sts:DurationSeconds":["900","3600"]}}"#, r#"{"sts:DurationSeconds":"3600"}"#, F),
    c("Bool/true",                                  r#"{"Bool":{"aws:SecureTransport":"true"}}"#, r#"{"aws:SecureTransport":"true"}"#, T),
    c("Bool/false",                                 r#"{"Bool":{"aws:SecureTransport":"true"}}"#, r#"{"aws:SecureTransport":"false"}"#, F),
    c("Bool/JSON boolean",                          r#"{"Bool":{"aws:SecureTransport":true}}"#, r#"{"aws:SecureTransport":"true"}"#, T),
    c("Bool/missing",                               r#"{"Bool":{"aws:SecureTransport":"true"}}"#, r#"{}"#, F),
    c("DateGreaterThan/after",                      r#"{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#, r#"{"aws:CurrentTime":"2026-06-01T12:00:00Z"}"#, T),
    c("DateGreaterThan/before",                     r#"{"DateGreaterThan":{"aws:CurrentTime":"2026-01-01T00:00:00Z"}}"#, r#"{"aws:CurrentTime":"2025-12-31T23:59:59Z"}"#, F),
    c("DateLessThan/epoch policy, ISO request",     r#"{"DateLessThan":{"aws:CurrentTime":"1767225600"}}"#, r#"{"aws:CurrentTime":"2025-12-31T23:59:59Z"}"#, T),
    c("DateEquals/date only",                       r#"{"DateEquals":{"aws:CurrentTime":"2026-01-01"}}"#, r#"{"aws:CurrentTime":"2026-01-01T00:00:00Z"}"#, T),
    c("DateNotEquals/missing",                      r#"{"DateNotEquals":{"aws:CurrentTime":"2026-01-01"}}"#, r#"{}"#, T),
    c("IpAddress/inside CIDR",                      r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#, r#"{"aws:SourceIp":"192.0.2.7"}"#, T),
    c("IpAddress/outside CIDR",                     r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#, r#"{"aws:SourceIp":"198.51.100.1"}"#, F),
    c("IpAddress/address without prefix is /32",   r#"{"IpAddress":{"aws:SourceIp":"192.0.2.7"}}"#, r#"{"aws:SourceIp":"192.0.2.7"}"#, T),
    c("IpAddress/address without prefix, other",   r#"{"IpAddress":{"aws:SourceIp":"192.0.2.7"}}"#, r#"{"aws:SourceIp":"192.0.2.8"}"#, F),
    c("IpAddress/a /32 is one address",            r#"{"IpAddress":{"aws:SourceIp":"192.0.2.7/32"}}"#, r#"{"aws:SourceIp":"192.0.2.7"}"#, T),
    c("IpAddress/IPv6",                             r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#, r#"{"aws:SourceIp":"2001:db8:1::9"}"#, T),
    c("IpAddress/several CIDRs (OR)",               r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}"#, r#"{"aws:SourceIp":"203.0.113.9"}"#, T),
    c("NotIpAddress/outside all (NOR)",             r#"{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}"#, r#"{"aws:SourceIp":"198.51.100.1"}"#, T),
    c("NotIpAddress/inside one",                    r#"{"NotIpAddress":{"aws:SourceIp":["192.0.2.0/24","203.0.113.0/24"]}}"#, r#"{"aws:SourceIp":"203.0.113.9"}"#, F),
    c("ArnLike/wildcard per component",             r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:role/gha-*"}}"#, r#"{"aws:SourceArn":"arn:aws:iam::111122223333:role/gha-deploy"}"#, T),
    c("ArnLike/other resource type",                r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:role/gha-*"}}"#, r#"{"aws:SourceArn":"arn:aws:iam::111122223333:user/gha-deploy"}"#, F),
    c("ArnLike/star does not span components",      r#"{"ArnLike":{"aws:SourceArn":"arn:*"}}"#, r#"{"aws:SourceArn":"arn:aws:iam::111122223333:role/x"}"#, F),
    c("ArnEquals/exact",                            r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:iam::111122223333:role/x"}}"#, r#"{"aws:SourceArn":"arn:aws:iam::111122223333:role/x"}"#, T),
    c("ArnNotLike/missing",                         r#"{"ArnNotLike":{"aws:SourceArn":"arn:aws:iam::*:role/*"}}"#, r#"{}"#, T),
    // --- Not an IAM operator: IAM would reject the policy, so it never matches.
    c("unknown operator",                           r#"{"StringEqualz":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
    c("operator names are case-sensitive",          r#"{"stringequals":{"{gh}:sub":"repo:o/r:pull_request"}}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, F),
];

/// One row of the statement table: a whole policy, the request's principal and action (and
/// context), and the decision.
struct StatementCase {
    name: &'static str,
    policy: &'static str,
    principal: &'static str,
    action: &'static str,
    context: &'static str,
    decision: Decision,
}

const fn s(name: &'static str, policy: &'static str, decision: Decision) -> StatementCase {
    StatementCase {
        name,
        policy,
        principal: "{arn}",
        action: ACTION,
        context: "{}",
        decision,
    }
}

const fn sp(
    name: &'static str,
    policy: &'static str,
    principal: &'static str,
    decision: Decision,
) -> StatementCase {
    StatementCase {
        name,
        policy,
        principal,
        action: ACTION,
        context: "{}",
        decision,
    }
}

const fn sa(
    name: &'static str,
    policy: &'static str,
    action: &'static str,
    decision: Decision,
) -> StatementCase {
    StatementCase {
        name,
        policy,
        principal: "{arn}",
        action,
        context: "{}",
        decision,
    }
}

const fn sc(
    name: &'static str,
    policy: &'static str,
    context: &'static str,
    decision: Decision,
) -> StatementCase {
    StatementCase {
        name,
        policy,
        principal: "{arn}",
        action: ACTION,
        context,
        decision,
    }
}

const ALLOW: Decision = Decision::Allow;
const IMPLICIT: Decision = Decision::ImplicitDeny;
const EXPLICIT: Decision = Decision::ExplicitDeny;

#[rustfmt::skip]
const STATEMENTS: &[StatementCase] = &[
    // --- Allow vs Deny.
    s("no statement",                              r#"{"Version":"2012-10-17","Statement":[]}"#, IMPLICIT),
    s("one unconditional Allow",                   r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, ALLOW),
    s("a lone statement as an object",             r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}}"#, ALLOW),
    s("a lone Deny",                               r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, EXPLICIT),
    s("explicit Deny wins over Allow",             r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"Deny","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, EXPLICIT),
    s("explicit Deny wins, Deny first",            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"Federated":"{arn}"},"Action":"sts:*"},{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, EXPLICIT),
    sc("Deny whose condition fails does not deny", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"Deny","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"{gh}:sub":"*:pull_request"}}}]}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, ALLOW),
    sc("Deny whose condition holds denies",        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"Deny","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"{gh}:sub":"*:pull_request"}}}]}"#, r#"{"{gh}:sub":"repo:o/r:pull_request"}"#, EXPLICIT),
    sc("any one Allow grants",                     r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"{gh}:sub":"repo:o/r:pull_request"}}},{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"{gh}:sub":"repo:o/r:ref:*"}}}]}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, ALLOW),
    sc("no Allow matches",                         r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"{gh}:sub":"repo:o/r:pull_request"}}},{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"{gh}:sub":"repo:o/r:ref:refs/tags/*"}}}]}"#, r#"{"{gh}:sub":"repo:o/r:ref:refs/heads/main"}"#, IMPLICIT),
    sp("Deny for another provider does not apply", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"Deny","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/gitlab.com"},"Action":"sts:*"}]}"#, "{arn}", ALLOW),
    // --- Effect is case-sensitive: anything but "Allow" / "Deny" never applies.
    s("Effect allow (lower case) never applies",   r#"{"Version":"2012-10-17","Statement":[{"Effect":"allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    s("Effect ALLOW never applies",                r#"{"Version":"2012-10-17","Statement":[{"Effect":"ALLOW","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    s("Effect deny (lower case) never applies",    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"deny","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, ALLOW),
    s("no Effect never applies",                   r#"{"Version":"2012-10-17","Statement":[{"Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    // --- Principal.Federated: string, list (OR), "*", another provider; no partial match.
    s("Federated string",                          r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, ALLOW),
    s("Federated list containing the provider",    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":["arn:aws:iam::111122223333:oidc-provider/gitlab.com","{arn}"]},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, ALLOW),
    s("Federated list without the provider",       r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":["arn:aws:iam::111122223333:oidc-provider/gitlab.com","accounts.google.com"]},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    s("Federated \"*\"",                           r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"*"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, ALLOW),
    s("Principal \"*\"",                           r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity"}]}"#, ALLOW),
    s("Federated another provider",                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/gitlab.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    s("Federated same issuer, another account",    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::999988887777:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    sp("Federated is no prefix match (enterprise issuer)", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, "{arn}/acme", IMPLICIT),
    s("Federated partial wildcard does not match", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::*:oidc-provider/token.actions.githubusercontent.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    sp("Federated built-in provider by host",      r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"accounts.google.com"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, "accounts.google.com", ALLOW),
    s("Principal AWS is not a web identity",       r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    s("no Principal",                              r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRoleWithWebIdentity"}]}"#, IMPLICIT),
    // --- Action: case-insensitive, wildcards.
    s("Action exact",                              r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, ALLOW),
    s("Action STS:assumerolewithwebidentity",      r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"STS:assumerolewithwebidentity"}]}"#, ALLOW),
    s("Action sts:AssumeRole*",                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRole*"}]}"#, ALLOW),
    s("Action STS:ASSUMEROLE*",                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"STS:ASSUMEROLE*"}]}"#, ALLOW),
    s("Action sts:*",                              r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:*"}]}"#, ALLOW),
    s("Action *",                                  r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"*"}]}"#, ALLOW),
    s("Action with ?",                             r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWith?ebIdentity"}]}"#, ALLOW),
    s("Action sts:AssumeRole does not match",      r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRole"}]}"#, IMPLICIT),
    s("Action sts:assumerole does not match",      r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:assumerole"}]}"#, IMPLICIT),
    s("Action iam:* does not match",               r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"iam:*"}]}"#, IMPLICIT),
    s("Action list containing it",                 r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":["sts:TagSession","sts:AssumeRoleWithWebIdentity"]}]}"#, ALLOW),
    s("Action list without it",                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":["sts:TagSession","sts:AssumeRole"]}]}"#, IMPLICIT),
    sa("request action sts:TagSession",            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:AssumeRoleWithWebIdentity"}]}"#, "sts:TagSession", IMPLICIT),
    sa("request action sts:TagSession, allowed",   r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"]}]}"#, "sts:TagSession", ALLOW),
    s("NotAction sts:AssumeRole matches ours",     r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"NotAction":"sts:AssumeRole"}]}"#, ALLOW),
    s("NotAction sts:AssumeRole* excludes ours",   r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"NotAction":"sts:AssumeRole*"}]}"#, IMPLICIT),
    s("NotAction is case-insensitive",             r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"NotAction":["iam:*","STS:ASSUMEROLEWITHWEBIDENTITY"]}]}"#, IMPLICIT),
    s("Deny with NotAction denies ours",           r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"},"Action":"sts:*"},{"Effect":"Deny","Principal":{"Federated":"{arn}"},"NotAction":"sts:TagSession"}]}"#, EXPLICIT),
    s("no Action",                                 r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"{arn}"}}]}"#, IMPLICIT),
];

// ---------------------------------------------------------------------------------------

fn expand(text: &str) -> String {
    text.replace("{arn}", ARN)
        .replace("{gh}", GH)
        .replace("{GH}", &GH.to_ascii_uppercase())
}

fn parse(what: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(&expand(text)).map_err(|e| format!("{what} is not JSON: {e}"))
}

fn run(policy: &Value, principal: &str, action: &str, context: Value) -> Result<Evaluation, String> {
    let document = PolicyDocument::from_value(policy).map_err(|e| format!("policy rejected: {e}"))?;
    let request: Request = serde_json::from_value(json!({
        "principal": expand(principal),
        "action": action,
        "context": context,
    }))
    .map_err(|e| format!("request rejected: {e}"))?;
    Ok(evaluate(&document, &request))
}

fn allow_statement(condition: &Value) -> Value {
    json!({"Effect": "Allow", "Principal": {"Federated": ARN}, "Action": ACTION, "Condition": condition})
}

fn policy_with(version: Option<&str>, statements: Vec<Value>) -> Value {
    match version {
        Some(version) => json!({"Version": version, "Statement": statements}),
        None => json!({"Statement": statements}),
    }
}

/// Checks one condition row both as an Allow and as a Deny.
fn check_condition(case: &Case) -> Result<(), String> {
    let condition = parse("condition", case.condition)?;
    let context = parse("context", case.context)?;

    let allow = policy_with(case.version, vec![allow_statement(&condition)]);
    let got = run(&allow, "{arn}", ACTION, context.clone())?;
    let want = if case.holds {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    };
    let mut problems = Vec::new();
    if got.decision != want {
        problems.push(format!(
            "as Allow: expected {want:?}, got {:?} {}",
            got.decision,
            trace_text(&got)
        ));
    }

    let mut deny = allow_statement(&condition);
    deny["Effect"] = json!("Deny");
    let unconditional = json!({"Effect": "Allow", "Principal": {"Federated": ARN}, "Action": ACTION});
    let both = policy_with(case.version, vec![unconditional, deny]);
    let got = run(&both, "{arn}", ACTION, context)?;
    let want = if case.holds {
        Decision::ExplicitDeny
    } else {
        Decision::Allow
    };
    if got.decision != want {
        problems.push(format!(
            "as Deny: expected {want:?}, got {:?} {}",
            got.decision,
            trace_text(&got)
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn check_statement(case: &StatementCase) -> Result<(), String> {
    let policy = parse("policy", case.policy)?;
    let context = parse("context", case.context)?;
    let got = run(&policy, case.principal, case.action, context)?;
    if got.decision == case.decision {
        Ok(())
    } else {
        Err(format!(
            "expected {:?}, got {:?} {}",
            case.decision,
            got.decision,
            trace_text(&got)
        ))
    }
}

fn trace_text(evaluation: &Evaluation) -> String {
    serde_json::to_string(&evaluation.statements).unwrap_or_default()
}

/// Runs every row; fails once, listing every failing row by name.
fn run_table<R>(table: &[R], name: impl Fn(&R) -> &str, check: impl Fn(&R) -> Result<(), String>) {
    let mut names = std::collections::HashSet::new();
    let failures: Vec<String> = table
        .iter()
        .filter_map(|row| {
            assert!(
                names.insert(name(row).to_owned()),
                "duplicate row name {:?}",
                name(row)
            );
            check(row).err().map(|why| format!("  {}: {why}", name(row)))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}

#[test]
fn condition_table() {
    run_table(CONDITIONS, |c| c.name, check_condition);
}

#[test]
fn statement_table() {
    run_table(STATEMENTS, |s| s.name, check_statement);
}

/// The table covers what the brief promises: each string operator with the key present,
/// missing and empty, and with `IfExists`.
#[test]
fn table_covers_every_string_operator() {
    for op in STRING_OPERATORS {
        for situation in ["missing", "empty string"] {
            let name = format!("{op}/{situation}");
            assert!(CONDITIONS.iter().any(|c| c.name == name), "no row {name}");
        }
        let present = format!("{op}/present/");
        assert!(
            CONDITIONS.iter().any(|c| c.name.starts_with(&present)),
            "no row {present}…"
        );
        let if_exists = format!("{op}IfExists/missing");
        assert!(
            CONDITIONS.iter().any(|c| c.name == if_exists),
            "no row {if_exists}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Per-statement traces.

fn evaluate_json(policy: Value, context: Value) -> Evaluation {
    run(&policy, "{arn}", ACTION, context).expect("valid row")
}

#[test]
fn trace_names_the_failing_condition_and_its_values() {
    let evaluation = evaluate_json(
        json!({"Version": "2012-10-17", "Statement": [allow_statement(&json!({
            "StringEquals": {format!("{GH}:aud"): "sts.amazonaws.com"},
            "StringLike": {format!("{GH}:sub"): ["repo:acme/web:ref:refs/heads/main", "repo:acme/web:environment:*"]},
        }))]}),
        json!({format!("{GH}:aud"): "sts.amazonaws.com", format!("{GH}:sub"): "repo:acme/web:pull_request"}),
    );
    assert_eq!(evaluation.decision, Decision::ImplicitDeny);
    let statement = &evaluation.statements[0];
    assert_eq!((statement.index, statement.effect.as_str()), (0, "Allow"));
    assert!(statement.principal_matched && statement.action_matched);
    assert_eq!(statement.matched, Tri::False);
    assert_eq!(statement.conditions.len(), 2);

    let aud = statement
        .conditions
        .iter()
        .find(|c| c.key.ends_with(":aud"))
        .unwrap();
    assert_eq!((aud.operator.as_str(), aud.result), ("StringEquals", Tri::True));

    let failed: Vec<_> = statement.failed_conditions().collect();
    assert_eq!(failed.len(), 1);
    let sub = failed[0];
    assert_eq!(sub.operator, "StringLike");
    assert_eq!(sub.key, format!("{GH}:sub"));
    assert_eq!(
        sub.expected,
        ["repo:acme/web:ref:refs/heads/main", "repo:acme/web:environment:*"]
    );
    assert_eq!(
        sub.actual.as_deref(),
        Some(&["repo:acme/web:pull_request".to_owned()][..])
    );
    assert_eq!(sub.result, Tri::False);
    assert_eq!(sub.provenance, Some(Provenance::Recorded));

    // The JSON shape of `oidc-watch evaluate`: `result` is true / false / null.
    let value = serde_json::to_value(&evaluation).unwrap();
    assert_eq!(value["decision"], "ImplicitDeny");
    assert_eq!(value["statements"][0]["matched"], false);
    let conditions = value["statements"][0]["conditions"].as_array().unwrap();
    assert!(conditions
        .iter()
        .any(|c| c["operator"] == "StringLike" && c["result"] == false));
}

#[test]
fn trace_of_a_missing_key_and_of_a_key_written_in_other_case() {
    let evaluation = evaluate_json(
        json!({"Version": "2012-10-17", "Statement": [allow_statement(&json!({
            "StringEquals": {"TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:AUD": "sts.amazonaws.com"},
            "StringLike": {format!("{GH}:job_workflow_ref"): "acme/workflows/*"},
        }))]}),
        json!({format!("{GH}:aud"): "sts.amazonaws.com"}),
    );
    let statement = &evaluation.statements[0];
    let aud = statement
        .conditions
        .iter()
        .find(|c| c.key.ends_with(":AUD"))
        .unwrap();
    // The key is reported as written in the policy, and found despite the case.
    assert_eq!(aud.key, "TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:AUD");
    assert_eq!(aud.result, Tri::True);
    let missing = statement
        .failed_conditions()
        .next()
        .expect("one failed condition");
    assert_eq!(missing.key, format!("{GH}:job_workflow_ref"));
    assert_eq!((missing.actual.as_ref(), missing.result), (None, Tri::False));
    assert_eq!(statement.matched, Tri::False);
}

#[test]
fn trace_of_effect_principal_and_action() {
    let evaluation = evaluate_json(
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "allow", "Principal": {"Federated": ARN}, "Action": ACTION},
            {"Sid": "Other", "Effect": "Allow", "Principal": {"Federated": "accounts.google.com"}, "Action": ACTION},
            {"Effect": "Allow", "Principal": {"Federated": ARN}, "Action": "sts:AssumeRole"},
        ]}),
        json!({}),
    );
    assert_eq!(evaluation.decision, Decision::ImplicitDeny);
    let [lower, other, wrong_action] = &evaluation.statements[..] else {
        panic!("three statements")
    };
    assert_eq!(
        (lower.effect.as_str(), lower.principal_matched, lower.matched),
        ("allow", true, Tri::False)
    );
    assert!(!lower.is_allow());
    assert_eq!(
        (other.sid.as_deref(), other.principal_matched, other.matched),
        (Some("Other"), false, Tri::False)
    );
    assert_eq!(
        (wrong_action.principal_matched, wrong_action.action_matched),
        (true, false)
    );
    assert_eq!(wrong_action.index, 2);
}

/// A key STS had but the evidence does not show is unknown, not missing: the condition is
/// neither true nor false, the statement is undecided, and the decision counts it unmet.
#[test]
fn unknown_key_makes_the_statement_undecided() {
    let policy = PolicyDocument::from_value(&json!({"Version": "2012-10-17", "Statement": [
        allow_statement(&json!({"StringEquals": {format!("{GH}:actor"): "octocat"}})),
        {"Effect": "Deny", "Principal": {"Federated": ARN}, "Action": ACTION,
         "Condition": {"StringNotEquals": {format!("{GH}:ACTOR"): "octocat"}}},
    ]}))
    .unwrap();
    let mut request: Request = serde_json::from_value(
        json!({"principal": ARN, "context": {format!("{GH}:sub"): "repo:o/r:pull_request"}}),
    )
    .unwrap();
    assert_eq!(
        request.action, ACTION,
        "action defaults to AssumeRoleWithWebIdentity"
    );
    request.context.mark_unknown(&format!("{GH}:actor"));
    let evaluation = evaluate(&policy, &request);
    for statement in &evaluation.statements {
        assert_eq!(statement.matched, Tri::Unknown, "statement {}", statement.index);
        assert_eq!(statement.conditions[0].result, Tri::Unknown);
        assert_eq!(statement.conditions[0].actual, None);
    }
    assert_eq!(evaluation.decision, Decision::ImplicitDeny);
    assert_eq!(
        serde_json::to_value(&evaluation).unwrap()["statements"][0]["conditions"][0]["result"],
        Value::Null
    );
}

/// AWS, `reference_policies_elements_condition_operators` (Date): "You must specify
/// date/time values with one of the W3C implementations of the ISO 8601 date formats or in
/// epoch (UNIX) time." W3C-DTF (https://www.w3.org/TR/NOTE-datetime) writes the time zone
/// as `Z` or `+hh:mm` / `-hh:mm`; `epoch_seconds` applies the offset.
#[test]
fn date_operators_apply_a_utc_offset() {
    let condition = |op: &str, policy: &str| json!({op: {"aws:CurrentTime": policy}});
    let at_midnight_utc = json!({"aws:CurrentTime": "2026-01-01T00:00:00Z"});
    for (op, policy) in [
        ("DateEquals", "2026-01-01T05:00:00+05:00"),
        ("DateEquals", "2025-12-31T19:00:00-05:00"),
        ("DateLessThan", "2026-01-01T00:30:00-01:00"),
    ] {
        let evaluation = evaluate_json(
            json!({"Version": "2012-10-17", "Statement": [allow_statement(&condition(op, policy))]}),
            at_midnight_utc.clone(),
        );
        assert_eq!(
            evaluation.decision,
            Decision::Allow,
            "{op} {policy} against 2026-01-01T00:00:00Z"
        );
    }
}
