//! Throughput of the diagnosis pipeline, in events per second on one core.
//!
//! * `diagnose/*`: every scenario envelope under `events/` (one file = one event), with the
//!   account snapshots of `events/accounts/` parsed once up front ("snapshot cached").
//! * `replay/log-file`: one CloudTrail log file `{"Records": [...]}` built in memory:
//!   10,000 `AssumeRoleWithWebIdentity` records cycling the scenario records, plus 20%
//!   (2,000) unrelated S3 data events that `read_input` skips. Elements = the 10,000
//!   web-identity events.
//! * `evaluate/*`: trust-policy evaluation alone, one evaluation per element.
//!
//! Run: `cargo bench -p diagnosis --bench diagnose`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use diagnosis::evaluate::{evaluate, Decision, Request};
use diagnosis::policy::PolicyDocument;
use diagnosis::testing::{events_dir, input_counts, sample_accounts, scenario_files, snapshot_for};
use diagnosis::{diagnose, read_input, AccountSnapshot, InputItem, WebIdentityEvent};
use serde_json::{json, Value};

/// Web-identity records in the synthetic log file.
const LOG_FILE_EVENTS: usize = 10_000;
/// One unrelated record after every this many web-identity records (20%).
const UNRELATED_EVERY: usize = 5;

const GITHUB_PROVIDER: &str = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com";

/// The scenario envelopes and the account snapshots, read once.
struct Samples {
    /// Raw bytes of each scenario file, sorted by path.
    scenarios: Vec<Vec<u8>>,
    accounts: Vec<AccountSnapshot>,
}

impl Samples {
    fn load() -> Samples {
        let scenario_paths = scenario_files();
        assert!(
            !scenario_paths.is_empty(),
            "no scenario files below {}",
            events_dir().display()
        );
        let scenarios = scenario_paths
            .iter()
            .map(|p| std::fs::read(p).expect("readable event"))
            .collect();
        Samples {
            scenarios,
            accounts: sample_accounts(),
        }
    }

    /// The snapshot of the event's account, as the CLI picks it.
    fn snapshot_for(&self, event: &WebIdentityEvent) -> Option<&AccountSnapshot> {
        snapshot_for(&self.accounts, event)
    }

    /// The scenario events, parsed.
    fn parsed(&self) -> Vec<WebIdentityEvent> {
        self.scenarios.iter().flat_map(|bytes| events_of(bytes)).collect()
    }
}

fn events_of(bytes: &[u8]) -> Vec<WebIdentityEvent> {
    read_input(bytes)
        .into_iter()
        .filter_map(|item| match item.expect("sample input reads cleanly") {
            InputItem::Event(event) => Some(*event),
            InputItem::Skipped { .. } => None,
        })
        .collect()
}

/// `{"Records": [...]}`: `events` web-identity records taken in turn from the scenario
/// envelopes' `detail`, and one unrelated S3 data event after every `UNRELATED_EVERY`.
fn synthetic_log_file(samples: &Samples, events: usize) -> Vec<u8> {
    let details: Vec<Value> = samples
        .scenarios
        .iter()
        .map(|bytes| {
            let mut envelope: Value = serde_json::from_slice(bytes).expect("scenario is JSON");
            envelope["detail"].take()
        })
        .collect();
    let mut records = Vec::with_capacity(events + events / UNRELATED_EVERY);
    for i in 0..events {
        records.push(details[i % details.len()].clone());
        if (i + 1) % UNRELATED_EVERY == 0 {
            records.push(unrelated_record(i));
        }
    }
    serde_json::to_vec(&json!({ "Records": records })).expect("log file serializes")
}

/// A CloudTrail S3 `GetObject` data event, shaped like the real thing.
fn unrelated_record(i: usize) -> Value {
    json!({
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": "AROABTX3GSDSUCXH3BEVA:GitHubActions",
            "arn": "arn:aws:sts::111122223333:assumed-role/gha-deploy-web-app/GitHubActions",
            "accountId": "111122223333",
            "accessKeyId": "ASIABTX3GSDSEXAMPLE1",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROABTX3GSDSUCXH3BEVA",
                    "arn": "arn:aws:iam::111122223333:role/gha-deploy-web-app",
                    "accountId": "111122223333",
                    "userName": "gha-deploy-web-app"
                },
                "attributes": { "creationDate": "2026-10-06T14:20:00Z", "mfaAuthenticated": "false" }
            }
        },
        "eventTime": "2026-10-06T14:23:31Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "20.172.5.91",
        "userAgent": "[aws-cli/2.27.0 md/awscrt#0.26.1 ua/2.1 os/linux#6.11.0-1018-azure]",
        "requestParameters": {
            "bucketName": "acme-artifacts",
            "Host": "acme-artifacts.s3.us-east-1.amazonaws.com",
            "key": format!("builds/web-app/{i}/bundle.tar.gz")
        },
        "responseElements": null,
        "additionalEventData": {
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": 0,
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": "Zm9vYmFyYmF6",
            "bytesTransferredOut": 18342
        },
        "requestID": format!("6Q2X{i:012}"),
        "eventID": format!("0b7c1a4e-0000-4000-8000-{i:012}"),
        "readOnly": true,
        "resources": [
            { "type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::acme-artifacts/builds/web-app/{i}/bundle.tar.gz") },
            { "accountId": "111122223333", "type": "AWS::S3::Bucket", "ARN": "arn:aws:s3:::acme-artifacts" }
        ],
        "eventType": "AwsApiCall",
        "managementEvent": false,
        "recipientAccountId": "111122223333",
        "eventCategory": "Data",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": "acme-artifacts.s3.us-east-1.amazonaws.com"
        }
    })
}

fn bench_diagnose(c: &mut Criterion) {
    let samples = Samples::load();
    let parsed = samples.parsed();
    assert_eq!(
        parsed.len(),
        samples.scenarios.len(),
        "one event per scenario file"
    );

    let mut group = c.benchmark_group("diagnose");
    group.throughput(Throughput::Elements(parsed.len() as u64));

    group.bench_function("parse+classify", |b| {
        b.iter(|| {
            for bytes in &samples.scenarios {
                for item in read_input(black_box(bytes)) {
                    if let Ok(InputItem::Event(event)) = item {
                        black_box(diagnose(&event, samples.snapshot_for(&event)));
                    }
                }
            }
        })
    });

    group.bench_function("classify-only", |b| {
        b.iter(|| {
            for event in black_box(&parsed) {
                black_box(diagnose(event, samples.snapshot_for(event)));
            }
        })
    });

    group.bench_function("serialize-json", |b| {
        b.iter(|| {
            for bytes in &samples.scenarios {
                for item in read_input(black_box(bytes)) {
                    if let Ok(InputItem::Event(event)) = item {
                        let diagnosis = diagnose(&event, samples.snapshot_for(&event));
                        black_box(serde_json::to_vec(&diagnosis).expect("diagnosis serializes"));
                    }
                }
            }
        })
    });
    group.finish();

    let log_file = synthetic_log_file(&samples, LOG_FILE_EVENTS);
    let counts = input_counts(&log_file);
    assert_eq!(
        (counts.events, counts.skipped),
        (LOG_FILE_EVENTS, LOG_FILE_EVENTS / UNRELATED_EVERY),
        "log file"
    );

    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(LOG_FILE_EVENTS as u64));
    group.sample_size(20);
    group.bench_function("log-file", |b| {
        b.iter(|| {
            for item in read_input(black_box(&log_file)) {
                if let Ok(InputItem::Event(event)) = item {
                    black_box(diagnose(&event, samples.snapshot_for(&event)));
                }
            }
        })
    });
    // What a trail's file mostly holds: other calls. 2000 records, 5% web identity, as in
    // tests/bench/make-archive.py; the others are skipped on their names alone.
    let mostly_others = {
        let mut records: Vec<Value> = Vec::with_capacity(2000);
        let details: Vec<Value> = samples
            .scenarios
            .iter()
            .map(|bytes| serde_json::from_slice::<Value>(bytes).expect("scenario is JSON")["detail"].take())
            .collect();
        for i in 0..2000 {
            records.push(match i % 20 {
                0 => details[i % details.len()].clone(),
                _ => unrelated_record(i),
            });
        }
        serde_json::to_vec(&json!({ "Records": records })).expect("log file serializes")
    };
    group.throughput(Throughput::Bytes(mostly_others.len() as u64));
    group.bench_function("log-file-5pct-web-identity", |b| {
        b.iter(|| {
            for item in read_input(black_box(&mostly_others)) {
                if let Ok(InputItem::Event(event)) = item {
                    black_box(diagnose(&event, samples.snapshot_for(&event)));
                }
            }
        })
    });
    group.finish();
}

/// A GitHub trust statement for `subjects` of one repository.
fn github_statement(sid: &str, subjects: &[String]) -> Value {
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": { "Federated": GITHUB_PROVIDER },
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {
            "StringEquals": { "token.actions.githubusercontent.com:aud": "sts.amazonaws.com" },
            "StringLike": { "token.actions.githubusercontent.com:sub": subjects }
        }
    })
}

fn github_request(sub: &str) -> Request {
    serde_json::from_value(json!({
        "principal": GITHUB_PROVIDER,
        "action": "sts:AssumeRoleWithWebIdentity",
        "context": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": sub
        }
    }))
    .expect("request deserializes")
}

fn policy(statements: Vec<Value>) -> PolicyDocument {
    PolicyDocument::from_value(&json!({ "Version": "2012-10-17", "Statement": statements }))
        .expect("policy parses")
}

fn bench_evaluate(c: &mut Criterion) {
    // Allow main, release tags and the production environment; deny pull requests.
    let subjects = [
        "repo:acme/web-app:ref:refs/heads/main",
        "repo:acme/web-app:ref:refs/tags/v*",
        "repo:acme/web-app:environment:production",
    ]
    .map(str::to_owned);
    let github = policy(vec![
        github_statement("AllowDeploys", &subjects),
        json!({
            "Sid": "DenyPullRequests",
            "Effect": "Deny",
            "Principal": { "Federated": GITHUB_PROVIDER },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringLike": { "token.actions.githubusercontent.com:sub": "repo:acme/*:pull_request" }
            }
        }),
    ]);
    let allow = github_request("repo:acme/web-app:ref:refs/tags/v2.4.1");
    let deny = github_request("repo:acme/web-app:ref:refs/heads/feature/login-form");
    assert_eq!(evaluate(&github, &allow).decision, Decision::Allow);
    assert_eq!(evaluate(&github, &deny).decision, Decision::ImplicitDeny);

    // 20 repositories, one statement each; the request matches only the last.
    let many = policy(
        (0..20)
            .map(|n| {
                let repo = format!("repo:acme/service-{n:02}");
                let subjects = [
                    format!("{repo}:ref:refs/heads/main"),
                    format!("{repo}:ref:refs/tags/v*"),
                    format!("{repo}:environment:production"),
                ];
                github_statement(&format!("Service{n:02}"), &subjects)
            })
            .collect(),
    );
    let last = github_request("repo:acme/service-19:environment:production");
    assert_eq!(evaluate(&many, &last).decision, Decision::Allow);

    let mut group = c.benchmark_group("evaluate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("github-2-statements/allow", |b| {
        b.iter(|| evaluate(black_box(&github), black_box(&allow)))
    });
    group.bench_function("github-2-statements/deny", |b| {
        b.iter(|| evaluate(black_box(&github), black_box(&deny)))
    });
    group.bench_function("20-statements/allow-last", |b| {
        b.iter(|| evaluate(black_box(&many), black_box(&last)))
    });
    group.finish();
}

criterion_group!(benches, bench_diagnose, bench_evaluate);
criterion_main!(benches);
