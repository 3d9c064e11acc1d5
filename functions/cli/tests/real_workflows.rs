//! `check-workflows` on twenty real public workflow files (README of the folder: source,
//! commit, licence). They are read where they lie, never copied or committed: a file is
//! checked alone, and files of one repository that call each other are checked together
//! through symbolic links in a temporary `.github/workflows/`.
//!
//! Each expectation is what GitHub's documentation implies: a job's `permissions` replaces
//! the workflow's, no block means no `id-token`, a block sets unlisted scopes to none,
//! `write-all` grants and `read-all` does not, a called workflow gets at most what its
//! caller grants; the `sub` is `repo:O/R:` + `environment:<name>` for a job with an
//! environment, else `pull_request` for pull-request events, else `ref:<the run's ref>`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

#[allow(dead_code)] // the stand-in helpers serve the other suites
mod common;
use common::{codes, subjects};

fn folder() -> Option<PathBuf> {
    let path = match std::env::var_os("OIDC_WATCH_REAL_WORKFLOWS") {
        Some(path) => PathBuf::from(path),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/real-workflows"),
    };
    if path.join("README.md").is_file() {
        Some(path)
    } else {
        println!("skipped: real workflows folder absent ({})", path.display());
        None
    }
}

/// One report as the test writes it down. `R` in a subject stands for `repo:OWNER/REPO`.
struct Expect {
    job: &'static str,
    line: u64,
    id_token: &'static str,
    environment: Option<&'static str>,
    /// The called job, for a caller's report.
    calls: Option<&'static str>,
    subjects: Vec<(&'static str, String, bool)>,
    findings: Vec<(&'static str, u64)>,
}

fn expect(job: &'static str, line: u64, id_token: &'static str) -> Expect {
    Expect {
        job,
        line,
        id_token,
        environment: None,
        calls: None,
        subjects: Vec::new(),
        findings: Vec::new(),
    }
}

impl Expect {
    fn env(mut self, name: &'static str) -> Self {
        self.environment = Some(name);
        self
    }
    fn calls(mut self, job: &'static str) -> Self {
        self.calls = Some(job);
        self
    }
    fn sub(mut self, trigger: &'static str, subject: impl Into<String>, certain: bool) -> Self {
        self.subjects.push((trigger, subject.into(), certain));
        self
    }
    fn finding(mut self, code: &'static str, line: u64) -> Self {
        self.findings.push((code, line));
        self
    }
}

fn check(paths: &[&Path], repository: &str) -> Vec<Value> {
    let output = Command::new(env!("CARGO_BIN_EXE_oidc-watch"))
        .arg("check-workflows")
        .args(paths)
        .args([
            "--repository",
            repository,
            "--default-branch",
            "main",
            "--format",
            "json",
        ])
        .output()
        .expect("run oidc-watch");
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{repository}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn assert_reports(name: &str, repository: &str, reports: &[Value], expected: &[Expect]) {
    let prefix = format!("repo:{repository}");
    assert_eq!(reports.len(), expected.len(), "{name}: {reports:#?}");
    for (report, want) in reports.iter().zip(expected) {
        let at = format!("{name} job {}", want.job);
        assert_eq!(report["job"], want.job, "{at}");
        assert_eq!(report["line"], want.line, "{at}");
        assert_eq!(report["id_token"], want.id_token, "{at}");
        assert_eq!(report["environment"].as_str(), want.environment, "{at}");
        assert_eq!(report["calls"]["job"].as_str(), want.calls, "{at}");
        let subjects = subjects(report);
        let wanted: Vec<(String, String, bool)> = want
            .subjects
            .iter()
            .map(|(t, s, c)| (t.to_string(), s.replacen('R', &prefix, 1), *c))
            .collect();
        assert_eq!(subjects, wanted, "{at}");
        let findings = codes(report);
        let wanted: Vec<(String, u64)> = want.findings.iter().map(|(c, l)| (c.to_string(), *l)).collect();
        assert_eq!(findings, wanted, "{at}");
    }
}

/// `OWNER__REPO__name.yml` checked alone.
fn alone(file: &str, expected: &[Expect]) {
    let Some(folder) = folder() else { return };
    let mut parts = file.split("__");
    let repository = format!("{}/{}", parts.next().unwrap(), parts.next().unwrap());
    let reports = check(&[&folder.join(file)], &repository);
    assert_reports(file, &repository, &reports, expected);
}

/// Files of one repository as its `.github/workflows/`, by symbolic link.
fn together(repository: &str, names: &[&str], expected: &[Expect]) {
    let Some(folder) = folder() else { return };
    let root = tempfile::tempdir().unwrap();
    let workflows = root.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let prefix = repository.replace('/', "__");
    for name in names {
        let source = folder.join(format!("{prefix}__{name}"));
        std::os::unix::fs::symlink(&source, workflows.join(name)).unwrap();
    }
    let reports = check(&[root.path()], repository);
    assert_reports(&format!("{repository} tree"), repository, &reports, expected);
}

#[test]
fn dependabot_autoapprove_block_without_id_token() {
    // permissions: {pull-requests: write} at the workflow: every other scope is none.
    alone(
        "aws-actions__configure-aws-credentials__dependabot-autoapprove.yml",
        &[expect("dependabot", 15, "missing")
            .sub("pull_request", "R:pull_request", true)
            .finding("id-token-missing", 3)],
    );
}

#[test]
fn powertools_python_publish_has_no_permissions_block() {
    // No block anywhere: the repository default never includes id-token.
    alone(
        "aws-powertools__powertools-lambda-python__publish.yml",
        &[expect("release", 99, "missing")
            .env("release")
            .sub("release", "R:environment:release", true)
            .sub("workflow_dispatch", "R:environment:release", true)
            .finding("id-token-missing", 99)
            .finding("environment-protection", 39)],
    );
}

#[test]
fn powertools_typescript_files_alone() {
    // permissions: {} at the workflow, id-token: write on the job.
    alone(
        "aws-powertools__powertools-lambda-typescript__layers_partitions.yml",
        &[expect("download", 77, "granted")
            .env("Prod (Readonly)")
            .sub("workflow_dispatch", "R:environment:Prod (Readonly)", true)
            .finding("environment-protection", 75)],
    );
    // Only workflow_call: what the job gets depends on its caller; the environment is an
    // expression of inputs nobody passed here.
    alone(
        "aws-powertools__powertools-lambda-typescript__layers_partitions_deploy.yml",
        &[expect("deploy", 56, "depends-on-caller")
            .env("${{ inputs.partition }} ${{ inputs.environment }}")
            .sub("workflow_call", "unknown", false)
            .finding("environment-protection", 32)],
    );
    // Every OIDC step is in a called workflow; alone, there is none.
    alone(
        "aws-powertools__powertools-lambda-typescript__publish_layer.yml",
        &[],
    );
    // Dispatched, its own block grants; called, its caller decides (caller unknown here).
    alone(
        "aws-powertools__powertools-lambda-typescript__update_ssm.yml",
        &[expect("typescript", 123, "granted")
            .env("SSM")
            .sub("workflow_dispatch", "R:environment:SSM", true)
            .sub("workflow_call", "unknown", false)
            .finding("environment-protection", 78)],
    );
}

#[test]
fn powertools_typescript_tree() {
    let deploy_env = "${{ inputs.partition }} ${{ inputs.environment }}";
    together(
        "aws-powertools/powertools-lambda-typescript",
        &[
            "layers_partitions.yml",
            "layers_partitions_deploy.yml",
            "publish_layer.yml",
            "update_ssm.yml",
        ],
        &[
            expect("download", 77, "granted")
                .env("Prod (Readonly)")
                .sub("workflow_dispatch", "R:environment:Prod (Readonly)", true)
                .finding("environment-protection", 75),
            // The callers grant id-token: write; the partition input is itself an
            // expression, so the environment name (and the subject) stays unknown.
            expect("deploy-gamma", 117, "granted")
                .env(deploy_env)
                .calls("deploy")
                .sub("workflow_dispatch", "unknown", false)
                .finding("environment-protection", 117),
            expect("deploy-prod", 132, "granted")
                .env(deploy_env)
                .calls("deploy")
                .sub("workflow_dispatch", "unknown", false)
                .finding("environment-protection", 132),
            expect("deploy", 56, "depends-on-caller")
                .env(deploy_env)
                .sub("workflow_dispatch", "unknown", false)
                .finding("environment-protection", 32),
            // publish_layer's update-ssm-prod grants only contents: read, so the called
            // job cannot get id-token: write, whatever its own block says.
            expect("update-ssm-prod", 92, "missing")
                .env("SSM")
                .calls("typescript")
                .sub("workflow_call", "unknown", false)
                .sub("workflow_dispatch", "R:environment:SSM", true)
                .finding("id-token-missing", 93)
                .finding("environment-protection", 92),
            expect("typescript", 123, "granted")
                .env("SSM")
                .sub("workflow_dispatch", "R:environment:SSM", true)
                .sub("workflow_call", "unknown", false)
                .finding("id-token-missing-from-caller", 123)
                .finding("environment-protection", 78),
        ],
    );
}

fn cdk_job(job: &'static str, line: u64, environment_line: u64) -> Expect {
    expect(job, line, "granted")
        .env("run-tests")
        .sub("pull_request_target", "R:environment:run-tests", true)
        .sub("merge_group", "R:environment:run-tests", true)
        .sub("workflow_dispatch", "R:environment:run-tests", true)
        .finding("environment-protection", environment_line)
}

#[test]
fn aws_cdk_cli_environment_overrides_every_trigger() {
    alone(
        "aws__aws-cdk-cli__integ.yml",
        &[
            cdk_job("integ_cli", 151, 98),
            cdk_job("integ_toolkit-lib", 283, 230),
            cdk_job("integ_telemetry", 405, 352),
            cdk_job("integ_init-templates", 524, 471),
            cdk_job("integ_tool-integrations", 657, 604),
        ],
    );
}

#[test]
fn karpenter_release_tag_filters_and_two_steps() {
    // Tag filters with GitHub's + and [] patterns: globs, not one literal. Each of the
    // two configure-aws-credentials steps is a report.
    let tags = |e: Expect| {
        e.sub("push", "R:ref:refs/tags/v[0-9]+.[0-9]+.[0-9]+", false)
            .sub("push", "R:ref:refs/tags/v[0-9]+.[0-9]+.[0-9]+-rc.[0-9]+", false)
            .sub(
                "push",
                "R:ref:refs/tags/v[0-9]+.[0-9]+.[0-9]+-alpha.[0-9]+",
                false,
            )
            .sub("push", "R:ref:refs/tags/v[0-9]+.[0-9]+.[0-9]+-beta.[0-9]+", false)
    };
    alone(
        "aws__karpenter-provider-aws__release.yaml",
        &[
            tags(expect("release", 33, "granted")),
            tags(expect("release", 41, "granted")),
        ],
    );
}

#[test]
fn s2n_tls() {
    alone(
        "aws__s2n-tls__codebuild.yml",
        &[expect("start", 40, "granted")
            .sub("push", "R:ref:refs/heads/main", true)
            .sub("pull_request_target", "R:pull_request", true)
            .sub("merge_group", "R:ref:refs/heads/gh-readonly-queue/main/*", false)],
    );
    // The workflow block lists contents and statuses only: no id-token.
    alone(
        "aws__s2n-tls__usage_guide.yml",
        &[expect("build-deploy", 50, "missing")
            .sub("push", "R:ref:refs/heads/main", true)
            .sub("pull_request", "R:pull_request", true)
            .finding("id-token-missing", 18)],
    );
}

const MOUNTPOINT_JOBS: [(&str, u64); 6] = [
    ("fs-test", 85),
    ("client-test", 151),
    ("fstab", 218),
    ("asan", 263),
    ("metrics", 316),
    ("test-rpm", 424),
];

#[test]
fn mountpoint_s3_files_alone() {
    let called: Vec<Expect> = MOUNTPOINT_JOBS
        .iter()
        .map(|(job, line)| expect(job, *line, "depends-on-caller").sub("workflow_call", "unknown", false))
        .collect();
    alone("awslabs__mountpoint-s3__integration.yml", &called);
    alone("awslabs__mountpoint-s3__integration_main.yml", &[]);
    alone("awslabs__mountpoint-s3__integration_pr.yml", &[]);
}

#[test]
fn mountpoint_s3_tree() {
    let main_runs = |e: Expect| {
        e.sub("push", "R:ref:refs/heads/main", true)
            .sub("push", "R:ref:refs/heads/wf-changes/**", false)
            .sub("merge_group", "R:ref:refs/heads/gh-readonly-queue/*", false)
            .sub("schedule", "R:ref:refs/heads/main", true)
            .sub("workflow_dispatch", "R:ref:refs/heads/main", true)
    };
    let mut expected: Vec<Expect> = MOUNTPOINT_JOBS
        .iter()
        .map(|(job, line)| {
            main_runs(expect(job, *line, "depends-on-caller")).sub(
                "pull_request_target",
                "R:pull_request",
                true,
            )
        })
        .collect();
    // Both callers grant id-token: write at their workflow. The environment the PR caller
    // passes belongs to the approval job, not to the jobs that assume the role.
    for (job, _) in MOUNTPOINT_JOBS {
        expected.push(main_runs(expect("integration", 25, "granted").calls(job)));
    }
    for (job, _) in MOUNTPOINT_JOBS {
        expected.push(expect("integration", 13, "granted").calls(job).sub(
            "pull_request_target",
            "R:pull_request",
            true,
        ));
    }
    together(
        "awslabs/mountpoint-s3",
        &["integration.yml", "integration_main.yml", "integration_pr.yml"],
        &expected,
    );
}

#[test]
fn brave_talk_environment_mapping() {
    alone(
        "brave__brave-talk__deploy-to-production-premium.yml",
        &[expect("deploy", 31, "granted")
            .env("production")
            .sub("push", "R:environment:production", true)
            .finding("environment-protection", 24)],
    );
}

#[test]
fn notification_terraform_write_all_on_pull_requests() {
    alone(
        "cds-snc__notification-terraform__terragrunt_plan_production.yml",
        &[expect("terragrunt-plan-production", 73, "granted")
            .sub("pull_request", "R:pull_request", true)
            .finding("fork-pull-request", 4)],
    );
}

#[test]
fn modernisation_platform() {
    alone(
        "ministryofjustice__modernisation-platform-github-actions__aws-secrets-management.yml",
        &[expect("retrieve-secrets", 68, "depends-on-caller").sub("workflow_call", "unknown", false)],
    );
    // Its only OIDC job is in another repository's workflow, outside the checked tree.
    alone("ministryofjustice__modernisation-platform__format-code.yml", &[]);
    // A called workflow's own block can only lower what the caller grants: contents: read
    // leaves no id-token, whoever calls it.
    alone(
        "ministryofjustice__modernisation-platform__reusable-securityhub-findings.yml",
        &[expect("main", 112, "missing")
            .sub("workflow_call", "unknown", false)
            .finding("id-token-missing", 39)],
    );
    // The job's block (pull-requests: write) replaces the workflow's id-token: write.
    let mut terraform = expect("terraform-plan", 51, "missing").env("${{ matrix.environment }}");
    for trigger in ["push", "pull_request", "workflow_dispatch"] {
        for environment in ["development", "preproduction", "production", "test"] {
            terraform = terraform.sub(trigger, format!("R:environment:{environment}"), true);
        }
    }
    alone(
        "ministryofjustice__modernisation-platform__terraform-member-environments.yml",
        &[terraform
            .finding("id-token-missing", 35)
            .finding("environment-protection", 33)],
    );
}

#[test]
fn opensearch_build_reusable_detect() {
    alone(
        "opensearch-project__opensearch-build__issue-dedupe-detect.yml",
        &[expect("detect", 42, "depends-on-caller").sub("workflow_call", "unknown", false)],
    );
}

#[test]
fn every_file_is_covered() {
    let Some(folder) = folder() else { return };
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    let source = include_str!("real_workflows.rs");
    for name in &names {
        let (_, short) = name.rsplit_once("__").unwrap();
        assert!(
            source.contains(name.as_str()) || source.contains(short),
            "{name} has no expectation"
        );
    }
    assert_eq!(names.len(), 20);
}
