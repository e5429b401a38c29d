"""A machine with nothing but the clone, offline: `make run` runs the whole graph on the reference data
set shipped in the repository; asked for generated data (ECOMMERCE_SOURCE=synthetic: benchmarks, scale
tests, demos), the whole graph and its blocking checks also pass, and every run says the data is invented."""

import logging

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import platform_environment

pytestmark = pytest.mark.graph


def test_whole_graph_on_generated_data_when_asked(tmp_path):
    from ecommerce_platform.definitions import build_definitions

    with platform_environment(tmp_path / "data", ECOMMERCE_SOURCE="synthetic"):
        defs = build_definitions()
        job = defs.resolve_implicit_global_asset_job_def()
        keys = [k for k in defs.resolve_asset_graph().materializable_asset_keys
                if k.to_user_string() != "data_profile"]  # the slow report has its own tests
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(instance=instance, asset_selection=keys)
            warned = {e.step_key for e in instance.all_logs(result.run_id)
                      if e.level == logging.WARNING and "SYNTHETIC" in (e.user_message or "")}
    assert result.success
    raw = result.asset_materializations_for_node("raw_s3")[-1].metadata
    assert raw["source_origin"].value == "synthetic"
    assert "SYNTHETIC" in raw["source_note"].value
    assert (tmp_path / "data" / "generated" / "synthetic_online_retail.parquet").exists()
    assert {"raw_s3", "clean_parquet"} <= warned
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks
    assert {"clean_reconciliation", "views_reconcile", "classifier_beats_baseline",
            "als_beats_popularity", "faiss_index_retrieval_quality"} <= set(checks)
