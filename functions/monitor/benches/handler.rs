//! Warm time per event with a cached role: the handler's own work (parse, diagnose,
//! incident and counter bookkeeping, metric record, alert rendering) with in-memory ports,
//! so the figure is ours and not the network's. In AWS each event adds its DynamoDB and
//! SNS round trips on top.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diagnosis::ports::memory::{MemoryAccounts, MemoryAlerts, MemoryMetrics, MemoryState};
use diagnosis::AccountSnapshot;
use lambda_runtime::{Context, LambdaEvent};
use oidc_monitor::{handle, Deps, Memo};
use oidc_watch_aws::config::Config;
use serde_json::{json, Value};

fn events_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn load(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(events_dir().join(path)).expect("sample")).expect("json")
}

fn bench_handler(c: &mut Criterion) {
    let accounts: Vec<AccountSnapshot> = std::fs::read_dir(events_dir().join("accounts"))
        .expect("accounts")
        .flatten()
        .map(|e| {
            AccountSnapshot::from_json(&std::fs::read_to_string(e.path()).expect("read")).expect("snapshot")
        })
        .collect();
    let env = [
        ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:1:t"),
        ("STATE_TABLE_NAME", "t"),
        ("ALLOWED_OWNERS", "acme"),
    ];
    let deps = Deps {
        config: Config::from_map(&env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
            .expect("config"),
        accounts: MemoryAccounts {
            accounts,
            ..MemoryAccounts::default()
        },
        metrics: MemoryMetrics::default(),
        alerts: MemoryAlerts::default(),
        state: MemoryState::default(),
        clock: Box::new(|| 1_793_000_000),
        memo: Memo::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let failure = load("subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json");
    let success = load("none/github-push-main-success.json");
    let counter = AtomicUsize::new(0);
    let mut group = c.benchmark_group("monitor");
    group.throughput(Throughput::Elements(1));
    for (name, template) in [("warm-failure-retry", &failure), ("warm-success", &success)] {
        group.bench_function(name, |b| {
            b.to_async(&runtime).iter(|| {
                let mut event = template.clone();
                let n = counter.fetch_add(1, Ordering::Relaxed);
                event["detail"]["eventID"] = json!(format!("bench-{n}"));
                let deps = &deps;
                async move {
                    let outcome = handle(LambdaEvent::new(event, Context::default()), deps)
                        .await
                        .expect("handled");
                    deps.metrics.records.lock().expect("lock").clear();
                    outcome
                }
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_handler);
criterion_main!(benches);
