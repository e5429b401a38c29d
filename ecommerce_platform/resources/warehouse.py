"""The warehouse: the SQL engine that computes on the lake, and the catalog that makes its tables and
views visible. DuckDB locally (also over S3), Athena over the Glue Data Catalog in aws.

The warehouse depends on the lake (a nested resource: ``warehouse.lake``). All SQL the platform runs
is written once in DuckDB's dialect (kept Trino-portable, see ``sql_dialect``); the Athena engine
transpiles it. Each engine owns its differences: how it reads a batch's canonical copy or the landed
stream objects (``external_relation``), how it publishes a table or a view (``register_table``,
``create_view``), whether a multi-output transform materialises what its outputs share
(``shares_intermediates``).

DuckDB and concurrency. The platform never computes inside the warehouse file. Every query runs on an
in-memory DuckDB connection (through ``dagster-duckdb``) whose catalog of views is rebuilt from the
lake's catalog entries (``_catalog/duckdb/<name>.json``: a table is a view over Parquet, a view is its
SELECT). The file ``warehouse.duckdb`` is only published for people and outside tools: after a catalog
change a new file is written beside it and renamed over it, under a short file lock. So runs never
wait for each other or for an analyst's client on that file: a client that holds the file open keeps
reading the version it opened, and the next open sees the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import uuid
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.sql_dialect import literal
from ecommerce_platform.schema import CATALOG_PREFIX

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def ident(name: str) -> str:
    if not _IDENT.match(name):
        raise ValueError(f"{name!r} is not a valid table or view name")
    return name


def sql_str(value: str) -> str:
    return literal(str(value))


class WarehouseError(RuntimeError):
    """A query failed in the warehouse; the message carries the engine's reason."""


@dataclass
class Output:
    """One output of a transform: its SELECT, the lake prefix it is published under, its partition
    columns, the partition folders this run owns (``parts``: only they are replaced, one atomic publish
    each; None: the whole prefix), and ``measure``: a SELECT over ``{output}`` (the rows written) whose
    result the engine returns so that the caller can check the output before it is published.
    ``append``: the rows written are added to the partition folders ``parts`` beside the files they hold
    (new files), instead of replacing them."""

    select: str
    prefix: str
    partition_by: tuple[str, ...] = ()
    parts: list[str] | None = None
    measure: str | None = None
    append: bool = False
    part_rows: int | None = None  # about how many rows each partition folder gets (engines size row groups by it)
    push_filters: bool | None = None  # this output's own run_transform(push_filters=...) (None: the transform's)


def _as_output(output) -> Output:  # noqa: ANN001
    return output if isinstance(output, Output) else Output(*output)


class Warehouse(dg.ConfigurableResource, ABC):
    """Runs the platform's SQL on the lake. ``execute`` for statements, ``query_df`` for typed results,
    ``write_query``/``run_transform`` to materialise queries as Parquet in the lake, ``register_table``
    and ``create_view`` to make tables and views visible to users of the engine."""

    lake: Lake

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
    def execute(self, sql: str) -> None: ...

    @abstractmethod
    def query_df(self, sql: str): ...

    @abstractmethod
    def run_transform(
        self,
        temps: list[tuple[str, str]],
        outputs: list,
        stats_sql: tuple[str, ...] = (),
        push_filters: bool = True,
        validate=None,  # noqa: ANN001
    ):
        """A multi-step transform: build the temporary relations ``temps`` (name, SELECT) in order,
        write each output (an ``Output``, or a tuple of its fields) as Parquet, run each ``stats_sql``
        and each output's ``measure``. Every output is published only when all of them were written,
        and when ``validate(counts, stats, measures)`` (if given) returns without raising. Returns
        (rows written per output, one DataFrame per stats query).

        ``push_filters=False`` tells an engine that may inline computed columns into filters (DuckDB's
        filter pushdown) not to: for full scans whose filters test expensive computed columns, inlining
        evaluates them twice (or more) instead of once."""

    def _publish(self, staging: str, output: Output) -> None:
        prefix, parts = output.prefix, output.parts
        if parts is None:
            self.lake.publish_prefix(staging, prefix)
            return
        from ecommerce_platform.faults import crash_point

        for part in parts:
            if self.lake.list(f"{staging}/{part}"):
                publish = self.lake.add_to_prefix if output.append else self.lake.publish_prefix
                publish(f"{staging}/{part}", f"{prefix}/{part}")
            elif not output.append:
                self.lake.delete_prefix(f"{prefix}/{part}")
            crash_point("publish:part")
        self.lake.delete_prefix(staging)

    def write_query(self, sql: str, final_prefix: str, partition_by: tuple[str, ...] = ()) -> int:
        """Write the query's rows as Parquet under ``final_prefix`` (atomically); returns the row count."""
        counts, _ = self.run_transform([], [Output(sql, final_prefix, tuple(partition_by))])
        return counts[0]

    @abstractmethod
    def register_table(
        self,
        name: str,
        prefix: str,
        columns: tuple[tuple[str, str, str], ...],
        partitions: tuple[tuple[str, str, str], ...] = (),
        partition_values: dict[str, list[str]] | None = None,
    ) -> None:
        """Make the Parquet data under ``prefix`` queryable as table ``name``. ``partition_values``: the
        values a text partition column takes (catalogs that project partitions list them)."""

    @abstractmethod
    def create_view(self, name: str, select_sql: str) -> None: ...

    @abstractmethod
    def external_relation(self, name: str, keys: list[str], columns: dict[str, str], fmt: str = "parquet",
                          location: str | None = None) -> str:
        """A relation (something to put after FROM) over objects the platform did not publish as a table:
        the files ``keys`` (Parquet, or newline-delimited JSON with ``fmt='ndjson'``), all of them under the
        prefix ``location``. ``columns`` maps each column to its Glue type. DuckDB reads the files
        themselves; Athena registers a table ``name`` over ``location`` and keeps the rows of those files."""

    @property
    def pass_rows(self) -> int | None:
        """Lines a multi-month transform takes in one pass at most (None: all in one)."""
        return None

    def queryable(self, name: str) -> bool:
        """True when the warehouse answers a query on the table or view ``name`` (it is in the catalog and
        binds): what an asset that reuses its previous output checks before saying so."""
        try:
            self.query_df(f"SELECT * FROM {name} LIMIT 0")
        except WarehouseError:
            return False
        return True

    def table_uri_glob(self, prefix: str, partitioned: bool) -> str:
        return self.lake.uri(prefix) + ("/**/*.parquet" if partitioned else "/*.parquet")

    def table_name(self, name: str) -> str:
        """The name users of the engine know the table by (``dagster/table_name``)."""
        return name

    @property
    def kinds(self) -> set[str]:
        return {self.engine}


# ------------------------------------------------------------------------------------------- DuckDB
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


_IO_RETRIES = 3  # a read that races a publish (files renamed away under a glob) is tried again


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DuckDBWarehouse(Warehouse):
    """DuckDB: computes on in-memory connections over the lake's Parquet, and publishes the catalog as a
    file (``path``, ``<ECOMMERCE_DATA_DIR>/warehouse.duckdb``) that any DuckDB client can open."""

    path: str
    memory_limit: str = "4GB"
    threads: int = 0  # 0: DuckDB's default (all cores)
    # ZSTD level 1: on the clean table as small as the default level 3, and cheaper to write
    parquet_compression_level: int = 1
    # rows a thread buffers for a PARTITION_BY write before handing them to the file writers (DuckDB's
    # default, 524288, holds too much next to a big GROUP BY under a tight memory_limit)
    partitioned_write_flush_rows: int = 122880
    # rows per row group of a PARTITION_BY write, at least: a partition's row group is encoded when it
    # fills, by the thread that fills it; what is left is encoded at the end, one partition file after
    # another. Partitions of a few row groups keep both threads encoding (the clean zone at 1x, 41,000 rows
    # a month: 0.29 s to write in row groups of 20,000 rows, 0.44 s in one per month); big partitions get
    # row groups of up to 122,880 rows (at 100x: 59-62 s against 67-68 s in row groups of 20,000)
    partitioned_row_group_rows: int = 20000
    # lines the clean transform folds in one pass at most (whole months): a pass's GROUP BY stays in memory
    transform_pass_rows: int = 6_000_000
    # True runs multi-output transforms the way Athena does (materialised intermediates): the tests
    # execute the Athena path's SQL on DuckDB with it
    materialize_intermediates: bool = False
    publish_file: bool = True  # write warehouse.duckdb for outside clients after catalog changes
    # aws deployment with DuckDB as the engine: tables are registered in this Glue database too, so that
    # the team's Athena users see every table the platform writes, whatever engine wrote it
    glue_database: str | None = None
    region: str | None = None

    _con: Any = PrivateAttr(default=None)
    _con_lock: Any = PrivateAttr(default=None)
    _catalog_seen: dict = PrivateAttr(default_factory=dict)
    _catalog_synced: float = PrivateAttr(default=0.0)
    _entry_cache: dict = PrivateAttr(default_factory=dict)

    catalog_ttl_seconds: float = 2.0  # other processes' catalog changes show within this time

    @property
    def engine(self) -> str:
        return "duckdb"

    @property
    def shares_intermediates(self) -> bool:
        return self.materialize_intermediates

    def table_name(self, name: str) -> str:
        return f"{Path(self.path).stem}.{name}"

    @property
    def pass_rows(self) -> int | None:
        return int(self.transform_pass_rows) or None

    # ---- connections
    def _duckdb(self):
        from dagster_duckdb import DuckDBResource

        config: dict = {"memory_limit": self.memory_limit, "preserve_insertion_order": False}
        if self.threads:
            config["threads"] = int(self.threads)
        return DuckDBResource(database=":memory:", connection_config=config)

    def _configure(self, con) -> None:  # noqa: ANN001
        tmp = Path(self.path).parent / ".duckdb_tmp"
        con.execute(f"SET temp_directory={sql_str(str(tmp))}")
        if self.lake.is_remote:
            ext = _httpfs_path()
            con.execute(f"LOAD {sql_str(ext)}" if ext else "LOAD httpfs")
            self.lake.configure_duckdb(con)

    def _base(self):
        """The resource's in-memory database (opened once per resource lifetime), its catalog current."""
        if self._con_lock is None:
            self._con_lock = threading.Lock()
        with self._con_lock:
            if self._con is None:
                ctx = self._duckdb().get_connection()
                con = ctx.__enter__()
                self._configure(con)
                self._con = con
                self._catalog_seen = {}
                self._catalog_synced = 0.0
            if time.monotonic() - self._catalog_synced > self.catalog_ttl_seconds:
                self._sync_catalog(self._con)
                self._catalog_synced = time.monotonic()
            return self._con

    def close(self) -> None:
        if self._con is not None:
            with contextlib.suppress(Exception):
                self._con.close()
            self._con = None

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self.close()

    @contextmanager
    def connect(self):
        """A cursor on the resource's in-memory database: its own temporary tables and settings, the
        shared catalog of views."""
        cur = self._base().cursor()
        try:
            yield cur
        finally:
            cur.close()

    # ---- the catalog
    def _catalog_entries(self) -> list[dict]:
        """The catalog entries, read again only when their version (size and time, or ETag) changed."""
        entries = []
        for key, version in self.lake.list_versions(CATALOG_PREFIX).items():
            if not key.endswith(".json"):
                continue
            cached = self._entry_cache.get(key)
            if cached is None or cached[0] != version:
                try:
                    cached = (version, json.loads(self.lake.get_text(key)))
                except (FileNotFoundError, ValueError):
                    continue
                self._entry_cache[key] = cached
            entries.append(cached[1])
        return sorted(entries, key=lambda e: (e.get("seq", 0), e["name"]))

    def _sync_catalog(self, con) -> None:  # noqa: ANN001
        """Create or replace the views of catalog entries this connection has not seen yet. An entry
        that cannot be bound (its files gone) is left out: a query that needs it says it does not exist."""
        for entry in self._catalog_entries():
            if self._catalog_seen.get(entry["name"]) == entry["sql"]:
                continue
            try:
                con.execute(f"CREATE OR REPLACE VIEW {ident(entry['name'])} AS {entry['sql']}")
                self._catalog_seen[entry["name"]] = entry["sql"]
            except Exception:  # noqa: BLE001 - see docstring
                self._catalog_seen.pop(entry["name"], None)

    def _put_entry(self, name: str, select_sql: str) -> None:
        key = f"{CATALOG_PREFIX}/{ident(name)}.json"
        current = None
        if self.lake.exists(key):
            with contextlib.suppress(ValueError):
                current = json.loads(self.lake.get_text(key))
        if current and current.get("sql") == select_sql:
            if self._catalog_seen.get(name) != select_sql:  # this connection has not bound it (yet)
                with contextlib.suppress(Exception), self.connect() as con:
                    con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS {select_sql}")
                    self._catalog_seen[name] = select_sql
            if self.publish_file and not Path(self.path).exists():
                self.publish()
            return
        # the view must bind now (a typo fails here, not in a later query)
        with self.connect() as con:
            try:
                con.execute(f"CREATE OR REPLACE VIEW {ident(name)} AS {select_sql}")
            except Exception as exc:  # noqa: BLE001
                raise WarehouseError(f"DuckDB: cannot create {name}: {exc}") from exc
        seq = current["seq"] if current else time.time_ns()
        self.lake.put_text(key, json.dumps({"name": name, "sql": select_sql, "seq": seq}))
        self._catalog_seen[name] = select_sql
        if self.publish_file:
            self.publish()

    def publish(self) -> None:
        """Write the catalog to a new warehouse file and rename it over ``path`` (under a file lock)."""
        import fcntl

        import duckdb

        target = Path(self.path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._sweep_tmp(target)
        with open(target.with_name(target.name + ".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
            try:
                con = duckdb.connect(str(tmp))
                try:
                    self._configure(con)
                    for entry in self._catalog_entries():
                        with contextlib.suppress(duckdb.Error):  # entries whose files are gone
                            con.execute(f"CREATE OR REPLACE VIEW {ident(entry['name'])} AS {entry['sql']}")
                    con.execute("CHECKPOINT")
                finally:
                    con.close()
                os.replace(tmp, target)
                with contextlib.suppress(FileNotFoundError):
                    os.remove(str(target) + ".wal")
            finally:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                with contextlib.suppress(FileNotFoundError):
                    Path(str(tmp) + ".wal").unlink()

    @staticmethod
    def _sweep_tmp(target: Path) -> None:
        """Remove files that an interrupted publish left (their process is gone)."""
        for leftover in target.parent.glob(f".{target.name}.*.tmp*"):
            parts = leftover.name.split(".")
            try:
                pid = int(parts[-3] if leftover.name.endswith(".tmp") else parts[-4])
            except (ValueError, IndexError):
                continue
            if not _pid_alive(pid):
                with contextlib.suppress(FileNotFoundError):
                    leftover.unlink()

    # ---- queries
    def _retrying(self, fn):  # noqa: ANN001, ANN202
        import duckdb

        for attempt in range(_IO_RETRIES):
            try:
                return fn()
            except duckdb.IOException as exc:
                if attempt == _IO_RETRIES - 1:
                    raise WarehouseError(f"DuckDB: {exc}") from exc
                time.sleep(0.2 * (attempt + 1))
            except duckdb.CatalogException as exc:
                missing = re.search(r"Table with name (\w+) does not exist", str(exc))
                hint = (f"the warehouse has no table {missing.group(1)}: materialize the asset "
                        f"{missing.group(1)} first (DuckDB: {str(exc).splitlines()[0]})") if missing else None
                raise WarehouseError(hint or f"DuckDB: {exc}") from exc
            except duckdb.Error as exc:
                raise WarehouseError(f"DuckDB: {exc}") from exc
        raise AssertionError("unreachable")

    def execute(self, sql: str) -> None:
        def run():  # noqa: ANN202
            with self.connect() as con:
                con.execute(sql)

        self._retrying(run)

    def query_df(self, sql: str):
        def run():  # noqa: ANN202
            with self.connect() as con:
                return con.execute(sql).df()

        return self._retrying(run)

    def run_transform(self, temps, outputs, stats_sql=(), push_filters=True, validate=None):  # noqa: ANN001
        import duckdb

        lake = self.lake
        outputs = [_as_output(o) for o in outputs]
        stagings: list[str] = []
        counts: list[int] = []
        try:
            with self.connect() as con:
                pushing = True  # DuckDB's default

                def pushdown(on: bool) -> None:
                    nonlocal pushing
                    if on != pushing:
                        con.execute("RESET disabled_optimizers" if on else "SET disabled_optimizers = 'filter_pushdown'")
                        pushing = on

                pushdown(push_filters)
                for name, select in temps:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE {ident(name)} AS {select}")
                for out in outputs:
                    pushdown(push_filters if out.push_filters is None else out.push_filters)
                    staging = lake.staging_prefix(out.prefix)
                    stagings.append(staging)
                    counts.append(self._copy(con, out.select, staging, out.partition_by, out.part_rows))
                pushdown(push_filters)
                stats = [con.execute(q).df() for q in stats_sql]
                for name, _ in temps:
                    con.execute(f"DROP TABLE IF EXISTS {ident(name)}")
            measures = [self._measure(out, staging) for out, staging in zip(outputs, stagings)]
            if validate is not None:
                validate(counts, stats, measures)
        except BaseException as exc:
            for staging in stagings:  # nothing is published unless every output was written
                lake.delete_prefix(staging)
            if isinstance(exc, duckdb.Error):
                raise WarehouseError(f"DuckDB: {exc}") from exc
            raise
        for staging, output in zip(stagings, outputs):
            self._publish(staging, output)
        return counts, stats

    def _measure(self, out: Output, staging: str):  # noqa: ANN202
        """The output's ``measure`` run over what was written to ``staging`` (None without one)."""
        import pandas as pd

        from ecommerce_platform.resources.sql_dialect import Sql, render

        if out.measure is None:
            return None
        files = [k for k in self.lake.list(staging) if k.endswith(".parquet")]
        if not files:
            return pd.DataFrame()
        if out.partition_by:
            hive = ", hive_partitioning=true, hive_types={" + ", ".join(
                f"{sql_str(c)}: {'VARCHAR' if c == 'partition_month' else 'BIGINT'}" for c in out.partition_by) + "}"
            relation = f"read_parquet({sql_str(self.table_uri_glob(staging, True))}{hive})"
        else:
            relation = f"read_parquet({sql_str(self.table_uri_glob(staging, False))})"
        return self.query_df(render(out.measure, output=Sql(relation)))

    def _copy(self, con, select: str, staging: str, partition_by, part_rows: int | None = None) -> int:  # noqa: ANN001
        target = self.lake.uri(staging)
        if not self.lake.is_remote:
            Path(target).mkdir(parents=True, exist_ok=True)
        rows = 122880
        if partition_by:
            small = int(self.partitioned_row_group_rows)
            rows = small if part_rows is None else max(small, min(rows, int(part_rows) // 2))
        opts = ["FORMAT parquet", "COMPRESSION zstd", f"COMPRESSION_LEVEL {int(self.parquet_compression_level)}",
                f"ROW_GROUP_SIZE {rows}"]
        if partition_by:
            con.execute(f"SET partitioned_write_flush_threshold={int(self.partitioned_write_flush_rows)}")
            opts.append(f"PARTITION_BY ({', '.join(ident(c) for c in partition_by)})")
            opts.append("OVERWRITE_OR_IGNORE true")
            dest = target
        else:
            dest = target + "/part-0.parquet"
        res = con.execute(f"COPY ({select}) TO {sql_str(dest)} ({', '.join(opts)})").fetchone()
        return int(res[0]) if res else 0

    def register_table(self, name, prefix, columns, partitions=(), partition_values=None):  # noqa: ANN001
        from ecommerce_platform.schema import DUCKDB_TYPES

        glob = self.table_uri_glob(prefix, bool(partitions))
        hive = ""
        if partitions:
            types = ", ".join(f"{sql_str(n)}: {DUCKDB_TYPES[t]}" for n, t, _ in partitions)
            hive = f", hive_partitioning=true, hive_types={{{types}}}"
        cols = ", ".join(ident(c) for c, _, _ in (*columns, *partitions))
        empty = ", ".join(
            f"CAST(NULL AS {DUCKDB_TYPES[t]}) AS {ident(c)}" for c, t, _ in (*columns, *partitions)
        )
        has_files = any(k.endswith(".parquet") for k in self.lake.list(prefix))
        body = (
            f"SELECT {cols} FROM read_parquet({sql_str(glob)}{hive})"
            if has_files
            else f"SELECT {empty} WHERE false"
        )
        self._put_entry(name, body)
        if self.glue_database:
            import boto3

            register_glue_table(self.lake, self.glue_database, name, prefix, columns, partitions,
                                boto3.session.Session(region_name=self.region), partition_values)

    def create_view(self, name: str, select_sql: str) -> None:
        self._put_entry(name, select_sql)

    def external_relation(self, name, keys, columns, fmt="parquet", location=None):  # noqa: ANN001
        from ecommerce_platform.resources.sql_dialect import string_list

        uris = string_list(self.lake.uri(k) for k in keys)
        if fmt == "parquet":
            return f"read_parquet({uris})"
        cols = ", ".join(f"{sql_str(c)}: 'VARCHAR'" for c in columns)
        return (f"read_json({uris}, format='newline_delimited', columns={{{cols}}}, filename=true, "
                f"compression='auto_detect', ignore_errors=false)")


# ------------------------------------------------------------------------------------------- Athena
class AthenaWarehouse(Warehouse):
    """Athena over the Glue Data Catalog, through awswrangler (query execution and typed results, Glue
    tables with partition projection). SQL is transpiled from the platform's dialect to Trino. Every
    AWS client honours AWS_ENDPOINT_URL (the tests run it against moto's server)."""

    database: str = "ecommerce"
    workgroup: str = "ecommerce"
    output_location: str | None = None
    region: str = "eu-west-1"
    poll_seconds: float = 0.5

    @property
    def engine(self) -> str:
        return "athena"

    def table_name(self, name: str) -> str:
        return f"{self.database}.{name}"

    def _session(self):
        import boto3

        return boto3.session.Session(region_name=self.region)

    def ensure_database(self) -> None:
        import awswrangler as wr

        if self.database not in wr.catalog.databases(boto3_session=self._session())["Database"].tolist():
            wr.catalog.create_database(self.database, exist_ok=True, boto3_session=self._session())

    def run(self, trino_sql: str) -> str:
        """Submit one statement (already Trino), wait for it, return the query execution id."""
        import awswrangler as wr

        session = self._session()
        try:
            qid = wr.athena.start_query_execution(
                trino_sql, database=self.database, workgroup=self.workgroup, s3_output=self.output_location,
                wait=False, boto3_session=session)
            res = wr.athena.wait_query(qid, boto3_session=session, athena_query_wait_polling_delay=self.poll_seconds)
        except wr.exceptions.QueryFailed as exc:
            raise WarehouseError(f"Athena query failed: {exc}") from exc
        state = res["Status"]["State"]
        if state != "SUCCEEDED":
            raise WarehouseError(f"Athena query {qid} {state.lower()}: "
                                 f"{res['Status'].get('StateChangeReason', 'no reason given')}")
        return qid

    def execute(self, sql: str) -> None:
        from ecommerce_platform.resources.sql_dialect import to_trino

        for stmt in [s for s in to_trino(sql).split(";\n") if s.strip()]:
            self.run(stmt)

    def query_df(self, sql: str):
        """A typed DataFrame (awswrangler casts by the result's column types)."""
        import awswrangler as wr

        from ecommerce_platform.resources.sql_dialect import to_trino

        qid = self.run(to_trino(sql))
        return wr.athena.get_query_results(qid, boto3_session=self._session())

    def ctas_statement(self, table: str, trino_select: str, location: str, partition_by=()) -> str:  # noqa: ANN001
        """CREATE TABLE ... AS (Trino) writing ZSTD Parquet at ``location``; partition columns must be
        the select's last columns (an Athena rule)."""
        props = ["format = 'PARQUET'", "write_compression = 'ZSTD'",
                 f"external_location = {sql_str(location)}"]
        if partition_by:
            props.append("partitioned_by = ARRAY[" + ", ".join(sql_str(ident(c)) for c in partition_by) + "]")
        return f"CREATE TABLE {ident(table)} WITH ({', '.join(props)}) AS {trino_select}"

    def _write_staging(self, out: Output, sql: str, staging: str):  # noqa: ANN202
        """CTAS the query's rows into ``staging`` (a metadata-only table, dropped afterwards); returns
        (row count, the output's measure over the table)."""
        from ecommerce_platform.resources.sql_dialect import Sql, render, to_trino

        tmp = f"tmp_{uuid.uuid4().hex[:12]}"
        self.run(self.ctas_statement(tmp, to_trino(sql), self.lake.uri(staging) + "/", out.partition_by))
        try:
            count_df = self.query_df(f"SELECT count(*) AS n FROM {tmp}")
            measure = self.query_df(render(out.measure, output=Sql(tmp))) if out.measure else None
            return (int(count_df.iloc[0, 0]) if len(count_df) else 0), measure
        finally:
            self.run(f"DROP TABLE IF EXISTS {tmp}")  # metadata only: the data stays in staging

    def run_transform(self, temps, outputs, stats_sql=(), push_filters=True, validate=None):  # noqa: ANN001
        from ecommerce_platform.resources.sql_dialect import to_trino

        lake = self.lake
        outputs = [_as_output(o) for o in outputs]
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
            counts, measures = [], []
            for out in outputs:
                staging = lake.staging_prefix(out.prefix)
                stagings.append(staging)
                n, measure = self._write_staging(out, sub(out.select), staging)
                counts.append(n)
                measures.append(measure)
            stats = [self.query_df(sub(q)) for q in stats_sql]
            if validate is not None:
                validate(counts, stats, measures)
        except BaseException:
            for staging in stagings:
                lake.delete_prefix(staging)
            raise
        finally:
            for table in names.values():
                self.run(f"DROP TABLE IF EXISTS {table}")
            lake.delete_prefix(scratch)
        # every output was written: publish them together
        for staging, output in zip(stagings, outputs):
            self._publish(staging, output)
        return counts, stats

    def register_table(self, name, prefix, columns, partitions=(), partition_values=None):  # noqa: ANN001
        register_glue_table(self.lake, self.database, name, prefix, columns, partitions, self._session(),
                            partition_values)

    def create_view(self, name: str, select_sql: str) -> None:
        from ecommerce_platform.resources.sql_dialect import to_trino

        self.run(f"CREATE OR REPLACE VIEW {ident(name)} AS {to_trino(select_sql)}")

    def external_relation(self, name, keys, columns, fmt="parquet", location=None):  # noqa: ANN001
        """A Glue table ``name`` over ``location`` (Athena reads its subfolders too), restricted to the
        files ``keys`` by their path."""
        import awswrangler as wr

        from ecommerce_platform.resources.sql_dialect import literal as lit

        path = self.lake.uri(location or keys[0].rsplit("/", 1)[0]).rstrip("/") + "/"
        self.ensure_database()
        session = self._session()
        if fmt == "parquet":
            wr.catalog.create_parquet_table(database=self.database, table=ident(name), path=path,
                                            columns_types=dict(columns), mode="overwrite", boto3_session=session)
        else:
            wr.catalog.create_json_table(database=self.database, table=ident(name), path=path,
                                         columns_types=dict(columns), mode="overwrite", boto3_session=session)
        uris = tuple(self.lake.uri(k) for k in keys)
        return f'(SELECT * FROM {ident(name)} WHERE "$path" IN {lit(uris)})'



def register_glue_table(lake: Lake, database: str, name: str, prefix: str, columns, partitions=(), session=None,  # noqa: ANN001
                        partition_values: dict[str, list[str]] | None = None) -> None:
    """The one Glue table helper: a Parquet table over ``prefix`` with partition projection (no crawler,
    no MSCK REPAIR). Used by Athena, and by any engine in the aws deployment (so Athena users see every
    table the platform writes)."""
    import awswrangler as wr
    import boto3

    from ecommerce_platform.schema import GLUE_TYPES

    session = session or boto3.session.Session()
    location = lake.uri(prefix).rstrip("/") + "/"
    if database not in wr.catalog.databases(boto3_session=session)["Database"].tolist():
        wr.catalog.create_database(database, exist_ok=True, boto3_session=session)
    kwargs: dict = {}
    if partitions:
        integer = [n for n, t, _ in partitions if GLUE_TYPES[t] in ("int", "bigint")]
        values = {n: sorted(set((partition_values or {}).get(n) or ["none"])) for n, _, _ in partitions if n not in integer}
        projection: dict = {
            "projection_storage_location_template":
                location + "/".join(f"{n}=${{{n}}}" for n, _, _ in partitions) + "/",
            "projection_types": {n: ("integer" if n in integer else "enum") for n, _, _ in partitions},
        }
        if integer:
            projection["projection_ranges"] = {n: ("1990,2100" if n == "year" else "1,12") for n in integer}
        if values:  # text partitions (invoice months): the values that exist, listed
            projection["projection_values"] = {n: ",".join(v) for n, v in values.items()}
        kwargs = dict(partitions_types={n: GLUE_TYPES[t] for n, t, _ in partitions},
                      athena_partition_projection_settings=projection)
    wr.catalog.create_parquet_table(
        database=database, table=ident(name), path=location,
        columns_types={n: GLUE_TYPES[t] for n, t, _ in columns},
        columns_comments={n: d for n, _, d in (*columns, *partitions)},
        mode="overwrite", boto3_session=session, **kwargs)
