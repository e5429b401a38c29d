"""Analytics layer: one asset per analytics view (``sale_lines`` on the clean table, the eight others
on ``sale_lines``), created in the warehouse by one multi-asset that can run any subset of them,
``sales_dashboard`` (PNG charts + one HTML page in the lake's analytics zone), and the checks that
guard the views (blocking: a failing one stops the dashboard and every other consumer in the run)."""


import dagster as dg

from ecommerce_platform.analytics.dashboard import VIEWS_READ
from ecommerce_platform.analytics.views import RECONCILED_VIEWS, VIEWS, view_deps, view_description
from ecommerce_platform.operations import ENGINE_TAG, WRITER_POOL
from ecommerce_platform.recompute import code_version, files_exist, previous_if_fresh
from ecommerce_platform.resources.warehouse import Warehouse

PACKAGE = "ecommerce_platform.analytics"
# Plausible range of total net revenue (GBP). The reference data set has ~9.8m; a run far outside
# this range means a broken sales definition (e.g. cancellations summed in) or a truncated load.
NET_REVENUE_MIN = 1.0
NET_REVENUE_MAX = 1e9
MAX_RETURN_SHARE = 0.5  # returns above half of gross sales is not a plausible business
AOV_MIN, AOV_MAX = 1.0, 100_000.0
DASHBOARD_CODE = ("dashboard.py", "views.py")


def view_code_version(name: str) -> str:
    """The view's SQL file and the Python that creates and describes it."""
    return code_version(PACKAGE, "views.py", "lineage.py", "metadata.py", f"sql/{name}.sql")


def _view_spec(name: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        name,
        deps=view_deps(name),
        description=f"View `{name}`: {view_description(name)}",
        kinds={"sql", "view"},
        code_version=view_code_version(name),
        tags={ENGINE_TAG: "warehouse"},
        metadata={"dagster/table_name": name},
    )


@dg.multi_asset(
    specs=[_view_spec(v) for v in VIEWS],
    can_subset=True,
    pool=WRITER_POOL,
    name="analytics_views",
    description="The analytics views, each defined by its SQL file and created in the warehouse "
    "(DuckDB views in the published catalog locally, Athena views over Glue in aws).",
)
def analytics_views(context: dg.AssetExecutionContext, warehouse: Warehouse):
    from ecommerce_platform.analytics.metadata import view_metadata
    from ecommerce_platform.analytics.views import create_view

    for name in VIEWS:  # in creation order: a view after what it reads
        key = dg.AssetKey(name)
        if key not in context.selected_asset_keys:
            continue
        previous = previous_if_fresh(context, key, exists=lambda n=name: warehouse.queryable(n))
        if previous is not None:
            yield previous
            continue
        create_view(warehouse, name)
        yield dg.MaterializeResult(asset_key=key, metadata=view_metadata(warehouse, name))


@dg.asset(
    key="sales_dashboard",
    deps=list(VIEWS_READ),
    pool=WRITER_POOL,
    kinds={"html", "matplotlib"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, *DASHBOARD_CODE),
    description="The sales dashboard (daily sales, monthly trend, top products, sales by country, top "
    "customers): PNG charts and one HTML page referring to them, in the lake's analytics/dashboard/.",
)
def sales_dashboard(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.analytics.dashboard import CHARTS, build_dashboard, output_keys
    from ecommerce_platform.analytics.metadata import location as _location

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=files_exist(lake, *output_keys()))
    if previous is not None:
        return previous
    result = build_dashboard(warehouse)
    k = result.kpis
    top = result.top_products
    metadata: dict = {
        "dashboard": _location(lake, result.html_key),
        "dagster/uri": _location(lake, result.html_key),
        **{f"chart/{name}": _location(lake, key) for name, key in result.chart_keys.items()},
        "net_revenue_gbp": dg.MetadataValue.float(k["net_revenue"]),
        "gross_sales_gbp": dg.MetadataValue.float(k["gross_sales"]),
        "returns_gbp": dg.MetadataValue.float(k["returns_value"]),
        "avg_order_value_gbp": dg.MetadataValue.float(k["avg_order_value"]),
        "orders": dg.MetadataValue.int(k["orders"]),
        "customers": dg.MetadataValue.int(k["customers"]),
        "countries": dg.MetadataValue.int(k["countries"]),
        "unspecified_country_net_revenue_gbp": dg.MetadataValue.float(result.unspecified_country_net),
        "period": f"{k['first_day']} to {k['last_day']}",
        "charts": dg.MetadataValue.int(len(CHARTS)),
    }
    if top:
        metadata["top_products"] = dg.MetadataValue.table(
            records=[dg.TableRecord(r) for r in top],
            schema=dg.TableSchema(columns=[dg.TableColumn("revenue_rank", "int"), dg.TableColumn("stock_code"),
                                           dg.TableColumn("description"), dg.TableColumn("units_sold", "int"),
                                           dg.TableColumn("net_revenue", "float")]))
    return dg.MaterializeResult(metadata=metadata)


# ------------------------------------------------------------------------------------------ checks
# Each check recounts from the views as the warehouse answers them now, not from what the asset reported.
@dg.asset_check(
    asset="sales_kpis", blocking=True,
    additional_deps=list(RECONCILED_VIEWS),
    description="Net revenue adds up to the penny across daily_sales, daily_sales_by_country, monthly_sales, "
    "popular_products and sales_by_country, and equals sales_kpis' total",
)
def views_reconcile(warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.analytics.views import net_revenue_cents

    cents = net_revenue_cents(warehouse)
    reference = cents["sales_kpis"]
    diffs = {k: round((c - reference) / 100, 2) for k, c in cents.items() if c != reference}
    return dg.AssetCheckResult(
        passed=not diffs,
        metadata={"net_revenue_gbp": dg.MetadataValue.float(reference / 100),
                  "net_revenue_gbp_by_view": dg.MetadataValue.json({k: c / 100 for k, c in cents.items()}),
                  "differences_gbp": dg.MetadataValue.json(diffs)},
    )


# sales_kpis always has its one row (an aggregate): it is empty when that row holds no sale
NOT_EMPTY_WHERE = {"sales_kpis": "orders > 0"}


def _not_empty_check(view: str) -> dg.AssetChecksDefinition:
    where = NOT_EMPTY_WHERE.get(view)

    @dg.asset_check(asset=view, name=f"{view}_not_empty", blocking=True,
                    description=f"The view {view} has rows" + (f" (with {where})" if where else ""))
    def _check(warehouse: Warehouse) -> dg.AssetCheckResult:
        sql = f"SELECT COUNT(*) AS n FROM {view}" + (f" WHERE {where}" if where else "")
        rows = int(warehouse.query_df(sql).iloc[0]["n"])
        return dg.AssetCheckResult(passed=rows > 0, metadata={"rows": dg.MetadataValue.int(rows)})

    return _check


NOT_EMPTY_CHECKS = [_not_empty_check(v) for v in VIEWS]


@dg.asset_check(
    asset="sales_kpis", blocking=True,
    description=f"Net revenue between £{NET_REVENUE_MIN:,.0f} and £{NET_REVENUE_MAX:,.0f}, returns at most "
    f"{MAX_RETURN_SHARE:.0%} of gross sales, net <= gross, average order value between £{AOV_MIN:,.0f} and "
    f"£{AOV_MAX:,.0f}",
)
def net_revenue_plausible(warehouse: Warehouse) -> dg.AssetCheckResult:
    r = warehouse.query_df("SELECT gross_sales, returns_value, net_revenue, avg_order_value FROM sales_kpis").iloc[0]

    def num(col: str) -> float:
        value = r[col]
        return 0.0 if value is None or value != value else float(value)

    gross, returns, net, aov = (num(c) for c in ("gross_sales", "returns_value", "net_revenue", "avg_order_value"))
    problems = []
    if not NET_REVENUE_MIN <= net <= NET_REVENUE_MAX:
        problems.append(f"net revenue £{net:,.2f} outside [£{NET_REVENUE_MIN:,.0f}, £{NET_REVENUE_MAX:,.0f}]")
    if returns < 0 or (gross > 0 and returns / gross > MAX_RETURN_SHARE):
        problems.append(f"returns £{returns:,.2f} are more than {MAX_RETURN_SHARE:.0%} of gross sales £{gross:,.2f}")
    if net > gross:
        problems.append("net revenue above gross sales")
    if not AOV_MIN <= aov <= AOV_MAX:
        problems.append(f"average order value £{aov:,.2f} outside [£{AOV_MIN:,.0f}, £{AOV_MAX:,.0f}]")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"net_revenue_gbp": round(net, 2), "gross_sales_gbp": round(gross, 2),
                  "returns_gbp": round(returns, 2), "avg_order_value_gbp": round(aov, 2),
                  "problems": "; ".join(problems) or "none"},
    )


ASSETS = [analytics_views, sales_dashboard]
CHECKS = [views_reconcile, *NOT_EMPTY_CHECKS, net_revenue_plausible]
