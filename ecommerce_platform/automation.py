"""How the platform runs itself: jobs per layer, schedules, declarative automation, freshness,
retries and run tags. Applied to every layer's assets in ``definitions.py``.

What runs on its own when a user first starts `dagster dev`: nothing. Every schedule and sensor
starts STOPPED; the README says which to turn on. Once on:
- ``daily_refresh`` (02:00 UTC): land new batch files and stream records, rebuild the clean zone,
  the analytics views and dashboard, the feature tables and the data-quality report;
- ``weekly_retrain`` (Mondays 03:00 UTC): retrain the models, rebuild the product knowledge and the
  FAISS index, refresh the profiling report and figures;
- ``ecommerce_automation`` (declarative automation): an asset whose parents were updated is
  refreshed (eager) — except models, index and profile, which follow their weekly cron.
"""

import datetime as dt

import dagster as dg

LAYERS = ("ingestion", "lake", "analytics", "ml", "rag", "eda")
# The heavy or slow-changing assets: retrained weekly, not on every upstream change.
WEEKLY_ASSETS = ("classifier", "segments", "als_model", "faiss_index", "data_profile", "eda_figures")
# Assets people read (dashboards, views, models): a freshness policy says when they are stale.
DAILY_FRESH = ("clean_parquet", "athena_views", "sales_dashboard", "data_quality_report")
WEEKLY_FRESH = ("classifier", "segments", "als_model", "faiss_index")

WEEKLY_CRON = "0 3 * * 1"
DAILY_CRON = "0 2 * * *"
RUN_TAGS = {"ecommerce/writes": "lake"}  # dagster.yaml limits runs with this tag to one at a time

NETWORK_RETRY = dg.RetryPolicy(
    max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)


def _automation_for(key: str) -> dg.AutomationCondition:
    if key in WEEKLY_ASSETS:
        return dg.AutomationCondition.on_cron(WEEKLY_CRON)
    return dg.AutomationCondition.eager()


def _freshness_for(key: str):
    if key in DAILY_FRESH:
        return dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=26)
        )
    if key in WEEKLY_FRESH:
        return dg.FreshnessPolicy.time_window(
            fail_window=dt.timedelta(days=15), warn_window=dt.timedelta(days=8)
        )
    return None


def apply_operations(assets: list) -> list:
    """Give every asset its automation condition and freshness policy (one place, not 20 decorators)."""

    def update(spec: dg.AssetSpec) -> dg.AssetSpec:
        key = spec.key.to_user_string()
        kwargs = {"automation_condition": spec.automation_condition or _automation_for(key)}
        freshness = _freshness_for(key)
        if freshness is not None and spec.freshness_policy is None:
            kwargs["freshness_policy"] = freshness
        if not spec.owners:
            kwargs["owners"] = ["team:data-platform"]
        return spec.replace_attributes(**kwargs)

    return list(dg.map_asset_specs(update, assets))


def build_jobs(asset_keys: set[str]) -> list:
    def present(*keys: str) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*[k for k in keys if k in asset_keys])

    jobs = [
        dg.define_asset_job(
            f"{layer}_job",
            selection=dg.AssetSelection.groups(layer),
            description=f"Materialize the {layer} layer's assets.",
            run_tags={**RUN_TAGS, "ecommerce/layer": layer},
            op_retry_policy=NETWORK_RETRY,
        )
        for layer in LAYERS
    ]
    jobs.append(
        dg.define_asset_job(
            "refresh_lake_and_analytics",
            selection=(
                dg.AssetSelection.groups("ingestion", "lake", "analytics")
                | present("data_quality_report", "invoice_features", "customer_features",
                          "user_item_interactions", "product_knowledge")
            ),
            description="Daily: land new data, rebuild the clean zone, the views, the dashboard, the features.",
            run_tags={**RUN_TAGS, "ecommerce/cadence": "daily"},
            op_retry_policy=NETWORK_RETRY,
        )
    )
    jobs.append(
        dg.define_asset_job(
            "retrain_models",
            selection=present(*WEEKLY_ASSETS),
            description="Weekly: retrain the classifier, segments and recommender; rebuild the FAISS index and EDA reports.",
            run_tags={**RUN_TAGS, "ecommerce/cadence": "weekly"},
            op_retry_policy=NETWORK_RETRY,
        )
    )
    return jobs


def build_schedules() -> list:
    return [
        dg.ScheduleDefinition(
            name="daily_refresh",
            cron_schedule=DAILY_CRON,
            job_name="refresh_lake_and_analytics",
            execution_timezone="UTC",
            description="02:00 UTC every day: land, clean, views, dashboard, features, quality report.",
            default_status=dg.DefaultScheduleStatus.STOPPED,
        ),
        dg.ScheduleDefinition(
            name="weekly_retrain",
            cron_schedule=WEEKLY_CRON,
            job_name="retrain_models",
            execution_timezone="UTC",
            description="03:00 UTC on Mondays: retrain models, rebuild the FAISS index and EDA reports.",
            default_status=dg.DefaultScheduleStatus.STOPPED,
        ),
    ]


def build_automation_sensor() -> dg.AutomationConditionSensorDefinition:
    return dg.AutomationConditionSensorDefinition(
        "ecommerce_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=60,
        run_tags=RUN_TAGS,
        description="Declarative automation: refresh assets when their parents update (eager), "
        "models and index on their weekly cron.",
    )
