"""The one place where assets, checks, jobs, schedules, sensors and resources meet.

Each layer module (``<layer>/assets.py``) holds its assets and checks and may export ``JOBS``,
``SCHEDULES`` and ``SENSORS`` lists; resources come from ``resources.build_resources`` (picked by
ECOMMERCE_DEPLOYMENT). Loading this module imports no heavy library (torch, faiss, sklearn, ...).
"""


import importlib

import dagster as dg

from ecommerce_platform.automation import (
    apply_operations,
    build_automation_sensor,
    build_jobs,
    build_schedules,
)
from ecommerce_platform.resources import build_resources

LAYER_MODULES = (
    "ecommerce_platform.ingestion.assets",
    "ecommerce_platform.lake.assets",
    "ecommerce_platform.ml.assets",
    "ecommerce_platform.analytics.assets",
    "ecommerce_platform.eda.assets",
    "ecommerce_platform.rag.assets",
)


def _layers():
    return [importlib.import_module(name) for name in LAYER_MODULES]


def build_definitions() -> dg.Definitions:
    modules = _layers()
    assets = apply_operations(list(dg.load_assets_from_modules(modules)))
    keys = {k.to_user_string() for a in assets for k in a.keys}
    checks = dg.load_asset_checks_from_modules(modules)
    jobs = [*build_jobs(keys), *(j for m in modules for j in getattr(m, "JOBS", []))]
    schedules = [*build_schedules(), *(s for m in modules for s in getattr(m, "SCHEDULES", []))]
    sensors = [build_automation_sensor(), *(s for m in modules for s in getattr(m, "SENSORS", []))]
    all_assets = dg.define_asset_job(
        "all_assets",
        selection=dg.AssetSelection.all(),
        description="Materialize the whole graph (what `make run` does).",
        executor_def=dg.in_process_executor,
    )
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[all_assets, *jobs],
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(),
        # One process for every step: on 2 cores the multiprocess executor costs ~2-3 s per step
        # (a Python start + imports each), more than most of our assets take. See README.
        executor=dg.in_process_executor,
    )


defs = build_definitions()
