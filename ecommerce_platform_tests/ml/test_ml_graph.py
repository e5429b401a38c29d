"""Graph test: the ML feature tables, models, the view vip_transactions and the sales forecast
materialized on the real file (session `clean_lake`; only the ML assets and the analytics views the
forecast reads: upstream is not re-run), their metadata (tables, metrics, plots as files, every
materialization under 50 KB), the checks, reuse when nothing changed, and the CLI predict paths against
that lake. Expected figures are counted in the tests from the clean table and the views."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecommerce_platform_tests.conftest import platform_environment
from ecommerce_platform_tests.ml.conftest import MAX_METADATA_BYTES, checks, meta, metadata_bytes, query

pytestmark = pytest.mark.graph

MODELS = ("classifier", "segments", "als_model", "sales_forecast")
VIEWS = ("sale_lines", "daily_sales", "daily_sales_by_country")  # what the forecast reads (analytics layer)


def ml_assets():
    from ecommerce_platform.analytics.assets import analytics_views
    from ecommerce_platform.ml import assets as A

    return [analytics_views, *A.ASSETS, *A.CHECKS]


def selection():
    from ecommerce_platform.ml import assets as A

    return [dg.AssetKey(v) for v in VIEWS] + [a.key for a in A.ASSETS]


def materialize(resources, instance):
    from ecommerce_platform.ml import assets as A

    return dg.materialize(ml_assets(), resources=resources, instance=instance,
                          selection=dg.AssetSelection.assets(*selection()) | dg.AssetSelection.checks(*A.CHECKS))


@pytest.fixture(scope="module")
def ml_run(clean_lake):
    data_dir, resources = clean_lake
    instance = dg.DagsterInstance.ephemeral()
    with platform_environment(data_dir):
        result = materialize(resources, instance)
    assert result.success
    return data_dir, resources, result, instance


def test_checks_pass(ml_run):
    _, _, result, _ = ml_run
    assert {name: c.passed for name, c in checks(result).items()} == {
        "classifier_beats_baseline": True, "segments_cover_customers": True, "als_beats_popularity": True,
        "sales_forecast_beats_seasonal_naive": True}


def test_every_materialization_is_declared_and_small(ml_run):
    _, _, result, _ = ml_run
    keys = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
    assert keys == {"invoice_features", "customer_features", "user_item_interactions", *MODELS, "vip_transactions",
                    *VIEWS}
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
    from ecommerce_platform.ml import classifier as clf
    from ecommerce_platform.ml.contract import MIN_AUC_MARGIN

    _, _, result, _ = ml_run
    m = meta(result, "classifier")
    assert m["status"] == "served" and m["promoted"] is True and m["served_run_id"] == m["run_id"]
    for k in ("roc_auc", "pr_auc", "precision", "recall", "f1"):
        assert 0 < m[f"test_{k}"] <= 1 and 0 < m[f"baseline_{k}"] <= 1
        assert m[f"test_{k}"] == round(m[f"test_{k}"], 4)
    # held to the strongest baseline it is compared with, with the interval above the margin
    against = clf.BASELINES if m["model_kind"] == clf.GBM else clf.SIMPLE_BASELINES
    assert m["strongest_baseline"] == max(against, key=lambda b: m[f"roc_auc_{b}"])
    assert m["test_roc_auc"] >= m[f"roc_auc_{m['strongest_baseline']}"] + MIN_AUC_MARGIN and m["auc_margin_lo"] > 0
    assert m["roc_auc_logreg_4_features"] > m["roc_auc_logreg_1_feature"]  # the four-feature baseline is stronger
    assert m["test_roc_auc"] < 0.99  # a higher figure would mean a leak
    assert 0.03 < m["test_positive_rate"] < 0.2
    assert "invoice_total" not in m["features"]
    assert m["split"]["test_months"] == "201110-201112"
    assert {r.data["model"] for r in m["metrics"].records} >= {*clf.BASELINES, "gradient_boosting (trees)"}


def test_segments_table_view_and_plot(ml_run):
    from ecommerce_platform.ml import segments as seg

    data_dir, _, result, _ = ml_run
    m = meta(result, "segments")
    assert {seg.TOP_SEGMENT, seg.NEW, seg.ONE_TIME, seg.NO_NET_SPEND} <= set(m["segment_sizes"])
    assert m["excluded_no_net_spend"] == m["segment_sizes"]["no net spend"] > 0
    assert m["dagster/table_name"] == "warehouse.customer_segments"
    assert m["dagster/row_count"] == meta(result, "customer_features")["dagster/row_count"]
    # k: the best silhouette among the stable k
    rows = {r.data["k"]: r.data for r in m["k_choice"].records}
    stable = [k for k, r in rows.items() if r["stability_ari"] >= seg.MIN_STABILITY_ARI]
    assert m["k"] == max(stable, key=lambda k: (rows[k]["silhouette"], -k))
    plot = Path(m["pca_plot"])
    assert plot.is_file() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with platform_environment(data_dir):
        profile = query("SELECT segment, count(*) AS n, median(frequency) AS f, median(recency_days) AS r "
                        "FROM customer_segments GROUP BY segment").set_index("segment")
        champions_sales = query(
            "SELECT count(*) AS n FROM transactions AS t WHERE t.is_sale AND t.customer_id IN "
            "(SELECT customer_id FROM customer_segments WHERE segment = 'champions')").iloc[0]["n"]
    # the names hold: one-time buyers bought once, new ones recently; champions are recent and frequent
    assert profile.loc[seg.ONE_TIME, "f"] == 1 and profile.loc[seg.ONE_TIME, "r"] > seg.NEW_DAYS
    assert profile.loc[seg.NEW, "f"] == 1 and profile.loc[seg.NEW, "r"] <= seg.NEW_DAYS
    assert profile.loc["champions", "r"] <= seg.CHAMPION_RECENCY_DAYS and profile.loc["champions", "f"] >= seg.CHAMPION_FREQUENCY
    for name in profile.index:
        if name.startswith("at risk"):
            assert profile.loc[name, "f"] >= 2  # at risk: repeat buyers only
    vip = meta(result, "vip_transactions")
    assert vip["dagster/row_count"] == int(champions_sales) > 0
    assert vip["customers"] == m["segment_sizes"]["champions"]
    assert {c.name for c in vip["dagster/column_schema"].columns} >= {"invoice_no", "customer_net_spend"}


def test_recommender_modes_beat_every_baseline(ml_run):
    from ecommerce_platform.ml.contract import MIN_LIFT

    data_dir, _, result, _ = ml_run
    m = meta(result, "als_model")
    baselines = {"discovery": ("popularity", "recent_popularity", "item_knn"),
                 "next_basket": ("popularity", "recent_popularity", "item_knn", "repeat_most_bought")}
    for mode, names in baselines.items():
        for suffix in ("", "_last_invoice"):
            p = m[f"{mode}{suffix}_precision_at_10"]
            best = max(m[f"{mode}{suffix}_precision_at_10_{b}"] for b in names)
            assert p >= MIN_LIFT[mode.replace("_", "-")] * best and m[f"{mode}{suffix}_margin_lo"] > 0, (mode, suffix)
    # the popularity baseline of the time cut, counted here with pandas from user_item_interactions
    with platform_environment(data_dir):
        df = query("SELECT customer_id, stock_code, invoice_ts FROM user_item_interactions")
        n = query("SELECT count(DISTINCT customer_id) AS u, count(DISTINCT stock_code) AS i "
                  "FROM user_item_interactions").iloc[0]
    cut = df["invoice_ts"].max() - pd.Timedelta(days=30)
    train, test = df[df["invoice_ts"] <= cut], df[df["invoice_ts"] > cut]
    buyers = train.groupby("stock_code")["customer_id"].nunique()
    top = sorted(buyers.index, key=lambda s: (-buyers[s], s))[:10]
    known_users = set(train["customer_id"])
    held = test[test["stock_code"].isin(set(buyers.index)) & test["customer_id"].isin(known_users)]
    expected = np.mean([len(set(g["stock_code"]) & set(top)) / 10 for _, g in held.groupby("customer_id")])
    assert m["next_basket_precision_at_10_popularity"] == pytest.approx(expected, abs=1e-4)
    assert m["n_users"] == int(n["u"]) and m["n_items"] == int(n["i"])


def test_sales_forecast_beats_seasonal_naive_on_the_views(ml_run):
    from ecommerce_platform.ml.forecast import CURRENT_PREFIX

    data_dir, resources, result, _ = ml_run
    m = meta(result, "sales_forecast")
    assert m["status"] == "served" and m["horizon_weeks"] == 8
    # seasonal naive on the last 12 weeks of daily net revenue, computed here from the view
    with platform_environment(data_dir):
        y = query("SELECT sale_date, CAST(net_revenue AS DOUBLE) AS v FROM daily_sales").set_index("sale_date")["v"]
        countries = query("SELECT country, sum(net_revenue) AS n FROM daily_sales_by_country WHERE "
                          "country <> 'Unspecified' GROUP BY country ORDER BY n DESC LIMIT 4")["country"].tolist()
        table = query("SELECT * FROM sales_forecast")
    y.index = pd.to_datetime(y.index)
    end = y.index.max()
    days = pd.date_range(end - pd.Timedelta(days=83), end)
    actual = y.reindex(days, fill_value=0.0).to_numpy()
    naive = y.reindex(days - pd.Timedelta(days=7), fill_value=0.0).to_numpy()
    expected = np.abs(actual - naive).sum() / np.abs(actual).sum()
    assert m["wape_seasonal_naive"] == pytest.approx(expected, abs=1e-4)
    assert m["wape"] < m["wape_seasonal_naive"] and m["wape_difference_lo"] > 0
    assert 0 < m["wape_moving_average"] and 0.5 < m["interval_coverage"] <= 1 and m["mase"] > 0
    assert [r.data["series"] for r in m["series"].records] == ["all", *countries]
    assert m["dagster/row_count"] == len(table) == 5 * (56 + 8) and set(table["run_id"]) == {m["run_id"]}
    assert m["dagster/table_name"] == "warehouse.sales_forecast"
    plot = Path(m["plot"])
    assert plot.is_file() and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and CURRENT_PREFIX in str(plot)
    weeks = table[(table["series"] == "all") & (table["granularity"] == "week")].sort_values("horizon")
    assert pd.Timestamp(weeks["period_start"].iloc[0]) == end + pd.Timedelta(days=1)
    assert (weeks["lower"] <= weeks["forecast"]).all() and (weeks["forecast"] <= weeks["upper"]).all()
    start = pd.to_datetime(table["period_start"])
    christmas = table[(table["granularity"] == "day") & (start == pd.Timestamp("2011-12-25"))]
    assert len(christmas) == 5 and (christmas["forecast"] == 0).all() and (christmas["trading_days"] == 0).all()


def test_unchanged_inputs_reuse_everything(ml_run):
    data_dir, resources, first, instance = ml_run
    with platform_environment(data_dir):
        again = materialize(resources, instance)
    assert again.success
    for key in ("invoice_features", "customer_features", "user_item_interactions", *MODELS, "vip_transactions"):
        before, after = meta(first, key), meta(again, key)
        assert after.pop("reused_previous_output") is True and "reused_previous_output" not in before
        assert after == before, key
    assert all(c.passed for c in again.get_asset_check_evaluations())


def test_cli_recommend_similar_forecast_and_cold_start(ml_run):
    from ecommerce_platform.cli import main
    from ecommerce_platform.ml.contract import MIN_SHARED_BUYERS

    data_dir, _, result, _ = ml_run
    runner = CliRunner()
    with platform_environment(data_dir):
        bought = set(query("SELECT stock_code FROM user_item_interactions WHERE customer_id = '12347'")["stock_code"])
        known = runner.invoke(main, ["recommend", "12347", "-n", "5", "--json"])
        assert known.exit_code == 0, known.output
        out = json.loads(known.output)
        assert out["known_customer"] and out["mode"] == "discovery" and len(out["items"]) == 5
        assert all(i["description"] for i in out["items"]) and not bought & {i["stock_code"] for i in out["items"]}
        assert out["model_run_id"] == meta(result, "als_model")["run_id"]
        basket = json.loads(runner.invoke(main, ["recommend", "12347", "-n", "10", "--mode", "next-basket", "--json"]).output)
        assert any(i["reorder"] for i in basket["items"])  # re-orders are suggested in next-basket mode
        assert {i["stock_code"] for i in basket["items"] if i["reorder"]} <= bought
        text = runner.invoke(main, ["recommend", "12347", "-n", "3", "--mode", "next-basket"])
        assert text.exit_code == 0 and "Next basket" in text.output
        # cold start: the products with the most buyer-days in the last 30 days, counted here
        recent = query("SELECT stock_code, count(*) AS n FROM (SELECT DISTINCT customer_id, stock_code, "
                       "CAST(invoice_ts AS DATE) AS d FROM user_item_interactions WHERE invoice_ts > "
                       "(SELECT max(invoice_ts) FROM user_item_interactions) - INTERVAL 30 DAY) "
                       "GROUP BY stock_code ORDER BY n DESC, stock_code LIMIT 1")["stock_code"].iloc[0]
        cold = json.loads(runner.invoke(main, ["recommend", "NOT-A-CUSTOMER", "-n", "3", "--json"]).output)
        assert not cold["known_customer"] and "cold start" in cold["message"]
        assert cold["items"][0]["stock_code"] == recent
        sim = runner.invoke(main, ["similar", "85123A", "-n", "10", "--json"])
        assert sim.exit_code == 0, sim.output
        sim = json.loads(sim.output)
        assert "WHITE HANGING HEART" in sim["description"] and len(sim["items"]) == 10
        # every product shown shares at least MIN_SHARED_BUYERS buyers with 85123A, counted here
        shared = query("SELECT b.stock_code, count(DISTINCT a.customer_id) AS n FROM user_item_interactions AS a "
                       "JOIN user_item_interactions AS b ON a.customer_id = b.customer_id "
                       "WHERE a.stock_code = '85123A' GROUP BY b.stock_code").set_index("stock_code")["n"]
        for item in sim["items"]:
            assert item["shared_buyers"] == int(shared[item["stock_code"]]) >= MIN_SHARED_BUYERS
        bad = runner.invoke(main, ["similar", "NOPE-123"])
        assert bad.exit_code == 2 and "unknown stock code" in bad.output
        fc_out = json.loads(runner.invoke(main, ["forecast", "--country", "United Kingdom", "--json"]).output)
        assert fc_out["series"] == "United Kingdom" and len(fc_out["rows"]) == 8
        assert fc_out["run_id"] == meta(result, "sales_forecast")["run_id"]


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
