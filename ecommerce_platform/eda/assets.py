"""EDA layer: ``data_profile`` (ydata-profiling HTML), ``data_quality_report`` (Markdown + JSON) and
``eda_figures`` (PNG), all in the lake's reports zone and all computed from the clean zone.

Nothing depends on these assets, so they never hold up the rest of the graph. ``data_profile`` is
the slow one (tens of seconds): it carries the tag ``eda/heavy=true`` so it can be left out
(``dagster asset materialize --select 'not tag:eda/heavy=true'``) and has its own job
``eda_profile_job``; ``eda_reports_job`` builds the two fast reports.
"""


import dagster as dg

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

PROFILE_CODE_VERSION = "1"
QUALITY_CODE_VERSION = "1"
FIGURES_CODE_VERSION = "1"
COMMON = {"group_name": "eda", "pool": "zone_reports", "owners": ["team:data-platform"], "deps": ["clean_parquet"]}


def _reused(context: dg.AssetExecutionContext, name: str) -> None:
    context.log.info(f"{name}: the clean zone, SQL and code are unchanged since the last run: report reused")


@dg.asset(
    key="data_profile",
    kinds={"python", "html"},
    code_version=PROFILE_CODE_VERSION,
    description="ydata-profiling report of the clean zone side by side with the raw input (bounded "
    "samples taken in SQL), one self-contained HTML file at reports/data_profile.html.",
    tags={"layer": "eda", "eda/heavy": "true"},
    **COMMON,
)
def data_profile(context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    from dataclasses import asdict

    from ecommerce_platform.eda import manifest
    from ecommerce_platform.eda.profile import DEFAULT_SAMPLE_ROWS, PROFILE_KEY, ProfileResult, build_profile

    fp = manifest.fingerprint(lake, "data_profile", PROFILE_CODE_VERSION, sample_rows=DEFAULT_SAMPLE_ROWS)
    summary = manifest.reusable(lake, "data_profile", fp)
    reused = summary is not None
    if reused:
        _reused(context, "data_profile")
        result = ProfileResult(**summary)
    else:
        result = build_profile(warehouse, lake, DEFAULT_SAMPLE_ROWS)
        manifest.save(lake, "data_profile", fp, [PROFILE_KEY], asdict(result))
        context.log.info(f"profile built in {result.seconds.get('total')} s ({result.seconds})")
    alerts = "\n".join(f"- {a}" for a in result.alerts) or "- (none)"
    raw_alerts = "\n".join(f"- {a}" for a in result.raw_alerts) or "- (none)"
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.path(lake.uri(result.key)),
            "title": result.title,
            "sampled": result.sampled,
            "clean_rows": dg.MetadataValue.int(result.clean_rows),
            "clean_rows_profiled": dg.MetadataValue.int(result.clean_sampled),
            "raw_rows": dg.MetadataValue.int(result.raw_rows),
            "raw_rows_profiled": dg.MetadataValue.int(result.raw_sampled),
            "alerts": dg.MetadataValue.md(f"**Clean zone**\n\n{alerts}\n\n**Raw input (as landed)**\n\n{raw_alerts}"),
            "alert_count": dg.MetadataValue.int(len(result.alerts)),
            "size_bytes": dg.MetadataValue.int(result.size_bytes),
            "build_seconds": dg.MetadataValue.float(float(result.seconds.get("total", 0.0))),
            "reused_previous_output": reused,
        },
        data_version=dg.DataVersion(fp[:16]),
    )


@dg.asset(
    key="data_quality_report",
    kinds={"duckdb", "sql", "markdown"},
    code_version=QUALITY_CODE_VERSION,
    description="What the cleaning did, in numbers and words (duplicates, quarantine, cancellations, guests, "
    "non-product lines, outliers, by month): reports/data_quality.md and .json.",
    tags={"layer": "eda"},
    **COMMON,
)
def data_quality_report(context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    import json

    from ecommerce_platform.eda import manifest
    from ecommerce_platform.eda.quality import JSON_KEY, MARKDOWN_KEY, build_quality, write_quality

    fp = manifest.fingerprint(lake, "data_quality_report", QUALITY_CODE_VERSION)
    reused = manifest.reusable(lake, "data_quality_report", fp) is not None
    if reused:
        _reused(context, "data_quality_report")
        markdown, data = lake.get_text(MARKDOWN_KEY), json.loads(lake.get_text(JSON_KEY))
    else:
        report = build_quality(warehouse, lake)
        keys = write_quality(lake, report)
        manifest.save(lake, "data_quality_report", fp, keys, {})
        markdown, data = report.markdown, report.data
    c, o = data["cleaning"], data["outliers"]
    return dg.MaterializeResult(
        metadata={
            "report": dg.MetadataValue.md(markdown),
            "markdown_uri": dg.MetadataValue.path(lake.uri(MARKDOWN_KEY)),
            "json_uri": dg.MetadataValue.path(lake.uri(JSON_KEY)),
            "rows_in": dg.MetadataValue.int(c["rows_in"]),
            "rows_clean": dg.MetadataValue.int(c["rows_clean"]),
            "rows_duplicate": dg.MetadataValue.int(c["rows_duplicate"]),
            "rows_quarantined": dg.MetadataValue.int(c["rows_quarantined"]),
            "cancelled_invoices": dg.MetadataValue.int(data["totals"]["cancelled_invoices"]),
            "guest_lines": dg.MetadataValue.int(data["lines"]["guest_lines"]),
            "non_product_lines": dg.MetadataValue.int(data["lines"]["non_product_lines"]),
            "quantity_outlier_lines": dg.MetadataValue.int(o["quantity"]["lines_outside"]),
            "price_outlier_lines": dg.MetadataValue.int(o["unit_price"]["lines_outside"]),
            "balanced": bool(c["balanced"]),
            "reused_previous_output": reused,
        },
        data_version=dg.DataVersion(fp[:16]),
    )


@dg.asset(
    key="eda_figures",
    kinds={"duckdb", "python", "matplotlib"},
    code_version=FIGURES_CODE_VERSION,
    description="EDA figures (customer spend vs orders, basket size and recency, feature correlations, "
    "quantity / activity / item-frequency distributions, sales over time, top customers and products) "
    "as PNG in reports/figures/.",
    tags={"layer": "eda"},
    **COMMON,
)
def eda_figures(context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.eda import manifest
    from ecommerce_platform.eda.figures import (
        FIGURES,
        FIGURES_PREFIX,
        build_figures,
        load_data,
        markdown_image,
        write_figures,
    )

    fp = manifest.fingerprint(lake, "eda_figures", FIGURES_CODE_VERSION)
    summary = manifest.reusable(lake, "eda_figures", fp)
    reused = summary is not None
    if reused:
        _reused(context, "eda_figures")
        keys = summary["keys"]
        figures = {k.rsplit("/", 1)[1][:-4]: lake.get_bytes(k) for k in keys}
        customers = summary["customers"]
    else:
        data = load_data(warehouse, lake)
        built = build_figures(data)
        keys = write_figures(lake, built)
        figures = {name: png for name, (_title, png) in built.items()}
        customers = len(data.customers)
        manifest.save(lake, "eda_figures", fp, keys, {"keys": keys, "customers": customers})
    metadata: dict = {
        "figures_uri": dg.MetadataValue.path(lake.uri(FIGURES_PREFIX)),
        "figure_count": dg.MetadataValue.int(len(figures)),
        "customers_plotted": dg.MetadataValue.int(customers),
        "reused_previous_output": reused,
    }
    for name, png in figures.items():
        metadata[f"figure/{name}"] = dg.MetadataValue.md(markdown_image(FIGURES.get(name, name), png))
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(fp[:16]))


eda_profile_job = dg.define_asset_job(
    "eda_profile_job",
    selection=dg.AssetSelection.assets("data_profile"),
    description="The profiling report alone (slow: tens of seconds); kept apart from the fast reports.",
    run_tags={"ecommerce/writes": "lake", "eda/heavy": "true"},
)
eda_reports_job = dg.define_asset_job(
    "eda_reports_job",
    selection=dg.AssetSelection.assets("data_quality_report", "eda_figures"),
    description="The fast EDA reports: data quality and figures.",
    run_tags={"ecommerce/writes": "lake"},
)

JOBS = [eda_profile_job, eda_reports_job]
