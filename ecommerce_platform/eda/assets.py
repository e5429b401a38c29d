"""EDA layer: ``data_quality_report`` (Markdown + JSON: what the cleaning did, the lines flagged, the
clean zone's reconciliation), ``eda_figures`` (PNG) and ``data_profile`` (ydata-profiling HTML, raw
input vs clean zone), all in the lake's reports zone.

They read what the layers before publish: the clean zone (tables ``transactions`` and ``quarantine``,
and its per-month record), the table ``raw_lines`` (ingestion), and the analytics views for every
money figure. Nothing depends on these assets. ``data_profile`` is the slow one (tens of seconds): it
carries the tag ``eda/heavy=true`` so it can be left out of a selection (``not tag:eda/heavy=true``).
"""


import dagster as dg

from ecommerce_platform.operations import ENGINE_TAG, WRITER_POOL
from ecommerce_platform.recompute import code_version, config_defaults, files_exist, previous_if_fresh
from ecommerce_platform.resources.warehouse import Warehouse

PACKAGE = "ecommerce_platform.eda"
HEAVY_TAG = "eda/heavy"


class ProfileConfig(dg.Config):
    sample_rows: int = 100_000  # rows of each side profiled (taken in SQL); the report says it is a sample


def _sql(*names: str) -> list[str]:
    return [f"sql/{n}" for n in names]


QUALITY_FILES = ("quality.py", "queries.py", *_sql(
    "clean_counts.sql", "quarantine_counts.sql", "quantity_counts.sql", "price_counts.sql", "quality_by_month.sql",
    "quality_totals.sql", "sales_by_month.sql", "non_product_lines.sql", "largest_lines.sql", "extreme_lines.sql",
    "quarantine_examples.sql", "mojibake_counts.sql", "mojibake_examples.sql"))
FIGURES_FILES = ("figures.py", "queries.py", "quality.py", *_sql(
    "customer_features.sql", "product_stats.sql", "sales_by_day.sql", "quantity_counts.sql"))
PROFILE_FILES = ("profile.py", "queries.py", *_sql("profile_sample.sql", "raw_sample.sql"))


def _location(lake, key: str):  # noqa: ANN001, ANN202
    """Where a person opens an object of the lake: a path locally, a URL (s3://) in aws."""
    uri = lake.uri(key)
    return dg.MetadataValue.url(uri) if lake.is_remote else dg.MetadataValue.path(uri)


def _rules_params() -> dict:
    from ecommerce_platform.lake.rules import EXTREME_QUANTITY, EXTREME_UNIT_PRICE, MOJIBAKE_PATTERN

    return {"extreme_quantity": EXTREME_QUANTITY, "extreme_unit_price": EXTREME_UNIT_PRICE,
            "mojibake": MOJIBAKE_PATTERN}


@dg.asset(
    key="data_quality_report",
    deps=["clean_parquet", "quarantine", "daily_sales"],
    pool=WRITER_POOL,
    kinds={"sql", "markdown"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, *QUALITY_FILES, params=_rules_params()),
    description="What the cleaning did, in numbers and words: lines in, duplicates, quarantine by reason, "
    "the reconciliation per month, cancellations, guests, non-product lines, lines flagged for extreme "
    "quantities, prices or mojibake: reports/data_quality.md and .json.",
)
def data_quality_report(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.eda.quality import JSON_KEY, MARKDOWN_KEY, build_quality, summary_markdown, write_quality

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=files_exist(lake, MARKDOWN_KEY, JSON_KEY))
    if previous is not None:
        return previous
    report = build_quality(warehouse)
    write_quality(lake, report)
    data = report.data
    c, f, money = data["cleaning"], data["flags"], data["money"]
    if not c["balanced"]:
        context.log.warning("the clean zone's counts do not balance: see the report's months")
    return dg.MaterializeResult(metadata={
        "summary": dg.MetadataValue.md(summary_markdown(data)),
        "report": _location(lake, MARKDOWN_KEY),
        "report_json": _location(lake, JSON_KEY),
        "dagster/uri": _location(lake, MARKDOWN_KEY),
        "rows_in": dg.MetadataValue.int(c["rows_in"]),
        "rows_clean": dg.MetadataValue.int(c["rows_clean"]),
        "rows_duplicate": dg.MetadataValue.int(c["rows_duplicate"]),
        "rows_quarantined": dg.MetadataValue.int(c["rows_quarantined"]),
        "balanced": dg.MetadataValue.bool(bool(c["balanced"])),
        "quarantine_by_reason": dg.MetadataValue.json(c["quarantine_by_reason"]),
        "months": dg.MetadataValue.int(c["months"]),
        "cancelled_invoices": dg.MetadataValue.int(int(data["totals"]["cancelled_invoices"] or 0)),
        "countries": dg.MetadataValue.int(int(data["totals"]["countries"] or 0)),
        "guest_lines": dg.MetadataValue.int(data["lines"]["guest_lines"]),
        "unspecified_country_lines": dg.MetadataValue.int(data["lines"]["unspecified_country_lines"]),
        "non_product_lines": dg.MetadataValue.int(data["lines"]["non_product_lines"]),
        "extreme_quantity_lines": dg.MetadataValue.int(f["extreme_quantity"]["lines"]),
        "extreme_unit_price_lines": dg.MetadataValue.int(f["extreme_unit_price"]["lines"]),
        "mojibake_lines": dg.MetadataValue.int(f["mojibake"]["lines"]),
        "mojibake_by_column": dg.MetadataValue.json(f["mojibake"]["lines_by_column"]),
        "quantity_outlier_lines": dg.MetadataValue.int(data["outliers"]["quantity"]["lines_outside"]),
        "price_outlier_lines": dg.MetadataValue.int(data["outliers"]["unit_price"]["lines_outside"]),
        "net_revenue_gbp": dg.MetadataValue.float(money["net_revenue"]),
        "gross_sales_gbp": dg.MetadataValue.float(money["gross_sales"]),
        "returns_gbp": dg.MetadataValue.float(money["returns_value"]),
    })


@dg.asset(
    key="eda_figures",
    deps=["sale_lines", "popular_products", "daily_sales", "clean_parquet"],
    pool=WRITER_POOL,
    kinds={"sql", "matplotlib"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, *FIGURES_FILES),
    description="EDA figures (customer spend vs orders, basket size and recency, feature correlations, "
    "quantity / activity / item-frequency distributions, sales over time, top customers and products) "
    "as PNG in reports/figures/.",
)
def eda_figures(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.eda.figures import FIGURES, FIGURES_PREFIX, SALES_SERIES_KEY, build_figures, load_data, write_figures

    lake = warehouse.lake

    def previous_figures_exist() -> bool:
        event = context.instance.get_latest_materialization_event(context.asset_key)
        drawn = [k.split("/", 1)[1] for k in event.asset_materialization.metadata if k.startswith("figure/")]
        return files_exist(lake, SALES_SERIES_KEY, *(f"{FIGURES_PREFIX}/{n}.png" for n in drawn))()

    previous = previous_if_fresh(context, exists=previous_figures_exist)
    if previous is not None:
        return previous
    data = load_data(warehouse)
    built = build_figures(data)
    write_figures(lake, built, data.daily)
    missing = [name for name in FIGURES if name not in built]
    if missing:
        context.log.warning(f"no data for {len(missing)} figure(s): {', '.join(missing)}")
    metadata: dict = {
        "figures": _location(lake, FIGURES_PREFIX),
        "dagster/uri": _location(lake, FIGURES_PREFIX),
        "figure_count": dg.MetadataValue.int(len(built)),
        "figures_without_data": dg.MetadataValue.json(missing),
        "customers_plotted": dg.MetadataValue.int(len(data.customers)),
        "products_plotted": dg.MetadataValue.int(len(data.products)),
        "sales_series": _location(lake, SALES_SERIES_KEY),
    }
    for name in built:
        metadata[f"figure/{name}"] = _location(lake, f"{FIGURES_PREFIX}/{name}.png")
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    key="data_profile",
    deps=["clean_parquet", "raw_lines"],
    pool=WRITER_POOL,
    kinds={"sql", "html"},
    tags={ENGINE_TAG: "warehouse", HEAVY_TAG: "true"},
    code_version=code_version(PACKAGE, *PROFILE_FILES, params=config_defaults(ProfileConfig)),
    description="ydata-profiling report of the raw input (table raw_lines) side by side with the clean "
    "zone, on samples taken in SQL: one self-contained HTML file, reports/data_profile.html.",
)
def data_profile(context: dg.AssetExecutionContext, config: ProfileConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.eda.profile import PROFILE_KEY, SUMMARY_KEY, build_profile

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=files_exist(lake, PROFILE_KEY, SUMMARY_KEY))
    if previous is not None:
        sample = previous.metadata.get("sample_rows")
        if sample is not None and getattr(sample, "value", sample) == config.sample_rows:
            return previous
        context.log.info(f"data_profile: asked for samples of {config.sample_rows:,} rows: rebuilding")
    result = build_profile(warehouse, config.sample_rows)
    context.log.info(f"profile built in {result.seconds.get('total')} s ({result.seconds})")
    return dg.MaterializeResult(metadata={
        "report": _location(lake, result.key),
        "dagster/uri": _location(lake, result.key),
        "summary": _location(lake, SUMMARY_KEY),
        "title": result.title,
        "sampled": dg.MetadataValue.bool(result.sampled),
        "sample_rows": dg.MetadataValue.int(config.sample_rows),
        "clean_rows": dg.MetadataValue.int(result.clean_rows),
        "clean_rows_profiled": dg.MetadataValue.int(result.clean_sampled),
        "raw_rows": dg.MetadataValue.int(result.raw_rows),
        "raw_rows_profiled": dg.MetadataValue.int(result.raw_sampled),
        "clean_alerts": dg.MetadataValue.json(result.alerts[:50]),
        "raw_alerts": dg.MetadataValue.json(result.raw_alerts[:50]),
        "alert_count": dg.MetadataValue.int(len(result.alerts)),
        "size_bytes": dg.MetadataValue.int(result.size_bytes),
        "build_seconds": dg.MetadataValue.float(float(result.seconds.get("total", 0.0))),
    })


ARRIVAL_ASSETS = [data_quality_report]
WEEKLY_ASSETS = [eda_figures, data_profile]
