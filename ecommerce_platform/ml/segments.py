"""Customer segments: RFM (recency, frequency, monetary, average basket) from completed sales net of
returns, log1p against skew, standardised, K-Means. Each cluster is named from its centroid profile
(ranks of recency / frequency / monetary), never from its id, so names stay attached to the same
customers when ids change (reseeding, reordering).

Customers whose net spend is <= 0 (returns of purchases made before the data starts, or returns only)
are not clustered: they get the explicit segment ``NO_NET_SPEND`` and are counted in the metadata.

Publication: the table ``customer_segments`` is replaced only by a run whose labels cover every customer
of ``customer_features`` exactly once (``coverage_problems``, the same rules the check recounts in SQL
on the published tables); a run that does not is recorded as ``rejected`` and publishes nothing. Fewer
than ``MIN_CUSTOMERS_PER_SEGMENT`` customers with net spend per segment: ``insufficient_data``, nothing
is fitted and the published table stays.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field

import numpy as np

from ecommerce_platform.ml import runs
from ecommerce_platform.ml.contract import (  # noqa: F401 - the layer's published names
    MIN_CUSTOMERS_PER_SEGMENT,
    NO_NET_SPEND,
    SEGMENT_COLUMNS,
    SEGMENTS_TABLE,
    TOP_SEGMENT,
    VIP_COLUMNS,
    VIP_VIEW,
)

MODEL_PREFIX = "models/segments"
SEGMENTS_PREFIX = f"{MODEL_PREFIX}/customer_segments"
PLOT_KEY = f"{MODEL_PREFIX}/segments_pca.png"
PROFILE_KEY = f"{MODEL_PREFIX}/profile.json"
RFM_COLUMNS = ("recency_days", "frequency", "monetary", "avg_basket")


@dataclass
class SegmentSettings:
    k: int = 4
    k_range: tuple[int, int] = (2, 8)
    silhouette_sample: int = 3000
    random_state: int = 0
    n_init: int = 10


def rfm_matrix(df) -> np.ndarray:
    """log1p of the RFM columns (monetary and basket are > 0 for clustered customers)."""
    X = df[list(RFM_COLUMNS)].astype(float).to_numpy()
    if (X < 0).any() or np.isnan(X).any():
        raise ValueError("RFM features must be >= 0 and not null: filter customers without net spend first")
    return np.log1p(X)


def _rank_desc(values: np.ndarray) -> np.ndarray:
    """0 = largest value; ties broken by position in a value-sorted order (deterministic)."""
    order = np.lexsort((np.arange(len(values)), -values))
    ranks = np.empty(len(values), dtype=int)
    ranks[order] = np.arange(len(values))
    return ranks


def name_clusters(centroids: np.ndarray) -> list[str]:
    """Names for clusters from their centroids in RFM space (columns as in RFM_COLUMNS, any monotone
    scale). Score = rank of recency (lower days is better) + rank of frequency + rank of monetary
    (higher is better). Best score: 'champions', worst: 'dormant'. The rest, by score, are split by
    recency: recent ones 'loyal', 'promising', ...; older ones 'at risk', 'hibernating', ...
    Depends only on centroid values, so permuting cluster ids permutes the names with them."""
    c = np.asarray(centroids, dtype=float)
    k = len(c)
    if k == 1:
        return [TOP_SEGMENT]
    recency, frequency, monetary = c[:, 0], c[:, 1], c[:, 2]
    score = _rank_desc(-recency) + _rank_desc(frequency) + _rank_desc(monetary)
    # order by score, ties by monetary then frequency values (never by id)
    order = sorted(range(k), key=lambda i: (score[i], -monetary[i], -frequency[i], recency[i]))
    names = [""] * k
    names[order[0]] = TOP_SEGMENT
    names[order[-1]] = "dormant"
    middle = order[1:-1]
    if middle:
        median_recency = float(np.median(recency[middle]))
        recent = [i for i in middle if recency[i] <= median_recency]
        older = [i for i in middle if recency[i] > median_recency]
        for pool, labels in ((recent, ["loyal", "promising", "new"]), (older, ["at risk", "hibernating", "lapsing"])):
            for j, i in enumerate(pool):
                names[i] = labels[j] if j < len(labels) else f"{labels[-1]} {j - len(labels) + 2}"
    return names


def clustered_mask(df) -> np.ndarray:  # noqa: ANN001
    """Customers that are clustered: net spend > 0 from at least one sale."""
    return (df["has_net_spend"].astype(bool) & (df["frequency"] > 0) & (df["monetary"] > 0)).to_numpy()


def data_problems(customers, s: SegmentSettings) -> dict[str, dict]:  # noqa: ANN001
    """What the input lacks for an honest segmentation (empty: enough)."""
    missing: dict[str, dict] = {}
    active = int(clustered_mask(customers).sum()) if len(customers) else 0
    runs.need(missing, f"customers with net spend (k={s.k} x {MIN_CUSTOMERS_PER_SEGMENT})",
              s.k * MIN_CUSTOMERS_PER_SEGMENT, active)
    return missing


@dataclass
class SegmentRun:
    table: object  # DataFrame: SEGMENT_COLUMNS
    profiles: object  # DataFrame: one row per segment
    silhouettes: dict[int, float]
    k: int
    n_excluded: int
    train_seconds: float
    eval_seconds: float
    centroids: dict = field(default_factory=dict)
    run_id: str = field(default_factory=runs.new_run_id)


def fit_segments(customers, settings: SegmentSettings | None = None) -> SegmentRun:
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    from ecommerce_platform.ml._threads import single_threaded

    s = settings or SegmentSettings()
    missing = data_problems(customers, s)
    if missing:
        raise runs.InsufficientData(missing)
    # row order from the engine is not stable (parallel writers): sort so K-Means++ is reproducible
    df = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    keep = clustered_mask(df)
    active, excluded = df[keep].reset_index(drop=True), df[~keep].reset_index(drop=True)
    t0 = time.perf_counter()
    with single_threaded():
        X = StandardScaler().fit_transform(rfm_matrix(active))
        km = KMeans(n_clusters=s.k, n_init=s.n_init, random_state=s.random_state).fit(X)
    train_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    labels = km.labels_
    # centroid profile in original units (medians are robust to the long tail)
    centroid_rfm = np.array([active.loc[labels == c, list(RFM_COLUMNS)].median().to_numpy(float) for c in range(s.k)])
    names = name_clusters(centroid_rfm)
    silhouettes = {}
    rng = np.random.RandomState(s.random_state)
    sample = rng.choice(len(X), size=min(s.silhouette_sample, len(X)), replace=False)
    with single_threaded():
        for k in range(s.k_range[0], s.k_range[1] + 1):
            lab = labels if k == s.k else KMeans(n_clusters=k, n_init=3, random_state=s.random_state).fit_predict(X)
            silhouettes[k] = round(float(silhouette_score(X[sample], lab[sample])), 4)
        pca = PCA(n_components=2, random_state=s.random_state).fit(X)
    xy = pca.transform(X)
    eval_seconds = time.perf_counter() - t1

    table = pd.DataFrame({
        "customer_id": active["customer_id"].astype(str),
        "segment": [names[c] for c in labels],
        "cluster": labels.astype(np.int32),
        "recency_days": active["recency_days"].astype(float),
        "frequency": active["frequency"].astype(np.int64),
        "monetary": active["monetary"].astype(float),
        "avg_basket": active["avg_basket"].astype(float),
        "pca_x": xy[:, 0], "pca_y": xy[:, 1],
    })
    if len(excluded):
        table = pd.concat([table, pd.DataFrame({
            "customer_id": excluded["customer_id"].astype(str),
            "segment": NO_NET_SPEND,
            "cluster": np.full(len(excluded), -1, dtype=np.int32),
            "recency_days": excluded["recency_days"].astype(float),
            "frequency": excluded["frequency"].astype(np.int64),
            "monetary": excluded["monetary"].astype(float),
            "avg_basket": excluded["avg_basket"].astype(float),
            "pca_x": np.nan, "pca_y": np.nan,
        })], ignore_index=True)
    table = table.sort_values("customer_id").reset_index(drop=True)
    profiles = (
        table.groupby("segment")
        .agg(customers=("customer_id", "size"), recency_days_median=("recency_days", "median"),
             frequency_median=("frequency", "median"), monetary_median=("monetary", "median"),
             avg_basket_median=("avg_basket", "median"), monetary_total=("monetary", "sum"))
        .sort_values("monetary_median", ascending=False)
        .reset_index()
    )
    profiles["share"] = (profiles["customers"] / profiles["customers"].sum()).round(4)
    return SegmentRun(
        table=table, profiles=profiles, silhouettes=silhouettes, k=s.k, n_excluded=int(len(excluded)),
        train_seconds=round(train_seconds, 3), eval_seconds=round(eval_seconds, 3),
        centroids={names[c]: dict(zip(RFM_COLUMNS, map(float, centroid_rfm[c]))) for c in range(s.k)},
    )


def scatter_png(table) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = table.dropna(subset=["pca_x", "pca_y"])
    fig, ax = plt.subplots(figsize=(7, 5), dpi=90)
    for name, part in sorted(data.groupby("segment"), key=lambda kv: kv[0]):
        ax.scatter(part["pca_x"], part["pca_y"], s=6, alpha=0.6, label=f"{name} ({len(part)})")
    ax.set_xlabel("PC 1 (scaled log RFM)")
    ax.set_ylabel("PC 2")
    ax.set_title("Customer segments (PCA of RFM features)")
    ax.legend(markerscale=3, fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


# ----------------------------------------------------------------------------- coverage (the gate)
COVERAGE_KEYS = ("customers", "distinct_customers", "labelled", "distinct_labelled", "unlabelled", "unknown",
                 "unnamed", "clustered_without_spend", "misfiled")


def coverage_problems(counts: dict) -> list[str]:
    """Why a segments table does not cover customer_features (empty: it does). ``counts``: the
    COVERAGE_KEYS, counted from frames before publishing (``coverage_counts``) or recounted in SQL
    from the published tables (sql/segment_coverage.sql)."""
    c = {k: int(counts[k]) for k in COVERAGE_KEYS}
    problems = []
    if c["customers"] != c["distinct_customers"]:
        problems.append(f"customer_features holds {c['customers'] - c['distinct_customers']:,} repeated customer rows")
    if c["labelled"] != c["distinct_labelled"]:
        problems.append(f"{c['labelled'] - c['distinct_labelled']:,} customers are labelled more than once")
    if c["unlabelled"]:
        problems.append(f"{c['unlabelled']:,} customers of customer_features have no segment")
    if c["unknown"]:
        problems.append(f"{c['unknown']:,} segment rows are for customers not in customer_features")
    if c["unnamed"]:
        problems.append(f"{c['unnamed']:,} segment rows have no segment name")
    if c["clustered_without_spend"]:
        problems.append(f"{c['clustered_without_spend']:,} clustered customers have no net spend")
    if c["misfiled"]:
        problems.append(f"{c['misfiled']:,} customers are filed against their net spend flag "
                        f"(clustered without it, or '{NO_NET_SPEND}' with it)")
    if c["customers"] == 0:
        problems.append("customer_features is empty")
    return problems


def coverage_counts(customers, table) -> dict:  # noqa: ANN001
    """COVERAGE_KEYS counted from customer_features (``customers``) and a segments frame (``table``)."""
    f_ids = customers["customer_id"].astype(str)
    s_ids = table["customer_id"].astype(str)
    named = table["segment"].fillna("").astype(str)
    clustered = named != NO_NET_SPEND
    flags = dict(zip(f_ids, customers["has_net_spend"].astype(bool)))
    return {
        "customers": len(customers), "distinct_customers": int(f_ids.nunique()),
        "labelled": len(table), "distinct_labelled": int(s_ids.nunique()),
        "unlabelled": int((~f_ids.isin(set(s_ids))).sum()), "unknown": int((~s_ids.isin(set(f_ids))).sum()),
        "unnamed": int((named == "").sum()),
        "clustered_without_spend": int((clustered & ((table["monetary"] <= 0) | (table["frequency"] <= 0))).sum()),
        "misfiled": int(sum(1 for cid, c in zip(s_ids, clustered) if cid in flags and flags[cid] != c)),
    }


def coverage_sql() -> str:
    from ecommerce_platform.resources.sql_dialect import read_sql, render

    return render(read_sql("ecommerce_platform.ml", "segment_coverage.sql"), no_net_spend=NO_NET_SPEND)


def vip_view_sql(segment: str = TOP_SEGMENT) -> str:
    from ecommerce_platform.resources.sql_dialect import read_sql, render

    return render(read_sql("ecommerce_platform.ml", "vip_transactions.sql"), segment=segment)


# ----------------------------------------------------------------------------- lake I/O
def catalog_table(warehouse) -> None:  # noqa: ANN001 - Warehouse
    """The table ``customer_segments`` over the published Parquet (an empty table before any)."""
    warehouse.register_table(SEGMENTS_TABLE, SEGMENTS_PREFIX, SEGMENT_COLUMNS)


def published(lake) -> bool:  # noqa: ANN001
    return any(k.endswith(".parquet") for k in lake.list(SEGMENTS_PREFIX))


def served_run_id(lake) -> str | None:  # noqa: ANN001
    key = f"{MODEL_PREFIX}/served.json"
    return json.loads(lake.get_text(key)).get("run_id") if lake.exists(key) and published(lake) else None


def write_segments(warehouse, run: SegmentRun) -> dict:  # noqa: ANN001
    """Publish the run: Parquet in the models zone (one atomic publish), the table `customer_segments`,
    the PCA plot and the profile JSON beside it."""
    lake = warehouse.lake
    buf = io.BytesIO()
    run.table.to_parquet(buf, index=False)
    staging = lake.staging_prefix(SEGMENTS_PREFIX)
    lake.put_bytes(f"{staging}/part-0.parquet", buf.getvalue())
    lake.publish_prefix(staging, SEGMENTS_PREFIX)
    catalog_table(warehouse)
    lake.put_bytes(PLOT_KEY, scatter_png(run.table))
    lake.put_text(PROFILE_KEY, json.dumps(runs.json_safe({
        "run_id": run.run_id, "k": run.k, "silhouettes": {str(k): v for k, v in run.silhouettes.items()},
        "centroids": run.centroids, "excluded_no_net_spend": run.n_excluded,
        "sizes": dict(zip(run.profiles["segment"], map(int, run.profiles["customers"]))),
    }), indent=2))
    lake.put_text(f"{MODEL_PREFIX}/served.json", json.dumps({"run_id": run.run_id, "published_at": runs.now_iso()}))
    return {"uri": lake.uri(SEGMENTS_PREFIX), "plot_uri": lake.uri(PLOT_KEY)}


def run_and_publish(warehouse, customers, settings: SegmentSettings) -> tuple[dict, SegmentRun | None]:  # noqa: ANN001
    """Fit, validate and publish one run; records it (runs.write_record) and returns (record, run)."""
    lake = warehouse.lake
    try:
        run = fit_segments(customers, settings)
    except runs.InsufficientData as exc:
        catalog_table(warehouse)  # the published table stays (an empty one if none was ever published)
        record = {"status": runs.INSUFFICIENT, "run_id": runs.new_run_id(), "finished_at": runs.now_iso(),
                  "missing": exc.missing, "message": str(exc), "served_run_id": served_run_id(lake),
                  "k": settings.k}
        runs.write_record(lake, MODEL_PREFIX, record)
        return record, None
    counts = coverage_counts(customers, run.table)
    problems = coverage_problems(counts)
    if problems:
        catalog_table(warehouse)
    else:
        write_segments(warehouse, run)
    record = {
        "status": runs.REJECTED if problems else runs.SERVED, "run_id": run.run_id,
        "finished_at": runs.now_iso(), "k": run.k, "coverage": counts, "problems": problems,
        "silhouettes": {str(k): v for k, v in run.silhouettes.items()}, "excluded_no_net_spend": run.n_excluded,
        "sizes": dict(zip(run.profiles["segment"], map(int, run.profiles["customers"]))),
        "served_run_id": served_run_id(lake),
    }
    runs.write_record(lake, MODEL_PREFIX, record)
    return record, run


def outputs_exist(lake) -> bool:  # noqa: ANN001
    record = runs.read_record(lake, MODEL_PREFIX)
    if record is None:
        return False
    return record.get("served_run_id") is None or served_run_id(lake) == record["served_run_id"]
