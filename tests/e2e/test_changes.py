"""End-to-end test of change correlation: IAM's own CloudTrail records of a trust-policy
change reach the real oidc-monitor Lambda (prebuilt, under `cargo lambda watch`, as in
test_monitor.py) while moto 5.2.5 in server mode holds the account's IAM.

* A change in IAM alone does not reach a monitor that cached the role: the next failure is
  still judged against the cached policy. The change event drops the cache at once: the
  failure after it is diagnosed against the new policy, and its incident alert names the
  change (action, actor, what it removed).
* A change that widens trust (an owner wildcard) is itself a `trust-change` alert with the
  diff, once: its redelivery is silent.

Run it through the harness (venv, moto, cleanup), selecting only this file's tests:
    cargo build -p oidc-monitor -p oidc-notifier
    tests/e2e/run.sh target/debug/oidc-monitor target/debug/oidc-notifier -k changes
Every wait is bounded; nothing leaves 127.0.0.1.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_monitor import (  # noqa: E402,F401  (the monitor's harness, its fixtures and event builders)
    BRANCH_FAILURE, MOTO_URL, PUSH_SUCCESS, base_time, by_kind, context, diagnosis_of, harness, iso, job,
    load, monitor, redelivery)

ACCOUNT = "111122223333"
ROLE = "gha-deploy-web-app"  # its snapshot policy allows ...:ref:refs/heads/main only
MAIN = "repo:acme/web-app:ref:refs/heads/main"
ADMIN = "arn:aws:sts::111122223333:assumed-role/platform-admin/alice"
RELEASE_ONLY = "changes/iam-update-assume-role-policy-release-branch-only.json"
OWNER_WILDCARD = "changes/iam-update-assume-role-policy-owner-wildcard.json"


def iam_of(account: str):
    """boto3 IAM in `account` of moto (its x-moto-account-id header, as seed.py does)."""
    client = boto3.client("iam", endpoint_url=MOTO_URL, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing",
                          config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))
    client.meta.events.register_first(
        "before-sign.*.*", lambda request, **_: request.headers.__setitem__("x-moto-account-id", account))
    return client


def change(relative: str, at: float, event_id: str) -> dict:
    """A sample IAM change as a new delivery at `at`."""
    event = load(relative)
    event["id"] = f"envelope-{event_id}"
    event["detail"]["eventID"] = event_id
    event["detail"]["eventTime"] = event["time"] = iso(at)
    return event


def apply_in_iam(event: dict):
    """Makes moto's IAM what the change event says IAM became."""
    params = event["detail"]["requestParameters"]
    iam_of(event["detail"]["recipientAccountId"]).update_assume_role_policy(
        RoleName=params["roleName"], PolicyDocument=params["policyDocument"])


def failure(at: float) -> dict:
    return job(load(BRANCH_FAILURE), subject=MAIN, role=ROLE, at=at)


def test_a_change_event_drops_the_cache_and_the_next_incident_names_it(monitor):
    t0 = base_time(10)
    # The role is read (and cached) on the first event of it: main is allowed then.
    first = monitor.invoke(job(load(PUSH_SUCCESS), at=t0))
    assert first.event["cause"] == "None", first

    # IAM changes, and nobody tells the monitor: the cached policy still allows main.
    update = change(RELEASE_ONLY, t0 + 60, "e2e-change-release-only")
    apply_in_iam(update)
    stale = monitor.invoke(failure(t0 + 90))
    assert stale.rc == 0, stale
    assert stale.event["cause"] != "SubjectMismatch", (
        "the cached policy allows main; a SubjectMismatch here means the cache was not used", stale.event)
    monitor.alerts()

    # The change event: acknowledged as a change, recorded with the policy before.
    delivered = monitor.invoke(update)
    assert delivered.rc == 0, delivered
    assert delivered.outcome["events"] == [] and delivered.outcome["malformed"] == 0, delivered.outcome
    (recorded,) = delivered.outcome["changes"]
    assert recorded["event_id"] == "e2e-change-release-only", recorded
    (item,) = [i for i in monitor.table("change#") if "e2e-change-release-only" in json.dumps(i, default=str)]
    assert ADMIN in json.dumps(item, default=str), item

    # The next failure is judged against the new policy (release only), and its incident
    # alert says what changed just before it.
    after = monitor.invoke(failure(t0 + 240))
    assert after.rc == 0, after
    assert after.event["cause"] == "SubjectMismatch", after.event
    alerts = monitor.alerts()
    incidents = [a for a in alerts if a["attributes"].get("kind") == "incident"]
    assert len(incidents) == 1, by_kind(alerts)
    (alert,) = incidents
    assert diagnosis_of(alert)["cause"] == "SubjectMismatch"
    notes = json.loads(context(alert)["changes"])
    (note,) = [n for n in notes if n["event_id"] == "e2e-change-release-only"]
    assert note["action"] == "UpdateAssumeRolePolicy" and note["actor"] == ADMIN, note
    assert note["role"] == ROLE, note
    assert MAIN in note["sentence"] and "UpdateAssumeRolePolicy" in note["sentence"], note["sentence"]
    assert "3 min" in note["sentence"], note["sentence"]


def test_a_widening_change_alerts_once_with_its_diff(monitor):
    t0 = base_time(5)
    monitor.invoke(job(load(PUSH_SUCCESS), at=t0))  # the policy before is known (cached)
    monitor.alerts()
    widen = change(OWNER_WILDCARD, t0 + 30, "e2e-change-owner-wildcard")
    apply_in_iam(widen)
    assert monitor.invoke(widen).rc == 0
    alerts = monitor.alerts()
    assert by_kind(alerts) == {"trust-change": 1}, by_kind(alerts)
    (alert,) = alerts
    assert alert["attributes"]["severity"] == "high", alert["attributes"]
    (note,) = json.loads(context(alert)["changes"])
    assert note["event_id"] == "e2e-change-owner-wildcard" and note["role"] == ROLE, note
    assert note["widening"], note
    assert "repo:*/web-app:*" in json.dumps(note["diff"]), note["diff"]

    assert monitor.invoke(redelivery(widen)).rc == 0
    assert monitor.alerts() == [], "a redelivered change alerts no second time"
