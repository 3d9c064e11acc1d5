"""Shared helpers for the infrastructure tests: paths, the two templates parsed (short
tags such as !Ref become {"Ref": ...}), the SAM template transformed to plain
CloudFormation, the facts the Rust code states about itself (metric names, dimension
sets, log fields, environment variables, SDK calls), and a moto server on loopback."""

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


# ------------------------------------------------------------------ what the code says


def read(path: Path) -> str:
    return path.read_text()


def rust_str_consts(path: Path) -> dict[str, str]:
    """`pub const NAME: &str = "VALUE";` in a Rust file."""
    return dict(re.findall(r'pub const (\w+): &str = "([^"]*)";', read(path)))


def fn_body(source: str, signature: str) -> str:
    """The body of the first fn whose text contains `signature`, by brace matching."""
    start = source.index(signature)
    open_at = source.index("{", start)
    depth = 0
    for i in range(open_at, len(source)):
        if source[i] == "{":
            depth += 1
        elif source[i] == "}":
            depth -= 1
            if depth == 0:
                return source[open_at + 1 : i]
    raise ValueError(f"unbalanced braces after {signature!r}")


class CodeFacts:
    """Metric names, dimension names, dimension sets and log fields, read from the Rust
    sources that emit them (functions/diagnosis/src/metrics.rs, functions/monitor/src/lib.rs)."""

    def __init__(self) -> None:
        metrics = read(ROOT / "functions/diagnosis/src/metrics.rs")
        self.namespace_default = re.search(r'pub const DEFAULT_NAMESPACE: &str = "([^"]+)";', metrics).group(1)
        metric_as_str = fn_body(metrics[metrics.index("impl MetricName") :], "pub fn as_str")
        self.metric_names = dict(re.findall(r'MetricName::(\w+)\s*=>\s*"(\w+)"', metric_as_str))
        dim_as_str = fn_body(metrics[metrics.index("impl Dimension") :], "pub fn as_str")
        self.dimension_names = dict(re.findall(r'Dimension::(\w+)\s*=>\s*"(\w+)"', dim_as_str))
        sets_body = fn_body(metrics, "pub fn dimension_sets")
        self.dimension_sets: dict[str, list[frozenset[str]]] = {}
        arm = re.compile(r"((?:MetricName::\w+\s*\|?\s*)+)=>\s*\{?\s*&\[((?:\s*&\[[^\]]*\]\s*,?)*)\s*\]")
        for variants, sets in arm.findall(sets_body):
            parsed = [
                frozenset(self.dimension_names[d.strip()] for d in inner.split(",") if d.strip())
                for inner in re.findall(r"&\[([^\]]*)\]", sets)
            ]
            for variant in re.findall(r"MetricName::(\w+)", variants):
                self.dimension_sets[self.metric_names[variant]] = parsed
        lib = read(ROOT / "functions/monitor/src/lib.rs")
        calls = re.findall(r"tracing::info!\((.*?)\);", lib, re.S)
        diagnosis = [c for c in calls if re.search(r'"diagnosis"\s*,?\s*$', c.strip())]
        assert len(diagnosis) == 1, "expected exactly one tracing::info!(.., \"diagnosis\") in monitor/src/lib.rs"
        self.diagnosis_message = "diagnosis"
        self.log_fields = set(re.findall(r"^\s*(\w+)\s*=", diagnosis[0], re.M))


@pytest.fixture(scope="session")
def code() -> CodeFacts:
    return CodeFacts()


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
