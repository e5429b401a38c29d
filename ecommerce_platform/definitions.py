"""The code location: every layer's definitions merged, plus what is common to all of them.

Each layer owns its definitions (``<layer>/definitions.py``: assets, checks, jobs, sensors, the resources
only it needs); this module merges them in the direction the data flows, gives the warehouse assets the
kind of the engine that really runs them, and adds the shared resources (picked by the deployment in
``resources/__init__.py``), the automation sensor, the job ``make run`` uses and the executor. Loading it
imports no heavy library (torch, faiss, sklearn, ...).
"""

import importlib

import dagster as dg

from ecommerce_platform.config import Settings, load_settings
from ecommerce_platform.operations import automation_sensor, layer_jobs, with_engine_kinds
from ecommerce_platform.partitions import INVOICE_MONTHS
from ecommerce_platform.resources import build_resources

# In the direction the data flows: a layer reads only what the layers before it publish.
LAYERS = ("ingestion", "lake", "analytics", "ml", "rag", "eda")
LOCATION_NAME = "ecommerce_platform"


def layer_definitions(settings: Settings, layers: tuple[str, ...] = LAYERS) -> list[dg.Definitions]:
    out = []
    for name in layers:
        module = importlib.import_module(f"ecommerce_platform.{name}.definitions")
        out.append(module.definitions(settings))
    return out


def build_definitions(settings: Settings | None = None, layers: tuple[str, ...] = LAYERS) -> dg.Definitions:
    """The whole code location (or the first ``layers``, for tests that need only the lake)."""
    settings = settings or load_settings()
    layers = dg.Definitions.merge(*layer_definitions(settings, layers))
    resources = build_resources(settings, env_vars=True)
    assets = with_engine_kinds(list(layers.assets or []), settings.warehouse_engine)
    rebuild = dg.define_asset_job(
        "rebuild_from_clean",
        # everything but the landings (their partitions are files and arrival days, not invoice months)
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets("raw_s3", "raw_stream"),
        partitions_def=INVOICE_MONTHS,
        description="The clean zone's invoice months and every asset downstream of the landings, in one run "
        "(what `make run` launches after landing).",
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=list(layers.asset_checks or []),
        jobs=[*(layers.jobs or []), *layer_jobs(), rebuild],
        schedules=list(layers.schedules or []),
        sensors=[*(layers.sensors or []), automation_sensor(settings.sensor_interval_seconds)],
        resources={**resources, **(layers.resources or {})},
        # One process for every step: on 2 cores the multiprocess executor costs ~2-3 s per step
        # (a Python start + imports each), more than most of our assets take. See README.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
