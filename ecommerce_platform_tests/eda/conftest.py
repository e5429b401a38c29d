"""The EDA assets materialized once on the session's clean lake (the real file), on an instance the
session keeps, with what they read: the table raw_lines (ingestion) and the views they use (analytics)."""

import time

import pytest

PROFILE_SAMPLE_ROWS = 5_000  # the asset's default is 100,000: the tests profile smaller samples (faster)
UPSTREAM = ["raw_lines", "sale_lines", "daily_sales", "monthly_sales", "popular_products", "sales_kpis"]
EDA_ASSETS = ["data_quality_report", "eda_figures", "data_profile"]


def eda_definitions():
    from ecommerce_platform.analytics.assets import analytics_views
    from ecommerce_platform.eda.assets import data_profile, data_quality_report, eda_figures
    from ecommerce_platform.ingestion.assets import raw_lines

    return [raw_lines, analytics_views, data_quality_report, eda_figures, data_profile]


def profile_config(rows: int = PROFILE_SAMPLE_ROWS) -> dict:
    return {"ops": {"data_profile": {"config": {"sample_rows": rows}}}}


@pytest.fixture(scope="session")
def eda_lake(clean_lake):
    """(data_dir, resources, result, seconds, instance): the three EDA assets (and what they read)
    materialized on the real file."""
    import dagster as dg

    from ecommerce_platform_tests.conftest import platform_environment

    data_dir, resources = clean_lake
    with dg.DagsterInstance.ephemeral() as instance:
        with platform_environment(data_dir):
            t0 = time.perf_counter()
            result = dg.materialize(eda_definitions(), resources=resources, instance=instance,
                                    selection=[*UPSTREAM, *EDA_ASSETS], run_config=profile_config())
            seconds = time.perf_counter() - t0
        assert result.success
        yield data_dir, resources, result, seconds, instance
