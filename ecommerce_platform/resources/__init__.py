"""Resources: lake (folder | S3), warehouse (DuckDB | Athena), stream, embeddings, llm; the deployment
picks them in ``deployment.py`` (``build_resources``).

The package imports its modules when a name is first used (module ``__getattr__``), so a process that
needs one light module (``resources.sql_dialect`` for ``ecommerce ask``) does not import Dagster.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "Lake": "lake", "LocalLake": "lake", "S3Lake": "lake",
    "Warehouse": "warehouse", "DuckDBWarehouse": "warehouse", "AthenaWarehouse": "warehouse",
    "build_lake": "deployment", "build_warehouse": "deployment", "build_resources": "deployment",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):  # noqa: ANN202
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{module}"), name)
