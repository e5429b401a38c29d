"""The gates that decide what is served, each shown FAILING on crafted input, and what a failing run
leaves behind: nothing new served (the served files are byte for byte the previous ones, the CLI still
answers with the previous model), the blocking check fails (ERROR), downstream does not run.

- classifier: a run whose label depends only on the baseline's own feature cannot beat the baseline by
  the margin (re-introducing "compare against a baseline of 0" would serve it: the test fails);
- als_model: interactions with no structure (everyone buys from the same popularity curve) give a lift
  under 1.5 (re-introducing "accept any lift >= 0" would serve it);
- segments: a customer_features table with repeated customers cannot be covered exactly once.
Each run materializes the model and its check with Dagster on a small lake of crafted tables."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecommerce_platform.ml import classifier as clf
from ecommerce_platform.ml import recommender as rec
from ecommerce_platform.ml import runs
from ecommerce_platform.ml import segments as seg
from ecommerce_platform.ml.features import CUSTOMER_COLUMNS, INTERACTION_COLUMNS, INVOICE_COLUMNS
from ecommerce_platform.recompute import FORCE_TAG
from ecommerce_platform_tests.conftest import platform_environment
from ecommerce_platform_tests.ml.conftest import (
    checks,
    lake_files,
    meta,
    publish_table,
    publish_transactions,
    query,
)

FORCE = {FORCE_TAG: "true"}


# ------------------------------------------------------------------------------------ crafted inputs
def crafted_invoices(signal: str, months: int = 8, per_month: int = 500, seed: int = 0) -> pd.DataFrame:
    """invoice_features rows. ``signal="basket"``: the total follows the basket size (a feature the
    baseline does not see) with noise: a model beats the baseline. ``signal="baseline_only"``: the total
    follows only the customer's prior average order (the baseline's feature) with noise: no model can
    beat the baseline by the margin."""
    rng = np.random.RandomState(seed)
    n = months * per_month
    month = np.repeat([201101 + i for i in range(months)], per_month)
    ts = pd.to_datetime([f"{m // 100}-{m % 100:02d}-10" for m in month]) + pd.to_timedelta(rng.randint(0, 400_000, n), "s")
    df = pd.DataFrame({
        "invoice_no": [f"{600000 + i}" for i in range(n)], "customer_id": [f"c{i % 700}" for i in range(n)],
        "invoice_ts": ts.astype("datetime64[us]"), "invoice_month": month.astype(np.int32),
        "country": rng.choice(["United Kingdom", "France", "EIRE"], n), "hour_of_day": rng.randint(7, 20, n).astype(np.int32),
        "day_of_week": rng.randint(1, 8, n).astype(np.int32), "basket_lines": rng.randint(1, 60, n).astype(np.int64),
    })
    for c in clf.HISTORY_COLUMNS:
        df[c] = rng.gamma(2.0, 300.0, n)
    df["prior_orders"] = rng.randint(0, 30, n).astype(np.int64)
    df["prior_return_invoices"] = rng.randint(0, 3, n).astype(np.int64)
    if signal == "basket":
        df["invoice_total"] = 40.0 * df["basket_lines"] * rng.lognormal(0, 0.45, n)
    else:
        df["invoice_total"] = 1.7 * df["prior_avg_order"] * rng.lognormal(0, 0.6, n)
    return df[[c for c, _, _ in INVOICE_COLUMNS]]


def crafted_interactions(structured: bool, users: int = 300, items: int = 60, seed: int = 0) -> pd.DataFrame:
    """user_item_interactions rows. Structured: three groups of customers buying from three blocks of
    products. Unstructured: every customer buys from the same popularity curve, independently of who
    they are (popularity is then the best anyone can do)."""
    rng = np.random.RandomState(seed)
    weights = 1.0 / np.arange(1, items + 1) ** 0.8
    weights /= weights.sum()
    rows = []
    for u in range(users):
        n_inv = int(rng.randint(3, 7))
        for k in range(n_inv):
            if structured:
                block = u % 3 * (items // 3)
                picks = rng.choice(np.arange(block, block + items // 3), size=4, replace=False)
            else:
                picks = rng.choice(items, size=4, replace=False, p=weights)
            for i in picks:
                rows.append({"customer_id": f"u{u:03d}", "stock_code": f"P{i:03d}", "invoice_no": f"{u}-{k}",
                             "invoice_ts": pd.Timestamp("2011-01-01") + pd.Timedelta(days=30 * k + u % 20),
                             "quantity": int(rng.randint(1, 12)), "invoice_rank_desc": n_inv - k,
                             "customer_invoices": n_inv})
    df = pd.DataFrame(rows)
    df["invoice_ts"] = df["invoice_ts"].astype("datetime64[us]")
    return df[[c for c, _, _ in INTERACTION_COLUMNS]]


def crafted_customers(per: int = 60, seed: int = 0) -> pd.DataFrame:
    """customer_features rows: four RFM groups of ``per`` customers, and two without net spend."""
    rng = np.random.RandomState(seed)
    rows = []
    for g, (r, f, m) in enumerate([(5, 25, 8000), (20, 6, 1500), (150, 3, 900), (250, 1, 150)]):
        for i in range(per):
            freq = max(1, int(rng.normal(f, f * 0.1)))
            mon = float(m * rng.lognormal(0, 0.15))
            rows.append({"customer_id": f"{13000 + g * 1000 + i}", "frequency": freq, "monetary": mon,
                         "recency_days": float(r * rng.lognormal(0, 0.15)), "has_net_spend": True})
    rows += [{"customer_id": "19998", "frequency": 1, "monetary": -50.0, "recency_days": 30.0, "has_net_spend": False},
             {"customer_id": "19999", "frequency": 0, "monetary": -20.0, "recency_days": np.nan, "has_net_spend": False}]
    df = pd.DataFrame(rows)
    df["country"] = "United Kingdom"
    df["gross_spend"] = df["monetary"].clip(lower=0) + 10.0
    df["returns_value"] = df["gross_spend"] - df["monetary"]
    df["return_invoices"] = (df["returns_value"] > 0).astype(np.int64)
    df["avg_basket"] = np.where(df["frequency"] > 0, df["monetary"] / df["frequency"].clip(lower=1), np.nan)
    df["avg_lines"] = 3.0
    df["tenure_days"] = df["recency_days"] + 30
    df["last_purchase_ts"] = (pd.Timestamp("2011-12-10") - pd.to_timedelta(df["recency_days"].fillna(0), "D")).astype("datetime64[us]")
    df["first_purchase_ts"] = df["last_purchase_ts"] - pd.Timedelta(days=30)
    df["frequency"] = df["frequency"].astype(np.int64)
    return df[[c for c, _, _ in CUSTOMER_COLUMNS]]


# ------------------------------------------------------------------------------------ the gates themselves
def test_classifier_gate_compares_with_the_baseline_not_with_zero():
    assert clf.gate({"roc_auc": 0.80}, {"roc_auc": 0.70}) == []
    below = clf.gate({"roc_auc": 0.74}, {"roc_auc": 0.70})  # beats the baseline, not by the margin
    assert len(below) == 1 and "baseline 0.7000 + margin 0.05" in below[0]
    assert clf.gate({"roc_auc": 0.60}, {"roc_auc": 0.72})  # a model under its baseline
    assert clf.gate({"roc_auc": 0.995}, {"roc_auc": 0.70})  # a leak, not a model
    assert clf.gate({"roc_auc": float("nan")}, {"roc_auc": 0.70})


def test_classifier_cannot_beat_a_baseline_that_holds_all_the_signal():
    run = clf.train_and_evaluate(crafted_invoices("baseline_only"), clf.ClassifierSettings(max_iter=60))
    auc, base = run.metrics["roc_auc"], run.baseline_metrics["roc_auc"]
    assert base > 0.7  # the baseline is informative ...
    assert auc < base + clf.MIN_AUC_MARGIN  # ... and the model does not beat it by the margin
    assert auc > clf.MIN_AUC_MARGIN  # so a gate against a baseline of 0 would have served it
    assert not run.beats_baseline and run.gate_failures


def test_als_gate_needs_the_lift_not_just_a_positive_one():
    p = f"precision_at_{rec.K}"
    assert rec.gate({p: 0.06}, {p: 0.03}) == []
    assert rec.gate({p: 0.04}, {p: 0.03})  # lift 1.33: better than popularity, not enough
    assert rec.gate({p: 0.02}, {p: 0.03})  # worse than popularity: lift 0.67 >= 0 but not served
    assert rec.gate({p: 0.0}, {p: 0.0})  # nothing found by either: not a model
    assert rec.lift({p: 0.04}, {p: 0.0}) is None


def test_als_on_interactions_without_structure_does_not_beat_popularity():
    grid = (rec.ALSParams(factors=16, iterations=10),)
    run = rec.train_and_evaluate(crafted_interactions(structured=False), rec.ALSSettings(grid=grid))
    assert run.popularity_metrics[f"precision_at_{rec.K}"] > 0
    assert 0 <= run.lift < rec.MIN_LIFT  # a lift >= 0: "accept any lift >= 0" would serve it
    assert not run.beats_popularity


def test_segment_coverage_problems_on_crafted_counts():
    good = dict(customers=10, distinct_customers=10, labelled=10, distinct_labelled=10, unlabelled=0, unknown=0,
                unnamed=0, clustered_without_spend=0, misfiled=0)
    assert seg.coverage_problems(good) == []
    for change, words in (({"labelled": 9, "distinct_labelled": 9, "unlabelled": 1}, "have no segment"),
                          ({"labelled": 11}, "more than once"),
                          ({"customers": 11}, "repeated customer rows"),
                          ({"unknown": 2}, "not in customer_features"),
                          ({"unnamed": 1}, "no segment name"),
                          ({"clustered_without_spend": 1}, "no net spend"),
                          ({"misfiled": 3}, "net spend flag")):
        problems = seg.coverage_problems({**good, **change})
        assert problems and any(words in p for p in problems), (change, problems)


# ------------------------------------------------------------------------------------ failing runs serve nothing new
@pytest.fixture
def platform(tmp_path):
    """A local deployment in a temporary folder with a small clean table `transactions`."""
    data_dir = tmp_path / "data"
    with platform_environment(data_dir):
        from ecommerce_platform.resources import build_resources

        resources = build_resources()
        publish_transactions(resources["warehouse"])
        with dg.DagsterInstance.ephemeral() as instance:
            yield data_dir, resources, instance


def test_classifier_run_below_its_baseline_serves_nothing_new(platform):
    from ecommerce_platform.cli import main
    from ecommerce_platform.ml.assets import classifier, classifier_beats_baseline

    data_dir, resources, instance = platform
    wh, lake = resources["warehouse"], resources["warehouse"].lake
    publish_table(wh, "invoice_features", "features/invoice_features", crafted_invoices("basket"), INVOICE_COLUMNS)
    good = dg.materialize([classifier, classifier_beats_baseline], resources=resources, instance=instance)
    assert good.success and meta(good, "classifier")["status"] == runs.SERVED
    assert checks(good)["classifier_beats_baseline"].passed
    served = lake_files(lake, clf.CURRENT_PREFIX)
    served_id = clf.served_run_id(lake)
    request = json.dumps({"country": "France", "invoice_ts": "2011-12-01T10:00:00", "basket_lines": 3})
    before = CliRunner().invoke(main, ["predict-high-value", "-"], input=request)
    assert before.exit_code == 0, before.output
    assert json.loads(before.output)["model_run_id"] == served_id

    publish_table(wh, "invoice_features", "features/invoice_features", crafted_invoices("baseline_only"), INVOICE_COLUMNS)
    bad = dg.materialize([classifier, classifier_beats_baseline], resources=resources, instance=instance,
                         tags=FORCE, raise_on_error=False)
    m = meta(bad, "classifier")
    assert m["status"] == runs.REJECTED and m["promoted"] is False
    assert m["test_roc_auc"] < m["baseline_roc_auc"] + clf.MIN_AUC_MARGIN
    check = checks(bad)["classifier_beats_baseline"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not bad.success
    assert lake_files(lake, clf.CURRENT_PREFIX) == served  # byte for byte the previous model
    assert clf.read_summary(lake, clf.CANDIDATE_PREFIX)["run_id"] == m["run_id"] != served_id
    with platform_environment(data_dir):
        after = CliRunner().invoke(main, ["predict-high-value", "-"], input=request)
    assert after.exit_code == 0 and json.loads(after.output)["model_run_id"] == served_id


def test_als_run_without_lift_serves_nothing_new(platform):
    from ecommerce_platform.cli import main
    from ecommerce_platform.ml.assets import als_beats_popularity, als_model

    data_dir, resources, instance = platform
    wh, lake = resources["warehouse"], resources["warehouse"].lake
    publish_table(wh, "user_item_interactions", "features/user_item_interactions",
                  crafted_interactions(structured=True), INTERACTION_COLUMNS)
    good = dg.materialize([als_model, als_beats_popularity], resources=resources, instance=instance)
    assert good.success and meta(good, "als_model")["status"] == runs.SERVED
    served, served_id = lake_files(lake, rec.CURRENT_PREFIX), rec.served_run_id(lake)
    with platform_environment(data_dir):
        before = CliRunner().invoke(main, ["recommend", "u001", "-n", "5", "--json"])
    assert before.exit_code == 0 and json.loads(before.output)["model_run_id"] == served_id

    publish_table(wh, "user_item_interactions", "features/user_item_interactions",
                  crafted_interactions(structured=False), INTERACTION_COLUMNS)
    bad = dg.materialize([als_model, als_beats_popularity], resources=resources, instance=instance,
                         tags=FORCE, raise_on_error=False)
    m = meta(bad, "als_model")
    assert m["status"] == runs.REJECTED and m["precision_lift"] < rec.MIN_LIFT
    check = checks(bad)["als_beats_popularity"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not bad.success
    # the check counted the popularity baseline again from the table: the same figure as the run's
    cm = {k: v.value for k, v in check.metadata.items()}
    assert cm["popularity_precision_at_10"] == cm["reported_popularity_precision_at_10"] > 0
    assert lake_files(lake, rec.CURRENT_PREFIX) == served
    with platform_environment(data_dir):
        after = CliRunner().invoke(main, ["recommend", "u001", "-n", "5", "--json"])
    assert after.exit_code == 0 and json.loads(after.output) == json.loads(before.output)


def test_segments_that_do_not_cover_the_customers_are_not_published(platform):
    from ecommerce_platform.ml.assets import segments, segments_cover_customers, vip_transactions

    data_dir, resources, instance = platform
    wh, lake = resources["warehouse"], resources["warehouse"].lake
    customers = crafted_customers()
    publish_table(wh, "customer_features", "features/customer_features", customers, CUSTOMER_COLUMNS)
    good = dg.materialize([segments, segments_cover_customers, vip_transactions], resources=resources, instance=instance)
    assert good.success and meta(good, "segments")["status"] == runs.SERVED
    assert checks(good)["segments_cover_customers"].passed
    table = query("SELECT customer_id, segment FROM customer_segments")
    assert sorted(table["customer_id"]) == sorted(customers["customer_id"])  # every customer, once
    served = lake_files(lake, seg.SEGMENTS_PREFIX)

    repeated = pd.concat([customers, customers.head(5)], ignore_index=True)
    publish_table(wh, "customer_features", "features/customer_features", repeated, CUSTOMER_COLUMNS)
    bad = dg.materialize([segments, segments_cover_customers, vip_transactions], resources=resources,
                         instance=instance, tags=FORCE, raise_on_error=False)
    m = meta(bad, "segments")
    assert m["status"] == runs.REJECTED and any("repeated customer rows" in p for p in m["problems"])
    check = checks(bad)["segments_cover_customers"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not bad.success
    assert not bad.asset_materializations_for_node("vip_transactions")  # blocked downstream
    assert lake_files(lake, seg.SEGMENTS_PREFIX) == served
    assert query("SELECT count(*) AS n FROM customer_segments").iloc[0]["n"] == len(customers)
