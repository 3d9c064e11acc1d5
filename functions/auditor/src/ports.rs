//! The ports oidc-auditor talks through, with their AWS adapters (the shared IAM reader,
//! the audit store, the monitor's record of successes) and in-memory versions for tests.

use std::future::Future;

use diagnosis::audit::AccountFinding;
use diagnosis::ports::{ObservedSubject, PortError, StateStore};
use diagnosis::snapshot::AccountSnapshot;
pub use oidc_watch_aws::audit_store::PreviousAudit;

/// Reads one account's IAM state.
pub trait AccountReader {
    /// `None`: the function's own account, with its own credentials; `Some(id)`: through
    /// the read role of that account (the own account with its own credentials too).
    fn read(&self, account: Option<&str>) -> impl Future<Output = Result<AccountSnapshot, String>> + Send;
}

/// The findings of the previous run of each account.
pub trait FindingStore {
    /// No findings and no first audit when the account was never audited.
    fn previous(&self, account: &str) -> impl Future<Output = Result<PreviousAudit, PortError>> + Send;
    fn save(
        &self,
        account: &str,
        findings: &[AccountFinding],
        at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send;
}

/// The monitor's record of the subjects that assumed each role.
pub trait SuccessRecord {
    fn successful_subjects(
        &self,
        account: &str,
        role: &str,
    ) -> impl Future<Output = Result<Vec<ObservedSubject>, PortError>> + Send;
}

impl<S: StateStore + Sync> SuccessRecord for S {
    fn successful_subjects(
        &self,
        account: &str,
        role: &str,
    ) -> impl Future<Output = Result<Vec<ObservedSubject>, PortError>> + Send {
        StateStore::successful_subjects(self, account, role)
    }
}

impl FindingStore for oidc_watch_aws::audit_store::DynamoFindingStore {
    fn previous(&self, account: &str) -> impl Future<Output = Result<PreviousAudit, PortError>> + Send {
        oidc_watch_aws::audit_store::DynamoFindingStore::previous(self, account)
    }

    fn save(
        &self,
        account: &str,
        findings: &[AccountFinding],
        at: i64,
    ) -> impl Future<Output = Result<(), PortError>> + Send {
        oidc_watch_aws::audit_store::DynamoFindingStore::save(self, account, findings, at)
    }
}

/// IAM through the shared reader (`oidc_watch_aws::account_snapshot`).
pub struct IamAccountReader {
    pub sdk: aws_config::SdkConfig,
    pub read_role_name: Option<String>,
}

/// The session name other accounts' CloudTrail shows for the read.
pub const SESSION_NAME: &str = "oidc-auditor";

impl AccountReader for IamAccountReader {
    async fn read(&self, account: Option<&str>) -> Result<AccountSnapshot, String> {
        use oidc_watch_aws::account_snapshot::{read_account_snapshot, ReadRole, RoleSelection};
        let via = account.map(|account| ReadRole {
            account: account.to_owned(),
            role_name: self.read_role_name.clone().unwrap_or_default(),
            session_name: SESSION_NAME.to_owned(),
        });
        let file = read_account_snapshot(&self.sdk, via.as_ref(), RoleSelection::All)
            .await
            .map_err(|e| e.to_string())?;
        AccountSnapshot::from_file(file).map_err(|e| format!("IAM answered with an unusable account: {e}"))
    }
}

/// In-memory ports for handler tests.
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Serves the snapshots it holds by account ID; `own` is the function's own account.
    /// An account in `denied` fails as a refused read role does.
    #[derive(Default)]
    pub struct MemoryReader {
        pub own: String,
        pub snapshots: Mutex<BTreeMap<String, AccountSnapshot>>,
        pub denied: Mutex<Vec<String>>,
    }

    impl MemoryReader {
        pub fn set(&self, snapshot: AccountSnapshot) {
            self.snapshots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(snapshot.account_id.clone(), snapshot);
        }

        pub fn deny(&self, account: &str, denied: bool) {
            let mut list = self.denied.lock().unwrap_or_else(|e| e.into_inner());
            list.retain(|a| a != account);
            if denied {
                list.push(account.to_owned());
            }
        }
    }

    impl AccountReader for MemoryReader {
        async fn read(&self, account: Option<&str>) -> Result<AccountSnapshot, String> {
            let account = account.unwrap_or(&self.own).to_owned();
            if self
                .denied
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&account)
            {
                return Err(format!(
                    "AssumeRole arn:aws:iam::{account}:role/oidc-watch-read: AccessDenied: not authorized to perform sts:AssumeRole"
                ));
            }
            self.snapshots
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&account)
                .cloned()
                .ok_or_else(|| format!("no snapshot of account {account}"))
        }
    }

    /// Keeps the latest findings per account (and when it was first saved);
    /// `fail_saves` makes every save fail.
    #[derive(Default)]
    pub struct MemoryFindings {
        pub saved: Mutex<BTreeMap<String, (Vec<AccountFinding>, i64)>>,
        pub fail_saves: Mutex<bool>,
    }

    impl MemoryFindings {
        pub fn findings(&self, account: &str) -> Option<Vec<AccountFinding>> {
            let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
            saved.get(account).map(|(findings, _)| findings.clone())
        }
    }

    impl FindingStore for MemoryFindings {
        async fn previous(&self, account: &str) -> Result<PreviousAudit, PortError> {
            let saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
            Ok(saved
                .get(account)
                .map(|(findings, first)| PreviousAudit {
                    findings: findings.clone(),
                    first_audit: Some(*first),
                })
                .unwrap_or_default())
        }

        async fn save(&self, account: &str, findings: &[AccountFinding], at: i64) -> Result<(), PortError> {
            if *self.fail_saves.lock().unwrap_or_else(|e| e.into_inner()) {
                return Err(PortError::new("dynamodb", "PutItem audit part: throttled", true));
            }
            let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
            let first = saved.get(account).map_or(at, |(_, first)| *first);
            saved.insert(account.to_owned(), (findings.to_vec(), first));
            Ok(())
        }
    }
}
