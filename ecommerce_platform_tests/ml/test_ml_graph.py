"""Graph test: the ML features and models materialized on the real file (session `clean_lake`), their
metrics in metadata and at target, the blocking checks, and the CLI predict paths against that lake."""

import json

import dagster as dg
import pytest
from click.testing import CliRunner

from ecommerce_platform_tests.conftest import platform_environment

pytestmark = pytest.mark.graph


@pytest.fixture(scope="module")
def ml_run(clean_lake):
    from ecommerce_platform.ml import assets as A

    data_dir, resources = clean_lake
    instance = dg.DagsterInstance.ephemeral()
    with platform_environment(data_dir):
        result = dg.materialize(ML_ASSETS(A), resources=resources, instance=instance)
    assert result.success
    return data_dir, resources, result, instance


def ML_ASSETS(A):  # noqa: N802, ANN001, ANN201
    return [A.invoice_features, A.customer_features, A.user_item_interactions, A.classifier, A.segments,
            A.als_model, A.classifier_beats_baseline, A.segments_cover_customers, A.als_beats_popularity]


def test_unchanged_inputs_reuse_the_served_models(ml_run):
    from ecommerce_platform.ml import assets as A

    data_dir, resources, first, instance = ml_run
    with platform_environment(data_dir):
        again = dg.materialize(ML_ASSETS(A), resources=resources, instance=instance)
    assert again.success
    for key in ("classifier", "segments", "als_model"):
        before, after = _meta(first, key), _meta(again, key)
        assert after["reused_previous_output"] is True and before["reused_previous_output"] is False
        assert {k: v for k, v in after.items() if k != "reused_previous_output"} == \
            {k: v for k, v in before.items() if k != "reused_previous_output"}
    assert all(c.passed for c in again.get_asset_check_evaluations())


def _meta(result, key):
    return {k: v.value for k, v in result.asset_materializations_for_node(key)[-1].metadata.items()}


def test_checks_pass(ml_run):
    _, _, result, _ = ml_run
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks == {"classifier_beats_baseline": True, "segments_cover_customers": True, "als_beats_popularity": True}


def test_feature_tables_have_schemas_and_rows(ml_run):
    _, _, result, _ = ml_run
    for key, rows in (("invoice_features", 18_402), ("customer_features", 4_362), ("user_item_interactions", None)):
        meta = _meta(result, key)
        assert meta["dagster/column_schema"].columns
        assert meta["dagster/row_count"] == rows if rows else meta["dagster/row_count"] > 300_000


def test_classifier_metrics_are_honest(ml_run):
    _, _, result, _ = ml_run
    m = _meta(result, "classifier")
    for k in ("roc_auc", "pr_auc", "precision", "recall", "f1"):
        assert 0 < m[f"test_{k}"] <= 1 and 0 < m[f"baseline_{k}"] <= 1
    assert m["test_roc_auc"] >= m["baseline_roc_auc"] + 0.05
    assert m["test_roc_auc"] < 0.99  # a higher figure would mean a leak
    assert 0.03 < m["test_positive_rate"] < 0.2
    assert "invoice_total" not in m["features"] and m["promoted"]
    assert m["split"]["test_months"] == "201110-201112"


def test_segments_named_and_vip_view_returns_rows(ml_run):
    data_dir, resources, result, _ = ml_run
    m = _meta(result, "segments")
    assert set(m["segment_sizes"]) == {"champions", "loyal", "at risk", "dormant", "no net spend"}
    assert m["excluded_no_net_spend"] == m["segment_sizes"]["no net spend"] > 0
    assert "data:image/png;base64," in m["pca_plot"] and "| k | silhouette |" in m["silhouettes"]
    assert m["vip_transactions_rows"] > 0
    wh, lake = resources["warehouse"], resources["lake"]
    champions = wh.query_df("SELECT avg(monetary) AS m, avg(recency_days) AS r FROM customer_segments "
                            "GROUP BY segment ORDER BY m DESC LIMIT 1", lake)
    top = wh.query_df("SELECT segment FROM customer_segments GROUP BY segment ORDER BY avg(monetary) DESC LIMIT 1", lake)
    assert top.iloc[0, 0] == "champions" and len(champions) == 1
    assert (data_dir / "lake" / "models" / "segments" / "segments_pca.png").exists()


def test_als_orientation_and_lift(ml_run):
    _, resources, result, _ = ml_run
    m = _meta(result, "als_model")
    assert m["als_precision_at_10"] >= 1.5 * m["popularity_precision_at_10"]
    for k in ("recall_at_10", "map_at_10", "coverage"):
        assert m[f"als_{k}"] > 0 and m[f"popularity_{k}"] > 0
    n = resources["warehouse"].query_df(
        "SELECT count(DISTINCT customer_id) AS u, count(DISTINCT stock_code) AS i FROM user_item_interactions",
        resources["lake"]).iloc[0]
    assert m["n_users"] == int(n["u"]) and m["n_items"] == int(n["i"])


def test_cli_recommend_similar_and_cold_start(ml_run):
    from ecommerce_platform.cli import main

    data_dir, _, _, _ = ml_run
    runner = CliRunner()
    with platform_environment(data_dir):
        known = runner.invoke(main, ["recommend", "12347", "-n", "5", "--json"])
        assert known.exit_code == 0, known.output
        out = json.loads(known.output)
        assert out["known_customer"] and len(out["items"]) == 5 and all(i["description"] for i in out["items"])
        text = runner.invoke(main, ["recommend", "12347", "-n", "3", "--include-purchased"])
        assert text.exit_code == 0 and "including" in text.output
        cold = runner.invoke(main, ["recommend", "NOT-A-CUSTOMER", "-n", "3"])
        assert cold.exit_code == 0 and "cold start" in cold.output and "REGENCY CAKESTAND" in cold.output
        sim = runner.invoke(main, ["similar", "85123A", "-n", "3"])
        assert sim.exit_code == 0 and "WHITE HANGING HEART" in sim.output
        bad = runner.invoke(main, ["similar", "NOPE-123"])
        assert bad.exit_code == 2 and "unknown stock code" in bad.output


def test_cli_predict_high_value_uses_lake_history(ml_run):
    from ecommerce_platform.cli import main

    data_dir, resources, _, _ = ml_run
    wh, lake = resources["warehouse"], resources["lake"]
    row = wh.query_df("SELECT * FROM invoice_features WHERE prior_orders > 5 ORDER BY invoice_ts DESC LIMIT 1", lake).iloc[0]
    request = [{"customer_id": row["customer_id"], "country": row["country"],
                "invoice_ts": row["invoice_ts"].isoformat(), "basket_lines": int(row["basket_lines"])},
               {"country": "France", "invoice_ts": "2011-12-01T10:00:00", "lines": [{"stock_code": "22423"}] * 3}]
    runner = CliRunner()
    with platform_environment(data_dir):
        res = runner.invoke(main, ["predict-high-value", "-"], input=json.dumps(request))
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert [o["known_customer"] for o in out] == [True, False]
        assert all(0 <= o["probability"] <= 1 and isinstance(o["high_value"], bool) for o in out)
        # the predict path's history equals the training features of that invoice
        from ecommerce_platform.ml.classifier import load_model, parse_requests, request_frame

        frame = request_frame(wh, lake, parse_requests(request[0]))
        for col in ("prior_orders", "prior_spend", "prior_max_order", "days_since_last_order", "tenure_days"):
            assert frame[col].iloc[0] == pytest.approx(float(row[col])), col
        model = load_model(lake)
        assert out[0]["probability"] == pytest.approx(float(model.predict_proba(frame)[0]), abs=1e-6)
        bad = runner.invoke(main, ["predict-high-value", "-"], input="{not json")
        assert bad.exit_code == 2 and "not valid JSON" in bad.output
