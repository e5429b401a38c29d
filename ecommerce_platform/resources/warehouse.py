"""The warehouse: the SQL engine that computes on the lake. DuckDB locally, Athena over Glue in aws.

All SQL the platform runs is written once in DuckDB's dialect (kept Trino-portable, see
``sql_dialect``). The Athena implementation transpiles it before submitting.
"""

from __future__ import annotations

import re
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from ecommerce_platform.resources.lake import Lake

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a valid table or view name")
    return name


def sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


class WarehouseError(RuntimeError):
    """A query failed in the warehouse; the message carries the engine's reason."""


class Warehouse(dg.ConfigurableResource, ABC):
    """Runs the platform's SQL. ``execute`` for statements, ``query_df`` for results,
    ``write_query`` to materialise a query as Parquet in the lake, ``register_table`` and
    ``create_view`` to make tables and views visible to users of the engine."""

    @property
    @abstractmethod
    def engine(self) -> str: ...

    @property
    def shares_intermediates(self) -> bool:
        """How multi-output transforms are best run on this engine. True: materialise the relations
        the outputs share once and read them back (Athena: a scan is billed, a scratch table is cheap).
        False: compute every output straight from its sources, without materialising anything the size
        of the input (DuckDB: a streaming engine on one machine, where a big temporary table spills)."""
        return True

    @abstractmethod
    def execute(self, sql: str, lake: Lake | None = None) -> None: ...

    @abstractmethod
    def query_df(self, sql: str, lake: Lake | None = None): ...

    @abstractmethod
    def write_query(
        self, sql: str, lake: Lake, final_prefix: str, partition_by: tuple[str, ...] = ()
    ) -> int:
        """Write the query's rows as Parquet under ``final_prefix`` (atomically); returns the row count."""

    @abstractmethod
    def run_transform(
        self,
        lake: Lake,
        temps: list[tuple[str, str]],
        outputs: list[tuple[str, str, tuple[str, ...]]],
        stats_sql: tuple[str, ...] = (),
        push_filters: bool = True,
    ):
        """A multi-step transform: build the temporary relations ``temps`` (name, SELECT) in order,
        write each output (SELECT, lake prefix, partition columns) as Parquet, run each ``stats_sql``.
        Every output is published only when all of them were written. Returns
        (rows written per output, one DataFrame per stats query).

        ``push_filters=False`` tells an engine that may inline computed columns into filters (DuckDB's
        filter pushdown) not to: for full scans whose filters test expensive computed columns, inlining
        evaluates them twice (or more) instead of once."""

    @abstractmethod
    def register_table(
        self,
        name: str,
        lake: Lake,
        prefix: str,
        columns: tuple[tuple[str, str, str], ...],
        partitions: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        """Make the Parquet data under ``prefix`` queryable as table ``name``."""

    @abstractmethod
    def create_view(self, name: str, select_sql: str, lake: Lake | None = None) -> None: ...

    def table_uri_glob(self, lake: Lake, prefix: str, partitioned: bool) -> str:
        return lake.uri(prefix) + ("/**/*.parquet" if partitioned else "/*.parquet")


def _httpfs_path() -> str | None:
    """The httpfs extension shipped by the PyPI package duckdb-extension-httpfs (loads offline)."""
    try:
        import duckdb_extension_httpfs as pkg
    except ImportError:
        return None
    import duckdb

    base = Path(pkg.__file__).parent / "extensions"
    candidates = sorted(base.glob(f"v{duckdb.__version__}/*.duckdb_extension")) or sorted(
        base.glob("*/*.duckdb_extension")
    )
    return str(candidates[0]) if candidates else None


class DuckDBWarehouse(Warehouse):
    """DuckDB in a file (``<ECOMMERCE_DATA_DIR>/warehouse.duckdb``): tables are views over the lake's
    Parquet, so any DuckDB client that opens the file can query them."""

    path: str
    memory_limit: str = "4GB"
    threads: int = 0  # 0: DuckDB's default (all cores)
    # ZSTD level 1: on the clean table as small as the default level 3, and cheaper to write
    parquet_compression_level: int = 1
    # rows a thread buffers for a PARTITION_BY write before handing them to the file writers (DuckDB's
    # default, 524288, holds too much next to a big GROUP BY under a tight memory_limit)
    partitioned_write_flush_rows: int = 122880

    @property
    def engine(self) -> str:
        return "duckdb"

    @property
    def shares_intermediates(self) -> bool:
        return False

    @contextmanager
    def connect(self, lake: Lake | None = None, read_only: bool = False):
        import duckdb

        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(self.path, read_only=read_only)
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            raise WarehouseError(
                f"cannot open the warehouse file {self.path}: {exc}. Another process (a DuckDB "
                "client, a notebook, another run) may hold it open; close it and retry."
            ) from exc
        try:
            con.execute(f"SET memory_limit={sql_str(self.memory_limit)}")
            con.execute("SET preserve_insertion_order=false")
            if self.threads:
                con.execute(f"SET threads={int(self.threads)}")
            tmp = Path(self.path).parent / ".duckdb_tmp"
            con.execute(f"SET temp_directory={sql_str(str(tmp))}")
            if lake is not None and lake.is_remote:
                ext = _httpfs_path()
                con.execute(f"LOAD {sql_str(ext)}" if ext else "LOAD httpfs")
                lake.configure_duckdb(con)
            yield con
        finally:
            con.close()

    def execute(self, sql: str, lake: Lake | None = None) -> None:
        import duckdb

        with self.connect(lake) as con:
            try:
                con.execute(sql)
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB: {exc}") from exc

    def query_df(self, sql: str, lake: Lake | None = None):
        import duckdb

        with self.connect(lake) as con:
            try:
                return con.execute(sql).df()
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB: {exc}") from exc

    def write_query(
        self, sql: str, lake: Lake, final_prefix: str, partition_by: tuple[str, ...] = ()
    ) -> int:
        counts, _ = self.run_transform(lake, [], [(sql, final_prefix, tuple(partition_by))])
        return counts[0]

    def run_transform(self, lake, temps, outputs, stats_sql=(), push_filters=True):  # noqa: ANN001
        import duckdb

        stagings: list[str] = []
        counts: list[int] = []
        try:
            with self.connect(lake) as con:
                if not push_filters:
                    con.execute("SET disabled_optimizers = 'filter_pushdown'")
                for name, select in temps:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS {select}")
                for select, prefix, partition_by in outputs:
                    staging = lake.staging_prefix(prefix)
                    stagings.append(staging)
                    counts.append(self._copy(con, lake, select, staging, partition_by))
                stats = [con.execute(q).df() for q in stats_sql]
        except BaseException as exc:
            for staging in stagings:  # nothing is published unless every output was written
                lake.delete_prefix(staging)
            if isinstance(exc, duckdb.Error):
                raise WarehouseError(f"DuckDB: {exc}") from exc
            raise
        for staging, (_, prefix, _) in zip(stagings, outputs):
            lake.publish_prefix(staging, prefix)
        return counts, stats

    def _copy(self, con, lake: Lake, select: str, staging: str, partition_by) -> int:  # noqa: ANN001
        target = lake.uri(staging)
        if not lake.is_remote:
            Path(target).mkdir(parents=True, exist_ok=True)
        opts = ["FORMAT parquet", "COMPRESSION zstd", f"COMPRESSION_LEVEL {int(self.parquet_compression_level)}",
                "ROW_GROUP_SIZE 122880"]
        if partition_by:
            con.execute(f"SET partitioned_write_flush_threshold={int(self.partitioned_write_flush_rows)}")
            opts.append(f"PARTITION_BY ({', '.join(ident(c) for c in partition_by)})")
            opts.append("OVERWRITE_OR_IGNORE true")
            dest = target
        else:
            dest = target + "/part-0.parquet"
        res = con.execute(f"COPY ({select}) TO {sql_str(dest)} ({', '.join(opts)})").fetchone()
        return int(res[0]) if res else 0

    def register_table(self, name, lake, prefix, columns, partitions=()):  # noqa: ANN001
        from ecommerce_platform.lake.schema import DUCKDB_TYPES

        glob = self.table_uri_glob(lake, prefix, bool(partitions))
        hive = ""
        if partitions:
            types = ", ".join(f"{sql_str(n)}: {DUCKDB_TYPES[t]}" for n, t, _ in partitions)
            hive = f", hive_partitioning=true, hive_types={{{types}}}"
        cols = ", ".join(ident(c) for c, _, _ in (*columns, *partitions))
        empty = ", ".join(
            f"CAST(NULL AS {DUCKDB_TYPES[t]}) AS {ident(c)}" for c, t, _ in (*columns, *partitions)
        )
        has_files = bool(lake.list(prefix))
        body = (
            f"SELECT {cols} FROM read_parquet({sql_str(glob)}{hive})"
            if has_files
            else f"SELECT {empty} WHERE false"
        )
        self.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS {body}", lake)

    def create_view(self, name: str, select_sql: str, lake: Lake | None = None) -> None:
        self.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS {select_sql}", lake)


class AthenaWarehouse(Warehouse):
    """Athena over the Glue Data Catalog. SQL is transpiled from the platform's dialect to Trino.
    Honours AWS_ENDPOINT_URL (tests run it against moto's server)."""

    database: str = "ecommerce"
    workgroup: str = "ecommerce"
    output_location: str | None = None
    region: str = "eu-west-1"
    endpoint_url: str | None = None
    poll_seconds: float = 0.5
    timeout_seconds: float = 1800.0

    @property
    def engine(self) -> str:
        return "athena"

    def _client(self, service: str):
        from ecommerce_platform.resources.aws import boto_client

        return boto_client(service, region=self.region, endpoint_url=self.endpoint_url)

    def ensure_database(self) -> None:
        glue = self._client("glue")
        try:
            glue.get_database(Name=self.database)
        except glue.exceptions.EntityNotFoundException:
            glue.create_database(DatabaseInput={"Name": self.database})

    def run(self, trino_sql: str) -> str:
        """Submit one statement (already Trino), wait for it, return the query execution id."""
        athena = self._client("athena")
        kwargs = {
            "QueryString": trino_sql,
            "QueryExecutionContext": {"Database": self.database},
            "WorkGroup": self.workgroup,
        }
        if self.output_location:
            kwargs["ResultConfiguration"] = {"OutputLocation": self.output_location}
        qid = athena.start_query_execution(**kwargs)["QueryExecutionId"]
        deadline = time.monotonic() + self.timeout_seconds
        while True:
            status = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return qid
            if state in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise WarehouseError(f"Athena query {qid} {state.lower()}: {reason}")
            if time.monotonic() > deadline:
                athena.stop_query_execution(QueryExecutionId=qid)
                raise WarehouseError(f"Athena query {qid} timed out after {self.timeout_seconds}s")
            time.sleep(self.poll_seconds)

    def execute(self, sql: str, lake: Lake | None = None) -> None:
        from ecommerce_platform.resources.sql_dialect import to_trino

        for stmt in [s for s in to_trino(sql).split(";\n") if s.strip()]:
            self.run(stmt)

    def query_df(self, sql: str, lake: Lake | None = None):
        import pandas as pd

        from ecommerce_platform.resources.sql_dialect import to_trino

        qid = self.run(to_trino(sql))
        athena = self._client("athena")
        rows, header = [], None
        for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
            for row in page["ResultSet"]["Rows"]:
                values = [d.get("VarCharValue") for d in row["Data"]]
                if header is None:
                    header = values
                    continue
                rows.append(values)
        return pd.DataFrame(rows, columns=header or [])

    def ctas_statement(self, table: str, trino_select: str, location: str, partition_by=()) -> str:  # noqa: ANN001
        """CREATE TABLE ... AS (Trino) writing ZSTD Parquet at ``location``; partition columns must be
        the select's last columns (an Athena rule)."""
        props = ["format = 'PARQUET'", "write_compression = 'ZSTD'",
                 f"external_location = {sql_str(location)}"]
        if partition_by:
            props.append("partitioned_by = ARRAY[" + ", ".join(sql_str(ident(c)) for c in partition_by) + "]")
        return f"CREATE TABLE {ident(table)} WITH ({', '.join(props)}) AS {trino_select}"

    def _write_staging(self, sql: str, lake: Lake, staging: str, partition_by=()) -> int:  # noqa: ANN001
        """CTAS the query's rows into ``staging`` (metadata-only table dropped afterwards); row count."""
        from ecommerce_platform.resources.sql_dialect import to_trino

        tmp = f"tmp_{uuid.uuid4().hex[:12]}"
        self.run(self.ctas_statement(tmp, to_trino(sql), lake.uri(staging) + "/", partition_by))
        try:
            count_df = self.query_df(f"SELECT count(*) AS n FROM {tmp}")
            return int(count_df.iloc[0, 0]) if len(count_df) else 0
        finally:
            self.run(f"DROP TABLE IF EXISTS {tmp}")  # metadata only: the data stays in staging

    def write_query(self, sql, lake, final_prefix, partition_by=()):  # noqa: ANN001
        staging = lake.staging_prefix(final_prefix)
        try:
            n = self._write_staging(sql, lake, staging, partition_by)
        except BaseException:
            lake.delete_prefix(staging)
            raise
        lake.publish_prefix(staging, final_prefix)
        return n

    def run_transform(self, lake, temps, outputs, stats_sql=(), push_filters=True):  # noqa: ANN001
        from ecommerce_platform.resources.sql_dialect import to_trino

        run_id = uuid.uuid4().hex[:12]
        scratch = f"_scratch/{run_id}"
        names: dict[str, str] = {}

        def sub(sql: str) -> str:
            for name, table in names.items():
                sql = re.sub(rf"\b{re.escape(name)}\b", table, sql)
            return sql

        stagings: list[str] = []
        try:
            for name, select in temps:
                table = f"tmp_{run_id}_{ident(name)}"
                location = lake.uri(f"{scratch}/{name}") + "/"
                self.run(
                    f"CREATE TABLE {table} WITH (format = 'PARQUET', external_location = "
                    f"{sql_str(location)}) AS {to_trino(sub(select))}"
                )
                names[name] = table
            counts = []
            for sql, prefix, partition_by in outputs:
                staging = lake.staging_prefix(prefix)
                stagings.append(staging)
                counts.append(self._write_staging(sub(sql), lake, staging, partition_by))
            stats = [self.query_df(sub(q)) for q in stats_sql]
        except BaseException:
            for staging in stagings:
                lake.delete_prefix(staging)
            raise
        finally:
            for table in names.values():
                self.run(f"DROP TABLE IF EXISTS {table}")
            lake.delete_prefix(scratch)
        # every output was written: publish them together
        for staging, (_, prefix, _) in zip(stagings, outputs):
            lake.publish_prefix(staging, prefix)
        return counts, stats

    def register_table(self, name, lake, prefix, columns, partitions=()):  # noqa: ANN001
        """A Glue table over the Parquet prefix; partitions by projection (no crawler, no MSCK)."""
        from ecommerce_platform.lake.schema import GLUE_TYPES

        self.ensure_database()
        location = lake.uri(prefix).rstrip("/") + "/"
        params = {"classification": "parquet", "EXTERNAL": "TRUE"}
        if partitions:
            params["projection.enabled"] = "true"
            template = location + "/".join(f"{n}=${{{n}}}" for n, _, _ in partitions) + "/"
            params["storage.location.template"] = template
            for n, _, _ in partitions:
                params[f"projection.{n}.type"] = "integer"
                params[f"projection.{n}.range"] = "1990,2100" if n == "year" else "1,12"
        table_input = {
            "Name": ident(name),
            "TableType": "EXTERNAL_TABLE",
            "Parameters": params,
            "PartitionKeys": [
                {"Name": n, "Type": GLUE_TYPES[t], "Comment": d} for n, t, d in partitions
            ],
            "StorageDescriptor": {
                "Columns": [{"Name": n, "Type": GLUE_TYPES[t], "Comment": d} for n, t, d in columns],
                "Location": location,
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
                },
            },
        }
        glue = self._client("glue")
        try:
            glue.update_table(DatabaseName=self.database, TableInput=table_input)
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(DatabaseName=self.database, TableInput=table_input)

    def create_view(self, name: str, select_sql: str, lake: Lake | None = None) -> None:
        from ecommerce_platform.resources.sql_dialect import to_trino

        self.run(f"CREATE OR REPLACE VIEW {ident(name)} AS {to_trino(select_sql)}")

    def source_select(self, lake: Lake, batch) -> str:  # noqa: ANN001
        """Register the landed raw file as an external Glue table and select it in the canonical shape.

        The table's columns are positional (``c0..cN``, every column of the file in file order): CSV is
        read by position by the OpenCSV SerDe, and Parquet with ``parquet.column.index.access``, so
        file column names that are not valid Athena identifiers ("Customer ID") need no quoting."""
        from ecommerce_platform.lake.schema import SOURCE_COLUMNS

        spec = batch.spec
        table = f"raw_batch_{batch.sha256[:12]}"
        folder = lake.uri(batch.read_key).rsplit("/", 1)[0] + "/"
        if spec.format == "xlsx":  # read from its text-typed Parquet conversion (mapped columns only)
            file_columns = [(n, "string") for n in dict.fromkeys(spec.columns.values())]
        elif spec.format == "parquet":
            file_columns = list(spec.column_types.items()) or [
                (n, "string") for n in dict.fromkeys(spec.columns.values())
            ]
        else:
            file_columns = [(n, "string") for n in (spec.header or dict.fromkeys(spec.columns.values()))]
        cols = [{"Name": f"c{i}", "Type": typ} for i, (_, typ) in enumerate(file_columns)]
        position = {name: i for i, (name, _) in reversed(list(enumerate(file_columns)))}
        if spec.format in ("parquet", "xlsx"):
            storage = {
                "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                    "Parameters": {"parquet.column.index.access": "true"},
                },
            }
            params = {"classification": "parquet"}
        else:
            serde = {"separatorChar": spec.delimiter or ",", "quoteChar": '"', "escapeChar": "\\"}
            if spec.encoding != "utf-8":
                serde["serialization.encoding"] = "ISO-8859-1"
            storage = {
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {
                    "SerializationLibrary": "org.apache.hadoop.hive.serde2.OpenCSVSerde",
                    "Parameters": serde,
                },
            }
            params = {"classification": "csv", "skip.header.line.count": "1"}
        self.ensure_database()
        glue = self._client("glue")
        table_input = {
            "Name": table, "TableType": "EXTERNAL_TABLE", "Parameters": params,
            "StorageDescriptor": {"Columns": cols, "Location": folder, **storage},
        }
        try:
            glue.update_table(DatabaseName=self.database, TableInput=table_input)
        except glue.exceptions.EntityNotFoundException:
            glue.create_table(DatabaseName=self.database, TableInput=table_input)
        select = []
        for canonical in SOURCE_COLUMNS:
            original = spec.columns.get(canonical)
            expr = (
                f"CAST(c{position[original]} AS VARCHAR)" if original in position
                else "CAST(NULL AS VARCHAR)"
            )
            select.append(f"{expr} AS {canonical}")
        return (
            f"SELECT {', '.join(select)}, {sql_str(lake.uri(batch.read_key))} AS source_file, "
            f"CAST(row_number() OVER () AS BIGINT) AS source_row, 'batch' AS route, "
            f"{sql_str(spec.slash_date_order)} AS date_order FROM {ident(table)}"
        )
