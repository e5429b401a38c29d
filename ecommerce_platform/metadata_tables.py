"""Tables as Dagster metadata, shared by the layers' assets: a table's column schema from its
``(name, type, description)`` columns, and rows as a ``MetadataValue.table`` whose cells are
JSON-able (floats rounded to what is meaningful)."""

import math

import dagster as dg


def column_schema(columns) -> dg.TableSchema:  # noqa: ANN001
    """``columns``: ``(name, type, description)`` triples, in order."""
    return dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns])


def metadata_cell(v):  # noqa: ANN001, ANN201
    """A cell of a metadata table: JSON-able, floats rounded to 2 decimals (4 below 1), NaN and
    infinities as None, dates and timestamps as ISO text, numpy scalars as Python values."""
    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return round(v, 2) if abs(v) >= 1 else round(v, 4)
    if isinstance(v, (bool, int, str)):
        return v
    return str(v)


def records_table(rows: list[dict], columns: list[tuple[str, str]]) -> dg.MetadataValue:
    """``rows`` as a MetadataValue.table; ``columns``: (name, type) in order (a row's missing key: None)."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: metadata_cell(r.get(c)) for c, _ in columns}) for r in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in columns]))
