//! `oidc-watch check-workflows` on a repository of 200 workflow files, the whole process
//! (start, parse, check, write JSON): generated from the fixtures of tests/data/workflows.
//!
//! `cargo bench -p oidc-watch --bench check_workflows` (add `--profile dev` to measure the
//! debug binary without an optimised build).

use std::path::{Path, PathBuf};
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};

const FILES: usize = 200;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/workflows")
}

/// A repository whose `.github/workflows/` holds `FILES` files: the fixtures under their
/// own names (so local reusable-workflow calls resolve), then numbered copies.
fn repository() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    let workflows = root.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).expect("workflows dir");
    let source = fixtures().join("acme-web/.github/workflows");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&source)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    names.sort();
    for i in 0..FILES {
        let from = &names[i % names.len()];
        let name = from.file_name().and_then(|n| n.to_str()).expect("file name");
        let to = if i < names.len() {
            name.to_owned()
        } else {
            format!("copy-{i}-{name}")
        };
        std::fs::copy(from, workflows.join(to)).expect("copy fixture");
    }
    root
}

fn check(root: &Path, extra: &[&str]) {
    let output = Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .arg("check-workflows")
        .arg(root)
        .args([
            "--repository",
            "acme/web",
            "--default-branch",
            "main",
            "--format",
            "json",
        ])
        .args(extra)
        .output()
        .expect("run oidc-watch");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn bench(c: &mut Criterion) {
    let root = repository();
    let accounts = fixtures().join("accounts");
    let accounts = accounts.to_str().expect("utf-8 path");
    let mut group = c.benchmark_group("check-workflows");
    group.sample_size(20);
    group.bench_function("200 files", |b| b.iter(|| check(root.path(), &[])));
    group.bench_function("200 files with verdicts", |b| {
        b.iter(|| {
            check(
                root.path(),
                &[
                    "--account",
                    accounts,
                    "--role",
                    "DEPLOY_ROLE=arn:aws:iam::123456789012:role/gha-deploy",
                ],
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
