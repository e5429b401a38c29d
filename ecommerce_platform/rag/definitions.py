"""The rag layer's definitions: product knowledge, the FAISS index, the QA evaluation of `ecommerce ask`
and their checks, on the weekly cadence. The resources they use, ``embeddings`` (MiniLM, ONNX) and ``llm`` (the answerer's language
model), are the deployment's (resources/__init__.py: the CLI and the server use them too). The layer's
runs are the jobs ``rag_job`` (group) and ``weekly_job`` (cadence tag) of operations.py."""

import dagster as dg

from ecommerce_platform.config import Settings
from ecommerce_platform.operations import WEEKLY, layer
from ecommerce_platform.rag import assets


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=layer(assets.ASSETS, "rag", WEEKLY),
        asset_checks=assets.CHECKS,
    )
