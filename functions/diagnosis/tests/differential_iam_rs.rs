//! Differential property test: our trust-policy evaluator against the `iam-rs` crate
//! (0.8.0, MIT), used here only as an independent second opinion.
//!
//! The generator builds web-identity trust policies (1-3 statements, Allow/Deny,
//! `Principal.Federated` as a string or a list, or `Principal: "*"`, `Action` or
//! `NotAction` as a string or a list, and up to three string / set / `Null` condition
//! operators on the GitHub `sub` and `aud` keys with random key-name casing) and
//! `sts:AssumeRoleWithWebIdentity` requests whose `sub` / `aud` are present, missing or
//! empty. Both evaluators must reach the same decision.
//!
//! Where the two disagree and the AWS documentation sides with us, the case is kept out
//! of the generator and pinned by a `known_disagreement_*` test below that asserts our
//! decision and quotes the sentence that settles it.
//!
//! An empty-string claim under a set operator (`ForAnyValue:` / `ForAllValues:`) is kept
//! out too: AWS counts `""` as an empty data set there, iam-rs as one value
//! (`known_disagreement_empty_string_is_empty_set_for_set_operators`).
//!
//! Also left out, because the AWS documentation settles neither answer and the two
//! evaluators differ: a plain (non-set) operator on a list-valued key, `"Federated": "*"`,
//! `StringEqualsIgnoreCase` on non-ASCII letters (iam-rs folds ASCII only), and operator
//! names iam-rs cannot parse (`ForAnyValue:StringLikeIfExists`, misspelt operators).
//!
//! Adapting iam-rs to trust policies (no change of meaning):
//! - iam-rs requires `Version`; when a generated policy has none we add `2012-10-17` on the
//!   iam-rs side only. The one feature that depends on `Version` is policy-variable
//!   substitution, and the generator never writes `${`.
//! - iam-rs never matches a statement that has neither `Resource` nor `NotResource`,
//!   unless `EvaluationOptions::ignore_resource_constraints` is set. Trust policies have
//!   no `Resource`, so we set that option and pass the role ARN as the resource.
//!
//! Case count: 256 per property, or `PROPTEST_CASES`. Failure persistence is off so that
//! a failing run writes no regression file into the source tree; proptest prints the
//! shrunk policy and request instead.

#[path = "support/policy_gen.rs"]
mod policy_gen;

use diagnosis::evaluate::{evaluate, Decision, Request};
use diagnosis::policy::PolicyDocument;
use policy_gen::{Grammar, STRING_OPERATORS};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Map, Value};

const ROLE_ARN: &str = "arn:aws:iam::111122223333:role/ci-deploy";
const ACTION: &str = "sts:AssumeRoleWithWebIdentity";

const GITHUB: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
const GITHUB_OTHER_ACCOUNT: &str =
    "arn:aws:iam::444455556666:oidc-provider/token.actions.githubusercontent.com";
const GITLAB: &str = "arn:aws:iam::111122223333:oidc-provider/gitlab.com";
const GOOGLE: &str = "accounts.google.com";
/// No entry is a prefix of another: iam-rs matches `Federated` by prefix
/// (see `known_disagreement_federated_principal_prefix`).
const PROVIDERS: &[&str] = &[GITHUB, GITHUB_OTHER_ACCOUNT, GITLAB, GOOGLE];

const SUB_KEY: &str = "token.actions.githubusercontent.com:sub";
const AUD_KEY: &str = "token.actions.githubusercontent.com:aud";
/// A key the request never carries (CloudTrail does not record it; STS may not know it).
const ABSENT_KEY: &str = "token.actions.githubusercontent.com:repository";

/// Request-side subjects (what a token carries).
const SUBJECTS: &[&str] = &[
    "repo:octo-org/octo-repo:ref:refs/heads/main",
    "repo:octo-org/octo-repo:ref:refs/heads/feat/x",
    "repo:octo-org/octo-repo:pull_request",
    "repo:octo-org/octo-repo:environment:prod",
    "repo:Octo-Org/octo-repo:ref:refs/heads/main",
    "repo:octo-org@123456/octo-repo@456789:ref:refs/heads/main",
    "repo:octo-org/other-repo:ref:refs/tags/v1",
    "repo:evil/octo-repo:ref:refs/heads/main",
];

/// Policy-side subject values: exact subjects plus patterns with `*` and `?`.
const SUB_PATTERNS: &[&str] = &[
    "repo:octo-org/octo-repo:ref:refs/heads/main",
    "repo:octo-org/octo-repo:pull_request",
    "repo:octo-org/octo-repo:environment:prod",
    "repo:octo-org/*",
    "repo:OCTO-ORG/*",
    "repo:octo-org/octo-repo:*",
    "repo:octo-org/octo-repo:ref:refs/heads/*",
    "repo:octo-org/octo-rep?:*",
    "repo:octo-org/*:pull_request",
    "repo:octo-org/octo-repo:ref:refs/heads/mai?",
    "repo:octo-org@*/octo-repo@*:*",
    "repo:*",
    "*",
    "?",
    "repo:octo-org/octo-repo:ref:refs/heads/main*",
    "",
];

const AUDIENCES: &[&str] = &[
    "sts.amazonaws.com",
    "STS.amazonaws.com",
    "https://github.com/octo-org",
];

const AUD_PATTERNS: &[&str] = &[
    "sts.amazonaws.com",
    "STS.AMAZONAWS.COM",
    "https://github.com/octo-org",
    "sts.*",
    "sts.amazonaws.co?",
    "*",
    "",
];

const ACTIONS: &[&str] = &[
    "sts:AssumeRoleWithWebIdentity",
    "sts:assumerolewithwebidentity",
    "sts:AssumeRole*",
    "sts:*",
    "sts:AssumeRole",
    "sts:TagSession",
];

const BASE_OPERATORS: &[&str] = &STRING_OPERATORS;

// ---------------------------------------------------------------------------------------
// The two evaluators behind one signature.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Allow,
    ImplicitDeny,
    ExplicitDeny,
}

fn ours(policy: &Value, request: &Value) -> Verdict {
    let document =
        PolicyDocument::from_value(policy).unwrap_or_else(|e| panic!("our parser rejected {policy}: {e:?}"));
    let request: Request = serde_json::from_value(request.clone())
        .unwrap_or_else(|e| panic!("our Request rejected {request}: {e}"));
    #[allow(unreachable_patterns)]
    match evaluate(&document, &request).decision {
        Decision::Allow => Verdict::Allow,
        Decision::ImplicitDeny => Verdict::ImplicitDeny,
        Decision::ExplicitDeny => Verdict::ExplicitDeny,
        other => panic!("unexpected decision {other:?}"),
    }
}

fn theirs(policy: &Value, request: &Value) -> Verdict {
    use iam_rs::{
        Arn, Context, ContextValue, EvaluationOptions, IAMPolicy, IAMRequest, PolicyEvaluator, Principal,
        PrincipalId,
    };

    let mut policy = policy.clone();
    if let Some(object) = policy.as_object_mut() {
        // iam-rs requires Version (see the module comment).
        object
            .entry("Version")
            .or_insert_with(|| Value::String("2012-10-17".into()));
    }
    let policy: IAMPolicy =
        serde_json::from_value(policy.clone()).unwrap_or_else(|e| panic!("iam-rs rejected {policy}: {e}"));

    let mut context = Context::new();
    if let Some(entries) = request["context"].as_object() {
        for (key, value) in entries {
            let value = match value {
                Value::String(s) => ContextValue::String(s.clone()),
                Value::Array(items) => {
                    ContextValue::StringList(items.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                }
                other => panic!("unexpected context value {other}"),
            };
            context.insert(key.clone(), value);
        }
    }
    let principal = request["principal"].as_str().unwrap().to_string();
    let action = request["action"].as_str().unwrap().to_string();
    let request = IAMRequest::new_with_context(
        Principal::Federated(PrincipalId::String(principal)),
        action,
        Arn::parse(ROLE_ARN).unwrap(),
        context,
    );
    // Trust policies have no Resource (see the module comment).
    let options = EvaluationOptions {
        ignore_resource_constraints: true,
        ..EvaluationOptions::default()
    };
    let result = PolicyEvaluator::with_policies(vec![policy])
        .with_options(options)
        .evaluate(&request)
        .unwrap_or_else(|e| panic!("iam-rs failed to evaluate: {e}"));
    match result.decision {
        iam_rs::Decision::Allow => Verdict::Allow,
        iam_rs::Decision::Deny => Verdict::ExplicitDeny,
        iam_rs::Decision::NotApplicable => Verdict::ImplicitDeny,
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap()
}

/// A generated document; `Debug` prints it as compact JSON so shrunk cases stay readable.
#[derive(Clone)]
struct Json(Value);

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

fn request(principal: &str, context: Value) -> Value {
    json!({"principal": principal, "action": ACTION, "context": context})
}

// ---------------------------------------------------------------------------------------
// Generators.

/// Same key, in canonical, upper or random per-character case.
fn key_casing(key: &'static str) -> impl Strategy<Value = String> {
    let random = prop::collection::vec(any::<bool>(), key.len()).prop_map(move |flips| {
        key.chars()
            .zip(flips)
            .map(|(c, up)| if up { c.to_ascii_uppercase() } else { c })
            .collect::<String>()
    });
    prop_oneof![
        3 => Just(key.to_string()),
        1 => Just(key.to_ascii_uppercase()),
        2 => random,
    ]
}

/// One or more policy values: a bare string or a list of 1-3 strings.
fn policy_values(alphabet: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop_oneof![
        select(alphabet).prop_map(|s| json!(s)),
        prop::collection::vec(select(alphabet), 1..=3).prop_map(|v| json!(v)),
    ]
}

/// A `(key, values)` entry for a string operator, on `sub`, `aud` or a missing key.
fn string_entry() -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        4 => (key_casing(SUB_KEY), policy_values(SUB_PATTERNS)),
        2 => (key_casing(AUD_KEY), policy_values(AUD_PATTERNS)),
        1 => (key_casing(ABSENT_KEY), policy_values(SUB_PATTERNS)),
    ]
}

fn null_entry() -> impl Strategy<Value = (String, Value)> {
    (
        prop_oneof![key_casing(SUB_KEY), key_casing(AUD_KEY), key_casing(ABSENT_KEY)],
        select(&["true", "false"][..]).prop_map(|s| json!(s)),
    )
}

/// Operator names for single-valued keys: plain, `...IfExists`, set-qualified, `Null`.
fn operator_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(BASE_OPERATORS).prop_map(String::from),
        2 => select(BASE_OPERATORS).prop_map(|b| format!("{b}IfExists")),
        1 => select(BASE_OPERATORS).prop_map(|b| format!("ForAnyValue:{b}")),
        1 => select(BASE_OPERATORS).prop_map(|b| format!("ForAllValues:{b}")),
        1 => Just("Null".to_string()),
    ]
}

/// Operator names for multivalued keys: only the set operators.
fn set_operator_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(BASE_OPERATORS).prop_map(|b| format!("ForAnyValue:{b}")),
        select(BASE_OPERATORS).prop_map(|b| format!("ForAllValues:{b}")),
    ]
}

/// One operator block: the operator and 1-2 keys under it.
fn operator_block(operator: BoxedStrategy<String>) -> impl Strategy<Value = (String, Vec<(String, Value)>)> {
    operator.prop_flat_map(|op| {
        let entry = if op == "Null" {
            null_entry().boxed()
        } else {
            string_entry().boxed()
        };
        (Just(op), prop::collection::vec(entry, 1..=2))
    })
}

/// A `Condition` object with 0-3 operators (`None`: no `Condition` element at all).
fn condition(operator: BoxedStrategy<String>) -> impl Strategy<Value = Option<Value>> {
    prop::collection::vec(operator_block(operator), 0..=3).prop_flat_map(|blocks| {
        let mut object = Map::new();
        for (op, entries) in blocks {
            let inner = object
                .entry(op)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .unwrap();
            for (key, values) in entries {
                inner.insert(key, values);
            }
        }
        let empty = object.is_empty();
        let object = Value::Object(object);
        if empty {
            // An absent Condition and an empty one must mean the same.
            prop_oneof![3 => Just(None), 1 => Just(Some(object))].boxed()
        } else {
            Just(Some(object)).boxed()
        }
    })
}

/// A provider ARN, mostly the GitHub one so that conditions decide most cases.
fn provider() -> impl Strategy<Value = &'static str> {
    prop_oneof![3 => Just(GITHUB), 2 => select(PROVIDERS)]
}

fn principal() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => provider().prop_map(|p| json!({"Federated": p})),
        3 => prop::collection::vec(provider(), 1..=3).prop_map(|p| json!({"Federated": p})),
        1 => Just(json!("*")),
    ]
}

/// `("Action" | "NotAction", value)`.
fn action() -> impl Strategy<Value = (&'static str, Value)> {
    // The first four match the request's action, the last two do not.
    let one = prop_oneof![3 => select(&ACTIONS[..4]), 1 => select(ACTIONS)];
    let value = prop_oneof![
        one.clone().prop_map(|a| json!(a)),
        prop::collection::vec(one, 1..=3).prop_map(|a| json!(a)),
    ];
    (prop_oneof![5 => Just("Action"), 1 => Just("NotAction")], value)
}

/// Well-formed trust policies: 1-3 statements with a federated (or `*`) principal, mostly
/// version 2012-10-17, conditions on `sub` and `aud` under `operator`s.
fn policy(operator: fn() -> BoxedStrategy<String>) -> impl Strategy<Value = Json> {
    let grammar = Grammar {
        effect: prop_oneof![2 => Just("Allow"), 1 => Just("Deny")].boxed(),
        principal: principal().prop_map(Some).boxed(),
        action: action().boxed(),
        condition: condition(operator()).boxed(),
        sid: Just(None).boxed(),
        statements: (1..=3).into(),
        version: prop_oneof![
            6 => Just(Some("2012-10-17")),
            1 => Just(Some("2008-10-17")),
            1 => Just(None),
        ]
        .boxed(),
        lone_statement_as_object: any::<bool>().boxed(),
    };
    policy_gen::policy(&grammar).prop_map(Json)
}

fn single_valued_operators() -> BoxedStrategy<String> {
    operator_name().boxed()
}

fn multivalued_operators() -> BoxedStrategy<String> {
    set_operator_name().boxed()
}

/// A context value that is a single string: missing, empty or a real value.
fn scalar_claim(alphabet: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(json!(""))),
        4 => select(alphabet).prop_map(|s| Some(json!(s))),
    ]
}

/// A context value that is a list: missing, empty list, or 1-3 values.
fn list_claim(alphabet: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(json!([]))),
        4 => prop::collection::vec(select(alphabet), 1..=3).prop_map(|v| Some(json!(v))),
    ]
}

fn web_identity_request(
    sub: impl Strategy<Value = Option<Value>>,
    aud: impl Strategy<Value = Option<Value>>,
) -> impl Strategy<Value = Json> {
    (
        prop_oneof![3 => Just(GITHUB), 1 => select(PROVIDERS)],
        sub,
        aud,
        key_casing(SUB_KEY),
        key_casing(AUD_KEY),
    )
        .prop_map(|(principal, sub, aud, sub_key, aud_key)| {
            let mut context = Map::new();
            if let Some(sub) = sub {
                context.insert(sub_key, sub);
            }
            if let Some(aud) = aud {
                context.insert(aud_key, aud);
            }
            Json(request(principal, Value::Object(context)))
        })
}

/// Whether any `Condition` of `policy` uses a set operator (`ForAnyValue:` / `ForAllValues:`).
fn uses_set_operator(policy: &Value) -> bool {
    let statements = match &policy["Statement"] {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    statements
        .iter()
        .filter_map(|s| s["Condition"].as_object())
        .any(|condition| {
            condition
                .keys()
                .any(|op| op.starts_with("ForAnyValue:") || op.starts_with("ForAllValues:"))
        })
}

/// Whether some context value of `request` is the empty string.
fn has_empty_string_claim(request: &Value) -> bool {
    request["context"]
        .as_object()
        .is_some_and(|context| context.values().any(|v| v == ""))
}

fn config() -> ProptestConfig {
    // `default()` honours PROPTEST_CASES; without it, run 256 cases.
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = 256;
    }
    config.failure_persistence = None;
    config
}

proptest! {
    #![proptest_config(config())]

    /// Claims are single strings (as STS gives `sub` and `aud`), any string operator.
    #[test]
    fn agrees_with_iam_rs_on_single_valued_claims(
        policy in policy(single_valued_operators),
        request in web_identity_request(scalar_claim(SUBJECTS), scalar_claim(AUDIENCES)),
    ) {
        let (policy, request) = (policy.0, request.0);
        // See known_disagreement_empty_string_is_empty_set_for_set_operators.
        prop_assume!(!(uses_set_operator(&policy) && has_empty_string_claim(&request)));
        let (ours, theirs) = (ours(&policy, &request), theirs(&policy, &request));
        prop_assert_eq!(
            ours, theirs,
            "ours (left) and iam-rs (right) disagree\npolicy: {}\nrequest: {}",
            pretty(&policy), pretty(&request)
        );
    }

    /// Claims are lists (a JWT `aud` may be an array), set operators only: a plain
    /// operator on a multivalued key is undocumented by AWS.
    #[test]
    fn agrees_with_iam_rs_on_multivalued_claims(
        policy in policy(multivalued_operators),
        request in web_identity_request(list_claim(SUBJECTS), list_claim(AUDIENCES)),
    ) {
        let (policy, request) = (policy.0, request.0);
        let (ours, theirs) = (ours(&policy, &request), theirs(&policy, &request));
        prop_assert_eq!(
            ours, theirs,
            "ours (left) and iam-rs (right) disagree\npolicy: {}\nrequest: {}",
            pretty(&policy), pretty(&request)
        );
    }
}

// ---------------------------------------------------------------------------------------
// Known disagreements: AWS documentation sides with us, so these stay out of the
// generator and are pinned here.

/// iam-rs matches `Principal.Federated` by string prefix, so a policy naming
/// `…/token.actions.githubusercontent.com` also admits the GitHub Enterprise
/// custom-issuer provider `…/token.actions.githubusercontent.com/<slug>`.
///
/// AWS, `reference_policies_elements_principal`: "You cannot use a wildcard to match part
/// of a principal name or ARN." If even an explicit wildcard cannot match part of a
/// principal ARN, an implicit prefix match cannot either: the provider ARN must be equal.
#[test]
fn known_disagreement_federated_principal_prefix() {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": GITHUB},
            "Action": ACTION,
        }]
    });
    let enterprise = format!("{GITHUB}/octo-enterprise");
    let request = request(
        &enterprise,
        json!({SUB_KEY: "repo:octo-org/octo-repo:pull_request"}),
    );
    assert_eq!(ours(&policy, &request), Verdict::ImplicitDeny);
    assert_eq!(
        theirs(&policy, &request),
        Verdict::Allow,
        "iam-rs 0.8.0 prefix-matches"
    );
}

/// iam-rs substitutes policy variables only in `Resource`, never in condition values, so
/// `${...}` in a condition value is compared literally even under Version 2012-10-17.
///
/// AWS, `reference_policies_variables` ("Condition element"): "You can use a policy
/// variable for `Condition` values in any condition that involves the string operators
/// or the ARN operators." and "When you use a policy variable, AWS substitutes a value
/// from the request context key in place of the variable in your policy."
/// Without `Version` (or with 2008-10-17) "variables like `${aws:username}` are treated
/// as literal strings in the policy", so there the two agree.
#[test]
fn known_disagreement_policy_variable_in_condition() {
    let statement = json!({
        "Effect": "Allow",
        "Principal": {"Federated": GITHUB},
        "Action": ACTION,
        "Condition": {"StringLike": {SUB_KEY: "repo:${token.actions.githubusercontent.com:aud}/*"}},
    });
    let request = request(
        GITHUB,
        json!({SUB_KEY: "repo:octo-org/octo-repo:ref:refs/heads/main", AUD_KEY: "octo-org"}),
    );

    let versioned = json!({"Version": "2012-10-17", "Statement": [statement.clone()]});
    assert_eq!(ours(&versioned, &request), Verdict::Allow);
    assert_eq!(
        theirs(&versioned, &request),
        Verdict::ImplicitDeny,
        "iam-rs 0.8.0 compares literally"
    );

    for unversioned in [
        json!({"Statement": [statement.clone()]}),
        json!({"Version": "2008-10-17", "Statement": [statement]}),
    ] {
        assert_eq!(ours(&unversioned, &request), Verdict::ImplicitDeny);
    }
}

/// iam-rs treats a statement without `Principal` as applying to every principal (as in an
/// identity-based policy), so such a statement in a trust policy allows anyone.
///
/// AWS, `reference_policies_elements_principal`: "You must use the `Principal` element in
/// resource-based policies. [...] The IAM resource-based policy type is a role trust
/// policy." A trust-policy statement without `Principal` names nobody who may assume the
/// role, so it cannot allow the call.
#[test]
fn known_disagreement_statement_without_principal() {
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ACTION}]
    });
    let request = request(GITHUB, json!({SUB_KEY: "repo:octo-org/octo-repo:pull_request"}));
    assert_eq!(ours(&policy, &request), Verdict::ImplicitDeny);
    assert_eq!(
        theirs(&policy, &request),
        Verdict::Allow,
        "iam-rs 0.8.0 ignores a missing Principal"
    );
}

/// iam-rs treats an empty-string claim as one value, so `ForAnyValue:StringNotEquals`
/// holds for `""` (it differs from every policy value) and `ForAllValues:StringLike`
/// fails for `""` (no pattern matches it).
///
/// AWS, `reference_policies_multi-value-conditions.md` (archived awsdocs/iam-user-guide):
/// "If the key values in the request resolve to an empty data set (for example, an empty
/// string), a condition operator modified by `ForAllValues` returns true, and a condition
/// operator modified by `ForAnyValue` returns false."
#[test]
fn known_disagreement_empty_string_is_empty_set_for_set_operators() {
    let policy = |operator: &str, value: &str| {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"Federated": GITHUB},
                "Action": ACTION,
                "Condition": {operator: {SUB_KEY: value}},
            }]
        })
    };
    let empty_sub = request(GITHUB, json!({SUB_KEY: ""}));

    let any_not_equals = policy(
        "ForAnyValue:StringNotEquals",
        "repo:octo-org/octo-repo:ref:refs/heads/main",
    );
    assert_eq!(ours(&any_not_equals, &empty_sub), Verdict::ImplicitDeny);
    assert_eq!(
        theirs(&any_not_equals, &empty_sub),
        Verdict::Allow,
        "iam-rs 0.8.0 sees one value"
    );

    let all_like = policy("ForAllValues:StringLike", "repo:octo-org/*");
    assert_eq!(ours(&all_like, &empty_sub), Verdict::Allow);
    assert_eq!(
        theirs(&all_like, &empty_sub),
        Verdict::ImplicitDeny,
        "iam-rs 0.8.0 sees one value"
    );

    // ForAnyValue is false on an empty data set whatever the operator.
    for operator in [
        "ForAnyValue:StringEquals",
        "ForAnyValue:StringLike",
        "ForAnyValue:StringNotLike",
    ] {
        assert_eq!(
            ours(&policy(operator, "*"), &empty_sub),
            Verdict::ImplicitDeny,
            "{operator}"
        );
    }
}
