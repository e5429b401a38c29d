"""The EDA layer's definitions: the data quality report follows the data (cadence arrival, refreshed
with the views), the figures and the heavy profile are weekly; two jobs select them by tag."""

import dagster as dg

from ecommerce_platform.config import Settings
from ecommerce_platform.eda import assets
from ecommerce_platform.operations import ARRIVAL, WEEKLY, layer


def definitions(settings: Settings) -> dg.Definitions:
    heavy = dg.AssetSelection.tag(assets.HEAVY_TAG, "true")
    jobs = [
        dg.define_asset_job(
            "eda_reports_job", selection=dg.AssetSelection.groups("eda") - heavy,
            description="The fast EDA reports: data quality and figures."),
        dg.define_asset_job(
            "eda_profile_job", selection=heavy,
            description="The profiling report alone (slow: tens of seconds); kept apart from the fast reports."),
    ]
    return dg.Definitions(
        assets=[*layer(assets.ARRIVAL_ASSETS, "eda", ARRIVAL), *layer(assets.WEEKLY_ASSETS, "eda", WEEKLY)],
        jobs=jobs,
    )
