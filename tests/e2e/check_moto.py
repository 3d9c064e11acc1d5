#!/usr/bin/env python3
"""Check, against a seeded moto, the emulator behaviours the oidc-monitor end-to-end tests rely on.

Usage: target/test-venv/main/bin/python tests/e2e/check_moto.py target/e2e/seed.json
Run after seed.py. Exits non-zero naming each behaviour that is not as documented in
tests/e2e/README.md, so a moto upgrade that changes one is caught here, not in a flaky test.
Leaves the table and the tap queue as it found them (its items use pk prefix `check#`).
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

failures: list[str] = []


def check(name: str, ok: bool, detail: str = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
    if not ok:
        failures.append(name)


def main() -> int:
    seed = json.loads(Path(sys.argv[1]).read_text())
    endpoint, region = seed["endpoint"], seed["region"]
    creds = seed["credentials"]
    cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)

    def c(service, key=creds["AWS_ACCESS_KEY_ID"], secret=creds["AWS_SECRET_ACCESS_KEY"], token=None):
        return boto3.client(service, endpoint_url=endpoint, region_name=region, config=cfg,
                            aws_access_key_id=key, aws_secret_access_key=secret,
                            aws_session_token=token)

    home = seed["home_account"]
    check("home credentials map to the home account",
          c("sts").get_caller_identity()["Account"] == home)

    # --- IAM: accounts are separate; cross-account reads through sts:AssumeRole ---------------
    others = [a for a in seed["accounts"] if a != home]
    if others:
        acct = others[0]
        role_arn = seed["accounts"][acct]["roles"][0]
        role_name = role_arn.split("/")[-1]
        try:
            c("iam").get_role(RoleName=role_name)
            check(f"role {role_name} is not visible from the home account", False)
        except ClientError as e:
            check(f"role {role_name} is not visible from the home account",
                  e.response["Error"]["Code"] == "NoSuchEntity", e.response["Error"]["Code"])
        read_role = f"arn:aws:iam::{acct}:role/{seed['read_role_name'] or 'oidc-watch-read'}"
        cr = c("sts").assume_role(RoleArn=read_role, RoleSessionName="check")["Credentials"]
        assumed = lambda s: c(s, cr["AccessKeyId"], cr["SecretAccessKey"], cr["SessionToken"])  # noqa: E731
        check("assumed-role credentials act in the role's account",
              assumed("sts").get_caller_identity()["Account"] == acct)
        got = assumed("iam").get_role(RoleName=role_name)["Role"]
        check("GetRole with assumed credentials finds the snapshot role", got["Arn"] == role_arn)
        providers = assumed("iam").list_open_id_connect_providers()["OpenIDConnectProviderList"]
        check("ListOpenIDConnectProviders lists the account's providers",
              sorted(p["Arn"] for p in providers) == sorted(seed["accounts"][acct]["oidc_providers"]))
        p = assumed("iam").get_open_id_connect_provider(OpenIDConnectProviderArn=providers[0]["Arn"])
        check("GetOpenIDConnectProvider returns Url without scheme, ClientIDList, ThumbprintList",
              "://" not in p["Url"] and "ClientIDList" in p and "ThumbprintList" in p, p["Url"])

        # The raw GetRole answer URL-encodes the trust policy, as AWS does (boto3 decodes it).
        raw = {}
        iam = assumed("iam")
        iam.meta.events.register("after-call.iam.GetRole",
                                 lambda http_response, **_: raw.setdefault("body", http_response.text))
        iam.get_role(RoleName=role_name)
        body = raw.get("body", "")
        check("raw GetRole AssumeRolePolicyDocument is URL-encoded",
              "<AssumeRolePolicyDocument>%7B" in body, body[body.find("<AssumeRolePolicyDocument>"):][:60])

        try:
            missing = c("sts").assume_role(RoleArn=f"arn:aws:iam::{acct}:role/does-not-exist",
                                           RoleSessionName="check")
            check("AssumeRole of a role that does not exist SUCCEEDS in moto (not like AWS)",
                  "Credentials" in missing)
        except ClientError as e:
            check("AssumeRole of a role that does not exist SUCCEEDS in moto (not like AWS)", False, str(e))

    # --- SNS -> SQS: the tap receives the SNS envelope ------------------------------------------
    sns, sqs = c("sns"), c("sqs")
    marker = str(uuid.uuid4())
    sns.publish(TopicArn=seed["topic_arn"], Subject="check subject",
                Message=json.dumps({"version": "1.0", "source": "custom", "marker": marker}),
                MessageAttributes={"severity": {"DataType": "String", "StringValue": "high"},
                                   "cause": {"DataType": "String", "StringValue": "SubjectMismatch"}})
    # Delivery is synchronous inside Publish: the message is in the queue when Publish returns.
    msgs = sqs.receive_message(QueueUrl=seed["queue_url"], MaxNumberOfMessages=10,
                               WaitTimeSeconds=0, MessageAttributeNames=["All"]).get("Messages", [])
    mine = [m for m in msgs if marker in m["Body"]]
    check("SNS publish is in the tap queue as soon as Publish returns", len(mine) == 1, f"{len(msgs)} messages")
    if mine:
        env = json.loads(mine[0]["Body"])
        check("SQS body is the SNS envelope (Type Notification, TopicArn, Subject, Message)",
              env.get("Type") == "Notification" and env.get("TopicArn") == seed["topic_arn"]
              and env.get("Subject") == "check subject" and json.loads(env["Message"])["marker"] == marker)
        check("envelope MessageAttributes are {name: {Type, Value}}",
              env.get("MessageAttributes", {}).get("severity") == {"Type": "String", "Value": "high"},
              json.dumps(env.get("MessageAttributes")))
        check("the SQS message itself carries no MessageAttributes (raw delivery off)",
              not mine[0].get("MessageAttributes"))
    for m in msgs:
        sqs.delete_message(QueueUrl=seed["queue_url"], ReceiptHandle=m["ReceiptHandle"])

    # --- DynamoDB: conditional writes, ADD, TTL ------------------------------------------------
    ddb = c("dynamodb")
    table = seed["table_name"]
    desc = ddb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    check("TTL is enabled on expires_at", desc.get("TimeToLiveStatus") == "ENABLED"
          and desc.get("AttributeName") == "expires_at", json.dumps(desc))
    pk = f"check#{uuid.uuid4()}"
    key = {"pk": {"S": pk}, "sk": {"S": "incident"}}
    ddb.put_item(TableName=table, Item={**key, "n": {"N": "1"}, "expires_at": {"N": "1"}},
                 ConditionExpression="attribute_not_exists(pk)")
    try:
        ddb.put_item(TableName=table, Item={**key, "n": {"N": "2"}},
                     ConditionExpression="attribute_not_exists(pk)",
                     ReturnValuesOnConditionCheckFailure="ALL_OLD")
        check("second conditional put fails", False)
    except ClientError as e:
        code = e.response["Error"]["Code"]
        check("second conditional put fails with ConditionalCheckFailedException",
              code == "ConditionalCheckFailedException", code)
        check("ReturnValuesOnConditionCheckFailure=ALL_OLD returns the old item",
              e.response.get("Item", {}).get("n") == {"N": "1"}, json.dumps(e.response.get("Item")))
    r = ddb.update_item(TableName=table, Key=key, UpdateExpression="ADD attempts :one SET last_seen = :t",
                        ExpressionAttributeValues={":one": {"N": "1"}, ":t": {"S": "x"}},
                        ReturnValues="UPDATED_NEW")
    r = ddb.update_item(TableName=table, Key=key, UpdateExpression="ADD attempts :one",
                        ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW")
    check("UpdateItem ADD counts atomically from absent", r["Attributes"]["attempts"] == {"N": "2"})
    ckey = {"pk": {"S": pk}, "sk": {"S": "minute#0"}}
    r = ddb.update_item(TableName=table, Key=ckey, UpdateExpression="ADD failures :one",
                        ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW")
    check("UpdateItem ADD creates the item", r["Attributes"]["failures"] == {"N": "1"})
    try:
        ddb.update_item(TableName=table, Key=key, UpdateExpression="SET alerted = :t",
                        ConditionExpression="attribute_not_exists(alerted) OR alerted < :cut",
                        ExpressionAttributeValues={":t": {"N": "100"}, ":cut": {"N": "50"}})
        ddb.update_item(TableName=table, Key=key, UpdateExpression="SET alerted = :t",
                        ConditionExpression="attribute_not_exists(alerted) OR alerted < :cut",
                        ExpressionAttributeValues={":t": {"N": "100"}, ":cut": {"N": "50"}})
        check("conditional UpdateItem (cooldown) fails the second time", False)
    except ClientError as e:
        check("conditional UpdateItem (cooldown) fails the second time",
              e.response["Error"]["Code"] == "ConditionalCheckFailedException")
    got = ddb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    check("moto does NOT expire items by TTL (expires_at=1 still readable)", got is not None)
    q = ddb.query(TableName=table, KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
                  ExpressionAttributeValues={":p": {"S": pk}, ":s": {"S": "minute#"}})
    check("Query with begins_with on sk", q["Count"] == 1)

    # Races: N threads, one conditional put each on the same new key; exactly one must win.
    rounds, threads, extra = 30, 8, 0
    for i in range(rounds):
        rk = {"pk": {"S": f"{pk}#race{i}"}, "sk": {"S": "incident"}}
        wins = []
        clients = [c("dynamodb") for _ in range(threads)]
        def put(cl):
            try:
                cl.put_item(TableName=table, Item=rk, ConditionExpression="attribute_not_exists(pk)")
                wins.append(1)
            except ClientError:
                pass
        ts = [threading.Thread(target=put, args=(cl,)) for cl in clients]
        [t.start() for t in ts]
        [t.join(timeout=30) for t in ts]
        extra += max(0, len(wins) - 1)
        ddb.delete_item(TableName=table, Key=rk)
    check(f"concurrent conditional puts: one winner per key ({rounds} rounds x {threads} threads)",
          extra == 0, f"{extra} extra winners")

    # Concurrent ADDs on one counter must not lose updates.
    akey = {"pk": {"S": pk}, "sk": {"S": "minute#race"}}
    per_thread = 10
    def add(cl):
        for _ in range(per_thread):
            cl.update_item(TableName=table, Key=akey, UpdateExpression="ADD failures :one",
                           ExpressionAttributeValues={":one": {"N": "1"}})
    ts = [threading.Thread(target=add, args=(c("dynamodb"),)) for _ in range(threads)]
    [t.start() for t in ts]
    [t.join(timeout=60) for t in ts]
    total = ddb.get_item(TableName=table, Key=akey, ConsistentRead=True)["Item"]["failures"]["N"]
    check(f"concurrent ADDs lose nothing ({threads} threads x {per_thread})",
          int(total) == threads * per_thread, total)

    # --- DynamoDB: the expressions oidc-monitor's state store sends (functions/aws/src/dynamodb.rs)
    skey = {"pk": {"S": pk}, "sk": {"S": "sets"}}
    opened = "attribute_not_exists(pk) OR (#until < :now AND NOT contains(event_ids, :event))"
    ddb.put_item(TableName=table, Item={**skey, "until": {"N": "200"}, "claim_until": {"N": "130"},
                                        "alerted": {"BOOL": False}, "event_ids": {"SS": ["e1"]}},
                 ConditionExpression=opened, ExpressionAttributeNames={"#until": "until"},
                 ExpressionAttributeValues={":now": {"N": "100"}, ":event": {"S": "e1"}})

    def attempt(event: str, cap: int):
        return ddb.update_item(
            TableName=table, Key=skey, UpdateExpression="ADD attempts :one, event_ids :events",
            ConditionExpression="attribute_exists(pk) AND #until >= :now AND NOT contains(event_ids, :event)"
                                " AND size(event_ids) < :cap",
            ExpressionAttributeNames={"#until": "until"},
            ExpressionAttributeValues={":one": {"N": "1"}, ":now": {"N": "150"}, ":events": {"SS": [event]},
                                       ":event": {"S": event}, ":cap": {"N": str(cap)}},
            ReturnValues="ALL_NEW")

    def refused(call) -> str:
        try:
            call()
            return "accepted"
        except ClientError as e:
            return e.response["Error"]["Code"]

    r = attempt("e2", 2)["Attributes"]
    check("ADD to a string set, size() < cap, ALL_NEW returns the set",
          sorted(r["event_ids"]["SS"]) == ["e1", "e2"] and r["attempts"] == {"N": "1"}, json.dumps(r))
    check("NOT contains(string set, member) fails the condition",
          refused(lambda: attempt("e2", 9)) == "ConditionalCheckFailedException")
    check("size(string set) < cap fails the condition when full",
          refused(lambda: attempt("e3", 2)) == "ConditionalCheckFailedException")
    try:
        ddb.put_item(TableName=table, Item={**skey, "until": {"N": "1"}}, ConditionExpression=opened,
                     ExpressionAttributeNames={"#until": "until"},
                     ExpressionAttributeValues={":now": {"N": "300"}, ":event": {"S": "e2"}})
        check("an ended incident that remembers the event is not reopened by it", False)
    except ClientError as e:
        check("an ended incident that remembers the event is not reopened by it",
              e.response["Error"]["Code"] == "ConditionalCheckFailedException")
    ddb.update_item(TableName=table, Key=skey, UpdateExpression="REMOVE claim_until",
                    ConditionExpression="attribute_exists(pk) AND alerted = :no",
                    ExpressionAttributeValues={":no": {"BOOL": False}})
    got = ddb.get_item(TableName=table, Key=skey, ConsistentRead=True)["Item"]
    check("conditional REMOVE drops the attribute", "claim_until" not in got, json.dumps(got))
    # UPDATED_NEW: AWS returns every attribute the update names; moto only those whose value
    # changed. Re-adding a member changes nothing, so moto returns no set: the monitor asks
    # ALL_NEW (count_alert), which both answer with the set.
    again = ddb.update_item(TableName=table, Key=skey, UpdateExpression="ADD event_ids :e",
                            ExpressionAttributeValues={":e": {"SS": ["e1"]}}, ReturnValues="UPDATED_NEW")
    check("UPDATED_NEW leaves out a set the update did not change (NOT like AWS)",
          "event_ids" not in again.get("Attributes", {}), json.dumps(again.get("Attributes")))
    # size() of a missing attribute: AWS makes the comparison false; moto answers HTTP 500.
    # Every size() the monitor sends comes after attribute_exists/attribute_not_exists of
    # the same attribute, and moto evaluates AND/OR left to right, short-circuiting.
    bare = lambda cond: ddb.update_item(  # noqa: E731
        TableName=table, Key=skey, UpdateExpression="SET touched = :cap", ConditionExpression=cond,
        ExpressionAttributeValues={":cap": {"N": "3"}})
    try:
        bare("size(no_such_attribute) < :cap")
        unguarded = "accepted"
    except ClientError as e:
        unguarded = str(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))
    check("size() of a missing attribute is an HTTP 500 in moto (NOT like AWS)", unguarded == "500", unguarded)
    check("attribute_not_exists(x) OR size(x) < :cap short-circuits",
          refused(lambda: bare("attribute_not_exists(no_such_attribute) OR size(no_such_attribute) < :cap"))
          == "accepted")

    for k in (key, ckey, akey, skey):
        ddb.delete_item(TableName=table, Key=k)

    print(f"{'all checks passed' if not failures else str(len(failures)) + ' checks failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    t0 = time.time()
    rc = main()
    print(f"({time.time() - t0:.1f} s)")
    sys.exit(rc)
