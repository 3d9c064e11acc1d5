//! The diagnosis JSON contract (docs/contracts.md, "The diagnosis JSON"): the cause
//! names, the confidence, the failed condition and the diagnosis itself. It
//! deserialises too, tolerant of members a newer or older producer adds or drops.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Finding;
use crate::claims::Outcome;
use crate::evaluate::Provenance;
use crate::mismatch::SubjectMismatch;
use crate::names::{lenient, lenient_list};
use crate::owner::{Owner, Trust};
use crate::subject::DerivedClaims;
use crate::suggest::SuggestedChange;

crate::names::named_enum! {
    pub enum Cause {
    None,
    RoleNotFound,
    OidcProviderMissing,
    AudienceNotInProvider,
    ThumbprintMismatch,
    PrincipalMismatch,
    ActionNotAllowed,
    AudienceMismatch,
    SubjectMismatch,
    UnverifiableCondition,
    ExplicitDeny,
    SessionDurationExceeded,
    MissingTagSessionPermission,
    TokenExpired,
    IdpUnreachable,
    DeniedOutsideTrustPolicy,
    Unknown,
    }
    unknown => Unknown
}

crate::names::named_enum! {
    pub enum Confidence {
        Certain = "certain",
        Probable = "probable",
        Unknown = "unknown",
    }
    unknown => Unknown
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedCondition {
    pub statement: usize,
    pub operator: String,
    pub key: String,
    pub expected: Vec<String>,
    /// A string, a list for multivalued keys, or null when the key was missing.
    pub actual: Value,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "lenient")]
    pub provenance: Option<Provenance>,
}

/// One event's diagnosis: the JSON contract of `oidc-watch diagnose` (docs/contracts.md,
/// "The diagnosis JSON").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Diagnosis {
    pub event_id: Option<String>,
    pub event_time: Option<String>,
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub outcome: Outcome,
    pub error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    pub role_arn: Option<String>,
    pub role_name: Option<String>,
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider_arn: Option<String>,
    pub subject: Option<String>,
    pub audience: Option<String>,
    pub claims: DerivedClaims,
    /// The owner the token names (`provider:name`), if any: ALLOWED_OWNERS syntax.
    #[serde(deserialize_with = "lenient")]
    pub owner: Option<Owner>,
    pub trust: Trust,
    pub cause: Cause,
    pub subject_mismatch: Option<SubjectMismatch>,
    pub confidence: Confidence,
    pub explanation: String,
    pub fix: Option<String>,
    /// The verified trust-policy change, when the cause lives in the trust policy and a
    /// safe change exists; `fix` says why not otherwise.
    #[serde(deserialize_with = "lenient")]
    pub suggested_change: Option<SuggestedChange>,
    #[serde(deserialize_with = "lenient_list")]
    pub failed_conditions: Vec<FailedCondition>,
    /// Shared with the role's cached audit: the same for every event of a role.
    #[serde(deserialize_with = "lenient_findings")]
    pub findings: Arc<[Finding]>,
    /// `account-snapshot` when the role and providers were known, else `event-only`.
    #[serde(deserialize_with = "evidence")]
    pub evidence: crate::names::KnownName,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub session_tags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub github_run_id: Option<String>,
}

/// What a diagnosis rests on: the account's IAM state, or the event alone.
pub const EVIDENCE: [&str; 2] = ["account-snapshot", "event-only"];

fn evidence<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<&'static str, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
    Ok(EVIDENCE.into_iter().find(|e| *e == text).unwrap_or(EVIDENCE[1]))
}

fn lenient_findings<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Arc<[Finding]>, D::Error> {
    lenient_list(deserializer).map(Arc::from)
}

/// What a reader gets for members the message does not carry.
impl Default for Diagnosis {
    fn default() -> Self {
        Diagnosis {
            event_id: None,
            event_time: None,
            account_id: None,
            region: None,
            outcome: Outcome::Failure,
            error_code: None,
            error_message: None,
            role_arn: None,
            role_name: None,
            provider: None,
            provider_arn: None,
            subject: None,
            audience: None,
            claims: DerivedClaims::default(),
            owner: None,
            trust: Trust::Unknown,
            cause: Cause::Unknown,
            subject_mismatch: None,
            confidence: Confidence::Unknown,
            explanation: String::new(),
            fix: None,
            suggested_change: None,
            failed_conditions: Vec::new(),
            findings: Arc::from([]),
            evidence: EVIDENCE[1],
            session_name: None,
            duration_seconds: None,
            session_tags: BTreeMap::new(),
            endpoint_type: None,
            source_ip: None,
            github_run_id: None,
        }
    }
}
