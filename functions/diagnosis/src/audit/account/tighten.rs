//! Verified tightenings of a trust policy: an edit is suggested only when the edited policy
//! still admits every recorded success of an owner we know, admits no request the old one
//! denied, adds only values whose owner is fixed and ours, and makes no finding that lets
//! strangers in.

use std::collections::BTreeSet;

use crate::audit::{audit, FindingCode, Severity};
use crate::claims::{Claims, Provider};
use crate::evaluate::{evaluate, Decision, Request, Tri, ASSUME_ROLE_WITH_WEB_IDENTITY};
use crate::keys::{request_context, KeyFilter};
use crate::policy::PolicyDocument;
use crate::record::{CloudTrailRecord, ResponseElements, UserIdentity, EVENT_NAME};
use crate::suggest::{apply, Edit, SuggestedChange, Target};
use crate::WebIdentityEvent;

use super::github::GithubValue;

/// IAM's largest trust policy (characters, whitespace excluded) with a raised quota.
const MAX_TRUST_POLICY_CHARS: usize = 4096;
/// An owner login nobody here controls, for the stranger's variant of a value.
const STRANGER: &str = "oidc-watch-stranger";

/// What an edit of one role's trust policy is judged against.
pub(super) struct Judge<'a> {
    pub policy: &'a PolicyDocument,
    pub provider: &'a Provider,
    /// The role's recorded successes, as claims.
    pub successes: &'a [Claims],
    /// GitHub owner logins that are ours, lower case.
    pub known_owners: &'a BTreeSet<String>,
    /// The audience a stranger's token would carry.
    pub audience: String,
}

impl Judge<'_> {
    /// The change, if the edited policy passes every check.
    pub fn verify(&self, edit: &Edit) -> Option<SuggestedChange> {
        if edit.add.is_empty() && edit.remove.is_empty() {
            return None;
        }
        for value in &edit.add {
            let owner = GithubValue::parse(value)?.owner_name();
            if crate::pattern::has_wildcard(owner) || !self.known_owners.contains(&owner.to_ascii_lowercase())
            {
                return None;
            }
        }
        let edited = apply(&self.policy.source, edit)?;
        let size = serde_json::to_string(&edited).map_or(usize::MAX, |text| {
            text.chars().filter(|c| !c.is_whitespace()).count()
        });
        if size > MAX_TRUST_POLICY_CHARS {
            return None;
        }
        let document = PolicyDocument::from_value(&edited).ok()?;
        if !no_new_opening(self.policy, &document) {
            return None;
        }
        for claims in self.successes {
            let ours = claims
                .derived
                .owner
                .as_deref()
                .is_some_and(|o| self.known_owners.contains(&o.to_ascii_lowercase()));
            if ours && allows(self.policy, claims) && !allows(&document, claims) {
                return None;
            }
        }
        for value in &edit.add {
            let stranger = self.claims(&stranger_of(value)?);
            if allows(&document, &stranger) && !allows(self.policy, &stranger) {
                return None;
            }
        }
        let (operator, key) = match &edit.target {
            Target::Condition { operator, key } => (Some(operator.clone()), key.clone()),
            Target::Action => (None, "Action".to_owned()),
            Target::FederatedPrincipal => (None, "Principal.Federated".to_owned()),
        };
        Some(SuggestedChange {
            statement: edit.statement,
            operator,
            key,
            add: edit.add.clone(),
            remove: edit.remove.clone(),
            policy: edited,
        })
    }

    fn claims(&self, subject: &str) -> Claims {
        claims_for(self.provider.principal(), subject, Some(&self.audience))
    }
}

/// Claims as a CloudTrail record of a call with this subject would give them.
pub(super) fn claims_for(provider: &str, subject: &str, audience: Option<&str>) -> Claims {
    let event = WebIdentityEvent {
        record: CloudTrailRecord {
            event_name: Some(EVENT_NAME.to_owned()),
            user_identity: Some(UserIdentity {
                identity_type: Some("WebIdentityUser".to_owned()),
                user_name: Some(subject.to_owned()),
                identity_provider: Some(provider.to_owned()),
                ..UserIdentity::default()
            }),
            response_elements: Some(ResponseElements {
                subject_from_web_identity_token: Some(subject.to_owned()),
                provider: Some(provider.to_owned()),
                audience: audience.map(str::to_owned),
                ..ResponseElements::default()
            }),
            ..CloudTrailRecord::default()
        },
        ..WebIdentityEvent::default()
    };
    Claims::from_event(&event)
}

/// The policy allows the call, every condition known to hold.
pub(super) fn allows(policy: &PolicyDocument, claims: &Claims) -> bool {
    matching_statements(policy, claims).is_some()
}

/// The Allow statements that match the call for certain, if the policy allows it.
pub(super) fn matching_statements(policy: &PolicyDocument, claims: &Claims) -> Option<Vec<usize>> {
    let provider = claims.provider.as_ref()?;
    let request = Request {
        principal: provider.principal().to_owned(),
        action: ASSUME_ROLE_WITH_WEB_IDENTITY.to_owned(),
        context: request_context(claims, &KeyFilter::of(policy)),
    };
    let evaluation = evaluate(policy, &request);
    (evaluation.decision == Decision::Allow).then(|| {
        evaluation
            .statements
            .iter()
            .filter(|s| s.is_allow() && s.matched == Tri::True)
            .map(|s| s.index)
            .collect()
    })
}

/// The edited policy has no finding that lets strangers in which the old one lacked.
fn no_new_opening(old: &PolicyDocument, new: &PolicyDocument) -> bool {
    let opening = |policy: &PolicyDocument| -> BTreeSet<(&'static str, usize)> {
        audit(policy)
            .into_iter()
            .filter(|f| f.severity == Severity::High || f.code == FindingCode::NoSubjectCondition)
            .map(|f| (f.code.as_str(), f.statement))
            .collect()
    };
    opening(new).is_subset(&opening(old))
}

/// One exact subject `value` admits, under an owner nobody here controls.
fn stranger_of(value: &str) -> Option<String> {
    let parsed = GithubValue::parse(value)?;
    let repository = match parsed.repository {
        Some(repository) => format!("{STRANGER}/{repository}"),
        None => format!("{STRANGER}/repo"),
    };
    let exact = format!("repo:{repository}{}", parsed.tail);
    Some(exact.replace(['*', '?'], "x"))
}
