#!/usr/bin/env python3
"""Print the aws deployment's environment from ``cdk deploy --outputs-file`` output, as a .env file.

    python scripts/outputs_to_env.py cdk-outputs.json > ../.env

Reads the outputs of the access stack (the ones described in ``ecommerce_infra.contract.OUTPUT_ENV``)
and fails, naming what is missing, unless every variable the deployment needs is there.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecommerce_infra.contract import OUTPUT_ENV  # noqa: E402


def env_from_outputs(outputs: dict) -> dict[str, str]:
    """``{VAR: value}`` from a cdk outputs file's content (``{stack: {output_id: value}}``)."""
    found: dict[str, str] = {}
    for stack_outputs in outputs.values():
        for output_id, value in stack_outputs.items():
            if output_id in OUTPUT_ENV:
                found[OUTPUT_ENV[output_id]] = str(value)
    missing = sorted(set(OUTPUT_ENV.values()) - set(found))
    if missing:
        raise SystemExit(f"outputs file lacks {', '.join(missing)}: was the access stack deployed?")
    return {name: found[name] for name in OUTPUT_ENV.values()}


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "cdk-outputs.json")
    env = env_from_outputs(json.loads(path.read_text()))
    for name, value in env.items():
        print(f"{name}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
