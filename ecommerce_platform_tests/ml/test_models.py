"""Unit tests of the models on small generated data: exported classifier equals scikit-learn, the
leak guard, segment rules and naming stability, k chosen by silhouette and stability, ALS orientation,
holdout and time cut, metrics, the two recommendation modes, `similar`'s minimum support and the
cold-start path."""

import numpy as np
import pandas as pd
import pytest

from ecommerce_platform.ml import classifier as clf
from ecommerce_platform.ml import recommender as rec
from ecommerce_platform.ml import segments as seg
from ecommerce_platform.ml.metrics import ranking_metrics


# ----------------------------------------------------------------------------- classifier
def test_exported_gbm_equals_sklearn_and_roundtrips_without_pickle():
    from sklearn.ensemble import HistGradientBoostingClassifier

    rng = np.random.RandomState(0)
    X = rng.rand(800, 5)
    X[::9, 2] = np.nan
    y = ((X[:, 0] + np.nan_to_num(X[:, 2], nan=0.7)) > 1.0).astype(int)
    model = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    exported = clf.ExportedGBM.from_sklearn(model)
    again = clf.ExportedGBM.from_npz(exported.to_npz())
    Xt = rng.rand(300, 5)
    Xt[::4, 2] = np.nan
    np.testing.assert_allclose(again.predict_proba(Xt), model.predict_proba(Xt)[:, 1], rtol=1e-9, atol=1e-12)


def _invoice_frame(n=3000, seed=0):
    rng = np.random.RandomState(seed)
    months = np.repeat([201101, 201102, 201103, 201104, 201105, 201106, 201107, 201108], n // 8)
    df = pd.DataFrame({"invoice_month": months, "country": rng.choice(["United Kingdom", "France", "EIRE"], len(months)),
                       "hour_of_day": rng.randint(7, 20, len(months)), "day_of_week": rng.randint(1, 8, len(months)),
                       "basket_lines": rng.randint(1, 60, len(months))})
    for c in clf.HISTORY_COLUMNS:
        df[c] = rng.gamma(2.0, 100.0, len(months))
    df["invoice_total"] = df["prior_avg_order"] * rng.lognormal(0, 0.5, len(months)) + 10 * df["basket_lines"]
    return df


def test_classifier_beats_a_one_feature_baseline_and_time_split_is_ordered():
    df = _invoice_frame()
    run = clf.train_and_evaluate(df, clf.ClassifierSettings(label_threshold_gbp=600, test_months=2,
                                                            validation_months=2, max_iter=50))
    assert run.split["test_months"] == "201107-201108" and run.split["validation_months"] == "201105-201106"
    assert set(run.baseline_metrics) == set(clf.BASELINES)
    assert run.metrics["roc_auc"] > run.baseline_metrics["logreg_1_feature"]["roc_auc"]
    for m in (run.metrics, *run.baseline_metrics.values()):
        for key in ("roc_auc", "pr_auc", "precision", "recall", "f1", "positive_rate"):
            assert 0 <= m[key] <= 1


def test_exported_logistic_regression_equals_sklearn_and_serves_the_predict_path(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ecommerce_platform.resources.lake import LocalLake

    rng = np.random.RandomState(0)
    X = rng.rand(500, 4) * [1, 10, 100, 1000]
    y = (X[:, 0] + X[:, 1] / 10 + rng.normal(0, 0.3, 500) > 1).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
    exported = clf.ExportedLogReg.from_npz(clf.ExportedLogReg.from_sklearn(pipe).to_npz())
    np.testing.assert_allclose(exported.predict_proba(X), pipe.predict_proba(X)[:, 1], rtol=1e-9)
    # a served logistic regression round-trips through the lake and scores frames like the trees do
    df = _invoice_frame()
    run = clf.train_and_evaluate(df, clf.ClassifierSettings(label_threshold_gbp=600, test_months=2,
                                                            validation_months=2, max_iter=20))
    lake = LocalLake(path=str(tmp_path / "lake"))
    clf.save_model(lake, run.model, clf.CURRENT_PREFIX)
    again = clf.load_model(lake)
    assert again.kind == run.model.kind
    np.testing.assert_allclose(again.predict_proba(df.head(50)), run.model.predict_proba(df.head(50)))


def test_leak_guard_rejects_a_perfect_model():
    df = _invoice_frame()
    y = clf.labels(df, 600)
    leaked = df["invoice_total"].to_numpy()  # what a leaked feature (the invoice total) produces
    verdict, reasons, _ = clf.gate(y, leaked, {"logreg_1_feature": clf.baseline_feature(df)[:, 0]})
    assert verdict == "fail" and any("leak" in r for r in reasons)


def test_parse_requests_validates_with_clear_messages():
    ok = clf.parse_requests({"customer_id": 12347, "country": "France", "invoice_ts": "2011-05-01T10:00:00",
                             "lines": [{"stock_code": "1"}, {"stock_code": "2"}]})
    assert ok[0]["customer_id"] == "12347" and ok[0]["basket_lines"] == 2
    assert clf.parse_requests([{"country": "UK", "invoice_ts": "2011-05-01 10:00", "basket_lines": 3}])[0]["customer_id"] is None
    with pytest.raises(clf.PredictInputError, match="request 1: 'invoice_ts'"):
        clf.parse_requests([{"country": "UK", "invoice_ts": "2011-05-01", "basket_lines": 1},
                            {"country": "UK", "invoice_ts": "yesterday", "basket_lines": 1}])
    with pytest.raises(clf.PredictInputError, match="basket"):
        clf.parse_requests({"country": "UK", "invoice_ts": "2011-05-01"})


# ----------------------------------------------------------------------------- segments
def _customers(seed=0, per=120):
    rng = np.random.RandomState(seed)
    groups = [(5, 25, 8000), (20, 6, 1500), (150, 3, 900), (250, 1, 150)]  # recency, frequency, monetary
    rows = []
    for g, (r, f, m) in enumerate(groups):
        for i in range(per):
            freq = max(1, int(rng.normal(f, f * 0.1)))
            mon = float(m * rng.lognormal(0, 0.15))
            rows.append({"customer_id": f"{g}-{i}", "recency_days": float(r * rng.lognormal(0, 0.15)),
                         "frequency": freq, "monetary": mon, "avg_basket": mon / freq, "has_net_spend": True})
    rows.append({"customer_id": "neg", "recency_days": 30.0, "frequency": 1, "monetary": -50.0,
                 "avg_basket": -50.0, "has_net_spend": False})
    rows.append({"customer_id": "refund-only", "recency_days": np.nan, "frequency": 0, "monetary": -20.0,
                 "avg_basket": np.nan, "has_net_spend": False})
    rows.append({"customer_id": "fresh", "recency_days": 12.0, "frequency": 1, "monetary": 80.0,
                 "avg_basket": 80.0, "has_net_spend": True})
    return pd.DataFrame(rows)


def test_name_clusters_follows_profiles_with_stated_thresholds_not_ids():
    # rows: median recency (days), frequency (invoices), monetary
    centroids = np.array([[200, 2, 100], [5, 30, 9000], [120, 3, 900], [15, 6, 1500], [60, 2, 700]], dtype=float)
    names = seg.name_clusters(centroids)
    assert names == ["lapsed", "champions (2)", "at risk", "champions", "regulars"] or \
        names == ["lapsed", "champions", "at risk", "champions (2)", "regulars"]
    assert names[1] == "champions"  # the higher-spending of the two champion-like clusters keeps the name
    perm = [2, 0, 4, 3, 1]
    assert seg.name_clusters(centroids[perm]) == [names[i] for i in perm]
    assert seg.cluster_name(30, 5) == "champions" and seg.cluster_name(31, 50) == "regulars"
    assert seg.cluster_name(90, 1) == "regulars" and seg.cluster_name(91, 9) == "at risk"
    assert seg.cluster_name(181, 9) == "lapsed"


def test_rules_keep_one_time_buyers_out_of_the_clusters():
    df = _customers()
    rules = dict(zip(df["customer_id"], seg.rule_segments(df)))
    assert rules["neg"] == rules["refund-only"] == seg.NO_NET_SPEND
    assert rules["fresh"] == seg.NEW  # one invoice, 12 days ago
    assert rules["3-0"] == seg.ONE_TIME  # one invoice, ~250 days ago: not "at risk", never came back
    assert rules["0-0"] == "" and rules["2-0"] == ""  # repeat buyers: clustered


def test_k_is_chosen_by_silhouette_among_stable_fits():
    df = _customers()
    run = seg.fit_segments(df, seg.SegmentSettings(random_state=0, silhouette_sample=300, k_range=(2, 5)))
    rows = {r["k"]: r for r in run.k_choice}
    stable = [k for k, r in rows.items() if r["stability_ari"] >= seg.MIN_STABILITY_ARI]
    assert run.k in stable and run.k == max(stable, key=lambda k: (rows[k]["silhouette"], -k))
    assert "silhouette" in run.k_reason
    forced = seg.fit_segments(df, seg.SegmentSettings(k=4, silhouette_sample=300, k_range=(2, 5)))
    assert forced.k == 4 and "business" in forced.k_reason


def test_segment_names_stay_with_the_same_customers_across_seeds_and_row_orders():
    df = _customers()
    a = seg.fit_segments(df, seg.SegmentSettings(k=3, random_state=0, silhouette_sample=300, k_range=(2, 4)))
    b = seg.fit_segments(df.sample(frac=1.0, random_state=5),
                         seg.SegmentSettings(k=3, random_state=123, silhouette_sample=300, k_range=(2, 4)))
    m = a.table.merge(b.table, on="customer_id")
    assert len(m) == len(df)
    assert (m["segment_x"] == m["segment_y"]).all()
    named = a.table.set_index("customer_id")["segment"]
    assert named["0-0"] == "champions" and named["2-0"] == "at risk" and named["3-0"] == seg.ONE_TIME
    assert named["neg"] == seg.NO_NET_SPEND and named["refund-only"] == seg.NO_NET_SPEND
    assert a.n_excluded == 2 and set(a.silhouettes) == set(range(2, 5))
    # the profile of every named cluster holds its name's thresholds
    prof = a.profiles.set_index("segment")
    assert prof.loc["champions", "recency_days_median"] <= seg.CHAMPION_RECENCY_DAYS
    assert prof.loc["champions", "frequency_median"] >= seg.CHAMPION_FREQUENCY
    assert seg.ACTIVE_DAYS < prof.loc["at risk", "recency_days_median"] <= seg.LAPSED_DAYS
    assert (prof.loc[seg.ONE_TIME, "frequency_median"] == 1)
    assert seg.scatter_png(a.table)[:8] == b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------- recommender
def _interactions(seed=0, users=120, items=60):
    rng = np.random.RandomState(seed)
    rows = []
    for u in range(users):
        taste = u % 3  # three groups of customers buying from three blocks of products
        n_inv = rng.randint(1, 5)
        for k in range(n_inv):
            ts = pd.Timestamp("2011-01-03") + pd.Timedelta(days=int(30 * k + rng.randint(0, 25)))
            for i in rng.choice(np.arange(taste * 20, taste * 20 + 20), size=4, replace=False):
                rows.append({"customer_id": f"u{u:03d}", "stock_code": f"P{i:03d}", "invoice_no": f"{u}-{k}",
                             "invoice_ts": ts, "quantity": int(rng.randint(1, 12)), "invoice_rank_desc": n_inv - k,
                             "customer_invoices": n_inv})
    return pd.DataFrame(rows)


def test_als_matrix_is_users_by_items():
    df = _interactions()
    users, items = np.sort(df.customer_id.unique()), np.sort(df.stock_code.unique())
    counts = rec.user_item_matrix(df, users, items)
    assert counts.shape == (len(users), len(items))
    assert counts.sum() == df["quantity"].sum()
    invoices = rec.user_item_matrix(df, users, items, "invoices")
    assert invoices.sum() == len(df.drop_duplicates(["customer_id", "stock_code", "invoice_no"]))
    model, _ = rec.fit_als(counts, rec.ALSParams(factors=8, iterations=5))
    assert model.user_factors.shape[0] == len(users)
    assert model.item_factors.shape[0] == len(items)


def test_holdout_removes_the_last_invoice_of_eligible_customers_only():
    df = _interactions()
    train, held = rec.holdout(df, 1, min_invoices=2)
    assert (held.invoice_rank_desc == 1).all() and (held.customer_invoices >= 2).all()
    assert not set(held.invoice_no) & set(train.invoice_no)
    single = df[df.customer_invoices == 1]
    assert set(single.invoice_no) <= set(train.invoice_no)  # never evaluated, still used for training


def test_time_cut_trains_strictly_before_the_test_month():
    df = _interactions()
    train, test = rec.time_cut(df, 30)
    assert train["invoice_ts"].max() <= df["invoice_ts"].max() - pd.Timedelta(days=30) < test["invoice_ts"].min()
    assert len(train) + len(test) == len(df)
    val_train, val_test = rec.time_cut(df, 30, 30)
    assert val_test["invoice_ts"].max() <= train["invoice_ts"].max()


def test_ranking_metrics_on_a_known_example():
    m = ranking_metrics([[1, 2, 3], [4, 5, 6]], [{1, 3}, {9}], k=3, n_items=10)
    assert m["precision_at_3"] == pytest.approx((2 / 3 + 0) / 2)
    assert m["recall_at_3"] == pytest.approx((1 + 0) / 2)
    assert m["map_at_3"] == pytest.approx(((1 + 2 / 3) / 2 + 0) / 2)
    assert m["coverage"] == pytest.approx(0.6)


def test_top_k_orders_by_score_then_column_and_respects_exclusions():
    scores = np.array([[0.1, 0.9, 0.9, 0.5], [1.0, 0.0, 0.0, 0.0]])
    assert rec.top_k(scores, 3).tolist() == [[1, 2, 3], [0, 1, 2]]
    excl = np.array([[False, True, False, False], [True, True, True, False]])
    assert rec.top_k(scores, 3, excl).tolist() == [[2, 3, 0], [3, -1, -1]]


def test_top_k_breaks_ties_at_the_cut_by_column_in_blocks_and_from_a_function():
    # many tied scores (4 values), more rows than one block, exclusions: the expected lists come from
    # Python's sort of each row by (-score, column)
    rng = np.random.default_rng(7)
    n, m, k = 3 * rec.TOP_K_ROWS + 17, 40, 10
    scores = rng.integers(0, 4, size=(n, m)).astype(np.float32)
    excl = rng.random((n, m)) < 0.4
    excl[5, :35] = True  # a row with fewer candidates than k
    expected = []
    for r in range(n):
        cols = sorted((c for c in range(m) if not excl[r, c]), key=lambda c: (-scores[r, c], c))[:k]
        expected.append(cols + [-1] * (k - len(cols)))
    assert rec.top_k(scores, k, excl).tolist() == expected
    rows = rng.permutation(n)[: 2 * rec.TOP_K_ROWS + 3]
    assert rec.top_k(lambda r: scores[r], k, excl[rows], rows=rows).tolist() == [expected[r] for r in rows]


def test_recommender_modes_similar_support_and_cold_start(tmp_path):
    from ecommerce_platform.resources.lake import LocalLake

    df = _interactions(users=240)
    grid = (rec.ALSParams(factors=8, regularization=0.1, alpha=1.0, iterations=10, scaling="log"),)
    run = rec.train_and_evaluate(df, rec.ALSSettings(min_invoices=2, grid=grid))
    assert set(run.weights) == {"discovery", "next-basket"} and all(0 <= w <= 1 for w in run.weights.values())
    lake = LocalLake(path=str(tmp_path / "lake"))
    catalog = pd.DataFrame({"stock_code": run.items, "description": [f"thing {c}" for c in run.items]})
    rec.save_model(lake, run, catalog)
    assert not list((tmp_path / "lake").rglob("*.pkl")) and not list((tmp_path / "lake").rglob("*.pickle"))
    model = rec.Recommender.load(lake)
    bought = set(df[df.customer_id == "u000"].stock_code)
    discovery = model.recommend("u000", n=5, mode="discovery")
    assert discovery["known_customer"] and not bought & {i["stock_code"] for i in discovery["items"]}
    assert all(i["description"].startswith("thing ") and not i["reorder"] for i in discovery["items"])
    basket = model.recommend("u000", n=10, mode="next-basket")
    assert {i["stock_code"] for i in basket["items"] if i["reorder"]} <= bought
    if run.weights["next-basket"] > 0:  # the customer's own products rank first with a repeat weight
        assert basket["items"][0]["reorder"]
    with pytest.raises(ValueError, match="unknown mode"):
        model.recommend("u000", mode="everything")
    cold = model.recommend("nobody", n=3)
    assert not cold["known_customer"] and "cold start" in cold["message"] and len(cold["items"]) == 3
    similar = model.similar("p001", n=5)
    assert similar["items"] and similar["items"][0]["stock_code"] != "P001"
    # every product shown shares at least min_shared_buyers buyers with P001, counted here from the rows
    buyers = df.groupby("stock_code")["customer_id"].apply(set)
    for item in similar["items"]:
        shared = len(buyers["P001"] & buyers[item["stock_code"]])
        assert shared == item["shared_buyers"] >= rec.MIN_SHARED_BUYERS
    strict = model.similar("p001", n=60, min_shared_buyers=10 ** 6)
    assert strict["items"] == []
    with pytest.raises(rec.UnknownItemError, match="unknown stock code 'NOPE'"):
        model.similar("nope")


# ----------------------------------------------------------------------------- too little data
def test_classifier_on_two_months_says_what_is_missing_and_keeps_the_served_model(tmp_path):
    from ecommerce_platform.ml import runs
    from ecommerce_platform.resources.lake import LocalLake
    from ecommerce_platform_tests.ml.test_gates import crafted_invoices

    lake = LocalLake(path=str(tmp_path / "lake"))
    settings = clf.ClassifierSettings(test_months=2, validation_months=2, max_iter=60)
    record, run = clf.run_and_publish(lake, crafted_invoices("interaction"), settings)
    assert record["status"] == runs.SERVED and run is not None
    served = {k: lake.get_bytes(k) for k in lake.list(clf.CURRENT_PREFIX)}

    two_months = crafted_invoices("interaction")
    two_months = two_months[two_months.invoice_month <= 201102]
    with pytest.raises(runs.InsufficientData) as exc:
        clf.train_and_evaluate(two_months, settings)
    assert exc.value.missing == {"invoice months (train + validation + test)": {"needed": 5, "found": 2}}
    record, run = clf.run_and_publish(lake, two_months, settings)
    assert run is None and record["status"] == runs.INSUFFICIENT
    assert record["missing"] == exc.value.missing and record["served_run_id"] == clf.served_run_id(lake)
    assert {k: lake.get_bytes(k) for k in lake.list(clf.CURRENT_PREFIX)} == served
    assert runs.read_record(lake, clf.MODEL_PREFIX)["status"] == runs.INSUFFICIENT


def test_classifier_needs_both_classes_in_every_slice():
    df = _invoice_frame()
    missing = clf.data_problems(df, clf.ClassifierSettings(label_threshold_gbp=1e9, test_months=2, validation_months=2))
    assert missing["test invoices >= 1e+09 GBP"] == {"needed": clf.MIN_CLASS_ROWS, "found": 0}
    assert set(missing) == {f"{s} invoices >= 1e+09 GBP" for s in ("train", "validation", "test")}
    assert clf.data_problems(df, clf.ClassifierSettings(label_threshold_gbp=600, test_months=2, validation_months=2)) == {}


def test_segments_and_als_on_too_few_customers_say_what_is_missing():
    from ecommerce_platform.ml import runs

    few = _customers(per=5)  # 15 repeat buyers (groups 0-2), the others by rule
    with pytest.raises(runs.InsufficientData) as exc:
        seg.fit_segments(few)
    (what, numbers), = exc.value.missing.items()
    assert "repeat buyers" in what and numbers == {"needed": 2 * seg.MIN_CUSTOMERS_PER_SEGMENT, "found": 15}

    with pytest.raises(runs.InsufficientData) as exc:
        rec.train_and_evaluate(_interactions(users=30))
    missing = exc.value.missing
    test_users = missing["time cut (last month) customers (a held-out product new to them)"]
    assert test_users["needed"] == rec.MIN_EVAL_USERS and test_users["found"] < rec.MIN_EVAL_USERS
    with pytest.raises(runs.InsufficientData) as exc:
        rec.train_and_evaluate(_interactions().iloc[0:0])
    assert exc.value.missing == {"interactions": {"needed": 1, "found": 0}}
