"""scripts/outputs_to_env.py: cdk outputs file -> .env for `ECOMMERCE_DEPLOYMENT=aws make run`."""

from __future__ import annotations

import importlib.util
import json
import shlex

import pytest
from conftest import INFRA_DIR

from ecommerce_infra import contract

spec = importlib.util.spec_from_file_location("outputs_to_env", INFRA_DIR / "scripts" / "outputs_to_env.py")
outputs_to_env = importlib.util.module_from_spec(spec)
spec.loader.exec_module(outputs_to_env)


def _outputs_file(synth) -> dict:
    """What `cdk deploy --outputs-file` writes, made from the synthesized (literal) outputs."""
    stack = synth.built.access.stack_name
    outputs = synth.raw[stack]["Outputs"]
    return {
        stack: {k: v["Value"] if isinstance(v["Value"], str) else "arn:aws:iam::1:role/x" for k, v in outputs.items()},
        synth.built.lake.stack_name: {"Unrelated": "x"},
    }


def test_env_file_round_trips_through_load_settings(synth, tmp_path, monkeypatch, capsys):
    path = tmp_path / "cdk-outputs.json"
    path.write_text(json.dumps(_outputs_file(synth)))
    assert outputs_to_env.main(["outputs_to_env.py", str(path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    env = dict(line.split("=", 1) for line in lines)
    assert list(env) == list(contract.OUTPUT_ENV.values())
    for name, value in env.items():
        monkeypatch.setenv(name, shlex.split(value)[0])
    settings = contract.load_platform_settings()
    assert settings.deployment == "aws"
    assert settings.s3_bucket == "ecommerce-lake-123456789012-eu-west-2"
    assert settings.region == "eu-west-2"


def test_missing_outputs_are_named(synth):
    outputs = _outputs_file(synth)
    del outputs[synth.built.access.stack_name]["EcommerceStreamName"]
    with pytest.raises(SystemExit, match="ECOMMERCE_STREAM_NAME"):
        outputs_to_env.env_from_outputs(outputs)
