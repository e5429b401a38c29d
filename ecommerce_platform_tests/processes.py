"""Service processes for the tests and the benchmarks (the API server, `dagster dev`, moto): started in a
process group of their own with their output in a log file, stopped by that group (the given signal, then
KILL after a grace period); and the one polling helper they wait with. No pytest here: bench/ uses it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def start_group(cmd: Sequence[str], log_path: Path | None, *, env: dict | None = None, cwd: str | Path | None = None,
                **popen) -> subprocess.Popen:  # noqa: ANN003
    """``cmd`` in a new session (its own process group), stdout and stderr appended to ``log_path``
    (discarded when None)."""
    log = open(log_path, "ab") if log_path is not None else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        return subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, **popen)
    finally:
        if log is not subprocess.DEVNULL:
            log.close()


def stop_group(proc: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 30.0) -> None:
    """Stop the process group of ``proc``: ``sig``, then SIGKILL if it is still there after ``grace`` s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_for(check: Callable[[], T], timeout: float, what: str, interval: float = 0.5) -> T:
    """The first truthy value of ``check()``, polled every ``interval`` s; AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
