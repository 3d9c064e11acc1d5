//! Samples, snapshots, event builders and configuration shared by the monitor's tests.
#![allow(dead_code, unused_imports)] // each test file uses some of these

use std::path::{Path, PathBuf};

pub use diagnosis::testing::{at, events_dir, retry_of, sample_json as sample};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use diagnosis::ports::memory::{MemoryAccounts, MemoryAlerts, MemoryMetrics, MemoryState};
use diagnosis::AccountSnapshot;
use oidc_monitor::{Deps, Memo};
use oidc_watch_aws::config::Config;
use serde_json::Value;

pub const T0: i64 = 1_793_000_000;

/// Every `.json` file below `dir`, sorted.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    diagnosis::testing::files_below(dir, &[".json"])
}

pub fn accounts() -> Vec<AccountSnapshot> {
    diagnosis::testing::sample_accounts()
}

/// The `n`th retry of the job, as if `sub` had made the call.
pub fn with_subject(event: &Value, sub: &str, n: usize) -> Value {
    diagnosis::testing::with_subject(&retry_of(event, n), sub)
}

/// The monitor's configuration; `owners` is ALLOWED_OWNERS, empty for the default.
pub fn config(owners: &str) -> Config {
    Config::from_map(
        &[
            (
                "ALERT_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:oidc-watch-alerts",
            ),
            ("STATE_TABLE_NAME", "oidc-watch-state"),
            ("ALLOWED_OWNERS", owners),
            ("SPIKE_WINDOW_SECONDS", "300"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
    )
    .expect("config")
}

pub type TestDeps = Deps<MemoryAccounts, MemoryMetrics, MemoryAlerts, MemoryState>;

/// The handler on in-memory ports, with the account snapshots of `events/accounts/`.
/// `owners`: ALLOWED_OWNERS; empty for the zero-configuration default.
pub fn deps_owned_by(clock: Arc<AtomicI64>, owners: &str) -> TestDeps {
    Deps {
        config: config(owners),
        accounts: MemoryAccounts {
            accounts: accounts(),
            ..MemoryAccounts::default()
        },
        metrics: MemoryMetrics::default(),
        alerts: MemoryAlerts::default(),
        state: MemoryState::default(),
        clock: Box::new(move || clock.load(Ordering::SeqCst)),
        memo: Memo::default(),
    }
}
