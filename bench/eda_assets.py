"""Time each EDA asset on the real file, with the clean transform as the baseline measured in the same run.

    .venv/bin/python bench/eda_assets.py [path/to/online_retail.parquet]

Builds a fresh lake in a temporary folder (raw_s3 + clean_parquet), then materializes each EDA asset
alone (cold: built from scratch) and again (warm: reused, inputs unchanged). Each asset runs in its own
`materialize` call so its heavy imports (matplotlib, ydata-profiling) are counted against it, in the
order a user would hit them. Prints one line per measurement.
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

        from ecommerce_platform.eda.assets import data_profile, data_quality_report, eda_figures
        from ecommerce_platform.ingestion.assets import raw_s3
        from ecommerce_platform.lake.assets import clean_parquet
        from ecommerce_platform.resources import build_resources

        resources = build_resources()
        rows = []

        def timed(label: str, assets: list) -> None:
            t0 = time.perf_counter()
            result = dg.materialize(assets, resources=resources)
            seconds = time.perf_counter() - t0
            assert result.success, label
            rows.append((label, seconds))
            print(f"{label:<40} {seconds:7.2f} s", flush=True)

        print(f"source: {source}")
        timed("baseline: raw_s3 + clean_parquet", [raw_s3, clean_parquet])
        timed("data_quality_report (cold)", [data_quality_report])
        timed("eda_figures (cold)", [eda_figures])
        timed("data_profile (cold)", [data_profile])
        timed("data_quality_report (warm, reused)", [data_quality_report])
        timed("eda_figures (warm, reused)", [eda_figures])
        timed("data_profile (warm, reused)", [data_profile])
        from ecommerce_platform.eda.manifest import manifest_key
        import json

        lake = resources["lake"]
        detail = json.loads(lake.get_text(manifest_key("data_profile")))["summary"]["seconds"]
        print(f"data_profile breakdown: {detail}")
        base = rows[0][1]
        cold = sum(s for label, s in rows if "cold" in label)
        print(f"EDA cold total {cold:.2f} s = {cold / base:.1f}x the clean transform ({base:.2f} s); "
              "nothing downstream waits for it")


if __name__ == "__main__":
    main()
