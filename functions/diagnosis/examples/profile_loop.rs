//! Diagnoses every sample event N times: a target for `valgrind --tool=callgrind`.
use diagnosis::{diagnose, read_input, AccountSnapshot, InputItem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events");
    let mut files = Vec::new();
    let mut pending = vec![std::path::PathBuf::from(root)];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(dir)?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with("replay") {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    let (accounts, events): (Vec<_>, Vec<_>) = files
        .iter()
        .partition(|p| p.to_string_lossy().contains("/accounts/"));
    let accounts = accounts
        .iter()
        .map(|p| Ok(AccountSnapshot::from_json(&std::fs::read_to_string(p)?)?))
        .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?;
    let events = events
        .iter()
        .map(std::fs::read)
        .collect::<Result<Vec<Vec<u8>>, _>>()?;
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mut causes = 0usize;
    for _ in 0..rounds {
        for bytes in &events {
            for item in read_input(bytes) {
                if let Ok(InputItem::Event(event)) = item {
                    let account = accounts
                        .iter()
                        .find(|a| Some(&a.account_id) == event.envelope_account.as_ref());
                    causes += diagnose(&event, account).explanation.len();
                }
            }
        }
    }
    println!("{causes}");
    Ok(())
}
