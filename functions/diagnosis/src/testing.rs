//! What the tests, benchmarks and examples of every crate share: where the sample files of
//! `events/` are, reading them (scenario envelopes, account snapshots, SNS events), and the
//! builders that turn a sample into another job's call. Test code: a file that cannot be
//! read is a broken checkout, so these panic with the path instead of returning errors.
//!
//! ```text
//! events/<cause>/…, events/subject-mismatch/<kind>/…   scenario_files()  one envelope each
//! events/accounts/                                      sample_accounts()
//! events/replay/, events/sns/                           other inputs (see events/README.md)
//! ```

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::claims::Claims;
use crate::{diagnose, read_input, AccountSnapshot, Diagnosis, InputItem, WebIdentityEvent};

/// The directories of `events/` that hold something other than scenario envelopes.
pub const NOT_SCENARIOS: [&str; 4] = ["accounts", "changes", "replay", "sns"];

/// The repository's root directory.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `events/`.
pub fn events_dir() -> PathBuf {
    repo_root().join("events")
}

/// `events/sns/`: SNS events as Lambda hands them to oidc-notifier.
pub fn sns_dir() -> PathBuf {
    events_dir().join("sns")
}

/// Every file below `dir` whose name ends with one of `extensions`, sorted. A directory that
/// cannot be read yields nothing.
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

/// Every `.json` file of `events/`, whatever it holds.
pub fn event_files() -> Vec<PathBuf> {
    files_below(&events_dir(), &[".json"])
}

/// `path` relative to `events/`, with `/` separators.
pub fn relative_to_events(path: &Path) -> String {
    let relative = path.strip_prefix(events_dir()).unwrap_or(path);
    relative
        .iter()
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The scenario files: one EventBridge envelope each, under the directory that names its
/// cause (everything but [`NOT_SCENARIOS`]), sorted.
pub fn scenario_files() -> Vec<PathBuf> {
    event_files()
        .into_iter()
        .filter(|path| {
            let relative = relative_to_events(path);
            let top = relative.split('/').next().unwrap_or_default();
            !NOT_SCENARIOS.contains(&top)
        })
        .collect()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_at(path: &Path) -> Value {
    serde_json::from_slice(&read(path)).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `events/<relative>` as JSON.
pub fn sample_json(relative: &str) -> Value {
    json_at(&events_dir().join(relative))
}

/// The SNS event `events/sns/<name>`.
pub fn sns_event(name: &str) -> Value {
    json_at(&sns_dir().join(name))
}

/// The one `AssumeRoleWithWebIdentity` event of an envelope (or bare record).
pub fn event_of(envelope: &Value) -> WebIdentityEvent {
    let bytes = serde_json::to_vec(envelope).unwrap_or_default();
    match read_input(&bytes).into_iter().next() {
        Some(Ok(InputItem::Event(event))) => *event,
        other => panic!("not one AssumeRoleWithWebIdentity event: {other:?}"),
    }
}

/// The event of the scenario file `events/<relative>`.
pub fn sample_event(relative: &str) -> WebIdentityEvent {
    event_of(&sample_json(relative))
}

/// What [`read_input`] made of some input, counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputCounts {
    pub events: usize,
    pub skipped: usize,
    pub errors: usize,
}

/// `read_input(bytes)`, counted: web-identity events, records of other calls, errors.
pub fn input_counts(bytes: &[u8]) -> InputCounts {
    read_input(bytes)
        .iter()
        .fold(InputCounts::default(), |mut counts, item| {
            match item {
                Ok(InputItem::Event(_)) => counts.events += 1,
                Ok(InputItem::Skipped { .. }) => counts.skipped += 1,
                Err(_) => counts.errors += 1,
            }
            counts
        })
}

/// The claims of the scenario file `events/<relative>`.
pub fn sample_claims(relative: &str) -> Claims {
    Claims::from_event(&sample_event(relative))
}

/// The account snapshots of `events/accounts/`, sorted by file name.
pub fn sample_accounts() -> Vec<AccountSnapshot> {
    files_below(&events_dir().join("accounts"), &[".json"])
        .iter()
        .map(|path| {
            let text = String::from_utf8_lossy(&read(path)).into_owned();
            AccountSnapshot::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .collect()
}

/// The snapshot of `account_id` in `events/accounts/`.
pub fn sample_account(account_id: &str) -> AccountSnapshot {
    sample_accounts()
        .into_iter()
        .find(|a| a.account_id == account_id)
        .unwrap_or_else(|| panic!("no snapshot of {account_id} in events/accounts/"))
}

/// The snapshot an event is diagnosed with, as the CLI and oidc-monitor pick it: the one of
/// its account, if `accounts` has it.
pub fn snapshot_for<'a>(
    accounts: &'a [AccountSnapshot],
    event: &WebIdentityEvent,
) -> Option<&'a AccountSnapshot> {
    let account = event
        .record
        .recipient_account_id
        .as_deref()
        .filter(|a| !a.is_empty())
        .or(event.envelope_account.as_deref())?;
    accounts.iter().find(|a| a.account_id == account)
}

/// The diagnosis of an envelope with the snapshot of its account from `events/accounts/`.
pub fn diagnose_sample(envelope: &Value) -> Diagnosis {
    let event = event_of(envelope);
    let accounts = sample_accounts();
    diagnose(&event, snapshot_for(&accounts, &event))
}

/// The envelope as if `sub` had made the call: the subject in `userIdentity` (user name and
/// principal id) and, on a success, in `responseElements`.
pub fn with_subject(envelope: &Value, sub: &str) -> Value {
    let mut envelope = envelope.clone();
    let provider = envelope["detail"]["userIdentity"]["identityProvider"]
        .as_str()
        .unwrap_or_else(|| panic!("no userIdentity.identityProvider in {envelope}"))
        .to_owned();
    envelope["detail"]["userIdentity"]["userName"] = json!(sub);
    envelope["detail"]["userIdentity"]["principalId"] = json!(format!("{provider}:sts.amazonaws.com:{sub}"));
    if let Some(response) = envelope["detail"]["responseElements"].as_object_mut() {
        response.insert("subjectFromWebIdentityToken".into(), json!(sub));
    }
    envelope
}

/// The same job's envelope again: a new envelope id and event id, as each retry of the
/// action gets.
pub fn retry_of(envelope: &Value, n: usize) -> Value {
    let mut envelope = envelope.clone();
    envelope["id"] = json!(format!("retry-{n}"));
    envelope["detail"]["eventID"] = json!(format!("00000000-0000-4000-8000-{n:012}"));
    envelope
}

/// The envelope as if the call happened at `t` (epoch seconds).
pub fn at(mut envelope: Value, t: i64) -> Value {
    envelope["detail"]["eventTime"] = json!(crate::time::iso8601(t));
    envelope
}

/// `subject-mismatch` -> `SubjectMismatch`: a directory name of `events/` as the cause or
/// kind name it stands for.
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
