"""The stream route into the clean transform: landed NDJSON objects as source SELECTs.

Registered in ``lake.clean.EXTRA_SOURCES`` at import time (``lake/clean.py`` imports this module, so
the route is there whoever runs the clean transform). Returns (fingerprint parts, SELECTs) in the
canonical source shape of ``ingestion.source.source_select_sql``: the eight canonical columns as
VARCHAR, ``source_file``, ``source_row`` (BIGINT, 1-based line in the object), ``route`` = 'stream'
and ``date_order``. No landed objects: ([], []) - the clean transform is unchanged.
"""

from __future__ import annotations

from ecommerce_platform.config import RAW_STREAM_PREFIX
from ecommerce_platform.ingestion.producer import UCI_NAMES
from ecommerce_platform.lake.schema import SOURCE_COLUMNS

# Stream records carry ISO timestamps from our producer; other producers' 'a/b/yyyy' dates are
# read day-first like the UCI file's.
STREAM_DATE_ORDER = "dmy"
DATA_SUFFIXES = (".ndjson", ".ndjson.gz", ".json", ".json.gz", ".gz")


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def stream_objects(lake) -> list[str]:  # noqa: ANN001
    out = []
    for key in lake.list(RAW_STREAM_PREFIX):
        name = key.rsplit("/", 1)[-1]
        if name.startswith((".", "_")):
            continue
        out.append(key)
    return out


def stream_select_sql(uris: list[str]) -> str:
    """One DuckDB SELECT over every landed object (gzip or plain, by name)."""
    columns = ", ".join(f"{_sql_str(uci)}: 'VARCHAR'" for uci in UCI_NAMES.values())
    files = "[" + ", ".join(_sql_str(u) for u in uris) + "]"
    cols = ", ".join(f"CAST({_quote(UCI_NAMES[c])} AS VARCHAR) AS {c}" for c in SOURCE_COLUMNS)
    return (
        f"SELECT {cols}, CAST(filename AS VARCHAR) AS source_file, "
        f"CAST(row_number() OVER (PARTITION BY filename) AS BIGINT) AS source_row, "
        f"'stream' AS route, '{STREAM_DATE_ORDER}' AS date_order "
        f"FROM read_json({files}, format='newline_delimited', columns={{{columns}}}, "
        f"filename=true, compression='auto_detect', ignore_errors=false)"
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def stream_sources(lake, warehouse) -> tuple[list[str], list[str]]:  # noqa: ANN001
    keys = stream_objects(lake)
    if not keys:
        return [], []
    parts = [f"stream:{k}" for k in keys]
    if getattr(warehouse, "engine", "duckdb") == "athena":
        return parts, [athena_stream_select(lake, warehouse)]
    return parts, [stream_select_sql([lake.uri(k) for k in keys])]


def athena_stream_select(lake, warehouse) -> str:  # noqa: ANN001
    """Athena: an external JSON table over raw/stream/ (partition projection on year/month/day)."""
    table = "raw_stream"
    cols = [{"Name": uci.lower(), "Type": "string"} for uci in UCI_NAMES.values()]
    location = lake.uri(RAW_STREAM_PREFIX) + "/"
    table_input = {
        "Name": table, "TableType": "EXTERNAL_TABLE",
        "Parameters": {
            "classification": "json", "projection.enabled": "true",
            "projection.year.type": "integer", "projection.year.range": "2000,2100",
            "projection.month.type": "integer", "projection.month.range": "1,12", "projection.month.digits": "2",
            "projection.day.type": "integer", "projection.day.range": "1,31", "projection.day.digits": "2",
            "storage.location.template": location + "year=${year}/month=${month}/day=${day}/",
        },
        "PartitionKeys": [{"Name": p, "Type": "string"} for p in ("year", "month", "day")],
        "StorageDescriptor": {
            "Columns": cols, "Location": location,
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe",
                          "Parameters": {"ignore.malformed.json": "false"}},
        },
    }
    warehouse.ensure_database()
    glue = warehouse._client("glue")  # noqa: SLF001 - same pattern as AthenaWarehouse.source_select
    try:
        glue.update_table(DatabaseName=warehouse.database, TableInput=table_input)
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=warehouse.database, TableInput=table_input)
    select = ", ".join(f"CAST({UCI_NAMES[c].lower()} AS VARCHAR) AS {c}" for c in SOURCE_COLUMNS)
    return (
        f"SELECT {select}, CAST(\"$path\" AS VARCHAR) AS source_file, "
        f"CAST(row_number() OVER (PARTITION BY \"$path\") AS BIGINT) AS source_row, "
        f"'stream' AS route, '{STREAM_DATE_ORDER}' AS date_order FROM {table}"
    )


def register() -> None:
    from ecommerce_platform.lake import clean

    if stream_sources not in clean.EXTRA_SOURCES:
        clean.EXTRA_SOURCES.append(stream_sources)


register()
