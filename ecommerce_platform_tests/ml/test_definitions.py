"""The ML assets are in the definitions, and loading them imports no heavy ML library."""

import subprocess
import sys

from ecommerce_platform_tests.conftest import REPO_ROOT


def test_ml_assets_and_checks_registered():
    from ecommerce_platform.definitions import defs

    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {"invoice_features", "customer_features", "user_item_interactions", "classifier", "segments",
            "als_model"} <= keys
    graph = defs.resolve_asset_graph()
    checks = {c.name for c in graph.asset_check_keys}
    assert {"classifier_beats_baseline", "segments_cover_customers", "als_beats_popularity"} <= checks


def test_loading_definitions_imports_no_ml_library():
    code = ("import sys, ecommerce_platform.definitions; "
            "print(sorted(m for m in ('sklearn', 'implicit', 'matplotlib', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
