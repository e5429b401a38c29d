"""One writer at a time, from every launch path, and readers never in the way: two materializations
launched at the same moment (separate processes, the project's own instance configuration with its
`lake_writer` pool) while an outside DuckDB client holds the warehouse file open: both runs succeed,
the outside client keeps reading, and a run whose process was killed is marked failed by monitoring."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ecommerce_platform_tests.conftest import ENV_KEYS, REPO_ROOT

pytestmark = pytest.mark.graph
BIN = Path(sys.executable).parent


def _env(tmp_path: Path, source: Path) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    shutil.copy(REPO_ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("DAGSTER_")}
    env.update(DAGSTER_HOME=str(home), ECOMMERCE_DATA_DIR=str(tmp_path / "data"), ECOMMERCE_SOURCE=str(source))
    return env


def _instance(env: dict) -> dg.DagsterInstance:
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(env["DAGSTER_HOME"]))


def _materialize(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([str(BIN / "ecommerce"), "materialize", *args], cwd=env["DAGSTER_HOME"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_two_runs_at_once_and_an_outside_reader_all_succeed(tmp_path, real_source):
    env = _env(tmp_path, real_source)
    first = _materialize(env, "--select", "key:raw_s3 or key:clean_parquet or key:raw_lines")
    out, _ = first.communicate(timeout=600)
    assert first.returncode == 0, out
    warehouse = tmp_path / "data" / "warehouse.duckdb"
    outside = duckdb.connect(str(warehouse), read_only=True)  # an analyst's client, left open
    before = outside.execute("SELECT count(*) FROM transactions").fetchone()[0]
    runs = [_materialize(env, "--select", "key:clean_parquet or key:raw_lines", "--force") for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in runs]
    for proc, output in zip(runs, outputs):
        assert proc.returncode == 0, output
    assert outside.execute("SELECT count(*) FROM transactions").fetchone()[0] == before
    outside.close()
    fresh = duckdb.connect(str(warehouse), read_only=True)
    assert fresh.execute("SELECT count(*) FROM transactions").fetchone()[0] == before == 536_639
    assert fresh.execute("SELECT count(*) FROM raw_lines").fetchone()[0] == 541_909
    fresh.close()
    with _instance(env) as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name="rebuild_from_clean"))
        assert len(records) == 3 and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
        # the two forced runs' writing steps never overlapped (the pool): their step windows are disjoint
        windows = []
        for r in records[:2]:
            stats = instance.get_run_step_stats(r.dagster_run.run_id)
            clean = [s for s in stats if s.step_key == "clean_zone"]
            windows.append((clean[0].start_time, clean[0].end_time))
        (a0, a1), (b0, b1) = sorted(windows)
        assert a1 <= b0, windows


def test_a_killed_run_is_marked_failed_by_run_monitoring(tmp_path, real_source):
    from dagster._core.launcher import WorkerStatus

    from ecommerce_platform.instance import LocalRunLauncher

    env = _env(tmp_path, real_source)
    first = _materialize(env, "--select", "key:raw_s3 or key:clean_parquet")
    assert first.wait(timeout=600) == 0
    proc = _materialize({**env, "ECOMMERCE_FAULT": "clean:published"}, "--select", "key:clean_parquet", "--force")
    proc.communicate(timeout=600)
    assert proc.returncode != 0  # killed at the crash point
    with _instance(env) as instance:
        assert isinstance(instance.run_launcher, LocalRunLauncher)
        (started,) = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
        health = instance.run_launcher.check_run_worker_health(started.dagster_run)
        assert health.status == WorkerStatus.FAILED and "gone" in health.msg
        # the monitoring daemon's own step, as `dagster dev` runs it every poll interval
        import logging

        from dagster._daemon.monitoring.run_monitoring import monitor_started_run

        monitor_started_run(instance, None, instance.get_run_record_by_id(started.dagster_run.run_id),
                            logging.getLogger("test"))
        assert instance.get_run_by_id(started.dagster_run.run_id).status == dg.DagsterRunStatus.FAILURE
        # the dead run still holds its `lake_writer` slot; the daemon gives it back after the configured
        # delay (free_slots_after_run_end_seconds), so the next writer is not blocked forever
        from types import SimpleNamespace

        from dagster._daemon.monitoring.concurrency import execute_concurrency_slots_iteration

        assert started.dagster_run.run_id in instance.event_log_storage.get_concurrency_run_ids()
        time.sleep(instance.run_monitoring_settings["free_slots_after_run_end_seconds"] + 1)
        list(execute_concurrency_slots_iteration(SimpleNamespace(instance=instance), logging.getLogger("test")))
        assert started.dagster_run.run_id not in instance.event_log_storage.get_concurrency_run_ids()
    # and the next run recovers: no debris, the clean zone complete
    again = _materialize(env, "--select", "key:clean_parquet")
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0, out
    lake = tmp_path / "data" / "lake"
    assert not [p for p in lake.rglob("*") if "_staging" in p.parts]
