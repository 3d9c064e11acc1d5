"""End-to-end tests of `oidc-watch diagnose --emit-metrics`: the prebuilt CLI writes the
replayed events as the monitor's metrics, its ledger in a state table on moto 5.2.5's
DynamoDB (server mode, loopback), its PutMetricData calls to the CloudWatch stand-in
(tests/standins/cloudwatch.py: moto serves no CloudWatch to the current SDK's protocol).
Checked: the data are the JSON output's counts at the events' own minutes, a second run over
the same range writes nothing, a refused PutMetricData gives its minutes back so the next
run writes them, and events older than CloudWatch takes are skipped with a count.

Run it through the harness (venv, moto, cleanup), selecting only this file's tests:
    cargo build -p oidc-monitor -p oidc-notifier -p oidc-watch
    tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k cli_backfill
Every wait is bounded; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest

from test_cli_s3 import cli_env, scenario_records
from test_cli_snapshot import CLI, EVENTS, MOTO_URL, ROOT, moto, script  # noqa: F401  (the fixture)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "standins"))
from cloudwatch import CloudWatchStandIn  # noqa: E402

TABLE = "oidc-watch-backfill-e2e"
NAMESPACE = "OidcWatch/e2e"


def ddb():
    import boto3
    from botocore.config import Config
    return boto3.client("dynamodb", endpoint_url=MOTO_URL, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))


def iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def table(moto):
    script("moto.sh", "reset", timeout=30)
    ddb().create_table(
        TableName=TABLE,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST")
    return TABLE


@pytest.fixture
def cloudwatch():
    standin = CloudWatchStandIn()
    yield standin
    standin.close()


@pytest.fixture
def replay(tmp_path) -> tuple[Path, int]:
    """The scenario samples, re-timed into the last three hours (two per minute), and one
    event twenty days old: a JSON-lines file, and the number of recent events."""
    now = int(time.time())
    start = (now - 3 * 3600) // 60 * 60
    records = scenario_records()
    lines = []
    for n, record in enumerate(records):
        lines.append(json.dumps(dict(record, eventTime=iso(start + (n // 2) * 60 + 7))))
    old = dict(records[0], eventID="twenty-days-old", eventTime=iso(now - 20 * 86400))
    lines.append(json.dumps(old))
    path = tmp_path / "replay.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, len(records)


def run(replay_file: Path, cloudwatch: CloudWatchStandIn, table: str = TABLE) -> subprocess.CompletedProcess:
    env = cli_env(AWS_ENDPOINT_URL_CLOUDWATCH=cloudwatch.url, AWS_MAX_ATTEMPTS="1")
    return subprocess.run([str(CLI), "diagnose", str(replay_file), "--account", str(EVENTS / "accounts"),
                           "--format", "json", "--emit-metrics", "--state-table", table,
                           "--namespace", NAMESPACE],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def ledger() -> list[dict]:
    items = ddb().scan(TableName=TABLE)["Items"]
    return sorted((i for i in items if i["pk"]["S"].startswith("backfill#")), key=lambda i: i["pk"]["S"])


def totals(data: list[dict], name: str) -> Counter:
    """SampleCount of the metric's account-less, cause-less series, per minute."""
    out: Counter = Counter()
    for d in data:
        if d["MetricName"] == name and not d.get("Dimensions"):
            out[int(d["Timestamp"].timestamp())] += int(d["StatisticValues"]["SampleCount"])
    return out


def expected(stdout: str) -> tuple[Counter, Counter]:
    failures: Counter = Counter()
    successes: Counter = Counter()
    for line in stdout.splitlines():
        d = json.loads(line)
        if d["event_id"] == "twenty-days-old":
            continue
        minute = int(datetime.strptime(d["event_time"], "%Y-%m-%dT%H:%M:%SZ")
                     .replace(tzinfo=timezone.utc).timestamp()) // 60 * 60
        (failures if d["outcome"] == "Failure" else successes)[minute] += 1
    return failures, successes


def test_the_metrics_are_the_runs_counts_at_their_own_minutes_and_a_rerun_writes_nothing(table, cloudwatch, replay):
    replay_file, recent = replay
    first = run(replay_file, cloudwatch)
    assert first.returncode == 0, first.stderr
    failures, successes = expected(first.stdout)
    assert sum(failures.values()) + sum(successes.values()) == recent
    data = cloudwatch.data()
    assert data and {d["Namespace"] for d in data} == {NAMESPACE}
    assert totals(data, "AssumeFailures") == failures
    assert totals(data, "AssumeSuccesses") == successes
    by_cause = Counter()
    for d in data:
        if d["MetricName"] == "AssumeFailures" and [x["Name"] for x in d.get("Dimensions", [])] == ["Cause"]:
            by_cause[d["Dimensions"][0]["Value"]] += int(d["StatisticValues"]["SampleCount"])
    assert by_cause == Counter(json.loads(l)["cause"] for l in first.stdout.splitlines()
                               if json.loads(l)["outcome"] == "Failure"
                               and json.loads(l)["event_id"] != "twenty-days-old")
    # A statistic set of ones: what the monitor's one datum per event adds up to.
    for d in data:
        s = d["StatisticValues"]
        assert s["Sum"] == s["SampleCount"] and s["Minimum"] == s["Maximum"] == 1.0, d
        assert d.get("Unit") == "Count", d
    assert "1 older than CloudWatch accepts (14 days)" in first.stderr, first.stderr
    claimed = ledger()
    assert claimed and all(i["sk"]["S"] == "backfill" and f"#{NAMESPACE}#" in i["pk"]["S"] for i in claimed)
    assert "expires_at" in claimed[0]

    calls = len(cloudwatch.calls)
    second = run(replay_file, cloudwatch)
    assert second.returncode == 0, second.stderr
    assert len(cloudwatch.calls) == calls, "a rerun over the same range sends nothing"
    assert "wrote 0 minute(s) (0 data)" in second.stderr, second.stderr
    assert f"{len(claimed)} minute(s) already written by an earlier run" in second.stderr, second.stderr
    assert second.stdout == first.stdout, "the diagnoses are the same with or without the ledger"


def test_a_refused_put_gives_its_minutes_back_and_the_next_run_writes_them(table, cloudwatch, replay):
    replay_file, _ = replay
    cloudwatch.refusing = True
    refused = run(replay_file, cloudwatch)
    assert refused.returncode == 1, refused.stderr
    assert cloudwatch.refused and not cloudwatch.calls
    assert "not written, a rerun retries them" in refused.stderr, refused.stderr
    assert "cloudwatch:PutMetricData" in refused.stderr, refused.stderr
    assert ledger() == [], "the claims of a refused batch are given back"

    cloudwatch.refusing = False
    healed = run(replay_file, cloudwatch)
    assert healed.returncode == 0, healed.stderr
    failures, successes = expected(healed.stdout)
    assert totals(cloudwatch.data(), "AssumeFailures") == failures
    assert totals(cloudwatch.data(), "AssumeSuccesses") == successes


def test_without_a_reachable_table_nothing_is_sent(table, cloudwatch, replay):
    replay_file, _ = replay
    proc = run(replay_file, cloudwatch, table="no-such-table")
    assert proc.returncode == 1, proc.stderr
    assert not cloudwatch.calls, "no minute is sent unless its claim was written"
    assert "dynamodb:PutItem" in proc.stderr, proc.stderr
    assert proc.stdout.count("\n") > 0, "the diagnoses still go to stdout"
