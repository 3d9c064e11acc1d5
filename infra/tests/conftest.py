"""Shared helpers for the infrastructure tests: paths, the two templates parsed (short
tags such as !Ref become {"Ref": ...}), the SAM template transformed to plain
CloudFormation, the facts the Rust code declares about itself (oidc-watch-contract: metric
names, dimension sets, log fields, environment variables, SDK operations, key prefixes),
and a moto server on loopback."""

from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path

import pytest

INFRA = Path(__file__).resolve().parent.parent
ROOT = INFRA.parent
TEMPLATE = INFRA / "template.yaml"
FORWARDER = INFRA / "forwarder.yaml"
EVENTS = ROOT / "events"

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SAM_CLI_TELEMETRY", "0")


def parse_yaml(path: Path) -> dict:
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text())


@pytest.fixture(scope="session")
def template() -> dict:
    return parse_yaml(TEMPLATE)


@pytest.fixture(scope="session")
def forwarder() -> dict:
    return parse_yaml(FORWARDER)


def transform(sam_template: dict) -> dict:
    """SAM -> CloudFormation, as `sam deploy` would (CodeUri replaced by an S3 URI, as
    cfn-lint does, because the translator only accepts S3 locations)."""
    from samtranslator.translator.transform import transform as sam_transform

    t = copy.deepcopy(sam_template)
    for resource in t["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/key"

    class NoManagedPolicies:
        def load(self):
            return {}

    return sam_transform(t, {}, NoManagedPolicies())


@pytest.fixture(scope="session")
def transformed(template) -> dict:
    return transform(template)


def resources_of(t: dict, type_: str) -> dict:
    return {k: v for k, v in t["Resources"].items() if v["Type"] == type_}


# ------------------------------------------------------------------ conditions

PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws",
          "AWS::StackName": "oidc-watch", "AWS::URLSuffix": "amazonaws.com"}
_NO_VALUE = object()


def with_parameters(t: dict, **values: str) -> dict:
    """The template as CloudFormation deploys it with these parameter values (the others at
    their defaults, pseudo parameters from PSEUDO): Conditions evaluated, every Fn::If
    replaced by its chosen branch, AWS::NoValue dropped, and resources and outputs whose
    Condition is false removed. Other intrinsics (Ref, Sub, GetAtt) stay as they are."""
    unknown = set(values) - set(t["Parameters"])
    assert not unknown, f"no such parameters: {unknown}"
    params = {**PSEUDO, **{k: str(p.get("Default", "")) for k, p in t["Parameters"].items()}, **values}
    conditions: dict[str, bool] = {}

    def value(x):
        if isinstance(x, dict) and set(x) == {"Ref"}:
            return params[x["Ref"]]
        assert isinstance(x, (str, int, float)), f"cannot evaluate {x!r} in a condition"
        return str(x)

    def evaluate(x) -> bool:
        ((fn, args),) = x.items()
        if fn == "Fn::Equals":
            return value(args[0]) == value(args[1])
        if fn == "Fn::Not":
            return not evaluate(args[0])
        if fn == "Fn::And":
            return all(evaluate(a) for a in args)
        if fn == "Fn::Or":
            return any(evaluate(a) for a in args)
        if fn == "Condition":
            return condition(args)
        raise AssertionError(f"unknown condition function {fn}")

    def condition(name: str) -> bool:
        if name not in conditions:
            conditions[name] = evaluate(t["Conditions"][name])
        return conditions[name]

    def resolve(x):
        if isinstance(x, dict):
            if x == {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            if set(x) == {"Fn::If"}:
                name, yes, no = x["Fn::If"]
                return resolve(yes if condition(name) else no)
            out = {k: resolve(v) for k, v in x.items()}
            return {k: v for k, v in out.items() if v is not _NO_VALUE}
        if isinstance(x, list):
            return [v for v in (resolve(v) for v in x) if v is not _NO_VALUE]
        return x

    out = copy.deepcopy(t)
    for section in ("Resources", "Outputs"):
        kept = {k: v for k, v in out.get(section, {}).items() if "Condition" not in v or condition(v["Condition"])}
        out[section] = resolve(kept)
    out["ResolvedParameters"] = params
    return out


def substitute(x, t: dict) -> str:
    """A plain string, or the text of an Fn::Sub string (or a Ref) with parameters and
    pseudo parameters filled in from a with_parameters() template."""
    params = t["ResolvedParameters"]
    if isinstance(x, str):
        return x
    if set(x) == {"Ref"}:
        return params[x["Ref"]]
    text = x["Fn::Sub"]
    assert isinstance(text, str), x

    def one(match):
        assert match.group(1) in params, f"${{{match.group(1)}}} is not a parameter"
        return params[match.group(1)]

    return re.sub(r"\$\{([\w:]+)\}", one, text)


def policy_statements(fn: dict) -> list[dict]:
    """The statements of a function's inline policies; both branches of an Fn::If
    statement (a template not yet resolved by with_parameters), AWS::NoValue left out."""
    out = []
    for policy in fn["Properties"]["Policies"]:
        for s in policy["Statement"]:
            if set(s) == {"Fn::If"}:
                out.extend(b for b in s["Fn::If"][1:] if b != {"Ref": "AWS::NoValue"})
            else:
                out.append(s)
    return out


def actions_of(statement: dict) -> list[str]:
    a = statement["Action"]
    return a if isinstance(a, list) else [a]


# ------------------------------------------------------------------ what the code says


def read(path: Path) -> str:
    return path.read_text()


def load_contract() -> dict:
    """What the functions promise the infrastructure, as `oidc-watch-contract` prints it
    (tests/bin/contract.rs): infra/tests/run.sh --contract PATH sets OIDC_WATCH_CONTRACT."""
    import subprocess

    binary = os.environ.get("OIDC_WATCH_CONTRACT")
    if not binary:
        pytest.skip("no contract binary: infra/tests/run.sh --contract target/debug/oidc-watch-contract")
    path = Path(binary) if Path(binary).is_absolute() else ROOT / binary
    out = subprocess.run([str(path)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


class CodeFacts:
    """Metric names, dimension sets, log fields, environment variables, SDK operations
    and state-table key prefixes, as the code declares them (oidc-watch-contract)."""

    def __init__(self, contract: dict) -> None:
        self.contract = contract
        self.namespace_default = contract["namespace_default"]
        self.metric_names = {m["name"]: m["name"] for m in contract["metrics"]}
        self.dimension_sets: dict[str, list[frozenset[str]]] = {
            m["name"]: [frozenset(s) for s in m["dimension_sets"]] for m in contract["metrics"]}
        log = contract["functions"]["monitor"]["log"]
        self.diagnosis_message = log["message"]
        self.log_fields = set(log["fields"])

    def function(self, name: str) -> dict:
        return self.contract["functions"][name]

    def environment(self, name: str) -> dict[str, dict]:
        return {v["name"]: v for v in self.function(name)["environment"]}


@pytest.fixture(scope="session")
def code() -> CodeFacts:
    return CodeFacts(load_contract())


# ------------------------------------------------------------------ moto on loopback


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto in server mode, in this process, on a free loopback port; stopped at the end."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws(moto_endpoint):
    """boto3 client factory bound to moto, with fake credentials (never real ones)."""
    import boto3

    def client(service: str, region: str = "us-east-1", **credentials):
        kwargs = {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_session_token": "testing",
        }
        kwargs.update(credentials)
        return boto3.client(service, region_name=region, endpoint_url=moto_endpoint, **kwargs)

    return client


def load_json(path: Path):
    return json.loads(path.read_text())
