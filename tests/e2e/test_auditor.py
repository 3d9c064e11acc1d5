"""End-to-end tests of oidc-auditor as a real Lambda process, against moto 5.2.5 on loopback.

moto holds the sample accounts 111122223333 (GitHub roles; the function's own account, whose
IAM user's keys the function runs with, with the topic, its SQS tap queue and the state
table) and 444455556666 (EKS roles, with the read role `oidc-watch-read` the home account
may assume), seeded by seed.py. The prebuilt binary (target/debug/oidc-auditor, or
E2E_AUDITOR_BINARY) runs under `cargo lambda watch` (lambda.sh) and gets the EventBridge
Scheduler payload; what is checked is what an operator sees: the function's answer, the
digest on the topic (read from the tap queue) and the findings kept in the state table;
and, for the digest, what oidc-notifier (E2E_NOTIFIER_BINARY) posts of it to the Slack
stand-in (tests/standins/chat.py), the auditor's instance stopped first (one watch server:
an invocation goes to whichever instance polls).

Run it through the harness (venv, moto, cleanup):
    cargo build -p oidc-monitor -p oidc-notifier -p oidc-watch -p oidc-auditor
    tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k auditor

Every test starts from `moto.sh reset`, a fresh seed and a fresh instance; every wait is
bounded; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EVENTS = ROOT / "events"
sys.path.insert(0, str(HERE))
import state as e2e_state  # noqa: E402  (tests/e2e/state.py: drain the tap queue, scan the table)

STATE = Path(os.environ.get("E2E_STATE", ROOT / "target" / "e2e"))
VENV = Path(os.environ.get("E2E_VENV", ROOT / "target" / "test-venv" / "main"))
MOTO_PORT = int(os.environ.get("E2E_MOTO_PORT", "5055"))
LAMBDA_PORT = int(os.environ.get("E2E_LAMBDA_PORT", "9055"))
MOTO_URL = f"http://127.0.0.1:{MOTO_PORT}"
BINARY = Path(os.environ.get("E2E_AUDITOR_BINARY", ROOT / "target" / "debug" / "oidc-auditor")).resolve()
NOTIFIER = Path(os.environ.get("E2E_NOTIFIER_BINARY", ROOT / "target" / "debug" / "oidc-notifier")).resolve()
INVOKE_TIMEOUT = int(os.environ.setdefault("E2E_INVOKE_TIMEOUT", "30"))

HOME = "111122223333"
MEMBER = "444455556666"
READ_ROLE = "oidc-watch-read"
TABLE = "oidc-watch-state"
GITHUB = "token.actions.githubusercontent.com"
SCHEDULE = {"source": "oidc-watch.audit-schedule"}
SNAPSHOTS = [EVENTS / "accounts" / f"{HOME}-github-acme.json", EVENTS / "accounts" / f"{MEMBER}-eks-platform.json"]


def env() -> dict:
    return dict(os.environ, E2E_STATE=str(STATE), E2E_VENV=str(VENV), E2E_MOTO_PORT=str(MOTO_PORT),
                E2E_LAMBDA_PORT=str(LAMBDA_PORT), E2E_INVOKE_TIMEOUT=str(INVOKE_TIMEOUT))


def script(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(HERE / args[0]), *args[1:]], cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc


@pytest.fixture(scope="session")
def moto():
    if not (BINARY.is_file() and os.access(BINARY, os.X_OK)):
        pytest.fail(f"no auditor binary at {BINARY}: cargo build -p oidc-auditor")
    started = False
    if script("moto.sh", "status", check=False).returncode != 0:
        script("moto.sh", "start", timeout=60)
        started = True
    yield MOTO_URL
    script("lambda.sh", "stop", check=False, timeout=60)
    if started:
        script("moto.sh", "stop", check=False, timeout=30)


class Auditor:
    """One seeded moto and one auditor instance auditing both accounts."""

    def __init__(self, seed: dict, log: Path):
        self.seed, self.log = seed, log
        self.sqs, self.ddb = e2e_state.clients(seed)

    def invoke(self, payload) -> subprocess.CompletedProcess:
        path = STATE / "auditor-tests" / f"event-{uuid.uuid4().hex}.json"
        path.write_text(json.dumps(payload))
        try:
            return subprocess.run([str(HERE / "lambda.sh"), "invoke", str(path)], cwd=ROOT, env=env(),
                                  capture_output=True, text=True, timeout=INVOKE_TIMEOUT + 20)
        finally:
            path.unlink(missing_ok=True)

    def run(self, payload=None) -> dict:
        proc = self.invoke(SCHEDULE if payload is None else payload)
        assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr[-2000:]}\n{self.log.read_text()[-3000:]}"
        return json.loads(proc.stdout)

    def envelopes(self) -> list[dict]:
        """The raw SQS bodies of the tap queue (SNS notification JSON), deleted as read."""
        out = []
        for _ in range(100):
            messages = self.sqs.receive_message(QueueUrl=self.seed["queue_url"], MaxNumberOfMessages=10,
                                                WaitTimeSeconds=0, VisibilityTimeout=30).get("Messages", [])
            if not messages:
                break
            for m in messages:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.seed["queue_url"], ReceiptHandle=m["ReceiptHandle"])
        return out

    def digests(self) -> list[dict]:
        """The alerts on the topic since the last call (the Amazon Q notification of each)."""
        out = []
        for alert in e2e_state.drain(self.sqs, self.seed["queue_url"], keep=False):
            message = alert["message"]
            assert isinstance(message, dict), alert
            out.append(message)
        return out

    def iam(self):
        return self.client("iam")

    def client(self, service: str):
        import boto3
        from botocore.config import Config
        creds = self.seed["credentials"]
        return boto3.client(service, endpoint_url=MOTO_URL, region_name="us-east-1",
                            aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
                            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))


@pytest.fixture
def auditor(moto, request):
    script("lambda.sh", "stop-instances", check=False, timeout=60)
    script("moto.sh", "reset", timeout=30)
    out = STATE / "auditor-seed.json"
    proc = subprocess.run(
        [str(VENV / "bin" / "python"), str(HERE / "seed.py"), "--endpoint", moto,
         "--home-account", HOME, "--read-role-name", READ_ROLE, "--out", str(out),
         *map(str, SNAPSHOTS)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seed = json.loads(out.read_text())
    log = STATE / "auditor-tests" / f"{request.node.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    creds = seed["credentials"]
    script("lambda.sh", "start", str(BINARY), str(log),
           f"AWS_ACCESS_KEY_ID={creds['AWS_ACCESS_KEY_ID']}",
           f"AWS_SECRET_ACCESS_KEY={creds['AWS_SECRET_ACCESS_KEY']}",
           f"ALERT_TOPIC_ARN={seed['topic_arn']}", f"STATE_TABLE_NAME={TABLE}",
           f"AUDIT_ACCOUNTS={HOME},{MEMBER}", f"READ_ROLE_NAME={READ_ROLE}",
           "AWS_LAMBDA_LOG_FORMAT=JSON", timeout=90)
    a = Auditor(seed, log)
    a.digests()  # nothing before the first run
    yield a
    script("lambda.sh", "stop-instances", check=False, timeout=60)


def digest_of(message: dict) -> dict:
    context = message["metadata"]["additionalContext"]
    assert context["kind"] == "audit-digest", context
    assert all(isinstance(v, str) for v in context.values()), "Amazon Q wants a string map"
    return json.loads(context["digest"])


def keyed(findings: list[dict]) -> set[tuple]:
    return {(f["account"], f["role"], f["code"]) for f in findings}


def test_auditor_digests_the_first_run_stays_silent_then_names_a_trust_change(auditor):
    # First run: every finding of both accounts is new, in one digest.
    first = auditor.run()
    assert first["published"] is True, first
    by_account = {a["account"]: a for a in first["accounts"]}
    assert set(by_account) == {HOME, MEMBER}, first
    for account in by_account.values():
        assert account["error"] is None and account["findings"] > 0, account
        assert account["new"] == account["findings"] and account["resolved"] == 0, account
    digests = auditor.digests()
    assert len(digests) == 1, digests
    digest = digest_of(digests[0])
    assert sorted(digest["accounts"]) == [HOME, MEMBER]
    total = sum(a["findings"] for a in first["accounts"])
    assert len(digest["new"]) + digest["truncated"]["new"] == total
    assert digest["resolved"] == [] and digest["unchanged"] == 0
    assert digests[0]["content"]["title"].startswith("Trust-policy audit: "), digests[0]["content"]
    # The findings are kept per account under audit#, within the table's key schema.
    kept = e2e_state.scan(auditor.ddb, TABLE, "audit#")
    assert {item["pk"] for item in kept} == {f"audit#{HOME}", f"audit#{MEMBER}"}, kept
    heads = {item["pk"]: item for item in kept if item["sk"] == "head"}
    assert int(heads[f"audit#{HOME}"]["findings"]) == by_account[HOME]["findings"]
    assert all("expires_at" in item for item in kept)

    # Second run, nothing changed: silent.
    second = auditor.run({})
    assert second["published"] is False, second
    assert all(a["new"] == 0 and a["resolved"] == 0 for a in second["accounts"]), second
    assert auditor.digests() == []

    # A trust policy changes: gha-deploy-prod now trusts any owner's "infra" repository.
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"Federated": f"arn:aws:iam::{HOME}:oidc-provider/{GITHUB}"},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"},
                      "StringLike": {f"{GITHUB}:sub": "repo:*/infra:ref:refs/heads/main"}}}]}
    auditor.iam().update_assume_role_policy(RoleName="gha-deploy-prod", PolicyDocument=json.dumps(policy))
    third = auditor.run()
    assert third["published"] is True, third
    home = next(a for a in third["accounts"] if a["account"] == HOME)
    assert home["new"] >= 1 and home["resolved"] >= 1, home
    digests = auditor.digests()
    assert len(digests) == 1, digests
    digest = digest_of(digests[0])
    assert (HOME, "gha-deploy-prod", "OwnerWildcard") in keyed(digest["new"]), digest["new"]
    assert (HOME, "gha-deploy-prod", "NameBasedSubject") in keyed(digest["resolved"]), digest["resolved"]
    assert all(f["account"] == HOME for f in digest["new"] + digest["resolved"]), digest
    assert digests[0]["metadata"]["additionalContext"]["severity"] == "high"
    assert digests[0]["id"].startswith("audit-digest:")
    # One generation of parts per account: the head's; the earlier ones were deleted.
    kept = e2e_state.scan(auditor.ddb, TABLE, "audit#")
    for pk in (f"audit#{HOME}", f"audit#{MEMBER}"):
        items = [item for item in kept if item["pk"] == pk]
        (head,) = [item for item in items if item["sk"] == "head"]
        generations = {item["sk"].split("#")[1] for item in items if item["sk"].startswith("g#")}
        assert generations == {f"{int(head['generation']):012}"}, (pk, generations, head)
        assert len(items) == 1 + int(head["parts"]), items


def test_auditor_refuses_what_is_not_its_schedule(auditor):
    proc = auditor.invoke({"source": "aws.events", "detail-type": "Scheduled Event"})
    assert proc.returncode == 1, proc
    assert "not an audit schedule event" in proc.stderr + proc.stdout
    assert auditor.digests() == []
    assert e2e_state.scan(auditor.ddb, TABLE, "audit#") == []


def test_the_notifier_posts_the_digest_to_slack(auditor):
    if not (NOTIFIER.is_file() and os.access(NOTIFIER, os.X_OK)):
        pytest.fail(f"no notifier binary at {NOTIFIER}: cargo build -p oidc-notifier")
    sys.path.insert(0, str(HERE.parent / "standins"))
    from chat import ChatStandIn  # tests/standins/chat.py: Slack on loopback
    from test_notifier import lambda_sns_event  # the SNS event Lambda hands a subscriber

    # A hostile value in a trust policy: what a policy says reaches Slack escaped.
    auditor.iam().create_role(RoleName="gha-hostile", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": f"arn:aws:iam::{HOME}:oidc-provider/{GITHUB}"},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{GITHUB}:aud": "sts.amazonaws.com"},
                          "StringLike": {f"{GITHUB}:sub": "repo:*<!channel>/web:*"}}}]}))
    assert auditor.run()["published"] is True
    (envelope,) = auditor.envelopes()
    assert envelope["MessageAttributes"]["kind"]["Value"] == "audit-digest"
    script("lambda.sh", "stop-instances", timeout=60)

    slack = ChatStandIn()
    try:
        creds = auditor.seed["credentials"]
        auditor.client("secretsmanager").create_secret(
            Name="oidc-watch/slack", SecretString=json.dumps({"webhook_url": slack.webhook_url}))
        log = STATE / "auditor-tests" / "notifier.log"
        log.unlink(missing_ok=True)
        script("lambda.sh", "start", str(NOTIFIER), str(log),
               f"AWS_ACCESS_KEY_ID={creds['AWS_ACCESS_KEY_ID']}",
               f"AWS_SECRET_ACCESS_KEY={creds['AWS_SECRET_ACCESS_KEY']}",
               f"STATE_TABLE_NAME={TABLE}", "SLACK_MODE=webhook", "SLACK_SECRET_ID=oidc-watch/slack",
               f"SLACK_API_URL={slack.api_url}", "METRICS_NAMESPACE=OidcWatch", "AWS_LAMBDA_LOG_FORMAT=JSON",
               timeout=90)
        proc = auditor.invoke(lambda_sns_event(envelope))
        assert proc.returncode == 0, f"{proc.stderr[-2000:]}\n{log.read_text()[-3000:]}"
        (d,) = json.loads(proc.stdout)["deliveries"]
        assert d["status"] == "posted" and d["kind"] == "audit-digest", d
        (request,) = slack.seen()
        body = request["body"]
        assert body["blocks"][0]["type"] == "header", body
        text = json.dumps(body)
        assert "Trust-policy audit" in body["text"], body["text"]
        for needle in ("OwnerWildcard", "gha-hostile", "&lt;!channel&gt;", "New findings", HOME, MEMBER):
            assert needle in text, (needle, text[:3000])
        assert "<!channel>" not in text
        # The same digest published again (a retried run) is posted once.
        again = auditor.invoke(lambda_sns_event(envelope))
        assert json.loads(again.stdout)["deliveries"][0]["status"] == "duplicate", again.stdout
        assert len(slack.seen()) == 1
    finally:
        slack.close()
