"""The definitions as users and operators meet them: they load fast and light, every asset is
declared completely, jobs/schedules/sensors exist with safe defaults and evaluate, and the graph's
shape is snapshotted so an accidental change shows up in review."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import REPO_ROOT, platform_environment

HEAVY = ("torch", "sentence_transformers", "faiss", "implicit", "sklearn", "matplotlib",
         "seaborn", "ydata_profiling", "onnxruntime", "transformers")
CORE_ASSETS = ("raw_s3", "clean_parquet", "athena_views", "classifier", "segments", "als_model", "faiss_index")
LAYERS = ("ingestion", "lake", "analytics", "ml", "rag", "eda")
SNAPSHOT = Path(__file__).with_name("graph_snapshot.json")


@pytest.fixture(scope="module")
def defs():
    from ecommerce_platform.definitions import defs

    return defs


def test_loading_definitions_imports_no_heavy_library():
    code = ("import sys, ecommerce_platform.definitions as d\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                         env={**os.environ, "ECOMMERCE_DEPLOYMENT": "local"}, check=True)
    assert out.stdout.strip() == ""


def test_every_asset_is_declared_completely(defs):
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    assert set(CORE_ASSETS) <= keys
    groups = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if not node.is_materializable:
            continue
        name = key.to_user_string()
        groups.add(node.group_name)
        assert node.group_name in LAYERS, name
        assert node.description, name
        assert node.code_version, name
        assert node.owners, name
        assert node.kinds, name
        assert node.automation_condition is not None, name
    assert groups == set(LAYERS)


def test_jobs_schedules_and_sensors_are_safe_by_default(defs):
    repo = defs.get_repository_def()
    jobs = {j.name for j in repo.get_all_jobs()}
    assert {"all_assets", "refresh_lake_and_analytics", "retrain_models",
            *(f"{layer}_job" for layer in LAYERS)} <= jobs
    for schedule in repo.schedule_defs:
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED, schedule.name
    for sensor in repo.sensor_defs:
        assert sensor.default_status == dg.DefaultSensorStatus.STOPPED, sensor.name


def test_each_schedule_evaluates_to_a_run_of_its_job(defs):
    repo = defs.get_repository_def()
    assert {s.name for s in repo.schedule_defs} >= {"daily_refresh", "weekly_retrain"}
    with dg.DagsterInstance.ephemeral() as instance:
        for schedule in repo.schedule_defs:
            ctx = dg.build_schedule_context(instance=instance)
            data = schedule.evaluate_tick(ctx)
            assert data.run_requests, schedule.name
            job = repo.get_job(schedule.job_name)
            assert job.asset_layer.executable_asset_keys, schedule.name


def test_each_sensor_evaluates_on_an_empty_deployment(defs, tmp_path):
    repo = defs.get_repository_def()
    with platform_environment(tmp_path / "data"):
        from ecommerce_platform.resources import build_resources

        resources = build_resources()
        with dg.DagsterInstance.ephemeral() as instance:
            for sensor in repo.sensor_defs:
                if isinstance(sensor, dg.AutomationConditionSensorDefinition):
                    continue  # evaluated by the daemon; its conditions are tested below
                ctx = dg.build_sensor_context(instance=instance, resources=resources,
                                              definitions=defs)
                data = sensor.evaluate_tick(ctx)
                assert not data.run_requests, f"{sensor.name} requested a run with no new data"


def test_automation_conditions(defs):
    graph = defs.resolve_asset_graph()
    cron = graph.get(dg.AssetKey("classifier")).automation_condition
    eager = graph.get(dg.AssetKey("athena_views")).automation_condition
    assert "cron" in cron.get_label().lower() or "cron" in str(cron).lower()
    assert cron != eager


def _graph_shape(defs) -> dict:
    graph = defs.resolve_asset_graph()
    shape = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        if not node.is_materializable:
            continue
        shape[key.to_user_string()] = {
            "group": node.group_name,
            "deps": sorted(p.to_user_string() for p in node.parent_keys),
            "checks": sorted(c.name for c in node.check_keys),
        }
    return shape


def test_graph_matches_the_reviewed_snapshot(defs):
    shape = _graph_shape(defs)
    if os.environ.get("UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(shape, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())
    assert shape == expected, (
        "the asset graph changed; if on purpose, run UPDATE_SNAPSHOT=1 pytest "
        "ecommerce_platform_tests/ops/test_definitions.py and review the diff of graph_snapshot.json"
    )
