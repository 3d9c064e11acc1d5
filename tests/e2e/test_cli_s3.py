"""End-to-end tests of `oidc-watch diagnose s3://...` against moto 5.2.5's S3 in server mode
on loopback: a trail's bucket (in eu-west-1, not the CLI's region) laid out as CloudTrail
writes it, AWSLogs/o-org/ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/<file>.json.gz, holding every
scenario sample (two accounts, three days, two regions), an other-service log file, a
digest file, a truncated gzip and an object that is not CloudTrail at all. The prebuilt CLI
(target/debug/oidc-watch, or E2E_CLI_BINARY) runs with AWS_ENDPOINT_URL pointing at moto and
nothing of the machine's AWS configuration. Checked: the diagnoses are the samples' own,
--since/--until/--accounts/--regions keep exactly the records of the folders they name, bad
objects are reported one by one while the rest go on.

Run it through the harness (venv, moto, cleanup), selecting only this file's tests:
    cargo build -p oidc-monitor -p oidc-notifier -p oidc-watch
    tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k cli_s3
Every wait is bounded; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest

from test_cli_snapshot import CLI, EVENTS, MOTO_URL, ROOT, STATE, moto, script  # noqa: F401  (the fixture)

BUCKET = "acme-org-trail"
PREFIX = "trail/AWSLogs/o-abcdefghij"
KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
NOT_SCENARIOS = {"accounts", "changes", "replay", "sns"}


def scenario_records() -> list[dict]:
    out = []
    for path in sorted(EVENTS.rglob("*.json")):
        if path.relative_to(EVENTS).parts[0] in NOT_SCENARIOS:
            continue
        doc = json.loads(path.read_text())
        out.append(doc.get("detail", doc))
    return out


def s3():
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=MOTO_URL, region_name="eu-west-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30,
                                      s3={"addressing_style": "path"}))


def log_file(records: list[dict]) -> bytes:
    return gzip.compress(json.dumps({"Records": records}).encode())


@pytest.fixture
def trail(moto):
    """The bucket, and which sample records went where: {(account, region, day): [ids]}."""
    script("moto.sh", "reset", timeout=30)
    client = s3()
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    records = scenario_records()
    placed: dict[tuple[str, str, str], list[str]] = {}
    days = ["2026/11/29", "2026/11/30", "2026/12/01"]
    for n, record in enumerate(records):
        account = "111122223333" if n % 2 == 0 else "444455556666"
        region = "us-east-1" if n % 3 else "eu-west-1"
        day = days[n % 3]
        placed.setdefault((account, region, day), []).append(record["eventID"])
    for (account, region, day), ids in placed.items():
        chosen = [r for r in records if r["eventID"] in ids]
        other = {"eventVersion": "1.08", "eventSource": "s3.amazonaws.com", "eventName": "GetObject",
                 "eventID": f"other-{account}-{region}-{day}", "awsRegion": region}
        key = (f"{PREFIX}/{account}/CloudTrail/{region}/{day}/"
               f"{account}_CloudTrail_{region}_{day.replace('/', '')}T0000Z_x.json.gz")
        client.put_object(Bucket=BUCKET, Key=key, Body=log_file(chosen + [other]))
        digest = f"{PREFIX}/{account}/CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_x.json.gz"
        client.put_object(Bucket=BUCKET, Key=digest, Body=b"\x1f\x8b not even gzip")
    # Broken objects in one day folder: a truncated gzip and something that is not CloudTrail.
    broken = f"{PREFIX}/111122223333/CloudTrail/us-east-1/2026/11/30/"
    client.put_object(Bucket=BUCKET, Key=broken + "truncated.json.gz", Body=log_file(records[:3])[:40])
    client.put_object(Bucket=BUCKET, Key=broken + "notes.json", Body=b"this is not JSON")
    return placed


def cli_env(**extra: str) -> dict[str, str]:
    """The CLI's environment: moto's endpoint and its keys, nothing of this machine's AWS
    configuration."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(STATE),
        "AWS_CONFIG_FILE": str(STATE / "no-such-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(STATE / "no-such-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": MOTO_URL,
        "AWS_REGION": "us-east-1",
        **KEYS,
        **extra,
    }


def diagnose(*args: str) -> tuple[subprocess.CompletedProcess, dict[str, dict]]:
    proc = subprocess.run([str(CLI), "diagnose", *args, "--account", str(EVENTS / "accounts"), "--format", "json"],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=120)
    out = {}
    for line in proc.stdout.splitlines():
        d = json.loads(line)
        out[d["event_id"]] = d
    return proc, out


def local_diagnoses() -> dict[str, dict]:
    proc = subprocess.run([str(CLI), "diagnose", *[str(p) for p in sorted(EVENTS.rglob("*.json"))
                                                    if p.relative_to(EVENTS).parts[0] not in NOT_SCENARIOS],
                           "--account", str(EVENTS / "accounts"), "--format", "json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {json.loads(l)["event_id"]: json.loads(l) for l in proc.stdout.splitlines()}


def test_the_whole_bucket_diagnoses_like_the_samples_and_bad_objects_are_reported(trail):
    proc, got = diagnose(f"s3://{BUCKET}/trail/")
    expected = local_diagnoses()
    assert set(got) == set(expected), (sorted(set(expected) - set(got)), proc.stderr[-2000:])
    for event_id, d in got.items():
        assert d == expected[event_id], event_id
    # Each bad object is named once, with what is wrong; the digest files are never read.
    assert proc.returncode == 1
    errors = [l for l in proc.stderr.splitlines() if l.startswith("oidc-watch: s3://")]
    assert any("truncated.json.gz" in l for l in errors), proc.stderr
    assert any("notes.json" in l for l in errors), proc.stderr
    assert not any("CloudTrail-Digest" in l for l in proc.stderr.splitlines()), proc.stderr
    assert len(errors) == 2, errors


def test_filters_prune_folders(trail):
    proc, got = diagnose(f"s3://{BUCKET}/trail/AWSLogs/", "--since", "2026-11-30", "--until", "2026-12-01",
                         "--accounts", "444455556666", "--regions", "us-east-1")
    want = set(trail.get(("444455556666", "us-east-1", "2026/11/30"), []))
    assert want, trail
    assert set(got) == want, (sorted(want ^ set(got)), proc.stderr[-1000:])
    assert proc.returncode == 0, proc.stderr


def test_a_missing_bucket_is_a_clear_error(trail):
    proc, got = diagnose("s3://no-such-bucket-here/AWSLogs/")
    assert got == {} and proc.returncode == 1
    assert "no-such-bucket-here" in proc.stderr and "HeadBucket" in proc.stderr, proc.stderr
