"""The lake layer's definitions: the clean zone (refreshed month by month when landings change its
months) and its blocking checks."""

import dagster as dg

from ecommerce_platform.config import Settings
from ecommerce_platform.lake import assets
from ecommerce_platform.operations import ARRIVAL, layer


def definitions(settings: Settings) -> dg.Definitions:
    lake_job = dg.define_asset_job("lake_job", selection=dg.AssetSelection.groups("lake"),
                                   description="Clean the invoice months (one engine pass per run).")
    return dg.Definitions(
        assets=layer([assets.clean_zone], "lake", ARRIVAL),
        asset_checks=assets.CHECKS,
        jobs=[lake_job],
    )
