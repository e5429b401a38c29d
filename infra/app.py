#!/usr/bin/env python3
"""CDK entry point: ``cdk synth`` / ``cdk deploy`` run this (see cdk.json), as does ``make synth``."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from ecommerce_infra.app import build_app  # noqa: E402

if __name__ == "__main__":
    build_app().app.synth()
