"""The aws deployment's Dagster instance, for real: a PostgreSQL server started by this test on 127.0.0.1
(TLS only, password authentication, like RDS with rds.force_ssl), S3 and ECS on moto's server, and the
production instance file deploy/aws/dagster.yaml copied unchanged into DAGSTER_HOME (every setting comes
from the environment, as in the ECS task definitions).

A slice of the graph (a small generated CSV landed by raw_s3 and cleaned by clean_parquet, through
conftest.build_lake) runs in process on that instance; everything is then read back from PostgreSQL (runs,
their events, asset materializations with their metadata, dynamic partitions, the `lake_writer` pool, a
schedule tick) through a fresh instance and through plain SQL, and the steps' stdout/stderr from S3.

The ECS run launcher is the file's own: its constructor checks the run task definition against ECS (moto),
so the test registers one there first. Runs in this test execute in process (build_lake), which does not go
through the launcher; launching through ECS is what the CDK stack's daemon does.

The PostgreSQL server binaries (Debian's `postgresql` package) are required: CI installs them, so a missing
server fails this test (it is not skipped). As root, the server runs as the `postgres` system user (it
refuses root); it is stopped by its process id at the end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import REPO_ROOT, build_lake, free_port, platform_environment

pytestmark = pytest.mark.aws

PRODUCTION_YAML = REPO_ROOT / "deploy" / "aws" / "dagster.yaml"
PG_USER, PG_DB = "dagster", "dagster_test"
REGION = "eu-west-1"
RUN_CONTAINER = "run"
INSTALL_HINT = ("install Debian's PostgreSQL server: `apt-get install -y postgresql` "
                "(binaries under /usr/lib/postgresql/<version>/bin)")


# ---------------------------------------------------------------------------------------------------
# A PostgreSQL server of our own
# ---------------------------------------------------------------------------------------------------
def postgres_bindir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres (or the ones on PATH)."""
    def version(path: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(path).parts[-3]))

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=version, reverse=True)
    if shutil.which("postgres"):
        candidates.append(os.path.realpath(shutil.which("postgres")))
    for server in candidates:
        bindir = Path(server).parent
        if (bindir / "initdb").is_file() and os.access(server, os.X_OK):
            return bindir
    pytest.fail(f"PostgreSQL server binaries (initdb, postgres) not found: {INSTALL_HINT}", pytrace=False)


def _self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 so that the server speaks TLS (sslmode=require)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    crt, pem = folder / "server.crt", folder / "server.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    pem.chmod(0o600)
    return crt, pem


@contextlib.contextmanager
def postgres_server():
    """Start a throwaway PostgreSQL server on 127.0.0.1 (TLS only, scram-sha-256 password); yields its
    connection settings; stops it by its process id and deletes its files."""
    bindir = postgres_bindir()
    as_root = os.geteuid() == 0
    if as_root:
        try:
            account = pwd.getpwnam("postgres")  # created by Debian's postgresql package
        except KeyError:
            pytest.fail(f"running as root and there is no `postgres` user to run the server as: {INSTALL_HINT}",
                        pytrace=False)
        # PostgreSQL refuses to run as root: initdb and the server run as `postgres` (Popen's user=,
        # which switches user in the child right before exec, so the pid we hold is the server's).
        drop = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    else:
        drop = {}
    folder = Path(tempfile.mkdtemp(prefix="ecommerce-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    password = uuid.uuid4().hex
    port = free_port()
    proc = None
    try:
        (folder / "pwfile").write_text(password + "\n")
        crt, key = _self_signed_certificate(folder)
        if as_root:
            for path in (folder, folder / "pwfile", crt, key):
                os.chown(path, drop["user"], drop["group"])
        data = folder / "data"
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, "--pwfile", str(folder / "pwfile"),
             "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8", "--no-locale"],
            capture_output=True, text=True, timeout=180, cwd=folder, **drop)
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        # like RDS with rds.force_ssl=1: TCP connections must use TLS
        (data / "pg_hba.conf").write_text(
            "local all all scram-sha-256\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
        log = open(folder / "server.log", "wb")  # noqa: SIM115 (closed below)
        proc = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
             "-c", f"unix_socket_directories={folder}", "-c", "ssl=on", "-c", f"ssl_cert_file={crt}",
             "-c", f"ssl_key_file={key}", "-c", "fsync=off", "-c", "max_connections=60"],
            stdout=log, stderr=subprocess.STDOUT, cwd=folder, start_new_session=True, **drop)
        settings = {"host": "127.0.0.1", "port": port, "user": PG_USER, "password": password}
        _wait_until_ready(proc, settings, folder / "server.log")
        con = _connect(settings, "postgres")
        try:
            con.autocommit = True
            con.cursor().execute(f"CREATE DATABASE {PG_DB}")
        finally:
            con.close()
        yield {**settings, "db": PG_DB, "pid": proc.pid}
    finally:
        if proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)  # the server's "fast shutdown"
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            log.close()
        shutil.rmtree(folder, ignore_errors=True)


def _connect(settings: dict, db: str):
    import psycopg2

    return psycopg2.connect(host=settings["host"], port=settings["port"], user=settings["user"],
                            password=settings["password"], dbname=db, sslmode="require", connect_timeout=5)


def _wait_until_ready(proc: subprocess.Popen, settings: dict, log: Path, timeout: float = 60) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"postgres exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        try:
            _connect(settings, "postgres").close()
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise AssertionError(f"postgres not ready after {timeout}s:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)


# ---------------------------------------------------------------------------------------------------
# The test
# ---------------------------------------------------------------------------------------------------
def _write_source(path: Path) -> int:
    """A small Online Retail CSV over two months: 40 good lines, one line repeated twice (2 duplicates)
    and one with a negative unit price (quarantined). Returns the number of data lines."""
    lines = ["InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"]
    for i in range(40):
        month = 1 if i < 20 else 2
        lines.append(f"5{i // 4:05d},{22000 + i % 7},ITEM {i % 7},{1 + i % 5},"
                     f"2011-{month:02d}-{1 + i % 27:02d} {8 + i % 9:02d}:{i % 60:02d}:00,{1.25 + i % 4},"
                     f"{12346 + i % 6},United Kingdom")
    lines += [lines[5], lines[5]]
    lines.append("A563186,B,Adjust bad debt,1,2011-02-12 14:51:00,-11062.06,,United Kingdom")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def _aws_setup(endpoint: str, bucket: str) -> str:
    """The compute-log bucket and the run task definition (what the CDK stack creates) on moto."""
    import boto3

    kw = {"endpoint_url": endpoint, "region_name": REGION, "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    boto3.client("s3", **kw).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    ecs = boto3.client("ecs", **kw)
    ecs.create_cluster(clusterName="ecommerce-dagster")
    registered = ecs.register_task_definition(
        family="ecommerce-dagster-run", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="2048", memory="8192",
        containerDefinitions=[{"name": RUN_CONTAINER, "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/x:1",
                               "essential": True}])
    return registered["taskDefinition"]["taskDefinitionArn"]


def _production_env(pg: dict, endpoint: str, bucket: str, prefix: str, task_definition: str) -> dict[str, str]:
    """What deploy/aws/dagster.yaml reads, as the ECS task definitions set it (but DAGSTER_HOME), for the
    PostgreSQL server ``pg`` and the compute-log bucket and run task definition on moto at ``endpoint``."""
    return {
        "DAGSTER_PG_HOST": pg["host"], "DAGSTER_PG_PORT": str(pg["port"]), "DAGSTER_PG_DB": pg["db"],
        "DAGSTER_PG_USERNAME": pg["user"], "DAGSTER_PG_PASSWORD": pg["password"],
        "DAGSTER_COMPUTE_LOG_BUCKET": bucket, "DAGSTER_COMPUTE_LOG_PREFIX": prefix,
        "DAGSTER_RUN_TASK_DEFINITION": task_definition,
        "AWS_ENDPOINT_URL": endpoint, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    }


def test_production_instance_on_postgres_and_s3(tmp_path, moto_server):
    import boto3
    from dagster._core.instance.ref import InstanceRef
    from dagster_aws.ecs import EcsRunLauncher
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_YAML, home / "dagster.yaml")  # unchanged: the production file itself
    source = tmp_path / "in" / "retail.csv"
    source.parent.mkdir()
    n_lines = _write_source(source)
    bucket, prefix = f"compute-logs-{uuid.uuid4().hex[:8]}", "dagster-compute-logs"
    task_definition = _aws_setup(moto_server, bucket)

    with postgres_server() as pg:
        env = {"ECOMMERCE_SOURCE": str(source), "DAGSTER_HOME": str(home),
               **_production_env(pg, moto_server, bucket, prefix, task_definition)}
        with platform_environment(tmp_path / "data", **env):
            with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as instance:
                # the storages, compute logs, launcher and limits of the production file
                assert isinstance(instance.run_storage, PostgresRunStorage)
                assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
                assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
                assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
                launcher = instance.run_launcher  # its constructor asks ECS (moto) about the task definition
                assert isinstance(launcher, EcsRunLauncher)
                assert launcher.task_definition == task_definition
                assert launcher.container_name == RUN_CONTAINER and launcher.secrets_tags == []
                assert instance.run_coordinator.__class__.__name__ == "QueuedRunCoordinator"
                assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4  # what the daemon reads
                assert instance.run_monitoring_enabled
                assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 10
                assert instance.get_concurrency_config().pool_config.default_pool_limit == 1

                started = time.time()
                runs = build_lake(instance)
                assert runs and all(r.success for r in runs)
                run_ids = [r.run_id for r in runs]

                # a schedule tick, as the daemon writes them, goes to the schedule storage
                from dagster._core.definitions.run_request import InstigatorType
                from dagster._core.scheduler.instigation import TickData, TickStatus

                instance.schedule_storage.create_tick(TickData(
                    instigator_origin_id="ecommerce-test-origin", instigator_name="daily_refresh",
                    instigator_type=InstigatorType.SCHEDULE, status=TickStatus.SKIPPED, timestamp=time.time(),
                    selector_id="ecommerce-test-selector"))

            # Nothing went to SQLite: DAGSTER_HOME holds the settings file and no database.
            assert not list(home.rglob("*.db")), list(home.rglob("*"))

            # Read back through a fresh instance (new connections): runs, events, materializations.
            with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home))) as again:
                records = again.get_run_records(dg.RunsFilter(run_ids=run_ids))
                assert {r.dagster_run.run_id for r in records} == set(run_ids)
                assert all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS for r in records)
                assert all(r.create_timestamp.timestamp() >= started - 5 for r in records)
                for run_id in run_ids:
                    types = [e.dagster_event.event_type_value for e in again.all_logs(run_id) if e.dagster_event]
                    assert types[-1] == dg.DagsterEventType.RUN_SUCCESS.value and "LOGS_CAPTURED" in types, types

                raw = again.fetch_materializations(dg.AssetKey("raw_s3"), limit=10).records
                assert len(raw) == 1
                assert raw[0].asset_materialization.metadata["records"].value == n_lines
                clean = again.fetch_materializations(dg.AssetKey("clean_parquet"), limit=10).records
                assert sorted(r.partition_key for r in clean) == ["2011-01", "2011-02"]
                meta = {k: v.value for k, v in clean[0].asset_materialization.metadata.items()}
                assert meta["rows_in"] == n_lines
                assert meta["rows_duplicate"] == 2 and meta["rows_quarantined"] == 1
                assert meta["rows_in"] == meta["rows_clean"] + meta["rows_quarantined"] + meta["rows_duplicate"]
                checks = again.event_log_storage.get_asset_check_execution_history(
                    dg.AssetCheckKey(dg.AssetKey("clean_parquet"), "clean_reconciliation"), limit=5)
                assert checks and checks[0].status.value == "SUCCEEDED"
                assert sorted(again.get_dynamic_partitions("invoice_months")) == ["2011-01", "2011-02"]
                captured = [e.dagster_event.event_specific_data for run_id in run_ids
                            for e in again.all_logs(run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED)]

            # ... and with plain SQL: the rows are in PostgreSQL's tables, not anywhere else.
            with contextlib.closing(_connect(pg, pg["db"])) as con, con.cursor() as cur:
                cur.execute("SELECT run_id, status FROM runs")
                assert dict(cur.fetchall()) == {run_id: "SUCCESS" for run_id in run_ids}
                cur.execute("SELECT asset_key, count(*) FROM event_logs WHERE run_id = ANY(%s) "
                            "AND dagster_event_type = 'ASSET_MATERIALIZATION' GROUP BY asset_key", (run_ids,))
                counts = dict(cur.fetchall())
                assert counts['["raw_s3"]'] == 1 and counts['["clean_parquet"]'] == 2, counts  # 1 file, 2 months
                cur.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'invoice_months'")
                assert sorted(p for (p,) in cur.fetchall()) == ["2011-01", "2011-02"]
                cur.execute("SELECT concurrency_key, count(*) FROM concurrency_slots GROUP BY concurrency_key")
                pools = dict(cur.fetchall())
                assert pools and set(pools.values()) == {1}, pools  # every pool used got the default limit 1
                cur.execute("SELECT selector_id, status FROM job_ticks")
                assert cur.fetchall() == [("ecommerce-test-selector", "SKIPPED")]
                # the connections were TLS (sslmode: require in the file; the server accepts nothing else)
                cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                assert cur.fetchone()[0] is True

        # The steps' stdout/stderr are in S3 (moto), where the webserver reads them.
        s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/").get("Contents", [])]
        assert captured and keys
        for data in captured:
            run_keys = [k for k in keys if f"/{data.file_key}." in k]
            assert any(k.endswith(".err") for k in run_keys), (data.file_key, keys)
        stderr = "".join(s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode() for k in keys if k.endswith(".err"))
        assert "clean_parquet" in stderr and "STEP_SUCCESS" in stderr
        assert all(k.startswith(f"{prefix}/storage/") for k in keys)
        assert any(run_ids[-1] in k for k in keys)
