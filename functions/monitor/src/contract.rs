//! What oidc-monitor promises the infrastructure (docs/contracts.md): the fields of its one
//! `diagnosis` log line (the Contributor Insights rules and the dashboard's Logs Insights
//! query name them) and the SDK operations it calls (its IAM policy grants them).
//! `oidc-watch-contract` prints them; tests/contract.rs checks the log line against the
//! handler.

/// The message of the one log line per diagnosed event.
pub const DIAGNOSIS_MESSAGE: &str = "diagnosis";

/// The fields of that line, besides `message`.
pub const DIAGNOSIS_LOG_FIELDS: &[&str] = &[
    "event_id",
    "cause",
    "subject_mismatch",
    "confidence",
    "trust",
    "account",
    "role",
    "owner",
    "repository",
    "subject",
    "run_id",
    "incident",
    "duplicate",
    "alerts",
    "held_back",
];

/// Every SDK operation the monitor may call, by service (the adapters' declared lists).
pub const SDK_OPERATIONS: &[(&str, &[&str])] = &[
    ("iam", oidc_watch_aws::iam::IAM_OPERATIONS),
    ("sts", oidc_watch_aws::iam::STS_OPERATIONS),
    ("sns", oidc_watch_aws::sns::SDK_OPERATIONS),
    ("dynamodb", oidc_watch_aws::dynamodb::SDK_OPERATIONS),
    ("cloudwatch", oidc_watch_aws::metrics::SDK_OPERATIONS),
];
