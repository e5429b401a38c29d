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
import os
import socket
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ecommerce_platform.config import RAW_BATCH_PREFIX, Settings
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
UCI_URL = "https://archive.ics.uci.edu/static/public/352/online+retail.zip"


@dataclass
class ResolvedSource:
    path: Path
    origin: str  # env | data_dir | downloaded | synthetic
    note: str


def resolve_sources(settings: Settings, download_timeout: float = 8.0) -> list[ResolvedSource]:
    """Which files to land: ECOMMERCE_SOURCE, else the source files in the data folder, else the UCI
    download, else a generated synthetic data set (offline)."""
    if settings.source:
        path = Path(settings.source).expanduser()
        if not path.exists():
            raise SourceError(path, "ECOMMERCE_SOURCE points at a file that does not exist")
        return [ResolvedSource(path, "env", f"ECOMMERCE_SOURCE={path}")]
    data_dir = settings.data_dir
    found = sorted(
        p for p in data_dir.glob("*") if p.is_file() and p.suffix.lower() in SOURCE_SUFFIXES
    ) if data_dir.exists() else []
    if found:
        return [ResolvedSource(p, "data_dir", f"source file found in {data_dir}/: {p.name}") for p in found]
    data_dir.mkdir(parents=True, exist_ok=True)
    downloaded = _try_download_uci(data_dir, download_timeout)
    if downloaded is not None:
        return [ResolvedSource(downloaded, "downloaded", f"downloaded the UCI Online Retail file to {downloaded}")]
    from ecommerce_platform.ingestion.synthetic import generate

    target = data_dir / "synthetic_online_retail.parquet"
    generate(target)
    return [
        ResolvedSource(
            target,
            "synthetic",
            f"NO SOURCE DATA FOUND and the UCI download failed: using a GENERATED SYNTHETIC data set "
            f"({target}); set ECOMMERCE_SOURCE to use real data",
        )
    ]


def _try_download_uci(data_dir: Path, timeout: float) -> Path | None:
    if os.environ.get("ECOMMERCE_NO_DOWNLOAD"):
        return None
    target = data_dir / "Online Retail.xlsx"
    try:
        with urllib.request.urlopen(UCI_URL, timeout=timeout) as resp:  # noqa: S310 - fixed https URL
            payload = resp.read()
        with tempfile.TemporaryDirectory() as tmp:
            zpath = Path(tmp) / "online_retail.zip"
            zpath.write_bytes(payload)
            with zipfile.ZipFile(zpath) as zf:
                name = next(n for n in zf.namelist() if n.lower().endswith(".xlsx"))
                tmp_target = target.with_suffix(".xlsx.part")
                tmp_target.write_bytes(zf.read(name))
                os.replace(tmp_target, target)
        return target
    except (OSError, socket.timeout, zipfile.BadZipFile, StopIteration, ValueError) as exc:
        log.warning("could not download the UCI Online Retail file (%s)", exc)
        return None


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
