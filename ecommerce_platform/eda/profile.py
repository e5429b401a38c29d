"""The profiling report: ydata-profiling over a bounded sample of the clean zone, compared side by
side with the raw input as the source readers read it (before any rule, validation or deduplication).

Both samples are taken in SQL by the warehouse engine (never a whole table in Python): the clean sample
orders ``transactions`` by an MD5 of each row's identity (a deterministic pseudo-random sample), the raw
sample takes every k-th record of each source from the table ``raw_lines`` that the ingestion layer
publishes. The report is one self-contained HTML file in the reports zone, with a JSON summary beside
it (title, sample sizes, alerts) for programs.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass, field

from ecommerce_platform.eda.queries import query
from ecommerce_platform.resources.warehouse import Warehouse
from ecommerce_platform.schema import CLEAN_TABLE, RAW_LINES_TABLE

PROFILE_KEY = "reports/data_profile.html"
SUMMARY_KEY = "reports/data_profile.json"
DEFAULT_SAMPLE_ROWS = 100_000


class NothingToProfileError(RuntimeError):
    """The clean zone or the raw input is empty: there is nothing to profile."""


@dataclass
class ProfileResult:
    key: str
    title: str
    clean_rows: int
    clean_sampled: int
    raw_rows: int
    raw_sampled: int
    alerts: list[str] = field(default_factory=list)
    raw_alerts: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0
    sample_rows: int = DEFAULT_SAMPLE_ROWS

    @property
    def sampled(self) -> bool:
        return self.clean_sampled < self.clean_rows or self.raw_sampled < self.raw_rows


def profile_title(clean_rows: int, clean_sampled: int, raw_rows: int, raw_sampled: int) -> str:
    if clean_sampled < clean_rows or raw_sampled < raw_rows:
        return (f"Data profile: raw source vs clean zone (sample: {raw_sampled:,} of {raw_rows:,} raw rows, "
                f"{clean_sampled:,} of {clean_rows:,} clean rows)")
    return f"Data profile: raw source vs clean zone (all {raw_rows:,} raw and {clean_rows:,} clean rows)"


def _count(warehouse: Warehouse, table: str) -> int:
    return int(warehouse.query_df(f"SELECT COUNT(*) AS n FROM {table}").iloc[0]["n"])


def sample_frames(warehouse: Warehouse, sample_rows: int = DEFAULT_SAMPLE_ROWS):
    """(clean sample, raw sample, clean row count, raw row count); both samples are taken in SQL."""
    clean_rows, raw_rows = _count(warehouse, CLEAN_TABLE), _count(warehouse, RAW_LINES_TABLE)
    if not clean_rows:
        raise NothingToProfileError(f"the clean table {CLEAN_TABLE} is empty: materialize clean_parquet first")
    if not raw_rows:
        raise NothingToProfileError(f"the table {RAW_LINES_TABLE} is empty: materialize raw_lines first")
    clean_df = query(warehouse, "profile_sample.sql", limit=int(sample_rows))
    # every k-th record of each source: about sample_rows records over all of them
    step = max(1, math.ceil(raw_rows / sample_rows))
    raw_df = query(warehouse, "raw_sample.sql", step=step, limit=int(sample_rows))
    return _typed(clean_df), _typed(raw_df), clean_rows, raw_rows


def _typed(df):  # noqa: ANN001
    """Athena returns text: give the profiler real numbers, timestamps and booleans."""
    import pandas as pd

    for col in ("quantity", "unit_price", "line_total"):
        if col in df.columns and df[col].dtype == object:
            df[col] = pd.to_numeric(df[col], errors="coerce")
    if "invoice_ts" in df.columns and df["invoice_ts"].dtype == object:
        df["invoice_ts"] = pd.to_datetime(df["invoice_ts"], errors="coerce")
    for col in df.columns:
        if col.startswith("is_") and df[col].dtype == object:
            df[col] = df[col].map({"true": True, "false": False, True: True, False: False})
    return df


def build_profile(warehouse: Warehouse, sample_rows: int = DEFAULT_SAMPLE_ROWS) -> ProfileResult:
    lake = warehouse.lake
    t0 = time.perf_counter()
    clean_df, raw_df, clean_rows, raw_rows = sample_frames(warehouse, sample_rows)
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ydata_profiling import ProfileReport, compare

        t2 = time.perf_counter()
        clean_report = ProfileReport(clean_df, title="clean zone", **_config())
        raw_report = ProfileReport(raw_df, title="raw source", **_config())
        for r in (clean_report, raw_report):
            r.config.progress_bar = False  # the minimal preset turns it back on
        # Describe both first: compare() would otherwise cut the second frame to the first's columns.
        with contextlib.redirect_stderr(io.StringIO()):  # one of ydata's progress bars ignores the config
            alerts = [str(a) for a in clean_report.get_description().alerts]
            raw_alerts = [str(a) for a in raw_report.get_description().alerts]
        title = profile_title(clean_rows, len(clean_df), raw_rows, len(raw_df))
        report = compare([raw_report, clean_report])
        report.config.title = title
        report.description_set.analysis.title = title
        html = report.to_html()
    t3 = time.perf_counter()
    lake.put_text(PROFILE_KEY, html)
    result = ProfileResult(
        key=PROFILE_KEY, title=title, clean_rows=clean_rows, clean_sampled=len(clean_df), raw_rows=raw_rows,
        raw_sampled=len(raw_df), alerts=alerts, raw_alerts=raw_alerts, size_bytes=len(html.encode()),
        seconds={"sample_sql": round(t1 - t0, 2), "import": round(t2 - t1, 2), "profile": round(t3 - t2, 2),
                 "total": round(time.perf_counter() - t0, 2)},
        sample_rows=int(sample_rows),
    )
    lake.put_text(SUMMARY_KEY, json.dumps({**asdict(result), "sampled": result.sampled}, indent=2, sort_keys=True))
    return result


def _config() -> dict:
    """Fast settings: ydata's minimal mode (no correlations, interactions or duplicate search, which
    take minutes on wide samples), no progress bars; a few sample rows shown."""
    return {
        "minimal": True,
        "progress_bar": False,
        "samples": {"head": 5, "tail": 0, "random": 5},
    }
