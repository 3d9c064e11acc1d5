//! oidc-auditor's findings in the state table, one account per partition `audit#<account>`:
//!
//! * the head, sort key `head`: the generation of the latest audit (its time), how many
//!   parts it has and how many findings;
//! * the parts, sort key `g#<generation>#<part>`: the findings as JSON, split so no item
//!   comes near DynamoDB's 400 KB limit ([`MAX_PART_BYTES`]).
//!
//! A save writes the new generation's parts, then the head (the switch), then deletes the
//! parts of the generation before (best effort: every item carries a TTL too). A save cut
//! short leaves the previous generation in force, so a retried run compares against it.

use aws_sdk_dynamodb::types::AttributeValue;
use diagnosis::audit::AccountFinding;
use diagnosis::ports::PortError;

use crate::dynamodb::{key_part, n, s, store_error, TTL_ATTRIBUTE};

/// The DynamoDB operations this store calls.
pub const SDK_OPERATIONS: &[&str] = &["DeleteItem", "GetItem", "PutItem", "Query"];
/// The partition-key prefixes this store writes; oidc-auditor's role may write no other
/// (it reads `success#`, the monitor's record of successes).
pub const KEY_PREFIXES: &[&str] = &["audit#"];
/// The largest part, in bytes of JSON: far under DynamoDB's 400 KB item limit.
pub const MAX_PART_BYTES: usize = 300_000;
/// The most findings kept per account; a larger audit keeps the first (highest severity).
pub const MAX_STORED_FINDINGS: usize = 10_000;
/// How long findings are kept without a newer audit (the TTL of their items).
pub const RETENTION_SECONDS: i64 = 400 * 86_400;

const HEAD: &str = "head";

pub fn audit_partition(account: &str) -> String {
    format!("audit#{}", key_part(account))
}

fn part_key(generation: i64, part: usize) -> String {
    format!("g#{generation:012}#{part:04}")
}

fn part_prefix(generation: i64) -> String {
    format!("g#{generation:012}#")
}

/// The stored form of a finding: the whole policy after a suggested change is left out
/// (kilobytes each; the digest names the change, `oidc-watch audit` shows the policy).
fn stored(finding: &AccountFinding) -> AccountFinding {
    let mut finding = finding.clone();
    if let Some(change) = finding.suggested_change.as_mut() {
        change.policy = serde_json::Value::Null;
    }
    finding
}

/// `findings` as JSON arrays of at most [`MAX_PART_BYTES`] each (a finding larger than
/// that alone is left out: only a forged policy makes one).
pub fn split_parts(findings: &[AccountFinding]) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for finding in findings.iter().take(MAX_STORED_FINDINGS) {
        let Ok(json) = serde_json::to_string(&stored(finding)) else {
            continue;
        };
        if json.len() + 2 > MAX_PART_BYTES {
            continue;
        }
        if size + json.len() + 1 > MAX_PART_BYTES && !current.is_empty() {
            parts.push(format!("[{}]", current.join(",")));
            current.clear();
            size = 2;
        }
        size += json.len() + 1;
        current.push(json);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(format!("[{}]", current.join(",")));
    }
    parts
}

pub struct DynamoFindingStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// What the head of an account says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    generation: i64,
    parts: usize,
    first_at: Option<i64>,
}

/// The latest saved audit of an account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PreviousAudit {
    pub findings: Vec<AccountFinding>,
    /// When the account was first audited (epoch seconds): the record of successes is
    /// no older than the stack, so use is judged only over time since then.
    pub first_audit: Option<i64>,
}

impl DynamoFindingStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        DynamoFindingStore {
            client,
            table: table.into(),
        }
    }

    fn key(&self, account: &str, sort: &str) -> std::collections::HashMap<String, AttributeValue> {
        std::collections::HashMap::from([
            ("pk".to_owned(), s(audit_partition(account))),
            ("sk".to_owned(), s(sort)),
        ])
    }

    async fn head(&self, account: &str) -> Result<Option<Head>, PortError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(self.key(account, HEAD)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| store_error("GetItem audit head", e))?;
        let number = |item: &std::collections::HashMap<String, AttributeValue>, name: &str| {
            item.get(name)
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse::<i64>().ok())
        };
        Ok(output.item.and_then(|item| {
            Some(Head {
                generation: number(&item, "generation")?,
                parts: number(&item, "parts")?.max(0) as usize,
                first_at: number(&item, "first_at"),
            })
        }))
    }

    /// The findings of the latest saved audit of `account`; empty when it was never audited.
    pub async fn previous(&self, account: &str) -> Result<PreviousAudit, PortError> {
        let Some(head) = self.head(account).await? else {
            return Ok(PreviousAudit::default());
        };
        let mut parts: Vec<(String, String)> = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(audit_partition(account)))
                .expression_attribute_values(":prefix", s(part_prefix(head.generation)))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| store_error("Query audit parts", e))?;
            for item in output.items.unwrap_or_default() {
                let text = |name: &str| {
                    item.get(name)
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default()
                };
                parts.push((text("sk"), text("findings")));
            }
            match output.last_evaluated_key {
                Some(key) if !key.is_empty() && parts.len() < head.parts => start = Some(key),
                _ => break,
            }
        }
        if parts.len() != head.parts {
            return Err(PortError::new(
                "dynamodb",
                format!(
                    "audit#{account}: {} of {} parts of generation {}",
                    parts.len(),
                    head.parts,
                    head.generation
                ),
                true,
            ));
        }
        parts.sort();
        let mut findings = Vec::new();
        for (_, text) in parts {
            // A finding this release cannot read (a newer code) is left out: it cannot be
            // told apart from one resolved, so it is neither.
            let items: Vec<serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| PortError::new("dynamodb", format!("audit#{account}: {e}"), false))?;
            findings.extend(items.into_iter().filter_map(|v| serde_json::from_value(v).ok()));
        }
        Ok(PreviousAudit {
            findings,
            first_audit: head.first_at.or(Some(head.generation)),
        })
    }

    /// Saves `findings` as the latest audit of `account`, made at `at` (epoch seconds).
    pub async fn save(&self, account: &str, findings: &[AccountFinding], at: i64) -> Result<(), PortError> {
        let before = self.head(account).await?;
        let generation = match before {
            // Two saves within a second: the later one still gets its own generation.
            Some(head) if head.generation >= at => head.generation + 1,
            _ => at,
        };
        let expires = at + RETENTION_SECONDS;
        let parts = split_parts(findings);
        for (index, part) in parts.iter().enumerate() {
            let mut item = self.key(account, &part_key(generation, index));
            item.insert("findings".to_owned(), s(part.as_str()));
            item.insert(TTL_ATTRIBUTE.to_owned(), n(expires));
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .send()
                .await
                .map_err(|e| store_error("PutItem audit part", e))?;
        }
        let mut head = self.key(account, HEAD);
        head.insert("generation".to_owned(), n(generation));
        head.insert("parts".to_owned(), n(parts.len()));
        head.insert("findings".to_owned(), n(findings.len().min(MAX_STORED_FINDINGS)));
        head.insert("at".to_owned(), n(at));
        let first_at = before
            .and_then(|h| h.first_at.or(Some(h.generation)))
            .unwrap_or(at);
        head.insert("first_at".to_owned(), n(first_at.min(at)));
        head.insert(TTL_ATTRIBUTE.to_owned(), n(expires));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(head))
            .send()
            .await
            .map_err(|e| store_error("PutItem audit head", e))?;
        if let Some(old) = before {
            for index in 0..old.parts {
                let deleted = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(self.key(account, &part_key(old.generation, index))))
                    .send()
                    .await;
                if let Err(error) = deleted {
                    tracing::warn!(error = %crate::describe(&error), "old audit part not deleted; its TTL removes it");
                    break;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diagnosis::audit::{FindingCode, Severity};

    fn finding(i: usize, message: &str) -> AccountFinding {
        AccountFinding {
            account: "111122223333".into(),
            role: Some(format!("role-{i}")),
            provider: None,
            statement: Some(0),
            code: FindingCode::NoSubjectCondition,
            severity: Severity::High,
            value: None,
            message: message.into(),
            suggested_change: Some(diagnosis::suggest::SuggestedChange {
                policy: serde_json::json!({"Statement": ["x".repeat(5000)]}),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn parts_stay_under_the_item_limit_and_keep_every_finding() {
        let findings: Vec<_> = (0..400).map(|i| finding(i, &"m".repeat(2000))).collect();
        let parts = split_parts(&findings);
        assert!(parts.len() >= 3, "{} parts", parts.len());
        let mut read = Vec::new();
        for part in &parts {
            assert!(part.len() <= MAX_PART_BYTES, "{}", part.len());
            read.extend(serde_json::from_str::<Vec<AccountFinding>>(part).unwrap());
        }
        assert_eq!(read.len(), 400);
        assert_eq!(read[7].key(), findings[7].key());
        assert_eq!(
            read[7].suggested_change.as_ref().unwrap().policy,
            serde_json::Value::Null
        );
        assert_eq!(split_parts(&[]), vec!["[]".to_owned()]);
    }
}
