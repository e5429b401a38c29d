"""Full-graph benchmark: `ecommerce materialize` (what `make run` does) of the whole graph on the real
file, on a fresh embedded deployment, twice (the second run with nothing changed), plus the profiling
report apart.

Prints the wall time of each command (process start included), the time per step (from the runs' step
stats), and the orchestration overhead (wall time minus the sum of step compute).

    .venv/bin/python bench/full_graph.py [--source PATH] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO / "data" / "reference" / "online_retail.parquet"
APART = ("data_profile",)  # measured on its own (the slow profiling report)


def asset_keys(env: dict) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c",
         "from ecommerce_platform.definitions import defs\n"
         "g = defs.resolve_asset_graph()\n"
         "print('\\n'.join(sorted(k.to_user_string() for k in g.get_all_asset_keys() if g.get(k).is_materializable)))"],
        env=env, cwd=REPO, capture_output=True, text=True, check=True,
    )
    return out.stdout.split()


def materialize(keys: list[str], env: dict) -> tuple[float, str]:
    ecommerce = str(Path(sys.executable).parent / "ecommerce")
    t0 = time.perf_counter()
    proc = subprocess.run(
        [ecommerce, "materialize", "--select", " or ".join(f"key:{k}" for k in keys)],
        env=env, cwd=REPO, capture_output=True, text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-4000:], proc.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"materialize failed ({proc.returncode})")
    return wall, proc.stderr + proc.stdout


def step_times(home: Path, runs_before: int) -> dict[str, float]:
    """Step durations of the runs the last command made (the newest runs of the instance)."""
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        new = runs[: len(runs) - runs_before]
        out: dict[str, float] = {}
        for run in new:
            for s in instance.get_run_step_stats(run.run_id):
                out[s.step_key] = out.get(s.step_key, 0.0) + (s.end_time or 0) - (s.start_time or 0)
    return out


def run_count(home: Path) -> int:
    os.environ["DAGSTER_HOME"] = str(home)
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        return len(instance.get_runs())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default=str(DEFAULT_SOURCE))
    ap.add_argument("--keep", help="keep the deployment in this folder")
    args = ap.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="full_graph_"))
    if work.exists():
        shutil.rmtree(work)
    home = work / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "deploy" / "local" / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home), "ECOMMERCE_DATA_DIR": str(work / "data"),
           "ECOMMERCE_SOURCE": args.source,
           "OPENBLAS_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("OPENAI_API_KEY", None)
    keys = asset_keys(env)
    main_keys = [k for k in keys if k not in APART]
    print(f"source: {args.source}\nassets: {len(keys)} ({len(main_keys)} in the main run, apart: {', '.join(k for k in APART if k in keys)})")

    results = {}
    for label in ("first run", "second run (nothing changed)"):
        before = run_count(home)
        wall, _ = materialize(main_keys, env)
        steps = step_times(home, before)
        results[label] = (wall, steps)

    apart = {}
    for key in APART:
        if key in keys:
            before = run_count(home)
            wall, _ = materialize([key], env)
            apart[key] = (wall, step_times(home, before))

    print()
    print(f"{'asset':32s} {'first s':>9s} {'second s':>9s}")
    first_steps, second_steps = results["first run"][1], results["second run (nothing changed)"][1]
    for key in sorted(first_steps, key=lambda k: -first_steps[k]):
        print(f"{key:32s} {first_steps[key]:9.2f} {second_steps.get(key, float('nan')):9.2f}")
    print()
    for label, (wall, steps) in results.items():
        compute = sum(steps.values())
        overhead = wall - compute
        print(f"{label:30s} wall {wall:7.2f} s   asset compute {compute:7.2f} s   "
              f"orchestration overhead {overhead:6.2f} s ({overhead / wall:5.1%})")
    first, second = results["first run"][0], results["second run (nothing changed)"][0]
    print(f"second / first run: {second / first:.2f}x  ({first / second:.1f}x faster)")
    for key, (wall, steps) in apart.items():
        print(f"{key} (apart): wall {wall:.2f} s, compute {sum(steps.values()):.2f} s")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
