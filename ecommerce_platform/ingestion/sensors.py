"""Arrival drives work: the ingestion sensors (both STOPPED until a user turns them on).

``source_files_sensor``: looks at the source files (the drop folder ``data/``, or ``ECOMMERCE_SOURCE``;
the reference data set when both are empty). A file it has not seen, or a new version of it, becomes a
partition of ``raw_batches`` and gets one run of ``raw_s3``. The partitions are the sensor's memory (no
cursor): a file is landed once; an unreadable one is set aside by its run, not retried.

``stream_landing_sensor``: plays Firehose's clock. Locally, when records wait after the landing's
checkpoint, it requests one run of ``raw_stream`` for today (the run lands the whole backlog and builds
the copies of every arrival day it touched). In aws, where Firehose lands the records, it requests the
days whose objects changed since their copy was built.
"""

import hashlib
import json

import dagster as dg

from ecommerce_platform.config import load_settings

from ecommerce_platform.partitions import RAW_BATCHES, STREAM_DAYS
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.stream import Stream

raw_s3_job = dg.define_asset_job("raw_s3_job", selection=dg.AssetSelection.assets("raw_s3"),
                                 partitions_def=RAW_BATCHES,
                                 description="Land source files (one partition per file).")
raw_stream_job = dg.define_asset_job("raw_stream_job", selection=dg.AssetSelection.assets("raw_stream"),
                                     partitions_def=STREAM_DAYS,
                                     description="Land the stream (one partition per arrival day).")


INTERVAL = load_settings().sensor_interval_seconds


@dg.sensor(job=raw_s3_job, minimum_interval_seconds=INTERVAL, default_status=dg.DefaultSensorStatus.STOPPED,
           description="New or changed source files -> one raw_s3 run each.")
def source_files_sensor(context: dg.SensorEvaluationContext):
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.ingestion.raw import resolve_sources
    from ecommerce_platform.ingestion.source import SourceError

    try:
        sources = resolve_sources(load_settings())
    except SourceError as exc:
        return dg.SkipReason(f"no source files: {exc}")
    known = set(context.instance.get_dynamic_partitions(RAW_BATCHES.name))
    new = [s for s in sources if s.partition_key not in known]
    if not new:
        return dg.SkipReason(f"no new source files ({len(sources)} known)")
    keys = [s.partition_key for s in new]
    return dg.SensorResult(
        run_requests=[dg.RunRequest(partition_key=k, run_key=f"land-{k}") for k in keys],
        dynamic_partitions_requests=[RAW_BATCHES.build_add_request(keys)],
    )


@dg.sensor(job=raw_stream_job, minimum_interval_seconds=INTERVAL, default_status=dg.DefaultSensorStatus.STOPPED,
           description="Records waiting in the stream (or new Firehose objects) -> one raw_stream run.")
def stream_landing_sensor(context: dg.SensorEvaluationContext, stream: Stream, lake: Lake):
    import datetime as dt

    if stream.lands_itself:
        from ecommerce_platform.ingestion.landing import CONSUMER

        state = stream.read_checkpoint(CONSUMER) or {}
        positions = {s: (state.get("shards") or {}).get(s) for s in stream.shard_ids()}
        waiting = bool(state.get("pending"))
        for shard_id, after in positions.items():
            for page in stream.read_shard(shard_id, after=after, limit=1):
                waiting = waiting or bool(page)
            if waiting:
                break
        if not waiting:
            return dg.SkipReason("no records waiting after the landing checkpoint")
        key = hashlib.sha256(json.dumps(positions, sort_keys=True).encode()).hexdigest()[:16]
        today = dt.datetime.now(dt.timezone.utc).date().isoformat()
        return dg.RunRequest(partition_key=today, run_key=f"land-{key}")
    from ecommerce_platform.ingestion.stream_copy import stale_days

    stale = [d.isoformat() for d in stale_days(lake)]
    if not stale:
        return dg.SkipReason("every Firehose day has its copy")
    digest = hashlib.sha256(json.dumps(stale).encode()).hexdigest()[:16]
    return [dg.RunRequest(partition_key=d, run_key=f"copy-{d}-{digest}") for d in stale
            if d in STREAM_DAYS.get_partition_keys()]
