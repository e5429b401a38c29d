"""Benchmark: materialize every analytics view on the real file (DuckDB over the local lake: create the
views, measure their metadata), then read every view in full, against the same figures computed in
pandas from the clean zone (the baseline), in the same run.

    .venv/bin/python bench/analytics_views.py [--source data/reference/online_retail.parquet] [--repeat 3]

Builds the landing and the clean zone in a temporary data dir first (not timed).
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(ROOT / "data" / "reference" / "online_retail.parquet"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="bench_analytics_")) / "data"
    os.environ.update({"ECOMMERCE_DATA_DIR": str(data_dir), "ECOMMERCE_SOURCE": args.source})

    import dagster as dg
    import pandas as pd

    from ecommerce_platform.analytics.assets import analytics_views
    from ecommerce_platform.definitions import build_definitions
    from ecommerce_platform.recompute import FORCE_TAG
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.runner import rebuild

    resources = build_resources()
    wh = resources["warehouse"]
    views = [k.to_user_string() for k in analytics_views.keys]
    with dg.DagsterInstance.ephemeral() as instance:
        t = time.perf_counter()
        rebuild(instance, build_definitions(layers=("ingestion", "lake")), log=lambda _m: None)
        print(f"setup: landing + clean zone in {time.perf_counter() - t:.1f}s (not part of the figures)")
        build_s, reuse_s = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            assert dg.materialize([analytics_views], resources=resources, instance=instance,
                                  tags={FORCE_TAG: "true"}).success
            build_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert dg.materialize([analytics_views], resources=resources, instance=instance).success
            reuse_s.append(time.perf_counter() - t)
    read_s = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        rows = {v: len(wh.query_df(f"SELECT * FROM {v}")) for v in views if v != "sale_lines"}
        read_s.append(time.perf_counter() - t)
    kpis = wh.query_df("SELECT net_revenue, orders, customers FROM sales_kpis").iloc[0]

    # Baseline: the same headline figures and per-view totals in pandas, from the clean Parquet.
    pandas_s = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        df = pd.read_parquet(
            data_dir / "lake" / "clean" / "transactions",
            columns=["invoice_no", "stock_code", "quantity", "invoice_date", "customer_id", "country",
                     "line_total", "is_sale", "is_return"],
        )
        lines = df[df["is_sale"] | df["is_return"]].copy()
        lines["pence"] = (lines["line_total"] * 100).round().astype("int64")
        lines["month"] = pd.to_datetime(lines["invoice_date"]).dt.to_period("M")
        sales = lines[lines["is_sale"]]
        figures = {"net_revenue": lines["pence"].sum() / 100, "orders": sales["invoice_no"].nunique(),
                   "customers": sales["customer_id"].nunique()}
        for keys in ("invoice_date", ["invoice_date", "country"], "month", "stock_code", "country"):
            lines.groupby(keys)["pence"].sum()
        lines.dropna(subset=["customer_id"]).groupby("customer_id")["pence"].sum()
        pandas_s.append(time.perf_counter() - t)

    print(f"engine: {wh.engine}; views: {len(views)}; repeat {args.repeat}, best of runs shown")
    print(f"materialize every view (DDL + metadata)  : {min(build_s) * 1000:8.0f} ms")
    print(f"materialize again, nothing changed       : {min(reuse_s) * 1000:8.0f} ms")
    print(f"read every view in full (DuckDB)         : {min(read_s) * 1000:8.0f} ms  rows {rows}")
    print(f"pandas baseline (read + groupby)         : {min(pandas_s) * 1000:8.0f} ms")
    print(f"read all views vs pandas: {min(pandas_s) / min(read_s):.2f}x")
    print(f"net revenue  views £{float(kpis['net_revenue']):,.2f}  pandas £{figures['net_revenue']:,.2f}")
    print(f"orders       views {int(kpis['orders']):,}  pandas {figures['orders']:,}")
    print(f"customers    views {int(kpis['customers']):,}  pandas {figures['customers']:,}")


if __name__ == "__main__":
    main()
