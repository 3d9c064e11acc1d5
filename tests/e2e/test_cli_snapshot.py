"""End-to-end tests of `oidc-watch snapshot` against moto 5.2.5 in server mode on loopback.

moto holds the sample account 111122223333 (events/accounts/111122223333-github-acme.json,
seeded by seed.py with that account as home, so the IAM user's access key selects it), plus
one role that trusts no web identity. The prebuilt CLI (target/debug/oidc-watch, or
E2E_CLI_BINARY) runs with AWS_ENDPOINT_URL pointing at moto and that user's keys, and with
nothing of the machine's AWS configuration. What is checked is what a user gets: the
snapshot file, and the diagnoses made with it.

Run it through the harness (venv, moto, cleanup), selecting only this file's tests:
    cargo build -p oidc-monitor -p oidc-notifier -p oidc-watch
    tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k cli_snapshot
or, with moto already started by tests/e2e/moto.sh, from the e2e venv:
    target/test-venv/main/bin/python -m pytest -q -p no:cacheprovider tests/e2e/test_cli_snapshot.py

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

ACCOUNT = "111122223333"
SAMPLE = EVENTS / "accounts" / f"{ACCOUNT}-github-acme.json"
OTHER_ROLE = "ops-admin"  # trusts the account root: no web identity
TYPO_EVENT = EVENTS / "role-not-found" / "github-role-name-typo.json"


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


@pytest.fixture
def account(moto):
    """moto reset, then the sample account seeded as the home account: its IAM user's keys."""
    script("moto.sh", "reset", timeout=30)
    out = STATE / "cli-snapshot-seed.json"
    proc = subprocess.run(
        [str(VENV / "bin" / "python"), str(HERE / "seed.py"), "--endpoint", moto,
         "--home-account", ACCOUNT, "--read-role-name", "", "--out", str(out), str(SAMPLE)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seed = json.loads(out.read_text())
    credentials = seed["credentials"]
    iam = boto3_client("iam", credentials)
    iam.create_role(RoleName=OTHER_ROLE, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                       "Action": "sts:AssumeRole"}]}))
    return credentials


def boto3_client(service: str, credentials: dict):
    import boto3
    from botocore.config import Config
    return boto3.client(service, endpoint_url=MOTO_URL, region_name="us-east-1",
                        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))


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


def diagnoses(snapshot: Path) -> dict[str, dict]:
    """Every sample event of the account that names a role, diagnosed with `snapshot`, by
    event file (the directory is the expected cause)."""
    out = {}
    for path in sorted(EVENTS.rglob("*.json")):
        top = path.relative_to(EVENTS).parts[0]
        if top in ("accounts", "changes", "replay", "sns"):
            continue
        event = json.loads(path.read_text())
        if event.get("account") != ACCOUNT:
            continue
        proc = cli("diagnose", str(path), "--account", str(snapshot), "--format", "json")
        assert proc.returncode == 0, proc.stderr
        (d,) = [json.loads(line) for line in proc.stdout.splitlines()]
        if d["role_name"]:
            out[str(path.relative_to(EVENTS))] = d
    assert len(out) >= 20, sorted(out)
    return out


def test_cli_snapshot_of_the_account_diagnoses_like_the_shipped_snapshot(account, tmp_path):
    written = tmp_path / "snapshot.json"
    proc = cli("snapshot", "--output", str(written), credentials=account)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "", "with --output, nothing on stdout"
    assert f"account {ACCOUNT}" in proc.stderr, proc.stderr

    snapshot = json.loads(written.read_text())
    sample = json.loads(SAMPLE.read_text())
    assert snapshot["AccountId"] == ACCOUNT
    assert snapshot["Complete"] == {"Roles": True, "OpenIDConnectProviders": True}
    assert sorted(r["RoleName"] for r in snapshot["Roles"]) == sorted(r["RoleName"] for r in sample["Roles"])
    assert snapshot["RolesWithoutWebIdentity"] == [OTHER_ROLE]
    assert all(isinstance(r["AssumeRolePolicyDocument"], dict) for r in snapshot["Roles"])
    providers = {p["Url"]: sorted(p["ClientIDList"]) for p in snapshot["OpenIDConnectProviders"]}
    assert providers == {p["Url"]: sorted(p["ClientIDList"]) for p in sample["OpenIDConnectProviders"]}

    # Read back by the CLI: every sample gets the answer the shipped snapshot gives.
    from_moto, shipped = diagnoses(written), diagnoses(SAMPLE)
    assert from_moto.keys() == shipped.keys()
    for name, d in shipped.items():
        got = from_moto[name]
        for field in ("cause", "subject_mismatch", "confidence", "evidence", "failed_conditions"):
            assert got[field] == d[field], (name, field, got[field], d[field])
    typo = from_moto["role-not-found/github-role-name-typo.json"]
    assert (typo["cause"], typo["confidence"]) == ("RoleNotFound", "certain"), typo

    # A role the snapshot only names exists: not RoleNotFound.
    event = json.loads(TYPO_EVENT.read_text().replace("gha-deploy-prdo", OTHER_ROLE))
    event_file = tmp_path / "other-role.json"
    event_file.write_text(json.dumps(event))
    proc = cli("diagnose", str(event_file), "--account", str(written), "--format", "json")
    d = json.loads(proc.stdout)
    assert (d["cause"], d["confidence"]) == ("PrincipalMismatch", "probable"), d


def test_cli_snapshot_of_named_roles_records_the_missing_one(account, tmp_path):
    proc = cli("snapshot", "--roles", "gha-deploy-prod,gha-deploy-prdo", credentials=account)
    assert proc.returncode == 0, proc.stderr
    assert '"gha-deploy-prdo" (NoSuchEntity)' in proc.stderr, proc.stderr
    snapshot = json.loads(proc.stdout)
    assert [r["RoleName"] for r in snapshot["Roles"]] == ["gha-deploy-prod"]
    assert snapshot["Complete"] == {"Roles": ["gha-deploy-prod", "gha-deploy-prdo"],
                                    "OpenIDConnectProviders": True}
    written = tmp_path / "named.json"
    written.write_text(proc.stdout)
    d = diagnoses(written)
    assert (d["role-not-found/github-role-name-typo.json"]["cause"],
            d["role-not-found/github-role-name-typo.json"]["confidence"]) == ("RoleNotFound", "certain")
    # A role that was not asked for is unknown, not missing.
    branch = d["subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"]
    assert branch["cause"] != "RoleNotFound" and branch["confidence"] == "unknown", branch


def test_cli_snapshot_authorization_details_alone_prove_no_provider_missing(account, tmp_path):
    """What `aws iam get-account-authorization-details --filter Role` writes (no providers:
    that call never returns them) is roles only, and is diagnosed as such."""
    iam = boto3_client("iam", account)
    details: dict = {"RoleDetailList": []}
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=["Role"]):
        details["RoleDetailList"].extend(page.get("RoleDetailList", []))
    assert len(details["RoleDetailList"]) >= 20
    written = tmp_path / "authorization-details.json"
    written.write_text(json.dumps(details, default=str))

    roles_only, complete = diagnoses(written), diagnoses(SAMPLE)
    denied = 0
    for name, d in roles_only.items():
        if d["error_code"] != "AccessDenied":
            continue
        denied += 1
        assert d["cause"] not in ("OidcProviderMissing", "AudienceNotInProvider",
                                  "ThumbprintMismatch", "RoleNotFound"), (name, d["explanation"])
        assert d["confidence"] != "certain", (name, d["explanation"])
        if complete[name]["cause"] != "RoleNotFound":
            assert d["cause"] == complete[name]["cause"], (name, d["explanation"])
            assert "does not list its OIDC providers" in d["explanation"], d["explanation"]
    assert denied >= 15


def test_cli_snapshot_without_credentials_fails_clearly(moto, tmp_path):
    env_less = cli("snapshot", "--output", str(tmp_path / "s.json"))
    assert env_less.returncode == 2, env_less.stderr
    assert "No usable AWS credentials" in env_less.stderr, env_less.stderr
    assert "panicked" not in env_less.stderr
    assert not (tmp_path / "s.json").exists()


def test_diagnose_live_reads_the_account_from_iam_and_diagnoses_like_the_snapshot(account):
    """`diagnose --live`: the account's roles and providers come from IAM (moto), not from a
    file, and every diagnosis is the one the shipped snapshot gives. (moto lets any
    AssumeRole succeed, so an unreachable other account is not something it can show.)"""
    mine = [p for p in sorted(EVENTS.rglob("*.json")) if p.relative_to(EVENTS).parts[0] not in
            ("accounts", "changes", "replay", "sns") and json.loads(p.read_text()).get("account") == ACCOUNT]
    assert len(mine) >= 20
    live = cli("diagnose", *map(str, mine), "--live", "--format", "json", credentials=account)
    offline = cli("diagnose", *map(str, mine), "--account", str(SAMPLE), "--format", "json")
    assert live.returncode == 0 and offline.returncode == 0, (live.stderr, offline.stderr)
    got = {json.loads(l)["event_id"]: json.loads(l) for l in live.stdout.splitlines()}
    want = {json.loads(l)["event_id"]: json.loads(l) for l in offline.stdout.splitlines()}
    assert set(got) == set(want)
    for event_id, d in want.items():
        assert (got[event_id]["cause"], got[event_id]["evidence"], got[event_id]["suggested_change"]) == (
            d["cause"], d["evidence"], d["suggested_change"]), event_id
    assert any(d["evidence"] == "account-snapshot" for d in got.values())
