"""The README's command lines name things that exist: every asset selection it gives to `dg launch`
builds a runnable job (a selection that splits a multi-asset step does not), every selection it gives to
`ecommerce materialize` / `make materialize` selects something, every job and partition it names exists.
The commands themselves are run by the first-run and CLI tests; this catches a README that drifts from
the definitions, without running anything."""

import re

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
COMMAND_LINES = [line.split("  #")[0].strip() for line in README.splitlines()
                 if re.match(r"\s*(dg |ecommerce |make |\.venv/bin/)", line)]


def _quoted(option: str) -> list[tuple[str, str]]:
    """(selection, whole line) for each `option 'selection'` in the README's command lines."""
    out = []
    for line in COMMAND_LINES:
        out += [(m, line) for m in re.findall(rf"{option}\s*'([^']+)'", line)]
    return out


LAUNCHED = _quoted("--assets")
MATERIALIZED = _quoted("--select") + _quoted("SELECT=")
JOBS = [(m, line) for line in COMMAND_LINES for m in re.findall(r"--job\s+(\w+)", line)]


def _reference_months() -> list[str]:
    import pandas as pd

    from ecommerce_platform_tests.conftest import REAL_SOURCE
    dates = pd.read_parquet(REAL_SOURCE, columns=["InvoiceDate"])["InvoiceDate"]
    return sorted(set(pd.to_datetime(dates).dt.strftime("%Y-%m")))


@pytest.fixture(scope="module")
def defs():
    from ecommerce_platform.definitions import defs as definitions
    return definitions


def test_the_readme_has_commands_to_check():
    # the parser finds the examples (else every test below would pass on nothing)
    assert len(LAUNCHED) >= 2 and len(MATERIALIZED) >= 3 and JOBS, (LAUNCHED, MATERIALIZED, JOBS)


@pytest.mark.parametrize("selection,line", LAUNCHED, ids=[s for s, _ in LAUNCHED])
def test_dg_launch_selections_build_a_job(defs, selection, line):
    job = dg.define_asset_job("readme_selection", selection=selection)
    try:
        resolved = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("readme_selection")
    except dg.DagsterInvalidDefinitionError as exc:
        pytest.fail(f"README: `{line}` cannot run: {exc.__cause__ or exc}")
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string(selection).resolve(graph)
    assert keys, line
    assert resolved is not None
    ranges = re.findall(r"--partition-range\s+(\S+)\.\.\.(\S+)", line)
    for first, last in ranges:
        for key in keys:
            partitions = graph.get(key).partitions_def
            assert partitions is not None, f"README: `{line}`: {key.to_user_string()} is not partitioned"
            if isinstance(partitions, dg.DynamicPartitionsDefinition):
                # added as data lands: after `make run` on the reference file, its invoice months
                assert partitions.name == "invoice_months", (line, key, partitions.name)
                names = _reference_months()
            else:
                names = partitions.get_partition_keys()
            assert first in names and last in names, (line, key.to_user_string(), names[:3], names[-3:])


@pytest.mark.parametrize("selection,line", MATERIALIZED, ids=[s for s, _ in MATERIALIZED])
def test_materialize_selections_select_something(defs, selection, line):
    graph = defs.resolve_asset_graph()
    keys = dg.AssetSelection.from_string(selection).required_multi_asset_neighbors().resolve(graph)
    assert keys & set(graph.materializable_asset_keys), f"README: `{line}` selects no asset"


@pytest.mark.parametrize("name,line", JOBS, ids=[n for n, _ in JOBS])
def test_named_jobs_exist(defs, name, line):
    assert defs.resolve_job_def(name) is not None, line
