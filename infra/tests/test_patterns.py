"""The EventBridge patterns, judged by an evaluator we did not write: moto's EventBridge,
in server mode on loopback. Each rule is created with the pattern and state read from
the parsed template, an SQS queue is its target, every sample envelope is put with its
Source, DetailType and Detail, and the queues are read back.

The expectation comes from the samples' directory names (events/<cause>/...: `none` is a
success, every other cause a failure), not from the pattern's own errorCode logic. The
negative samples are the replay file's non-matching records (an S3 data event and an IAM
user's AssumeRole) wrapped as EventBridge would wrap them, plus near misses built from a
real sample (another event name, another source).

The IAM change rules (change correlation) are judged the same way: every events/changes/
envelope must reach them and nothing else, and a failed IAM call (errorCode), a read-only
IAM call and an IAM change the monitor does not follow must not."""

import ast
import copy
import json
import urllib.parse

import pytest

from conftest import EVENTS, ROOT, load_json, resources_of

CENTRAL = "123456789012"
MEMBER = "111122223333"


def scenario_files():
    return sorted(p for p in EVENTS.rglob("*.json") if p.relative_to(EVENTS).parts[0] not in ("accounts", "changes", "replay", "sns"))


def change_files():
    return sorted((EVENTS / "changes").glob("*.json"))


def rule_kind(pattern: dict) -> str:
    """Which samples a rule is for: 'changes' (IAM's records), else 'failures' or
    'successes' by its errorCode clause."""
    if pattern["source"] == ["aws.iam"]:
        return "changes"
    return "failures" if pattern["detail"]["errorCode"][0]["exists"] else "successes"


def envelope(record: dict, detail_type="AWS API Call via CloudTrail") -> dict:
    source = "aws." + record["eventSource"].split(".")[0]
    return {"version": "0", "id": record["eventID"], "detail-type": detail_type, "source": source,
            "account": record.get("recipientAccountId", MEMBER), "time": record["eventTime"],
            "region": record["awsRegion"], "resources": [], "detail": record}


def samples():
    """(label, envelope, expected kind or None)."""
    out = []
    for path in scenario_files():
        env = load_json(path)
        cause = path.relative_to(EVENTS).parts[0]
        out.append((str(path.relative_to(EVENTS)), env, "successes" if cause == "none" else "failures"))
    changes = change_files()
    assert len(changes) >= 8, changes
    for path in changes:
        out.append((f"changes/{path.name}", load_json(path), "changes"))
    change = load_json(changes[0])
    failed = copy.deepcopy(change)
    failed["detail"].update(errorCode="AccessDenied", errorMessage="not authorized")
    failed["detail"]["eventID"] = failed["id"] = "near-miss-failed-iam-change"
    out.append(("near miss: a failed IAM change", failed, None))
    read = copy.deepcopy(change)
    read["detail"].update(eventName="GetRole", readOnly=True)
    read["detail"]["eventID"] = read["id"] = "near-miss-iam-read"
    out.append(("near miss: IAM GetRole", read, None))
    unfollowed = copy.deepcopy(change)
    unfollowed["detail"]["eventName"] = "CreateUser"
    unfollowed["detail"]["eventID"] = unfollowed["id"] = "near-miss-iam-create-user"
    out.append(("near miss: IAM CreateUser", unfollowed, None))
    replay = load_json(EVENTS / "replay/cloudtrail-log-file-mixed.json")["Records"]
    others = [r for r in replay if r["eventName"] != "AssumeRoleWithWebIdentity"]
    assert len(others) == 2, "the replay file's S3 GetObject and IAM-user AssumeRole records"
    for record in others:
        out.append((f"replay {record['eventSource']} {record['eventName']}", envelope(record), None))
    base = load_json(EVENTS / "none/github-push-main-success.json")
    renamed = copy.deepcopy(base)
    renamed["detail"]["eventName"] = "AssumeRoleWithSAML"
    renamed["detail"]["eventID"] = renamed["id"] = "near-miss-saml"
    out.append(("near miss: AssumeRoleWithSAML", renamed, None))
    custom = copy.deepcopy(base)
    custom["source"] = "acme.sts"
    custom["detail"]["eventID"] = custom["id"] = "near-miss-source"
    out.append(("near miss: custom source", custom, None))
    real = ROOT / "tests" / "data" / "real-events"
    if real.is_dir():
        for path in sorted(real.glob("*.json")):
            doc = load_json(path)
            record = doc.get("detail", doc) if isinstance(doc, dict) else None
            if not (isinstance(record, dict) and record.get("eventName") == "AssumeRoleWithWebIdentity"
                    and "eventID" in record):
                continue
            record = copy.deepcopy(record)
            record["eventID"] = f"real-{path.stem}"
            expected = "failures" if "errorCode" in record else "successes"
            out.append((f"real {path.name}", envelope(record), expected))
    return out


def as_doc(doc):
    """A policy document as moto returns it: a dict, JSON, URL-encoded JSON, or (for
    documents its CloudFormation created) a Python repr."""
    if isinstance(doc, dict):
        return doc
    doc = urllib.parse.unquote(doc)
    try:
        return json.loads(doc)
    except json.JSONDecodeError:
        return ast.literal_eval(doc)


def entry(env: dict, bus: str) -> dict:
    return {"Source": env["source"], "DetailType": env["detail-type"], "Detail": json.dumps(env["detail"]),
            "Resources": env["resources"], "EventBusName": bus}


def drain(sqs, url) -> set[str]:
    seen = set()
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not got:
            return seen
        for m in got:
            seen.add(json.loads(m["Body"])["detail"]["eventID"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def kind_of(rule):
    return rule_kind(rule["Properties"]["EventPattern"])


def expected_ids(cases, kind):
    return {env["detail"]["eventID"] for _, env, k in cases if k == kind}


def test_sample_directories_agree_with_error_codes():
    """Sanity of the expectation itself: a `none/` sample has no errorCode, the rest have one."""
    for label, env, kind in samples():
        if kind in ("failures", "successes") and not label.startswith("real"):
            assert ("errorCode" in env["detail"]) == (kind == "failures"), label


@pytest.mark.parametrize("which", ["template", "forwarder"])
def test_patterns_match_exactly_their_samples(aws, template, forwarder, which):
    t = template if which == "template" else forwarder
    region = "eu-west-1" if which == "template" else "eu-west-2"
    events, sqs = aws("events", region), aws("sqs", region)
    cases = samples()
    assert sum(k == "failures" for _, _, k in cases) >= 30 and sum(k == "successes" for _, _, k in cases) >= 6
    assert sum(k == "changes" for _, _, k in cases) >= 8
    buses = {}
    for name, rule in resources_of(t, "AWS::Events::Rule").items():
        props = rule["Properties"]
        bus = "default" if "EventBusName" not in props else f"test-{name.lower()}"
        if bus != "default":
            events.create_event_bus(Name=bus)
        events.put_rule(Name=name, EventPattern=json.dumps(props["EventPattern"]), State=props["State"],
                        EventBusName=bus)
        described = events.describe_rule(Name=name, EventBusName=bus)
        assert described["State"] == props["State"]
        url = sqs.create_queue(QueueName=f"{which}-{name}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
        buses.setdefault(bus, []).append((name, kind_of(rule), url))
    for bus, bus_rules in buses.items():
        for label, env, _ in cases:
            result = events.put_events(Entries=[entry(env, bus)])
            assert result["FailedEntryCount"] == 0, (label, result)
        for name, kind, url in bus_rules:
            got = drain(sqs, url)
            want = expected_ids(cases, kind)
            assert got == want, (f"{which}:{name} on {bus}: missed {sorted(want - got)}, "
                                 f"wrongly matched {sorted(got - want)}")


def test_moto_supports_exists_both_ways(aws):
    """The rules rely on it: moto 5.2.5 evaluates {"exists": true|false} on leaf fields."""
    events, sqs = aws("events", "ap-south-1"), aws("sqs", "ap-south-1")
    url = sqs.create_queue(QueueName="exists-probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="absent", EventPattern=json.dumps({"detail": {"errorCode": [{"exists": False}]}}))
    events.put_targets(Rule="absent", Targets=[{"Id": "q", "Arn": arn}])
    events.put_events(Entries=[
        {"Source": "x", "DetailType": "d", "Detail": json.dumps({"eventID": "with", "errorCode": "AccessDenied"})},
        {"Source": "x", "DetailType": "d", "Detail": json.dumps({"eventID": "without"})},
    ])
    assert drain(sqs, url) == {"without"}
