"""The whole graph as `make run` runs it (ecommerce materialize: landing, then every invoice month and all
that depends on it), here on generated data (ECOMMERCE_SOURCE=synthetic: benchmarks, scale tests, demos):
every blocking check passes, every run says the data is invented, every materialization's metadata is
light (charts and reports are files, not base64), and a second run with nothing changed recomputes
nothing; a forced one rebuilds everything."""

import json
import logging

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import platform_environment

pytestmark = pytest.mark.graph
MAX_METADATA_BYTES = 50_000


def _metadata_bytes(event) -> int:
    from dagster._serdes import serialize_value

    return len(serialize_value(dict(event.materialization.metadata)))


def test_whole_graph_on_generated_data(tmp_path):
    from ecommerce_platform.definitions import build_definitions
    from ecommerce_platform.runner import rebuild

    with platform_environment(tmp_path / "data", ECOMMERCE_SOURCE="synthetic"), \
            dg.DagsterInstance.ephemeral() as instance:
        defs = build_definitions()
        keys = {k.to_user_string() for k in defs.resolve_asset_graph().materializable_asset_keys}
        select = " or ".join(f"key:{k}" for k in sorted(keys - {"data_profile"}))  # the slow report: own tests
        runs = rebuild(instance, defs, select=select, log=lambda _m: None)
        assert [r.dagster_run.job_name for r in runs] == ["raw_s3_job", "rebuild_from_clean"]
        assert all(r.success for r in runs)
        for r in runs:
            warned = [e for e in instance.all_logs(r.run_id)
                      if e.level == logging.WARNING and "SYNTHETIC" in (e.user_message or "")]
            assert warned, f"{r.dagster_run.job_name} did not say the data is generated"
        events = [e for r in runs for e in r.get_asset_materialization_events()]
        materialized = {e.asset_key.to_user_string() for e in events}
        # the embedded stream is empty on a fresh machine: raw_stream has nothing to land and is not run
        assert materialized == keys - {"data_profile", "raw_stream"}
        heavy = {e.asset_key.to_user_string(): _metadata_bytes(e) for e in events
                 if _metadata_bytes(e) > MAX_METADATA_BYTES}
        assert not heavy, f"materializations with metadata over 50 KB: {heavy}"
        for event in events:
            for name, value in event.materialization.metadata.items():
                assert "data:image" not in json.dumps(str(value.value))[:10_000], (event.asset_key, name)
        evaluations = [e for r in runs for e in r.get_asset_check_evaluations()]
        checks = {e.check_name: e.passed for e in evaluations}
        # a gate that cannot decide on this data (a bootstrap interval across zero) warns, never fails
        errors = [e.check_name for e in evaluations if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR]
        assert checks and not errors, {e.check_name: (e.passed, e.severity) for e in evaluations}
        assert {"clean_reconciliation", "views_reconcile", "classifier_beats_baseline",
                "als_beats_popularity", "faiss_index_retrieval_quality"} <= set(checks)

        # nothing changed: every asset reports its previous output, nothing is recomputed
        (again,) = rebuild(instance, defs, select=select, log=lambda _m: None)
        reused = {e.asset_key.to_user_string(): e.materialization.metadata.get("reused_previous_output")
                  for e in again.get_asset_materialization_events()}
        assert reused and all(v is not None and v.value for v in reused.values()), reused

        # forced: everything is rebuilt
        (forced,) = rebuild(instance, defs, select="key:clean_parquet or key:daily_sales", force=True,
                            log=lambda _m: None)
        flags = {e.asset_key.to_user_string(): e.materialization.metadata.get("reused_previous_output")
                 for e in forced.get_asset_materialization_events()}
        assert {"clean_parquet", "quarantine", "daily_sales"} <= set(flags), flags
        assert not [k for k, v in flags.items() if v is not None and v.value], flags
