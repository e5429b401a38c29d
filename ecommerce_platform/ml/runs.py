"""What a model run did, recorded in the lake beside what it serves (plain JSON, no Dagster).

Every materialization of a model writes ``models/<model>/last_run.json``: its status, its figures, and
the id of the model served after it. The model's check reads this record and the served files (what
was published), never the asset's metadata.

Statuses:
- ``served``: trained, evaluated, passed its gate: the run is now the served model.
- ``rejected``: trained and evaluated, but it failed its gate: kept as a candidate, NOT served (the
  previous served model, if any, stays).
- ``inconclusive``: trained and evaluated, but the test set is too small to tell whether it beats its
  baseline by the required margin (the confidence interval of the margin straddles 0): NOT served (the
  previous served model stays), and its check warns instead of failing the run.
- ``insufficient_data``: the input is too small to train or evaluate honestly; nothing was trained,
  nothing new is served, and ``missing`` says what was missing (needed / found).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

SERVED = "served"
REJECTED = "rejected"
INCONCLUSIVE = "inconclusive"
INSUFFICIENT = "insufficient_data"
STATUSES = (SERVED, REJECTED, INCONCLUSIVE, INSUFFICIENT)


def status_for(verdict: str) -> str:
    """The run status of a gate verdict (metrics.decide): pass -> served, fail -> rejected,
    undecided -> inconclusive."""
    return {"pass": SERVED, "fail": REJECTED, "undecided": INCONCLUSIVE}[verdict]


class InsufficientData(ValueError):
    """The input is too small for an honest model. ``missing``: what -> {"needed": n, "found": m}."""

    def __init__(self, missing: dict[str, dict]):
        self.missing = missing
        super().__init__(describe_missing(missing))


def describe_missing(missing: dict[str, dict]) -> str:
    return "; ".join(f"{what}: needs {v['needed']:,}, found {v['found']:,}" for what, v in missing.items())


def need(missing: dict[str, dict], what: str, needed: int, found: int) -> None:
    """Record ``what`` as missing when ``found < needed``."""
    if found < needed:
        missing[what] = {"needed": int(needed), "found": int(found)}


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def json_safe(obj):  # noqa: ANN001, ANN201 - NaN and infinities are not JSON
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return json_safe(obj.item())
    return obj


def record_key(model_prefix: str) -> str:
    return f"{model_prefix}/last_run.json"


def write_record(lake, model_prefix: str, record: dict) -> None:  # noqa: ANN001 - Lake
    if record.get("status") not in STATUSES:
        raise ValueError(f"unknown run status {record.get('status')!r}")
    lake.put_text(record_key(model_prefix), json.dumps(json_safe(record), indent=1, sort_keys=True))


def read_record(lake, model_prefix: str) -> dict | None:  # noqa: ANN001
    key = record_key(model_prefix)
    return json.loads(lake.get_text(key)) if lake.exists(key) else None


def record_insufficient(lake, model_prefix: str, exc: InsufficientData, served_run_id: str | None,  # noqa: ANN001
                        **details) -> dict:
    """Record (and return) a run stopped by ``exc``: nothing trained, nothing new served;
    ``details``: the model's own fields (its settings)."""
    record = {"status": INSUFFICIENT, "run_id": new_run_id(), "finished_at": now_iso(), "missing": exc.missing,
              "message": str(exc), "served_run_id": served_run_id, **details}
    write_record(lake, model_prefix, record)
    return record


def outputs_exist(lake, model_prefix: str, served_run_id: Callable[..., str | None]) -> bool:  # noqa: ANN001
    """The run record and, when it says a model is served, the served files: ``served_run_id(lake)``
    (the model's own reading of them) names the run the record says."""
    record = read_record(lake, model_prefix)
    if record is None:
        return False
    return record.get("served_run_id") is None or served_run_id(lake) == record["served_run_id"]


def r4(x) -> float | None:  # noqa: ANN001
    """A metric as a number rounded to 4 decimals (None when undefined)."""
    if x is None:
        return None
    x = float(x)
    return round(x, 4) if math.isfinite(x) else None
