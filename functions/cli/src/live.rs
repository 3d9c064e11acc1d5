//! `diagnose --live`: each event's account read from IAM the first time one of its events
//! is diagnosed (the caller's own account with the caller's credentials, another through
//! `--read-role`), once per run, by the reader `oidc-watch snapshot` and `audit --live` use.

use std::collections::HashMap;

use diagnosis::AccountSnapshot;
use oidc_watch_aws::account_snapshot::{read_account_snapshot, ReadRole, RoleSelection};

const SESSION_NAME: &str = "oidc-watch-diagnose";
const PERMISSIONS: &str = "sts:GetCallerIdentity, iam:ListRoles, iam:ListOpenIDConnectProviders and iam:GetOpenIDConnectProvider (and sts:AssumeRole on the read role of other accounts)";

pub struct LiveAccounts {
    runtime: tokio::runtime::Runtime,
    config: aws_config::SdkConfig,
    read_role: String,
    /// `None`: the account could not be read (said once on stderr); its events are
    /// diagnosed from the event alone.
    read: HashMap<String, Option<AccountSnapshot>>,
}

impl LiveAccounts {
    pub fn new(read_role: String) -> std::io::Result<LiveAccounts> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let config = runtime.block_on(crate::snapshot::sdk_config());
        Ok(LiveAccounts {
            runtime,
            config,
            read_role,
            read: HashMap::new(),
        })
    }

    /// The account, read now if it was not yet; `None` when it cannot be read.
    pub fn account(&mut self, id: &str) -> Option<&AccountSnapshot> {
        if !self.read.contains_key(id) {
            let snapshot = self.fetch(id);
            self.read.insert(id.to_owned(), snapshot);
        }
        self.read.get(id).and_then(Option::as_ref)
    }

    fn fetch(&self, id: &str) -> Option<AccountSnapshot> {
        let via = ReadRole {
            account: id.to_owned(),
            role_name: self.read_role.clone(),
            session_name: SESSION_NAME.to_owned(),
        };
        let file = self.runtime.block_on(read_account_snapshot(
            &self.config,
            Some(&via),
            RoleSelection::All,
        ));
        match file.map(AccountSnapshot::from_file) {
            Ok(Ok(snapshot)) => Some(snapshot),
            Ok(Err(error)) => {
                eprintln!("oidc-watch: account {id}: IAM answered with an unusable account: {error}");
                None
            }
            Err(error) => {
                eprintln!(
                    "oidc-watch: account {id}: {}; its events are diagnosed from the event alone",
                    crate::snapshot::aws_error(&error, PERMISSIONS)
                );
                None
            }
        }
    }
}
