"""Ingestion layer: the batch source landed in the raw zone (``raw_s3``) and the stream landed like
Firehose (``raw_stream``); sensors that react to new raw objects (``SENSORS``, ``JOBS``)."""


import dagster as dg

from ecommerce_platform.config import RAW_STREAM_PREFIX, load_settings
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.stream import Stream


@dg.asset(
    key="raw_s3",
    group_name="ingestion",
    pool="zone_raw",
    kinds={"s3", "python"},
    code_version="1",
    description="The source transactions landed byte for byte in the lake's raw zone, "
    "partitioned by ingest date, with their content hash (re-landing the same content is a no-op).",
    owners=["team:data-platform"],
    tags={"layer": "ingestion"},
)
def raw_s3(context: dg.AssetExecutionContext, lake: Lake) -> dg.MaterializeResult:
    from ecommerce_platform.ingestion.raw import land_source, resolve_sources

    settings = load_settings()
    sources = resolve_sources(settings)
    landed = []
    for source in sources:
        (context.log.warning if source.generated else context.log.info)(f"source: {source.note}")
        landed.append(land_source(lake, source))
    for item in landed:
        context.log.info(
            f"{'already landed (no-op)' if item.noop else 'landed'}: {item.uri} "
            f"({item.format}, {item.rows:,} rows, sha256 {item.sha256[:12]})"
        )
    return dg.MaterializeResult(
        metadata={
            "objects": [i.uri for i in landed],
            "uri": dg.MetadataValue.path(landed[0].uri),
            "sha256": landed[0].sha256,
            "rows": dg.MetadataValue.int(sum(i.rows for i in landed)),
            "bytes": dg.MetadataValue.int(sum(i.size_bytes for i in landed)),
            "format": ", ".join(sorted({i.format for i in landed})),
            "source_origin": ", ".join(sorted({s.origin for s in sources})),
            "source_note": "; ".join(s.note for s in sources),
            "newly_landed": dg.MetadataValue.int(sum(0 if i.noop else 1 for i in landed)),
        },
        data_version=dg.DataVersion(",".join(sorted(i.sha256[:16] for i in landed))),
    )


@dg.asset(
    key="raw_stream",
    group_name="ingestion",
    pool="zone_raw",
    kinds={"kinesis", "s3", "python"},
    code_version="1",
    description="Stream records landed like Firehose: NDJSON objects under raw/stream/year=/month=/day=/ "
    "(by arrival date), malformed records under raw/stream_errors/, exactly once via checkpoints.",
    owners=["team:data-platform"],
    tags={"layer": "ingestion"},
)
def raw_stream(context: dg.AssetExecutionContext, lake: Lake, stream: Stream) -> dg.MaterializeResult:
    from ecommerce_platform.ingestion.landing import land_stream, landed_objects

    metadata: dict = {}
    if stream.lands_itself:  # local: this asset is the Firehose
        result = land_stream(stream, lake)
        context.log.info(
            f"landed {result.records_landed:,} records ({result.records_failed:,} malformed) "
            f"in {len(result.objects)} objects, {result.rate:,.0f} records/s"
        )
        reasons = "\n".join(f"| {r} | {n:,} |" for r, n in result.error_reasons.items()) or "| (none) | 0 |"
        metadata.update({
            "records_landed": dg.MetadataValue.int(result.records_landed),
            "records_malformed": dg.MetadataValue.int(result.records_failed),
            "new_objects": dg.MetadataValue.int(len(result.objects)),
            "new_error_objects": dg.MetadataValue.int(len(result.error_objects)),
            "redone_batches": dg.MetadataValue.int(result.redone_batches),
            "records_per_second": dg.MetadataValue.float(round(result.rate, 1)),
            "malformed_by_reason": dg.MetadataValue.md("| reason | records |\n|---|---|\n" + reasons),
            "checkpoints": dg.MetadataValue.json(result.checkpoints),
        })
    else:
        context.log.info("Firehose lands the stream in this deployment: reporting what it wrote")
    keys = landed_objects(lake)
    metadata.update({
        "stream": stream.stream_name,
        "landed_by": "platform (embedded stream)" if stream.lands_itself else "Kinesis Data Firehose",
        "objects_total": dg.MetadataValue.int(len(keys)),
        "uri": dg.MetadataValue.path(lake.uri(RAW_STREAM_PREFIX)),
        "latest_objects": dg.MetadataValue.md("\n".join(f"- `{k}`" for k in keys[-5:]) or "(none)"),
    })
    import hashlib

    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
    return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(digest))


from ecommerce_platform.ingestion.sensors import JOBS, SENSORS  # noqa: E402,F401
