"""The ingestion layer's definitions: its assets (landed by sensors, never by automation conditions),
its check, its jobs and its sensors."""

import dagster as dg

from ecommerce_platform.config import Settings
from ecommerce_platform.ingestion import assets, sensors
from ecommerce_platform.operations import ARRIVAL, layer


def definitions(settings: Settings) -> dg.Definitions:
    landed = layer([assets.raw_s3, assets.raw_stream], "ingestion", ARRIVAL, automate=False)
    table = layer([assets.raw_lines], "ingestion", ARRIVAL)
    return dg.Definitions(
        assets=[*landed, *table, assets.raw_months],
        asset_checks=[assets.raw_files_readable],
        jobs=[sensors.raw_s3_job, sensors.raw_stream_job],
        sensors=[sensors.source_files_sensor, sensors.stream_landing_sensor],
    )
