//! IAM's own changes to roles and OIDC providers (CloudTrail `CreateRole`,
//! `UpdateAssumeRolePolicy`, `CreateOpenIDConnectProvider`, ...): the typed change read
//! from the record, the trust diff, whether it widens trust, and the sentences an alert
//! says about it.
//!
//! Widening, judged on the trust policy before and after (the audit's findings and
//! [`owners_named_by`]): a widening finding that was not there before (no `sub` or `aud`
//! condition, an owner wildcard, `ForAllValues:` or `…IfExists` on a claim), an owner the
//! policy did not name before (and `ALLOWED_OWNERS` does not list), or a new
//! `Principal.Federated` provider in an Allow statement. With the policy before unknown (a
//! new role, or no record of it), only the findings and owners outside `ALLOWED_OWNERS`
//! count. Provider changes (client IDs, thumbprints) never widen by themselves: the
//! `aud` conditions of the trust policies decide which client IDs a role accepts, and the
//! audit flags a policy without one.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::{audit, FindingCode};
use crate::owner::{owners_named_by, Owner, Owners};
use crate::policy::PolicyDocument;
use crate::text::{bound, quote};

/// The CloudTrail `eventSource` of IAM's own calls.
pub const IAM_EVENT_SOURCE: &str = "iam.amazonaws.com";
/// The longest policy text a change record keeps (IAM's own limit is 4096 characters).
pub const MAX_POLICY_TEXT: usize = 8192;
/// Value changes a diff keeps, and values per list.
pub const MAX_DIFF_ITEMS: usize = 20;
pub const MAX_DIFF_VALUES: usize = 20;
/// Value changes a sentence names before "and N more".
const SENTENCE_ITEMS: usize = 3;
/// Client IDs and thumbprints a change keeps.
const MAX_LIST: usize = 100;

crate::names::named_enum! {
    /// The IAM calls the monitor follows; their CloudTrail `eventName`s.
    #[derive(PartialOrd, Ord)]
    pub enum ChangeAction {
        CreateRole,
        DeleteRole,
        UpdateAssumeRolePolicy,
        CreateOpenIDConnectProvider,
        DeleteOpenIDConnectProvider,
        AddClientIDToOpenIDConnectProvider,
        RemoveClientIDFromOpenIDConnectProvider,
        UpdateOpenIDConnectProviderThumbprint,
    }
}

impl ChangeAction {
    /// Whether it changes a role (else an OIDC provider).
    pub fn on_role(self) -> bool {
        matches!(
            self,
            ChangeAction::CreateRole | ChangeAction::DeleteRole | ChangeAction::UpdateAssumeRolePolicy
        )
    }
}

/// One successful IAM change, as its CloudTrail record says it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustChange {
    pub event_id: String,
    pub account: String,
    pub action: ChangeAction,
    /// `eventTime`, epoch seconds.
    pub at: i64,
    /// `userIdentity.arn`: who made it.
    pub actor: Option<String>,
    /// The role's name, for role changes.
    pub role: Option<String>,
    /// The provider's URL without `https://`, for provider changes.
    pub provider: Option<String>,
    /// The trust policy after the change (`CreateRole`, `UpdateAssumeRolePolicy`), as
    /// the request gave it (JSON or URL-encoded JSON).
    pub policy_after: Option<String>,
    /// `AddClientIDTo…` / `RemoveClientIDFrom…`.
    pub client_id: Option<String>,
    /// `CreateOpenIDConnectProvider`'s client IDs.
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// `CreateOpenIDConnectProvider` / `UpdateOpenIDConnectProviderThumbprint`.
    #[serde(default)]
    pub thumbprints: Vec<String>,
}

/// Why a record of an IAM change could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IAM change record: {0}")]
pub struct ChangeError(pub String);

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .take(MAX_LIST)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// The provider URL an `oidc-provider` ARN names.
pub fn provider_of_arn(arn: &str) -> Option<String> {
    arn.split_once(":oidc-provider/")
        .map(|(_, url)| url.to_owned())
        .filter(|url| !url.is_empty())
}

fn policy_text(value: Option<&Value>) -> Option<String> {
    let text = match value? {
        Value::String(text) => text.clone(),
        object @ Value::Object(_) => object.to_string(),
        _ => return None,
    };
    (text.len() <= MAX_POLICY_TEXT).then_some(text)
}

impl TrustChange {
    /// The change `record` (a CloudTrail record as JSON) describes: `Ok(None)` when it is
    /// not one of IAM's [`ChangeAction`]s, or a call that failed (nothing changed).
    /// `envelope_account` stands in for a record without `recipientAccountId`.
    pub fn from_record(record: &Value, envelope_account: Option<&str>) -> Result<Option<Self>, ChangeError> {
        if text(record, "eventSource").as_deref() != Some(IAM_EVENT_SOURCE) {
            return Ok(None);
        }
        let Some(action) = text(record, "eventName").and_then(|n| ChangeAction::from_name(&n)) else {
            return Ok(None);
        };
        if record.get("errorCode").is_some_and(|c| !c.is_null()) {
            return Ok(None);
        }
        let missing = |what: &str| ChangeError(format!("{action} without {what}"));
        let event_id = text(record, "eventID").ok_or_else(|| missing("eventID"))?;
        let at = text(record, "eventTime")
            .as_deref()
            .and_then(crate::evaluate::epoch_seconds)
            .ok_or_else(|| missing("a readable eventTime"))?;
        let identity = record.get("userIdentity").unwrap_or(&Value::Null);
        let account = text(record, "recipientAccountId")
            .or_else(|| envelope_account.map(str::to_owned))
            .or_else(|| text(identity, "accountId"))
            .ok_or_else(|| missing("an account"))?;
        let request = record.get("requestParameters").unwrap_or(&Value::Null);
        let response = record.get("responseElements").unwrap_or(&Value::Null);
        let mut change = TrustChange {
            event_id,
            account,
            action,
            at,
            actor: text(identity, "arn"),
            role: None,
            provider: None,
            policy_after: None,
            client_id: None,
            client_ids: Vec::new(),
            thumbprints: Vec::new(),
        };
        if action.on_role() {
            change.role = Some(text(request, "roleName").ok_or_else(|| missing("roleName"))?);
            change.policy_after = match action {
                ChangeAction::CreateRole => policy_text(request.get("assumeRolePolicyDocument")),
                ChangeAction::UpdateAssumeRolePolicy => policy_text(request.get("policyDocument")),
                _ => None,
            };
        } else {
            let arn = text(request, "openIDConnectProviderArn")
                .or_else(|| text(response, "openIDConnectProviderArn"));
            change.provider = arn
                .as_deref()
                .and_then(provider_of_arn)
                .or_else(|| text(request, "url").map(|u| u.trim_start_matches("https://").to_owned()));
            if change.provider.is_none() {
                return Err(missing("the provider"));
            }
            change.client_id = text(request, "clientID");
            change.client_ids = strings(request.get("clientIDList"));
            change.thumbprints = strings(request.get("thumbprintList"));
        }
        Ok(Some(change))
    }

    /// The trust policy after the change, when the request carried a readable one.
    pub fn policy(&self) -> Option<PolicyDocument> {
        self.policy_after
            .as_deref()
            .and_then(|p| PolicyDocument::parse_str(p).ok())
    }

    /// Whether the monitor has anything to do with it: a `CreateRole` whose trust policy
    /// concerns no web identity (a service or account role) is not.
    pub fn concerns_web_identity(&self) -> bool {
        match (self.action, &self.policy_after) {
            (ChangeAction::CreateRole, Some(policy)) => {
                crate::snapshot::concerns_web_identity(&Value::String(policy.clone()))
            }
            _ => true,
        }
    }

    /// Whether it is about `role` (any case) or the provider of `provider_url`.
    pub fn concerns(&self, role: Option<&str>, provider_url: Option<&str>) -> bool {
        let same = |a: Option<&str>, b: Option<&str>| match (a, b) {
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        };
        same(self.role.as_deref(), role) || same(self.provider.as_deref(), provider_url)
    }

    /// What was changed, for people: `role "deploy"`, `provider "token.actions…"`.
    pub fn target(&self) -> String {
        match (&self.role, &self.provider) {
            (Some(role), _) => format!("role {}", quote(role)),
            (None, Some(provider)) => format!("provider {}", quote(provider)),
            _ => "IAM".to_owned(),
        }
    }
}

/// One value list that a change edited: a condition (`operator key`), or a statement's
/// `Principal.Federated`, `Action` or `Effect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueChange {
    pub statement: usize,
    pub target: String,
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub removed: Vec<String>,
}

/// Each statement's value lists, keyed by target (condition keys compare in lower case).
fn lists(policy: Option<&PolicyDocument>) -> Vec<BTreeMap<String, (String, BTreeSet<String>)>> {
    let Some(policy) = policy else { return Vec::new() };
    policy
        .statements
        .iter()
        .map(|s| {
            let mut map: BTreeMap<String, (String, BTreeSet<String>)> = BTreeMap::new();
            let mut put = |key: String, shown: String, values: &mut dyn Iterator<Item = String>| {
                map.entry(key)
                    .or_insert_with(|| (shown, BTreeSet::new()))
                    .1
                    .extend(values);
            };
            let effect = match &s.effect {
                crate::policy::Effect::Allow => "Allow".to_owned(),
                crate::policy::Effect::Deny => "Deny".to_owned(),
                crate::policy::Effect::Invalid(e) => e.clone(),
            };
            put("effect".into(), "Effect".into(), &mut std::iter::once(effect));
            put(
                "principal.federated".into(),
                "Principal.Federated".into(),
                &mut s.federated_principals().iter().cloned(),
            );
            if let Some(actions) = &s.action {
                put("action".into(), "Action".into(), &mut actions.iter().cloned());
            }
            for c in &s.conditions {
                put(
                    format!("{} {}", c.operator_name, c.key_lower),
                    format!("{} {}", c.operator_name, c.key),
                    &mut c.values.iter().cloned(),
                );
            }
            map
        })
        .collect()
}

fn capped(values: impl Iterator<Item = String>) -> Vec<String> {
    values.take(MAX_DIFF_VALUES).collect()
}

/// The value lists the change edited, statement by statement (by position, as IAM keeps
/// them); at most [`MAX_DIFF_ITEMS`]. `before` `None`: a new role, every value added.
pub fn diff(before: Option<&PolicyDocument>, after: Option<&PolicyDocument>) -> Vec<ValueChange> {
    let (before, after) = (lists(before), lists(after));
    let empty = BTreeMap::new();
    let mut changes = Vec::new();
    for index in 0..before.len().max(after.len()) {
        let b = before.get(index).unwrap_or(&empty);
        let a = after.get(index).unwrap_or(&empty);
        let keys: BTreeSet<&String> = b.keys().chain(a.keys()).collect();
        for key in keys {
            let none = (String::new(), BTreeSet::new());
            let (shown_b, values_b) = b.get(key).unwrap_or(&none);
            let (shown_a, values_a) = a.get(key).unwrap_or(&none);
            let added = capped(values_a.difference(values_b).cloned());
            let removed = capped(values_b.difference(values_a).cloned());
            if added.is_empty() && removed.is_empty() {
                continue;
            }
            let target = if shown_a.is_empty() { shown_b } else { shown_a };
            changes.push(ValueChange {
                statement: index,
                target: target.clone(),
                added,
                removed,
            });
        }
    }
    changes.truncate(MAX_DIFF_ITEMS);
    changes
}

/// The findings that let more identities in than before.
const WIDENING_FINDINGS: &[FindingCode] = &[
    FindingCode::NoSubjectCondition,
    FindingCode::OwnerWildcard,
    FindingCode::ForAllValuesOnClaim,
    FindingCode::IfExistsOnClaim,
    FindingCode::NoAudienceCondition,
];

/// Why the change from `before` to `after` widens trust; empty when it does not. See the
/// module's documentation for the rules.
pub fn widening(
    before: Option<&PolicyDocument>,
    after: Option<&PolicyDocument>,
    owners: &Owners,
) -> Vec<String> {
    let Some(after) = after else { return Vec::new() };
    let mut reasons = Vec::new();
    let findings_after = audit(after);
    let findings_before = before.map(audit).unwrap_or_default();
    for code in WIDENING_FINDINGS {
        let count = |findings: &[crate::audit::Finding]| findings.iter().filter(|f| f.code == *code).count();
        if count(&findings_after) > count(&findings_before) {
            if let Some(finding) = findings_after.iter().find(|f| {
                f.code == *code
                    && !findings_before
                        .iter()
                        .any(|b| b.code == *code && b.message == f.message)
            }) {
                reasons.push(format!("{}: {}", code.as_str(), bound(&finding.message, 400)));
            }
        }
    }
    let allowed = |owner: &Owner| match owners {
        Owners::Allowed(list) => list.iter().any(|a| a.is(owner)),
        Owners::FromTrustPolicies => false,
    };
    let named_before = before.map(owners_named_by);
    let judge_owners = named_before.is_some() || matches!(owners, Owners::Allowed(_));
    if judge_owners {
        let known = named_before.clone().unwrap_or_default();
        let new: Vec<String> = owners_named_by(after)
            .into_iter()
            .filter(|o| !known.iter().any(|k| k.is(o)) && !allowed(o))
            .map(|o| quote(&o.to_string()))
            .take(MAX_DIFF_VALUES)
            .collect();
        if !new.is_empty() {
            reasons.push(format!("new owner trusted: {}", new.join(", ")));
        }
    }
    if let Some(before) = before {
        let federated = |p: &PolicyDocument| -> BTreeSet<String> {
            p.statements
                .iter()
                .filter(|s| s.is_allow())
                .flat_map(|s| s.federated_principals().iter().cloned())
                .collect()
        };
        let new: Vec<String> = federated(after)
            .difference(&federated(before))
            .take(MAX_DIFF_VALUES)
            .map(|p| quote(p))
            .collect();
        if !new.is_empty() {
            reasons.push(format!("new federated principal: {}", new.join(", ")));
        }
    }
    reasons
}

/// A change, judged: what the monitor records (state item `change#<account>`) and what
/// its notes are made of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub change: TrustChange,
    /// The trust policy before, when known (the previous record's after, or the policy
    /// the instance had cached).
    pub policy_before: Option<String>,
    #[serde(default)]
    pub diff: Vec<ValueChange>,
    /// [`widening`]'s reasons; empty: narrowing or neutral.
    #[serde(default)]
    pub widening: Vec<String>,
}

impl ChangeRecord {
    /// Judges `change` against the policy before it.
    pub fn judge(change: TrustChange, policy_before: Option<String>, owners: &Owners) -> ChangeRecord {
        let after = change.policy();
        let before = policy_before
            .as_deref()
            .and_then(|p| PolicyDocument::parse_str(p).ok());
        let (diff, widening) = match change.action {
            ChangeAction::CreateRole | ChangeAction::UpdateAssumeRolePolicy => (
                diff(before.as_ref(), after.as_ref()),
                widening(before.as_ref(), after.as_ref(), owners),
            ),
            _ => (Vec::new(), Vec::new()),
        };
        ChangeRecord {
            policy_before: policy_before.filter(|p| p.len() <= MAX_POLICY_TEXT),
            change,
            diff,
            widening,
        }
    }

    /// What the change did, in words: `removed "repo:acme/web:ref:refs/heads/main" from
    /// statement 0 (StringLike …:sub)`, or for a provider `added client ID "x"`.
    pub fn summary(&self) -> String {
        let c = &self.change;
        let list = |values: &[String]| values.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ");
        match c.action {
            ChangeAction::DeleteRole => "the role was deleted".to_owned(),
            ChangeAction::DeleteOpenIDConnectProvider => "the provider was deleted".to_owned(),
            ChangeAction::CreateOpenIDConnectProvider => {
                format!(
                    "the provider was created with client IDs [{}]",
                    list(&c.client_ids)
                )
            }
            ChangeAction::AddClientIDToOpenIDConnectProvider => {
                format!(
                    "added client ID {}",
                    c.client_id.as_deref().map_or("-".to_owned(), quote)
                )
            }
            ChangeAction::RemoveClientIDFromOpenIDConnectProvider => {
                format!(
                    "removed client ID {}",
                    c.client_id.as_deref().map_or("-".to_owned(), quote)
                )
            }
            ChangeAction::UpdateOpenIDConnectProviderThumbprint => {
                format!("set the thumbprints to [{}]", list(&c.thumbprints))
            }
            ChangeAction::CreateRole | ChangeAction::UpdateAssumeRolePolicy => {
                if c.policy_after.is_some() && c.policy().is_none() {
                    return "the new trust policy could not be read".to_owned();
                }
                if self.diff.is_empty() {
                    return match self.policy_before {
                        Some(_) => "the trust policy's values did not change".to_owned(),
                        None => "the trust policy before it is unknown".to_owned(),
                    };
                }
                let mut parts: Vec<String> = self
                    .diff
                    .iter()
                    .take(SENTENCE_ITEMS)
                    .map(|d| {
                        let place = format!("statement {} ({})", d.statement, bound(&d.target, 120));
                        match (d.added.is_empty(), d.removed.is_empty()) {
                            (true, _) => format!("removed {} from {place}", list(&d.removed)),
                            (_, true) => format!("added {} to {place}", list(&d.added)),
                            _ => format!("replaced {} with {} in {place}", list(&d.removed), list(&d.added)),
                        }
                    })
                    .collect();
                if self.diff.len() > SENTENCE_ITEMS {
                    parts.push(format!("and {} more", self.diff.len() - SENTENCE_ITEMS));
                }
                let unknown = if self.policy_before.is_none() {
                    " (the policy before it is unknown)"
                } else {
                    ""
                };
                format!("{}{unknown}", parts.join("; "))
            }
        }
    }

    /// The change on its own: `UpdateAssumeRolePolicy of role "x" by "arn:…": the change
    /// added …`.
    pub fn description(&self) -> String {
        let c = &self.change;
        let by = c
            .actor
            .as_deref()
            .map_or(String::new(), |a| format!(" by {}", quote(a)));
        format!(
            "{} of {}{by}: the change {}",
            c.action,
            c.target(),
            self.summary()
        )
    }

    /// The note for an alert `offset_seconds` after the change: `began 3 min after
    /// UpdateAssumeRolePolicy by arn:…; the change removed …`. `verb`: `began`,
    /// `recovered`.
    pub fn note(&self, verb: &str, offset_seconds: i64) -> ChangeNote {
        let c = &self.change;
        let by = c
            .actor
            .as_deref()
            .map_or(String::new(), |a| format!(" by {}", quote(a)));
        let sentence = format!(
            "{verb} {} after {} of {}{by}; the change {}",
            duration_words(offset_seconds),
            c.action,
            c.target(),
            self.summary()
        );
        ChangeNote {
            event_id: c.event_id.clone(),
            action: c.action,
            at: c.at,
            actor: c.actor.clone(),
            role: c.role.clone(),
            provider: c.provider.clone(),
            summary: self.summary(),
            diff: self.diff.clone(),
            widening: self.widening.clone(),
            sentence,
        }
    }
}

/// `42 s`, `3 min`, `2 h 5 min`.
pub fn duration_words(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A change as an alert carries it (`additionalContext.changes`): on incident, spike and
/// recovery alerts the changes of the role or provider shortly before, on a
/// `trust-change` alert the change itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNote {
    pub event_id: String,
    pub action: ChangeAction,
    /// `eventTime`, epoch seconds.
    pub at: i64,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub provider: Option<String>,
    /// What it did, in words ([`ChangeRecord::summary`]).
    pub summary: String,
    #[serde(default)]
    pub diff: Vec<ValueChange>,
    /// Why it widens trust; empty: it does not.
    #[serde(default)]
    pub widening: Vec<String>,
    /// The sentence the alert says.
    pub sentence: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const GITHUB: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

    fn policy(conditions: Value) -> String {
        json!({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Federated": GITHUB},
            "Action": "sts:AssumeRoleWithWebIdentity", "Condition": conditions}]})
        .to_string()
    }

    fn main_only() -> String {
        policy(json!({
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/main"}}))
    }

    fn update(policy_after: &str) -> TrustChange {
        let record = json!({
            "eventVersion": "1.09", "eventSource": "iam.amazonaws.com", "eventName": "UpdateAssumeRolePolicy",
            "eventTime": "2026-09-30T10:00:00Z", "eventID": "e-1", "recipientAccountId": "111122223333",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/admin/alice"},
            "requestParameters": {"roleName": "gha-deploy", "policyDocument": policy_after},
            "responseElements": null});
        TrustChange::from_record(&record, None).unwrap().unwrap()
    }

    #[test]
    fn an_update_reads_with_who_when_and_the_policy_after() {
        let change = update(&main_only());
        assert_eq!(change.action, ChangeAction::UpdateAssumeRolePolicy);
        assert_eq!(change.role.as_deref(), Some("gha-deploy"));
        assert_eq!(
            change.at,
            crate::evaluate::epoch_seconds("2026-09-30T10:00:00Z").unwrap()
        );
        assert_eq!(
            change.actor.as_deref(),
            Some("arn:aws:sts::111122223333:assumed-role/admin/alice")
        );
        assert!(change.policy().is_some());
        // URL-encoded, as some clients send it.
        let encoded: String =
            percent_encoding::utf8_percent_encode(&main_only(), percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert_eq!(update(&encoded).policy(), change.policy());
    }

    #[test]
    fn failed_calls_and_other_calls_are_not_changes() {
        let mut record = json!({"eventSource": "iam.amazonaws.com", "eventName": "DeleteRole",
            "eventTime": "2026-09-30T10:00:00Z", "eventID": "e", "recipientAccountId": "111122223333",
            "requestParameters": {"roleName": "r"}});
        assert!(TrustChange::from_record(&record, None).unwrap().is_some());
        record["errorCode"] = json!("AccessDenied");
        assert_eq!(TrustChange::from_record(&record, None), Ok(None));
        let other = json!({"eventSource": "iam.amazonaws.com", "eventName": "AttachRolePolicy"});
        assert_eq!(TrustChange::from_record(&other, None), Ok(None));
        let sts = json!({"eventSource": "sts.amazonaws.com", "eventName": "DeleteRole"});
        assert_eq!(TrustChange::from_record(&sts, None), Ok(None));
        let no_role = json!({"eventSource": "iam.amazonaws.com", "eventName": "DeleteRole",
            "eventTime": "2026-09-30T10:00:00Z", "eventID": "e", "recipientAccountId": "111122223333"});
        assert!(TrustChange::from_record(&no_role, None).is_err());
    }

    #[test]
    fn provider_changes_name_the_provider_by_url() {
        let record = json!({"eventSource": "iam.amazonaws.com", "eventName": "AddClientIDToOpenIDConnectProvider",
            "eventTime": "2026-09-30T10:00:00Z", "eventID": "e", "recipientAccountId": "111122223333",
            "requestParameters": {"openIDConnectProviderArn": GITHUB, "clientID": "sigstore"}});
        let change = TrustChange::from_record(&record, None).unwrap().unwrap();
        assert_eq!(
            change.provider.as_deref(),
            Some("token.actions.githubusercontent.com")
        );
        assert!(change.concerns(None, Some("Token.Actions.GithubUserContent.com")));
        let record = ChangeRecord::judge(change, None, &Owners::FromTrustPolicies);
        assert!(record.widening.is_empty(), "a client ID alone does not widen");
        assert_eq!(record.summary(), "added client ID \"sigstore\"");
    }

    #[test]
    fn a_create_role_for_a_service_does_not_concern_web_identity() {
        let record = json!({"eventSource": "iam.amazonaws.com", "eventName": "CreateRole",
            "eventTime": "2026-09-30T10:00:00Z", "eventID": "e", "recipientAccountId": "111122223333",
            "requestParameters": {"roleName": "lambda-exec", "assumeRolePolicyDocument":
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                  "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}).to_string()}});
        let change = TrustChange::from_record(&record, None).unwrap().unwrap();
        assert!(!change.concerns_web_identity());
        let mut oidc = record.clone();
        oidc["requestParameters"]["assumeRolePolicyDocument"] = json!(main_only());
        assert!(TrustChange::from_record(&oidc, None)
            .unwrap()
            .unwrap()
            .concerns_web_identity());
    }

    #[test]
    fn the_diff_names_removed_and_added_values_per_statement() {
        let after = policy(json!({
            "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/release"}}));
        let record = ChangeRecord::judge(update(&after), Some(main_only()), &Owners::FromTrustPolicies);
        assert_eq!(
            record.diff,
            vec![ValueChange {
                statement: 0,
                target: "StringLike token.actions.githubusercontent.com:sub".into(),
                added: vec!["repo:acme/web:ref:refs/heads/release".into()],
                removed: vec!["repo:acme/web:ref:refs/heads/main".into()],
            }]
        );
        assert!(
            record.widening.is_empty(),
            "another branch of the same owner is neutral"
        );
        let note = record.note("began", 180);
        assert_eq!(
            note.sentence,
            "began 3 min after UpdateAssumeRolePolicy of role \"gha-deploy\" by \"arn:aws:sts::111122223333:assumed-role/admin/alice\"; the change replaced \"repo:acme/web:ref:refs/heads/main\" with \"repo:acme/web:ref:refs/heads/release\" in statement 0 (StringLike token.actions.githubusercontent.com:sub)"
        );
    }

    #[test]
    fn what_widens_trust() {
        let owners = Owners::FromTrustPolicies;
        let judge = |after: String| ChangeRecord::judge(update(&after), Some(main_only()), &owners).widening;
        let aud = json!({"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"});
        // A new owner.
        let stranger = judge(policy(json!({"StringEquals": aud,
            "StringLike": {"token.actions.githubusercontent.com:sub": ["repo:acme/web:ref:refs/heads/main", "repo:evil/web:*"]}})));
        assert!(
            stranger
                .iter()
                .any(|r| r.contains("new owner") && r.contains("evil")),
            "{stranger:?}"
        );
        // An owner wildcard.
        let wildcard = judge(policy(json!({"StringEquals": aud,
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:*/web:*"}})));
        assert!(
            wildcard.iter().any(|r| r.starts_with("OwnerWildcard")),
            "{wildcard:?}"
        );
        // The sub condition removed.
        let no_sub = judge(policy(json!({"StringEquals": aud})));
        assert!(
            no_sub.iter().any(|r| r.starts_with("NoSubjectCondition")),
            "{no_sub:?}"
        );
        // ForAllValues on sub.
        let for_all = judge(policy(json!({"StringEquals": aud,
            "ForAllValues:StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/main"}})));
        assert!(
            for_all.iter().any(|r| r.starts_with("ForAllValuesOnClaim")),
            "{for_all:?}"
        );
        // The aud condition removed.
        let no_aud = judge(policy(json!({
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/web:ref:refs/heads/main"}})));
        assert!(
            no_aud.iter().any(|r| r.starts_with("NoAudienceCondition")),
            "{no_aud:?}"
        );
        // Narrowing: a value removed.
        let before = policy(json!({"StringEquals": aud,
            "StringLike": {"token.actions.githubusercontent.com:sub": ["repo:acme/web:ref:refs/heads/main", "repo:acme/web:*"]}}));
        let narrowed = ChangeRecord::judge(update(&main_only()), Some(before), &owners);
        assert!(narrowed.widening.is_empty(), "{:?}", narrowed.widening);
        assert!(narrowed
            .summary()
            .starts_with("removed \"repo:acme/web:*\" from statement 0"));
    }

    #[test]
    fn with_the_policy_before_unknown_only_findings_and_outside_owners_count() {
        let listed = Owners::parse_list("github:acme").unwrap();
        let ours = ChangeRecord::judge(update(&main_only()), None, &listed);
        assert!(ours.widening.is_empty(), "{:?}", ours.widening);
        assert!(ours.summary().contains("(the policy before it is unknown)"));
        let stranger = policy(
            json!({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:evil/web:*"}}),
        );
        assert!(!ChangeRecord::judge(update(&stranger), None, &listed)
            .widening
            .is_empty());
        assert!(
            ChangeRecord::judge(update(&stranger), None, &Owners::FromTrustPolicies)
                .widening
                .is_empty()
        );
    }

    #[test]
    fn hostile_values_are_quoted_in_sentences() {
        let after = policy(
            json!({"StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
            "StringLike": {"token.actions.githubusercontent.com:sub": "repo:acme/web:\u{202e}\n<!channel>"}}),
        );
        let note = ChangeRecord::judge(update(&after), Some(main_only()), &Owners::FromTrustPolicies)
            .note("began", 5);
        assert!(
            !note.sentence.contains('\n') && !note.sentence.contains('\u{202e}'),
            "{}",
            note.sentence
        );
        assert!(note.sentence.starts_with("began 5 s after"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration_words(-3), "0 s");
        assert_eq!(duration_words(59), "59 s");
        assert_eq!(duration_words(185), "3 min");
        assert_eq!(duration_words(7500), "2 h 5 min");
    }
}
