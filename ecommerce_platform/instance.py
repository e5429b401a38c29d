"""Instance-side pieces of the local deployment (named in deploy/local/dagster.yaml).

``LocalRunLauncher``: Dagster's default run launcher (runs in processes on this machine), plus what
run monitoring needs to notice a run whose process died: Dagster's default launcher cannot tell, so a
run killed by SIGKILL (or a power cut) would stay STARTED in the UI forever. Every run executing in
process records its pid in an engine event; the launcher checks that process is still the run's
(alive, and started no later than the run), so the monitoring daemon marks a dead run FAILED. Runs
started from the command line (``dagster asset materialize``, ``make run``) are watched the same way.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher


def run_process(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid of the process executing ``run_id`` (its latest engine event that names one)."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    for record in reversed(records):
        event = record.event_log_entry.dagster_event
        data = getattr(event, "engine_event_data", None) if event else None
        pid = (data.metadata or {}).get("pid") if data else None
        if pid is not None:
            return int(getattr(pid, "value", pid))
    return None


def worker_alive(pid: int, started_at: float | None) -> bool:
    """The process exists and is the run's (not a later process that reused the pid)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return started_at is None or proc.create_time() <= started_at + 1.0
    except psutil.NoSuchProcess:
        return False


class LocalRunLauncher(DefaultRunLauncher):
    """The default launcher, with worker health checks for run monitoring."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:  # noqa: ANN001
        record = self._instance.get_run_record_by_id(run.run_id)
        pid = run_process(self._instance, run.run_id)
        if pid is None:  # not started executing yet: the start timeout covers it
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no process recorded yet")
        started = record.start_time if record else None
        if worker_alive(pid, started):
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"process {pid} is running")
        return CheckRunHealthResult(WorkerStatus.FAILED, f"process {pid} of the run is gone (killed or crashed)")
