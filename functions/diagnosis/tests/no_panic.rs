//! Hostile input never panics the library, and what it returns stays sensible.
//!
//! docs/design.md, "Untrusted input": `sub`, repository and branch names are
//! attacker-controlled; messages escape and bound them; no input, however malformed, may
//! panic. Properties of every diagnosis:
//! - [`Check::Sound`]: no panic, the explanation is not empty, `cause == None` exactly when
//!   the record has no `errorCode`, and the diagnosis serialises;
//! - [`Check::Strict`] adds: explanation and fix hold no raw control character (untrusted
//!   text is quoted) and stay under [`MAX_MESSAGE_BYTES`], even for 100 KB inputs.
//!
//! Strict checks run both where hostile text is confined to the subject side of a record
//! ([`Reach::SubjectSide`]) and where it is in every field ([`Reach::Everywhere`]).
//!
//! Case count: 256 per property (24 for the 100 KB ones), or `PROPTEST_CASES`.
//! Failure persistence is off, so a failing run writes nothing into the source tree.

use std::collections::BTreeMap;

#[path = "support/policy_gen.rs"]
mod policy_gen;

use diagnosis::audit::audit;
use diagnosis::evaluate::{evaluate, Decision, Evaluation, Request, Tri};
use diagnosis::policy::PolicyDocument;
use diagnosis::subject::{ProviderKind, Subject};
use diagnosis::{diagnose, read_input, AccountSnapshot, Cause, Diagnosis, InputItem};
use policy_gen::{Grammar, STRING_OPERATORS};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

const ACCOUNT: &str = "111122223333";
const GITHUB_ARN: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";
const GH: &str = "token.actions.githubusercontent.com";

/// Bound on explanation and fix, whatever the input.
const MAX_MESSAGE_BYTES: usize = 8 * 1024;

const ALL_KINDS: [ProviderKind; 9] = [
    ProviderKind::GitHub,
    ProviderKind::GitLab,
    ProviderKind::Eks,
    ProviderKind::TerraformCloud,
    ProviderKind::CircleCi,
    ProviderKind::Buildkite,
    ProviderKind::Bitbucket,
    ProviderKind::Google,
    ProviderKind::Other,
];

fn sample_snapshot() -> AccountSnapshot {
    diagnosis::testing::sample_account(ACCOUNT)
}

fn config(cases: u32) -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    config.failure_persistence = None;
    config
}

// ---------------------------------------------------------------------------------------
// Strategies.

/// Pieces that hostile subjects, ARNs and messages are made of.
const PIECES: &[&str] = &[
    ":",
    "@",
    "/",
    "%3A",
    "%",
    "*",
    "?",
    "\n",
    "\r\n",
    "\t",
    "\u{0}",
    "\u{7}",
    "\u{1b}[31m",
    "\u{7f}",
    "\u{85}",
    "\u{200b}",
    "\u{202e}",
    "\u{feff}",
    "\"",
    "\\",
    "'",
    "`",
    "<!channel>",
    "<@U123>",
    "&amp;",
    "${aws:username}",
    "${",
    "}",
    "é",
    "💥",
    " ",
    "repo:",
    "acme/web",
    "Acme@4711/web@90210",
    ":ref:refs/heads/",
    ":ref:refs/tags/",
    "main",
    ":environment:",
    ":pull_request",
    "system:serviceaccount:",
    "project_path:",
    "organization:",
    "org/",
    "/project/",
    "arn:aws:iam::",
    "111122223333",
    ":role/",
    ":oidc-provider/",
    "token.actions.githubusercontent.com",
    "sts.amazonaws.com",
    "https://",
];

/// Strings mixing hostile pieces, arbitrary characters and control characters.
fn hostile_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => prop::collection::vec(select(PIECES), 0..12).prop_map(|p| p.concat()),
        2 => any::<String>(),
        1 => "[\\x00-\\x1f\\x7f-\\u{9f}a-z:/@%*?]{0,40}",
        1 => Just(String::new()),
    ]
    .boxed()
}

/// A hostile string, or (rarely) a very long one.
fn hostile_or_long() -> BoxedStrategy<String> {
    prop_oneof![
        20 => hostile_string(),
        1 => (select(PIECES), 2_000..20_000usize).prop_map(|(piece, n)| piece.repeat(n / piece.len().max(1) + 1)),
    ]
    .boxed()
}

/// A 100 KB string built from one hostile piece and a realistic prefix.
fn huge_string() -> BoxedStrategy<String> {
    (
        select(
            &[
                "",
                "repo:",
                "repo:acme/web:ref:refs/heads/",
                "arn:aws:iam::111122223333:role/",
            ][..],
        ),
        select(PIECES),
    )
        .prop_map(|(prefix, piece)| format!("{prefix}{}", piece.repeat(100_000 / piece.len().max(1))))
        .boxed()
}

/// Pieces of JSON text, for inputs that are nearly JSON.
const JSON_PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\n",
    " ",
    "\\",
    "null",
    "1e999",
    "\"Records\"",
    "\"detail\"",
    "\"detail-type\"",
    "\"eventName\"",
    "\"AssumeRoleWithWebIdentity\"",
    "\u{feff}",
];

/// Object keys: mostly names the parsers look for, so random values land in real fields.
const KEYS: &[&str] = &[
    "eventVersion",
    "eventName",
    "eventTime",
    "eventSource",
    "awsRegion",
    "userIdentity",
    "type",
    "principalId",
    "userName",
    "identityProvider",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "roleArn",
    "roleSessionName",
    "durationSeconds",
    "principalTags",
    "sourceIdentity",
    "responseElements",
    "subjectFromWebIdentityToken",
    "provider",
    "audience",
    "additionalEventData",
    "RequestDetails",
    "endpointType",
    "RoleAuthorizedByIdp",
    "recipientAccountId",
    "resources",
    "ARN",
    "accountId",
    "readOnly",
    "tlsDetails",
    "clientProvidedHostHeader",
    "detail",
    "detail-type",
    "id",
    "account",
    "region",
    "Records",
    "Version",
    "Statement",
    "Effect",
    "Principal",
    "Federated",
    "Action",
    "NotAction",
    "Condition",
    "StringLike",
    "StringEquals",
    "ForAnyValue:StringNotEquals",
    "Null",
    "token.actions.githubusercontent.com:sub",
];

const STRING_VALUES: &[&str] = &[
    "AssumeRoleWithWebIdentity",
    "WebIdentityUser",
    "AccessDenied",
    "InvalidIdentityToken",
    "An unknown error occurred",
    "No OpenIDConnect provider found in your account for https://token.actions.githubusercontent.com",
    "Incorrect token audience",
    "AWS API Call via CloudTrail",
    GITHUB_ARN,
    "arn:aws:iam::111122223333:role/gha-deploy-web-app",
    "repo:acme/web-app:ref:refs/heads/main",
    "sts.amazonaws.com",
    "111122223333",
    "Allow",
    "Deny",
    "2012-10-17",
    "sts:AssumeRoleWithWebIdentity",
    "*",
];

fn json_leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        3 => select(STRING_VALUES).prop_map(Value::from),
        4 => hostile_string().prop_map(Value::String),
    ]
    .boxed()
}

fn json_key() -> BoxedStrategy<String> {
    prop_oneof![4 => select(KEYS).prop_map(String::from), 1 => hostile_string()].boxed()
}

/// Any JSON value, nested at most 4 deep.
fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(4, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(json_key(), inner, 0..8)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A JSON value; objects sometimes claim to be an `AssumeRoleWithWebIdentity` record so
/// the record parser and the diagnosis get past the first check.
fn event_like_value() -> BoxedStrategy<Value> {
    (json_value(), any::<bool>())
        .prop_map(|(mut value, claim)| {
            if let (Value::Object(object), true) = (&mut value, claim) {
                object.insert("eventName".into(), json!("AssumeRoleWithWebIdentity"));
            }
            value
        })
        .boxed()
}

/// The string fields of a structurally valid record.
#[derive(Clone)]
struct Fields {
    user_name: Option<String>,
    principal_id: Option<String>,
    identity_provider: Option<String>,
    role_arn: Option<String>,
    user_agent: Option<String>,
    error_code: Option<String>,
    error_message: Option<String>,
    audience: Option<String>,
    recipient_account_id: Option<String>,
    duration_seconds: Option<u64>,
    principal_tags: Option<BTreeMap<String, String>>,
}

/// Shrunk failures print every field, so 100 KB values are cut to their first characters.
impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |s: &Option<String>| {
            s.as_ref().map(|s| match s.chars().count() {
                n if n > 120 => format!("{}… ({n} chars)", s.chars().take(120).collect::<String>()),
                _ => s.clone(),
            })
        };
        f.debug_struct("Fields")
            .field("user_name", &short(&self.user_name))
            .field("principal_id", &short(&self.principal_id))
            .field("identity_provider", &short(&self.identity_provider))
            .field("role_arn", &short(&self.role_arn))
            .field("user_agent", &short(&self.user_agent))
            .field("error_code", &short(&self.error_code))
            .field("error_message", &short(&self.error_message))
            .field("audience", &short(&self.audience))
            .field("recipient_account_id", &short(&self.recipient_account_id))
            .field("duration_seconds", &self.duration_seconds)
            .field("principal_tags", &self.principal_tags)
            .finish()
    }
}

/// Which fields of a generated record carry hostile text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    /// Every string field.
    Everywhere,
    /// Only the token's subject (`userName` and the end of `principalId`), `userAgent` and
    /// `errorMessage`; the other fields take realistic values.
    SubjectSide,
}

fn maybe(strategy: BoxedStrategy<String>) -> BoxedStrategy<Option<String>> {
    prop_oneof![1 => Just(None), 4 => strategy.prop_map(Some)].boxed()
}

fn fields(text: fn() -> BoxedStrategy<String>, reach: Reach) -> impl Strategy<Value = Fields> {
    // Fields whose text the diagnosis is not yet trusted to quote (see the `bug:` tests).
    let other: fn() -> BoxedStrategy<String> = match reach {
        Reach::Everywhere => text,
        Reach::SubjectSide => || select(STRING_VALUES).prop_map(String::from).boxed(),
    };
    let role_names = sample_snapshot()
        .roles
        .iter()
        .map(|r| r.name.clone())
        .collect::<Vec<_>>();
    let user_name = prop_oneof![
        2 => text(),
        1 => text().prop_map(|t| format!("repo:{t}")),
        1 => text().prop_map(|t| format!("repo:acme/web-app:{t}")),
        1 => text().prop_map(|t| format!("system:serviceaccount:{t}")),
        1 => select(&["repo:acme/web-app:ref:refs/heads/main", "repo:acme/web-app:pull_request", "repo:acme@4711/web-app@90210:environment:prod"][..]).prop_map(String::from),
    ];
    let identity_provider = prop_oneof![
        2 => other(),
        2 => Just(GITHUB_ARN.to_owned()),
        1 => other().prop_map(|t| format!("arn:aws:iam::111122223333:oidc-provider/{t}")),
        1 => other().prop_map(|t| format!("arn:aws:iam::{t}:oidc-provider/{GH}")),
        1 => other().prop_map(|t| format!("{GITHUB_ARN}/{t}")),
    ];
    let principal_id = prop_oneof![
        2 => other(),
        2 => (other(), text()).prop_map(|(aud, sub)| format!("{GITHUB_ARN}:{aud}:{sub}")),
        1 => text().prop_map(|sub| format!("{GITHUB_ARN}:sts.amazonaws.com:{sub}")),
    ];
    let role_arn = prop_oneof![
        2 => other(),
        3 => select(role_names).prop_map(|name| format!("arn:aws:iam::{ACCOUNT}:role/{name}")),
        1 => text().prop_map(|t| format!("arn:aws:iam::{ACCOUNT}:role/{t}")),
        1 => other().prop_map(|t| format!("arn:aws:iam::{t}:role/gha-deploy-prod")),
    ];
    let error_code = prop_oneof![
        3 => Just("AccessDenied".to_owned()),
        1 => select(&["InvalidIdentityToken", "ExpiredTokenException", "IDPCommunicationError", "ValidationError", "IDPRejectedClaim", ""][..]).prop_map(String::from),
        2 => other(),
    ];
    let error_message = prop_oneof![
        2 => Just("An unknown error occurred".to_owned()),
        1 => text().prop_map(|t| format!("No OpenIDConnect provider found in your account for https://{t}")),
        1 => text().prop_map(|t| format!("Incorrect token audience {t}")),
        1 => text().prop_map(|t| format!("OpenIDConnect provider's HTTPS certificate doesn't match configured thumbprint {t}")),
        1 => text().prop_map(|t| format!("Couldn't retrieve verification key from your identity provider {t}")),
        1 => text().prop_map(|t| format!("Token expired: current date/time {t} must be before the expiration date/time1700000000")),
        1 => text().prop_map(|t| format!("The requested DurationSeconds exceeds the MaxSessionDuration {t}")),
        1 => text().prop_map(|t| format!("roles claim {t}")),
        2 => text(),
    ];
    let tags = prop::collection::btree_map(other(), other(), 0..4);
    (
        (maybe(user_name.boxed()), maybe(principal_id.boxed()), maybe(identity_provider.boxed()), maybe(role_arn.boxed())),
        (maybe(text()), maybe(error_code.boxed()), maybe(error_message.boxed()), maybe(other())),
        (
            prop_oneof![4 => Just(Some(ACCOUNT.to_owned())), 1 => Just(None), 1 => other().prop_map(Some)],
            prop_oneof![2 => Just(None), 1 => any::<u64>().prop_map(Some), 1 => (0u64..50_000).prop_map(Some)],
            prop_oneof![3 => Just(None), 1 => tags.prop_map(Some)],
        ),
    )
        .prop_map(
            |(
                (user_name, principal_id, identity_provider, role_arn),
                (user_agent, error_code, error_message, audience),
                (recipient_account_id, duration_seconds, principal_tags),
            )| Fields {
                user_name,
                principal_id,
                identity_provider,
                role_arn,
                user_agent,
                error_code,
                error_message,
                audience,
                recipient_account_id,
                duration_seconds,
                principal_tags,
            },
        )
}

/// A complete `AssumeRoleWithWebIdentity` record carrying `fields`.
fn record(fields: &Fields) -> Value {
    let mut record = json!({
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "WebIdentityUser",
            "principalId": fields.principal_id,
            "userName": fields.user_name,
            "identityProvider": fields.identity_provider,
        },
        "eventTime": "2026-05-04T10:11:12Z",
        "eventSource": "sts.amazonaws.com",
        "eventName": "AssumeRoleWithWebIdentity",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "192.0.2.10",
        "userAgent": fields.user_agent,
        "requestParameters": {
            "roleArn": fields.role_arn,
            "roleSessionName": "GitHubActions",
            "durationSeconds": fields.duration_seconds,
            "principalTags": fields.principal_tags,
        },
        "responseElements": if fields.error_code.is_some() { Value::Null } else { json!({"audience": fields.audience}) },
        "readOnly": true,
        "eventType": "AwsApiCall",
        "recipientAccountId": fields.recipient_account_id,
    });
    let object = record.as_object_mut().unwrap();
    if let Some(code) = &fields.error_code {
        object.insert("errorCode".into(), json!(code));
        object.insert("errorMessage".into(), json!(fields.error_message));
    }
    record
}

// ---------------------------------------------------------------------------------------
// Properties of a diagnosis.

/// How much of the module's properties a test asserts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// No panic, a non-empty explanation, `cause == None` iff no `errorCode`, serialisable.
    Sound,
    /// `Sound`, and explanation and fix hold no raw control character and stay bounded.
    Strict,
}

/// Fails with a description when a diagnosis breaks one of the module's properties.
fn check_diagnosis(diagnosis: &Diagnosis, has_error_code: bool, check: Check) -> Result<(), TestCaseError> {
    prop_assert!(
        !diagnosis.explanation.trim().is_empty(),
        "empty explanation: {diagnosis:?}"
    );
    prop_assert_eq!(
        diagnosis.cause == Cause::None,
        !has_error_code,
        "cause {:?} with errorCode {:?}",
        diagnosis.cause,
        diagnosis.error_code
    );
    serde_json::to_string(diagnosis)
        .map_err(|e| TestCaseError::fail(format!("diagnosis does not serialise: {e}")))?;
    if check == Check::Sound {
        return Ok(());
    }
    let messages = [
        ("explanation", Some(&diagnosis.explanation)),
        ("fix", diagnosis.fix.as_ref()),
    ];
    for (what, text) in messages {
        let Some(text) = text else { continue };
        prop_assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "raw control character in the {} of a {:?} diagnosis: {:?}",
            what,
            diagnosis.cause,
            text.chars().take(600).collect::<String>()
        );
        prop_assert!(
            text.len() < MAX_MESSAGE_BYTES,
            "{} of a {:?} diagnosis is {} bytes: {:?}…",
            what,
            diagnosis.cause,
            text.len(),
            text.chars().take(300).collect::<String>()
        );
    }
    Ok(())
}

/// Reads `bytes`, diagnoses every event with and without the snapshot, checks each.
fn read_and_diagnose(bytes: &[u8], snapshot: &AccountSnapshot, check: Check) -> Result<usize, TestCaseError> {
    let mut events = 0;
    for item in read_input(bytes) {
        let Ok(InputItem::Event(event)) = item else {
            continue;
        };
        let has_error_code = event.record.error_code.is_some();
        for account in [None, Some(snapshot)] {
            check_diagnosis(&diagnose(&event, account), has_error_code, check)?;
        }
        events += 1;
    }
    Ok(events)
}

/// Diagnoses the one record that `fields` make, with and without `snapshot`.
fn diagnose_fields(fields: &Fields, snapshot: &AccountSnapshot, check: Check) -> Result<(), TestCaseError> {
    let bytes = serde_json::to_vec(&record(fields)).unwrap();
    let items = read_input(&bytes);
    prop_assert_eq!(items.len(), 1);
    prop_assert!(matches!(items[0], Ok(InputItem::Event(_))), "{:?}", items[0]);
    prop_assert_eq!(read_and_diagnose(&bytes, snapshot, check)?, 1);
    Ok(())
}

/// A snapshot of account 111122223333 whose only role, `fuzz`, trusts `policy`.
fn snapshot_trusting(policy: &Value) -> AccountSnapshot {
    let snapshot = json!({
        "AccountId": ACCOUNT,
        "Roles": [{"RoleName": "fuzz", "Arn": "arn:aws:iam::111122223333:role/fuzz",
                   "MaxSessionDuration": 3600, "AssumeRolePolicyDocument": policy}],
        "OpenIDConnectProviders": [{"Arn": GITHUB_ARN, "Url": GH, "ClientIDList": ["sts.amazonaws.com"]}],
    });
    AccountSnapshot::from_json(&snapshot.to_string()).unwrap()
}

/// The record, calling the role of [`snapshot_trusting`].
fn of_fuzz_role(fields: Fields) -> Fields {
    Fields {
        role_arn: Some("arn:aws:iam::111122223333:role/fuzz".into()),
        ..fields
    }
}

/// The decision agrees with the statement traces (an explicit Deny beats any Allow;
/// docs/design.md, "Evaluating the trust policy").
fn check_decision(evaluation: &Evaluation) -> Result<(), TestCaseError> {
    let matched = |effect: &str| {
        evaluation
            .statements
            .iter()
            .any(|s| s.effect == effect && s.matched == Tri::True)
    };
    let expected = if matched("Deny") {
        Decision::ExplicitDeny
    } else if matched("Allow") {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    };
    prop_assert_eq!(evaluation.decision, expected);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// A small grammar of trust policies and requests.

const CONDITION_KEYS: &[&str] = &[
    "token.actions.githubusercontent.com:sub",
    "token.actions.githubusercontent.com:aud",
    "TOKEN.ACTIONS.GITHUBUSERCONTENT.COM:SUB",
    "token.actions.githubusercontent.com:repository",
    "token.actions.githubusercontent.com:actor",
    "aws:SourceIp",
    "aws:CurrentTime",
    "aws:TagKeys",
    "sts:DurationSeconds",
    "sts:RoleSessionName",
    "gitlab.com:sub",
];

/// Besides [`STRING_OPERATORS`].
const OTHER_OPERATORS: &[&str] = &[
    "StringLikeIfExists",
    "StringNotEqualsIfExists",
    "ForAnyValue:StringLike",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringNotEquals",
    "ForAllValues:StringNotLikeIfExists",
    "Null",
    "NullIfExists",
    "NumericLessThan",
    "NumericNotEquals",
    "DateGreaterThan",
    "DateNotEquals",
    "Bool",
    "BinaryEquals",
    "IpAddress",
    "NotIpAddress",
    "ArnLike",
    "ArnNotEquals",
    "ForAnyValue:",
    "ForAllValues:IfExists",
    "IfExists",
    "stringequals",
    "",
];

const POLICY_TEXTS: &[&str] = &[
    "repo:acme/web-app:*",
    "repo:acme/*",
    "*",
    "?",
    "**?*",
    "",
    "sts.amazonaws.com",
    "repo:${token.actions.githubusercontent.com:repository}:*",
    "${aws:username",
    "${}",
    "${,}",
    "${ , '' }",
    "${*}${?}${$}",
    "${aws:PrincipalTag/x, 'd'}",
    "${token.actions.githubusercontent.com:sub}",
    "3600",
    "-1e309",
    "NaN",
    "2026-01-01T00:00:00Z",
    "2026-13-45",
    "192.0.2.0/24",
    "::/0",
    "10.0.0.0/99",
    "arn:aws:iam::*:role/*",
    "arn:*",
    "true",
    "false",
];

/// Policy values: patterns, variables, broken variables, numbers, dates, CIDRs, garbage.
fn policy_value() -> BoxedStrategy<Value> {
    let text = prop_oneof![3 => hostile_string(), 2 => select(POLICY_TEXTS).prop_map(String::from)];
    prop_oneof![
        3 => text.clone().prop_map(Value::String),
        2 => prop::collection::vec(text, 0..4).prop_map(|v| json!(v)),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::Bool),
    ]
    .boxed()
}

fn condition_block() -> BoxedStrategy<Value> {
    let operators: Vec<&str> = STRING_OPERATORS.iter().chain(OTHER_OPERATORS).copied().collect();
    let operator = prop_oneof![6 => select(operators).prop_map(String::from), 1 => hostile_string()];
    let keys = prop::collection::btree_map(
        select(CONDITION_KEYS).prop_map(String::from),
        policy_value(),
        1..3,
    );
    prop::collection::btree_map(operator, keys, 0..4)
        .prop_map(|blocks| {
            let blocks = blocks
                .into_iter()
                .map(|(op, keys)| (op, Value::Object(keys.into_iter().collect())));
            Value::Object(blocks.collect())
        })
        .boxed()
}

fn principal_value() -> BoxedStrategy<Value> {
    let federated = prop_oneof![
        3 => Just(GITHUB_ARN.to_owned()),
        1 => Just("*".to_owned()),
        1 => Just("accounts.google.com".to_owned()),
        1 => hostile_string(),
    ];
    prop_oneof![
        4 => federated.clone().prop_map(|f| json!({"Federated": f})),
        2 => prop::collection::vec(federated, 0..3).prop_map(|f| json!({"Federated": f})),
        1 => Just(json!("*")),
        1 => Just(json!({"AWS": "arn:aws:iam::111122223333:root"})),
        1 => json_leaf(),
    ]
    .boxed()
}

const ACTIONS: &[&str] = &[
    "sts:AssumeRoleWithWebIdentity",
    "sts:AssumeRole*",
    "STS:*",
    "*",
    "sts:AssumeRole",
    "sts:TagSession",
    "?*?*?",
    "",
];

fn action_value() -> BoxedStrategy<Value> {
    let action = prop_oneof![4 => select(ACTIONS).prop_map(String::from), 1 => hostile_string()];
    prop_oneof![
        2 => action.clone().prop_map(Value::String),
        1 => prop::collection::vec(action, 0..3).prop_map(|a| json!(a)),
    ]
    .boxed()
}

/// Policies of any shape the grammar allows: 0-3 statements, any version, elements
/// missing, hostile text everywhere.
fn grammar_policy() -> BoxedStrategy<Value> {
    let grammar = Grammar {
        effect: select(&["Allow", "Deny", "allow", ""][..]).boxed(),
        principal: prop::option::weighted(0.9, principal_value()).boxed(),
        action: (select(&["Action", "NotAction"][..]), action_value()).boxed(),
        condition: prop::option::weighted(0.8, condition_block()).boxed(),
        sid: prop::option::of(hostile_string()).boxed(),
        statements: (0..4).into(),
        version: select(&[Some("2012-10-17"), Some("2008-10-17"), None][..]).boxed(),
        lone_statement_as_object: Just(false).boxed(),
    };
    policy_gen::policy(&grammar)
}

fn request_value() -> BoxedStrategy<Value> {
    let context_value = prop_oneof![
        3 => hostile_or_long().prop_map(Value::String),
        1 => prop::collection::vec(hostile_string(), 0..4).prop_map(|v| json!(v)),
    ];
    let key = prop_oneof![4 => select(CONDITION_KEYS).prop_map(String::from), 1 => hostile_string()];
    (
        prop_oneof![3 => Just(GITHUB_ARN.to_owned()), 1 => hostile_string()],
        prop_oneof![3 => Just("sts:AssumeRoleWithWebIdentity".to_owned()), 1 => hostile_string()],
        prop::collection::btree_map(key, context_value, 0..6),
    )
        .prop_map(|(principal, action, context)| {
            json!({"principal": principal, "action": action, "context": context})
        })
        .boxed()
}

/// Whether `principal` is something `PolicyDocument` must accept: `"*"` or an object of
/// strings and lists of strings.
fn well_formed_principal(principal: &Value) -> bool {
    match principal {
        Value::String(s) => s == "*",
        Value::Object(kinds) => kinds.values().all(|v| match v {
            Value::Array(items) => items
                .iter()
                .all(|i| !i.is_array() && !i.is_object() && !i.is_null()),
            other => !other.is_array() && !other.is_object() && !other.is_null(),
        }),
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn read_input_survives_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let items = read_input(&bytes);
        let lines = 1 + bytes.iter().filter(|&&b| b == b'\n').count();
        let mut previous = 0;
        for error in items.iter().filter_map(|i| i.as_ref().err()) {
            prop_assert!(error.record > previous, "record numbers grow: {items:?}");
            prop_assert!((1..=lines).contains(&error.line), "line {} of {lines}", error.line);
            prop_assert!(error.message.len() < 1024);
            previous = error.record;
        }
    }

    #[test]
    fn read_input_survives_arbitrary_strings(text in prop_oneof![
        any::<String>(),
        prop::collection::vec(select(JSON_PIECES), 0..64).prop_map(|p| p.concat()),
    ]) {
        read_and_diagnose(text.as_bytes(), &sample_snapshot(), Check::Sound)?;
    }

    #[test]
    fn arbitrary_json_as_a_bare_record(value in event_like_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let items = read_input(&bytes);
        if value.is_object() && value.get("Records").is_none_or(|r| !r.is_array()) {
            prop_assert_eq!(items.len(), 1, "one object, one item: {:?}", items);
        }
        read_and_diagnose(&bytes, &sample_snapshot(), Check::Sound)?;
    }

    #[test]
    fn arbitrary_json_in_an_envelope(
        detail in event_like_value(),
        detail_type in prop_oneof![Just(json!("AWS API Call via CloudTrail")), json_leaf()],
        account in prop_oneof![Just(json!(ACCOUNT)), json_leaf()],
    ) {
        let envelope = json!({"version": "0", "id": "e", "detail-type": detail_type, "source": "aws.sts",
                              "account": account, "region": "us-east-1", "detail": detail});
        let bytes = serde_json::to_vec(&envelope).unwrap();
        prop_assert_eq!(read_input(&bytes).len(), 1, "one envelope, one item");
        read_and_diagnose(&bytes, &sample_snapshot(), Check::Sound)?;
    }

    #[test]
    fn arbitrary_json_as_a_policy(value in json_value(), request in request_value()) {
        if let Ok(policy) = PolicyDocument::from_value(&value) {
            let request: Request = serde_json::from_value(request).unwrap();
            let evaluation = evaluate(&policy, &request);
            prop_assert_eq!(evaluation.statements.len(), policy.statements.len());
            check_decision(&evaluation)?;
            let _ = audit(&policy);
        }
        // The same value as text, as the URL-encoded string GetRole returns, and as a snapshot.
        let text = serde_json::to_string(&value).unwrap();
        let encoded: String = text.bytes().map(|b| format!("%{b:02X}")).collect();
        prop_assert_eq!(PolicyDocument::parse_str(&encoded).is_ok(), PolicyDocument::parse_str(&text).is_ok());
        let _ = AccountSnapshot::from_json(&text);
    }

    #[test]
    fn grammar_policies_against_arbitrary_requests(policy in grammar_policy(), request in request_value()) {
        let document = PolicyDocument::from_value(&policy);
        let principals_ok = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("Principal").is_none_or(well_formed_principal));
        prop_assert_eq!(document.is_ok(), principals_ok, "{} -> {:?}", policy, document);
        let Ok(document) = document else { return Ok(()) };
        let request: Request = serde_json::from_value(request).unwrap();
        let evaluation = evaluate(&document, &request);
        prop_assert_eq!(evaluation.statements.len(), document.statements.len());
        check_decision(&evaluation)?;
        serde_json::to_string(&evaluation).unwrap();
        for finding in audit(&document) {
            prop_assert!(!finding.message.is_empty());
        }
    }

    #[test]
    fn subject_parse_survives_arbitrary_strings(sub in hostile_or_long()) {
        for kind in ALL_KINDS {
            let parsed = Subject::parse(kind, &sub);
            prop_assert!(!parsed.derived().format.is_empty());
            if let Some(github) = parsed.as_github() {
                let _ = (github.repository(), github.repository_in_subject());
            }
        }
    }

    #[test]
    fn records_with_hostile_fields_diagnose_soundly(fields in fields(hostile_or_long, Reach::Everywhere)) {
        diagnose_fields(&fields, &sample_snapshot(), Check::Sound)?;
    }

    /// The token's subject is the text an attacker controls most directly: it is quoted
    /// and bounded in every message.
    #[test]
    fn hostile_subjects_are_quoted_and_bounded(fields in fields(hostile_or_long, Reach::SubjectSide)) {
        diagnose_fields(&fields, &sample_snapshot(), Check::Strict)?;
    }

    /// The record's role trusts a generated policy, so every branch of the classification
    /// runs on policies and claims nobody wrote by hand.
    #[test]
    fn records_against_grammar_policies_diagnose_soundly(
        fields in fields(hostile_string, Reach::Everywhere),
        policy in grammar_policy(),
    ) {
        diagnose_fields(&of_fuzz_role(fields), &snapshot_trusting(&policy), Check::Sound)?;
    }

    #[test]
    fn hostile_subjects_against_grammar_policies_are_quoted(
        fields in fields(hostile_string, Reach::SubjectSide),
        policy in grammar_policy(),
    ) {
        diagnose_fields(&of_fuzz_role(fields), &snapshot_trusting(&policy), Check::Strict)?;
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn records_with_100_kb_fields_diagnose_soundly(fields in fields(huge_string, Reach::Everywhere)) {
        diagnose_fields(&fields, &sample_snapshot(), Check::Sound)?;
    }

    #[test]
    fn messages_stay_bounded_for_100_kb_subjects(fields in fields(huge_string, Reach::SubjectSide)) {
        diagnose_fields(&fields, &sample_snapshot(), Check::Strict)?;
    }

    #[test]
    fn subject_parse_of_100_kb(sub in huge_string()) {
        for kind in ALL_KINDS {
            let _ = Subject::parse(kind, &sub).derived();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Untrusted text outside the subject (errorCode, provider URL/ARN, account id, aud) must
// reach messages quoted and bounded too (docs/design.md, "Untrusted input").

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn hostile_fields_everywhere_are_quoted_and_bounded(fields in fields(hostile_or_long, Reach::Everywhere)) {
        diagnose_fields(&fields, &sample_snapshot(), Check::Strict)?;
    }

    #[test]
    fn hostile_fields_against_grammar_policies_are_quoted(
        fields in fields(hostile_string, Reach::Everywhere),
        policy in grammar_policy(),
    ) {
        diagnose_fields(&of_fuzz_role(fields), &snapshot_trusting(&policy), Check::Strict)?;
    }
}

proptest! {
    #![proptest_config(config(24))]

    #[test]
    fn messages_stay_bounded_for_100_kb_fields(fields in fields(huge_string, Reach::Everywhere)) {
        diagnose_fields(&fields, &sample_snapshot(), Check::Strict)?;
    }
}

const ESC: &str = "\u{1b}[2J";

/// One minimal reproduction per place that repeats untrusted text raw.
#[test]
fn every_message_quotes_untrusted_text() {
    let github = GITHUB_ARN;
    let hostile_provider = format!("arn:aws:iam::111122223333:oidc-provider/evil.example{ESC}");
    let cases: Vec<(&str, Value)> = vec![
        (
            "errorCode (Unknown)",
            json!({"errorCode": format!("Throttling{ESC}"), "errorMessage": "Rate exceeded"}),
        ),
        (
            "account id from recipientAccountId (event only)",
            json!({"errorCode": "AccessDenied", "recipientAccountId": format!("1{ESC}"),
                   "userIdentity": {"userName": "repo:a/b:pull_request"}}),
        ),
        (
            "account id from roleArn (event only)",
            json!({"errorCode": "AccessDenied", "requestParameters": {"roleArn": format!("arn:aws:iam::1{ESC}:role/x")},
                   "userIdentity": {"userName": "repo:a/b:pull_request"}}),
        ),
        (
            "provider URL in the event-only fix",
            json!({"errorCode": "AccessDenied",
                   "userIdentity": {"identityProvider": hostile_provider, "userName": "repo:a/b:pull_request"}}),
        ),
        (
            "provider URL (OidcProviderMissing)",
            json!({"errorCode": "InvalidIdentityToken", "recipientAccountId": ACCOUNT,
                   "errorMessage": "No OpenIDConnect provider found in your account for https://x",
                   "userIdentity": {"identityProvider": hostile_provider}}),
        ),
        (
            "provider URL (IdpUnreachable)",
            json!({"errorCode": "IDPCommunicationError", "userIdentity": {"identityProvider": hostile_provider}}),
        ),
        (
            "provider ARN (ThumbprintMismatch)",
            json!({"errorCode": "InvalidIdentityToken", "errorMessage": "thumbprint",
                   "userIdentity": {"identityProvider": hostile_provider}}),
        ),
        (
            "aud from principalId (AudienceNotInProvider)",
            json!({"errorCode": "InvalidIdentityToken", "errorMessage": "Incorrect token audience",
                   "userIdentity": {"principalId": format!("{github}:aud{ESC}:repo:a/b:pull_request"),
                                    "userName": "repo:a/b:pull_request", "identityProvider": github}}),
        ),
        (
            "provider of another account (PrincipalMismatch, with snapshot)",
            json!({"errorCode": "AccessDenied", "recipientAccountId": ACCOUNT,
                   "requestParameters": {"roleArn": "arn:aws:iam::111122223333:role/gha-deploy-web-app"},
                   "userIdentity": {"identityProvider": format!("arn:aws:iam::9{ESC}:oidc-provider/{GH}"),
                                    "userName": "repo:acme/web-app:ref:refs/heads/main"}}),
        ),
    ];
    let snapshot = sample_snapshot();
    let mut leaks = Vec::new();
    for (name, fields) in &cases {
        let mut record = json!({"eventName": "AssumeRoleWithWebIdentity"});
        record
            .as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let Ok(InputItem::Event(event)) = &read_input(record.to_string().as_bytes())[0] else {
            panic!("{name}: not an event")
        };
        for account in [None, Some(&snapshot)] {
            let diagnosis = diagnose(event, account);
            for text in std::iter::once(&diagnosis.explanation).chain(&diagnosis.fix) {
                if text.contains('\u{1b}') {
                    leaks.push(format!(
                        "  {name} ({:?}, snapshot: {}): {text:?}",
                        diagnosis.cause,
                        account.is_some()
                    ));
                }
            }
        }
    }
    assert!(
        leaks.is_empty(),
        "{} raw escapes:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// Pins the two invariants on the shipped sample: a success has cause `None`, and the
/// same record with an (even empty) `errorCode` does not.
#[test]
fn cause_none_follows_the_error_code() {
    let snapshot = sample_snapshot();
    let success = Fields {
        user_name: Some("repo:acme/web-app:ref:refs/heads/main".into()),
        principal_id: None,
        identity_provider: Some(GITHUB_ARN.into()),
        role_arn: Some("arn:aws:iam::111122223333:role/gha-deploy-web-app".into()),
        user_agent: None,
        error_code: None,
        error_message: None,
        audience: Some("sts.amazonaws.com".into()),
        recipient_account_id: Some(ACCOUNT.into()),
        duration_seconds: None,
        principal_tags: None,
    };
    let failure = Fields {
        error_code: Some(String::new()),
        ..success.clone()
    };
    for (fields, has_error_code) in [(success, false), (failure, true)] {
        let bytes = serde_json::to_vec(&record(&fields)).unwrap();
        let Ok(InputItem::Event(event)) = &read_input(&bytes)[0] else {
            panic!("one event")
        };
        for account in [None, Some(&snapshot)] {
            let diagnosis = diagnose(event, account);
            assert_eq!(diagnosis.cause == Cause::None, !has_error_code, "{diagnosis:?}");
        }
    }
}
