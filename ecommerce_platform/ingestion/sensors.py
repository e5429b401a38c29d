"""Sensors of the ingestion layer (both default to STOPPED, so a first `dagster dev` runs nothing).

``raw_objects_sensor``: lists ``raw/stream/`` and ``raw/batch/_manifests/`` and, when the listing
changed since its cursor (a digest of the keys it has seen), requests a run of ``clean_downstream_job``
(``clean_parquet`` and everything downstream). Works in both deployments (Firehose's objects in S3).

``stream_landing_sensor``: in the local deployment, plays Firehose's clock: when records wait after
the landing checkpoint, it requests a run of ``stream_landing_job`` (``raw_stream``).
"""

import hashlib
import json

import dagster as dg

from ecommerce_platform.config import RAW_STREAM_PREFIX
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.stream import Stream

MANIFESTS_PREFIX = "raw/batch/_manifests"

clean_downstream_job = dg.define_asset_job(
    "clean_downstream_job",
    selection=dg.AssetSelection.assets("clean_parquet").downstream(),
    description="clean_parquet and everything downstream of it (run when new raw objects arrive).",
    executor_def=dg.in_process_executor,
)

stream_landing_job = dg.define_asset_job(
    "stream_landing_job",
    selection=dg.AssetSelection.assets("raw_stream"),
    description="Land the stream into the raw zone (the local Firehose).",
    executor_def=dg.in_process_executor,
)


def raw_listing(lake: Lake) -> list[str]:
    keys = [k for k in lake.list(RAW_STREAM_PREFIX) if not k.rsplit("/", 1)[-1].startswith((".", "_"))]
    keys += [k for k in lake.list(MANIFESTS_PREFIX) if k.endswith(".json")]
    return sorted(keys)


def _digest(keys: list[str]) -> str:
    h = hashlib.sha256()
    for k in keys:
        h.update(k.encode() + b"\n")
    return h.hexdigest()[:32]


@dg.sensor(
    job=clean_downstream_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="New raw objects (stream objects or landed batches) -> clean_parquet and downstream.",
)
def raw_objects_sensor(context: dg.SensorEvaluationContext, lake: Lake):
    keys = raw_listing(lake)
    digest = _digest(keys)
    previous = json.loads(context.cursor) if context.cursor else {}
    if previous.get("digest") == digest:
        return dg.SkipReason(f"no new raw objects ({len(keys)} seen)")
    new = len(keys) - int(previous.get("n", 0))
    context.update_cursor(json.dumps({"digest": digest, "n": len(keys)}))
    if not keys:
        return dg.SkipReason("the raw zone is empty")
    return dg.RunRequest(
        run_key=f"raw-{digest}",
        tags={"ecommerce/raw_objects": str(len(keys)), "ecommerce/new_raw_objects": str(max(new, 0))},
    )


@dg.sensor(
    job=stream_landing_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Local deployment: records waiting in the embedded stream -> land them (raw_stream).",
)
def stream_landing_sensor(context: dg.SensorEvaluationContext, stream: Stream):
    if not stream.lands_itself:
        return dg.SkipReason("Firehose lands the stream in this deployment")
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
    return dg.RunRequest(run_key=f"land-{key}")


SENSORS = [raw_objects_sensor, stream_landing_sensor]
JOBS = [clean_downstream_job, stream_landing_job]
