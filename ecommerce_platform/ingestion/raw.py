"""The raw zone: the source landed byte for byte under an ingest-date partition, with its content hash.

Layout (keys relative to the lake root):
  raw/batch/ingest_date=YYYY-MM-DD/<sha12>/<file name>   the source, as it was
  raw/batch/_manifests/<sha256>.json                       what the platform learned about it
  raw/normalized/batch/<sha12>/part-<YYYY-MM>-NNNNN.parquet   its canonical copy (ingestion/normalize.py),
                                                           one file per invoice month ('undated' too):
                                                           what the engines read, its records counted
Landing the same content again (whatever its name) is a no-op: the manifest of its hash exists.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ecommerce_platform.config import GENERATED_DIR_NAME, SOURCE_REFERENCE, SOURCE_SYNTHETIC, Settings
from ecommerce_platform.schema import RAW_BATCH_PREFIX, RAW_NORMALIZED_PREFIX
from ecommerce_platform.ingestion.source import (
    SourceError,
    SourceSpec,
    file_sha256,
    read_source,
    sniff_format,
)
from ecommerce_platform.partitions import batch_partition_key
from ecommerce_platform.resources.lake import Lake

log = logging.getLogger(__name__)

MANIFEST_PREFIX = f"{RAW_BATCH_PREFIX}/_manifests"
NORMALIZED_PREFIX = f"{RAW_NORMALIZED_PREFIX}/batch"  # raw/normalized/batch/<sha12>/part-<month>-NNNNN.parquet
SOURCE_SUFFIXES = (".parquet", ".csv", ".xlsx", ".txt", ".tsv")


@dataclass
class ResolvedSource:
    path: Path
    origin: str  # env | data_dir | reference | synthetic
    note: str

    @property
    def generated(self) -> bool:
        return self.origin == "synthetic"

    @property
    def signature(self) -> str:
        """Changes when the file changes (size or modification time): a new partition, a new landing."""
        st = self.path.stat()
        return hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]

    @property
    def partition_key(self) -> str:
        return batch_partition_key(self.path.name, self.signature)


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
    rows: int  # records the source reader counted: the batch's rows_in
    ingest_date: str
    origin: str
    noop: bool
    spec: SourceSpec
    normalized: list[str]  # keys of the canonical Parquet copy, what engines read
    landed_at: str = ""  # ISO 8601 UTC time of landing
    reader: dict = field(default_factory=dict)  # what the reader saw: blank lines, malformed records, ...
    months: dict = field(default_factory=dict)  # invoice month (or 'undated') -> lines of the batch in it

    def manifest(self) -> dict:
        return {
            "key": self.key, "uri": self.uri, "sha256": self.sha256, "size_bytes": self.size_bytes,
            "format": self.format, "rows": self.rows, "ingest_date": self.ingest_date,
            "origin": self.origin, "normalized": self.normalized, "landed_at": self.landed_at,
            "reader": self.reader, "months": self.months, "spec": json.loads(self.spec.to_json()),
        }


def normalized_prefix(sha256: str) -> str:
    return f"{NORMALIZED_PREFIX}/{sha256[:12]}"


def land_source(
    lake: Lake, source: ResolvedSource, ingest_date: dt.date | None = None, work_dir: str | None = None,
    settings: Settings | None = None,
) -> Landed:
    """Land one source file in the raw zone (idempotent by content hash): the file byte for byte, its
    canonical Parquet copy (read and counted by the strict reader, lines routed to their invoice month),
    then the manifest. A file that cannot be read raises SourceError and leaves nothing behind."""
    from ecommerce_platform.config import load_settings

    settings = settings or load_settings()
    sha = file_sha256(sniffed(source.path))
    manifest_key = f"{MANIFEST_PREFIX}/{sha}.json"
    if lake.exists(manifest_key):
        data = json.loads(lake.get_text(manifest_key))
        return _from_manifest(data, noop=True)
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    day = (ingest_date or now.date()).isoformat()
    key = f"{RAW_BATCH_PREFIX}/ingest_date={day}/{sha[:12]}/{source.path.name}"
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        # read before anything is written: a file that cannot be read leaves no trace in the lake
        spec, stats, months = read_source(source.path, tmp, settings, now, source_file=lake.uri(key))
        written: list[str] = []
        try:
            lake.upload_file(source.path, key)
            written.append(key)
            copy_keys = []
            for local in stats.files:
                copy_key = f"{normalized_prefix(sha)}/{Path(local).name}"
                lake.upload_file(local, copy_key)
                written.append(copy_key)
                copy_keys.append(copy_key)
            landed = Landed(
                key=key, uri=lake.uri(key), sha256=sha, size_bytes=spec.size_bytes,
                format=spec.format, rows=spec.rows, ingest_date=day, origin=source.origin, noop=False,
                spec=spec, normalized=copy_keys, landed_at=now.isoformat(), reader=stats.to_dict(),
                months=months,
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


def sniffed(path: Path) -> Path:
    """The path, once it is known to be a file of an accepted format (SourceError otherwise)."""
    sniff_format(path)
    return path


REJECTED_PREFIX = "raw/rejected"


def reject_source(lake: Lake, source: ResolvedSource, error: SourceError, partition_key: str) -> dict:
    """Record a file that cannot be read in the rejected area (``raw/rejected/<partition>.json``) with
    its reason; it is not landed and not retried (a new version of the file is a new partition)."""
    record = {
        "partition": partition_key, "file": str(source.path), "problem": error.problem,
        "message": str(error), "rejected_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    lake.put_text(f"{REJECTED_PREFIX}/{partition_key}.json", json.dumps(record, indent=2, sort_keys=True))
    return record


def rejected_files(lake: Lake) -> list[dict]:
    out = []
    for key in lake.list(REJECTED_PREFIX):
        if key.endswith(".json"):
            out.append(json.loads(lake.get_text(key)))
    return sorted(out, key=lambda r: r["rejected_at"])


def _from_manifest(data: dict, noop: bool = False) -> Landed:
    return Landed(
        key=data["key"], uri=data["uri"], sha256=data["sha256"], size_bytes=data["size_bytes"],
        format=data["format"], rows=data["rows"], ingest_date=data["ingest_date"],
        origin=data.get("origin", ""), noop=noop, spec=SourceSpec.from_dict(data["spec"]),
        normalized=list(data.get("normalized") or []), landed_at=data.get("landed_at", ""),
        reader=dict(data.get("reader") or {}), months=dict(data.get("months") or {}),
    )


def landed_batches(lake: Lake) -> list[Landed]:
    """Every batch landed in the raw zone, oldest ingest first."""
    out = []
    for key in lake.list(MANIFEST_PREFIX):
        if key.endswith(".json"):
            out.append(_from_manifest(json.loads(lake.get_text(key))))
    return sorted(out, key=lambda b: (b.ingest_date, b.key))
