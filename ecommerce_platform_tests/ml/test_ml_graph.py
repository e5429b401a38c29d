"""Graph test: the ML feature tables, models and the view vip_transactions materialized on the real file
(session `clean_lake`, only the ML assets: upstream is not re-run), their metadata (tables, metrics,
plots as files, every materialization under 50 KB), the checks, reuse when nothing changed, and the CLI
predict paths against that lake. Expected figures are counted in the tests from the clean table."""

import json
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from ecommerce_platform_tests.conftest import platform_environment
from ecommerce_platform_tests.ml.conftest import MAX_METADATA_BYTES, checks, meta, metadata_bytes, query

pytestmark = pytest.mark.graph

MODELS = ("classifier", "segments", "als_model")


def ml_assets():
    from ecommerce_platform.ml import assets as A

    return [*A.ASSETS, *A.CHECKS]


@pytest.fixture(scope="module")
def ml_run(clean_lake):
    data_dir, resources = clean_lake
    instance = dg.DagsterInstance.ephemeral()
    with platform_environment(data_dir):
        result = dg.materialize(ml_assets(), resources=resources, instance=instance)
    assert result.success
    return data_dir, resources, result, instance


def test_checks_pass(ml_run):
    _, _, result, _ = ml_run
    assert {name: c.passed for name, c in checks(result).items()} == {
        "classifier_beats_baseline": True, "segments_cover_customers": True, "als_beats_popularity": True}


def test_every_materialization_is_declared_and_small(ml_run):
    _, _, result, _ = ml_run
    keys = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert keys == {"invoice_features", "customer_features", "user_item_interactions", *MODELS, "vip_transactions"}
    for key in keys:
        size = metadata_bytes(result, key)
        assert size < MAX_METADATA_BYTES, (key, size)
        assert "base64" not in json.dumps({k: str(v) for k, v in meta(result, key).items()}), key


def test_feature_tables_metadata_counts_and_preview(ml_run):
    data_dir, _, result, _ = ml_run
    with platform_environment(data_dir):
        expected = query(
            "SELECT (SELECT count(DISTINCT invoice_no) FROM transactions WHERE is_sale AND NOT is_guest) AS invoices, "
            "(SELECT count(DISTINCT customer_id) FROM transactions WHERE (is_sale OR is_return) AND NOT is_guest) AS customers, "
            "(SELECT count(*) FROM (SELECT DISTINCT customer_id, stock_code, invoice_no FROM transactions "
            " WHERE is_sale AND NOT is_guest)) AS interactions").iloc[0]
    for key, rows in (("invoice_features", expected["invoices"]), ("customer_features", expected["customers"]),
                      ("user_item_interactions", expected["interactions"])):
        m = meta(result, key)
        assert m["dagster/row_count"] == int(rows), key
        assert m["dagster/table_name"] == f"warehouse.{key}"
        assert m["dagster/uri"] == str(data_dir.resolve() / "lake" / "features" / key)
        assert m["dagster/column_schema"].columns and m["dagster/column_lineage"].deps_by_column
        preview = m["preview"]
        assert len(preview.records) == 5 and {c.name for c in preview.schema.columns} == {
            c.name for c in m["dagster/column_schema"].columns}
        for record in preview.records:
            for value in record.data.values():
                if isinstance(value, float):
                    assert value == round(value, 4)


def test_classifier_metrics_are_honest(ml_run):
    _, _, result, _ = ml_run
    m = meta(result, "classifier")
    assert m["status"] == "served" and m["promoted"] is True and m["served_run_id"] == m["run_id"]
    for k in ("roc_auc", "pr_auc", "precision", "recall", "f1"):
        assert 0 < m[f"test_{k}"] <= 1 and 0 < m[f"baseline_{k}"] <= 1
        assert m[f"test_{k}"] == round(m[f"test_{k}"], 4)
    assert m["test_roc_auc"] >= m["baseline_roc_auc"] + 0.05
    assert m["test_roc_auc"] < 0.99  # a higher figure would mean a leak
    assert 0.03 < m["test_positive_rate"] < 0.2
    assert "invoice_total" not in m["features"]
    assert m["split"]["test_months"] == "201110-201112"
    assert [r.data["model"] for r in m["metrics"].records][0] == "gradient boosting"


def test_segments_table_view_and_plot(ml_run):
    data_dir, _, result, _ = ml_run
    m = meta(result, "segments")
    assert set(m["segment_sizes"]) == {"champions", "loyal", "at risk", "dormant", "no net spend"}
    assert m["excluded_no_net_spend"] == m["segment_sizes"]["no net spend"] > 0
    assert m["dagster/table_name"] == "warehouse.customer_segments"
    assert m["dagster/row_count"] == meta(result, "customer_features")["dagster/row_count"]
    plot = Path(m["pca_plot"])
    assert plot.is_file() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with platform_environment(data_dir):
        top = query("SELECT segment FROM customer_segments GROUP BY segment ORDER BY avg(monetary) DESC LIMIT 1")
        champions_sales = query(
            "SELECT count(*) AS n FROM transactions AS t WHERE t.is_sale AND t.customer_id IN "
            "(SELECT customer_id FROM customer_segments WHERE segment = 'champions')").iloc[0]["n"]
    assert top.iloc[0, 0] == "champions"
    vip = meta(result, "vip_transactions")
    assert vip["dagster/row_count"] == int(champions_sales) > 0
    assert vip["customers"] == m["segment_sizes"]["champions"]
    assert {c.name for c in vip["dagster/column_schema"].columns} >= {"invoice_no", "customer_net_spend"}


def test_als_orientation_and_lift(ml_run):
    data_dir, _, result, _ = ml_run
    m = meta(result, "als_model")
    assert m["als_precision_at_10"] >= 1.5 * m["popularity_precision_at_10"]
    assert m["precision_lift"] == pytest.approx(m["als_precision_at_10"] / m["popularity_precision_at_10"], rel=0.01)
    for k in ("recall_at_10", "map_at_10", "coverage"):
        assert m[f"als_{k}"] > 0 and m[f"popularity_{k}"] > 0
    with platform_environment(data_dir):
        n = query("SELECT count(DISTINCT customer_id) AS u, count(DISTINCT stock_code) AS i "
                  "FROM user_item_interactions").iloc[0]
    assert m["n_users"] == int(n["u"]) and m["n_items"] == int(n["i"])


def test_unchanged_inputs_reuse_everything(ml_run):
    data_dir, resources, first, instance = ml_run
    with platform_environment(data_dir):
        again = dg.materialize(ml_assets(), resources=resources, instance=instance)
    assert again.success
    for key in ("invoice_features", "customer_features", "user_item_interactions", *MODELS, "vip_transactions"):
        before, after = meta(first, key), meta(again, key)
        assert after.pop("reused_previous_output") is True and "reused_previous_output" not in before
        assert after == before, key
    assert all(c.passed for c in again.get_asset_check_evaluations())


def test_cli_recommend_similar_and_cold_start(ml_run):
    from ecommerce_platform.cli import main

    data_dir, _, result, _ = ml_run
    runner = CliRunner()
    with platform_environment(data_dir):
        known = runner.invoke(main, ["recommend", "12347", "-n", "5", "--json"])
        assert known.exit_code == 0, known.output
        out = json.loads(known.output)
        assert out["known_customer"] and len(out["items"]) == 5 and all(i["description"] for i in out["items"])
        assert out["model_run_id"] == meta(result, "als_model")["run_id"]
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
    from ecommerce_platform.ml.classifier import load_model, parse_requests, request_frame
    from ecommerce_platform.resources import build_resources

    data_dir, _, result, _ = ml_run
    runner = CliRunner()
    with platform_environment(data_dir):
        wh = build_resources()["warehouse"]
        row = wh.query_df("SELECT * FROM invoice_features WHERE prior_orders > 5 ORDER BY invoice_ts DESC LIMIT 1").iloc[0]
        request = [{"customer_id": row["customer_id"], "country": row["country"],
                    "invoice_ts": row["invoice_ts"].isoformat(), "basket_lines": int(row["basket_lines"])},
                   {"country": "France", "invoice_ts": "2011-12-01T10:00:00", "lines": [{"stock_code": "22423"}] * 3}]
        res = runner.invoke(main, ["predict-high-value", "-"], input=json.dumps(request))
        assert res.exit_code == 0, res.output
        out = json.loads(res.output)
        assert [o["known_customer"] for o in out] == [True, False]
        assert all(0 <= o["probability"] <= 1 and isinstance(o["high_value"], bool) for o in out)
        assert {o["model_run_id"] for o in out} == {meta(result, "classifier")["run_id"]}
        # the predict path's history equals the training features of that invoice
        frame = request_frame(wh, parse_requests(request[0]))
        for col in ("prior_orders", "prior_spend", "prior_max_order", "days_since_last_order", "tenure_days"):
            assert frame[col].iloc[0] == pytest.approx(float(row[col])), col
        model = load_model(wh.lake)
        assert out[0]["probability"] == pytest.approx(float(model.predict_proba(frame)[0]), abs=1e-6)
        bad = runner.invoke(main, ["predict-high-value", "-"], input="{not json")
        assert bad.exit_code == 2 and "not valid JSON" in bad.output
