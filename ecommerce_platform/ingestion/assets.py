"""Ingestion layer: ``raw_s3`` (each source file landed byte for byte, with its canonical copy: one
partition per file), ``raw_stream`` (stream records landed like Firehose: one partition per arrival day),
``raw_months`` (what the raw zone holds per invoice month: observed, the bridge to the clean zone's
monthly partitions) and ``raw_lines`` (every landed line as the readers read it, a table)."""


import dagster as dg

from ecommerce_platform.operations import ENGINE_TAG, WRITER_POOL
from ecommerce_platform.partitions import INVOICE_MONTHS, RAW_BATCHES, SINGLE_RUN, STREAM_DAYS
from ecommerce_platform.recompute import code_version, data_version, previous_if_fresh
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.stream import Stream
from ecommerce_platform.resources.warehouse import Warehouse

PACKAGE = "ecommerce_platform.ingestion"
READER_FILES = ("source.py", "normalize.py", "raw.py", "sql/canonical_copy.sql")


def _settings():
    from ecommerce_platform.config import load_settings

    return load_settings()


def report_months(context, lake: Lake, months: set[str]) -> None:  # noqa: ANN001
    """Tell Dagster which invoice months changed: add their partitions, and observe ``raw_months`` for
    them with their new data versions (only those clean months become stale)."""
    from ecommerce_platform.ingestion.months import month_versions

    if not months:
        return
    existing = set(context.instance.get_dynamic_partitions(INVOICE_MONTHS.name))
    new = sorted(months - existing)
    if new:
        context.instance.add_dynamic_partitions(INVOICE_MONTHS.name, new)
    versions = month_versions(lake)
    for month in sorted(months):
        context.log_event(dg.AssetObservation(
            asset_key="raw_months", partition=month,
            tags={"dagster/data_version": versions.get(month, "empty")},
            metadata={"reported_by": context.asset_key.to_user_string()}))


@dg.asset(
    key="raw_s3",
    partitions_def=RAW_BATCHES,
    backfill_policy=SINGLE_RUN,
    pool=WRITER_POOL,
    kinds={"s3", "python"},
    code_version=code_version(PACKAGE, *READER_FILES),
    description="A source file landed byte for byte in the raw zone (partition: the file), with its "
    "canonical Parquet copy read and counted by a strict reader. A file that cannot be read is set aside "
    "in raw/rejected/ with its reason, never retried, never in the way of other files.",
)
def raw_s3(context: dg.AssetExecutionContext, lake: Lake) -> dg.MaterializeResult:
    from ecommerce_platform.ingestion.raw import land_source, reject_source, resolve_sources
    from ecommerce_platform.ingestion.source import SourceError

    settings = _settings()
    sources = {s.partition_key: s for s in resolve_sources(settings)}
    landed, rejected, gone = [], [], []
    for key in context.partition_keys:
        source = sources.get(key)
        if source is None:
            gone.append(key)
            context.log.warning(f"{key}: the file changed or went away since it was found; its new "
                                "version is a new partition")
            continue
        (context.log.warning if source.generated else context.log.info)(f"source: {source.note}")
        try:
            item = land_source(lake, source, settings=settings)
        except SourceError as exc:
            rejected.append(reject_source(lake, source, exc, key))
            context.log.error(f"{key}: rejected, set aside in raw/rejected/: {exc}")
            continue
        landed.append(item)
        context.log.info(
            f"{'already landed (no-op)' if item.noop else 'landed'}: {item.uri} ({item.format}, "
            f"{item.rows:,} records, {len(item.months)} invoice months, sha256 {item.sha256[:12]})")
    report_months(context, lake, {m for item in landed if not item.noop for m in item.months})
    reader = {k: sum(int(i.reader.get(k, 0)) for i in landed)
              for k in ("blank_lines", "malformed", "too_long", "nul_chars_removed")}
    return dg.MaterializeResult(
        metadata={
            "files": dg.MetadataValue.table(
                records=[dg.TableRecord({"file": i.spec.path.rsplit("/", 1)[-1], "status": "already landed" if i.noop else "landed",
                                         "records": i.rows, "format": i.format, "sha256": i.sha256[:12],
                                         "months": len(i.months)}) for i in landed]
                + [dg.TableRecord({"file": r["file"].rsplit("/", 1)[-1], "status": "rejected", "records": 0,
                                   "format": "", "sha256": "", "months": 0}) for r in rejected],
                schema=dg.TableSchema(columns=[dg.TableColumn("file"), dg.TableColumn("status"),
                                               dg.TableColumn("records", "int"), dg.TableColumn("format"),
                                               dg.TableColumn("sha256"), dg.TableColumn("months", "int")])),
            "records": dg.MetadataValue.int(sum(i.rows for i in landed)),
            "newly_landed": dg.MetadataValue.int(sum(0 if i.noop else 1 for i in landed)),
            "rejected": dg.MetadataValue.int(len(rejected)),
            "rejected_reasons": dg.MetadataValue.json({r["partition"]: r["problem"] for r in rejected}),
            "reader": dg.MetadataValue.json(reader),
            "source_origin": ", ".join(sorted({sources[k].origin for k in context.partition_keys if k in sources})),
            "dagster/uri": dg.MetadataValue.path(landed[0].uri if landed else lake.uri("raw/batch")),
        },
        data_version=data_version(sorted(i.sha256 for i in landed), sorted(r["partition"] for r in rejected)),
    )


@dg.asset_check(asset="raw_s3", blocking=False,
                description="Every file found was readable: none is set aside in raw/rejected/ (warning)")
def raw_files_readable(lake: Lake) -> dg.AssetCheckResult:
    from ecommerce_platform.ingestion.raw import rejected_files

    rejected = rejected_files(lake)
    return dg.AssetCheckResult(
        passed=not rejected, severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_files": dg.MetadataValue.json([
            {"file": r["file"], "problem": r["problem"], "rejected_at": r["rejected_at"]} for r in rejected])},
    )


@dg.asset(
    key="raw_stream",
    partitions_def=STREAM_DAYS,
    backfill_policy=SINGLE_RUN,
    pool=WRITER_POOL,
    kinds={"kinesis", "s3", "python"},
    code_version=code_version(PACKAGE, "landing.py", "stream_copy.py", "sql/canonical_copy.sql"),
    description="Stream records landed like Firehose (NDJSON under raw/stream/year=/month=/day=/ by arrival "
    "day, malformed records under raw/stream_errors/, exactly once via checkpoints), and each day's "
    "canonical copy (partition: the arrival day).",
)
def raw_stream(context: dg.AssetExecutionContext, lake: Lake, stream: Stream) -> dg.MaterializeResult:
    import datetime as dt

    from ecommerce_platform.ingestion.landing import land_stream
    from ecommerce_platform.ingestion.stream_copy import build_day_copy, read_day

    settings = _settings()
    metadata: dict = {"stream": stream.stream_name}
    days = {dt.date.fromisoformat(k) for k in context.partition_keys}
    if stream.lands_itself:  # local: this asset is the Firehose
        result = land_stream(stream, lake)
        context.log.info(f"landed {result.records_landed:,} records ({result.records_failed:,} malformed) "
                         f"in {len(result.objects)} objects, {result.rate:,.0f} records/s")
        days |= {_object_day(k) for k in result.objects}
        metadata.update({
            "records_landed": dg.MetadataValue.int(result.records_landed),
            "records_malformed": dg.MetadataValue.int(result.records_failed),
            "new_objects": dg.MetadataValue.int(len(result.objects)),
            "redone_batches": dg.MetadataValue.int(result.redone_batches),
            "malformed_by_reason": dg.MetadataValue.json(result.error_reasons),
        })
    else:
        context.log.info("Firehose lands the stream in this deployment: reading what it wrote")
        metadata.update(firehose_report(context, stream, lake))
    touched: set[str] = set()
    built = []
    for day in sorted(days):
        before = read_day(lake, day)
        out = build_day_copy(lake, day, settings)
        built.append(out)
        changed = before is None or (before.objects, before.records) != (out.objects, out.records)
        if changed:
            touched |= set(out.months) | (set(before.months) if before else set())
        if day.isoformat() not in context.partition_keys and out.objects:
            # records of a day outside this run's partitions (a backlog): that day is materialized too
            context.log_event(dg.AssetMaterialization(
                asset_key=context.asset_key, partition=day.isoformat(),
                metadata={"records": dg.MetadataValue.int(out.records), "objects": len(out.objects)}))
    report_months(context, lake, touched)
    metadata.update({
        "days": dg.MetadataValue.json({d.day: d.records for d in built}),
        "records": dg.MetadataValue.int(sum(d.records for d in built)),
        "dagster/uri": dg.MetadataValue.path(lake.uri("raw/stream")),
    })
    return dg.MaterializeResult(
        metadata=metadata,
        data_version=data_version([(d.day, d.objects, d.records) for d in built]),
    )


def firehose_report(context, stream, lake) -> dict:  # noqa: ANN001
    """aws: what waits in Kinesis that Firehose has not landed yet, and the delivery stream it expects.
    Warns when records are older than Firehose's buffering interval and still not in the lake."""
    import time

    firehose = stream.firehose()
    keys = lake.list_versions("raw/stream")
    newest = max((lake.modified(k) for k in keys), default=None) if keys else None
    buffer_s = firehose.get("buffer_seconds") or 300
    since = newest if newest is not None else time.time() - 24 * 3600  # Kinesis keeps 24 h by default
    try:
        waiting = stream.records_since(since)
    except Exception as exc:  # noqa: BLE001 - the stream itself is missing or unreachable: say so
        context.log.warning(f"cannot read the Kinesis stream {stream.stream_name!r} ({type(exc).__name__}: {exc}); "
                            "reporting only what Firehose wrote")
        return {"firehose": dg.MetadataValue.json(firehose), "records_waiting": "unknown (stream unreadable)"}
    meta = {"firehose": dg.MetadataValue.json(firehose), "records_waiting": dg.MetadataValue.int(waiting),
            "last_landed_at": dg.MetadataValue.float(round(newest, 1)) if newest else "never"}
    late = waiting and (newest is None or time.time() - newest > buffer_s)
    if firehose["status"] == "MISSING":
        context.log.warning(f"no Firehose delivery stream {firehose['name']!r}: records put on {stream.stream_name!r} "
                            "never reach the lake (check ECOMMERCE_FIREHOSE_NAME and the CDK app's streaming stack)")
    elif late:
        context.log.warning(f"{waiting:,} record(s) wait in {stream.stream_name!r} and nothing has landed for longer "
                            f"than Firehose's buffering interval ({buffer_s} s): is {firehose['name']!r} delivering?")
    return meta


def _object_day(key: str):  # noqa: ANN202
    import datetime as dt

    parts = dict(p.split("=", 1) for p in key.split("/") if "=" in p)
    return dt.date(int(parts["year"]), int(parts["month"]), int(parts["day"]))


@dg.multi_observable_source_asset(
    specs=[dg.AssetSpec(
        "raw_months",
        group_name="ingestion",
        deps=[dg.AssetDep("raw_s3", partition_mapping=dg.AllPartitionMapping()),
              dg.AssetDep("raw_stream", partition_mapping=dg.AllPartitionMapping())],
        description="What the raw zone holds per invoice month (batches and stream days): a data version per "
        "month, reported by every landing for the months it changed (observe it to recompute them all). The "
        "clean zone's months depend on it, so exactly the months a landing touched become stale.",
    )],
    partitions_def=INVOICE_MONTHS,
    name="raw_months_observer",
)
def raw_months(context, lake: Lake):  # noqa: ANN001, ANN201
    """Observe the months of the run (recomputed from the landings' manifests)."""
    from ecommerce_platform.ingestion.months import month_versions

    versions = month_versions(lake)
    for month in context.partition_keys:
        yield dg.AssetObservation(asset_key="raw_months", partition=month,
                                  tags={"dagster/data_version": versions.get(month, "empty")})


RAW_LINES_TABLE = "raw_lines"


@dg.asset(
    key=RAW_LINES_TABLE,
    deps=["raw_s3", "raw_stream"],
    pool=WRITER_POOL,
    kinds={"parquet", "sql"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, "source.py", "sql/canonical_copy.sql"),
    description="Every landed line (batches and stream days) as the source readers read it, before any "
    "rule: the canonical copies as one table, for profiling the raw input.",
)
def raw_lines(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ingestion.raw import landed_batches
    from ecommerce_platform.ingestion.source import COPY_TYPES
    from ecommerce_platform.ingestion.stream_copy import stream_days
    from ecommerce_platform.schema import RAW_NORMALIZED_PREFIX

    previous = previous_if_fresh(context, exists=lambda: warehouse.queryable(RAW_LINES_TABLE))
    if previous is not None:
        return previous
    lake = warehouse.lake
    keys = [k for b in landed_batches(lake) for k in b.normalized] + [k for d in stream_days(lake) for k in d.copy]
    if keys:
        relation = warehouse.external_relation("raw_copies", keys, COPY_TYPES, location=RAW_NORMALIZED_PREFIX)
        warehouse.create_view(RAW_LINES_TABLE, f"SELECT * FROM {relation} AS copies")
    rows = int(warehouse.query_df(f"SELECT COUNT(*) AS n FROM {RAW_LINES_TABLE}").iloc[0]["n"]) if keys else 0
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(rows),
            "dagster/table_name": warehouse.table_name(RAW_LINES_TABLE),
            "dagster/uri": dg.MetadataValue.path(lake.uri(RAW_NORMALIZED_PREFIX)),
            "dagster/column_schema": dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in COPY_TYPES.items()]),
            "copies": dg.MetadataValue.int(len(keys)),
        },
        data_version=data_version(sorted(keys), rows),
    )
