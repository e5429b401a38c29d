"""Which data the platform lands (README, "Data sources"): ECOMMERCE_SOURCE if set; else the user's
files in the data folder, never one the platform generated itself; else the reference data set shipped
in the repository. Generated data is used only when asked for, and then every run says so."""

import logging
import shutil

import pytest

from ecommerce_platform.config import REFERENCE_SOURCE, load_settings
from ecommerce_platform.ingestion.raw import resolve_sources
from ecommerce_platform.ingestion.source import SourceError
from ecommerce_platform.ingestion.synthetic import generate
from ecommerce_platform_tests.conftest import REAL_SOURCE, platform_environment
from ecommerce_platform_tests.ingestion.test_source_formats import _frame


def _resolve(data_dir, **env):
    with platform_environment(data_dir, **env):
        return resolve_sources(load_settings())


def test_the_shipped_reference_file_is_the_default(tmp_path):
    sources = _resolve(tmp_path / "data")
    assert [(s.path, s.origin, s.generated) for s in sources] == [(REFERENCE_SOURCE, "reference", False)]
    assert REFERENCE_SOURCE == REAL_SOURCE


def test_a_users_file_in_the_data_folder_wins_over_the_reference(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    _frame().to_csv(data / "b_orders.csv", index=False)
    _frame().to_csv(data / "a_orders.csv", index=False)
    (data / ".hidden.csv").write_text("x")
    (data / "notes.md").write_text("not a source")
    sources = _resolve(data)
    assert [(s.path.name, s.origin) for s in sources] == [("a_orders.csv", "data_dir"), ("b_orders.csv", "data_dir")]


def test_a_generated_file_in_the_data_folder_is_never_taken_for_the_users(tmp_path):
    data = tmp_path / "data"
    generate(data / "my_copy.parquet", rows=500)  # marked in its Parquet metadata, whatever its name
    shutil.copyfile(REAL_SOURCE, data / "synthetic_online_retail.parquet")  # the name earlier versions used
    sources = _resolve(data)
    assert [s.origin for s in sources] == ["reference"]


def test_environment_file_folder_and_keywords(tmp_path):
    data = tmp_path / "data"
    src = tmp_path / "in"
    src.mkdir()
    _frame().to_csv(src / "x.csv", index=False)
    assert [(s.path, s.origin) for s in _resolve(data, ECOMMERCE_SOURCE=str(src / "x.csv"))] == [(src / "x.csv", "env")]
    assert [s.path.name for s in _resolve(data, ECOMMERCE_SOURCE=str(src))] == ["x.csv"]
    assert [s.origin for s in _resolve(data, ECOMMERCE_SOURCE="reference")] == ["reference"]
    (data).mkdir(exist_ok=True)
    _frame().to_csv(data / "users.csv", index=False)
    assert [s.origin for s in _resolve(data, ECOMMERCE_SOURCE="REFERENCE")] == ["reference"]


def test_synthetic_only_when_asked_and_it_says_so(tmp_path):
    data = tmp_path / "data"
    (s,) = _resolve(data, ECOMMERCE_SOURCE="synthetic")
    assert s.generated and s.origin == "synthetic" and "SYNTHETIC" in s.note
    assert s.path == data / "generated" / "synthetic_online_retail.parquet" and s.path.exists()
    # the generated file sits outside the drop folder's top level, so a later default run ignores it
    assert [x.origin for x in _resolve(data)] == ["reference"]


def test_missing_sources_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        _resolve(tmp_path / "data", ECOMMERCE_SOURCE=str(tmp_path / "nope.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no source file"):
        _resolve(tmp_path / "data", ECOMMERCE_SOURCE=str(tmp_path / "empty"))
    with pytest.raises(SourceError, match="reference data set is missing"):
        _resolve(tmp_path / "data", ECOMMERCE_REFERENCE_SOURCE=str(tmp_path / "gone.parquet"))


def test_every_run_on_generated_data_warns(tmp_path):
    import dagster as dg

    from ecommerce_platform_tests.conftest import build_lake

    with platform_environment(tmp_path / "data", ECOMMERCE_SOURCE="synthetic"), \
            dg.DagsterInstance.ephemeral() as instance:
        first = build_lake(instance)
        again = build_lake(instance)  # nothing new to land: only the clean run, which must still say it
        assert len(first) == 2 and len(again) == 1
        for result in (*first, *again):
            assert result.success
            warnings = [e.user_message for e in instance.all_logs(result.run_id)
                        if e.level == logging.WARNING and "SYNTHETIC" in e.user_message]
            assert warnings, f"run {result.dagster_run.job_name} on generated data did not warn"
