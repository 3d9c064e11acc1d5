#!/usr/bin/env python3
"""Seed a moto server for the end-to-end tier of oidc-watch.

Usage (from the e2e venv):
  target/test-venv/main/bin/python tests/e2e/seed.py --endpoint http://127.0.0.1:5055 \
      events/accounts/*.json [--home-account 123456789012] [--read-role-name oidc-watch-read] \
      [--out target/e2e/seed.json]

Creates, in moto:
  * for every account snapshot (docs/contracts.md "Account snapshots", or the output of
    `aws iam get-account-authorization-details`): every role (trust policy, MaxSessionDuration,
    path) and every OIDC provider (URL, client ids, thumbprints), IN THE SNAPSHOT'S ACCOUNT;
  * in every snapshot account other than the home account, the cross-account read role
    (--read-role-name, trusted by the home account) that oidc-monitor assumes;
  * in the home account: SNS topic `oidc-watch-alerts`, SQS queue `oidc-watch-alerts-tap`
    subscribed to it (raw delivery off: the SQS body is the SNS JSON envelope), and the
    DynamoDB table `oidc-watch-state` (pk S / sk S, PAY_PER_REQUEST, TTL on `expires_at`).

How moto 5.2.5 picks the account of a request (moto/core/responses.py, get_current_account):
  1. env MOTO_ACCOUNT_ID of the *server* process (pins everything; moto.sh unsets it);
  2. request header `x-moto-account-id` (what this script uses to write into each account);
  3. the access key id, if IAM in some account knows it (keys from iam:CreateAccessKey in that
     account, or temporary keys from sts:AssumeRole, which land in the account of the role ARN);
  4. otherwise the default account 123456789012.
  A 12-digit access key id does NOT select that account. So a process using made-up keys
  (AWS_ACCESS_KEY_ID=testing) lives in 123456789012, and reaches the others with AssumeRole.
  When --home-account is not 123456789012, this script creates an IAM user with an access key
  in the home account and prints its credentials: use them as the function's credentials.

Prints one JSON object (and writes it to --out): endpoint, region, home_account, topic_arn,
queue_url, queue_arn, subscription_arn, table_name, read_role_name, credentials, accounts.
Idempotent against a running moto: existing resources are updated or kept.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

DEFAULT_ACCOUNT = "123456789012"  # moto's default account
TOPIC_NAME = "oidc-watch-alerts"
QUEUE_NAME = "oidc-watch-alerts-tap"
TABLE_NAME = "oidc-watch-state"
E2E_USER = "oidc-watch-e2e"


def client(service: str, args: argparse.Namespace, account: str | None = None,
           key: str = "testing", secret: str = "testing"):
    c = boto3.client(
        service,
        endpoint_url=args.endpoint,
        region_name=args.region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 2, "mode": "standard"},
                      connect_timeout=5, read_timeout=30),
    )
    if account:
        def pin_account(request, **_):
            request.headers["x-moto-account-id"] = account
        c.meta.events.register_first("before-sign.*.*", pin_account)
    return c


def policy_json(doc) -> str:
    """The trust policy as the JSON string CreateRole wants: a dict, a JSON string, or the
    URL-encoded string the IAM API returns."""
    if isinstance(doc, dict):
        return json.dumps(doc)
    if isinstance(doc, str):
        text = doc.strip()
        if not text.startswith("{"):
            text = urllib.parse.unquote(text)
        json.loads(text)  # fail loudly on a broken snapshot
        return text
    raise ValueError(f"unexpected AssumeRolePolicyDocument type {type(doc).__name__}")


def account_of_arn(arn: str) -> str:
    return arn.split(":")[4]


def load_snapshot(path: Path) -> dict:
    data = json.loads(path.read_text())
    roles = data.get("Roles")
    if roles is None:
        roles = data.get("RoleDetailList", [])  # get-account-authorization-details
    providers = data.get("OpenIDConnectProviders", [])
    account = data.get("AccountId")
    if not account:
        arns = [r["Arn"] for r in roles if "Arn" in r] + [p["Arn"] for p in providers if "Arn" in p]
        if not arns:
            raise SystemExit(f"{path}: no AccountId and no ARN to take it from")
        account = account_of_arn(arns[0])
    return {"path": str(path), "account": str(account), "roles": roles, "providers": providers}


def seed_role(iam, role: dict) -> str:
    name = role["RoleName"]
    doc = policy_json(role["AssumeRolePolicyDocument"])
    kwargs = {
        "RoleName": name,
        "AssumeRolePolicyDocument": doc,
        "Path": role.get("Path") or "/",
        "MaxSessionDuration": int(role.get("MaxSessionDuration") or 3600),
    }
    if role.get("Description"):
        kwargs["Description"] = role["Description"]
    if role.get("Tags"):
        kwargs["Tags"] = role["Tags"]
    try:
        return iam.create_role(**kwargs)["Role"]["Arn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=doc)
        iam.update_role(RoleName=name, MaxSessionDuration=kwargs["MaxSessionDuration"])
        return iam.get_role(RoleName=name)["Role"]["Arn"]


def seed_provider(iam, provider: dict, account: str) -> str:
    url = provider["Url"]
    if "://" not in url:
        url = "https://" + url
    thumbprints = list(provider.get("ThumbprintList") or [])  # moto accepts an empty list
    client_ids = list(provider.get("ClientIDList") or [])
    try:
        arn = iam.create_open_id_connect_provider(
            Url=url, ClientIDList=client_ids, ThumbprintList=thumbprints
        )["OpenIDConnectProviderArn"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
        arn = f"arn:aws:iam::{account}:oidc-provider/{url.split('://', 1)[1]}"
        iam.update_open_id_connect_provider_thumbprint(
            OpenIDConnectProviderArn=arn, ThumbprintList=thumbprints)
    want = provider.get("Arn")
    if want and want != arn:
        print(f"warning: moto named the provider {arn}, snapshot says {want}", file=sys.stderr)
    return arn


def seed_read_role(iam, name: str, home: str) -> str:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{home}:root"},
                       "Action": "sts:AssumeRole"}],
    }
    return seed_role(iam, {"RoleName": name, "AssumeRolePolicyDocument": trust})


def home_credentials(args: argparse.Namespace) -> dict:
    if args.home_account == DEFAULT_ACCOUNT:
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    iam = client("iam", args, args.home_account)
    try:
        iam.create_user(UserName=E2E_USER)
    except ClientError as e:
        if e.response["Error"]["Code"] != "EntityAlreadyExists":
            raise
    for old in iam.list_access_keys(UserName=E2E_USER)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=E2E_USER, AccessKeyId=old["AccessKeyId"])
    key = iam.create_access_key(UserName=E2E_USER)["AccessKey"]
    # Check that moto maps the new key to the home account.
    who = client("sts", args, None, key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()
    if who["Account"] != args.home_account:
        raise SystemExit(f"moto maps the new key to {who['Account']}, not {args.home_account}")
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def seed_home(args: argparse.Namespace) -> dict:
    home = args.home_account
    sns = client("sns", args, home)
    sqs = client("sqs", args, home)
    ddb = client("dynamodb", args, home)

    topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
    queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    # moto does not enforce queue policies; set the one AWS needs so the shape is realistic.
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                       "Action": "sqs:SendMessage", "Resource": queue_arn,
                       "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}}}],
    })})
    existing = [s for s in sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
                if s["Endpoint"] == queue_arn]
    if existing:
        sub_arn = existing[0]["SubscriptionArn"]
    else:
        sub_arn = sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                                Attributes={"RawMessageDelivery": "false"},
                                ReturnSubscriptionArn=True)["SubscriptionArn"]

    try:
        ddb.create_table(
            TableName=TABLE_NAME,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceInUseException":
            raise
    ttl = ddb.describe_time_to_live(TableName=TABLE_NAME)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        ddb.update_time_to_live(TableName=TABLE_NAME, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expires_at"})
    return {"topic_arn": topic_arn, "queue_url": queue_url, "queue_arn": queue_arn,
            "subscription_arn": sub_arn, "table_name": TABLE_NAME}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("snapshots", nargs="*", type=Path, help="account snapshot JSON files")
    p.add_argument("--endpoint", default="http://127.0.0.1:5055")
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--home-account", default=DEFAULT_ACCOUNT,
                   help="account of the function, topic, queue and table (default: moto's default)")
    p.add_argument("--read-role-name", default="oidc-watch-read",
                   help="role created in every other snapshot account for cross-account reads; '' for none")
    p.add_argument("--out", type=Path, help="also write the JSON here")
    args = p.parse_args()

    out: dict = {"endpoint": args.endpoint, "region": args.region,
                 "home_account": args.home_account, "read_role_name": args.read_role_name or None}
    out["credentials"] = home_credentials(args)
    out.update(seed_home(args))

    accounts: dict = {}
    for path in args.snapshots:
        snap = load_snapshot(path)
        acct = snap["account"]
        iam = client("iam", args, acct)
        entry = accounts.setdefault(acct, {"snapshots": [], "roles": [], "oidc_providers": []})
        entry["snapshots"].append(snap["path"])
        for role in snap["roles"]:
            arn = seed_role(iam, role)
            if role.get("Arn") and role["Arn"] != arn:
                print(f"warning: moto named the role {arn}, snapshot says {role['Arn']}", file=sys.stderr)
            entry["roles"].append(arn)
        for provider in snap["providers"]:
            entry["oidc_providers"].append(seed_provider(iam, provider, acct))
        if args.read_role_name and acct != args.home_account:
            entry["read_role"] = seed_read_role(iam, args.read_role_name, args.home_account)
    out["accounts"] = accounts

    text = json.dumps(out, indent=2, sort_keys=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
