//! What oidc-auditor promises the infrastructure (docs/contracts.md): the SDK operations
//! it calls (its IAM policy grants them) and the state-table key prefixes it writes and
//! reads. `oidc-watch-contract` prints them for infra/tests.

/// Every SDK operation the auditor may call, by service (the adapters' declared lists).
pub const SDK_OPERATIONS: &[(&str, &[&str])] = &[
    ("iam", oidc_watch_aws::account_snapshot::IAM_OPERATIONS),
    ("sts", oidc_watch_aws::account_snapshot::STS_OPERATIONS),
    ("sns", oidc_watch_aws::sns::SDK_OPERATIONS),
    ("dynamodb", DYNAMODB_OPERATIONS),
];

/// The audit store's operations and the one Query of the record of successes.
const DYNAMODB_OPERATIONS: &[&str] = &["DeleteItem", "GetItem", "PutItem", "Query"];

/// The prefixes it writes (its findings).
pub const KEY_PREFIXES: &[&str] = oidc_watch_aws::audit_store::KEY_PREFIXES;
/// The prefixes it only reads (`Query`): the monitor's record of successes.
pub const READ_KEY_PREFIXES: &[&str] = &["success#"];

#[cfg(test)]
mod tests {
    #[test]
    fn the_dynamodb_operations_are_the_stores() {
        let mut store: Vec<&str> = oidc_watch_aws::audit_store::SDK_OPERATIONS.to_vec();
        store.push("Query"); // successful_subjects
        store.sort();
        store.dedup();
        assert_eq!(store, super::DYNAMODB_OPERATIONS);
    }
}
