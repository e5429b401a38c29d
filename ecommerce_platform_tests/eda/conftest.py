"""The EDA assets materialized once on the session's clean lake (the real file)."""

import time

import pytest


@pytest.fixture(scope="session")
def eda_lake(clean_lake):
    """(data_dir, resources, result, seconds): the three EDA assets materialized on the real file."""
    import dagster as dg

    from ecommerce_platform.eda.assets import data_profile, data_quality_report, eda_figures
    from ecommerce_platform_tests.conftest import platform_environment

    data_dir, resources = clean_lake
    with platform_environment(data_dir):
        t0 = time.perf_counter()
        result = dg.materialize([data_quality_report, eda_figures, data_profile], resources=resources)
        seconds = time.perf_counter() - t0
    assert result.success
    return data_dir, resources, result, seconds
