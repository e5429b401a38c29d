"""The `ecommerce` command and Dagster read the same settings the same way (environment + `.env` in the
working folder, the file winning, as `dagster` does), and a wrong setting is one clear line on stderr
with exit code 2 from every sub-command, never a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ecommerce_platform_tests.conftest import ENV_KEYS

BIN = Path(sys.executable).parent
# every sub-command with arguments that get it past click's own parsing
SUBCOMMANDS = [
    ["settings"], ["produce", "--count", "1"], ["land"], ["ask", "what is product 84077?"],
    ["recommend", "14646"], ["similar", "85123A"], ["predict-high-value"],
]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("DAGSTER_")}
    env.update(extra)
    return env


def _run(args, cwd, **extra):
    return subprocess.run([str(BIN / "ecommerce"), *args], cwd=cwd, env=_env(**extra), input="{}",
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", SUBCOMMANDS, ids=lambda a: a[0])
def test_configuration_errors_are_one_line_and_exit_2(tmp_path, args):
    res = _run(args, tmp_path, ECOMMERCE_DEPLOYMENT="aws", ECOMMERCE_DATA_DIR=str(tmp_path / "data"))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == ["configuration error: ECOMMERCE_DEPLOYMENT=aws needs ECOMMERCE_S3_BUCKET (the lake bucket)"]


def test_the_env_file_selects_the_deployment_for_the_command_line(tmp_path):
    (tmp_path / ".env").write_text("ECOMMERCE_DEPLOYMENT=aws\nECOMMERCE_S3_BUCKET=acme-lake\nAWS_REGION=eu-west-2\n")
    res = _run(["settings"], tmp_path, ECOMMERCE_DEPLOYMENT="local")  # the file wins, as in dagster
    assert res.returncode == 0, res.stderr
    assert "deployment: aws" in res.stdout and "lake_root: s3://acme-lake/lake" in res.stdout
    assert "region: eu-west-2" in res.stdout


def test_dagster_reads_the_same_env_file(tmp_path):
    """The same `.env` switches Dagster's definitions too: with aws and no bucket they fail to load, with
    the message of the setting; with a complete file they load."""
    args = [str(BIN / "dagster"), "definitions", "validate", "-m", "ecommerce_platform.definitions"]
    (tmp_path / ".env").write_text("ECOMMERCE_DEPLOYMENT=aws\n")
    res = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and "ECOMMERCE_S3_BUCKET" in res.stdout + res.stderr
    (tmp_path / ".env").write_text("ECOMMERCE_DEPLOYMENT=aws\nECOMMERCE_S3_BUCKET=acme-lake\n")
    res = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
