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


def _all_outputs_file(synth) -> dict:
    """Every stack's outputs, as `cdk deploy --all --outputs-file` writes them (tokens made literal)."""
    def literal(value):
        return value if isinstance(value, str) else "resolved-at-deploy"

    return {name: {k: literal(v["Value"]) for k, v in template.get("Outputs", {}).items()}
            for name, template in synth.raw.items()}


def test_orchestration_and_registry_outputs_join_the_env_file(synth, tmp_path, capsys):
    path = tmp_path / "cdk-outputs.json"
    path.write_text(json.dumps(_all_outputs_file(synth)))
    assert outputs_to_env.main(["outputs_to_env.py", str(path)]) == 0
    env = dict(line.split("=", 1) for line in capsys.readouterr().out.strip().splitlines())
    assert list(env) == [*contract.OUTPUT_ENV.values(), *contract.REGISTRY_OUTPUT_ENV.values(),
                         *contract.ORCHESTRATION_OUTPUT_ENV.values()]
    assert env["DAGSTER_PG_DB"] == "dagster" and env["DAGSTER_COMPUTE_LOG_PREFIX"] == "dagster-compute-logs"
    assert "DAGSTER_PG_PASSWORD" not in env  # the secret's ARN only


def test_a_partial_orchestration_group_is_named(synth):
    outputs = _all_outputs_file(synth)
    del outputs[synth.built.orchestration.stack_name]["DagsterPgHost"]
    with pytest.raises(SystemExit, match="DAGSTER_PG_HOST of the orchestration stack"):
        outputs_to_env.env_from_outputs(outputs)
