"""Customer segments from completed sales net of returns (recency, frequency, monetary, average basket).

Rules first, for customers whose profile is not a cluster's to decide:
- ``no net spend``: net spend <= 0 (returns of purchases made before the data starts, or returns only);
- ``new``: a single sale invoice within the last ``NEW_DAYS`` (90) days;
- ``one-time buyers``: a single sale invoice, longer ago. (One-time buyers are not "at risk": they never
  came back in the first place.)
Repeat buyers (two or more sale invoices) are clustered: log1p of the RFM columns, standardised, K-Means.
k is chosen from ``k_range`` by silhouette AND stability: the k with the best silhouette among those whose
bootstrap refits agree with the full fit (mean adjusted Rand index >= ``MIN_STABILITY_ARI``); a k given
in the settings (a business choice) is used instead and said so. Each cluster is named from its median
profile with stated thresholds (``name_clusters``): 'champions' (median recency <= 30 days and median
frequency >= 5 invoices), 'regulars' (recency <= 90 days), 'at risk' (recency <= 180 days), 'lapsed'
(beyond); a name two clusters earn goes to the higher-spending one, the other gets ' (2)'. Names depend
only on the profiles, never on cluster ids, so they stay with the same customers when ids change.

Publication: the table ``customer_segments`` is replaced only by a run whose labels cover every customer
of ``customer_features`` exactly once (``coverage_problems``, the same rules the check recounts in SQL
on the published tables); a run that does not is recorded as ``rejected`` and publishes nothing. Fewer
than ``2 x MIN_CUSTOMERS_PER_SEGMENT`` repeat buyers: ``insufficient_data``, nothing is fitted and the
published table stays.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field

import numpy as np

from ecommerce_platform.ml import runs
from ecommerce_platform.ml.contract import (  # noqa: F401
    ACTIVE_DAYS,
    CHAMPION_FREQUENCY,
    CHAMPION_RECENCY_DAYS,
    LAPSED_DAYS,
    MIN_STABILITY_ARI,
    NEW,
    NEW_DAYS,
    ONE_TIME,  # noqa: F401 - the layer's published names
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
    k: int | None = None  # None: chosen by silhouette and stability; a number: a business choice
    k_range: tuple[int, int] = (2, 8)
    silhouette_sample: int = 3000
    stability_samples: int = 5  # bootstrap refits per k
    random_state: int = 0
    n_init: int = 10


def rfm_matrix(df) -> np.ndarray:
    """log1p of the RFM columns (monetary and basket are > 0 for clustered customers)."""
    X = df[list(RFM_COLUMNS)].astype(float).to_numpy()
    if (X < 0).any() or np.isnan(X).any():
        raise ValueError("RFM features must be >= 0 and not null: filter customers without net spend first")
    return np.log1p(X)


def cluster_name(recency: float, frequency: float) -> str:
    """The name a cluster's median profile earns (thresholds in contract.py)."""
    if recency <= CHAMPION_RECENCY_DAYS and frequency >= CHAMPION_FREQUENCY:
        return TOP_SEGMENT
    if recency <= ACTIVE_DAYS:
        return "regulars"
    if recency <= LAPSED_DAYS:
        return "at risk"
    return "lapsed"


def name_clusters(centroids: np.ndarray) -> list[str]:
    """Names for clusters from their median profiles (rows: recency_days, frequency, monetary, ... in
    original units): ``cluster_name`` of each; when several clusters earn the same name, the one with
    the higher median monetary keeps it and the others get ' (2)', ' (3)', ... by descending monetary.
    Depends only on centroid values, so permuting cluster ids permutes the names with them."""
    c = np.asarray(centroids, dtype=float)
    base = [cluster_name(r, f) for r, f in zip(c[:, 0], c[:, 1])]
    names = list(base)
    for name in set(base):
        same = sorted((i for i, b in enumerate(base) if b == name), key=lambda i: (-c[i, 2], -c[i, 1], c[i, 0]))
        for rank, i in enumerate(same[1:], start=2):
            names[i] = f"{name} ({rank})"
    return names


def clustered_mask(df) -> np.ndarray:  # noqa: ANN001
    """Customers with net spend > 0 from at least one sale (every segment but 'no net spend')."""
    return (df["has_net_spend"].astype(bool) & (df["frequency"] > 0) & (df["monetary"] > 0)).to_numpy()


def rule_segments(df) -> np.ndarray:  # noqa: ANN001
    """The rule segment of each customer ('' for repeat buyers, whom the clustering names)."""
    spend = clustered_mask(df)
    freq = df["frequency"].to_numpy()
    recency = df["recency_days"].astype(float).to_numpy()
    out = np.full(len(df), "", dtype=object)
    out[~spend] = NO_NET_SPEND
    out[spend & (freq == 1) & (recency <= NEW_DAYS)] = NEW
    out[spend & (freq == 1) & ~(recency <= NEW_DAYS)] = ONE_TIME
    return out


def data_problems(customers, s: SegmentSettings) -> dict[str, dict]:  # noqa: ANN001
    """What the input lacks for an honest segmentation (empty: enough)."""
    missing: dict[str, dict] = {}
    repeat = int((rule_segments(customers) == "").sum()) if len(customers) else 0
    k = s.k or s.k_range[0]
    runs.need(missing, f"repeat buyers with net spend (k={k} x {MIN_CUSTOMERS_PER_SEGMENT})",
              k * MIN_CUSTOMERS_PER_SEGMENT, repeat)
    return missing


def choose_k(X: np.ndarray, s: SegmentSettings) -> tuple[int, list[dict], str]:
    """(k, one row per candidate k: silhouette and bootstrap stability, why): the best silhouette among
    the stable k (mean adjusted Rand index of bootstrap refits vs the full fit >= MIN_STABILITY_ARI)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, silhouette_score

    rng = np.random.RandomState(s.random_state)
    sample = rng.choice(len(X), size=min(s.silhouette_sample, len(X)), replace=False)
    hi = min(s.k_range[1], len(X) // MIN_CUSTOMERS_PER_SEGMENT)
    rows = []
    for k in range(s.k_range[0], max(hi, s.k_range[0]) + 1):
        full = KMeans(n_clusters=k, n_init=3, random_state=s.random_state).fit(X)
        sil = float(silhouette_score(X[sample], full.labels_[sample]))
        aris = []
        for b in range(s.stability_samples):
            idx = rng.choice(len(X), size=len(X), replace=True)
            boot = KMeans(n_clusters=k, n_init=3, random_state=s.random_state + b + 1).fit(X[idx])
            aris.append(adjusted_rand_score(full.labels_, boot.predict(X)))
        rows.append({"k": k, "silhouette": round(sil, 4), "stability_ari": round(float(np.mean(aris)), 4),
                     "stability_ari_min": round(float(np.min(aris)), 4)})
    if s.k is not None:
        return int(s.k), rows, f"k={s.k} set in the configuration (a business choice), not chosen by the data"
    stable = [r for r in rows if r["stability_ari"] >= MIN_STABILITY_ARI]
    if stable:
        best = max(stable, key=lambda r: (r["silhouette"], -r["k"]))
        return best["k"], rows, (f"k={best['k']}: the best silhouette ({best['silhouette']}) among the k whose "
                                 f"bootstrap refits agree (mean ARI >= {MIN_STABILITY_ARI})")
    best = max(rows, key=lambda r: (r["stability_ari"], -r["k"]))
    return best["k"], rows, f"k={best['k']}: no k is stable (mean ARI >= {MIN_STABILITY_ARI}); the most stable one"


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
    k_choice: list = field(default_factory=list)  # per candidate k: silhouette, stability
    k_reason: str = ""
    run_id: str = field(default_factory=runs.new_run_id)


def fit_segments(customers, settings: SegmentSettings | None = None) -> SegmentRun:
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    from ecommerce_platform.ml._threads import single_threaded

    s = settings or SegmentSettings()
    missing = data_problems(customers, s)
    if missing:
        raise runs.InsufficientData(missing)
    # row order from the engine is not stable (parallel writers): sort so K-Means++ is reproducible
    df = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    rules = rule_segments(df)
    repeat = rules == ""
    active = df[repeat].reset_index(drop=True)
    t0 = time.perf_counter()
    with single_threaded():
        X = StandardScaler().fit_transform(rfm_matrix(active))
        k, k_rows, k_reason = choose_k(X, s)
        km = KMeans(n_clusters=k, n_init=s.n_init, random_state=s.random_state).fit(X)
    train_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    labels = km.labels_
    # centroid profile in original units (medians are robust to the long tail)
    centroid_rfm = np.array([active.loc[labels == c, list(RFM_COLUMNS)].median().to_numpy(float) for c in range(k)])
    names = name_clusters(centroid_rfm)
    with single_threaded():
        pca = PCA(n_components=2, random_state=s.random_state).fit(X)
    xy = pca.transform(X)
    eval_seconds = time.perf_counter() - t1

    seg = rules.copy()
    seg[repeat] = [names[c] for c in labels]
    cluster = np.full(len(df), -1, dtype=np.int32)
    cluster[repeat] = labels
    px, py = np.full(len(df), np.nan), np.full(len(df), np.nan)
    px[repeat], py[repeat] = xy[:, 0], xy[:, 1]
    table = pd.DataFrame({
        "customer_id": df["customer_id"].astype(str), "segment": seg.astype(str), "cluster": cluster,
        "recency_days": df["recency_days"].astype(float), "frequency": df["frequency"].astype(np.int64),
        "monetary": df["monetary"].astype(float), "avg_basket": df["avg_basket"].astype(float),
        "pca_x": px, "pca_y": py,
    }).sort_values("customer_id").reset_index(drop=True)
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
        table=table, profiles=profiles, silhouettes={r["k"]: r["silhouette"] for r in k_rows}, k=k,
        n_excluded=int((rules == NO_NET_SPEND).sum()), train_seconds=round(train_seconds, 3),
        eval_seconds=round(eval_seconds, 3),
        centroids={names[c]: dict(zip(RFM_COLUMNS, map(float, centroid_rfm[c]))) for c in range(k)},
        k_choice=k_rows, k_reason=k_reason,
    )


def scatter_png(table) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = table.dropna(subset=["pca_x", "pca_y"])  # the clustered repeat buyers
    fig, ax = plt.subplots(figsize=(7, 5), dpi=90)
    for name, part in sorted(data.groupby("segment"), key=lambda kv: kv[0]):
        ax.scatter(part["pca_x"], part["pca_y"], s=6, alpha=0.6, label=f"{name} ({len(part)})")
    ax.set_xlabel("PC 1 (scaled log RFM)")
    ax.set_ylabel("PC 2")
    ax.set_title("Repeat buyers' segments (PCA of RFM features)")
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
        "k_choice": run.k_choice, "k_reason": run.k_reason, "thresholds": thresholds(),
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
        record = runs.record_insufficient(lake, MODEL_PREFIX, exc, served_run_id(lake), k=settings.k)
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
        "k_choice": run.k_choice, "k_reason": run.k_reason,
        "sizes": dict(zip(run.profiles["segment"], map(int, run.profiles["customers"]))),
        "served_run_id": served_run_id(lake),
    }
    runs.write_record(lake, MODEL_PREFIX, record)
    return record, run


def outputs_exist(lake) -> bool:  # noqa: ANN001
    """The run record and, when it says a model is served, the served files."""
    return runs.outputs_exist(lake, MODEL_PREFIX, served_run_id)


def thresholds() -> dict:
    """The rules and thresholds the segment names follow (shown in the metadata)."""
    return {
        NO_NET_SPEND: "net spend <= 0", NEW: f"one sale invoice, within the last {NEW_DAYS} days",
        ONE_TIME: f"one sale invoice, more than {NEW_DAYS} days ago",
        TOP_SEGMENT: f"repeat buyers' cluster with median recency <= {CHAMPION_RECENCY_DAYS} days and median "
                     f"frequency >= {CHAMPION_FREQUENCY} invoices",
        "regulars": f"repeat buyers' cluster with median recency <= {ACTIVE_DAYS} days (not champions)",
        "at risk": f"repeat buyers' cluster with median recency in ({ACTIVE_DAYS}, {LAPSED_DAYS}] days",
        "lapsed": f"repeat buyers' cluster with median recency > {LAPSED_DAYS} days",
        "stability": f"k: best silhouette among k with mean bootstrap ARI >= {MIN_STABILITY_ARI}",
    }
