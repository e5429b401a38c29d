"""Ingestion layer: the batch source landed in the raw zone (``raw_s3``)."""


import dagster as dg

from ecommerce_platform.config import load_settings
from ecommerce_platform.resources.lake import Lake


@dg.asset(
    key="raw_s3",
    group_name="ingestion",
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
        (context.log.warning if source.origin == "synthetic" else context.log.info)(
            f"source: {source.note}"
        )
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
