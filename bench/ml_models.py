"""Training and evaluation time of each ML model on the real file, through the platform.

    .venv/bin/python bench/ml_models.py [SOURCE]   (default data/reference/online_retail.parquet)

Lands and cleans the source into a temporary folder (raw_s3 + clean_parquet), builds the feature
tables, then trains and evaluates the classifier, the segments and the ALS recommender, printing
times and the metrics of each model next to its baseline measured in the same run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "data" / "reference" / "online_retail.parquet")
    with tempfile.TemporaryDirectory(prefix="ml_bench_") as tmp:
        os.environ.update({"ECOMMERCE_DATA_DIR": str(Path(tmp) / "data"), "ECOMMERCE_SOURCE": str(source)})
        import dagster as dg

        from ecommerce_platform.ingestion.assets import raw_s3
        from ecommerce_platform.lake.assets import clean_parquet
        from ecommerce_platform.ml import classifier as clf
        from ecommerce_platform.ml import recommender as rec
        from ecommerce_platform.ml import segments as seg
        from ecommerce_platform.ml.features import TABLES, build_feature_table
        from ecommerce_platform.resources import build_resources

        res = build_resources()
        lake, wh = res["lake"], res["warehouse"]
        t = time.perf_counter()
        assert dg.materialize([raw_s3, clean_parquet], resources=res).success
        print(f"land + clean: {time.perf_counter() - t:.2f} s ({source.name})")
        for table in TABLES.values():
            r = build_feature_table(wh, lake, table, force=True)
            print(f"feature table {r.name:<24} {r.rows:>8,} rows  {r.seconds:.2f} s")

        df = wh.query_df("SELECT * FROM invoice_features", lake)
        run = clf.train_and_evaluate(df)
        print(f"\nclassifier: train {run.train_seconds:.2f} s (model + baseline), eval {run.eval_seconds:.2f} s")
        print(f"  split {run.split}")
        for name, m in (("gradient boosting", run.metrics), ("baseline logreg(prior_avg_order)", run.baseline_metrics)):
            print(f"  {name:<34} ROC-AUC {m['roc_auc']:.4f}  PR-AUC {m['pr_auc']:.4f}  P {m['precision']:.4f}  "
                  f"R {m['recall']:.4f}  F1 {m['f1']:.4f}  thr {m['threshold']:.4f}")
        print(f"  test positive rate {run.metrics['positive_rate']:.4f}")

        customers = wh.query_df("SELECT * FROM customer_features", lake)
        srun = seg.fit_segments(customers)
        print(f"\nsegments: train {srun.train_seconds:.2f} s (K-Means k={srun.k}), eval {srun.eval_seconds:.2f} s "
              f"(silhouettes k=2..8 on a sample, PCA)")
        print(f"  silhouettes {srun.silhouettes}")
        print(f"  sizes {dict(zip(srun.profiles['segment'], srun.profiles['customers']))}")

        inter = wh.query_df("SELECT customer_id, stock_code, invoice_no, quantity, invoice_rank_desc, "
                            "customer_invoices FROM user_item_interactions", lake)
        arun = rec.train_and_evaluate(inter)
        print(f"\nals_model: train {arun.train_seconds:.2f} s (final fit on all data), eval {arun.eval_seconds:.2f} s "
              f"(test fit + popularity), tuning {arun.tuning_seconds:.2f} s ({len(arun.validation)} configs on validation)")
        print(f"  chosen {arun.params}")
        for name, m in (("ALS", arun.metrics), ("popularity", arun.popularity_metrics)):
            print(f"  {name:<11} P@10 {m['precision_at_10']:.4f}  R@10 {m['recall_at_10']:.4f}  "
                  f"MAP@10 {m['map_at_10']:.4f}  coverage {m['coverage']:.4f}  users {m['users']}")
        print(f"  precision lift {arun.lift:.2f}x (target >= {rec.MIN_LIFT}x)")


if __name__ == "__main__":
    main()
