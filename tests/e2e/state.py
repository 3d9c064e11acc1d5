#!/usr/bin/env python3
"""Read what the function under test left in moto, for end-to-end assertions.

Usage (from the e2e venv, after seed.py wrote target/e2e/seed.json):
  python tests/e2e/state.py alerts [--seed target/e2e/seed.json] [--keep]
      Drains the tap queue (oidc-watch-alerts-tap) and prints one JSON object per SNS message:
      {"subject", "message" (parsed when JSON, else the string), "attributes" {name: value},
       "message_id", "timestamp"}. --keep leaves the messages in the queue (visibility 0).
  python tests/e2e/state.py table [--seed ...] [--prefix PK_PREFIX]
      Scans the state table and prints one JSON object per item (DynamoDB types unwrapped).
  python tests/e2e/state.py count-alerts [--seed ...]
      Prints the number of messages drained (and drains them).
  python tests/e2e/state.py calls [--recording target/e2e/moto-recording.jsonl] [--summary]
      One JSON object per request moto received since the last reset-recording (moto.sh):
      {"service", "action", "access_key", "account_header"}; --summary prints
      {"iam.GetRole": 3, ...} instead. For asserting caching (GetRole count) and retries.
Every loop is bounded (at most 100 receive calls, no long polling: SNS->SQS delivery in moto
is synchronous, so a message published before the invoke returned is already there).
"""
from __future__ import annotations

import argparse
import base64
import collections
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.config import Config

DEFAULT_SEED = Path(os.environ.get("E2E_STATE", Path(__file__).resolve().parents[2] / "target" / "e2e")) / "seed.json"


def clients(seed: dict):
    creds = seed["credentials"]
    kw = dict(endpoint_url=seed["endpoint"], region_name=seed["region"],
              aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
              aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
              config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30))
    return boto3.client("sqs", **kw), boto3.client("dynamodb", **kw)


def drain(sqs, queue_url: str, keep: bool) -> list[dict]:
    out = []
    for _ in range(100):
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   VisibilityTimeout=30).get("Messages", [])
        if not msgs:
            break
        for m in msgs:
            env = json.loads(m["Body"])
            try:
                message = json.loads(env.get("Message", ""))
            except ValueError:
                message = env.get("Message")
            out.append({
                "message_id": env.get("MessageId"),
                "timestamp": env.get("Timestamp"),
                "subject": env.get("Subject"),
                "attributes": {k: v.get("Value") for k, v in (env.get("MessageAttributes") or {}).items()},
                "message": message,
            })
            if keep:
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"],
                                              VisibilityTimeout=0)
            else:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
        if keep:
            break  # the same messages would come back
    return out


def scan(ddb, table: str, prefix: str | None) -> list[dict]:
    des = TypeDeserializer()
    items, start = [], None
    for _ in range(100):
        kw = {"TableName": table, "ConsistentRead": True}
        if start:
            kw["ExclusiveStartKey"] = start
        page = ddb.scan(**kw)
        for it in page.get("Items", []):
            plain = {k: des.deserialize(v) for k, v in it.items()}
            if prefix and not str(plain.get("pk", "")).startswith(prefix):
                continue
            items.append(plain)
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    return items


def calls(recording: Path) -> list[dict]:
    """Service and action of each recorded request. Query protocols (IAM, STS, SNS) put
    Action= in the form body; JSON protocols (DynamoDB, SQS, Logs...) name it in X-Amz-Target."""
    out = []
    if not recording.exists():
        return out
    for line in recording.read_text().splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        h = {k.lower(): v for k, v in r.get("headers", {}).items()}
        auth = h.get("authorization", "")
        m = re.search(r"Credential=([^/]+)/[^/]+/[^/]+/([^/]+)/aws4_request", auth)
        service, key = (m.group(2), m.group(1)) if m else (None, None)
        action = None
        if h.get("x-amz-target"):
            action = h["x-amz-target"].split(".")[-1]
        else:
            body = r.get("body") or ""
            if r.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", "replace")
            form = urllib.parse.parse_qs(body) if isinstance(body, str) else {}
            if "Action" in form:
                action = form["Action"][0]
            else:
                action = f"{r.get('method')} {urllib.parse.urlsplit(r.get('url', '')).path}"
        out.append({"service": service, "action": action, "access_key": key,
                    "account_header": h.get("x-moto-account-id")})
    return out


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["alerts", "count-alerts", "table", "calls"])
    p.add_argument("--seed", type=Path, default=DEFAULT_SEED)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--prefix")
    p.add_argument("--recording", type=Path, default=DEFAULT_SEED.parent / "moto-recording.jsonl")
    p.add_argument("--summary", action="store_true")
    args = p.parse_args()
    if args.what == "calls":
        rows = calls(args.recording)
        if args.summary:
            print(json.dumps(dict(sorted(collections.Counter(
                f"{r['service']}.{r['action']}" for r in rows).items())), indent=1))
        else:
            for r in rows:
                print(json.dumps(r, sort_keys=True))
        return 0
    seed = json.loads(args.seed.read_text())
    sqs, ddb = clients(seed)
    if args.what in ("alerts", "count-alerts"):
        alerts = drain(sqs, seed["queue_url"], args.keep)
        if args.what == "count-alerts":
            print(len(alerts))
        else:
            for a in alerts:
                print(json.dumps(a, sort_keys=True, default=str))
    else:
        for it in scan(ddb, seed["table_name"], args.prefix):
            print(json.dumps(it, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
