"""Thread settings for the numeric libraries of the ML layer.

On small machines OpenMP/BLAS thread pools oversubscribe (HistGradientBoosting on 2 threads was 15x
slower than on 1 on the 2-core CI box) and implicit warns when OpenBLAS uses more than one thread.
"""

from __future__ import annotations

import os
from contextlib import contextmanager


def set_blas_env() -> None:
    """Call before importing implicit (it reads OpenBLAS's thread count at import)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@contextmanager
def single_threaded():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
