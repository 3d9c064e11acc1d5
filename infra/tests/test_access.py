"""Who may do what: the notifier's SSM SecureString option, the
alert topic's policy, disjoint DynamoDB key prefixes per function, the state table's TTL,
the read role's organisation conditions, the monitor's reserved concurrency and the alarm
on its failure queue. Conditional parts are checked as deployed, with
conftest.with_parameters, for each way the parameters choose them."""

import json
import re

import pytest

from conftest import (FORWARDER, ROOT, TEMPLATE, actions_of, policy_statements, resources_of,
                      substitute, with_parameters)

PARAMETER = "/oidc-watch/slack"
PARAMETER_ARN = "arn:aws:ssm:us-east-1:123456789012:parameter/oidc-watch/slack"
ORG = "o-abcdefghij"
MONITOR_ROLE = "arn:aws:iam::111111111111:role/oidc-watch-MonitorFunctionRole-X"


def statements_by_action(deployed, function):
    table = {}
    for s in policy_statements(deployed["Resources"][function]):
        for action in actions_of(s):
            table.setdefault(action, []).append(s)
    return table


def env_of(deployed, function):
    return deployed["Resources"][function]["Properties"]["Environment"]["Variables"]


# ------------------------------------------------------------------ 1. SSM SecureString


def test_the_notifier_code_has_an_ssm_securestring_option(code):
    notifier = code.function("notifier")
    assert "SLACK_PARAMETER_NAME" in code.environment("notifier")
    assert notifier["sdk_operations"]["ssm"] == ["GetParameter"]
    assert notifier["get_parameter_with_decryption"], "GetParameter WithDecryption: SSM calls kms:Decrypt"


def test_with_a_parameter_name_the_notifier_reads_that_parameter_only(template):
    deployed = with_parameters(template, SlackParameterName=PARAMETER)
    table = statements_by_action(deployed, "NotifierFunction")
    (get,) = table.pop("ssm:GetParameter")
    assert get["Effect"] == "Allow" and actions_of(get) == ["ssm:GetParameter"]
    assert substitute(get["Resource"], deployed) == PARAMETER_ARN and "Condition" not in get
    assert "secretsmanager:GetSecretValue" not in table, "no Secrets Manager permission in SSM mode"
    assert not [a for a in table if a.startswith("ssm:")]

    decrypts = [s for s in table["kms:Decrypt"] if s["Resource"] != {"Fn::GetAtt": ["Key", "Arn"]}]
    (decrypt,) = decrypts
    assert actions_of(decrypt) == ["kms:Decrypt"]
    assert substitute(decrypt["Resource"], deployed) == "arn:aws:kms:us-east-1:123456789012:key/*"
    condition = decrypt["Condition"]["StringEquals"]
    assert set(decrypt["Condition"]) == {"StringEquals"}
    assert substitute(condition["kms:ViaService"], deployed) == "ssm.us-east-1.amazonaws.com"
    assert substitute(condition["kms:EncryptionContext:PARAMETER_ARN"], deployed) == PARAMETER_ARN

    env = env_of(deployed, "NotifierFunction")
    assert env["SLACK_PARAMETER_NAME"] == {"Ref": "SlackParameterName"}
    assert "SLACK_SECRET_ID" not in env, "config.rs refuses both SLACK_SECRET_ID and SLACK_PARAMETER_NAME"


def test_without_a_parameter_name_the_notifier_has_no_ssm_permission(template):
    deployed = with_parameters(template)
    table = statements_by_action(deployed, "NotifierFunction")
    assert not [a for a in table if a.startswith("ssm:")]
    assert [s["Resource"] for s in table["kms:Decrypt"]] == [{"Fn::GetAtt": ["Key", "Arn"]}]
    (secret,) = table["secretsmanager:GetSecretValue"]
    assert secret["Resource"]["Fn::Sub"].endswith(":secret:${SlackSecretName}-??????")
    env = env_of(deployed, "NotifierFunction")
    assert env["SLACK_SECRET_ID"] == {"Ref": "SlackSecretName"} and "SLACK_PARAMETER_NAME" not in env


@pytest.mark.parametrize("parameter", ["", PARAMETER])
def test_teams_reads_the_same_credential_location_and_no_slack_setting(template, parameter):
    """AlertChannel teams: the workflow URL is read from the same secret or parameter (so
    the permissions above hold unchanged), under the Teams variable names, and no Slack
    variable reaches the function (config.rs refuses them with NOTIFIER_CHANNEL=teams)."""
    deployed = with_parameters(template, AlertChannel="teams", SlackParameterName=parameter)
    env = env_of(deployed, "NotifierFunction")
    assert env["NOTIFIER_CHANNEL"] == {"Ref": "AlertChannel"}
    assert not [name for name in env if name.startswith("SLACK_")], env
    if parameter:
        assert env["TEAMS_PARAMETER_NAME"] == {"Ref": "SlackParameterName"} and "TEAMS_SECRET_ID" not in env
    else:
        assert env["TEAMS_SECRET_ID"] == {"Ref": "SlackSecretName"} and "TEAMS_PARAMETER_NAME" not in env
    slack = env_of(with_parameters(template), "NotifierFunction")
    assert not [name for name in slack if name.startswith("TEAMS_")], slack


def test_the_parameter_name_is_a_full_path(template):
    """The ARN is parameter${SlackParameterName}: right only for a name that starts with /."""
    pattern = template["Parameters"]["SlackParameterName"]["AllowedPattern"]
    assert template["Parameters"]["SlackParameterName"]["Default"] == ""
    for ok in ("", PARAMETER, "/a", "/team_1/slack.bot-token"):
        assert re.fullmatch(pattern, ok), ok
    for bad in ("oidc-watch/slack", "/", "/with space", "arn:aws:ssm:us-east-1:1:parameter/x"):
        assert not re.fullmatch(pattern, bad), bad


# ------------------------------------------------------------------ 2. alert topic policy


def test_only_the_monitor_the_auditor_and_this_accounts_alarms_may_publish(template, transformed):
    (policy,) = resources_of(template, "AWS::SNS::TopicPolicy").values()
    props = policy["Properties"]
    assert props["Topics"] == [{"Ref": "AlertTopic"}]
    stmts = props["PolicyDocument"]["Statement"]
    assert len(stmts) == 3
    by_principal = {}
    roles = []
    for s in stmts:
        assert s["Effect"] == "Allow" and s["Action"] == "sns:Publish" and s["Resource"] == {"Ref": "AlertTopic"}
        ((kind, principal),) = s["Principal"].items()
        by_principal[kind] = (principal, s.get("Condition"))
        if kind == "AWS":
            assert "Condition" not in s
            roles.append(principal)
    assert sorted(roles, key=json.dumps) == [{"Fn::GetAtt": ["AuditorFunctionRole", "Arn"]},
                                             {"Fn::GetAtt": ["MonitorFunctionRole", "Arn"]}]
    service, condition = by_principal["Service"]
    assert service == "cloudwatch.amazonaws.com"
    assert condition == {
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"}},
    }
    # MonitorFunctionRole is the role SAM generates for the monitor.
    role = transformed["Resources"]["MonitorFunctionRole"]
    assert role["Type"] == "AWS::IAM::Role"
    monitor = transformed["Resources"]["MonitorFunction"]["Properties"]
    assert monitor["Role"] == {"Fn::GetAtt": ["MonitorFunctionRole", "Arn"]}
    auditor = transformed["Resources"]["AuditorFunction"]["Properties"]
    assert auditor["Role"] == {"Fn::GetAtt": ["AuditorFunctionRole", "Arn"]}


def test_cloudwatch_may_use_the_topic_key(template):
    assert template["Resources"]["AlertTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "Key"}
    stmts = template["Resources"]["Key"]["Properties"]["KeyPolicy"]["Statement"]
    (cw,) = [s for s in stmts if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cw["Effect"] == "Allow" and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(actions_of(cw))
    assert cw["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


def test_every_alarm_publishes_to_the_policed_topic(template):
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 6
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertTopic"}], name


# ------------------------------------------------------------------ 3. DynamoDB key prefixes

MONITOR_PREFIXES = {"event#", "incident#", "counter#", "spike#", "token#", "success#", "change#"}
NOTIFIER_PREFIXES = {"delivery#", "thread#", "notify-token#"}
AUDITOR_PREFIXES = {"audit#"}
# Read (Query) only: the monitor's record of successes.
AUDITOR_READ_PREFIXES = {"success#"}
ITEM_ACTIONS = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                "dynamodb:Query", "dynamodb:ConditionCheckItem"}
def test_the_code_uses_disjoint_prefixes(code):
    """The prefixes each function's store declares (every key it builds starts with one:
    functions/aws/src/dynamodb.rs and notifier_store.rs); every DynamoDB call goes
    through the store, whose operations are the function's declared SDK operations."""
    assert set(code.function("monitor")["key_prefixes"]) == MONITOR_PREFIXES
    assert set(code.function("notifier")["key_prefixes"]) == NOTIFIER_PREFIXES
    assert set(code.function("auditor")["key_prefixes"]) == AUDITOR_PREFIXES
    assert set(code.function("auditor")["read_key_prefixes"]) == AUDITOR_READ_PREFIXES


def disjoint(a: set[str], b: set[str]) -> bool:
    """No key can start with a prefix of both sets."""
    return not any(x.startswith(y) or y.startswith(x) for x in a for y in b)


def test_prefix_sets_are_disjoint():
    assert disjoint(MONITOR_PREFIXES, NOTIFIER_PREFIXES)
    assert disjoint(AUDITOR_PREFIXES, MONITOR_PREFIXES | NOTIFIER_PREFIXES)
    assert AUDITOR_READ_PREFIXES <= MONITOR_PREFIXES
    assert not disjoint({"token#"}, {"token#notify-probe#"})  # the collision this fixes


@pytest.mark.parametrize("function, prefixes", [("MonitorFunction", MONITOR_PREFIXES),
                                                ("NotifierFunction", NOTIFIER_PREFIXES)])
def test_each_function_may_touch_only_its_own_prefixes(template, function, prefixes):
    stmts = [s for s in policy_statements(template["Resources"][function])
             if any(a.startswith("dynamodb:") for a in actions_of(s))]
    assert stmts, function
    for s in stmts:
        assert s["Effect"] == "Allow" and s["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}
        assert set(actions_of(s)) <= ITEM_ACTIONS, f"{function}: {set(actions_of(s)) - ITEM_ACTIONS} is not item-level"
        assert set(s["Condition"]) == {"ForAllValues:StringLike"}, function
        like = s["Condition"]["ForAllValues:StringLike"]
        assert set(like) == {"dynamodb:LeadingKeys"}, function
        patterns = like["dynamodb:LeadingKeys"]
        assert all(k.endswith("#*") and k.count("*") == 1 for k in patterns), patterns
        granted = {k[:-1] for k in patterns}
        assert granted == prefixes, (function, granted ^ prefixes)


def test_the_auditor_writes_its_own_items_and_only_reads_successes(template):
    stmts = [s for s in policy_statements(template["Resources"]["AuditorFunction"])
             if any(a.startswith("dynamodb:") for a in actions_of(s))]
    granted: dict[str, set[str]] = {}
    for s in stmts:
        assert s["Effect"] == "Allow" and s["Resource"] == {"Fn::GetAtt": ["StateTable", "Arn"]}
        assert set(s["Condition"]) == {"ForAllValues:StringLike"}
        (patterns,) = s["Condition"]["ForAllValues:StringLike"].values()
        for k in patterns:
            assert k.endswith("#*") and k.count("*") == 1, k
            granted.setdefault(k[:-1], set()).update(actions_of(s))
    assert set(granted) == AUDITOR_PREFIXES | AUDITOR_READ_PREFIXES
    assert granted["audit#"] == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:Query"}
    assert granted["success#"] == {"dynamodb:Query"}, "the record of successes is the monitor's to write"


def test_no_table_wide_action(template, transformed):
    for t in (template, transformed):
        for name, res in t["Resources"].items():
            if res["Type"] not in ("AWS::Serverless::Function", "AWS::IAM::Role"):
                continue
            policies = res["Properties"].get("Policies", [])
            for policy in policies:
                doc = policy.get("PolicyDocument", policy)
                for s in doc.get("Statement", []):
                    branches = s["Fn::If"][1:] if set(s) == {"Fn::If"} else [s]
                    for b in branches:
                        if b == {"Ref": "AWS::NoValue"}:
                            continue
                        for a in actions_of(b):
                            assert a not in {"dynamodb:Scan", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
                                             "dynamodb:PartiQLSelect", "dynamodb:*"}, (name, a)
                            assert a != "dynamodb:TransactWriteItems", "not an IAM action: grant the item actions"


def test_the_monitor_can_write_transactions(template):
    (stmt,) = [s for s in policy_statements(template["Resources"]["MonitorFunction"])
               if any(a.startswith("dynamodb:") for a in actions_of(s))]
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"} <= set(actions_of(stmt))


# ------------------------------------------------------------------ 4. TTL


def test_spike_items_can_expire_by_ttl(template, code):
    """The attribute both stores write (oidc_watch_aws::dynamodb::TTL_ATTRIBUTE; the adapter
    tests check every item carries it) is the table's TTL."""
    ttl = template["Resources"]["StateTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": code.contract["state_table"]["ttl_attribute"], "Enabled": True}


# ------------------------------------------------------------------ 5. organisation


def test_organisation_parameters_agree(template, forwarder):
    central, member = template["Parameters"]["OrganizationId"], forwarder["Parameters"]["OrganizationId"]
    assert central["AllowedPattern"] == member["AllowedPattern"]
    assert central["Default"] == member["Default"] == ""
    assert re.fullmatch(central["AllowedPattern"], ORG) and re.fullmatch(central["AllowedPattern"], "")


def read_role_trust(forwarder, **params):
    deployed = with_parameters(forwarder, MonitorRoleArn=MONITOR_ROLE, **params)
    (trust,) = deployed["Resources"]["ReadRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    return trust


def test_the_read_role_trusts_the_monitor_of_the_organisation_only(forwarder):
    trust = read_role_trust(forwarder, OrganizationId=ORG)
    assert trust["Principal"] == {"AWS": {"Ref": "MonitorRoleArn"}} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    # Empty: still deployable, without the organisation condition (single account).
    trust = read_role_trust(forwarder)
    assert "Condition" not in trust and trust["Principal"] == {"AWS": {"Ref": "MonitorRoleArn"}}
    # With the auditor's role: both, and only both, under the same organisation condition.
    trust = read_role_trust(forwarder, OrganizationId=ORG,
                            AuditorRoleArn="arn:aws:iam::123456789012:role/oidc-watch-AuditorRole-X")
    assert trust["Principal"] == {"AWS": [{"Ref": "MonitorRoleArn"}, {"Ref": "AuditorRoleArn"}]}
    assert trust["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}


def monitor_assume(template, **params):
    deployed = with_parameters(template, **params)
    (stmt,) = statements_by_action(deployed, "MonitorFunction")["sts:AssumeRole"]
    return stmt


def test_the_monitor_assumes_read_roles_of_the_organisation_only(template):
    stmt = monitor_assume(template, OrganizationId=ORG)
    assert stmt["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${ReadRoleName}"}
    assert stmt["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
    assert "Condition" not in monitor_assume(template)


def test_readme_says_empty_is_single_account():
    readme = (ROOT / "infra/README.md").read_text()
    assert re.search(r"OrganizationId[^\n]*\n?[^\n]*single[- ]account only", readme), \
        "infra/README.md documents that an empty OrganizationId is single-account only"


# ------------------------------------------------------------------ 6. reserved concurrency


@pytest.mark.parametrize("value, reserved", [("", False), ("0", False), ("5", True), ("100", True)])
def test_reserved_concurrency(template, value, reserved):
    props = with_parameters(template, ReservedConcurrency=value)["Resources"]["MonitorFunction"]["Properties"]
    if reserved:
        assert props["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    else:
        assert "ReservedConcurrentExecutions" not in props, "0 would throttle every invocation: unreserved"


def test_reserved_concurrency_parameter(template, transformed):
    param = template["Parameters"]["ReservedConcurrency"]
    assert param["Default"] == "", "unreserved by default (see the parameter's description)"
    for ok in ("", "0", "1", "10", "1000"):
        assert re.fullmatch(param["AllowedPattern"], ok), ok
    for bad in ("-1", "01", "x", "1.5"):
        assert not re.fullmatch(param["AllowedPattern"], bad), bad
    # SAM passes it through to the Lambda function, condition and all.
    fn = transformed["Resources"]["MonitorFunction"]["Properties"]
    assert fn["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", {"Ref": "ReservedConcurrency"}, {"Ref": "AWS::NoValue"}]}
    assert "ReservedConcurrentExecutions" not in transformed["Resources"]["NotifierFunction"]["Properties"]


# ------------------------------------------------------------------ 7. failure queue alarm


def test_the_monitors_failure_queue_has_an_alarm(template):
    on_failure = template["Resources"]["MonitorFunction"]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    queue = on_failure["Destination"]["Fn::GetAtt"][0]
    assert template["Resources"][queue]["Type"] == "AWS::SQS::Queue"
    matching = []
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        p = alarm["Properties"]
        if p.get("Dimensions") == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]:
            matching.append(name)
            assert p["Namespace"] == "AWS/SQS" and p["MetricName"] == "ApproximateNumberOfMessagesVisible"
            assert p["Statistic"] == "Maximum"
            assert p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold" and p["Threshold"] == 1
            assert p["EvaluationPeriods"] == 1 and p["TreatMissingData"] == "notBreaching"
            assert p["AlarmActions"] == [{"Ref": "AlertTopic"}]
    assert matching == ["FailedInvocationsAlarm"], matching
