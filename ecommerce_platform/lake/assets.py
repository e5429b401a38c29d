"""Lake layer: the clean zone, ``clean_parquet`` (table ``transactions``) and ``quarantine`` (table
``quarantine``), written together by one SQL transform per run over the invoice months it is given
(partitions of ``invoice_months``; a full rebuild is one run, one engine pass), and the blocking checks
that guard them."""


import dagster as dg

from ecommerce_platform.operations import ENGINE_TAG, WRITER_POOL
from ecommerce_platform.partitions import INVOICE_MONTHS, SINGLE_RUN
from ecommerce_platform.recompute import forced, fresh_partitions
from ecommerce_platform.resources.warehouse import Warehouse
from ecommerce_platform.schema import (
    CLEAN_COLUMNS,
    CLEAN_KEY,
    CLEAN_NULLABLE,
    CLEAN_PARTITIONS,
    CLEAN_PREFIX,
    CLEAN_TABLE,
    QUARANTINE_COLUMNS,
    QUARANTINE_PARTITIONS,
    QUARANTINE_PREFIX,
    QUARANTINE_TABLE,
)

PACKAGE = "ecommerce_platform.lake"
MAX_QUARANTINE_SHARE = 0.05


def _schema(columns) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns])


CLEAN_SCHEMA = _schema((*CLEAN_COLUMNS, *CLEAN_PARTITIONS))
QUARANTINE_SCHEMA = _schema((*QUARANTINE_COLUMNS, *QUARANTINE_PARTITIONS))


def _clean_lineage() -> dg.TableColumnLineage:
    """Where each clean column comes from, in the canonical copies the ingestion layer publishes."""
    src = dg.AssetKey("raw_months")

    def dep(*cols: str) -> list[dg.TableColumnDep]:
        return [dg.TableColumnDep(asset_key=src, column_name=c) for c in cols]

    direct = {"invoice_no": ("invoice_no",), "stock_code": ("stock_code",), "description": ("description",),
              "quantity": ("quantity",), "invoice_ts": ("invoice_date",), "invoice_date": ("invoice_date",),
              "unit_price": ("unit_price",), "customer_id": ("customer_id",), "country": ("country",),
              "line_total": ("quantity", "unit_price"), "is_cancellation": ("invoice_no",),
              "is_product": ("stock_code",), "is_guest": ("customer_id",),
              "is_sale": ("invoice_no", "quantity", "unit_price", "stock_code"),
              "is_return": ("invoice_no", "quantity", "stock_code"), "year": ("invoice_date",),
              "month": ("invoice_date",)}
    return dg.TableColumnLineage(deps_by_column={c: dep(*cols) for c, cols in direct.items()})


def _code_version() -> str:
    from ecommerce_platform.lake.clean import transform_version

    return transform_version()


def _specs() -> list[dg.AssetSpec]:
    version = _code_version()
    common = dict(deps=[dg.AssetDep("raw_months")], kinds={"parquet", "sql"}, code_version=version,
                  tags={ENGINE_TAG: "warehouse"}, partitions_def=INVOICE_MONTHS)
    return [
        dg.AssetSpec(
            "clean_parquet",
            description="Every landed line typed, validated and deduplicated by one SQL transform in the "
            "warehouse engine: table `transactions`, Parquet partitioned by invoice month.",
            metadata={"dagster/column_schema": CLEAN_SCHEMA, "dagster/table_name": CLEAN_TABLE}, **common),
        dg.AssetSpec(
            "quarantine",
            description="The lines the clean transform rejected, with the rule they broke and where they came "
            "from (file, record, line): table `quarantine`, partitioned by invoice month ('undated': no "
            "plausible date).",
            metadata={"dagster/column_schema": QUARANTINE_SCHEMA, "dagster/table_name": QUARANTINE_TABLE}, **common),
    ]


@dg.multi_asset(specs=_specs(), backfill_policy=SINGLE_RUN, pool=WRITER_POOL, can_subset=False,
                name="clean_zone")
def clean_zone(context: dg.AssetExecutionContext, warehouse: Warehouse):
    from ecommerce_platform.lake.clean import month_results, register_tables, run_clean

    lake = warehouse.lake
    months = list(context.partition_keys)
    previous = month_results(lake)
    fresh = set() if forced(context) else fresh_partitions(context, dg.AssetKey("clean_parquet"),
                                                           [m for m in months if m in previous])
    stale = [m for m in months if m not in fresh]
    if stale:
        context.log.info(f"cleaning {len(stale)} of {len(months)} months: {', '.join(stale)}")
        result = run_clean(warehouse, stale, incremental=not forced(context))
        done = {m.month: m for m in result.months}
        engine_seconds = result.engine_seconds
    else:
        context.log.info("every month of this run is up to date in Dagster: nothing to recompute")
        register_tables(warehouse)
        done, engine_seconds = {}, 0.0
    now = month_results(lake)
    rows = [now[m] for m in months if m in now]
    rows_in = sum(r.rows_in for r in rows)
    clean = sum(r.rows_clean for r in rows)
    quarantined = sum(r.rows_quarantined for r in rows)
    duplicate = sum(r.rows_duplicate for r in rows)
    generated = _generated_sources(lake)
    if generated:
        context.log.warning(f"the clean zone holds GENERATED SYNTHETIC data, not real transactions: {', '.join(generated)}")
    per_month = dg.MetadataValue.table(
        records=[dg.TableRecord({"month": r.month, "rows_in": r.rows_in, "clean": r.rows_clean,
                                 "quarantined": r.rows_quarantined, "duplicates": r.rows_duplicate,
                                 "rebuilt": r.month in done,
                                 "how": r.mode if r.month in done else "reused"}) for r in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn("month"), dg.TableColumn("rows_in", "int"),
                                       dg.TableColumn("clean", "int"), dg.TableColumn("quarantined", "int"),
                                       dg.TableColumn("duplicates", "int"), dg.TableColumn("rebuilt", "bool"),
                                       dg.TableColumn("how")]))
    reasons: dict[str, int] = {}
    for r in rows:
        for reason, n in r.quarantine_by_reason.items():
            reasons[reason] = reasons.get(reason, 0) + n
    yield dg.MaterializeResult(
        asset_key="clean_parquet",
        metadata={
            "rows_in": dg.MetadataValue.int(rows_in),
            "rows_clean": dg.MetadataValue.int(clean),
            "rows_quarantined": dg.MetadataValue.int(quarantined),
            "rows_duplicate": dg.MetadataValue.int(duplicate),
            "dagster/row_count": dg.MetadataValue.int(clean),
            "months": per_month,
            "months_rebuilt": dg.MetadataValue.int(len(done)),
            "months_appended": dg.MetadataValue.int(sum(1 for m in done.values() if m.mode == "append")),
            "engine_seconds": dg.MetadataValue.float(round(engine_seconds, 3)),
            "engine": warehouse.engine,
            "dagster/uri": dg.MetadataValue.path(lake.uri(CLEAN_PREFIX)),
            "dagster/table_name": warehouse.table_name(CLEAN_TABLE),
            "dagster/column_schema": CLEAN_SCHEMA,
            "dagster/column_lineage": _clean_lineage(),
            "reused_previous_output": not done,
        },
    )
    yield dg.MaterializeResult(
        asset_key="quarantine",
        metadata={
            "dagster/row_count": dg.MetadataValue.int(quarantined),
            "by_reason": dg.MetadataValue.table(
                records=[dg.TableRecord({"reason": k, "rows": v}) for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])],
                schema=dg.TableSchema(columns=[dg.TableColumn("reason"), dg.TableColumn("rows", "int")])),
            "dagster/uri": dg.MetadataValue.path(lake.uri(QUARANTINE_PREFIX)),
            "dagster/table_name": warehouse.table_name(QUARANTINE_TABLE),
            "dagster/column_schema": QUARANTINE_SCHEMA,
            "reused_previous_output": not done,
        },
    )


def _generated_sources(lake) -> list[str]:  # noqa: ANN001
    from ecommerce_platform.ingestion.raw import landed_batches

    return [b.uri for b in landed_batches(lake) if b.origin == "synthetic"]


# ------------------------------------------------------------------------------------------ checks
def recount(warehouse: Warehouse) -> dict[str, dict]:
    """Per month, counted again from the published tables (not from what the transform reported)."""
    out: dict[str, dict] = {}

    def month(key: str) -> dict:
        return out.setdefault(key, {"clean": 0, "folded": 0, "quarantined": 0})

    clean = warehouse.query_df(
        f"SELECT year, month, COUNT(*) AS n, COALESCE(SUM(source_lines), 0) - COUNT(*) AS folded "
        f"FROM {CLEAN_TABLE} GROUP BY 1, 2")
    for r in clean.to_dict("records"):
        m = month(f"{int(r['year']):04d}-{int(r['month']):02d}")
        m["clean"], m["folded"] = int(r["n"]), int(r["folded"])
    q = warehouse.query_df(f"SELECT partition_month, COUNT(*) AS n FROM {QUARANTINE_TABLE} GROUP BY 1")
    for r in q.to_dict("records"):
        month(str(r["partition_month"]))["quarantined"] = int(r["n"])
    return out


@dg.asset_check(asset="clean_parquet", blocking=True,
                description="Every line is accounted for, per month: the lines the source readers counted = clean "
                "rows + quarantined rows + duplicates folded, all recounted from the published tables; no "
                "duplicate is left; months whose inputs changed since they were cleaned are listed")
def clean_reconciliation(warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.ingestion.months import month_inputs
    from ecommerce_platform.lake.clean import month_results

    lake = warehouse.lake
    inputs = month_inputs(lake)
    cleaned = month_results(lake)
    counts = recount(warehouse)
    unbalanced, awaiting, orphans = {}, [], []
    for month, inp in inputs.items():
        rec = cleaned.get(month)
        if rec is None or rec.version != inp.version:
            awaiting.append(month)
            continue
        got = counts.get(month, {"clean": 0, "folded": 0, "quarantined": 0})
        total = got["clean"] + got["folded"] + got["quarantined"]
        if total != inp.rows:
            unbalanced[month] = {"rows_in": inp.rows, **got, "difference": inp.rows - total}
    orphans = sorted(set(counts) - set(inputs))
    key = ", ".join(CLEAN_KEY)
    repeated = int(warehouse.query_df(
        f"SELECT COALESCE(SUM(n - 1), 0) AS n FROM (SELECT COUNT(*) AS n FROM {CLEAN_TABLE} GROUP BY {key}) AS k"
    ).iloc[0]["n"])
    passed = not unbalanced and not orphans and repeated == 0
    return dg.AssetCheckResult(passed=bool(passed), metadata={
        "rows_in": sum(i.rows for m, i in inputs.items() if m not in awaiting),
        "clean_in_table": sum(c["clean"] for c in counts.values()),
        "duplicates_folded": sum(c["folded"] for c in counts.values()),
        "quarantined_in_table": sum(c["quarantined"] for c in counts.values()),
        "unbalanced_months": dg.MetadataValue.json(unbalanced),
        "months_without_inputs": dg.MetadataValue.json(orphans),
        "months_awaiting_clean": dg.MetadataValue.json(awaiting),
        "duplicates_left_in_clean": repeated,
    })


@dg.asset_check(asset="clean_parquet", blocking=True, description="Clean table has exactly the canonical columns and types")
def clean_schema(warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.schema import DUCKDB_TYPES

    expected = [c for c, _, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS)]
    df = warehouse.query_df(f"SELECT * FROM {CLEAN_TABLE} LIMIT 0")
    found = list(df.columns)
    problems = []
    if found != expected:
        problems.append(f"columns differ: missing {sorted(set(expected) - set(found))}, "
                        f"unexpected {sorted(set(found) - set(expected))}")
    if warehouse.engine == "duckdb":
        desc = warehouse.query_df(f"DESCRIBE SELECT * FROM {CLEAN_TABLE}")
        types = dict(zip(desc["column_name"], desc["column_type"]))
        for name, typ, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS):
            if name in types and types[name] != DUCKDB_TYPES[typ]:
                problems.append(f"{name} is {types[name]}, expected {DUCKDB_TYPES[typ]}")
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": "; ".join(problems) or "none"})


@dg.asset_check(asset="clean_parquet", blocking=True, description="Required columns are never null")
def clean_required_not_null(warehouse: Warehouse) -> dg.AssetCheckResult:
    required = [name for name, _, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS) if name not in CLEAN_NULLABLE]
    sql = "SELECT " + ", ".join(f"count(*) FILTER (WHERE {c} IS NULL) AS {c}" for c in required) + f" FROM {CLEAN_TABLE}"
    row = warehouse.query_df(sql).iloc[0]
    nulls = {c: int(row[c]) for c in required if int(row[c])}
    return dg.AssetCheckResult(passed=not nulls, metadata={"null_counts": dg.MetadataValue.json(nulls)})


@dg.asset_check(asset="clean_parquet", blocking=True,
                description=f"Clean rows > 0 and at most {MAX_QUARANTINE_SHARE:.0%} of the lines quarantined")
def clean_row_count_bounds(warehouse: Warehouse) -> dg.AssetCheckResult:
    counts = recount(warehouse)
    clean = sum(c["clean"] for c in counts.values())
    total = sum(c["clean"] + c["folded"] + c["quarantined"] for c in counts.values())
    share = sum(c["quarantined"] for c in counts.values()) / total if total else 1.0
    return dg.AssetCheckResult(
        passed=clean > 0 and share <= MAX_QUARANTINE_SHARE,
        metadata={"rows_clean": clean, "quarantine_share": round(share, 5)},
    )


CHECKS = [clean_reconciliation, clean_schema, clean_required_not_null, clean_row_count_bounds]
