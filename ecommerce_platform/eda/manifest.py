"""Skip-when-unchanged for the EDA reports: a report is rebuilt only when the clean zone (its
fingerprint in the clean manifest), the layer's SQL or the report's code version changed.

Each report keeps ``reports/_manifests/<name>.json``: its fingerprint, the keys it wrote and the
summary its asset shows in Dagster, so a reused report shows the same metadata as a fresh one.
"""

from __future__ import annotations

import hashlib
import json

from ecommerce_platform.resources.lake import Lake

REPORTS_PREFIX = "reports"
MANIFEST_PREFIX = f"{REPORTS_PREFIX}/_manifests"


class CleanZoneMissingError(RuntimeError):
    """The clean zone has not been built: the EDA reports have nothing to describe."""


def clean_fingerprint(lake: Lake) -> str:
    from ecommerce_platform.lake.clean import CLEAN_MANIFEST, read_result

    result = read_result(lake)
    if result is None:
        raise CleanZoneMissingError(
            f"no clean manifest at {lake.uri(CLEAN_MANIFEST)}: materialize clean_parquet first"
        )
    return result.fingerprint


def fingerprint(lake: Lake, name: str, code_version: str, **params: object) -> str:
    from ecommerce_platform.eda.queries import sql_fingerprint

    h = hashlib.sha256()
    for part in (name, code_version, clean_fingerprint(lake), sql_fingerprint(),
                 json.dumps(params, sort_keys=True, default=str)):
        h.update(part.encode())
    return h.hexdigest()


def manifest_key(name: str) -> str:
    return f"{MANIFEST_PREFIX}/{name}.json"


def reusable(lake: Lake, name: str, fp: str) -> dict | None:
    """The stored summary when the report was built from the same inputs and all its files exist."""
    key = manifest_key(name)
    if not lake.exists(key):
        return None
    try:
        data = json.loads(lake.get_text(key))
    except (ValueError, OSError):
        return None
    if data.get("fingerprint") != fp or not all(lake.exists(k) for k in data.get("outputs", [])):
        return None
    return data.get("summary", {})


def save(lake: Lake, name: str, fp: str, outputs: list[str], summary: dict) -> None:
    """Written last, after every output: a crash before it means the report is rebuilt next time."""
    lake.put_text(
        manifest_key(name),
        json.dumps({"fingerprint": fp, "outputs": outputs, "summary": summary}, sort_keys=True, default=str),
    )
