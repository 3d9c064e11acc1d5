//! The workspace tests' own paths. What they share with the tests of the crates (where the
//! sample files are, the walker over `events/`, the snapshots, the builders) is
//! `diagnosis::testing`.

use std::path::{Path, PathBuf};

/// `tests/data/real-events/`: the real, public CloudTrail records.
pub fn real_events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/real-events")
}
