"""The analytics layer's definitions: the views and the dashboard follow the data (cadence arrival:
refreshed by declarative automation when the clean zone changes), and the checks that guard the views."""

import dagster as dg

from ecommerce_platform.analytics import assets
from ecommerce_platform.config import Settings
from ecommerce_platform.operations import ARRIVAL, layer


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=layer(assets.ASSETS, "analytics", ARRIVAL),
        asset_checks=assets.CHECKS,
    )
