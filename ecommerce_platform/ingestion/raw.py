"""The raw zone: the source landed byte for byte under an ingest-date partition, with its content hash.

Layout (keys relative to the lake root):
  raw/batch/ingest_date=YYYY-MM-DD/<sha12>/<file name>   the source, as it was
  raw/batch/_manifests/<sha256>.json                       what the platform learned about it
  raw/converted/<sha12>.parquet                            text-typed Parquet of a workbook (.xlsx only)
Landing the same content again (whatever its name) is a no-op: the manifest of its hash exists.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ecommerce_platform.config import (
    GENERATED_DIR_NAME,
    RAW_BATCH_PREFIX,
    SOURCE_REFERENCE,
    SOURCE_SYNTHETIC,
    Settings,
)
from ecommerce_platform.ingestion.source import (
    SourceError,
    SourceSpec,
    convert_xlsx_to_parquet,
    inspect_source,
)
from ecommerce_platform.resources.lake import Lake

log = logging.getLogger(__name__)

MANIFEST_PREFIX = f"{RAW_BATCH_PREFIX}/_manifests"
SOURCE_SUFFIXES = (".parquet", ".csv", ".xlsx", ".txt", ".tsv")


@dataclass
class ResolvedSource:
    path: Path
    origin: str  # env | data_dir | reference | synthetic
    note: str

    @property
    def generated(self) -> bool:
        return self.origin == "synthetic"


def resolve_sources(settings: Settings) -> list[ResolvedSource]:
    """Which files to land, in this order (README, "Data sources"):

    1. ``ECOMMERCE_SOURCE``: a file, a folder of source files, ``synthetic`` (the generated data set)
       or ``reference`` (the shipped reference file);
    2. otherwise the user's source files in the data folder (top level; never a file the platform
       generated itself);
    3. otherwise the reference data set shipped in the repository (``data/reference/``).
    Nothing is downloaded and generated data is never picked silently."""
    if settings.source:
        value = settings.source.strip()
        if value.lower() == SOURCE_SYNTHETIC:
            return [synthetic_source(settings)]
        if value.lower() == SOURCE_REFERENCE:
            return [reference_source(settings)]
        path = Path(value).expanduser()
        if not path.exists():
            raise SourceError(path, "ECOMMERCE_SOURCE points at a file or folder that does not exist")
        if path.is_dir():
            found = user_source_files(path)
            if not found:
                raise SourceError(path, "ECOMMERCE_SOURCE is a folder with no source file "
                                        f"({', '.join(SOURCE_SUFFIXES)}) in it")
            return [ResolvedSource(p, "env", f"ECOMMERCE_SOURCE folder {path}: {p.name}") for p in found]
        return [ResolvedSource(path, "env", f"ECOMMERCE_SOURCE={path}")]
    found = user_source_files(settings.data_dir)
    if found:
        return [ResolvedSource(p, "data_dir", f"source file found in {settings.data_dir}/: {p.name}")
                for p in found]
    return [reference_source(settings)]


def user_source_files(folder: Path) -> list[Path]:
    """Source files at the top of ``folder`` (sorted by name), leaving out hidden files and every data set
    the platform generated itself (marked in its Parquet metadata)."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith((".", "~$")) and p.suffix.lower() in SOURCE_SUFFIXES
        and not is_generated(p)
    )


def is_generated(path: Path) -> bool:
    from ecommerce_platform.ingestion.synthetic import GENERATED_MARKER, LEGACY_NAMES

    if path.name in LEGACY_NAMES:
        return True  # written by earlier versions into the data folder itself, without the marker
    if path.suffix.lower() != ".parquet":
        return False
    try:
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path).metadata or {}
    except Exception:  # noqa: BLE001 - not readable here: landing will say what is wrong with it
        return False
    return GENERATED_MARKER in meta


def reference_source(settings: Settings) -> ResolvedSource:
    path = settings.reference_source
    if not path.is_file():
        raise SourceError(
            path, "no source data: the reference data set is missing, ECOMMERCE_SOURCE is unset and the "
            f"data folder {settings.data_dir}/ holds no source file. Restore data/reference/ from the "
            "repository, drop a file into the data folder, or set ECOMMERCE_SOURCE (a file, a folder, "
            "or 'synthetic' for a generated data set)")
    return ResolvedSource(path, "reference", f"the reference data set shipped with the platform: {path}")


def synthetic_source(settings: Settings, rows: int = 200_000) -> ResolvedSource:
    from ecommerce_platform.ingestion.synthetic import generate

    target = settings.data_dir / GENERATED_DIR_NAME / "synthetic_online_retail.parquet"
    if not target.exists():
        generate(target, rows=rows)
    return ResolvedSource(
        target, "synthetic",
        f"ECOMMERCE_SOURCE=synthetic: using a GENERATED SYNTHETIC data set ({target}), not real data; "
        "figures, models and answers describe invented transactions")


@dataclass
class Landed:
    key: str
    uri: str
    sha256: str
    size_bytes: int
    format: str
    rows: int
    ingest_date: str
    origin: str
    noop: bool
    spec: SourceSpec
    read_key: str  # what the engine reads: the file itself, or its Parquet conversion (.xlsx)

    def manifest(self) -> dict:
        return {
            "key": self.key, "uri": self.uri, "sha256": self.sha256, "size_bytes": self.size_bytes,
            "format": self.format, "rows": self.rows, "ingest_date": self.ingest_date,
            "origin": self.origin, "read_key": self.read_key, "spec": json.loads(self.spec.to_json()),
        }


def land_source(
    lake: Lake, source: ResolvedSource, ingest_date: dt.date | None = None, work_dir: str | None = None
) -> Landed:
    """Land one source file in the raw zone (idempotent by content hash)."""
    spec = inspect_source(source.path)
    manifest_key = f"{MANIFEST_PREFIX}/{spec.sha256}.json"
    if lake.exists(manifest_key):
        data = json.loads(lake.get_text(manifest_key))
        return _from_manifest(data, noop=True)
    day = (ingest_date or dt.datetime.now(dt.timezone.utc).date()).isoformat()
    key = f"{RAW_BATCH_PREFIX}/ingest_date={day}/{spec.sha256[:12]}/{source.path.name}"
    read_key = key
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        converted = None
        if spec.format == "xlsx":
            # convert before anything is written: a workbook that fails here leaves no trace in the lake
            converted = Path(tmp) / "converted.parquet"
            spec.rows = convert_xlsx_to_parquet(source.path, spec, converted)
            spec.column_types = {name: "string" for name in spec.columns.values()}
            read_key = f"raw/converted/{spec.sha256[:12]}/data.parquet"
            from ecommerce_platform.ingestion.source import _date_order, source_select_sql

            import duckdb

            with duckdb.connect() as con:
                spec.slash_date_order = _date_order(con, source_select_sql(str(converted), spec))
        written: list[str] = []
        try:
            lake.upload_file(source.path, key)
            written.append(key)
            if converted is not None:
                lake.upload_file(converted, read_key)
                written.append(read_key)
            landed = Landed(
                key=key, uri=lake.uri(key), sha256=spec.sha256, size_bytes=spec.size_bytes,
                format=spec.format, rows=spec.rows, ingest_date=day, origin=source.origin, noop=False,
                spec=spec, read_key=read_key,
            )
            # the manifest is written last: it is what makes the batch exist for the clean transform
            lake.put_text(manifest_key, json.dumps(landed.manifest(), indent=2, sort_keys=True))
        except BaseException:
            for k in written:  # no half-landed batch: objects without a manifest are removed
                try:
                    lake.delete_prefix(k)
                except Exception:  # noqa: BLE001 - keep the original error
                    log.warning("could not remove %s after a failed landing", k)
            raise
    return landed


def _from_manifest(data: dict, noop: bool = False) -> Landed:
    return Landed(
        key=data["key"], uri=data["uri"], sha256=data["sha256"], size_bytes=data["size_bytes"],
        format=data["format"], rows=data["rows"], ingest_date=data["ingest_date"],
        origin=data.get("origin", ""), noop=noop, spec=SourceSpec.from_dict(data["spec"]),
        read_key=data.get("read_key", data["key"]),
    )


def landed_batches(lake: Lake) -> list[Landed]:
    """Every batch landed in the raw zone, oldest ingest first."""
    out = []
    for key in lake.list(MANIFEST_PREFIX):
        if key.endswith(".json"):
            out.append(_from_manifest(json.loads(lake.get_text(key))))
    return sorted(out, key=lambda b: (b.ingest_date, b.key))
