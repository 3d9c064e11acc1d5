"""The deployed shape, as far as moto's CloudFormation goes: the central stack (SAM
translated, as `sam deploy` would) in the central account, the forwarder stack in a
member account in two regions, wired with the central stack's own outputs; then member
events travel forwarder rule -> central bus -> central rules.

What moto cannot do, and so is not checked here: the resource types it does not create
(Contributor Insights rules, the bus policy, queue policies, the topic policy, SNS
subscriptions; removed before the create, their references replaced by placeholders),
the bus policy's aws:PrincipalOrgID, IAM evaluation, rule states (moto fires rules in
any state), and invoking a Lambda target (moto raises for Lambda targets of rules, so
the test swaps the monitor target for an SQS queue after the stack is created)."""

import io
import json
import re
import zipfile

import pytest

from conftest import FORWARDER, TEMPLATE, resources_of, transform
from test_patterns import CENTRAL, MEMBER, as_doc, drain, entry, expected_ids, rule_kind, samples

UNSUPPORTED = {"AWS::CloudWatch::InsightRule", "AWS::Events::EventBusPolicy", "AWS::SQS::QueuePolicy",
               "AWS::SNS::Subscription", "AWS::SNS::TopicPolicy"}
STATE = "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"


def for_moto(cfn_template: dict) -> tuple[dict, set]:
    t = json.loads(json.dumps(cfn_template))
    gone = {k for k, v in t["Resources"].items() if v["Type"] in UNSUPPORTED}
    for k in gone:
        del t["Resources"][k]

    def walk(x):
        if isinstance(x, dict):
            if x.get("Ref") in gone:
                return f"{x['Ref']}-ref"
            if "Fn::GetAtt" in x and x["Fn::GetAtt"][0] in gone:
                return "-".join(x["Fn::GetAtt"])
            if isinstance(x.get("Fn::Sub"), str):
                return {"Fn::Sub": re.sub(
                    r"\$\{(\w+)(?:\.(\w+))?\}",
                    lambda m: f"{m.group(1)}-{m.group(2) or 'ref'}" if m.group(1) in gone else m.group(0),
                    x["Fn::Sub"])}
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    t["Resources"], t["Outputs"] = walk(t["Resources"]), walk(t.get("Outputs", {}))
    for fn in resources_of(t, "AWS::Lambda::Function").values():
        fn["Properties"]["Code"] = {"S3Bucket": "oidc-watch-artifacts", "S3Key": "bootstrap.zip"}
    return t, gone


@pytest.fixture(scope="module")
def member(aws):
    creds = aws("sts").assume_role(RoleArn=f"arn:aws:iam::{MEMBER}:role/bootstrap",
                                   RoleSessionName="infra-tests")["Credentials"]
    kwargs = {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
              "aws_session_token": creds["SessionToken"]}
    assert aws("sts", **kwargs).get_caller_identity()["Account"] == MEMBER
    return lambda service, region="us-east-1": aws(service, region, **kwargs)


@pytest.fixture(scope="module")
def central(aws, template):
    region = "us-east-1"
    s3 = aws("s3", region)
    s3.create_bucket(Bucket="oidc-watch-artifacts")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", b"\x7fELF")
    s3.put_object(Bucket="oidc-watch-artifacts", Key="bootstrap.zip", Body=buf.getvalue())
    cfn_template, gone = for_moto(transform(template))
    cfn = aws("cloudformation", region)
    cfn.create_stack(StackName="oidc-watch", TemplateBody=json.dumps(cfn_template),
                     Capabilities=["CAPABILITY_IAM"], Parameters=[
                         {"ParameterKey": "OrganizationId", "ParameterValue": "o-abcdefghij"},
                         {"ParameterKey": "AllowedOwners", "ParameterValue": "acme,acme-labs"}])
    stack = cfn.describe_stacks(StackName="oidc-watch")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    return {"outputs": outputs, "region": region, "removed": gone}


def test_central_stack_shape(aws, central, template):
    out = central["outputs"]
    assert out["CentralEventBusArn"] == f"arn:aws:events:us-east-1:{CENTRAL}:event-bus/oidc-watch-events"
    assert out["MonitorRoleArn"].startswith(f"arn:aws:iam::{CENTRAL}:role/")
    lam = aws("lambda")
    monitor = lam.get_function(FunctionName=out["MonitorFunctionName"])["Configuration"]
    env = monitor["Environment"]["Variables"]
    assert env["ALERT_TOPIC_ARN"] == out["AlertTopicArn"] and env["STATE_TABLE_NAME"] == out["StateTableName"]
    assert env["ALLOWED_OWNERS"] == "acme,acme-labs" and env["READ_ROLE_NAME"] == "oidc-watch-read"
    assert monitor["Runtime"] == "provided.al2023" and monitor["Handler"] == "bootstrap"
    notifier = lam.get_function(FunctionName=out["NotifierFunctionName"])["Configuration"]
    assert notifier["Environment"]["Variables"]["SLACK_SECRET_ID"] == "oidc-watch/slack"
    assert "SLACK_PARAMETER_NAME" not in notifier["Environment"]["Variables"]

    # The organisation conditions, as CloudFormation (moto's) resolved them.
    iam = aws("iam")
    role_name = out["MonitorRoleArn"].rsplit("/", 1)[1]
    stmts = [s for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
             for s in as_doc(iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"])["Statement"]]
    (assume,) = [s for s in stmts if s["Action"] == "sts:AssumeRole"]
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "o-abcdefghij"}}
    (dynamo,) = [s for s in stmts if "dynamodb:PutItem" in s["Action"]]
    assert dynamo["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == [
        "event#*", "incident#*", "counter#*", "spike#*", "token#*", "success#*", "change#*"]

    events = aws("events")
    rules = {}
    for bus in ("default", "oidc-watch-events"):
        for rule in events.list_rules(EventBusName=bus)["Rules"]:
            kind = rule_kind(json.loads(rule["EventPattern"]))
            (target,) = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            assert rule["State"] == ("ENABLED" if kind == "changes" else STATE)
            assert target["Arn"] == monitor["FunctionArn"]
            assert target["DeadLetterConfig"]["Arn"].split(":")[-1].startswith("oidc-watch-EventDeliveryDeadLetterQueue")
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
            rules[(bus, kind)] = rule["Name"]
    assert set(rules) == {(b, k) for b in ("default", "oidc-watch-events") for k in ("failures", "successes", "changes")}

    # The dashboard body, as CloudFormation (moto's) substituted it, is JSON and names the
    # deployed functions and log group.
    (dash,) = aws("cloudwatch").list_dashboards()["DashboardEntries"]
    body = json.loads(aws("cloudwatch").get_dashboard(DashboardName=dash["DashboardName"])["DashboardBody"])
    text = json.dumps(body)
    assert out["MonitorFunctionName"] in text and out["NotifierFunctionName"] in text
    assert "SOURCE '/aws/lambda/oidc-watch-oidc-monitor'" in text
    logs = {g["logGroupName"]: g for g in aws("logs").describe_log_groups()["logGroups"]}
    assert logs["/aws/lambda/oidc-watch-oidc-monitor"]["retentionInDays"] == 30
    assert "/aws/lambda/oidc-watch-oidc-notifier" in logs


def test_member_events_reach_the_central_rules(aws, member, central):
    out = central["outputs"]
    for region in ("us-west-2", "us-east-1"):
        cfn = member("cloudformation", region)
        cfn.create_stack(StackName="oidc-watch-forwarder", TemplateBody=FORWARDER.read_text(),
                         Capabilities=["CAPABILITY_NAMED_IAM"], Parameters=[
                             {"ParameterKey": "CentralEventBusArn", "ParameterValue": out["CentralEventBusArn"]},
                             {"ParameterKey": "MonitorRoleArn", "ParameterValue": out["MonitorRoleArn"]},
                             {"ParameterKey": "OrganizationId", "ParameterValue": "o-abcdefghij"}])
        stack = cfn.describe_stacks(StackName="oidc-watch-forwarder")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack
        created = {r["LogicalResourceId"] for r in
                   cfn.list_stack_resources(StackName="oidc-watch-forwarder")["StackResourceSummaries"]}
        assert ("ReadRole" in created) == (region == "us-east-1"), (region, created)

    iam = member("iam")
    role = iam.get_role(RoleName="oidc-watch-read")["Role"]
    (trust,) = as_doc(role["AssumeRolePolicyDocument"])["Statement"]
    assert trust["Principal"] == {"AWS": out["MonitorRoleArn"]}
    assert trust["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    actions = set()
    for name in iam.list_role_policies(RoleName="oidc-watch-read")["PolicyNames"]:
        for s in as_doc(iam.get_role_policy(RoleName="oidc-watch-read", PolicyName=name)["PolicyDocument"])["Statement"]:
            actions |= set(s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    assert actions == {"iam:GetRole", "iam:ListRoles", "iam:ListOpenIDConnectProviders", "iam:GetOpenIDConnectProvider"}

    # moto cannot invoke a Lambda target: observe the central rules through SQS instead.
    events, sqs = aws("events"), aws("sqs")
    queues = {}
    for rule in events.list_rules(EventBusName="oidc-watch-events")["Rules"]:
        kind = rule_kind(json.loads(rule["EventPattern"]))
        url = sqs.create_queue(QueueName=f"observe-{kind}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.remove_targets(Rule=rule["Name"], EventBusName="oidc-watch-events", Ids=["oidc-monitor"])
        events.put_targets(Rule=rule["Name"], EventBusName="oidc-watch-events", Targets=[{"Id": "observe", "Arn": arn}])
        queues[kind] = url
    assert set(queues) == {"failures", "successes", "changes"}

    # IAM's changes are forwarded from us-east-1 only, where CloudTrail delivers them.
    cases = samples()
    for region in ("us-west-2", "us-east-1"):
        member_events = member("events", region)
        forwarding = member_events.list_rules()["Rules"]
        kinds = sorted(rule_kind(json.loads(r["EventPattern"])) for r in forwarding)
        assert kinds == (["changes"] if region == "us-east-1" else []) + ["failures", "successes"], (region, kinds)
        for label, env, _ in cases:
            assert member_events.put_events(Entries=[entry(env, "default")])["FailedEntryCount"] == 0, label
        for kind, url in queues.items():
            got = drain(sqs, url)
            want = expected_ids(cases, kind) if kind != "changes" or region == "us-east-1" else set()
            assert got == want, (region, kind, sorted(want - got), sorted(got - want))
