#!/usr/bin/env python3
"""CDK entry point: ``cdk synth`` / ``cdk deploy`` run this (see cdk.json), as does ``make synth``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ecommerce_infra.app import build_app  # noqa: E402

if __name__ == "__main__":
    # The cdk CLI sets CDK_OUTDIR; `make synth` (python app.py) writes to cdk.out/ like the CLI would.
    build_app(outdir=os.environ.get("CDK_OUTDIR") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "cdk.out")).app.synth()
