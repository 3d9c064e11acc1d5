"""End-to-end tests of oidc-monitor as a real Lambda process (testing ladder, tier 4).

moto 5.2.5 in server mode on loopback holds the three account snapshots of events/accounts/
(each in its own account, with the cross-account read role), the SNS topic with its SQS tap
queue, and the state table. The prebuilt binary runs under `cargo lambda watch
--only-lambda-apis` and is invoked with `cargo lambda invoke` (lambda.sh), so what is checked
is what an operator sees: the Outcome, the log lines, the EMF lines and the alerts in the
queue.

Run it with tests/e2e/run.sh [binary] (which sets up the venv and stops everything), or
from the e2e venv: E2E_MONITOR_BINARY=target/debug/oidc-monitor pytest -q tests/e2e/test_monitor.py

Isolation: every test starts from `moto.sh reset` + seed and fresh monitor instances (the
IAM cache and the assumed-role clients of an instance would otherwise outlive the reset),
and uses event times of its own, so spike counters and incident windows never leak from one
test into the next. Every wait is bounded; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import base64
import concurrent.futures
import copy
import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
EVENTS = ROOT / "events"
sys.path.insert(0, str(HERE))
import state as e2e_state  # noqa: E402  (tests/e2e/state.py: drain the tap queue)

STATE = Path(os.environ.get("E2E_STATE", ROOT / "target" / "e2e"))
VENV = Path(os.environ.get("E2E_VENV", ROOT / "target" / "test-venv" / "main"))
MOTO_PORT = int(os.environ.get("E2E_MOTO_PORT", "5055"))
LAMBDA_PORT = int(os.environ.get("E2E_LAMBDA_PORT", "9055"))
MOTO_URL = f"http://127.0.0.1:{MOTO_PORT}"
BINARY = Path(os.environ.get("E2E_MONITOR_BINARY", ROOT / "target" / "debug" / "oidc-monitor")).resolve()
# Both bound every invocation: the watch server answers after this many seconds itself.
INVOKE_TIMEOUT = int(os.environ.setdefault("E2E_INVOKE_TIMEOUT", "30"))

HOME_ACCOUNT = "123456789012"
READ_ROLE = "oidc-watch-read"
TABLE = "oidc-watch-state"
# provider:owner entries; a bare name is a GitHub owner, so the GitLab group needs gitlab:.
OWNERS = "acme,acme-labs,gitlab:acme-group"
# Every owner the sample events belong to, by provider: the allow-list that makes them all ours.
SAMPLE_OWNERS = ",".join([
    "acme", "acme-labs", "gitlab:acme-group", "terraform:acme", "buildkite:acme",
    "circleci:3f6d2a1e-8b4c-4e2f-9a7d-5c1b0e9f8a21",
])
# The pk prefixes of what oidc-monitor writes to the state table.
MONITOR_PREFIXES = ("event#", "incident#", "counter#", "spike#", "token#", "success#")
# Nothing listens here (port 9, discard, is not served on this machine): connection refused.
DEAD_ENDPOINT = "http://127.0.0.1:9"

# A failure and a success of one role each, used as templates for made-up jobs.
BRANCH_FAILURE = "subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"
PUSH_SUCCESS = "none/github-push-main-success.json"
MAIN_ONLY_ROLE = "gha-deploy-main-only"  # role of BRANCH_FAILURE; allows ...:ref:refs/heads/main


# --------------------------------------------------------------------------------------------
# Events


def load(relative: str) -> dict:
    return json.loads((EVENTS / relative).read_text())


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def base_time(minutes_ago: int) -> int:
    """A minute boundary (plus 5 s) this long before now: bursts that start there stay in one
    minute, and no event is ever in the future (the monitor would use the wall clock)."""
    return (int(time.time()) - minutes_ago * 60) // 60 * 60 + 5


def pascal(kebab: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in kebab.split("-"))


def subject_of(event: dict) -> str | None:
    return event["detail"]["userIdentity"].get("userName")


def role_name_of(event: dict) -> str | None:
    detail = event["detail"]
    arn = (detail.get("requestParameters") or {}).get("roleArn")
    if not arn:
        resources = detail.get("resources") or []
        arn = resources[0].get("ARN") if resources else None
    return arn.rsplit("/", 1)[-1] if arn else None


def job(template: dict, *, subject: str | None = None, at: float | None = None,
        role: str | None = None, event_id: str | None = None) -> dict:
    """A copy of a sample event as a new delivery: fresh envelope id, eventID and requestID;
    optionally another subject (userName, principalId, subjectFromWebIdentityToken), event
    time (eventTime and envelope time) and role (roleArn, resources, assumedRoleUser)."""
    event = copy.deepcopy(template)
    detail = event["detail"]
    event["id"] = str(uuid.uuid4())
    detail["eventID"] = event_id or str(uuid.uuid4())
    detail["requestID"] = str(uuid.uuid4())
    if at is not None:
        detail["eventTime"] = event["time"] = iso(at)
    if subject is not None:
        identity = detail["userIdentity"]
        old = identity["userName"]
        identity["userName"] = subject
        if identity.get("principalId", "").endswith(old):
            identity["principalId"] = identity["principalId"][: -len(old)] + subject
        response = detail.get("responseElements") or {}
        if "subjectFromWebIdentityToken" in response:
            response["subjectFromWebIdentityToken"] = subject
    if role is not None:
        account = detail["recipientAccountId"]
        arn = f"arn:aws:iam::{account}:role/{role}"
        detail["requestParameters"]["roleArn"] = arn
        for resource in detail.get("resources") or []:
            resource["ARN"] = arn
        assumed = (detail.get("responseElements") or {}).get("assumedRoleUser")
        if assumed:
            session = assumed["arn"].rsplit("/", 1)[-1]
            assumed["arn"] = f"arn:aws:sts::{account}:assumed-role/{role}/{session}"
    return event


def redelivery(event: dict) -> dict:
    """The same event again, as EventBridge/Lambda redeliver it (same eventID)."""
    return copy.deepcopy(event)


def sample_events() -> list[tuple[str, Path]]:
    """(expected cause, file) for every scenario file: the directory is the answer."""
    out = []
    for path in sorted(EVENTS.rglob("*.json")):
        top = path.relative_to(EVENTS).parts[0]
        if top in ("accounts", "changes", "replay", "sns"):
            continue
        out.append((pascal(top), path))
    return out


# --------------------------------------------------------------------------------------------
# The harness: moto, the watch server, instances, invocations, what they left


class Invocation:
    def __init__(self, rc: int, stdout: str, stderr: str, seconds: float):
        self.rc, self.stdout, self.stderr, self.seconds = rc, stdout, stderr, seconds
        self.outcome = json.loads(stdout) if rc == 0 and stdout.strip() else None

    @property
    def event(self) -> dict:
        assert self.outcome and len(self.outcome["events"]) == 1, self
        return self.outcome["events"][0]

    def __repr__(self) -> str:
        return f"Invocation(rc={self.rc}, stdout={self.stdout!r}, stderr={self.stderr[-400:]!r})"


class Harness:
    def __init__(self):
        self.env = dict(os.environ, E2E_STATE=str(STATE), E2E_VENV=str(VENV),
                        E2E_MOTO_PORT=str(MOTO_PORT), E2E_LAMBDA_PORT=str(LAMBDA_PORT),
                        E2E_INVOKE_TIMEOUT=str(INVOKE_TIMEOUT))
        self.seed: dict = {}
        self.logs: list[Path] = []
        self.test_name = "session"
        self.started_moto = False
        self.timings: dict[str, float] = {}
        self.invoke_seconds: list[float] = []

    # -- processes ---------------------------------------------------------------------------
    def script(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run([str(HERE / args[0]), *args[1:]], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
        return proc

    def start_moto(self):
        if self.script("moto.sh", "status", check=False).returncode != 0:
            self.script("moto.sh", "start", timeout=60)
            self.started_moto = True

    def stop(self):
        self.script("lambda.sh", "stop", check=False, timeout=60)
        if self.started_moto:
            self.script("moto.sh", "stop", check=False, timeout=30)

    def reset(self):
        """Every account empty, then the snapshots, read roles, topic, queue, table again."""
        t0 = time.monotonic()
        self.script("moto.sh", "reset", timeout=30)
        seed_file = STATE / "seed.json"
        proc = subprocess.run(
            [str(VENV / "bin" / "python"), str(HERE / "seed.py"), "--endpoint", MOTO_URL,
             "--read-role-name", READ_ROLE, "--out", str(seed_file),
             *sorted(str(p) for p in (EVENTS / "accounts").glob("*.json"))],
            cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        self.seed = json.loads(seed_file.read_text())
        assert self.seed["home_account"] == HOME_ACCOUNT
        self.sqs, self.ddb = e2e_state.clients(self.seed)
        self.timings["reset+seed total"] = self.timings.get("reset+seed total", 0) + time.monotonic() - t0
        self.timings["resets"] = self.timings.get("resets", 0) + 1

    def function_env(self, **overrides: str) -> list[str]:
        env = {
            "ALERT_TOPIC_ARN": self.seed["topic_arn"],
            "STATE_TABLE_NAME": TABLE,
            "METRICS_SINK": "emf",
            "ALLOWED_OWNERS": OWNERS,
            "READ_ROLE_NAME": READ_ROLE,
            "SPIKE_MIN_FAILURES": "10",
            "SPIKE_WINDOW_SECONDS": "300",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
        }
        env.update(overrides)
        return [f"{k}={v}" for k, v in env.items()]

    def start_instance(self, **overrides: str) -> Path:
        """One more instance polling the watch server (started on first use)."""
        assert BINARY.is_file() and os.access(BINARY, os.X_OK), f"no binary at {BINARY}: build it first"
        log = STATE / "monitor-tests" / f"{self.test_name}-{len(self.logs) + 1}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.unlink(missing_ok=True)
        t0 = time.monotonic()
        self.script("lambda.sh", "start", str(BINARY), str(log), *self.function_env(**overrides), timeout=90)
        self.timings.setdefault("instance start", time.monotonic() - t0)
        self.logs.append(log)
        return log

    def stop_instances(self):
        self.script("lambda.sh", "stop-instances", timeout=60)

    # -- invocations -------------------------------------------------------------------------
    def _write(self, payload) -> Path:
        path = STATE / "monitor-tests" / f"event-{uuid.uuid4().hex}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload))
        return path

    def invoke(self, payload) -> Invocation:
        """`cargo lambda invoke _` (lambda.sh invoke): rc 0 with the Outcome on stdout, 1 on
        a handler error."""
        path = self._write(payload)
        t0 = time.monotonic()
        proc = subprocess.run([str(HERE / "lambda.sh"), "invoke", str(path)], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=INVOKE_TIMEOUT + 20)
        path.unlink(missing_ok=True)
        seconds = time.monotonic() - t0
        self.invoke_seconds.append(seconds)
        return Invocation(proc.returncode, proc.stdout, proc.stderr, seconds)

    def invoke_http(self, payload) -> tuple[int, dict]:
        """The Invoke API directly (what cargo lambda invoke calls), for tight races and for
        the error body: (HTTP status, JSON body)."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{LAMBDA_PORT}/2015-03-31/functions/_/invocations",
            data=json.dumps(payload).encode(), method="POST",
            headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=INVOKE_TIMEOUT + 10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    # -- what the function left --------------------------------------------------------------
    def alerts(self) -> list[dict]:
        """Drains the tap queue: one parsed SNS envelope per alert."""
        return e2e_state.drain(self.sqs, self.seed["queue_url"], keep=False)

    def log_lines(self) -> list[dict]:
        """Every JSON line of this test's instances: tracing lines and EMF lines."""
        lines = []
        for log in self.logs:
            if not log.exists():
                continue
            for line in log.read_text(errors="replace").splitlines():
                line = line.strip()
                if line.startswith("{"):
                    lines.append(json.loads(line))  # a line that does not parse fails the test
        return lines

    def table(self, prefix: str | None = None) -> list[dict]:
        """The state table's items (types unwrapped), optionally only pks with `prefix`."""
        return e2e_state.scan(self.ddb, TABLE, prefix)

    def emf(self) -> list[dict]:
        return [line for line in self.log_lines() if "_aws" in line]

    def diagnoses(self) -> list[dict]:
        return [line["fields"] for line in self.log_lines()
                if line.get("fields", {}).get("message") == "diagnosis"]

    def calls(self) -> list[dict]:
        """The AWS calls the function made (its SDK's user agent), from moto's recording."""
        out = []
        recording = STATE / "moto-recording.jsonl"
        for line in recording.read_text().splitlines():
            if not line.strip():
                continue
            request = json.loads(line)
            headers = {k.lower(): v for k, v in request.get("headers", {}).items()}
            if "aws-sdk-rust" not in headers.get("user-agent", ""):
                continue
            match = re.search(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/", headers.get("authorization", ""))
            body = request.get("body") or ""
            if request.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            form = urllib.parse.parse_qs(body) if headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded") else {}
            action = headers.get("x-amz-target", "").split(".")[-1] or (form.get("Action") or [None])[0]
            out.append({"service": match.group(2) if match else None,
                        "key": match.group(1) if match else None,
                        "action": action, "form": form})
        return out


def by_kind(alerts: list[dict]) -> Counter:
    return Counter(a["attributes"].get("kind") for a in alerts)


def context(alert: dict) -> dict:
    return alert["message"]["metadata"]["additionalContext"]


def diagnosis_of(alert: dict) -> dict:
    return json.loads(context(alert)["diagnosis"])


def spike_of(alert: dict) -> dict:
    return json.loads(context(alert)["spike"])


def assert_state_is_bounded(monitor) -> list[dict]:
    """Everything the monitor left in the table is under one of its key prefixes and expires
    (TTL on expires_at, in the future). Returns the items."""
    items = monitor.table()
    now = time.time()
    for item in items:
        assert str(item["pk"]).startswith(MONITOR_PREFIXES), item["pk"]
        assert "expires_at" in item and int(item["expires_at"]) > now, item
    return items


def emf_for(emf_lines: list[dict], event_id: str) -> list[dict]:
    return [line for line in emf_lines if line.get("event_id") == event_id]


def directive(line: dict, metric: str) -> dict:
    found = [d for d in line["_aws"]["CloudWatchMetrics"]
             if any(m["Name"] == metric for m in d["Metrics"])]
    assert len(found) == 1, f"{metric} in {line}"
    return found[0]


# --------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def harness():
    if not BINARY.is_file():
        pytest.exit(f"no oidc-monitor binary at {BINARY}: cargo build -p oidc-monitor", returncode=2)
    h = Harness()
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
        summary = json.dumps({k: round(v, 2) for k, v in h.timings.items()})
        (STATE / "monitor-tests").mkdir(parents=True, exist_ok=True)
        (STATE / "monitor-tests" / "timings.json").write_text(summary + "\n")  # run.sh prints it


@pytest.fixture
def monitor(harness, request):
    """A clean moto (reset + seed) and one fresh instance with the standard env."""
    harness.test_name = request.node.name
    harness.logs = []
    harness.script("lambda.sh", "stop-instances", timeout=60)
    harness.reset()
    harness.start_instance()
    yield harness
    harness.script("lambda.sh", "stop-instances", timeout=60, check=False)


# --------------------------------------------------------------------------------------------
# 1. Every sample event


@pytest.mark.parametrize("owners", ["trust-policies", "allow-list"])
def test_every_sample_event_is_diagnosed_counted_and_alerted(monitor, owners):
    """Every sample is a job of ours: with ALLOWED_OWNERS empty because the account's trust
    policies name its owner, with the allow-list because it names each (provider:owner)."""
    monitor.stop_instances()
    monitor.start_instance(ALLOWED_OWNERS="" if owners == "trust-policies" else SAMPLE_OWNERS)
    samples = sample_events()
    assert len(samples) >= 30, samples
    results = []
    for cause, path in samples:
        event = json.loads(path.read_text())
        invocation = monitor.invoke(event)
        assert invocation.rc == 0, (path, invocation)
        results.append((cause, path, event, invocation.event))

    emf_lines = monitor.emf()
    diagnosis_lines = monitor.diagnoses()
    assert Counter(Counter(d["event_id"] for d in diagnosis_lines).values()) == Counter({1: len(samples)})
    diagnoses = {d["event_id"]: d for d in diagnosis_lines}
    alerts = monitor.alerts()
    alerts_by_event: dict[str, list[dict]] = {}
    for alert in alerts:
        alerts_by_event.setdefault(context(alert).get("event_id"), []).append(alert)
    incidents_alerted = set()

    for cause, path, event, outcome in results:
        name = path.relative_to(EVENTS)
        event_id = event["detail"]["eventID"]
        role = role_name_of(event)
        # The Outcome: the directory's cause, from the role and providers read in moto.
        assert outcome["event_id"] == event_id, name
        assert outcome["cause"] == cause, (name, outcome)
        assert not outcome["duplicate"] and outcome["enrichment_error"] is None, (name, outcome)
        expected_evidence = "event-only" if role is None else "account-snapshot"
        assert outcome["evidence"] == expected_evidence, (name, outcome)
        if cause == "SubjectMismatch":
            assert outcome["subject_mismatch"] == pascal(path.parent.name), (name, outcome)

        # The log: one "diagnosis" line with that cause.
        assert event_id in diagnoses, f"{name}: no diagnosis log line"
        logged = diagnoses[event_id]
        assert logged["cause"] == cause, (name, logged)
        assert logged["subject"] == subject_of(event), (name, logged)
        assert logged["account"] == event["detail"]["recipientAccountId"], (name, logged)

        # The metrics: one EMF line, one count, low-cardinality dimensions only.
        lines = emf_for(emf_lines, event_id)
        assert len(lines) == 1, (name, lines)
        line = lines[0]
        metric = "AssumeSuccesses" if cause == "None" else "AssumeFailures"
        other = "AssumeFailures" if cause == "None" else "AssumeSuccesses"
        assert line[metric] == 1 and other not in line, (name, line)
        d = directive(line, metric)
        assert d["Namespace"] == "OidcWatch"
        assert d["Dimensions"] == [[], ["Cause"], ["RoleName"], ["AccountId"]], (name, d)
        exists = cause != "RoleNotFound" and role is not None
        assert line["Cause"] == cause
        assert line["RoleName"] == (role if exists else "-"), (name, line)
        assert line["AccountId"] == event["detail"]["recipientAccountId"]
        for directive_ in line["_aws"]["CloudWatchMetrics"]:
            assert directive_["Namespace"] == "OidcWatch"
            for dimension_set in directive_["Dimensions"]:
                assert set(dimension_set) <= {"Cause", "RoleName", "AccountId"}, (name, directive_)
        assert line["subject"] == subject_of(event), (name, line)  # a property, never a dimension
        assert "ProbeAttempts" not in line and "EnrichmentErrors" not in line, (name, line)
        assert line["trust"] == "ours" and outcome["trust"] == "ours", (name, line)

        # The alerts: one per incident of our owners; successes none.
        published = alerts_by_event.get(event_id, [])
        if cause == "None":
            assert outcome["alerts"] == [] and published == [], (name, outcome, published)
        else:
            first_of_incident = outcome["incident_id"] not in incidents_alerted
            incidents_alerted.add(outcome["incident_id"])
            expected = ["incident"] if first_of_incident else []
            assert outcome["alerts"] == expected, (name, outcome)
            assert [a["attributes"]["kind"] for a in published] == expected, (name, published)
            for alert in published:
                assert alert["attributes"]["severity"] == "high", (name, alert["attributes"])
                assert alert["attributes"]["cause"] == cause, (name, alert["attributes"])
                assert alert["message"]["metadata"]["threadId"] == outcome["incident_id"], name

    failures = [r for r in results if r[0] != "None"]
    assert len(alerts) == len(incidents_alerted), by_kind(alerts)
    assert by_kind(alerts) == Counter({"incident": len(incidents_alerted)})
    for alert in alerts:  # the Amazon Q custom notification, and attributes that agree with it
        ctx = context(alert)
        assert alert["message"]["version"] == "1.0" and alert["message"]["source"] == "custom"
        assert alert["attributes"]["severity"] == "high" == ctx["severity"]
        assert alert["attributes"]["cause"] == ctx["cause"] != "None"
        assert alert["attributes"]["account"] == ctx["account"]
        assert alert["attributes"]["kind"] == ctx["kind"] == "incident"
        assert all(isinstance(v, str) for v in ctx.values()), ctx
        d = diagnosis_of(alert)
        assert d["cause"] == ctx["cause"]
        # Who the job belongs to, and whether a verified trust-policy change comes with it.
        assert d["trust"] == ctx["trust"] == "ours", (ctx["event_id"], d["trust"])
        assert d["owner"] and d["owner"] == ctx["owner"], (ctx["event_id"], d["owner"])
        assert d["owner"].split(":", 1)[0] in ("github", "gitlab", "terraform", "circleci", "buildkite",
                                               "bitbucket", "eks"), d["owner"]
        assert "suggested_change" in d, sorted(d)
        change = d["suggested_change"]
        if change is not None:
            assert {"statement", "key", "add", "remove", "policy"} <= set(change), change
            assert isinstance(change["policy"], dict) and change["policy"]["Statement"], change
            assert json.loads(ctx["suggested_change"]) == change
        else:
            assert "suggested_change" not in ctx or ctx["suggested_change"] in ("", "null"), ctx
    # Some samples are fixed by a policy edit (a branch, a tag, an audience), and say so.
    assert sum(1 for a in alerts if diagnosis_of(a)["suggested_change"]) >= 5, by_kind(alerts)
    # Only the two pull-request samples (same role, subject and cause, 13 s apart) share an
    # incident: the second is counted as its second attempt, not alerted.
    shared = {}
    for _, path, _, outcome in failures:
        shared.setdefault(outcome["incident_id"], []).append((path.name, outcome["attempts"]))
    shared = [sorted(group) for group in shared.values() if len(group) > 1]
    assert shared == [[("github-pull-request-vs-branch-policy.json", 1),
                       ("github-role-arn-null-falls-back-to-resources.json", 2)]], shared

    # IAM was read from moto through the read role of each snapshot account, and cached.
    calls = monitor.calls()
    assumed = Counter(c["form"]["RoleArn"][0] for c in calls if c["action"] == "AssumeRole")
    accounts = {p.name.split("-")[0] for p in (EVENTS / "accounts").glob("*.json")}
    assert assumed == Counter({f"arn:aws:iam::{a}:role/{READ_ROLE}": 1 for a in accounts}), assumed
    iam_keys = {c["key"] for c in calls if c["service"] == "iam"}
    assert iam_keys and "testing" not in iam_keys, iam_keys
    assert_state_is_bounded(monitor)


def test_a_bare_owner_name_is_a_github_owner(monitor):
    """ALLOWED_OWNERS=acme-group names the GitHub owner acme-group: the GitLab group of that
    name is not ours (it would need gitlab:acme-group), so its failure is a probe."""
    monitor.stop_instances()
    monitor.start_instance(ALLOWED_OWNERS="acme,acme-group")
    event = load("subject-mismatch/branch/gitlab-refs-heads-prefix-in-policy.json")
    invocation = monitor.invoke(event)
    assert invocation.rc == 0, invocation
    assert invocation.event["trust"] == "foreign" and invocation.event["alerts"] == ["probe"], invocation.event
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"probe": 1}), alerts
    d = diagnosis_of(alerts[0])
    assert d["owner"] == "gitlab:acme-group" and d["trust"] == "foreign", d["owner"]
    assert d["suggested_change"] is None


# --------------------------------------------------------------------------------------------
# 2. Retries of one job


RETRIED_SUBJECT = "repo:acme/web-app:ref:refs/heads/feature/retried"


def retry_twelve_times(monitor, events: list[dict] | None = None) -> list[dict]:
    """One failing job as configure-aws-credentials retries it: same role and subject, 12
    deliveries with their own eventID and envelope id, 4 s apart."""
    template = load(BRANCH_FAILURE)
    t0 = base_time(90)
    outcomes = []
    for attempt in range(12):
        event = job(template, subject=RETRIED_SUBJECT, at=t0 + 4 * attempt)
        if events is not None:
            events.append(event)
        invocation = monitor.invoke(event)
        assert invocation.rc == 0, invocation
        outcomes.append(invocation.event)
    return outcomes


def test_retries_of_one_job_make_one_incident(monitor):
    events: list[dict] = []
    outcomes = retry_twelve_times(monitor, events)
    first, last = outcomes[0], outcomes[-1]
    assert first["alerts"][:1] == ["incident"] and first["attempts"] == 1, first
    assert [o["incident_id"] for o in outcomes] == [first["incident_id"]] * 12
    assert [o["attempts"] for o in outcomes] == list(range(1, 13))
    assert last["attempts"] == 12
    assert all("incident" not in o["alerts"] for o in outcomes[1:]), [o["alerts"] for o in outcomes]
    alerts = monitor.alerts()
    incidents = [a for a in alerts if a["attributes"]["kind"] == "incident"]
    assert len(incidents) == 1, alerts
    assert context(incidents[0])["subject"] == RETRIED_SUBJECT
    assert context(incidents[0])["attempts"] == "1"
    # The role was read once for the 12 events (the instance's IAM cache).
    assert Counter(c["action"] for c in monitor.calls())["GetRole"] == 1
    # One incident item: 12 attempts, every delivery remembered in its event set (so each
    # redelivery is known as one), the alert settled and no lease left.
    stored = monitor.table("incident#")
    assert len(stored) == 1, stored
    incident = stored[0]
    assert int(incident["attempts"]) == 12 and incident["alerted"] is True, incident
    assert incident["event_ids"] == {e["detail"]["eventID"] for e in events}, incident["event_ids"]
    assert incident["opened_by"] == events[0]["detail"]["eventID"] and "claim_until" not in incident
    # Counted once for spikes, under the role, remembered by incident.
    counters = monitor.table("counter#")
    assert [(int(c["failures"]), c["incidents"]) for c in counters] == [(1, {first["incident_id"]})], counters
    assert all(c["sk"].endswith(f"#{MAIN_ONLY_ROLE}") for c in counters), counters
    redelivered = monitor.invoke(redelivery(events[5]))
    assert redelivered.rc == 0 and redelivered.event["duplicate"] and redelivered.event["attempts"] == 12


def test_retries_of_one_job_make_exactly_one_alert(monitor):
    outcomes = retry_twelve_times(monitor)
    alerts = monitor.alerts()
    assert len(alerts) == 1, (
        "12 retries of ONE job must give one alert; got "
        f"{dict(by_kind(alerts))} (alerts per outcome: {[o['alerts'] for o in outcomes]})")


def test_case_variants_of_a_role_arn_are_one_role_and_one_incident(monitor):
    """IAM role names are unique case-insensitively, so role/Gha-Deploy-Main-Only and
    role/gha-deploy-main-only are one role. moto's GetRole is case-sensitive (AWS's is not):
    the variant is NoSuchEntity, and the IAM adapter asks again in lower case. Every event is
    counted under IAM's own spelling (the EMF RoleName, the spike counter) and they share one
    incident, so one job is one alert whatever the case in its roleArn."""
    template = load(BRANCH_FAILURE)
    t0 = base_time(95)
    subject = "repo:acme/web-app:ref:refs/heads/feature/case"
    spellings = ["Gha-Deploy-Main-Only", MAIN_ONLY_ROLE, "GHA-DEPLOY-MAIN-ONLY"]
    events = [job(template, subject=subject, at=t0 + 4 * n, role=spelling) for n, spelling in enumerate(spellings)]
    outcomes = []
    for event in events:
        invocation = monitor.invoke(event)
        assert invocation.rc == 0, invocation
        outcomes.append(invocation.event)
    for spelling, outcome in zip(spellings, outcomes):
        assert outcome["cause"] == "SubjectMismatch" and outcome["evidence"] == "account-snapshot", (spelling, outcome)
    assert len({o["incident_id"] for o in outcomes}) == 1, outcomes
    assert [o["attempts"] for o in outcomes] == [1, 2, 3]
    assert [o["alerts"] for o in outcomes] == [["incident"], [], []]
    assert by_kind(monitor.alerts()) == Counter({"incident": 1})
    emf = monitor.emf()
    for spelling, event in zip(spellings, events):
        lines = emf_for(emf, event["detail"]["eventID"])
        assert [line["RoleName"] for line in lines] == [MAIN_ONLY_ROLE], (spelling, lines)
    # The variant was asked as written, then in lower case; later spellings hit the cache.
    asked = [c["form"]["RoleName"][0] for c in monitor.calls() if c["action"] == "GetRole"]
    assert asked == ["Gha-Deploy-Main-Only", MAIN_ONLY_ROLE], asked
    counters = monitor.table("counter#")
    assert [(c["sk"].split("#", 1)[1], int(c["failures"])) for c in counters] == [(MAIN_ONLY_ROLE, 1)], counters


# --------------------------------------------------------------------------------------------
# 3. Two instances racing


def test_two_instances_racing_alert_once_per_job(monitor):
    monitor.start_instance()  # a second instance on the same watch server
    template = load(BRANCH_FAILURE)
    t0 = base_time(240)
    jobs = 10
    barrier = threading.Barrier(2, timeout=10)

    def racer(event):
        barrier.wait()
        return monitor.invoke_http(event)

    subjects = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for n in range(jobs):
            subject = f"repo:acme/web-app:ref:refs/heads/race-{n:02d}"
            subjects.append(subject)
            # Jobs 6 minutes apart: no spike window ever holds more than one job's pair.
            at = t0 + n * 360
            pair = [job(template, subject=subject, at=at), job(template, subject=subject, at=at + 1)]
            results = list(pool.map(racer, pair))
            for status, body in results:
                assert status == 200, body
            alerted = [r[1]["events"][0]["alerts"] for r in results]
            assert sorted(alerted) == [[], ["incident"]], (subject, alerted)
            ids = {r[1]["events"][0]["incident_id"] for r in results}
            assert len(ids) == 1, ids
    alerts = monitor.alerts()
    per_subject = Counter(context(a)["subject"] for a in alerts)
    assert per_subject == Counter({s: 1 for s in subjects}), per_subject
    assert by_kind(alerts) == Counter({"incident": jobs})
    # The race was real: both instances diagnosed events.
    handled = [sum(1 for line in (log.read_text().splitlines()) if '"diagnosis"' in line)
               for log in monitor.logs]
    assert len(handled) == 2 and all(handled), handled
    assert sum(handled) == 2 * jobs


def test_two_concurrent_deliveries_of_one_event_alert_once(monitor):
    """Lambda delivers at least once: the same event (same eventID) may reach two instances at
    the same moment. One records it and alerts; the other finds it recorded (a duplicate) or
    finds the alert in flight and fails Retryable.AlertInFlight, and its retry, once the first
    is done, is a duplicate. One alert and one count per event, whichever way each race went."""
    monitor.start_instance()  # a second instance on the same watch server
    template = load(BRANCH_FAILURE)
    t0 = base_time(260)
    rounds = 6
    barrier = threading.Barrier(2, timeout=10)

    def racer(event):
        barrier.wait()
        return monitor.invoke_http(event)

    events, losers = [], Counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        for n in range(rounds):
            # Events 6 minutes apart: no spike window holds more than one.
            event = job(template, subject=f"repo:acme/web-app:ref:refs/heads/twice-{n:02d}", at=t0 + n * 360)
            events.append(event)
            results = list(pool.map(racer, [event, redelivery(event)]))
            done = [body["events"][0] for status, body in results if status == 200]
            failed = [body for status, body in results if status != 200]
            for status, body in results:
                assert status == 200 or (status == 500 and body["errorType"] == "Retryable.AlertInFlight"), body
            assert [o["alerts"] for o in done if o["alerts"]] == [["incident"]], (n, results)
            assert all(o["duplicate"] for o in done if not o["alerts"]), (n, results)
            losers["in flight" if failed else "duplicate"] += 1
            for _ in failed:  # Lambda's retry of the failed delivery
                status, body = monitor.invoke_http(redelivery(event))
                assert status == 200, body
                assert body["events"][0]["duplicate"] and body["events"][0]["alerts"] == [], body
    alerts = monitor.alerts()
    per_event = Counter(context(a)["event_id"] for a in alerts)
    assert per_event == Counter({e["detail"]["eventID"]: 1 for e in events}), (per_event, losers)
    assert by_kind(alerts) == Counter({"incident": rounds})
    emf = monitor.emf()
    for event in events:
        assert len(emf_for(emf, event["detail"]["eventID"])) == 1, event["detail"]["eventID"]
    stored = monitor.table("incident#")
    assert len(stored) == rounds and all(int(i["attempts"]) == 1 and i["alerted"] for i in stored), stored
    # The races were real: both instances took deliveries (a diagnosis, or the in-flight error).
    took = [sum(1 for line in log.read_text().splitlines() if '"diagnosis"' in line or "AlertInFlight" in line)
            for log in monitor.logs]
    assert len(took) == 2 and all(took), took
    # How the races went (printed by run.sh with the timings): both ways are correct.
    monitor.timings["races lost in flight"] = losers["in flight"]
    monitor.timings["races lost as duplicate"] = losers["duplicate"]


# --------------------------------------------------------------------------------------------
# 4. Spike and recovery


def spike_scopes(alerts: list[dict], kind: str = "spike") -> Counter:
    return Counter(json.loads(context(a)["spike"])["scope"] for a in alerts
                   if a["attributes"]["kind"] == kind)


def main_only_success(at: float) -> dict:
    """A success of the burst's role (its policy allows ...:ref:refs/heads/main)."""
    return job(load(PUSH_SUCCESS), role=MAIN_ONLY_ROLE, subject="repo:acme/web-app:ref:refs/heads/main", at=at)


def burst(monitor, t0: int, jobs: int = 10, name: str = "burst") -> list[dict]:
    """`jobs` distinct failing jobs of one role, 5 s apart from t0 (all in t0's minute)."""
    outcomes = []
    template = load(BRANCH_FAILURE)
    for n in range(jobs):
        invocation = monitor.invoke(job(template, subject=f"repo:acme/web-app:ref:refs/heads/{name}-{n:02d}",
                                        at=t0 + 5 * n))
        assert invocation.rc == 0, invocation
        outcomes.append(invocation.event)
    return outcomes


def assert_spike_names_its_role(alert: dict, failures: int, role: str = MAIN_ONLY_ROLE):
    """One spike alert of the one scope: the whole burst, the role carrying it named in the
    title (SNS subject and the Amazon Q title) and first among the top roles."""
    spike = spike_of(alert)
    assert alert["attributes"]["kind"] == "spike" and alert["attributes"]["severity"] == "high", alert["attributes"]
    assert spike["scope"] == "all", spike
    assert spike["failures"] == failures and spike["window_seconds"] == 300, spike
    assert spike["top_roles"][0] == [role, failures], spike
    assert ["SubjectMismatch", failures] in spike["top_causes"], spike
    assert role in alert["message"]["content"]["title"], alert["message"]["content"]
    # The SNS subject (email) is the title cut to 100 characters.
    assert len(alert["subject"]) <= 100 and alert["subject"].startswith("oidc-watch: Spike"), alert["subject"]


def test_a_burst_alerts_one_spike_naming_its_role_then_one_recovery(monitor):
    t0 = base_time(120)
    outcomes = burst(monitor, t0)  # SPIKE_MIN_FAILURES distinct jobs within one minute
    for n, outcome in enumerate(outcomes):
        expected = ["incident", "spike"] if n == 9 else ["incident"]
        assert outcome["alerts"] == expected, (n, outcome)
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"incident": 10, "spike": 1}), by_kind(alerts)
    spike = next(a for a in alerts if a["attributes"]["kind"] == "spike")
    assert_spike_names_its_role(spike, 10)

    # The same role succeeds 20-30 minutes later: one recovery, once, in the spike's thread.
    outcomes = []
    for minutes in (20, 25, 30):
        invocation = monitor.invoke(main_only_success(t0 + minutes * 60))
        assert invocation.rc == 0, invocation
        assert invocation.event["cause"] == "None", invocation.event
        outcomes.append(invocation.event["alerts"])
    assert outcomes == [["recovery"], [], []], outcomes
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"recovery": 1}), by_kind(alerts)
    recovery = alerts[0]
    assert spike_of(recovery)["scope"] == "all"
    assert recovery["attributes"]["severity"] == "info" == context(recovery)["severity"]
    assert recovery["message"]["metadata"]["threadId"] == spike["message"]["metadata"]["threadId"]
    stored = monitor.table("spike#")
    assert [s["pk"] for s in stored] == ["spike#all"], stored
    assert stored[0]["spiking"] is False and "pending" not in stored[0], stored


def test_a_burst_of_30_jobs_on_one_role_gives_one_spike_and_one_recovery(monitor):
    """30 distinct jobs of one owner failing on one role within 3 minutes: 30 incident
    alerts, exactly one spike alert naming the role (not one per scope, not one per job
    past the threshold), and later exactly one recovery."""
    t0 = base_time(200)
    outcomes = burst(monitor, t0, jobs=30, name="wide")
    assert [n for n, o in enumerate(outcomes) if "spike" in o["alerts"]] == [9], [o["alerts"] for o in outcomes]
    assert all(o["alerts"][:1] == ["incident"] for o in outcomes), [o["alerts"] for o in outcomes]
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"incident": 30, "spike": 1}), by_kind(alerts)
    spike = next(a for a in alerts if a["attributes"]["kind"] == "spike")
    assert_spike_names_its_role(spike, 10)
    counted = sum(int(c["failures"]) for c in monitor.table("counter#"))
    assert counted == 30, counted

    recoveries = []
    for minutes in (20, 25):
        invocation = monitor.invoke(main_only_success(t0 + minutes * 60))
        assert invocation.rc == 0, invocation
        recoveries.append(invocation.event["alerts"])
    assert recoveries == [["recovery"], []], recoveries
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"recovery": 1}), by_kind(alerts)
    assert alerts[0]["message"]["metadata"]["threadId"] == spike["message"]["metadata"]["threadId"]
    # Everything it wrote is under the monitor's prefixes and expires.
    prefixes = {item["pk"].split("#", 1)[0] + "#" for item in assert_state_is_bounded(monitor)}
    assert prefixes == {"event#", "incident#", "counter#", "spike#", "token#", "success#"}, prefixes


def test_a_late_event_does_not_recover_an_ongoing_spike(monitor):
    t0 = base_time(120)
    burst(monitor, t0)
    assert spike_scopes(monitor.alerts()) == Counter({"all": 1})
    late = monitor.invoke(main_only_success(t0 - 600))  # ran 10 minutes before the burst
    assert late.rc == 0, late
    burst(monitor, t0 + 50, jobs=2, name="still-failing")  # the burst goes on
    alerts = monitor.alerts()
    assert by_kind(alerts)["recovery"] == 0, (by_kind(alerts), late.event["alerts"])


# --------------------------------------------------------------------------------------------
# 5. Outside owners


def test_foreign_success_is_critical_and_probes_are_rate_limited(monitor):
    t0 = base_time(150)
    stranger = "repo:stranger/tool:ref:refs/heads/main"
    invocation = monitor.invoke(job(load(PUSH_SUCCESS), subject=stranger, at=t0))
    assert invocation.rc == 0, invocation
    assert invocation.event["cause"] == "None" and invocation.event["alerts"] == ["foreign-success"]
    alerts = monitor.alerts()
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["attributes"]["kind"] == "foreign-success"
    assert alert["attributes"]["severity"] == "critical" == context(alert)["severity"]
    assert context(alert)["subject"] == stranger

    failure = load(BRANCH_FAILURE)
    probes = [f"repo:stranger/tool-{n}:ref:refs/heads/main" for n in range(3)]
    outcomes = []
    for n, subject in enumerate(probes):
        invocation = monitor.invoke(job(failure, subject=subject, at=t0 + 60 + 10 * n))
        assert invocation.rc == 0, invocation
        assert invocation.event["cause"] != "None"
        outcomes.append(invocation.event["alerts"])
    assert outcomes == [["probe"], [], []], outcomes
    alerts = monitor.alerts()
    assert len(alerts) == 1, alerts
    assert alerts[0]["attributes"]["kind"] == "probe"
    assert alerts[0]["attributes"]["severity"] == "low"
    # Every probe is still counted.
    probes_counted = [line for line in monitor.emf() if line.get("ProbeAttempts") == 1]
    assert len(probes_counted) == 3, probes_counted


def test_a_redelivered_rate_limited_probe_stays_silent(monitor):
    """A probe silenced by the per-owner rate limit is settled: a redelivery of the same event
    (Lambda delivers at least once; any later error redelivers) must not publish it."""
    failure = load(BRANCH_FAILURE)
    t0 = base_time(150)
    first = job(failure, subject="repo:stranger/tool-a:ref:refs/heads/main", at=t0)
    second = job(failure, subject="repo:stranger/tool-b:ref:refs/heads/main", at=t0 + 10)
    assert monitor.invoke(first).event["alerts"] == ["probe"]
    assert monitor.invoke(second).event["alerts"] == []  # rate-limited
    again = monitor.invoke(redelivery(second))
    assert again.rc == 0 and again.event["duplicate"], again
    assert again.event["alerts"] == [], again.event
    assert by_kind(monitor.alerts()) == Counter({"probe": 1})


@pytest.mark.parametrize("owners", ["allow-list", "trust-policies"])
def test_an_outside_or_ownerless_subject_gets_a_probe_and_no_policy_change(monitor, owners):
    """A subject of an owner not ours (repo:stranger/...), and a subject naming no owner at
    all (a custom template of `environment` alone, which anyone's workflow can mint), fail as
    probes: low alerts, trust foreign, suggested_change null, and nothing tells anyone to add
    that subject to the trust policy. Alike whether ours is ALLOWED_OWNERS=acme or (empty)
    the owners the account's trust policies name."""
    monitor.stop_instances()
    monitor.start_instance(ALLOWED_OWNERS="acme" if owners == "allow-list" else "")
    failure = load(BRANCH_FAILURE)
    t0 = base_time(140)
    cases = {"repo:stranger/x:ref:refs/heads/main": "github:stranger", "environment:prod": None}
    for n, subject in enumerate(cases):
        invocation = monitor.invoke(job(failure, subject=subject, at=t0 + 10 * n))
        assert invocation.rc == 0, invocation
        outcome = invocation.event
        assert outcome["cause"] != "None" and outcome["trust"] == "foreign", (subject, outcome)
        # Two owners (one of them "none"): each its own probe rate limit.
        assert outcome["alerts"] == ["probe"], (subject, outcome)
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"probe": 2}), alerts
    for alert in alerts:
        d, ctx = diagnosis_of(alert), context(alert)
        subject = d["subject"]
        assert alert["attributes"]["severity"] == "low", alert["attributes"]
        assert d["trust"] == "foreign" and d["owner"] == cases[subject], (subject, d["trust"], d["owner"])
        assert "suggested_change" in d and d["suggested_change"] is None, d.get("suggested_change")
        assert ctx.get("suggested_change") in (None, "", "null"), ctx
        content = alert["message"]["content"]
        for text in [d["fix"], content["description"], *content.get("nextSteps", [])]:
            assert not re.search(r"\badd\b[^.]*" + re.escape(f'"{subject}"'), text, re.IGNORECASE), (subject, text)
            assert "Verified trust-policy change" not in text, (subject, text)
    probes = [line for line in monitor.emf() if line.get("ProbeAttempts") == 1]
    assert sorted(line["subject"] for line in probes) == sorted(cases), probes


# --------------------------------------------------------------------------------------------
# 6. IAM unavailable


@pytest.mark.parametrize("down", ["iam+sts", "iam"])
def test_iam_unavailable_diagnoses_from_the_event_alone(monitor, down):
    """aws-config honours the service-specific AWS_ENDPOINT_URL_<SERVICE> overrides, also for
    the IAM client built with the read role's credentials (checked: no IAM call reaches moto)."""
    monitor.stop_instances()
    dead = {"AWS_ENDPOINT_URL_IAM": DEAD_ENDPOINT}
    if down == "iam+sts":
        dead["AWS_ENDPOINT_URL_STS"] = DEAD_ENDPOINT
    monitor.start_instance(**dead)
    event = job(load(BRANCH_FAILURE), subject="repo:acme/web-app:ref:refs/heads/feature/no-iam",
                at=base_time(100))
    invocation = monitor.invoke(event)
    assert invocation.rc == 0, invocation
    outcome = invocation.event
    monitor.timings[f"invoke with {down} down"] = invocation.seconds
    assert outcome["cause"] and outcome["cause"] != "None", outcome
    assert outcome["evidence"] == "event-only", outcome
    assert outcome["enrichment_error"], outcome
    lines = emf_for(monitor.emf(), event["detail"]["eventID"])
    assert len(lines) == 1, lines
    line = lines[0]
    assert line["EnrichmentErrors"] == 1 and line["AssumeFailures"] == 1, line
    assert directive(line, "EnrichmentErrors")["Dimensions"] == [[], ["AccountId"]]
    assert line["RoleName"] == "-", line  # not confirmed by IAM: not a dimension value
    # The operator still hears about it.
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"incident": 1}), alerts
    # Nothing reached moto's IAM (nor STS when it is down too; else the read role was assumed).
    reached = Counter(f"{c['service']}.{c['action']}" for c in monitor.calls() if c["service"] in ("iam", "sts"))
    if down == "iam+sts":
        assert reached == Counter(), reached
    else:
        assert reached["sts.AssumeRole"] == 1 and not [k for k in reached if k.startswith("iam.")], reached


# --------------------------------------------------------------------------------------------
# 7. Malformed events


@pytest.mark.parametrize("kind", ["scheduled-event", "s3-getobject"])
def test_malformed_events_are_acknowledged_and_counted(monitor, kind):
    if kind == "scheduled-event":
        payload = {"id": "x", "detail-type": "Scheduled Event"}
    else:
        detail = copy.deepcopy(load(BRANCH_FAILURE)["detail"])
        detail.update(eventSource="s3.amazonaws.com", eventName="GetObject",
                      requestParameters={"bucketName": "b", "key": "k"}, errorCode=None,
                      errorMessage=None, eventID=str(uuid.uuid4()))
        payload = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "AWS API Call via CloudTrail",
                   "source": "aws.s3", "account": HOME_ACCOUNT, "time": iso(time.time() - 60),
                   "region": "us-east-1", "resources": [], "detail": detail}
    invocation = monitor.invoke(payload)
    assert invocation.rc == 0, invocation  # acknowledged: Lambda does not retry it
    assert invocation.outcome == {"events": [], "malformed": 1}, invocation.outcome
    emf = monitor.emf()
    assert len(emf) == 1, emf
    assert emf[0]["MalformedEvents"] == 1, emf
    d = directive(emf[0], "MalformedEvents")
    assert d["Namespace"] == "OidcWatch" and d["Dimensions"] == [[]], d
    assert monitor.alerts() == []


# --------------------------------------------------------------------------------------------
# 8. SNS unavailable


def test_sns_unavailable_fails_the_invocation_and_the_redelivery_alerts_once(monitor):
    monitor.stop_instances()
    monitor.start_instance(AWS_ENDPOINT_URL_SNS=DEAD_ENDPOINT)
    event = job(load(BRANCH_FAILURE), subject="repo:acme/web-app:ref:refs/heads/feature/no-sns",
                at=base_time(80))
    invocation = monitor.invoke(event)
    assert invocation.rc == 1, invocation  # an error: Lambda keeps the event and retries it
    # The same again at once, with the error's body: the failed publish released the alert
    # lease, so the redelivery may publish (and fails on SNS again), instead of waiting for
    # the lease as Retryable.AlertInFlight.
    status, body = monitor.invoke_http(redelivery(event))
    assert status == 500 and body["errorType"] == "Retryable.AlertTopic", (status, body)
    assert monitor.alerts() == []

    monitor.stop_instances()
    monitor.start_instance()
    invocation = monitor.invoke(redelivery(event))
    assert invocation.rc == 0, invocation
    assert invocation.event["alerts"] == ["incident"], invocation.event
    again = monitor.invoke(redelivery(event))
    assert again.rc == 0 and again.event["alerts"] == [] and again.event["duplicate"], again
    alerts = monitor.alerts()
    assert by_kind(alerts) == Counter({"incident": 1}), alerts
    assert context(alerts[0])["event_id"] == event["detail"]["eventID"]
    # Counted once, although delivered four times.
    counted = emf_for(monitor.emf(), event["detail"]["eventID"])
    assert len(counted) == 1, counted


def test_sns_outage_on_the_event_that_crosses_the_spike_threshold_still_alerts_the_spike(monitor):
    t0 = base_time(110)
    burst(monitor, t0, jobs=9, name="outage")
    assert by_kind(monitor.alerts()) == Counter({"incident": 9})
    monitor.stop_instances()
    monitor.start_instance(AWS_ENDPOINT_URL_SNS=DEAD_ENDPOINT)
    tenth = job(load(BRANCH_FAILURE), subject="repo:acme/web-app:ref:refs/heads/outage-09", at=t0 + 45)
    assert monitor.invoke(tenth).rc == 1
    monitor.stop_instances()
    monitor.start_instance()
    invocation = monitor.invoke(redelivery(tenth))
    assert invocation.rc == 0 and "incident" in invocation.event["alerts"], invocation
    alerts = monitor.alerts()
    assert by_kind(alerts)["incident"] == 1, alerts
    assert spike_scopes(alerts) == Counter({"all": 1}), by_kind(alerts)


class SpikeRefusingSns:
    """An SNS endpoint on 127.0.0.1 that forwards every request to moto, except a Publish of a
    spike alert (message attribute kind = spike), which it answers with a 500 as a throttled
    or failing SNS would. One thread, bounded timeouts; stopped by the fixture."""

    def __init__(self):
        import http.server

        upstream = MOTO_URL
        refused = self.refused = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
                names = {k: v[0] for k, v in form.items() if k.endswith(".Name")}
                kind = next((form.get(k.replace(".Name", ".Value.StringValue"), [None])[0]
                             for k, v in names.items() if v == "kind"), None)
                if form.get("Action") == ["Publish"] and kind == "spike":
                    refused.append(kind)
                    payload = (b"<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
                               b"<Message>injected by the test</Message></Error></ErrorResponse>")
                    self.send_response(500)
                    self.send_header("content-type", "text/xml")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream + self.path, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=10) as response:
                        status, data, ctype = response.status, response.read(), response.headers.get("content-type")
                except urllib.error.HTTPError as error:
                    status, data, ctype = error.code, error.read(), error.headers.get("content-type")
                self.send_response(status)
                self.send_header("content-type", ctype or "text/xml")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 5
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def spike_refusing_sns():
    proxy = SpikeRefusingSns()
    yield proxy
    proxy.close()


def test_a_failed_spike_publish_is_retried(monitor, spike_refusing_sns):
    monitor.stop_instances()
    monitor.start_instance(AWS_ENDPOINT_URL_SNS=spike_refusing_sns.url)
    t0 = base_time(130)
    burst(monitor, t0, jobs=9, name="throttled")
    tenth = job(load(BRANCH_FAILURE), subject="repo:acme/web-app:ref:refs/heads/throttled-09", at=t0 + 45)
    failed = monitor.invoke(tenth)
    # Refused (the SDK tries 3 times), the invocation fails: Lambda will redeliver it.
    assert failed.rc == 1 and spike_refusing_sns.refused and set(spike_refusing_sns.refused) == {"spike"}, failed
    assert by_kind(monitor.alerts()) == Counter({"incident": 10})  # the incident alert went out
    # The spike alert was saved as pending before the publish; the failed delivery gave
    # its lease back, so the redelivery publishes at once.
    stored = monitor.table("spike#")
    assert [s["pk"] for s in stored] == ["spike#all"] and stored[0].get("pending"), stored
    assert json.loads(stored[0]["pending"])["lease_until"] == 0, stored
    monitor.stop_instances()
    monitor.start_instance()  # SNS is healthy again
    assert monitor.invoke(redelivery(tenth)).rc == 0
    spikes = spike_scopes(monitor.alerts())
    assert spikes == Counter({"all": 1}), spikes
    burst(monitor, t0 + 50, jobs=1, name="after")  # and the burst goes on
    assert spike_scopes(monitor.alerts()) == Counter(), "published once"
    stored = monitor.table("spike#")
    assert stored[0]["spiking"] is True and "pending" not in stored[0], stored
    burst(monitor, t0 + 55, jobs=1, name="later")
    assert spike_scopes(monitor.alerts()) == Counter(), "published once"
