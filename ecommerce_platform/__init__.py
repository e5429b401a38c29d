"""The ecommerce data platform: one Dagster asset graph (see definitions.py)."""

import warnings

# Two Dagster APIs marked beta are used on purpose (the clean zone's single-run backfill policy, the raw
# zone's multi observable source asset); their notice would otherwise print on every command. Other beta or
# preview notices still show.
warnings.filterwarnings("ignore", message=r".*(Parameter `backfill_policy`|Function `multi_observable_source_asset`)")
