//! `--live`: the trust policies of the roles the jobs name, read from IAM with the caller's
//! credentials by `oidc-watch snapshot`'s own code (a snapshot of those roles, written to
//! a private temporary folder and read back).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use diagnosis::claims::role_name_of;
use diagnosis::AccountSnapshot;

use super::{CheckError, FileReport};

/// A folder only this process can use, removed when dropped.
struct PrivateDir(PathBuf);

impl PrivateDir {
    fn new() -> Result<PrivateDir, CheckError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("oidc-watch-live-{}-{nanos}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&path).map_err(|e| CheckError::Path {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(PrivateDir(path))
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The snapshot of the caller's account holding every role the reports name by ARN;
/// nothing to read gives no snapshot.
pub fn accounts(reports: &[FileReport]) -> Result<HashMap<String, AccountSnapshot>, CheckError> {
    let names: BTreeSet<String> = reports
        .iter()
        .flat_map(|f| &f.jobs)
        .filter_map(|j| role_name_of(j.role_arn.as_deref()?))
        .collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<String> = names.into_iter().collect();
    let dir = PrivateDir::new()?;
    let file = dir.0.join("snapshot.json");
    crate::snapshot::snapshot(Some(&names), Some(&file)).map_err(|e| CheckError::Live(e.to_string()))?;
    let text = std::fs::read_to_string(&file).map_err(|e| CheckError::Live(e.to_string()))?;
    let snapshot = AccountSnapshot::from_json(&text).map_err(|e| CheckError::Live(e.to_string()))?;
    Ok(HashMap::from([(snapshot.account_id.clone(), snapshot)]))
}
