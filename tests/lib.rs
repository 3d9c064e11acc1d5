//! Helpers shared by the workspace tests: where the sample files are, and loading them.

use std::path::{Path, PathBuf};

use diagnosis::AccountSnapshot;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub fn events_dir() -> PathBuf {
    repo_root().join("events")
}

/// Every file below `dir` whose name ends with one of `extensions`, sorted.
pub fn files_below(dir: &Path, extensions: &[&str]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if extensions.iter().any(|e| path.to_string_lossy().ends_with(e)) {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The account snapshots shipped in `events/accounts/`.
pub fn sample_accounts() -> Vec<AccountSnapshot> {
    files_below(&events_dir().join("accounts"), &[".json"])
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            AccountSnapshot::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// `subject-mismatch` -> `SubjectMismatch`
pub fn pascal_case(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map_or(String::new(), |first| first.to_uppercase().chain(chars).collect())
        })
        .collect()
}
