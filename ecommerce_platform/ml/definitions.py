"""The ml layer's definitions (to be converted to the Dagster-native core)."""

import dagster as dg

from ecommerce_platform.config import Settings
from ecommerce_platform.ml import assets
from ecommerce_platform.operations import WEEKLY, layer


def definitions(settings: Settings) -> dg.Definitions:
    module_assets = list(dg.load_assets_from_modules([assets]))
    return dg.Definitions(
        assets=layer(module_assets, "ml", WEEKLY),
        asset_checks=list(dg.load_asset_checks_from_modules([assets])),
    )
