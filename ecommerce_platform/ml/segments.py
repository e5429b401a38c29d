"""Customer segments: RFM (recency, frequency, monetary, average basket) from completed sales net of
returns, log1p against skew, standardised, K-Means. Each cluster is named from its centroid profile
(ranks of recency / frequency / monetary), never from its id, so names stay attached to the same
customers when ids change (reseeding, reordering).

Customers whose net spend is <= 0 (returns of purchases made before the data starts, or returns only)
are not clustered: they get the explicit segment ``NO_NET_SPEND`` and are counted in the metadata.
"""

from __future__ import annotations

import base64
import io
import json
import time
from dataclasses import dataclass, field

import numpy as np

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

MODEL_PREFIX = "models/segments"
SEGMENTS_PREFIX = f"{MODEL_PREFIX}/customer_segments"
SEGMENTS_TABLE = "customer_segments"
VIP_VIEW = "vip_transactions"
TOP_SEGMENT = "champions"
NO_NET_SPEND = "no net spend"
RFM_COLUMNS = ("recency_days", "frequency", "monetary", "avg_basket")
SEGMENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("customer_id", "string", "Customer"),
    ("segment", "string", "Segment name, from the cluster's RFM profile (or 'no net spend')"),
    ("cluster", "int", "K-Means cluster id of this run (-1: not clustered); names are the stable handle"),
    ("recency_days", "double", "Days since the last sale (to the end of the data, plus one)"),
    ("frequency", "bigint", "Completed sale invoices"),
    ("monetary", "double", "Net spend, GBP"),
    ("avg_basket", "double", "Net spend per sale invoice, GBP"),
    ("pca_x", "double", "First principal component of the scaled RFM features"),
    ("pca_y", "double", "Second principal component of the scaled RFM features"),
)


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


def fit_segments(customers, settings: SegmentSettings | None = None) -> SegmentRun:
    import pandas as pd
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    from ecommerce_platform.ml._threads import single_threaded

    s = settings or SegmentSettings()
    # row order from the engine is not stable (parallel writers): sort so K-Means++ is reproducible
    df = customers.sort_values("customer_id", kind="stable").reset_index(drop=True)
    keep = df["has_net_spend"].astype(bool) & (df["frequency"] > 0) & (df["monetary"] > 0)
    active, excluded = df[keep].reset_index(drop=True), df[~keep].reset_index(drop=True)
    if len(active) <= s.k:
        raise ValueError(f"{len(active)} customers with net spend: too few for k={s.k}")
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


def vip_view_sql(segment: str = TOP_SEGMENT) -> str:
    from ecommerce_platform.resources.warehouse import sql_str

    return (
        "SELECT t.invoice_no, t.stock_code, t.description, t.quantity, t.invoice_ts, t.unit_price, "
        "t.line_total, t.customer_id, t.country, s.segment, s.monetary AS customer_net_spend "
        f"FROM transactions AS t JOIN {SEGMENTS_TABLE} AS s ON s.customer_id = t.customer_id "
        f"WHERE s.segment = {sql_str(segment)} AND t.is_sale"
    )


def register_segments(warehouse: Warehouse, lake: Lake) -> None:
    """The `customer_segments` table and the `vip_transactions` view over the written segments."""
    warehouse.register_table(SEGMENTS_TABLE, lake, SEGMENTS_PREFIX, SEGMENT_COLUMNS)
    warehouse.create_view(VIP_VIEW, vip_view_sql(), lake)


def write_segments(warehouse: Warehouse, lake: Lake, run: SegmentRun) -> dict:
    """Parquet in the models zone, registered as `customer_segments`; the `vip_transactions` view;
    the PCA plot and the profile JSON next to them."""
    buf = io.BytesIO()
    run.table.to_parquet(buf, index=False)
    staging = lake.staging_prefix(SEGMENTS_PREFIX)
    lake.put_bytes(f"{staging}/part-0.parquet", buf.getvalue())
    lake.publish_prefix(staging, SEGMENTS_PREFIX)
    register_segments(warehouse, lake)
    png = scatter_png(run.table)
    lake.put_bytes(f"{MODEL_PREFIX}/segments_pca.png", png)
    lake.put_text(f"{MODEL_PREFIX}/profile.json", json.dumps({
        "k": run.k, "silhouettes": {str(k): v for k, v in run.silhouettes.items()},
        "centroids": run.centroids, "excluded_no_net_spend": run.n_excluded,
        "sizes": dict(zip(run.profiles["segment"], map(int, run.profiles["customers"]))),
    }, indent=2))
    return {"uri": lake.uri(SEGMENTS_PREFIX), "png": png,
            "png_uri": lake.uri(f"{MODEL_PREFIX}/segments_pca.png")}


def png_markdown(png: bytes, alt: str = "segments") -> str:
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
