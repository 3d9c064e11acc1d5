//! oidc-auditor's configuration, read once at init.

use std::collections::HashMap;

use oidc_watch_aws::config::{ALERT_TOPIC_ARN, OBSERVED_SUBJECT_DAYS, READ_ROLE_NAME};
use oidc_watch_aws::env::{ConfigError, Env, Variable, STATE_TABLE_NAME};

/// The accounts to audit, comma-separated; empty: the function's own account.
pub const AUDIT_ACCOUNTS: Variable = Variable::text("AUDIT_ACCOUNTS");
/// A role no recorded success assumed for this many days is a finding (0: not judged).
pub const UNUSED_DAYS: Variable = Variable::number("UNUSED_DAYS", "90", 0, 3650);
/// The most accounts one run audits.
pub const MAX_ACCOUNTS: usize = 100;

/// Every variable oidc-auditor reads.
pub const VARIABLES: &[Variable] = &[
    AUDIT_ACCOUNTS,
    READ_ROLE_NAME,
    STATE_TABLE_NAME,
    ALERT_TOPIC_ARN,
    UNUSED_DAYS,
    OBSERVED_SUBJECT_DAYS,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Twelve-digit account IDs; empty: the function's own account.
    pub accounts: Vec<String>,
    /// The role assumed in every other account (`arn:aws:iam::<id>:role/<name>`).
    pub read_role_name: Option<String>,
    pub state_table_name: String,
    pub alert_topic_arn: String,
    pub unused_days: u32,
    /// How long the monitor keeps the record of successes (0: it keeps none, so the audit
    /// judges nothing by use).
    pub observed_subject_days: i64,
}

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_map(&std::env::vars().collect())
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let env = Env::new(vars);
        let mut accounts: Vec<String> = Vec::new();
        for account in env.text(&AUDIT_ACCOUNTS).unwrap_or("").split(',') {
            let account = account.trim();
            if account.is_empty() {
                continue;
            }
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::new(
                    AUDIT_ACCOUNTS.name,
                    format!("{account:?} is not an AWS account ID (twelve digits)"),
                ));
            }
            if !accounts.iter().any(|a| a == account) {
                accounts.push(account.to_owned());
            }
        }
        if accounts.len() > MAX_ACCOUNTS {
            return Err(ConfigError::new(
                AUDIT_ACCOUNTS.name,
                format!("at most {MAX_ACCOUNTS} accounts, got {}", accounts.len()),
            ));
        }
        let read_role_name = env.text(&READ_ROLE_NAME).map(str::to_owned);
        if accounts.len() > 1 && read_role_name.is_none() {
            return Err(ConfigError::new(
                READ_ROLE_NAME.name,
                "is required to audit more than one account",
            ));
        }
        Ok(Config {
            accounts,
            read_role_name,
            state_table_name: env.required(&STATE_TABLE_NAME)?,
            alert_topic_arn: env.required(&ALERT_TOPIC_ARN)?,
            unused_days: env.number(&UNUSED_DAYS)? as u32,
            observed_subject_days: env.number_or_max(&OBSERVED_SUBJECT_DAYS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("STATE_TABLE_NAME".to_owned(), "t".to_owned()),
            (
                "ALERT_TOPIC_ARN".to_owned(),
                "arn:aws:sns:us-east-1:111122223333:a".to_owned(),
            ),
        ]);
        vars.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Config::from_map(&vars)
    }

    #[test]
    fn accounts_are_checked_and_the_defaults_hold() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.accounts.len(), c.unused_days, c.observed_subject_days),
            (0, 90, 90)
        );
        let c = config(&[
            ("AUDIT_ACCOUNTS", " 111122223333, 444455556666,111122223333 "),
            ("READ_ROLE_NAME", "oidc-watch-read"),
        ])
        .unwrap();
        assert_eq!(c.accounts, ["111122223333", "444455556666"]);
        let error = config(&[("AUDIT_ACCOUNTS", "1111,arn:aws")]).unwrap_err();
        assert_eq!(error.variable, "AUDIT_ACCOUNTS");
        let error = config(&[("AUDIT_ACCOUNTS", "111122223333,444455556666")]).unwrap_err();
        assert_eq!(error.variable, "READ_ROLE_NAME");
        assert_eq!(
            config(&[("UNUSED_DAYS", "-1")]).unwrap_err().variable,
            "UNUSED_DAYS"
        );
    }
}
