"""The ML layer in the definitions: every asset declared (code version from its files, kinds, the
writer pool for what writes the lake or catalog, the weekly cadence), its checks registered, and
loading the definitions imports no heavy ML library."""

import subprocess
import sys

import dagster as dg

from ecommerce_platform_tests.conftest import REPO_ROOT

ML_ASSETS = {"invoice_features", "customer_features", "user_item_interactions", "classifier", "segments",
             "vip_transactions", "als_model", "sales_forecast"}


def test_ml_assets_and_checks_registered():
    from ecommerce_platform.definitions import defs
    from ecommerce_platform.operations import CADENCE_TAG, LAYER_TAG, WEEKLY, WRITER_POOL

    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert ML_ASSETS <= keys
    checks = {c.name for c in graph.asset_check_keys}
    assert {"classifier_beats_baseline", "segments_cover_customers", "als_beats_popularity",
            "sales_forecast_beats_seasonal_naive"} <= checks
    for name in ML_ASSETS:
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "ml" and node.tags[LAYER_TAG] == "ml" and node.tags[CADENCE_TAG] == WEEKLY, name
        assert node.code_version and len(node.code_version) == 16 and node.description and node.kinds, name
        assert "cron" in str(node.automation_condition).lower(), name
        assert defs.resolve_assets_def(dg.AssetKey(name)).node_def.pool == WRITER_POOL, name
    deps = {k: {p.to_user_string() for p in graph.get(dg.AssetKey(k)).parent_keys} for k in ML_ASSETS}
    assert deps["vip_transactions"] == {"segments", "clean_parquet"}
    assert deps["classifier"] == {"invoice_features"} and deps["segments"] == {"customer_features"}
    # the forecast reads the analytics views (THE revenue definition), never the clean table itself
    assert deps["sales_forecast"] == {"daily_sales", "daily_sales_by_country"}


def test_each_feature_table_has_its_own_code_version():
    from ecommerce_platform.ml import assets as A

    versions = {a.key.to_user_string(): a.code_versions_by_key[a.key] for a in
                (A.invoice_features, A.customer_features, A.user_item_interactions)}
    assert len(set(versions.values())) == 3


def test_loading_definitions_imports_no_ml_library():
    code = ("import sys, ecommerce_platform.definitions; "
            "print(sorted(m for m in ('sklearn', 'implicit', 'matplotlib', 'scipy', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
