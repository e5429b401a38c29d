"""Shared fixtures: the CDK app synthesized once per configuration (offline, no AWS account)."""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

INFRA_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA_DIR))
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from ecommerce_infra import contract  # noqa: E402

# The app reads these from the environment (the deployment's own variables among them); the tests
# set everything through CDK context instead.
for _name in (
    "CDK_DEFAULT_ACCOUNT",
    "CDK_DEFAULT_REGION",
    "AWS_DEFAULT_REGION",
    "ECOMMERCE_FIREHOSE_NAME",
    "ECOMMERCE_WAREHOUSE",
    *contract.OUTPUT_ENV.values(),
):
    os.environ.pop(_name, None)

from aws_cdk.assertions import Template  # noqa: E402

from ecommerce_infra.app import EcommerceApp, build_app  # noqa: E402

ACCOUNT = "123456789012"
REGION = "eu-west-2"
BUCKET = f"ecommerce-lake-{ACCOUNT}-{REGION}"


@dataclass
class Synth:
    built: EcommerceApp
    templates: dict[str, Template]
    raw: dict[str, dict]

    def __getattr__(self, name):  # lake, streaming, ... -> their templates
        stack = getattr(self.built, name)
        return self.templates[stack.stack_name]


def synthesize(tmp_dir: Path, context: dict | None = None) -> Synth:
    built = build_app(context, outdir=str(tmp_dir))
    assembly = built.app.synth()
    raw = {s.stack_name: assembly.get_stack_by_name(s.stack_name).template for s in built.stacks}
    return Synth(built, {name: Template.from_json(t) for name, t in raw.items()}, raw)


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Synth:
    """The app as deployed to a known account and region, names left at their defaults."""
    return synthesize(tmp_path_factory.mktemp("cdk-out"), {"account": ACCOUNT, "region": REGION})


@pytest.fixture(scope="session")
def synth_agnostic(tmp_path_factory) -> Synth:
    """The app with no configuration at all (environment-agnostic, generated bucket name)."""
    return synthesize(tmp_path_factory.mktemp("cdk-out-agnostic"))


def load_lambda(folder: str):
    """A Lambda handler module from infra/lambda/<folder>/handler.py ('lambda' is no package name)."""
    path = INFRA_DIR / "lambda" / folder / "handler.py"
    spec = importlib.util.spec_from_file_location(f"lambda_{folder}_handler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resources_of(template: dict, type_name: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_name}


def one(template: dict, type_name: str) -> dict:
    found = resources_of(template, type_name)
    assert len(found) == 1, f"expected one {type_name}, found {sorted(found)}"
    return next(iter(found.values()))


def as_list(value):
    return value if isinstance(value, list) else [value]


def policy_statements(template: dict, logical_prefix: str) -> list[dict]:
    """Statements of the AWS::IAM::Policy resources whose logical id starts with logical_prefix."""
    out = []
    for logical_id, res in resources_of(template, "AWS::IAM::Policy").items():
        if logical_id.startswith(logical_prefix):
            out.extend(res["Properties"]["PolicyDocument"]["Statement"])
    assert out, f"no policy named {logical_prefix}*"
    return out


def flatten(value) -> str:
    """A CloudFormation value as text: intrinsic functions are rendered as <...> placeholders."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if "Fn::Join" in value:
            sep, parts = value["Fn::Join"]
            return sep.join(flatten(p) for p in parts)
        if "Ref" in value:
            return f"<{value['Ref']}>"
        if "Fn::GetAtt" in value:
            return f"<{'.'.join(value['Fn::GetAtt'])}>"
        if "Fn::ImportValue" in value:
            return f"<import:{flatten(value['Fn::ImportValue'])}>"
    return repr(value)
