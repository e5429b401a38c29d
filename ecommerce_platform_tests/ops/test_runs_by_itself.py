"""The platform runs by itself, as a data engineer would try it: `dagster-daemon` on a temporary
instance (the project's own instance configuration), every sensor and the automation turned on from the
command line, then a good file, a broken file and another good file dropped into the source folder and
stream records produced. Within a time limit: both good files landed and cleaned and the views updated,
the broken one set aside with its reason, one landing run per file and exactly one run per change for the
clean months, no failed run, the models untouched (their cadence is weekly)."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ecommerce_platform_tests.conftest import ENV_KEYS, REPO_ROOT

pytestmark = [pytest.mark.graph]
BIN = Path(sys.executable).parent
LIMIT_SECONDS = 420


def _instance(home: Path) -> dg.DagsterInstance:
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def _wait(predicate, what: str, deadline: float, daemon: subprocess.Popen, log: Path):  # noqa: ANN001
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise AssertionError(f"dagster-daemon exited: {log.read_text()[-3000:]}")
        value = predicate()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out waiting for {what}; daemon log tail:\n{log.read_text()[-4000:]}")


def _mats(instance, key: str) -> list:
    return instance.fetch_materializations(dg.AssetKey(key), limit=1000).records


def test_files_dropped_in_reach_the_views_a_broken_one_is_set_aside(tmp_path, real_source):
    home, inbox, data = tmp_path / "home", tmp_path / "inbox", tmp_path / "data"
    home.mkdir()
    inbox.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS and not k.startswith("DAGSTER_")}
    env.update(DAGSTER_HOME=str(home), ECOMMERCE_DATA_DIR=str(data), ECOMMERCE_SOURCE=str(inbox),
               ECOMMERCE_SENSOR_INTERVAL_SECONDS="5")
    workspace = ["-w", str(REPO_ROOT / "workspace.yaml")]
    started = subprocess.run([str(BIN / "dagster"), "sensor", "start", "--start-all", *workspace], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stdout + started.stderr
    log = tmp_path / "daemon.log"
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", *workspace], cwd=REPO_ROOT, env=env,
                              stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + LIMIT_SECONDS
    df = pd.read_parquet(real_source)
    try:
        instance = _instance(home)
        # 1. a good file: two months of the real data
        first = df[df["InvoiceDate"].str.startswith(("2011-01", "2011-02"))]
        first.to_csv(inbox / "jan_feb.csv", index=False)
        _wait(lambda: _mats(instance, "daily_sales"), "the first file to reach the views", deadline, daemon, log)
        # 2. a broken file and another good file, at once
        (inbox / "broken.parquet").write_bytes(b"PAR1" + b"\0" * 100)
        second = df[df["InvoiceDate"].str.startswith("2011-03")]
        second.to_csv(inbox / "march.csv", index=False)

        def march_in_views():
            rows = [r for r in _mats(instance, "clean_parquet") if r.partition_key == "2011-03"]
            later = [r for r in _mats(instance, "daily_sales")
                     if rows and r.storage_id > max(x.storage_id for x in rows)]
            return bool(later)

        _wait(march_in_views, "the second good file to reach the views", deadline, daemon, log)
        # 3. stream records (March lines again, produced into the embedded stream)
        produced = subprocess.run([str(BIN / "ecommerce"), "produce", "--count", "300", "--source",
                                   str(inbox / "march.csv")], cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=300)
        assert produced.returncode == 0, produced.stderr
        _wait(lambda: _mats(instance, "raw_stream"), "the stream records to land", deadline, daemon, log)

        def stream_cleaned():
            landed = _mats(instance, "raw_stream")
            return landed and any(r.partition_key == "2011-03" and r.storage_id > landed[0].storage_id
                                  for r in _mats(instance, "clean_parquet"))

        _wait(stream_cleaned, "the stream's month to be cleaned again", deadline, daemon, log)
        _wait(lambda: not instance.get_run_records(dg.RunsFilter(statuses=[
            dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])),
            "the runs to finish", deadline, daemon, log)

        runs = [r.dagster_run for r in instance.get_run_records()]
        failed = [r for r in runs if r.status != dg.DagsterRunStatus.SUCCESS]
        assert not failed, [(r.job_name, r.status, r.tags) for r in failed]
        landings = [r for r in runs if r.job_name == "raw_s3_job"]
        assert sorted(r.tags["dagster/partition"].split("~")[0] for r in landings) == [
            "broken.parquet", "jan_feb.csv", "march.csv"]  # one landing run per file, none retried
        # exactly one clean run per change of a month: Jan/Feb once (file 1), March twice (file 2, stream)
        cleaned = {}
        for r in _mats(instance, "clean_parquet"):
            cleaned[r.partition_key] = cleaned.get(r.partition_key, 0) + 1
        assert cleaned == {"2011-01": 1, "2011-02": 1, "2011-03": 2}, cleaned
        # the broken file is set aside with its reason, visible on raw_s3's check
        rejected = list((data / "lake" / "raw" / "rejected").glob("broken.parquet~*.json"))
        assert len(rejected) == 1 and "truncated Parquet" in rejected[0].read_text()
        checks = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("raw_s3"), "raw_files_readable")])
        (execution,) = checks.values()
        assert execution.evaluation and not execution.evaluation.passed
        # the models follow their weekly cadence: untouched
        for model in ("classifier", "segments", "als_model", "faiss_index"):
            assert not _mats(instance, model), model
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
