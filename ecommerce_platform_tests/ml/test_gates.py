"""The gates that decide what is served, each shown FAILING on crafted input, and what a failing run
leaves behind: nothing new served (the served files are byte for byte the previous ones, the CLI still
answers with the previous model), the blocking check fails (ERROR), downstream does not run. A run whose
test set is too small to decide is inconclusive: nothing new served, the check WARNS, the run succeeds.

- classifier: a run whose label depends only on the simple baseline's own feature cannot beat the
  strongest baseline (re-introducing "compare against a baseline of 0" would serve it: the test fails);
- als_model: interactions with no structure (everyone buys from the same popularity curve) give a lift
  under the required one over the strongest baseline (re-introducing "accept any lift >= 0" would serve it);
- sales_forecast: a series where each weekday follows its own random walk: last week is the best forecast
  there is, the model cannot beat seasonal naive;
- segments: a customer_features table with repeated customers cannot be covered exactly once.
Each run materializes the model and its check with Dagster on a small lake of crafted tables."""

import json

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from ecommerce_platform.ml import classifier as clf
from ecommerce_platform.ml import forecast as fc
from ecommerce_platform.ml import recommender as rec
from ecommerce_platform.ml import runs
from ecommerce_platform.ml import segments as seg
from ecommerce_platform.ml.contract import CONFIDENCE, DISCOVERY, MIN_AUC_MARGIN, MIN_LIFT, NEXT_BASKET
from ecommerce_platform.ml.features import CUSTOMER_COLUMNS, INTERACTION_COLUMNS, INVOICE_COLUMNS
from ecommerce_platform.ml.metrics import decide
from ecommerce_platform.recompute import FORCE_TAG
from ecommerce_platform_tests.conftest import REAL_SOURCE, platform_environment
from ecommerce_platform_tests.ml.conftest import (
    checks,
    lake_files,
    meta,
    publish_sales,
    publish_table,
    publish_transactions,
    query,
    random_walk_sales,
    run_sql,
    steady_sales,
    with_flags,
)

FORCE = {FORCE_TAG: "true"}


# ------------------------------------------------------------------------------------ crafted inputs
def crafted_invoices(signal: str, months: int = 8, per_month: int = 500, seed: int = 0) -> pd.DataFrame:
    """invoice_features rows. ``signal="interaction"``: the total is high when two history features are
    both high (an AND no additive logistic regression represents): the trees beat every baseline.
    ``signal="baseline_only"``: the total follows only the customer's prior average order (the one-feature
    baseline's feature) with noise: no model can beat that baseline by the margin."""
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
    if signal == "interaction":
        both = (df["tenure_days"] > 600) & (df["days_since_last_order"] < 600)
        df["invoice_total"] = np.where(both, 1400.0, 500.0) * rng.lognormal(0, 0.45, n)
    else:
        df["invoice_total"] = 1.7 * df["prior_avg_order"] * rng.lognormal(0, 0.6, n)
    return df[[c for c, _, _ in INVOICE_COLUMNS]]


def crafted_interactions(users: int = 400, items: int = 60, seed: int = 0) -> pd.DataFrame:
    """user_item_interactions rows with no structure: every customer buys from the same popularity curve,
    independently of who they are and of when (popularity is then the best anyone can do)."""
    rng = np.random.RandomState(seed)
    weights = 1.0 / np.arange(1, items + 1) ** 0.8
    weights /= weights.sum()
    rows = []
    for u in range(users):
        n_inv = int(rng.randint(3, 7))
        for k in range(n_inv):
            ts = pd.Timestamp("2011-01-01") + pd.Timedelta(days=int(rng.randint(0, 240)), minutes=int(rng.randint(0, 600)))
            for i in rng.choice(items, size=4, replace=False, p=weights):
                rows.append({"customer_id": f"u{u:03d}", "stock_code": f"P{i:03d}", "invoice_no": f"{u}-{k}",
                             "invoice_ts": ts, "quantity": int(rng.randint(1, 12))})
    return ranked(pd.DataFrame(rows))


def ranked(df: pd.DataFrame) -> pd.DataFrame:
    """invoice_rank_desc and customer_invoices from the rows' invoices (as the feature SQL does)."""
    inv = df.groupby(["customer_id", "invoice_no"], as_index=False)["invoice_ts"].min()
    inv = inv.sort_values(["customer_id", "invoice_ts", "invoice_no"])
    inv["invoice_rank_desc"] = inv.groupby("customer_id").cumcount(ascending=False) + 1
    inv["customer_invoices"] = inv.groupby("customer_id")["invoice_no"].transform("size")
    df = df.drop(columns=[c for c in ("invoice_rank_desc", "customer_invoices") if c in df]).merge(
        inv[["customer_id", "invoice_no", "invoice_rank_desc", "customer_invoices"]], on=["customer_id", "invoice_no"])
    df["invoice_ts"] = df["invoice_ts"].astype("datetime64[us]")
    return df[[c for c, _, _ in INTERACTION_COLUMNS]]


@pytest.fixture(scope="module")
def reference_interactions() -> pd.DataFrame:
    """user_item_interactions of the reference data set, computed by the layer's SQL over the file's
    lines with the sale flags of conftest.with_flags (real purchase structure, no lake needed)."""
    raw = pd.read_parquet(REAL_SOURCE)
    tx = pd.DataFrame({
        "invoice_no": raw["InvoiceNo"].astype(str), "stock_code": raw["StockCode"].astype(str).str.upper(),
        "description": raw["Description"], "quantity": raw["Quantity"].astype(np.int64),
        "invoice_ts": pd.to_datetime(raw["InvoiceDate"]), "unit_price": raw["UnitPrice"].astype(float),
        "customer_id": raw["CustomerID"].map(lambda v: None if pd.isna(v) else str(int(v))),
        "country": raw["Country"]})
    from ecommerce_platform.ml.features import USER_ITEM_INTERACTIONS

    return run_sql(with_flags(tx), USER_ITEM_INTERACTIONS.sql())


def crafted_customers(per: int = 60, seed: int = 0) -> pd.DataFrame:
    """customer_features rows: three groups of repeat buyers, one of one-time buyers, two without net spend."""
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


# ------------------------------------------------------------------------------------ the decision rule
def test_decide_needs_the_whole_interval_on_one_side():
    assert decide(0.001, 0.02) == "pass"
    assert decide(-0.02, -0.001) == "fail"
    assert decide(-0.01, 0.01) == "undecided"  # too little data to tell: warn, keep the previous model
    assert decide(float("nan"), 0.1) == "undecided"


# ------------------------------------------------------------------------------------ the gates themselves
def _scores(n: int, seed: int):
    rng = np.random.RandomState(seed)
    y = (rng.rand(n) < 0.2).astype(int)
    base = y * 1.0 + rng.normal(0, 1.0, n)  # an informative baseline (ROC-AUC ~0.76)
    return y, base, rng


def test_classifier_gate_compares_with_the_strongest_baseline_not_with_zero():
    y, base, rng = _scores(4000, 0)
    weak = y * 0.3 + rng.normal(0, 1.0, len(y))
    better = y * 2.0 + rng.normal(0, 1.0, len(y))
    verdict, reasons, figures = clf.gate(y, better, {"weak": weak, "strong": base})
    assert verdict == "pass" and not reasons and figures["strongest_baseline"] == "strong"
    # the baseline itself, relabelled as a model: a tie is below the margin, and the interval says so
    verdict, reasons, figures = clf.gate(y, base + 1e-9 * rng.rand(len(y)), {"weak": weak, "strong": base})
    assert verdict == "fail" and figures["auc_difference_hi"] < 0
    assert f"margin {MIN_AUC_MARGIN}" in reasons[0]
    # better than the weak baseline, not than the strong one: compared with the strongest, it fails
    mid = y * 0.7 + rng.normal(0, 1.0, len(y))
    assert clf.gate(y, mid, {"weak": weak})[0] == "pass"
    assert clf.gate(y, mid, {"weak": weak, "strong": base})[0] == "fail"
    # a leak, not a model
    verdict, reasons, _ = clf.gate(y, y + 1e-3 * rng.rand(len(y)), {"strong": base})
    assert verdict == "fail" and any("leak" in r for r in reasons)
    # too few test invoices to tell a small gain: undecided (warn, keep the served model)
    ys, bs, rng = _scores(100, 0)
    slightly = bs + 0.05 * ys + rng.normal(0, 0.3, len(ys))
    verdict, _, figures = clf.gate(ys, slightly, {"strong": bs})
    assert verdict == "undecided" and figures["auc_difference_lo"] < 0 < figures["auc_difference_hi"]


def test_delong_interval_agrees_with_a_bootstrap():
    from sklearn.metrics import roc_auc_score

    from ecommerce_platform.ml.metrics import delong_auc_difference

    y, base, rng = _scores(1500, 2)
    model = y * 1.3 + rng.normal(0, 1.0, len(y))
    d, lo, hi = delong_auc_difference(y, model, base, 0.9)
    assert d == pytest.approx(roc_auc_score(y, model) - roc_auc_score(y, base))
    diffs = []
    for _ in range(300):
        i = rng.randint(0, len(y), len(y))
        diffs.append(roc_auc_score(y[i], model[i]) - roc_auc_score(y[i], base[i]))
    b_lo, b_hi = np.quantile(diffs, [0.05, 0.95])
    assert abs(lo - b_lo) < 0.01 and abs(hi - b_hi) < 0.01


def test_classifier_cannot_beat_a_baseline_that_holds_all_the_signal():
    run = clf.train_and_evaluate(crafted_invoices("baseline_only"), clf.ClassifierSettings(max_iter=60))
    auc = run.metrics["roc_auc"]
    strongest = run.baseline_metrics[run.strongest_baseline]["roc_auc"]
    assert strongest > 0.7  # the baseline is informative ...
    assert run.gate_figures["auc_difference_hi"] < 0  # ... and the candidate confidently does not beat it
    assert auc > 0.5 + MIN_AUC_MARGIN  # so a gate against a baseline of 0 (or of chance) would have served it
    assert run.verdict == "fail" and not run.beats_baseline and run.gate_failures


def test_classifier_serves_the_trees_only_when_they_beat_the_full_logistic_regression():
    run = clf.train_and_evaluate(crafted_invoices("interaction"), clf.ClassifierSettings(max_iter=60))
    assert run.model.kind == clf.GBM and run.verdict == "pass"
    assert run.metrics["roc_auc"] > run.baseline_metrics[clf.FULL_LOGREG]["roc_auc"] + MIN_AUC_MARGIN
    # on the baseline-only data the trees do not beat it: the simpler model is the candidate
    flat = clf.train_and_evaluate(crafted_invoices("baseline_only"), clf.ClassifierSettings(max_iter=60))
    assert flat.model.kind == clf.FULL_LOGREG and flat.selection["verdict"] != "pass"


def test_als_gate_needs_the_lift_over_the_strongest_baseline_not_just_a_positive_one():
    rng = np.random.RandomState(0)
    n = 3000
    base = (rng.rand(n, 10) < 0.05).sum(axis=1) / 10  # a baseline at precision ~0.05

    def model_at(p: float) -> np.ndarray:
        return (rng.rand(n, 10) < p).sum(axis=1) / 10

    assert rec.gate_one(model_at(0.08), base, MIN_LIFT[DISCOVERY])[0] == "pass"  # lift 1.6
    verdict, d, lo, hi = rec.gate_one(model_at(0.04), base, MIN_LIFT[DISCOVERY])  # lift 0.8 >= 0, below 1.2
    assert verdict == "fail" and hi < 0
    assert rec.gate_one(np.zeros(n), np.zeros(n), 1.0)[0] == "fail"  # nothing found by either: not a model
    small = rec.gate_one(model_at(0.062)[:60], base[:60], MIN_LIFT[DISCOVERY])  # too few customers to tell
    assert small[0] == "undecided" and small[2] < 0 < small[3]
    results = {"time_cut": {DISCOVERY: {"verdict": "pass"}, NEXT_BASKET: {"verdict": "undecided", "precision": 0.2,
                                                                          "strongest": "repeat", "baseline_precision": 0.2,
                                                                          "lo": -0.01, "hi": 0.01}}}
    assert rec.gate(results)[0] == "undecided"
    results["time_cut"][DISCOVERY] = {"verdict": "fail", "precision": 0.01, "strongest": "item_knn",
                                      "baseline_precision": 0.05, "lo": -0.05, "hi": -0.03}
    assert rec.gate(results)[0] == "fail"


def test_recommender_on_interactions_without_structure_does_not_beat_its_baselines():
    grid = (rec.ALSParams(factors=16, iterations=10),)
    run = rec.train_and_evaluate(crafted_interactions(), rec.ALSSettings(grid=grid))
    assert run.verdict == "fail" and not run.served
    tc = run.results[rec.TIME_CUT]
    for mode in (DISCOVERY, NEXT_BASKET):
        r = tc[mode]
        # the strongest baseline, counted here from the test split independently of the module
        assert r["baseline_precision"] == max(m["precision_at_10"] for k, m in r["metrics"].items()
                                              if k in rec.BASELINES[mode])
        assert 0 <= r["lift"] < MIN_LIFT[mode]  # a lift >= 0: "accept any lift >= 0" would serve it
    assert any(r["verdict"] == "fail" for modes in run.results.values() for r in modes.values())


def test_popularity_baseline_precision_counted_independently():
    """The popularity baseline of the time cut, counted here with plain pandas, equals the module's."""
    df = crafted_interactions(users=300)
    run = rec.train_and_evaluate(df, rec.ALSSettings(grid=(rec.ALSParams(factors=8, iterations=5),)))
    train, test = rec.time_cut(df, 30)
    buyers = train.groupby("stock_code")["customer_id"].nunique()
    order = sorted(buyers.index, key=lambda s: (-buyers[s], s))
    known = set(buyers.index)
    precisions = []
    for cid, rows in test[test["stock_code"].isin(known)].groupby("customer_id"):
        if cid not in set(train["customer_id"]):
            continue
        relevant = set(rows["stock_code"])
        top = order[:10]
        precisions.append(len(relevant & set(top)) / 10)
    expected = float(np.mean(precisions))
    assert run.results[rec.TIME_CUT][NEXT_BASKET]["metrics"][rec.POPULARITY]["precision_at_10"] == pytest.approx(expected)


def test_forecast_gate_on_a_random_walk_fails_against_seasonal_naive():
    s = fc.ForecastSettings(top_countries=0)
    frame = random_walk_sales().assign(series="all")
    run = fc.train_and_evaluate(frame, s)
    # seasonal naive WAPE, computed here with plain pandas from the series
    y = frame.set_index("sale_date")["net_revenue"]
    days = sorted(y.index)
    test_days = pd.date_range(pd.Timestamp(days[-1]) - pd.Timedelta(days=7 * s.backtest_weeks - 1), days[-1]).date
    actual = np.array([y.get(d, 0.0) for d in test_days])
    naive = np.array([y.get(d - pd.Timedelta(days=7).to_pytimedelta(), 0.0) for d in test_days])
    expected = np.abs(actual - naive).sum() / np.abs(actual).sum()
    assert run.total.wapes["seasonal_naive"] == pytest.approx(expected)
    assert run.total.wapes["model"] > run.total.wapes["seasonal_naive"]
    assert run.verdict == "fail" and run.figures["wape_difference_hi"] < 0


def test_forecast_gate_fails_when_a_country_is_worse_than_its_seasonal_naive():
    total = fc.Backtest(np.repeat(np.arange(4), 7), np.arange(28), np.full(28, 100.0), np.full(28, 101.0),
                        np.full(28, 130.0), np.full(28, 120.0))
    worse = fc.Backtest(np.repeat(np.arange(4), 7), np.arange(28), np.full(28, 10.0), np.full(28, 14.0),
                        np.full(28, 11.0), np.full(28, 12.0))
    assert fc.gate(total, {})[0] == "pass"
    verdict, reasons, _ = fc.gate(total, {"France": worse})
    assert verdict == "fail" and "France" in reasons[0]


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
    publish_table(wh, "invoice_features", "features/invoice_features", crafted_invoices("interaction"), INVOICE_COLUMNS)
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
    assert m["test_roc_auc"] < m["baseline_roc_auc"] + MIN_AUC_MARGIN and m["auc_margin_hi"] < 0
    check = checks(bad)["classifier_beats_baseline"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not bad.success
    assert lake_files(lake, clf.CURRENT_PREFIX) == served  # byte for byte the previous model
    assert clf.read_summary(lake, clf.CANDIDATE_PREFIX)["run_id"] == m["run_id"] != served_id
    with platform_environment(data_dir):
        after = CliRunner().invoke(main, ["predict-high-value", "-"], input=request)
    assert after.exit_code == 0 and json.loads(after.output)["model_run_id"] == served_id


def test_a_passing_verdict_is_reused_only_while_nothing_it_judged_changed(platform):
    """The classifier's recount runs once per change: asked again with nothing changed, the check reports
    its previous pass (saying so); when the table it judges changes, even behind Dagster's back, it counts
    again, and fails when the served model no longer beats the baseline there; a forced run counts again."""
    from ecommerce_platform.ml.assets import classifier, classifier_beats_baseline
    from ecommerce_platform.recompute import REUSED

    _, resources, instance = platform
    wh = resources["warehouse"]
    publish_table(wh, "invoice_features", "features/invoice_features", crafted_invoices("interaction"), INVOICE_COLUMNS)
    good = dg.materialize([classifier, classifier_beats_baseline], resources=resources, instance=instance)
    first = checks(good)["classifier_beats_baseline"]
    assert first.passed and REUSED not in first.metadata

    def check_alone(**kw) -> dg.AssetCheckEvaluation:  # noqa: ANN003
        result = dg.materialize([classifier, classifier_beats_baseline], resources=resources, instance=instance,
                                selection=dg.AssetSelection.checks(classifier_beats_baseline), raise_on_error=False, **kw)
        return checks(result)["classifier_beats_baseline"]

    again = check_alone()
    assert again.passed and again.metadata[REUSED].value is True
    assert again.metadata["recounted_roc_auc"] == first.metadata["recounted_roc_auc"]
    forced = check_alone(tags=FORCE)
    assert forced.passed and REUSED not in forced.metadata

    # the features change outside Dagster: the served model is judged again, on what is there now
    publish_table(wh, "invoice_features", "features/invoice_features", crafted_invoices("baseline_only", seed=1),
                  INVOICE_COLUMNS)
    changed = check_alone()
    assert REUSED not in changed.metadata
    assert not changed.passed and changed.severity == dg.AssetCheckSeverity.ERROR


@pytest.mark.graph  # the good run trains on the reference data set's purchases (~1 min)
def test_recommender_run_without_lift_serves_nothing_new(platform, reference_interactions):
    from ecommerce_platform.cli import main
    from ecommerce_platform.ml.assets import als_beats_popularity, als_model

    data_dir, resources, instance = platform
    wh, lake = resources["warehouse"], resources["warehouse"].lake
    # the good run: the reference data set's purchases (real structure)
    publish_table(wh, "user_item_interactions", "features/user_item_interactions", reference_interactions,
                  INTERACTION_COLUMNS)
    good = dg.materialize([als_model, als_beats_popularity], resources=resources, instance=instance)
    assert good.success and meta(good, "als_model")["status"] == runs.SERVED
    served, served_id = lake_files(lake, rec.CURRENT_PREFIX), rec.served_run_id(lake)
    customer = str(reference_interactions["customer_id"].iloc[0])
    with platform_environment(data_dir):
        before = {mode: CliRunner().invoke(main, ["recommend", customer, "-n", "5", "--mode", mode, "--json"])
                  for mode in ("discovery", "next-basket")}
    assert all(r.exit_code == 0 and json.loads(r.output)["model_run_id"] == served_id for r in before.values())

    publish_table(wh, "user_item_interactions", "features/user_item_interactions", crafted_interactions(),
                  INTERACTION_COLUMNS)
    bad = dg.materialize([als_model, als_beats_popularity], resources=resources, instance=instance,
                         tags=FORCE, raise_on_error=False)
    m = meta(bad, "als_model")
    assert m["status"] == runs.REJECTED and m["promoted"] is False
    assert m["discovery_lift"] < MIN_LIFT[DISCOVERY] or m["next_basket_lift"] < MIN_LIFT[NEXT_BASKET]
    check = checks(bad)["als_beats_popularity"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not bad.success
    # the check counted the baselines again from the table: the same figures as the run's
    cm = {k: v.value for k, v in check.metadata.items()}
    for key in ("discovery_precision_at_10_popularity", "next_basket_precision_at_10_repeat_most_bought",
                "discovery_last_invoice_precision_at_10_item_knn"):
        assert cm[key] == pytest.approx(cm[f"reported_{key}"], abs=1e-4), key
    assert lake_files(lake, rec.CURRENT_PREFIX) == served
    with platform_environment(data_dir):
        for mode, res in before.items():
            after = CliRunner().invoke(main, ["recommend", customer, "-n", "5", "--mode", mode, "--json"])
            assert after.exit_code == 0 and json.loads(after.output) == json.loads(res.output)


def _inconclusive_series(settings: fc.ForecastSettings) -> pd.DataFrame:
    """A series whose backtest weeks alternate between the model's forecast (the model is exact) and last
    week's values (seasonal naive is exact): the difference changes sign week to week, and a few weeks
    cannot decide it. Built week by week with the module's own forecast, made from the history only."""
    base = steady_sales(weeks=settings.min_weeks + settings.backtest_weeks, seed=3)
    days = base["sale_date"].tolist()
    first_test = len(days) - 6 * settings.backtest_weeks  # 6 trading days a week
    frame = base.iloc[:first_test].assign(series="all")
    # the configuration the run will choose: validation weeks only, all before the test weeks
    probe = pd.concat([frame, base.iloc[first_test:].assign(series="all")], ignore_index=True)
    series = fc.build_series(probe, 0)[0]
    n = len(series.days)
    val = fc.origins(n, settings.backtest_weeks + settings.validation_weeks, settings.validation_weeks)
    traded = {d for d, o in zip(series.days, series.open) if o}
    wapes = {c.name: fc.backtest(series, val, c, traded, settings.profile_weeks).wapes()["model"] for c in fc.CONFIGS}
    cfg = min(fc.CONFIGS, key=lambda c: (wapes[c.name], fc.CONFIGS.index(c)))
    for week, t0 in enumerate(fc.origins(n, settings.backtest_weeks, settings.backtest_weeks)):
        y = series.y.copy()
        fo = fc._future_open(series, t0, 7, traded, settings.profile_weeks)
        target = fc.forecast_point(series, t0, 7, fo, cfg, settings.profile_weeks) if week % 2 == 0 \
            else fc.seasonal_naive(series, t0, 7) * fo
        y[t0 + 1:t0 + 8] = np.where(fo, target, 0.0)
        series.y = y
    return pd.DataFrame({"series": "all", "sale_date": [d for d, o in zip(series.days, series.open) if o],
                         "net_revenue": series.y[series.open]})


def test_forecast_below_seasonal_naive_serves_nothing_new_and_an_undecided_one_warns(platform):
    from ecommerce_platform.cli import main
    from ecommerce_platform.ml.assets import sales_forecast, sales_forecast_beats_seasonal_naive

    data_dir, resources, instance = platform
    wh, lake = resources["warehouse"], resources["warehouse"].lake
    config = {"ops": {"sales_forecast": {"config": {"top_countries": 1, "backtest_weeks": 12}}}}
    publish_sales(wh, steady_sales(), {"France": steady_sales(seed=1, level=3000.0, noise=0.6)})
    good = dg.materialize([sales_forecast, sales_forecast_beats_seasonal_naive], resources=resources,
                          instance=instance, run_config=config)
    assert good.success and meta(good, "sales_forecast")["status"] == runs.SERVED
    assert checks(good)["sales_forecast_beats_seasonal_naive"].passed
    served, served_id = lake_files(lake, fc.CURRENT_PREFIX), fc.served_run_id(lake)
    table = lake_files(lake, fc.TABLE_PREFIX)
    with platform_environment(data_dir):
        before = CliRunner().invoke(main, ["forecast", "--json"])
    assert before.exit_code == 0 and json.loads(before.output)["run_id"] == served_id

    # below seasonal naive: rejected, the check fails (ERROR), nothing new served
    publish_sales(wh, random_walk_sales(), {"France": steady_sales(seed=1, level=3000.0, noise=0.6)})
    bad = dg.materialize([sales_forecast, sales_forecast_beats_seasonal_naive], resources=resources,
                         instance=instance, run_config=config, tags=FORCE, raise_on_error=False)
    m = meta(bad, "sales_forecast")
    assert m["status"] == runs.REJECTED and m["wape"] > m["wape_seasonal_naive"]
    check = checks(bad)["sales_forecast_beats_seasonal_naive"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not bad.success
    assert lake_files(lake, fc.CURRENT_PREFIX) == served and lake_files(lake, fc.TABLE_PREFIX) == table
    assert set(query("SELECT DISTINCT run_id FROM sales_forecast")["run_id"]) == {served_id}

    # too few backtest weeks to decide: inconclusive, the check WARNS, the run succeeds, nothing new served
    settings = fc.ForecastSettings(top_countries=0, backtest_weeks=4)
    publish_sales(wh, _inconclusive_series(settings).drop(columns="series"))
    small = {"ops": {"sales_forecast": {"config": {"top_countries": 0, "backtest_weeks": 4}}}}
    undecided = dg.materialize([sales_forecast, sales_forecast_beats_seasonal_naive], resources=resources,
                               instance=instance, run_config=small, tags=FORCE, raise_on_error=False)
    m = meta(undecided, "sales_forecast")
    assert m["status"] == runs.INCONCLUSIVE and m["wape_difference_lo"] < 0 < m["wape_difference_hi"]
    check = checks(undecided)["sales_forecast_beats_seasonal_naive"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN and undecided.success
    assert lake_files(lake, fc.CURRENT_PREFIX) == served and lake_files(lake, fc.TABLE_PREFIX) == table
    with platform_environment(data_dir):
        after = CliRunner().invoke(main, ["forecast", "--json"])
    assert after.exit_code == 0 and json.loads(after.output) == json.loads(before.output)


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


def test_confidence_is_a_two_sided_interval():
    assert 0.8 <= CONFIDENCE < 1
