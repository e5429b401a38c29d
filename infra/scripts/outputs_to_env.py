#!/usr/bin/env python3
"""Print the aws deployment's environment from ``cdk deploy --outputs-file`` output, as a .env file.

    python scripts/outputs_to_env.py cdk-outputs.json > ../.env

Reads the outputs of the access stack (the ones described in ``ecommerce_infra.contract.OUTPUT_ENV``)
and fails, naming what is missing, unless every variable the deployment needs is there. The registry's
and the orchestration stack's outputs (``REGISTRY_OUTPUT_ENV``, ``ORCHESTRATION_OUTPUT_ENV``: the image
repository, the Dagster database endpoint and secret ARN, the compute-log bucket, the run task
definition, the cluster, the UI's address) are added when those stacks were deployed; each group is
all or nothing.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecommerce_infra.contract import ORCHESTRATION_OUTPUT_ENV, OUTPUT_ENV, REGISTRY_OUTPUT_ENV  # noqa: E402

OPTIONAL_GROUPS = {"registry": REGISTRY_OUTPUT_ENV, "orchestration": ORCHESTRATION_OUTPUT_ENV}


def env_from_outputs(outputs: dict) -> dict[str, str]:
    """``{VAR: value}`` from a cdk outputs file's content (``{stack: {output_id: value}}``)."""
    tables = {**OUTPUT_ENV, **REGISTRY_OUTPUT_ENV, **ORCHESTRATION_OUTPUT_ENV}
    found: dict[str, str] = {}
    for stack_outputs in outputs.values():
        for output_id, value in stack_outputs.items():
            if output_id in tables:
                found[tables[output_id]] = str(value)
    missing = sorted(set(OUTPUT_ENV.values()) - set(found))
    if missing:
        raise SystemExit(f"outputs file lacks {', '.join(missing)}: was the access stack deployed?")
    names = list(OUTPUT_ENV.values())
    for group, table in OPTIONAL_GROUPS.items():
        present = [n for n in table.values() if n in found]
        if present and len(present) < len(table):
            lacking = sorted(set(table.values()) - set(present))
            raise SystemExit(f"outputs file lacks {', '.join(lacking)} of the {group} stack: redeploy it")
        names += present
    return {name: found[name] for name in names}


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "cdk-outputs.json")
    env = env_from_outputs(json.loads(path.read_text()))
    for name, value in env.items():
        print(f"{name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
