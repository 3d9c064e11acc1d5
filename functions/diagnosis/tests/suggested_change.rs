//! Every `suggested_change` is safe: over generated trust policies and subjects, the
//! policy it proposes admits the job, and refuses the same subject under another owner;
//! ownerless and foreign subjects never get one. The checks here rebuild the stranger and
//! the request themselves rather than trusting the engine's own verification.

use diagnosis::claims::Claims;
use diagnosis::evaluate::{evaluate, Decision, Request, Tri, ASSUME_ROLE_WITH_WEB_IDENTITY};
use diagnosis::keys::{request_context, KeyFilter};
use diagnosis::owner::{Owner, Owners, Trust};
use diagnosis::policy::PolicyDocument;
use diagnosis::subject::{ProviderKind, Subject};
use diagnosis::testing::sample_claims;
use diagnosis::{diagnose_with, AccountSnapshot, Cause, Ownership};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{json, Value};

const ACCOUNT: &str = "111122223333";
const ROLE: &str = "gha-deploy-main-only";
const ISSUER: &str = "token.actions.githubusercontent.com";

fn base_claims() -> Claims {
    sample_claims("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json")
}

fn with_subject(claims: &Claims, sub: &str) -> Claims {
    let mut claims = claims.clone();
    claims.subject = Some(sub.to_owned());
    claims.parsed_subject = Subject::parse(ProviderKind::GitHub, sub);
    claims.derived = claims.parsed_subject.derived();
    claims
}

fn snapshot(policy: &Value) -> AccountSnapshot {
    AccountSnapshot::from_json(
        &json!({
            "AccountId": ACCOUNT,
            "Roles": [{"RoleName": ROLE, "Arn": format!("arn:aws:iam::{ACCOUNT}:role/{ROLE}"),
                       "AssumeRolePolicyDocument": policy}],
            "OpenIDConnectProviders": [{"Arn": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"),
                                        "Url": format!("https://{ISSUER}"), "ClientIDList": ["sts.amazonaws.com"]}],
            "Complete": {"Roles": true, "OpenIDConnectProviders": true}
        })
        .to_string(),
    )
    .expect("snapshot")
}

/// A job: owner, repository, context; `None` owner makes a subject that names none.
#[derive(Debug, Clone)]
struct Job {
    owner: Option<&'static str>,
    owner_id: Option<&'static str>,
    repository: &'static str,
    context: String,
}

impl Job {
    fn subject(&self) -> String {
        match (self.owner, self.owner_id) {
            (Some(owner), Some(id)) => format!("repo:{owner}@{id}/{}@42:{}", self.repository, self.context),
            (Some(owner), None) => format!("repo:{owner}/{}:{}", self.repository, self.context),
            // A custom template without the repository: anyone can mint it.
            (None, _) => self.context.clone(),
        }
    }

    /// What a stranger who copied the workflow presents.
    fn stranger_subject(&self) -> Option<String> {
        match (self.owner, self.owner_id) {
            (Some(_), Some(_)) => Some(format!(
                "repo:mallory@31337/{}@42:{}",
                self.repository, self.context
            )),
            (Some(_), None) => Some(format!("repo:mallory/{}:{}", self.repository, self.context)),
            (None, _) => None,
        }
    }
}

fn job() -> impl Strategy<Value = Job> {
    (
        select(vec![Some("acme"), Some("Acme-Labs"), Some("stranger"), None]),
        select(vec![None, Some("1234")]),
        select(vec!["web-app", "api", "infra"]),
        select(vec![
            "ref:refs/heads/main",
            "ref:refs/heads/feature/x",
            "ref:refs/tags/v1.2.3",
            "environment:prod",
            "environment:Prod",
            "pull_request",
        ]),
    )
        .prop_map(|(owner, owner_id, repository, context)| Job {
            owner,
            owner_id: owner.and(owner_id),
            repository,
            context: context.to_owned(),
        })
}

/// `sub` values a policy author writes, some of them wrong in the usual ways.
fn sub_value() -> impl Strategy<Value = String> {
    (
        select(vec!["acme", "acme-labs", "Acme-Labs", "acme@1234", "*", "other"]),
        select(vec!["web-app", "api", "*", "Web-App"]),
        select(vec![
            "ref:refs/heads/main",
            "ref:refs/heads/*",
            "*",
            "environment:prod",
            "ref:refs/tags/v*",
            "pull_request",
            "ref:refs/heads/main ",
        ]),
    )
        .prop_map(|(owner, repo, context)| format!("repo:{owner}/{repo}:{context}"))
}

fn statement() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(sub_value(), 0..3),
        select(vec!["StringEquals", "StringLike"]),
        select(vec![Some("sts.amazonaws.com"), Some("sts.amazonaws.co"), None]),
        select(vec![
            json!("sts:AssumeRoleWithWebIdentity"),
            json!("sts:AssumeRole"),
            json!(["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]),
        ]),
    )
        .prop_map(|(subs, operator, aud, action)| {
            let mut conditions = serde_json::Map::new();
            let mut block = serde_json::Map::new();
            if !subs.is_empty() {
                block.insert(format!("{ISSUER}:sub"), json!(subs));
            }
            conditions.insert(operator.to_owned(), Value::Object(block));
            if let Some(aud) = aud {
                conditions
                    .entry("StringEquals")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
                    .map(|b| b.insert(format!("{ISSUER}:aud"), json!(aud)));
            }
            json!({
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}")},
                "Action": action,
                "Condition": conditions
            })
        })
}

fn policy() -> impl Strategy<Value = Value> {
    prop::collection::vec(statement(), 1..3)
        .prop_map(|statements| json!({"Version": "2012-10-17", "Statement": statements}))
}

fn decision(policy: &PolicyDocument, claims: &Claims) -> (Decision, bool) {
    let provider = claims.provider.as_ref().expect("provider");
    let request = Request {
        principal: provider.principal().to_owned(),
        action: ASSUME_ROLE_WITH_WEB_IDENTITY.to_owned(),
        context: request_context(claims, &KeyFilter::of(policy)),
    };
    let evaluation = evaluate(policy, &request);
    let maybe = evaluation
        .statements
        .iter()
        .any(|s| s.is_allow() && s.matched != Tri::False);
    (evaluation.decision, maybe)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn suggested_changes_admit_the_job_and_no_stranger(job in job(), policy in policy(), allow_list in any::<bool>()) {
        let claims = with_subject(&base_claims(), &job.subject());
        let account = snapshot(&policy);
        let owners = if allow_list {
            Owners::Allowed(vec![Owner::parse("acme").unwrap(), Owner::parse("Acme-Labs").unwrap()])
        } else {
            Owners::FromTrustPolicies
        };
        let d = diagnose_with(claims.clone(), Some(&account), Ownership { owners: &owners, trusted: None });
        if job.owner.is_none() {
            prop_assert!(d.suggested_change.is_none(), "ownerless subject {} got {:?}", job.subject(), d.suggested_change);
            prop_assert_ne!(d.trust, Trust::Ours);
        }
        if d.trust != Trust::Ours {
            prop_assert!(d.suggested_change.is_none(), "foreign job {} got a change", job.subject());
        }
        if job.owner == Some("stranger") && allow_list {
            prop_assert_eq!(d.trust, Trust::Foreign);
        }
        let Some(change) = &d.suggested_change else { return Ok(()) };
        prop_assert!(d.cause != Cause::None);
        let edited = PolicyDocument::from_value(&change.policy).expect("the proposed policy parses");
        prop_assert_eq!(decision(&edited, &claims).0, Decision::Allow, "the change must admit the job: {}", change.policy);
        let stranger = with_subject(&claims, &job.stranger_subject().expect("owned subject"));
        let (stranger_decision, stranger_maybe) = decision(&edited, &stranger);
        prop_assert!(stranger_decision != Decision::Allow && !stranger_maybe,
            "the change admits a stranger {:?}: {}", stranger.subject, change.policy);
        for value in &change.add {
            prop_assert!(!value.starts_with("repo:*") && !value.starts_with("environment:"), "mintable value {value}");
            prop_assert!(!value.ends_with(":pull_request"), "pull_request subjects are anyone's: {value}");
        }
    }
}

#[test]
fn a_mistyped_audience_is_fixed_in_the_statement_written_for_the_job() {
    // Statement 0 is for main with a mistyped aud; statement 1 for tags. The fix edits
    // statement 0's aud, not statement 1's sub.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}")},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {format!("{ISSUER}:sub"): "repo:acme/web-app:ref:refs/heads/main",
                                         format!("{ISSUER}:aud"): "sts.amazonaws.co"}}},
        {"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}")},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {format!("{ISSUER}:aud"): "sts.amazonaws.com"},
                       "StringLike": {format!("{ISSUER}:sub"): "repo:acme/web-app:ref:refs/tags/*"}}}
    ]});
    let claims = with_subject(&base_claims(), "repo:acme/web-app:ref:refs/heads/main");
    let d = diagnose_with(claims, Some(&snapshot(&policy)), Ownership::default());
    assert_eq!(d.cause, Cause::AudienceMismatch);
    let change = d.suggested_change.expect("a verified change");
    assert_eq!(change.statement, 0);
    assert_eq!(change.key, format!("{ISSUER}:aud"));
    assert_eq!(change.add, ["sts.amazonaws.com"]);
}

#[test]
fn an_ownerless_environment_subject_gets_no_change_and_a_reason() {
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}")},
         "Action": "sts:AssumeRoleWithWebIdentity",
         "Condition": {"StringEquals": {format!("{ISSUER}:sub"): "repo:acme/web-app:environment:prod"}}}
    ]});
    let claims = with_subject(&base_claims(), "environment:prod");
    let owners = Owners::Allowed(vec![Owner::parse("acme").unwrap()]);
    let d = diagnose_with(
        claims,
        Some(&snapshot(&policy)),
        Ownership {
            owners: &owners,
            trusted: None,
        },
    );
    assert_eq!(d.trust, Trust::Foreign);
    assert!(d.suggested_change.is_none());
    let fix = d.fix.unwrap_or_default();
    assert!(!fix.contains("add \"environment:prod\""), "{fix}");
}
