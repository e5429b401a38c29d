"""Crash points for the tests: when ``ECOMMERCE_FAULT`` names a point, the process kills itself there
with SIGKILL (no cleanup, no exception handler runs), as a power cut or the OOM killer would. Unset in
normal use; each point is one line in the code it guards."""

from __future__ import annotations

import os
import signal

FAULT_ENV = "ECOMMERCE_FAULT"


def crash_point(name: str) -> None:
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
