"""End-to-end tests of `oidc-watch audit --live` against moto 5.2.5 in server mode on loopback.

moto holds the sample accounts 111122223333 (GitHub roles, the home account: its IAM user's
keys select it) and 444455556666 (EKS roles, with the read role `oidc-watch-read` that the
home account may assume), seeded by seed.py; the test adds roles of its own to the home
account. The prebuilt CLI (target/debug/oidc-watch, or E2E_CLI_BINARY) runs with
AWS_ENDPOINT_URL pointing at moto and that user's keys, with nothing of the machine's AWS
configuration, and without GitHub (--no-github). What is checked is what a user gets: the
findings, one JSON line each, and the exit code.

Run it through the harness (venv, moto, cleanup), selecting only this file's tests:
    cargo build -p oidc-monitor -p oidc-notifier -p oidc-watch
    tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k cli_audit
    (run.sh lists the test files it runs; add tests/e2e/test_cli_audit.py there)
or, with moto already started by tests/e2e/moto.sh, from the e2e venv:
    target/test-venv/main/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_cli_audit.py

Every test starts from `moto.sh reset` and a fresh seed; every wait is bounded; nothing
leaves 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EVENTS = ROOT / "events"
STATE = Path(os.environ.get("E2E_STATE", ROOT / "target" / "e2e"))
VENV = Path(os.environ.get("E2E_VENV", ROOT / "target" / "test-venv" / "main"))
MOTO_PORT = int(os.environ.get("E2E_MOTO_PORT", "5055"))
MOTO_URL = f"http://127.0.0.1:{MOTO_PORT}"
CLI = Path(os.environ.get("E2E_CLI_BINARY", ROOT / "target" / "debug" / "oidc-watch")).resolve()

HOME = "111122223333"
MEMBER = "444455556666"
READ_ROLE = "oidc-watch-read"
GITHUB = "token.actions.githubusercontent.com"
SNAPSHOTS = [EVENTS / "accounts" / f"{HOME}-github-acme.json", EVENTS / "accounts" / f"{MEMBER}-eks-platform.json"]


def script(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, E2E_STATE=str(STATE), E2E_VENV=str(VENV), E2E_MOTO_PORT=str(MOTO_PORT))
    proc = subprocess.run([str(HERE / args[0]), *args[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc


@pytest.fixture(scope="session")
def moto():
    if not CLI.is_file():
        pytest.fail(f"no CLI binary at {CLI}: cargo build -p oidc-watch")
    started = False
    if script("moto.sh", "status", check=False).returncode != 0:
        script("moto.sh", "start", timeout=60)
        started = True
    yield MOTO_URL
    if started:
        script("moto.sh", "stop", check=False, timeout=30)


def boto3_client(service: str, credentials: dict):
    import boto3
    from botocore.config import Config
    return boto3.client(service, endpoint_url=MOTO_URL, region_name="us-east-1",
                        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))


def trust(*subs: str, operator: str = "StringLike") -> str:
    condition = {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"}}
    if subs:
        condition[operator] = {f"{GITHUB}:sub": list(subs)}
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{HOME}:oidc-provider/{GITHUB}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": condition}]})


@pytest.fixture
def accounts(moto):
    """moto reset, both sample accounts seeded, and roles of the audit's own in the home
    account: one with no sub condition, one with an owner wildcard, one trusting a
    provider the account does not have, and a provider nobody trusts."""
    script("moto.sh", "reset", timeout=30)
    out = STATE / "cli-audit-seed.json"
    proc = subprocess.run(
        [str(VENV / "bin" / "python"), str(HERE / "seed.py"), "--endpoint", moto,
         "--home-account", HOME, "--read-role-name", READ_ROLE, "--out", str(out),
         *map(str, SNAPSHOTS)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    credentials = json.loads(out.read_text())["credentials"]
    iam = boto3_client("iam", credentials)
    iam.create_role(RoleName="audit-no-sub", AssumeRolePolicyDocument=trust())
    iam.create_role(RoleName="audit-owner-wildcard", AssumeRolePolicyDocument=trust("repo:*/web:*"))
    missing = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{HOME}:oidc-provider/gitlab.example.com"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {"gitlab.example.com:sub": "project_path:acme/web:ref_type:branch:ref:main"}}}]})
    iam.create_role(RoleName="audit-missing-provider", AssumeRolePolicyDocument=missing)
    iam.create_open_id_connect_provider(Url="https://unused.example.com", ClientIDList=["sts.amazonaws.com"],
                                        ThumbprintList=["0" * 40])
    return credentials


def cli(*args: str, credentials: dict | None = None) -> subprocess.CompletedProcess:
    """The binary with only the env a user on a clean machine would set."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(STATE),
        "TZ": "UTC",
        "AWS_CONFIG_FILE": str(STATE / "no-such-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(STATE / "no-such-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if credentials is not None:
        env.update(credentials)
        env.update({"AWS_ENDPOINT_URL": MOTO_URL, "AWS_REGION": "us-east-1"})
    return subprocess.run([str(CLI), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def findings(proc: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.splitlines()]


def codes_by_role(found: list[dict]) -> dict[str | None, set[str]]:
    out: dict[str | None, set[str]] = {}
    for f in found:
        out.setdefault(f["role"], set()).add(f["code"])
    return out


def test_cli_audit_live_reads_the_callers_account(accounts):
    proc = cli("audit", "--live", "--no-github", "--format", "json", credentials=accounts)
    assert proc.returncode == 1, proc.stderr  # high findings, --fail-on high
    found = findings(proc)
    assert found, proc.stderr
    assert {f["account"] for f in found} == {HOME}
    by_role = codes_by_role(found)
    assert "NoSubjectCondition" in by_role["audit-no-sub"], by_role
    assert "OwnerWildcard" in by_role["audit-owner-wildcard"], by_role
    assert "MissingProvider" in by_role["audit-missing-provider"], by_role
    unused = [f for f in found if f["code"] == "UnusedProvider"]
    assert [f["provider"] for f in unused] == ["unused.example.com"], unused
    for f in found:
        assert set(f) >= {"account", "role", "provider", "statement", "code", "severity", "message",
                          "suggested_change"}, f
        assert f["severity"] in ("high", "medium", "low")
    # The sample roles are audited too: every role of the account that trusts a provider.
    sample = json.loads(SNAPSHOTS[0].read_text())
    audited = {f["role"] for f in found if f["role"]}
    assert len(audited & {r["RoleName"] for r in sample["Roles"]}) >= 10, audited

    # --fail-on none: the same findings, exit 0.
    quiet = cli("audit", "--live", "--no-github", "--format", "json", "--fail-on", "none",
                credentials=accounts)
    assert quiet.returncode == 0, quiet.stderr
    assert len(findings(quiet)) == len(found)


def test_cli_audit_live_reads_other_accounts_through_the_read_role(accounts):
    proc = cli("audit", "--live", "--accounts", f"{HOME},{MEMBER}", "--read-role", READ_ROLE,
               "--no-github", "--format", "json", "--fail-on", "none", credentials=accounts)
    assert proc.returncode == 0, proc.stderr
    found = findings(proc)
    assert {f["account"] for f in found} == {HOME, MEMBER}, proc.stderr
    member = json.loads(SNAPSHOTS[1].read_text())
    member_roles = {r["RoleName"] for r in member["Roles"]}
    assert {f["role"] for f in found if f["account"] == MEMBER and f["role"]} <= member_roles
    # The home account's own roles were read with the caller's credentials.
    assert any(f["role"] == "audit-no-sub" and f["account"] == HOME for f in found)

    # The member's own EKS provider under its account: its IAM was read with the read
    # role's credentials (moto grants any AssumeRole, so a refused one cannot be shown here).
    member_urls = {p["Url"] for p in member["OpenIDConnectProviders"]}
    assert any(f["account"] == MEMBER and f["provider"] in member_urls for f in found), found
    assert not any(f["account"] == HOME and f["provider"] in member_urls for f in found), found

    bad = cli("audit", "--live", "--accounts", "4444-5555-6666", "--read-role", READ_ROLE,
              "--no-github", credentials=accounts)
    assert bad.returncode == 2 and "not an AWS account ID" in bad.stderr, bad.stderr


def test_cli_audit_live_without_credentials_fails_clearly(moto):
    proc = cli("audit", "--live", "--no-github")
    assert proc.returncode == 2, proc.stderr
    assert "No usable AWS credentials" in proc.stderr, proc.stderr
    assert "panicked" not in proc.stderr
