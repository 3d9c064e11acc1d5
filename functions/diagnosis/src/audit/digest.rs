//! What changed between two audits of the same accounts: the digest oidc-auditor publishes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::AccountFinding;

/// Findings new since the previous audit, and findings it had that are gone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub new: Vec<AccountFinding>,
    pub resolved: Vec<AccountFinding>,
    /// Findings both audits have.
    pub unchanged: usize,
}

impl Digest {
    /// Nothing to tell: no digest is published.
    pub fn is_empty(&self) -> bool {
        self.new.is_empty() && self.resolved.is_empty()
    }
}

/// Compares two audits by [`AccountFinding::key`]; the order of each list is kept.
pub fn digest(previous: &[AccountFinding], current: &[AccountFinding]) -> Digest {
    let before: BTreeMap<String, &AccountFinding> = previous.iter().map(|f| (f.key(), f)).collect();
    let after: BTreeMap<String, &AccountFinding> = current.iter().map(|f| (f.key(), f)).collect();
    let mut out = Digest::default();
    for finding in current {
        if before.contains_key(&finding.key()) {
            out.unchanged += 1;
        } else {
            out.new.push(finding.clone());
        }
    }
    out.resolved = previous
        .iter()
        .filter(|f| !after.contains_key(&f.key()))
        .cloned()
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{FindingCode, Severity};

    fn finding(role: &str, code: FindingCode, message: &str) -> AccountFinding {
        AccountFinding {
            account: "111122223333".into(),
            role: Some(role.into()),
            provider: None,
            statement: Some(0),
            code,
            severity: Severity::High,
            value: Some(role.into()),
            message: message.into(),
            suggested_change: None,
        }
    }

    #[test]
    fn new_resolved_and_reworded_findings() {
        let before = [
            finding("a", FindingCode::OwnerWildcard, "x"),
            finding("b", FindingCode::NoSubjectCondition, "y"),
        ];
        let after = [
            finding("a", FindingCode::OwnerWildcard, "x, reworded"),
            finding("c", FindingCode::UnusedRole, "z"),
        ];
        let d = digest(&before, &after);
        assert_eq!(d.unchanged, 1);
        assert_eq!(
            d.new.iter().map(|f| f.role.as_deref()).collect::<Vec<_>>(),
            [Some("c")]
        );
        assert_eq!(
            d.resolved.iter().map(|f| f.role.as_deref()).collect::<Vec<_>>(),
            [Some("b")]
        );
        assert!(digest(&after, &after).is_empty());
    }
}
