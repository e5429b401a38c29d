"""``resources.sql_dialect`` (the one quoting function, ``render``, ``Sql``, ``read_sql``) for the query path
of ``ecommerce ask``, without importing the ``resources`` package: its ``__init__`` imports Dagster (seconds
of a new process's start, for a module that needs only the standard library).

The module is the platform's own file, loaded once under its own name: afterwards the package's import
finds it in ``sys.modules``, so the process has ONE ``sql_dialect`` (one ``Sql`` class ``render`` knows).
When the package was imported already (Dagster runs), that module is used as it is. (Asked of the
platform: make ``resources/__init__.py`` import its submodules lazily; then this is a plain import.)
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

NAME = "ecommerce_platform.resources.sql_dialect"


def sql_dialect():  # noqa: ANN201
    module = sys.modules.get(NAME)
    if module is None:
        path = Path(__file__).resolve().parents[1] / "resources" / "sql_dialect.py"
        spec = importlib.util.spec_from_file_location(NAME, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[NAME] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(NAME, None)
            raise
    return module
