"""Benchmark: create and query every analytics view on the real file (DuckDB warehouse over the
local lake), against the same figures computed in pandas from the clean zone (the baseline), in
the same run.

    .venv/bin/python bench/analytics_views.py [--source data/reference/online_retail.parquet] [--data-dir DIR]

Builds raw + clean in a temporary data dir first (not timed) unless --data-dir holds them already.
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
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    data_dir = Path(args.data_dir or tempfile.mkdtemp(prefix="bench_analytics_")) / "data"
    os.environ.update({"ECOMMERCE_DATA_DIR": str(data_dir), "ECOMMERCE_SOURCE": args.source})

    import dagster as dg
    import pandas as pd

    from ecommerce_platform.analytics.views import VIEWS, create_views, summarize
    from ecommerce_platform.ingestion.assets import raw_s3
    from ecommerce_platform.lake.assets import clean_parquet
    from ecommerce_platform.resources import build_resources

    resources = build_resources()
    lake, wh = resources["lake"], resources["warehouse"]
    if not (data_dir / "lake" / "clean" / "_manifests" / "transactions.json").exists():
        t = time.perf_counter()
        assert dg.materialize([raw_s3, clean_parquet], resources=resources).success
        print(f"setup: raw + clean built in {time.perf_counter() - t:.1f}s (not part of the figures)")

    create_s, query_s, full_s = [], [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        create_views(wh, lake)
        create_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        summary = summarize(wh, lake, preview_rows=10)
        query_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        with wh.connect(lake) as con:  # every view read in full by one client
            full_rows = {v: len(con.execute(f"SELECT * FROM {v}").df()) for v in VIEWS if v != "sale_lines"}
        full_s.append(time.perf_counter() - t)

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
        figures = {
            "net_revenue": lines["pence"].sum() / 100,
            "orders": sales["invoice_no"].nunique(),
            "customers": sales["customer_id"].nunique(),
        }
        per_view = {
            "daily_sales": lines.groupby("invoice_date")["pence"].sum(),
            "daily_sales_by_country": lines.groupby(["invoice_date", "country"])["pence"].sum(),
            "monthly_sales": lines.groupby("month")["pence"].sum(),
            "popular_products": lines.groupby("stock_code")["pence"].sum(),
            "sales_by_country": lines.groupby("country")["pence"].sum(),
            "top_customers": lines.dropna(subset=["customer_id"]).groupby("customer_id")["pence"].sum(),
        }
        sales.groupby("invoice_date").agg(orders=("invoice_no", "nunique"), customers=("customer_id", "nunique"))
        pandas_s.append(time.perf_counter() - t)

    h = summary["headline"]
    print(f"engine: {wh.engine}; views: {len(VIEWS)}; repeat {args.repeat}, best of runs shown")
    print(f"create all views (DDL)          : {min(create_s) * 1000:8.0f} ms")
    print(f"summary + previews (warehouse)  : {min(query_s) * 1000:8.0f} ms")
    print(f"read every view in full (DuckDB): {min(full_s) * 1000:8.0f} ms  rows {full_rows}")
    print(f"pandas baseline (read + groupby): {min(pandas_s) * 1000:8.0f} ms")
    print(f"net revenue  views £{h['net_revenue']:,.2f}  pandas £{figures['net_revenue']:,.2f}")
    print(f"orders       views {h['orders']:,}  pandas {figures['orders']:,}")
    print(f"customers    views {h['customers']:,}  pandas {figures['customers']:,}")
    print("row counts   " + ", ".join(f"{v}={n:,}" for v, n in summary["row_counts"].items()))
    print("groups match " + ", ".join(
        f"{v}={'yes' if len(s) == summary['row_counts'][v] else 'NO'}" for v, s in per_view.items()
    ))


if __name__ == "__main__":
    main()
