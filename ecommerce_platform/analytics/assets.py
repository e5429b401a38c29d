"""Analytics layer: ``athena_views`` (the analytics views in the warehouse), ``sales_dashboard``
(charts + HTML page replacing the QuickSight pictures) and the checks that guard the views."""


import dagster as dg

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

# Plausible range of total net revenue (GBP). The reference data set has ~9.8m; a run far outside
# this range means a broken sales definition (e.g. cancellations summed in) or a truncated load.
NET_REVENUE_MIN = 1.0
NET_REVENUE_MAX = 1e9
MAX_RETURN_SHARE = 0.5  # returns above half of gross sales is not a plausible business
VIEW_TAGS = {"layer": "analytics"}


@dg.asset(
    key="athena_views",
    deps=["clean_parquet"],
    group_name="analytics",
    pool="zone_analytics",
    kinds={"athena", "duckdb", "sql"},
    code_version="1",
    description="The analytics views (daily, monthly, product, country, customer sales and returns), "
    "defined once in SQL and created in the warehouse: DuckDB views locally, Athena views over Glue in aws.",
    owners=["team:data-platform"],
    tags=VIEW_TAGS,
)
def athena_views(
    context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse
) -> dg.MaterializeResult:
    from ecommerce_platform.analytics.views import build_views

    result = build_views(warehouse, lake)
    if result.reused:
        context.log.info("clean data and view SQL unchanged: views re-created, figures reused")
    h = result.headline
    counts = "\n".join(f"| {v} | {n:,} |" for v, n in result.row_counts.items())
    previews = "\n\n".join(f"**{v}**\n\n{md}" for v, md in result.previews.items())
    return dg.MaterializeResult(
        metadata={
            "views": ", ".join(result.views),
            "engine": result.engine,
            "net_revenue_gbp": dg.MetadataValue.float(h["net_revenue"]),
            "gross_sales_gbp": dg.MetadataValue.float(h["gross_sales"]),
            "returns_gbp": dg.MetadataValue.float(h["returns_value"]),
            "orders": dg.MetadataValue.int(h["orders"]),
            "customers": dg.MetadataValue.int(h["customers"]),
            "period": f"{h['first_day']} to {h['last_day']}",
            "dagster/row_count": dg.MetadataValue.int(result.row_counts.get("daily_sales", 0)),
            "row_counts": dg.MetadataValue.md("| view | rows |\n|---|---:|\n" + counts),
            "net_revenue_by_view": dg.MetadataValue.json(result.totals),
            "preview": dg.MetadataValue.md(previews),
            "create_seconds": dg.MetadataValue.float(result.create_seconds),
            "query_seconds": dg.MetadataValue.float(result.query_seconds),
            "reused_previous_output": result.reused,
        },
        data_version=dg.DataVersion(result.fingerprint[:16]),
    )


@dg.asset(
    key="sales_dashboard",
    deps=["athena_views"],
    group_name="analytics",
    pool="zone_analytics",
    kinds={"html", "python"},
    code_version="1",
    description="The sales dashboard (daily sales, monthly trend, top products, sales by country, "
    "top customers) as PNG charts and one self-contained HTML page in the lake's analytics zone.",
    owners=["team:data-platform"],
    tags=VIEW_TAGS,
)
def sales_dashboard(
    context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse
) -> dg.MaterializeResult:
    from ecommerce_platform.analytics.dashboard import build_dashboard, metadata_markdown

    result, charts = build_dashboard(warehouse, lake)
    if result.reused:
        context.log.info("inputs unchanged: the previous dashboard is reused")
    return dg.MaterializeResult(
        metadata={
            "dashboard": dg.MetadataValue.md(metadata_markdown(charts, result.kpis)),
            "uri": dg.MetadataValue.path(lake.uri(result.html_key)),
            "charts": [lake.uri(k) for k in result.chart_keys.values()],
            "net_revenue_gbp": dg.MetadataValue.float(result.kpis["net_revenue"]),
            "top_products": dg.MetadataValue.md(result.tables.get("Top 10 products", "")),
            "reused_previous_output": result.reused,
        },
        data_version=dg.DataVersion(result.fingerprint[:16]),
    )


# ------------------------------------------------------------------------------------- checks
def _num(df):  # noqa: ANN001, ANN202
    from ecommerce_platform.analytics.views import numeric

    return numeric(df).iloc[0]


@dg.asset_check(
    asset="athena_views", blocking=True,
    description="Net revenue adds up to the penny across daily_sales, daily_sales_by_country, "
    "monthly_sales, sales_by_country, popular_products and sales_kpis",
)
def views_reconcile(lake: Lake, warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.analytics.views import RECONCILED_VIEWS

    # DECIMAL sums: exact in both engines. Differences are computed in SQL, in cents.
    sums = ", ".join(f"(SELECT SUM(net_revenue) FROM {v}) AS {v}" for v in RECONCILED_VIEWS)
    row = _num(warehouse.query_df(f"SELECT {sums}, (SELECT net_revenue FROM sales_kpis) AS sales_kpis", lake))
    cents = {k: int(round(float(row[k]) * 100)) for k in (*RECONCILED_VIEWS, "sales_kpis")}
    reference = cents["sales_kpis"]
    diffs = {k: (c - reference) / 100 for k, c in cents.items() if c != reference}
    return dg.AssetCheckResult(
        passed=not diffs,
        metadata={"net_revenue_gbp": reference / 100, "differences_gbp": str(diffs or "none")},
    )


@dg.asset_check(asset="athena_views", blocking=True, description="Every analytics view has rows")
def views_not_empty(lake: Lake, warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.analytics.views import VIEWS

    counts = ", ".join(f"(SELECT COUNT(*) FROM {v}) AS {v}" for v in VIEWS)
    row = _num(warehouse.query_df(f"SELECT {counts}", lake))
    rows = {v: int(row[v]) for v in VIEWS}
    empty = [v for v, n in rows.items() if n == 0]
    return dg.AssetCheckResult(
        passed=not empty, metadata={"empty_views": ", ".join(empty) or "none", "row_counts": rows}
    )


@dg.asset_check(
    asset="athena_views", blocking=True,
    description=f"Net revenue between £{NET_REVENUE_MIN:,.0f} and £{NET_REVENUE_MAX:,.0f}, returns at most "
    f"{MAX_RETURN_SHARE:.0%} of gross sales, net <= gross, average order value between £1 and £100,000",
)
def net_revenue_plausible(lake: Lake, warehouse: Warehouse) -> dg.AssetCheckResult:
    r = _num(warehouse.query_df(
        "SELECT gross_sales, returns_value, net_revenue, avg_order_value FROM sales_kpis", lake
    ))
    gross, returns, net, aov = (float(r[c] or 0) for c in ("gross_sales", "returns_value", "net_revenue", "avg_order_value"))
    problems = []
    if not NET_REVENUE_MIN <= net <= NET_REVENUE_MAX:
        problems.append(f"net revenue £{net:,.2f} outside [£{NET_REVENUE_MIN:,.0f}, £{NET_REVENUE_MAX:,.0f}]")
    if returns < 0 or (gross > 0 and returns / gross > MAX_RETURN_SHARE):
        problems.append(f"returns £{returns:,.2f} vs gross £{gross:,.2f}")
    if net > gross:
        problems.append("net revenue above gross sales")
    if not 1 <= aov <= 100_000:
        problems.append(f"average order value £{aov:,.2f}")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"net_revenue_gbp": net, "gross_sales_gbp": gross, "returns_gbp": returns,
                  "avg_order_value_gbp": aov, "problems": "; ".join(problems) or "none"},
    )
