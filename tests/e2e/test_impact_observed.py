"""End-to-end test of the monitor's record of successful subjects and of `oidc-watch impact
--observed`, which judges a trust-policy change by those subjects, against moto 5.2.5 in
server mode on loopback.

The real oidc-monitor Lambda (prebuilt, under `cargo lambda watch`, as in test_monitor.py)
diagnoses two successes of our own jobs on role gha-deploy-web-app (account 111122223333,
read through the cross-account read role) and a failure of another role; then the prebuilt
CLI reads the state table with the home account's keys (AWS_ENDPOINT_URL pointing at moto,
nothing of the machine's AWS configuration) and judges a trust-policy change by those
subjects: a change that drops one breaks it (exit 1, naming it), the same policy is neutral
(exit 0).

Run it through the harness (venv, moto, cleanup), selecting only this file's tests:
    cargo build -p oidc-monitor -p oidc-notifier -p oidc-watch
    tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k observed
Every wait is bounded; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_monitor import (  # noqa: E402  (the monitor's harness and event builders)
    BRANCH_FAILURE, MOTO_URL, PUSH_SUCCESS, ROOT, STATE, TABLE, Harness, base_time, job, load)

CLI = Path(os.environ.get("E2E_CLI_BINARY", ROOT / "target" / "debug" / "oidc-watch")).resolve()
ACCOUNT = "111122223333"
ROLE = "gha-deploy-web-app"
MAIN = "repo:acme/web-app:ref:refs/heads/main"
PROD = "repo:acme/web-app:environment:prod"
DATA = ROOT / "tests" / "data" / "impact"
OLD = DATA / "old-policy.json"      # allows MAIN and PROD
NARROW = DATA / "narrow.json"       # allows MAIN only


@pytest.fixture
def monitor(request):
    if not CLI.is_file():
        pytest.fail(f"no CLI binary at {CLI}: cargo build -p oidc-watch")
    h = Harness()
    h.test_name = request.node.name
    h.start_moto()
    h.script("lambda.sh", "stop-instances", timeout=60)
    h.reset()
    h.start_instance()
    try:
        yield h
    finally:
        h.stop()


def impact(harness: Harness, *args: str) -> subprocess.CompletedProcess:
    """The CLI with the home account's keys (the state table's account) and moto's endpoint."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(STATE),
        "TZ": "UTC",
        "AWS_CONFIG_FILE": str(STATE / "no-such-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(STATE / "no-such-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": MOTO_URL,
        "AWS_REGION": "us-east-1",
        **harness.seed["credentials"],
    }
    return subprocess.run([str(CLI), "impact", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_impact_observed_judges_the_subjects_the_monitor_saw_succeed(monitor):
    t0 = base_time(10)
    success = load(PUSH_SUCCESS)
    for n, subject in enumerate([MAIN, PROD, MAIN]):
        invocation = monitor.invoke(job(success, subject=subject, at=t0 + n * 30))
        assert invocation.rc == 0, invocation
        assert invocation.event["cause"] == "None" and invocation.event["alerts"] == [], invocation
    # A failure of another role records nothing.
    failure = monitor.invoke(job(load(BRANCH_FAILURE), at=t0 + 100))
    assert failure.rc == 0 and failure.event["cause"] == "SubjectMismatch", failure

    # One item per subject, under the role's lower-cased name, expiring in about 90 days.
    items = monitor.table("success#")
    assert sorted(i["subject"] for i in items) == [PROD, MAIN], items
    now = time.time()
    for item in items:
        assert item["pk"] == f"success#{ACCOUNT}#{ROLE}", item
        assert 89 * 86_400 < int(item["expires_at"]) - now < 91 * 86_400, item
        assert item["audience"] == "sts.amazonaws.com", item
    main = next(i for i in items if i["subject"] == MAIN)
    # The instance wrote MAIN once: its second success within the hour was not written.
    assert int(main["first_seen"]) == int(main["last_seen"]) == t0, main

    # A change that drops PROD breaks a subject the monitor saw succeed: exit 1, naming it.
    narrow = impact(monitor, "--role", ROLE, "--old", str(OLD), "--policy", str(NARROW),
                    "--observed", TABLE, "--account-id", ACCOUNT, "--format", "json")
    assert narrow.returncode == 1, narrow.stderr
    report = json.loads(narrow.stdout)
    assert report["verdict"] == "breaks", report
    changes = {s["subject"]: s for s in report["subjects"]}
    assert changes[PROD]["change"] == "breaks" and changes[PROD]["origins"] == ["observed"], changes
    assert changes[PROD]["cause"] == "SubjectMismatch", changes[PROD]
    assert changes[MAIN]["change"] == "unchanged", changes[MAIN]
    text = impact(monitor, "--role", ROLE.upper(), "--old", str(OLD), "--policy", str(NARROW),
                  "--observed", TABLE, "--account-id", ACCOUNT)
    assert text.returncode == 1 and PROD in text.stdout, text.stdout + text.stderr

    # The same policy: nothing breaks, nothing is admitted.
    same = impact(monitor, "--role", ROLE, "--old", str(OLD), "--policy", str(OLD),
                  "--observed", TABLE, "--account-id", ACCOUNT, "--format", "json")
    assert same.returncode == 0, same.stdout + same.stderr
    assert json.loads(same.stdout)["verdict"] == "neutral"

    # The account from the snapshot instead of --account-id (the old policy is the
    # snapshot's, which allows MAIN only: PROD was denied before and after).
    snapshot = impact(monitor, "--role", ROLE, "--account", str(ROOT / "events" / "accounts" / f"{ACCOUNT}-github-acme.json"),
                      "--policy", str(NARROW), "--observed", TABLE, "--format", "json")
    assert snapshot.returncode == 0, snapshot.stdout + snapshot.stderr
    seen = {s["subject"]: s["change"] for s in json.loads(snapshot.stdout)["subjects"]}
    assert seen == {MAIN: "unchanged", PROD: "still-denied"}, seen


def test_impact_observed_without_an_account_or_with_a_missing_table_is_bad_input(monitor):
    no_account = impact(monitor, "--role", ROLE, "--old", str(OLD), "--policy", str(NARROW),
                        "--observed", TABLE)
    assert no_account.returncode == 2 and "--account-id" in no_account.stderr, no_account.stderr
    missing = impact(monitor, "--role", ROLE, "--old", str(OLD), "--policy", str(NARROW),
                     "--observed", "no-such-table", "--account-id", ACCOUNT)
    assert missing.returncode == 2 and "no-such-table" in missing.stderr, missing.stderr
