"""``make run`` / ``ecommerce materialize``: the whole graph (or the part of it that a selection names)
rebuilt from one command, as Dagster runs on the instance of ``$DAGSTER_HOME`` (they show in the UI).

A Dagster run targets one partitions definition, and the graph has three (a file, an arrival day, an
invoice month), so one command makes up to three runs, in order:
  1. ``raw_s3`` for every source file not landed yet (one run over their partitions);
  2. ``raw_stream`` for today when records wait in the embedded stream;
  3. every invoice month of the clean zone and everything downstream of it, in one run: one engine pass
     over the months (single-run backfill policy), then the views, features, models, index and reports.
What is up to date is reused (recompute.py); ``force`` rebuilds everything selected.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from ecommerce_platform.partitions import INVOICE_MONTHS, RAW_BATCHES
from ecommerce_platform.recompute import FORCE_TAG

REBUILD_JOB = "rebuild_from_clean"


def _range_tags(keys: list[str]) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}


def rebuild(instance: dg.DagsterInstance, defs: dg.Definitions | None = None, select: str = "*",
            force: bool = False, log: Callable[[str], None] = print) -> list[dg.ExecuteInProcessResult]:
    """Materialize the selection (asset selection syntax) with as few runs as the partitions allow.
    Raises dg.DagsterExecutionStepExecutionError-like failures as the runs do; returns their results."""
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.ingestion.raw import resolve_sources

    if defs is None:
        from ecommerce_platform.definitions import build_definitions

        defs = build_definitions()
    graph = defs.resolve_asset_graph()
    wanted = set(dg.AssetSelection.from_string(select).required_multi_asset_neighbors().resolve(graph)) \
        if select != "*" else set(graph.materializable_asset_keys)
    tags = {FORCE_TAG: "true"} if force else {}
    results = []

    if dg.AssetKey("raw_s3") in wanted:
        keys = [s.partition_key for s in resolve_sources(load_settings())]
        known = set(instance.get_dynamic_partitions(RAW_BATCHES.name))
        new = [k for k in keys if k not in known]
        if new:
            instance.add_dynamic_partitions(RAW_BATCHES.name, new)
        done = instance.get_materialized_partitions(dg.AssetKey("raw_s3"))
        todo = [k for k in instance.get_dynamic_partitions(RAW_BATCHES.name) if k in keys and (k not in done or force)]
        if todo:
            log(f"landing {len(todo)} source file(s): {', '.join(todo)}")
            job = defs.resolve_job_def("raw_s3_job")
            for start, end in _contiguous(instance.get_dynamic_partitions(RAW_BATCHES.name), set(todo)):
                results.append(_run(job, instance, {**tags, **_range_tags([start, end])}))

    if dg.AssetKey("raw_stream") in wanted:
        import datetime as dt

        from ecommerce_platform.ingestion.landing import stream_lag
        from ecommerce_platform.ingestion.stream_copy import stale_days
        from ecommerce_platform.partitions import STREAM_DAYS

        from ecommerce_platform.resources import build_resources

        plain = build_resources()  # the definitions' resources name their environment variables
        stream, lake = plain["stream"], plain["lake"]
        job = defs.resolve_job_def("raw_stream_job")
        if stream.lands_itself and stream_lag(stream):
            today = dt.datetime.now(dt.timezone.utc).date().isoformat()
            log(f"landing the stream backlog (partition {today})")
            results.append(_run(job, instance, {**tags, "dagster/partition": today}))
        elif not stream.lands_itself:  # Firehose landed the records: copy the days it changed
            valid = set(STREAM_DAYS.get_partition_keys())
            days = [d.isoformat() for d in stale_days(lake) if d.isoformat() in valid]
            if days:
                log(f"reading {len(days)} stream day(s) Firehose landed: {', '.join(days)}")
                results.append(_run(job, instance, {**tags, **_range_tags(days)}))

    job = defs.resolve_job_def(REBUILD_JOB)
    downstream = [k for k in job.asset_layer.executable_asset_keys if k in wanted]
    months = instance.get_dynamic_partitions(INVOICE_MONTHS.name)
    if downstream and months:
        log(f"rebuilding {len(months)} invoice month(s) and {len(downstream)} asset(s) downstream")
        results.append(_run(job, instance, {**tags, **_range_tags(months)}, downstream))
    elif downstream:
        log("nothing is landed yet: no invoice month to clean")
    return results


def _contiguous(order: list[str], wanted: set[str]) -> list[tuple[str, str]]:
    """Runs of consecutive keys (in the partitions' order) that are all wanted, as (first, last)."""
    out, start, prev = [], None, None
    for key in order:
        if key in wanted:
            start = start or key
            prev = key
        elif start is not None:
            out.append((start, prev))
            start = None
    if start is not None:
        out.append((start, prev))
    return out


def _run(job, instance, tags: dict, selection=None):  # noqa: ANN001, ANN202
    result = job.execute_in_process(instance=instance, tags=tags, asset_selection=selection,
                                    raise_on_error=False)
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise RuntimeError(f"run {result.run_id} of {job.name} failed: " + " | ".join(failures[-3:]))
    return result
