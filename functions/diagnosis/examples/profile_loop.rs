//! Diagnoses every sample event N times: a target for `valgrind --tool=callgrind`.
use diagnosis::testing::{sample_accounts, scenario_files, snapshot_for};
use diagnosis::{diagnose, read_input, InputItem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let accounts = sample_accounts();
    let events = scenario_files()
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
                    causes += diagnose(&event, snapshot_for(&accounts, &event))
                        .explanation
                        .len();
                }
            }
        }
    }
    println!("{causes}");
    Ok(())
}
