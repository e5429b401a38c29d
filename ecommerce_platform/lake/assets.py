"""Lake layer: ``clean_parquet`` (typed, validated, deduplicated Parquet) and the checks that guard it."""


import dagster as dg

from ecommerce_platform.lake.schema import CLEAN_COLUMNS, CLEAN_PARTITIONS
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

CLEAN_SCHEMA = dg.TableSchema(
    columns=[dg.TableColumn(n, t, description=d) for n, t, d in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS)]
)
MAX_QUARANTINE_SHARE = 0.05


@dg.asset(
    key="clean_parquet",
    deps=["raw_s3", "raw_stream"],
    group_name="lake",
    pool="zone_clean",
    kinds={"duckdb", "parquet", "sql"},
    code_version="1",
    description="Raw transactions typed, validated and deduplicated by one SQL transform in the "
    "warehouse engine; Parquet partitioned by invoice year/month, with a quarantine of rejected rows.",
    owners=["team:data-platform"],
    tags={"layer": "lake"},
    metadata={"dagster/column_schema": CLEAN_SCHEMA, "table": "transactions"},
)
def clean_parquet(
    context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse
) -> dg.MaterializeResult:
    from ecommerce_platform.lake.clean import CLEAN_PREFIX, run_clean

    result = run_clean(warehouse, lake)
    from ecommerce_platform.ingestion.raw import landed_batches

    generated = [b.uri for b in landed_batches(lake) if b.origin == "synthetic"]
    if generated:
        context.log.warning(
            f"the clean zone holds GENERATED SYNTHETIC data, not real transactions: {', '.join(generated)}"
        )
    if result.reused:
        context.log.info("inputs and SQL unchanged since the last run: the clean zone is up to date")
    preview = warehouse.query_df(
        "SELECT invoice_no, stock_code, description, quantity, invoice_ts, unit_price, customer_id, "
        "country, line_total FROM transactions ORDER BY invoice_ts, invoice_no, stock_code LIMIT 10",
        lake,
    )
    reasons = "\n".join(f"| {r} | {n:,} |" for r, n in result.quarantine_by_reason.items()) or "| (none) | 0 |"
    return dg.MaterializeResult(
        metadata={
            "rows_in": dg.MetadataValue.int(result.rows_in),
            "rows_clean": dg.MetadataValue.int(result.rows_clean),
            "rows_quarantined": dg.MetadataValue.int(result.rows_quarantined),
            "rows_duplicate": dg.MetadataValue.int(result.rows_duplicate),
            "dagster/row_count": dg.MetadataValue.int(result.rows_clean),
            "quarantine_by_reason": dg.MetadataValue.md("| reason | rows |\n|---|---|\n" + reasons),
            "partitions": dg.MetadataValue.int(len(result.partitions)),
            "engine_seconds": dg.MetadataValue.float(result.engine_seconds),
            "engine": warehouse.engine,
            "reused_previous_output": result.reused,
            "uri": dg.MetadataValue.path(lake.uri(CLEAN_PREFIX)),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
            "dagster/column_schema": CLEAN_SCHEMA,
        },
        data_version=dg.DataVersion(result.fingerprint[:16]),
    )


def _latest(context: dg.AssetCheckExecutionContext, key: str):
    event = context.instance.get_latest_materialization_event(dg.AssetKey("clean_parquet"))
    if event is None or event.asset_materialization is None:
        return None
    value = event.asset_materialization.metadata.get(key)
    return None if value is None else value.value


@dg.asset_check(asset="clean_parquet", blocking=True, description="Clean table has exactly the canonical columns and types")
def clean_schema(lake: Lake, warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.lake.schema import DUCKDB_TYPES

    df = warehouse.query_df("SELECT * FROM transactions LIMIT 0", lake)
    found = list(df.columns)
    expected = [c for c, _, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS)]
    problems = []
    if found != expected:
        problems.append(f"columns differ: missing {sorted(set(expected) - set(found))}, "
                        f"unexpected {sorted(set(found) - set(expected))}")
    if warehouse.engine == "duckdb":
        desc = warehouse.query_df("DESCRIBE SELECT * FROM transactions", lake)
        types = dict(zip(desc["column_name"], desc["column_type"]))
        for name, typ, _ in (*CLEAN_COLUMNS, *CLEAN_PARTITIONS):
            if name in types and types[name] != DUCKDB_TYPES[typ]:
                problems.append(f"{name} is {types[name]}, expected {DUCKDB_TYPES[typ]}")
    return dg.AssetCheckResult(passed=not problems, metadata={"problems": "; ".join(problems) or "none"})


@dg.asset_check(asset="clean_parquet", blocking=True,
                description="rows_in = rows_clean + rows_quarantined + rows_duplicate, recounted from the written tables")
def clean_reconciliation(lake: Lake, warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.lake.clean import read_result

    result = read_result(lake)
    if result is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no clean manifest"})
    counts = warehouse.query_df(
        "SELECT (SELECT count(*) FROM transactions) AS clean, "
        "(SELECT count(*) - count(DISTINCT line_id) FROM transactions) AS repeated, "
        "(SELECT count(*) FROM quarantine) AS quarantined",
        lake,
    ).iloc[0]
    clean, quarantined = int(counts["clean"]), int(counts["quarantined"])
    repeated = int(counts["repeated"])  # line_id is the MD5 of a line's values: a repeat = a duplicate left
    balanced = result.rows_in == clean + quarantined + result.rows_duplicate
    matches = clean == result.rows_clean and quarantined == result.rows_quarantined
    return dg.AssetCheckResult(
        passed=bool(balanced and matches and repeated == 0 and result.rows_duplicate >= 0),
        metadata={
            "rows_in": result.rows_in, "clean_in_table": clean, "quarantined_in_table": quarantined,
            "rows_duplicate": result.rows_duplicate, "duplicates_left_in_clean": repeated,
            "difference": result.rows_in - clean - quarantined - result.rows_duplicate,
        },
    )


@dg.asset_check(asset="clean_parquet", blocking=True, description="Required columns are never null")
def clean_required_not_null(lake: Lake, warehouse: Warehouse) -> dg.AssetCheckResult:
    required = ["invoice_no", "stock_code", "quantity", "invoice_ts", "invoice_date", "unit_price",
                "country", "line_total", "line_id", "year", "month"]
    sql = "SELECT " + ", ".join(f"count(*) FILTER (WHERE {c} IS NULL) AS {c}" for c in required) + " FROM transactions"
    row = warehouse.query_df(sql, lake).iloc[0]
    nulls = {c: int(row[c]) for c in required if int(row[c])}
    return dg.AssetCheckResult(passed=not nulls, metadata={"null_counts": str(nulls or "none")})


@dg.asset_check(asset="clean_parquet", blocking=True,
                description=f"Clean rows > 0 and at most {MAX_QUARANTINE_SHARE:.0%} of input rows quarantined")
def clean_row_count_bounds(lake: Lake) -> dg.AssetCheckResult:
    from ecommerce_platform.lake.clean import read_result

    result = read_result(lake)
    if result is None or result.rows_in == 0:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no input rows"})
    share = result.rows_quarantined / result.rows_in
    return dg.AssetCheckResult(
        passed=result.rows_clean > 0 and share <= MAX_QUARANTINE_SHARE,
        metadata={"rows_clean": result.rows_clean, "quarantine_share": round(share, 5)},
    )
