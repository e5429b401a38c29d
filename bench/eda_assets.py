"""Time each EDA asset on the real file, with the clean transform as the baseline measured in the same run.

    .venv/bin/python bench/eda_assets.py [path/to/online_retail.parquet]

Builds a fresh lake in a temporary folder (landing, the clean zone and the analytics views, as `make run`
does), then materializes each EDA asset alone (cold: built from scratch) and again (warm: Dagster says it
is up to date, its previous output is reported). Each asset runs in its own `materialize` call so its
heavy imports (matplotlib, ydata-profiling) are counted against it, in the order a user would hit them.
"""

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "data" / "reference" / "online_retail.parquet")
    with tempfile.TemporaryDirectory(prefix="eda_bench_") as tmp:
        os.environ.update({"ECOMMERCE_DATA_DIR": f"{tmp}/data", "ECOMMERCE_SOURCE": str(source)})
        os.environ.pop("ECOMMERCE_DEPLOYMENT", None)
        import dagster as dg

        from ecommerce_platform.definitions import build_definitions
        from ecommerce_platform.eda.assets import data_profile, data_quality_report, eda_figures
        from ecommerce_platform.resources import build_resources
        from ecommerce_platform.runner import rebuild

        resources = build_resources()
        rows = []
        with dg.DagsterInstance.ephemeral() as instance:
            defs = build_definitions(layers=("ingestion", "lake", "analytics"))
            t0 = time.perf_counter()
            runs = rebuild(instance, defs, log=lambda _m: None)
            base = time.perf_counter() - t0
            clean_s = next(e.materialization.metadata["engine_seconds"].value
                           for r in runs for e in r.get_asset_materialization_events()
                           if e.asset_key.to_user_string() == "clean_parquet")
            print(f"source: {source}")
            print(f"{'baseline: landing + clean zone + views':<40} {base:7.2f} s (clean engine {clean_s:.2f} s)")

            def timed(label: str, asset) -> None:  # noqa: ANN001
                t = time.perf_counter()
                result = dg.materialize([asset], resources=resources, instance=instance)
                seconds = time.perf_counter() - t
                assert result.success, label
                rows.append((label, seconds))
                print(f"{label:<40} {seconds:7.2f} s", flush=True)

            for asset in (data_quality_report, eda_figures, data_profile):
                timed(f"{asset.key.to_user_string()} (cold)", asset)
            for asset in (data_quality_report, eda_figures, data_profile):
                timed(f"{asset.key.to_user_string()} (warm, reused)", asset)
        cold = sum(s for label, s in rows if "cold" in label)
        print(f"EDA cold total {cold:.2f} s = {cold / clean_s:.1f}x the clean transform's engine time "
              f"({clean_s:.2f} s); nothing downstream waits for it")


if __name__ == "__main__":
    main()
