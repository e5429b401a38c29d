"""A fresh, offline machine with no source data: the platform generates the synthetic data set, says
so, and the whole graph (its blocking checks included) succeeds on it - what `make run` does there."""

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import platform_environment

pytestmark = pytest.mark.graph


def test_whole_graph_on_generated_data_when_offline(tmp_path):
    from ecommerce_platform.definitions import build_definitions

    with platform_environment(tmp_path / "data"):  # no ECOMMERCE_SOURCE, no file in data/, no download
        defs = build_definitions()
        job = defs.resolve_implicit_global_asset_job_def()
        keys = [k for k in defs.resolve_asset_graph().materializable_asset_keys
                if k.to_user_string() != "data_profile"]  # the slow report has its own tests
        with dg.DagsterInstance.ephemeral() as instance:
            result = job.execute_in_process(instance=instance, asset_selection=keys)
    assert result.success
    raw = result.asset_materializations_for_node("raw_s3")[-1].metadata
    assert raw["source_origin"].value == "synthetic"
    assert "SYNTHETIC" in raw["source_note"].value
    assert (tmp_path / "data" / "synthetic_online_retail.parquet").exists()
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks
    assert {"clean_reconciliation", "views_reconcile", "classifier_beats_baseline",
            "als_beats_popularity", "faiss_index_retrieval_quality"} <= set(checks)
