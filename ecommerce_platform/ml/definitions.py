"""The ml layer's definitions: feature tables, models (classifier, segments with the view
vip_transactions, the recommender als_model, the sales forecast with its table sales_forecast) and the
checks that gate what is served, all on the weekly cadence.
The layer's runs are the jobs ``ml_job`` (group) and ``weekly_job`` (cadence tag) of operations.py."""

import dagster as dg

from ecommerce_platform.config import Settings
from ecommerce_platform.ml import assets
from ecommerce_platform.operations import WEEKLY, layer


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=layer(assets.ASSETS, "ml", WEEKLY),
        asset_checks=assets.CHECKS,
    )
