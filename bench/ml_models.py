"""Training and evaluation time and accuracy of each ML model on the real file, with its baselines measured
in the same run, through the platform.

    .venv/bin/python bench/ml_models.py [--source FILE] [--data-dir DIR] [--libraries]

Lands and cleans the source into a temporary folder (or reuses --data-dir), creates the analytics views
the forecast reads, builds the feature tables, then trains and evaluates the sales forecast, the
classifier, the segments and the recommender, printing times and each model's figures next to every
baseline's. ``--libraries`` also measures the forecasting alternatives on the same backtest: scikit-
learn gradient boosting on lag features, and statsforecast's AutoETS / AutoARIMA / MSTL when that
package is importable (it is not a dependency of the platform).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def load() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


def forecast_alternatives(frame, settings) -> None:  # noqa: ANN001
    """Other forecasters on the same rolling-origin backtest (total, daily, one week ahead)."""
    import numpy as np

    from ecommerce_platform.ml import forecast as fc

    series = fc.build_series(frame, 0)[0]
    n = len(series.days)
    origins = fc.origins(n, settings.backtest_weeks, settings.backtest_weeks)
    traded = {d for d, o in zip(series.days, series.open) if o}
    actual = np.concatenate([series.y[t0 + 1:t0 + 8] for t0 in origins])

    def report(name: str, make) -> None:  # noqa: ANN001
        t = time.perf_counter()
        try:
            forecasts = np.concatenate([make(t0) for t0 in origins])
        except ImportError as exc:
            print(f"  {name:<40} not measured ({exc})")
            return
        print(f"  {name:<40} WAPE {fc.wape(actual, forecasts):.4f}   {time.perf_counter() - t:6.2f} s for "
              f"{len(origins)} origins")

    def open_days(t0: int):  # noqa: ANN202
        return fc._future_open(series, t0, 7, traded, settings.profile_weeks)

    def hgb(t0: int):  # noqa: ANN202
        """Direct strategy: one row per (origin, day ahead) before t0; features known at the origin."""
        from sklearn.ensemble import HistGradientBoostingRegressor

        y = series.y

        def rows(o: int):  # noqa: ANN202
            out = []
            for k in range(1, 8):
                t = o + k
                same = [y[o - 6 + ((k - 1) % 7) - 7 * j] for j in range(4)]
                out.append([k, series.days[t].weekday() if t < n else (series.days[o].weekday() + k) % 7,
                            same[0], np.mean(same), y[o - 6:o + 1].mean(), y[o - 27:o + 1].mean(), o])
            return out

        X, Y = [], []
        for o in range(56, t0 - 7 + 1):
            X += rows(o)
            Y += list(y[o + 1:o + 8])
        model = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, random_state=0).fit(
            np.log1p(np.clip(np.array(X), 0, None)), np.log1p(np.clip(Y, 0, None)))
        pred = np.expm1(model.predict(np.log1p(np.clip(np.array(rows(t0)), 0, None))))
        return np.where(open_days(t0), pred, 0.0)

    def statsforecast(model_name: str):  # noqa: ANN202
        def make(t0: int):  # noqa: ANN202
            from statsforecast.models import MSTL, AutoARIMA, AutoETS

            models = {"AutoETS": lambda: AutoETS(season_length=6), "AutoARIMA": lambda: AutoARIMA(season_length=6),
                      "MSTL": lambda: MSTL(season_length=6, trend_forecaster=AutoETS(model="ZZN"))}
            history = series.y[:t0 + 1][series.open[:t0 + 1]]  # trading days only: 6 a week
            fo = open_days(t0)
            out = np.zeros(7)
            out[fo] = np.expm1(models[model_name]().forecast(np.log1p(np.clip(history, 0, None)), h=int(fo.sum()))["mean"])
            return out
        return make

    report("scikit-learn HGB on lag features", hgb)
    for name in ("AutoETS", "AutoARIMA", "MSTL"):
        report(f"statsforecast {name} (log, season 6)", statsforecast(name))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(ROOT / "data" / "reference" / "online_retail.parquet"))
    ap.add_argument("--data-dir", default=None, help="a data folder whose raw and clean zones are built already")
    ap.add_argument("--libraries", action="store_true", help="also measure other forecasting libraries")
    args = ap.parse_args()
    tmp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="ml_bench_")
    data_dir = Path(args.data_dir) if args.data_dir else Path(tmp.name) / "data"
    os.environ.update({"ECOMMERCE_DATA_DIR": str(data_dir), "ECOMMERCE_SOURCE": args.source})
    import dagster as dg

    from ecommerce_platform.analytics.views import VIEWS, create_view
    from ecommerce_platform.ml import classifier as clf
    from ecommerce_platform.ml import forecast as fc
    from ecommerce_platform.ml import recommender as rec
    from ecommerce_platform.ml import segments as seg
    from ecommerce_platform.ml.features import TABLES, build_feature_table
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform_tests.conftest import build_lake

    print(f"machine: {load()} at start")
    wh = build_resources()["warehouse"]
    if not (data_dir / "lake" / "clean").exists():
        t = time.perf_counter()
        with dg.DagsterInstance.ephemeral() as instance:
            assert all(r.success for r in build_lake(instance))
        print(f"land + clean: {time.perf_counter() - t:.2f} s ({Path(args.source).name}; not part of the figures)")
    for view in VIEWS:
        create_view(wh, view)
    for table in TABLES.values():
        r = build_feature_table(wh, table)
        print(f"feature table {r.name:<24} {r.rows:>8,} rows  {r.seconds:.2f} s")

    # ---- sales forecast
    settings = fc.ForecastSettings()
    frame = wh.query_df(fc.series_sql(settings.top_countries))
    t = time.perf_counter()
    frun = fc.train_and_evaluate(frame, settings)
    total = time.perf_counter() - t
    print(f"\nsales_forecast: {total:.2f} s in all (final forecasts + intervals {frun.train_seconds:.2f} s, "
          f"validation + backtest {frun.eval_seconds:.2f} s); {load()}")
    print(f"  backtest: {settings.backtest_weeks} weekly origins, 7 days ahead, daily net revenue; gate verdict "
          f"{frun.verdict} (WAPE difference vs seasonal naive, 90 % interval "
          f"[{frun.figures['wape_difference_lo']:.4f}, {frun.figures['wape_difference_hi']:.4f}])")
    for r in frun.results:
        w, ww = r.wapes, r.test.weekly_wapes()
        print(f"  {r.name:<15} model ({r.config.name:<30}) WAPE {w['model']:.4f} | seasonal naive {w['seasonal_naive']:.4f}"
              f" | moving average {w['moving_average']:.4f} | {1 - w['model'] / w['seasonal_naive']:+.1%} vs naive"
              f" | weekly WAPE {ww['model']:.4f} vs naive {ww['seasonal_naive']:.4f} | MASE {r.mase:.3f}"
              f" | 80 % interval coverage {r.coverage:.3f} (weekly {r.coverage_weekly:.2f})")
    if args.libraries:
        print("  alternatives on the same backtest (total):")
        print(f"  {'this model':<40} WAPE {frun.total.wapes['model']:.4f}   {total:6.2f} s for every series, "
              "validation and intervals included")
        forecast_alternatives(frame, settings)

    # ---- classifier
    df = wh.query_df("SELECT * FROM invoice_features")
    t = time.perf_counter()
    crun = clf.train_and_evaluate(df)
    print(f"\nclassifier: {time.perf_counter() - t:.2f} s in all (trees {crun.train_seconds:.2f} s; baselines, "
          f"selection and evaluation {crun.eval_seconds:.2f} s); {load()}")
    print(f"  split {({k: v for k, v in crun.split.items() if k != 'months'})}")
    rows = [(f"gradient boosting (trees){' [candidate]' if crun.model.kind == clf.GBM else ''}", crun.gbm_metrics)]
    rows += [(f"{name}{' [candidate]' if crun.model.kind == name else ''}", m) for name, m in crun.baseline_metrics.items()]
    for name, m in rows:
        print(f"  {name:<40} ROC-AUC {m['roc_auc']:.4f}  PR-AUC {m['pr_auc']:.4f}  P {m['precision']:.4f}  "
              f"R {m['recall']:.4f}  F1 {m['f1']:.4f}")
    sel, g = crun.selection, crun.gate_figures
    print(f"  trees vs logreg_all_features: ROC-AUC difference - margin {sel['auc_difference']:+.4f}, 90 % interval "
          f"[{sel['auc_difference_lo']:.4f}, {sel['auc_difference_hi']:.4f}] -> {sel['verdict']}")
    print(f"  served candidate {crun.model.kind} vs {crun.strongest_baseline}: difference - margin "
          f"{g['auc_difference']:+.4f} [{g['auc_difference_lo']:.4f}, {g['auc_difference_hi']:.4f}] -> {crun.verdict}")

    # ---- segments
    customers = wh.query_df("SELECT * FROM customer_features")
    t = time.perf_counter()
    srun = seg.fit_segments(customers)
    print(f"\nsegments: {time.perf_counter() - t:.2f} s in all (k choice + K-Means {srun.train_seconds:.2f} s, "
          f"PCA {srun.eval_seconds:.2f} s); {load()}")
    print(f"  {srun.k_reason}")
    for r in srun.k_choice:
        print(f"  k={r['k']}: silhouette {r['silhouette']:.4f}  bootstrap ARI mean {r['stability_ari']:.4f} "
              f"min {r['stability_ari_min']:.4f}")
    for _, p in srun.profiles.iterrows():
        print(f"  {p['segment']:<16} {int(p['customers']):>5} customers  median recency {p['recency_days_median']:6.1f} d"
              f"  frequency {p['frequency_median']:5.1f}  net spend {p['monetary_median']:9.2f}")

    # ---- recommender
    inter = wh.query_df(f"SELECT {rec.INTERACTION_COLUMNS} FROM user_item_interactions")
    t = time.perf_counter()
    arun = rec.train_and_evaluate(inter)
    print(f"\nals_model: {time.perf_counter() - t:.2f} s in all (final ALS fit {arun.train_seconds:.2f} s; tuning "
          f"{arun.tuning_seconds:.2f} s; both evaluations with every baseline {arun.eval_seconds:.2f} s); {load()}")
    print(f"  ALS {arun.params}; blend weights chosen on validation {arun.weights}; gate verdict {arun.verdict}")
    for ev, modes in arun.results.items():
        for mode, r in modes.items():
            figures = "  ".join(f"{m} {x['precision_at_10']:.4f}" for m, x in r["metrics"].items())
            print(f"  {ev:<12} {mode:<11} P@10: {figures}")
            print(f"  {'':<12} {'':<11} -> {r['lift']:.3f}x {r['strongest']} (needs {r['min_lift']}x; difference "
                  f"- lift x baseline {r['difference']:+.4f}, 90 % interval [{r['lo']:.4f}, {r['hi']:.4f}]) "
                  f"users {r['users']}")
    print(f"\nmachine: {load()} at the end")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
