"""End-to-end tests of oidc-notifier as a real Lambda process (tier 4 of the testing ladder,
docs/design.md).

What the notifier gets here is what oidc-monitor really published: once per session the
monitor (E2E_MONITOR_BINARY) runs on a few made-up events (two incidents, a probe, a foreign
success, a burst that spikes and re-alerts the spike, then a recovery), its SNS alerts land in
the tap queue, and each SQS body (the SNS notification JSON) becomes a Lambda SNS event
({"Records": [{"EventSource": "aws:sns", "Sns": {...}}]}). The prebuilt notifier
(E2E_NOTIFIER_BINARY) runs under `cargo lambda watch --only-lambda-apis` (lambda.sh) with its
Slack credential in moto's Secrets Manager (or an SSM SecureString), and posts to the chat
stand-in on 127.0.0.1 (tests/standins/chat.py, an http.server thread) that records every
request and can be told to answer 429 or 500.

Run it with tests/e2e/run.sh [monitor-binary] [notifier-binary] (venv, moto, cleanup), or from
the e2e venv: E2E_NOTIFIER_BINARY=target/debug/oidc-notifier pytest -q tests/e2e/test_notifier.py

One watch server: the monitor and the notifier never run at the same time (lambda.sh keeps one
watch server per E2E_STATE, and an invocation goes to whichever instance polls), so the
session fixture runs the monitor first and stops its instance; each test then starts from
`moto.sh reset` + the home resources (table, topic, queue) + its secret, a fresh Slack
stand-in and a fresh notifier instance. Every wait is bounded; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_monitor as tm  # noqa: E402  (the monitor tests' harness and event helpers)
import seed as e2e_seed  # noqa: E402  (tests/e2e/seed.py: the table, topic and queue)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "standins"))
from chat import ChatStandIn  # noqa: E402  (tests/standins/chat.py: Slack and Teams on loopback)
import state as e2e_state  # noqa: E402  (tests/e2e/state.py: table scans)

STATE = tm.STATE
MOTO_URL = tm.MOTO_URL
HOME_ACCOUNT = tm.HOME_ACCOUNT
TABLE = tm.TABLE
REGION = "us-east-1"
NOTIFIER = Path(os.environ.get("E2E_NOTIFIER_BINARY") or tm.ROOT / "target" / "debug" / "oidc-notifier").resolve()
LOGS = STATE / "notifier-tests"

SECRET_ID = "oidc-watch/slack"
PARAMETER = "/oidc-watch/slack-webhook"
CHANNEL = "C0E2EALERTS"
AUDIENCE_FAILURE = "audience-mismatch/github-owner-url-audience.json"  # a second cause
STRANGER = "repo:stranger/tool:ref:refs/heads/main"


# --------------------------------------------------------------------------------------------
# What the monitor published, as Lambda SNS events


def lambda_sns_event(envelope: dict) -> dict:
    """The SQS body of the tap queue (the SNS notification JSON) as the SNS event Lambda
    hands a subscribed function: one record, MessageAttributes as {"Type", "Value"}, and the
    URL fields spelt as Lambda spells them (SigningCertUrl, UnsubscribeUrl)."""
    assert envelope.get("Type") == "Notification", envelope
    attributes = {}
    for name, value in (envelope.get("MessageAttributes") or {}).items():
        assert set(value) >= {"Type", "Value"}, (name, value)
        attributes[name] = {"Type": value["Type"], "Value": value["Value"]}
    topic = envelope["TopicArn"]
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
        "Sns": {
            "Type": "Notification",
            "MessageId": envelope["MessageId"],
            "TopicArn": topic,
            "Subject": envelope.get("Subject"),
            "Message": envelope["Message"],
            "Timestamp": envelope["Timestamp"],
            "SignatureVersion": envelope.get("SignatureVersion", "1"),
            "Signature": envelope.get("Signature", "EXAMPLE"),
            "SigningCertUrl": envelope.get("SigningCertURL", "https://sns.us-east-1.amazonaws.com/e2e.pem"),
            "UnsubscribeUrl": envelope.get("UnsubscribeURL", "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"),
            "MessageAttributes": attributes,
        },
    }]}


class Published:
    """One alert oidc-monitor published: its SNS envelope and the Lambda event made of it."""

    def __init__(self, label: str, envelope: dict):
        self.label, self.envelope = label, envelope
        self.message = json.loads(envelope["Message"])
        self.context = self.message["metadata"]["additionalContext"]
        self.attributes = {k: v["Value"] for k, v in (envelope.get("MessageAttributes") or {}).items()}
        self.kind = self.attributes["kind"]
        self.severity = self.attributes["severity"]
        self.thread_id = self.message["metadata"]["threadId"]
        self.message_id = envelope["MessageId"]
        self.event = lambda_sns_event(envelope)

    @property
    def claim(self) -> str:
        """The notifier's delivery claim: by alert id (the notification's `id`), so one alert
        published twice (two MessageIds) is posted once."""
        alert_id = self.message.get("id")
        return f"delivery#alert:{alert_id}" if alert_id else f"delivery#{self.message_id}"

    @property
    def scope(self) -> str | None:
        spike = self.context.get("spike")
        return json.loads(spike)["scope"] if spike else None

    def __repr__(self) -> str:
        return f"Published({self.label}, {self.kind}, thread={self.thread_id})"


# --------------------------------------------------------------------------------------------
# The harness


class NotifierHarness(tm.Harness):
    """test_monitor's harness (moto, lambda.sh, invocations, logs, moto's recording) plus the
    notifier: a light reset (home resources only), the secret, notifier instances."""

    def reset_home(self):
        """Every account empty, then only what the notifier needs (the table; also the topic
        and queue), created in-process by seed.py's own code."""
        t0 = time.monotonic()
        self.script("moto.sh", "reset", timeout=30)
        args = argparse.Namespace(endpoint=MOTO_URL, region=REGION, home_account=HOME_ACCOUNT,
                                  read_role_name=None)
        self.seed = {"endpoint": MOTO_URL, "region": REGION, "home_account": HOME_ACCOUNT,
                     "credentials": {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
                     **e2e_seed.seed_home(args)}
        self.sqs, self.ddb = e2e_state.clients(self.seed)
        self.timings["reset total"] = self.timings.get("reset total", 0) + time.monotonic() - t0
        self.timings["resets"] = self.timings.get("resets", 0) + 1

    def aws(self, service: str):
        return boto3.client(service, endpoint_url=MOTO_URL, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))

    def start(self, binary: Path, env: dict[str, str], check: bool = True):
        assert binary.is_file() and os.access(binary, os.X_OK), f"no binary at {binary}: build it first"
        log = LOGS / f"{self.test_name}-{len(self.logs) + 1}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        t0 = time.monotonic()
        proc = self.script("lambda.sh", "start", str(binary), str(log),
                           *[f"{k}={v}" for k, v in env.items()], timeout=90, check=check)
        self.timings.setdefault(f"{binary.name} start", time.monotonic() - t0)
        self.logs.append(log)
        return proc, log

    def start_notifier(self, slack: ChatStandIn, mode: str, check: bool = True, **overrides: str):
        env = {
            "STATE_TABLE_NAME": TABLE,
            "SLACK_MODE": mode,
            "SLACK_SECRET_ID": SECRET_ID,
            "SLACK_API_URL": slack.api_url,
            "METRICS_NAMESPACE": "OidcWatch",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
        }
        if mode == "bot":
            env["SLACK_CHANNEL"] = CHANNEL
        env.update(overrides)
        env = {k: v for k, v in env.items() if v is not None}
        return self.start(NOTIFIER, env, check=check)

    def put_secret(self, value: str, secret_id: str = SECRET_ID):
        self.aws("secretsmanager").create_secret(Name=secret_id, SecretString=value)

    def table(self, prefix: str) -> dict[str, dict]:
        return {item["pk"]: item for item in e2e_state.scan(self.ddb, TABLE, prefix)}

    def drain_envelopes(self) -> list[dict]:
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


def deliveries(invocation: tm.Invocation) -> list[dict]:
    assert invocation.rc == 0 and invocation.outcome is not None, invocation
    return invocation.outcome["deliveries"]


def delivery(invocation: tm.Invocation) -> dict:
    found = deliveries(invocation)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def notifier_harness():
    if not NOTIFIER.is_file():
        pytest.exit(f"no oidc-notifier binary at {NOTIFIER}: cargo build -p oidc-notifier", returncode=2)
    if not tm.BINARY.is_file():
        pytest.exit(f"no oidc-monitor binary at {tm.BINARY} (it makes the alerts): cargo build -p oidc-monitor",
                    returncode=2)
    h = NotifierHarness()
    try:
        t0 = time.monotonic()
        h.start_moto()
        h.timings["moto start"] = time.monotonic() - t0
        yield h
    finally:
        h.stop()
        if h.invoke_seconds:
            ordered = sorted(h.invoke_seconds)
            h.timings.update({"invokes": len(ordered), "invoke min": ordered[0],
                              "invoke median": ordered[len(ordered) // 2], "invoke max": ordered[-1]})
        LOGS.mkdir(parents=True, exist_ok=True)
        (LOGS / "timings.json").write_text(json.dumps({k: round(v, 2) for k, v in h.timings.items()}) + "\n")


@pytest.fixture(scope="session")
def published(notifier_harness) -> list[Published]:
    """Runs oidc-monitor once on made-up events and keeps every SNS envelope it published,
    in publishing order: two incidents (SubjectMismatch, AudienceMismatch), a probe and a
    foreign success of an outside owner, a burst of 4 failing jobs of one role (with
    SPIKE_MIN_FAILURES=3 and SPIKE_COOLDOWN_SECONDS=0 the 3rd spikes and the 4th re-alerts
    the spike in its thread; there is one spike scope, `all`), and a success 20 minutes later
    (one recovery)."""
    h = notifier_harness
    t0 = time.monotonic()
    h.test_name, h.logs = "monitor-alerts", []
    h.stop_instances()
    h.reset()  # the three snapshots, read roles, topic, queue, table
    h.start(tm.BINARY, dict(kv.split("=", 1) for kv in h.function_env(
        SPIKE_MIN_FAILURES="3", SPIKE_COOLDOWN_SECONDS="0")))
    branch_failure = tm.load(tm.BRANCH_FAILURE)
    burst_at = tm.base_time(120)
    steps = [
        ("incident", tm.job(branch_failure, subject="repo:acme/web-app:ref:refs/heads/feature/notify",
                            at=tm.base_time(300)), ["incident"]),
        ("incident-2", tm.job(tm.load(AUDIENCE_FAILURE), at=tm.base_time(290)), ["incident"]),
        ("probe", tm.job(branch_failure, subject=STRANGER, at=tm.base_time(280)), ["probe"]),
        ("foreign", tm.job(tm.load(tm.PUSH_SUCCESS), subject=STRANGER, at=tm.base_time(270)), ["foreign-success"]),
    ]
    for n in range(4):
        expected = ["incident"] + (["spike"] if n >= 2 else [])
        steps.append((f"burst-{n}", tm.job(branch_failure, subject=f"repo:acme/web-app:ref:refs/heads/notify-{n}",
                                           at=burst_at + 5 * n), expected))
    steps.append(("recovery", tm.main_only_success(burst_at + 20 * 60), ["recovery"]))

    out: list[Published] = []
    try:
        for label, event, expected in steps:
            invocation = h.invoke(event)
            assert invocation.rc == 0, (label, invocation)
            assert invocation.event["alerts"] == expected, (label, invocation.event)
            envelopes = h.drain_envelopes()  # what this invocation published, nothing else
            assert sorted(Published(label, e).kind for e in envelopes) == sorted(expected), (label, envelopes)
            out.extend(Published(label, e) for e in envelopes)
    finally:
        h.stop_instances()
    h.timings["monitor alerts"] = time.monotonic() - t0
    (LOGS / "published.json").parent.mkdir(parents=True, exist_ok=True)
    (LOGS / "published.json").write_text("".join(json.dumps(p.envelope) + "\n" for p in out))
    return out


@pytest.fixture
def notifier(notifier_harness, published, request):
    """moto with only the home resources, a fresh Slack stand-in; no instance yet (each test
    starts the notifier in the mode it needs)."""
    h = notifier_harness
    h.test_name = request.node.name
    h.logs = []
    h.stop_instances()
    h.reset_home()
    h.slack = ChatStandIn()
    yield h
    h.script("lambda.sh", "stop-instances", timeout=60, check=False)
    h.slack.close()


def start_webhook(h: NotifierHarness, **overrides: str):
    h.put_secret(json.dumps({"webhook_url": h.slack.webhook_url}))
    return h.start_notifier(h.slack, "webhook", **overrides)


def start_bot(h: NotifierHarness, **overrides: str):
    h.put_secret(json.dumps({"bot_token": h.slack.token}))
    return h.start_notifier(h.slack, "bot", **overrides)


def assert_renders(alert: Published, body: dict):
    """One Block Kit message for `alert`: blocks, and a fallback that names what happened."""
    assert isinstance(body, dict), body
    blocks = body.get("blocks")
    assert isinstance(blocks, list) and len(blocks) >= 2, (alert, body)
    assert all(isinstance(b, dict) and b.get("type") for b in blocks), blocks
    assert body.get("unfurl_links") is False and body.get("unfurl_media") is False, body
    text = body.get("text") or ""
    assert text.startswith(f"[{alert.severity.upper()}]"), (alert, text)
    if alert.kind == "incident":
        assert alert.attributes["cause"] in text, (alert, text)  # the cause first
    elif alert.kind == "probe":
        assert "probe" in text and "stranger" in text, (alert, text)
    elif alert.kind == "foreign-success":
        assert "outside identity" in text and "stranger" in text, (alert, text)
    elif alert.kind == "spike":
        spike = json.loads(alert.context["spike"])
        # One scope (all): the fallback names the role carrying the burst instead.
        assert "Spike" in text and f"on role {spike['top_roles'][0][0]}" in text, (alert, text)
        assert "SubjectMismatch" in text, (alert, text)  # the top cause of the burst
    elif alert.kind == "recovery":
        assert "Recovered" in text, (alert, text)
    else:
        raise AssertionError(f"unexpected kind {alert.kind}")


def assert_no_credential_in_logs(h: NotifierHarness, *secrets: str):
    for log in h.logs:
        text = log.read_text(errors="replace") if log.exists() else ""
        for secret in secrets:
            assert secret not in text, f"{secret[:12]}… in {log}"


# --------------------------------------------------------------------------------------------
# 0. What the monitor published


def test_the_monitor_published_every_kind(published):
    kinds = Counter(p.kind for p in published)
    assert kinds == Counter({"incident": 6, "probe": 1, "foreign-success": 1, "spike": 2, "recovery": 1}), kinds
    assert len({p.message_id for p in published}) == len(published)
    spikes = [p for p in published if p.kind == "spike"]
    # The re-alerted spike and the recovery share the thread of the first spike.
    threads = Counter(p.thread_id for p in published if p.kind in ("spike", "recovery"))
    assert sorted(threads.values()) == [3], threads
    assert {p.scope for p in spikes} == {"all"}


# --------------------------------------------------------------------------------------------
# 1. Webhook mode: one message per alert


def test_webhook_posts_one_message_per_alert(notifier, published):
    h, slack = notifier, notifier.slack
    start_webhook(h)
    for alert in published:
        d = delivery(h.invoke(alert.event))
        assert d["status"] == "posted" and d["message_id"] == alert.message_id, (alert, d)
        assert d["kind"] == alert.kind and d["thread"] == alert.thread_id, (alert, d)
        assert d["in_thread"] is False and d["ts"] is None, d  # a webhook has no threads
    seen = slack.seen()
    assert [r["path"] for r in seen] == [slack.webhook_path] * len(published), Counter(r["path"] for r in seen)
    assert [r["status"] for r in seen] == [200] * len(published)
    for alert, request in zip(published, seen):
        assert request["headers"]["content-type"].startswith("application/json"), request["headers"]
        assert "authorization" not in request["headers"]
        assert "channel" not in request["body"] and "thread_ts" not in request["body"], request["body"]
        assert_renders(alert, request["body"])
    # Every message id is remembered as posted.
    claims = h.table("delivery#")
    assert {pk: item["state"] for pk, item in claims.items()} == {
        p.claim: "posted" for p in published}
    # A retried delivery (the same SNS message again) posts nothing.
    for alert in (published[0], published[-1]):
        again = delivery(h.invoke(alert.event))
        assert again["status"] == "duplicate", again
    assert len(slack.seen()) == len(published)
    # The credential was read once, at init, and never logged.
    reads = Counter(c["action"] for c in h.calls() if c["service"] == "secretsmanager")
    assert reads == Counter({"GetSecretValue": 1}), reads
    assert_no_credential_in_logs(h, slack.webhook_path)


# --------------------------------------------------------------------------------------------
# 2. Bot mode: threads


def test_bot_mode_threads_spikes_and_recoveries(notifier, published):
    h, slack = notifier, notifier.slack
    start_bot(h)
    outcomes = []
    for alert in published:
        d = delivery(h.invoke(alert.event))
        assert d["status"] == "posted" and d["kind"] == alert.kind, (alert, d)
        outcomes.append(d)
    seen = slack.seen()
    assert [r["path"] for r in seen] == ["/api/chat.postMessage"] * len(published)
    assert all(r["status"] == 200 for r in seen)
    tss = [d["ts"] for d in outcomes]
    assert all(tss) and len(set(tss)) == len(tss), tss

    first_of_thread: dict[str, str] = {}  # threadId -> ts of its first message
    replies = Counter()
    for alert, request, d in zip(published, seen, outcomes):
        body = request["body"]
        assert request["headers"]["authorization"] == f"Bearer {slack.token}"
        assert body["channel"] == CHANNEL, body.get("channel")
        assert_renders(alert, body)
        parent = first_of_thread.get(alert.thread_id)
        if alert.kind in ("incident", "probe", "foreign-success") or parent is None:
            # The first message of its thread: top level; it opens the thread.
            assert parent is None and alert.kind != "recovery", (alert, body)
            assert "thread_ts" not in body and d["in_thread"] is False, (alert, body)
            first_of_thread[alert.thread_id] = d["ts"]
        else:
            # A re-alerted spike, or the recovery: in the spike's thread.
            replies[alert.kind] += 1
            assert body.get("thread_ts") == parent and d["in_thread"] is True, (alert, body, parent)
            # The recovery is also broadcast to the channel; a later spike is not.
            assert body.get("reply_broadcast", False) is (alert.kind == "recovery"), (alert, body)
    assert replies == Counter({"spike": 1, "recovery": 1}), replies

    # The threads are in the state table: the first spike's ts, under its threadId and scope.
    threads = h.table("thread#")
    for alert in published:
        if alert.kind == "spike":
            item = threads.get(f"thread#{alert.thread_id}")
            assert item and item["ts"] == first_of_thread[alert.thread_id] and item["channel"] == CHANNEL, item
            assert threads[f"thread#spike-scope#{alert.scope}"]["ts"] == first_of_thread[alert.thread_id]
    # A retried delivery of a reply posts nothing more.
    recovery = next(p for p in published if p.kind == "recovery")
    assert delivery(h.invoke(recovery.event))["status"] == "duplicate"
    assert len(slack.seen()) == len(published)
    assert_no_credential_in_logs(h, slack.token)


# --------------------------------------------------------------------------------------------
# 3. Slack rate-limits (429 Retry-After: 1, once)


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_a_429_is_waited_out_and_the_message_arrives_once(notifier, published, mode):
    h, slack = notifier, notifier.slack
    (start_webhook if mode == "webhook" else start_bot)(h)
    alert = next(p for p in published if p.kind == "incident")
    slack.answer_once(429, {"retry-after": "1", "content-type": "text/plain"}, b"rate_limited")
    invocation = h.invoke(alert.event)
    d = delivery(invocation)
    assert d["status"] == "posted", d
    seen = slack.seen()
    assert [r["status"] for r in seen] == [429, 200], [(r["path"], r["status"]) for r in seen]
    waited = seen[1]["t"] - seen[0]["t"]
    assert 0.95 <= waited < 5, waited  # Retry-After honoured, no more
    assert seen[0]["body"] == seen[1]["body"]  # the same message, sent again
    assert len(slack.delivered()) == 1
    h.timings[f"invoke with a 429 ({mode})"] = invocation.seconds
    assert h.table("delivery#")[alert.claim]["state"] == "posted"
    assert delivery(h.invoke(alert.event))["status"] == "duplicate"
    assert len(slack.seen()) == 2


def test_a_retry_after_beyond_the_bound_fails_at_once_and_the_retry_posts_once(notifier, published):
    """Retry-After: 30 (> SLACK_MAX_RETRY_AFTER_SECONDS, 10): not waited inside the 60 s
    Lambda; the invocation fails (retryable), and Lambda's retry posts it once."""
    h, slack = notifier, notifier.slack
    start_webhook(h)
    alert = next(p for p in published if p.kind == "recovery")
    slack.answer_once(429, {"retry-after": "30", "content-type": "text/plain"}, b"rate_limited")
    t0 = time.monotonic()
    status, body = h.invoke_http(alert.event)
    assert time.monotonic() - t0 < 5, "waited for a Retry-After beyond the bound"
    assert status == 500 and body["errorType"] == "Retryable.Slack", (status, body)
    assert [r["status"] for r in slack.seen()] == [429]
    assert h.table("delivery#") == {}
    assert delivery(h.invoke(alert.event))["status"] == "posted"
    assert len(slack.delivered()) == 1 and len(slack.seen()) == 2


# --------------------------------------------------------------------------------------------
# 4. Slack down (500 every time), then back


@pytest.mark.parametrize("mode", ["webhook", "bot"])
def test_slack_down_fails_the_invocation_and_the_redelivery_posts_once(notifier, published, mode):
    h, slack = notifier, notifier.slack
    (start_webhook if mode == "webhook" else start_bot)(h)
    spike = next(p for p in published if p.kind == "spike")  # opens a thread in bot mode
    slack.fail_always(500)
    t0 = time.monotonic()
    status, body = h.invoke_http(spike.event)  # the Invoke API: the error's type and message
    h.timings[f"invoke with Slack down ({mode})"] = time.monotonic() - t0
    assert status == 500 and body["errorType"] == "Retryable.Slack", (status, body)
    attempts = slack.seen()
    assert len(attempts) == 4 and {r["status"] for r in attempts} == {500}, attempts  # SLACK_MAX_ATTEMPTS
    assert slack.delivered() == []
    assert slack.webhook_path not in json.dumps(body) and slack.token not in json.dumps(body), body
    # Nothing recorded as delivered: the claim was released, no thread saved.
    assert h.table("delivery#") == {}, h.table("delivery#")
    assert h.table("thread#") == {}, h.table("thread#")

    slack.heal()
    redelivered = delivery(h.invoke(spike.event))  # Lambda's retry: the same SNS MessageId
    assert redelivered["status"] == "posted" and redelivered["message_id"] == spike.message_id, redelivered
    assert len(slack.delivered()) == 1
    assert_renders(spike, slack.delivered()[0]["body"])
    assert h.table("delivery#")[spike.claim]["state"] == "posted"
    if mode == "bot":
        assert h.table("thread#")[f"thread#{spike.thread_id}"]["ts"] == redelivered["ts"]
    # And once more (a duplicate delivery): nothing.
    again = delivery(h.invoke(spike.event))
    assert again["status"] == "duplicate", again
    assert len(slack.seen()) == 5
    assert_no_credential_in_logs(h, slack.webhook_path, slack.token)


# --------------------------------------------------------------------------------------------
# 5. The credential as an SSM SecureString


def test_the_webhook_url_from_an_ssm_securestring(notifier, published):
    h, slack = notifier, notifier.slack
    ssm = h.aws("ssm")
    # A plain String parameter is refused at init: the instance never polls.
    ssm.put_parameter(Name="/oidc-watch/plain", Value=slack.webhook_url, Type="String")
    proc, log = h.start_notifier(slack, "webhook", check=False, SLACK_SECRET_ID=None,
                                 SLACK_PARAMETER_NAME="/oidc-watch/plain")
    assert proc.returncode != 0, proc.stderr[-1000:]
    assert "SecureString" in log.read_text(errors="replace"), log.read_text(errors="replace")[-2000:]
    # The SecureString (bare URL) works.
    ssm.put_parameter(Name=PARAMETER, Value=slack.webhook_url, Type="SecureString")
    h.start_notifier(slack, "webhook", SLACK_SECRET_ID=None, SLACK_PARAMETER_NAME=PARAMETER)
    alert = next(p for p in published if p.kind == "foreign-success")
    d = delivery(h.invoke(alert.event))
    assert d["status"] == "posted", d
    assert [r["path"] for r in slack.delivered()] == [slack.webhook_path]
    assert_renders(alert, slack.delivered()[0]["body"])
    reads = [c for c in h.calls() if c["service"] == "ssm" and c["action"] == "GetParameter"]
    assert len(reads) == 2, reads  # once per instance, at init
    assert_no_credential_in_logs(h, slack.webhook_path)


def test_teams_gets_one_adaptive_card_per_alert_from_its_workflow_url(notifier, published):
    """NOTIFIER_CHANNEL=teams as the template sets it: the workflow URL from Secrets Manager,
    every alert one Adaptive Card on the stand-in's Workflows webhook, a redelivery nothing,
    and the URL (a credential) in no log."""
    h, chat = notifier, notifier.slack
    h.put_secret(json.dumps({"webhook_url": chat.teams_url}), secret_id="oidc-watch/teams")
    h.start_notifier(chat, "webhook", SLACK_MODE=None, SLACK_SECRET_ID=None, SLACK_API_URL=None,
                     NOTIFIER_CHANNEL="teams", TEAMS_SECRET_ID="oidc-watch/teams")
    for alert in published:
        assert delivery(h.invoke(alert.event))["status"] == "posted", alert
    assert delivery(h.invoke(published[0].event))["status"] == "duplicate"
    posted = chat.delivered()
    assert len(posted) == len(published), posted
    for alert, request in zip(published, posted):
        assert request["path"] == chat.teams_path, request["path"]
        body = request["body"]
        assert body["type"] == "message", body
        (attachment,) = body["attachments"]
        assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
        card = attachment["content"]
        assert card["type"] == "AdaptiveCard" and card["body"][0]["type"] == "TextBlock", card
        if alert.kind == "incident":
            assert alert.attributes["cause"] in card["body"][0]["text"], card["body"][0]
    assert_no_credential_in_logs(h, chat.teams_path)


# --------------------------------------------------------------------------------------------
# 6. The same SNS message twice at once (SNS delivers at least once)


def test_two_concurrent_deliveries_of_one_message_post_once(notifier, published):
    h, slack = notifier, notifier.slack
    start_webhook(h)
    h.start_notifier(slack, "webhook")  # a second instance on the same watch server
    slack.delay = 1.0  # the first post is still in flight when the second delivery arrives
    alert = next(p for p in published if p.kind == "probe")
    barrier = threading.Barrier(2, timeout=10)

    def racer(_):
        barrier.wait()
        return h.invoke_http(alert.event)

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(racer, range(2)))
    # The winner posts. The loser sees the claim still in flight and fails retryably
    # (Lambda retries it after the lease), or, if the winner already posted, is a duplicate.
    posted = [body for status, body in results if status == 200 and body["deliveries"][0]["status"] == "posted"]
    assert len(posted) == 1, results
    loser = next(r for r in results if not (r[0] == 200 and r[1]["deliveries"][0]["status"] == "posted"))
    if loser[0] == 200:
        assert loser[1]["deliveries"][0]["status"] == "duplicate", results
    else:
        assert loser[1].get("errorType") == "Retryable.InFlight", results
        status, body = h.invoke_http(alert.event)  # Lambda's retry of the loser
        assert status == 200 and body["deliveries"][0]["status"] == "duplicate", body
    assert len(slack.seen()) == 1 and len(slack.delivered()) == 1, slack.seen()
    handled = [log.read_text(errors="replace").count('"handle"') > 0 for log in h.logs]
    assert handled == [True, True], handled  # the race was real: both instances took one


# --------------------------------------------------------------------------------------------
# 7. An invocation killed while posting (Lambda's timeout, a crash): the retry


def test_a_delivery_killed_mid_post_is_not_lost_by_its_retry(notifier, published):
    h, slack = notifier, notifier.slack
    start_webhook(h)
    alert = next(p for p in published if p.kind == "foreign-success")
    slack.hold()  # Slack accepts the post and does not answer
    background = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    pending = background.submit(h.invoke_http, alert.event)
    try:
        assert len(slack.wait_for(1)) == 1, "the notifier never posted"
        claim = h.table("delivery#").get(alert.claim)
        assert claim and claim["state"] == "pending", claim
        # The sandbox dies mid-post, as at Lambda's timeout: no chance to release the claim.
        # The watch server is restarted too (the invocation it waits for will never answer).
        h.script("lambda.sh", "stop", timeout=60)
    finally:
        slack.release()
        try:
            pending.result(timeout=20)
        except Exception:  # noqa: BLE001 (the watch server went away: expected)
            pass
        background.shutdown(wait=False)
    slack.heal()
    assert slack.delivered() == []
    # Lambda's retry, a minute later (within the 120 s lease), to a fresh instance.
    h.start_notifier(slack, "webhook")
    retry = h.invoke(alert.event)
    outcome = retry.outcome["deliveries"][0] if retry.rc == 0 and retry.outcome else None
    claim = h.table("delivery#").get(alert.claim)
    # Correct: post it now, or fail (retryably) so that Lambda tries again after the lease.
    # Wrong: succeed without posting: Lambda never tries again and the alert is lost.
    assert retry.rc != 0 or len(slack.delivered()) == 1, (
        f"the retry succeeded as {outcome and outcome['status']!r} and nothing reached Slack "
        f"(claim left: {claim})")
