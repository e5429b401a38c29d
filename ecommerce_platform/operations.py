"""How the platform runs itself, declared once and applied to each layer's assets by its definitions.

Cadences (the tag ``ecommerce/cadence``, set once per layer):
- ``arrival``: the lake and analytics follow the data. New files and stream records are landed by the
  ingestion sensors (one run per file, one per stream backlog); a landing reports which invoice months
  changed (``raw_months``); those clean months, then the views, the dashboard and the quality report,
  are refreshed by declarative automation (``eager``).
- ``weekly``: feature tables, models, product knowledge, the FAISS index and the heavy EDA reports are
  rebuilt on their weekly cron (``on_cron``, Mondays 03:00 UTC), or when a user asks.
Exactly one mechanism reacts to each change: sensors for arrivals, automation conditions for everything
downstream of them. Nothing runs until a user turns the sensors and ``ecommerce_automation`` on; when
turned on, nothing that is up to date is rebuilt.

Every asset that writes the lake or the warehouse catalog runs in the pool ``lake_writer`` (limit 1 in
the instance's ``dagster.yaml``): whatever launched them (UI, CLI, sensor, automation, backfill), two such
steps never run at once. Reads (checks, the server) take no lock.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

WRITER_POOL = "lake_writer"
OWNERS = ["team:data-platform"]
CADENCE_TAG = "ecommerce/cadence"
LAYER_TAG = "ecommerce/layer"
ENGINE_TAG = "ecommerce/engine"  # "warehouse": the asset runs SQL on the warehouse (its kind says which)
ARRIVAL = "arrival"
WEEKLY = "weekly"
WEEKLY_CRON = "0 3 * * 1"
LAYERS = ("ingestion", "lake", "analytics", "ml", "rag", "eda")

FRESHNESS = {
    ARRIVAL: dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=26)),
    WEEKLY: dg.FreshnessPolicy.time_window(fail_window=dt.timedelta(days=15), warn_window=dt.timedelta(days=8)),
}


def automation_for(cadence: str) -> dg.AutomationCondition | None:
    if cadence == ARRIVAL:
        return dg.AutomationCondition.eager()
    if cadence == WEEKLY:
        return dg.AutomationCondition.on_cron(WEEKLY_CRON, "UTC")
    return None


def layer(assets: list, layer_name: str, cadence: str | None, automate: bool = True) -> list:
    """Declare a layer's operations on its assets: group, owners, layer and cadence tags, the automation
    condition and freshness policy of the cadence. ``automate=False``: the layer's runs are requested
    by sensors (ingestion), not by conditions."""

    def update(spec: dg.AssetSpec) -> dg.AssetSpec:
        tags = {**spec.tags, LAYER_TAG: layer_name}
        if cadence:
            tags[CADENCE_TAG] = cadence
        kwargs: dict = {"group_name": layer_name, "tags": tags, "owners": spec.owners or OWNERS}
        if automate and cadence and spec.automation_condition is None:
            kwargs["automation_condition"] = automation_for(cadence)
        if cadence in FRESHNESS and spec.freshness_policy is None:
            kwargs["freshness_policy"] = FRESHNESS[cadence]
        return spec.replace_attributes(**kwargs)

    return list(dg.map_asset_specs(update, assets))


def with_engine_kinds(assets: list, engine: str) -> list:
    """Assets that run SQL on the warehouse show the engine that really runs it (duckdb or athena)."""

    def update(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.tags.get(ENGINE_TAG) != "warehouse":
            return spec
        kinds = set(spec.kinds or ()) - {"duckdb", "athena"}
        return spec.replace_attributes(kinds=kinds | {engine})

    return list(dg.map_asset_specs(update, assets))


def layer_jobs() -> list:
    """One job per layer, and one per cadence; every one selects by group or tag, never by names."""
    jobs = [
        dg.define_asset_job(f"{name}_job", selection=dg.AssetSelection.groups(name),
                            description=f"Materialize the {name} layer's assets.")
        for name in LAYERS if name != "ingestion" and name != "lake"
    ]
    jobs.append(dg.define_asset_job(
        "weekly_job", selection=dg.AssetSelection.tag(CADENCE_TAG, WEEKLY),
        description="The weekly cadence: feature tables, models, product knowledge, FAISS index, heavy reports."))
    return jobs


def automation_sensor(interval_seconds: int = 30) -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "ecommerce_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=interval_seconds,
        description="Declarative automation: clean months when landings change them, then the views, "
        "dashboard and quality report (eager); models, index and heavy reports on their weekly cron.",
    )
