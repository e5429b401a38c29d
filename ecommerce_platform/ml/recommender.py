"""Product recommendations with implicit's ALS on a users x items confidence matrix (CSR, rows =
customers, columns = products), evaluated on a time holdout against a popularity baseline.

Holdout: for every customer with >= ``min_invoices`` sale invoices, the LAST invoice (by time) is the
test; the model sees everything else. Hyper-parameters are chosen on a validation split carved from
the training data the same way (each eligible customer's last training invoice), never on the test.
Relevant items are the products of the held-out invoice the customer had not bought before (the
recommender's job is discovery; already-bought products are filtered from both ALS and popularity).
After evaluation the chosen configuration is refit on all interactions for serving.

Promotion gate (``gate``): a run is served (``models/als_model/current``) only when its precision@10 on
the test holdout is > 0 and at least ``MIN_LIFT`` x the popularity baseline's, measured in the same run
on the same users; otherwise it is kept as a candidate (``models/als_model/candidate``) and the served
model stays. Too few customers to evaluate on (``MIN_EVAL_USERS``) or too few products: nothing is
trained, the run is recorded as ``insufficient_data``.

Served artefacts (no pickle): ``factors.npz`` (user and item factors), ``users.parquet`` and
``items.parquet`` (id <-> row mappings, descriptions, popularity), ``purchased.parquet``, ``model.json``.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ecommerce_platform.ml import runs
from ecommerce_platform.ml._threads import set_blas_env, single_threaded
from ecommerce_platform.ml.contract import MIN_EVAL_USERS, MIN_ITEMS, MIN_LIFT, K  # noqa: F401

MODEL_PREFIX = "models/als_model"
CURRENT_PREFIX = f"{MODEL_PREFIX}/current"  # the served model
CANDIDATE_PREFIX = f"{MODEL_PREFIX}/candidate"  # the last run's model, served or not


@dataclass(frozen=True)
class ALSParams:
    factors: int = 64
    regularization: float = 0.1
    alpha: float = 1.0
    iterations: int = 15
    scaling: str = "log"  # log: alpha*log1p(units); binary: alpha; bm25: alpha*BM25 weight


DEFAULT_GRID: tuple[ALSParams, ...] = (
    ALSParams(64, 0.1, 1.0, 15, "log"),
    ALSParams(32, 0.1, 1.0, 15, "log"),
    ALSParams(64, 0.1, 5.0, 15, "binary"),
    ALSParams(64, 0.1, 1.0, 15, "bm25"),
)


@dataclass
class ALSSettings:
    min_invoices: int = 2
    grid: tuple[ALSParams, ...] = DEFAULT_GRID
    random_state: int = 0


def confidence(counts, params: ALSParams):
    """Confidence matrix from units bought (CSR users x items)."""
    C = counts.tocsr().astype(np.float32, copy=True)
    if params.scaling == "log":
        C.data = (params.alpha * np.log1p(C.data)).astype(np.float32)
    elif params.scaling == "binary":
        C.data = np.full_like(C.data, params.alpha)
    elif params.scaling == "bm25":
        from implicit.nearest_neighbours import bm25_weight

        C = (bm25_weight(C, K1=100, B=0.8).tocsr() * params.alpha).astype(np.float32)
    else:
        raise ValueError(f"unknown scaling {params.scaling!r}: log, binary or bm25")
    return C.tocsr()


def user_item_matrix(df, users: np.ndarray, items: np.ndarray):
    """CSR users x items of summed units; users/items are sorted id arrays (row/column order)."""
    import scipy.sparse as sp

    g = df.groupby(["customer_id", "stock_code"], as_index=False)["quantity"].sum()
    g = g[g["customer_id"].isin(users) & g["stock_code"].isin(items)]
    rows = np.searchsorted(users, g["customer_id"].to_numpy())
    cols = np.searchsorted(items, g["stock_code"].to_numpy())
    return sp.csr_matrix((g["quantity"].to_numpy(np.float32), (rows, cols)), shape=(len(users), len(items)))


def fit_als(counts, params: ALSParams, random_state: int = 0):
    set_blas_env()
    import scipy.linalg  # noqa: F401  (load every BLAS before limiting their threads)
    from implicit.cpu.als import AlternatingLeastSquares

    C = confidence(counts, params)
    with single_threaded():  # implicit checks OpenBLAS's threads when the model is constructed
        model = AlternatingLeastSquares(
            factors=params.factors, regularization=params.regularization, alpha=1.0,
            iterations=params.iterations, random_state=random_state, num_threads=1,
        )
        model.fit(C, show_progress=False)
    if model.user_factors.shape[0] != C.shape[0] or model.item_factors.shape[0] != C.shape[1]:
        raise AssertionError("ALS factors do not match the users x items matrix")
    return model, C


def holdout(df, rank: int, min_invoices: int):
    """(train rows, held-out rows): the invoice at ``rank`` (1 = last) of customers with at least
    ``min_invoices + rank - 1`` invoices is held out, with every later invoice removed from training."""
    eligible = df["customer_invoices"] >= min_invoices + rank - 1
    held = eligible & (df["invoice_rank_desc"] == rank)
    later = eligible & (df["invoice_rank_desc"] < rank)
    return df[~held & ~later], df[held]


@dataclass
class EvalSplit:
    users: np.ndarray
    items: np.ndarray
    counts: object  # CSR
    eval_rows: np.ndarray
    relevant: list


def make_split(train, held) -> EvalSplit:
    users = np.sort(train["customer_id"].unique())
    items = np.sort(train["stock_code"].unique())
    counts = user_item_matrix(train, users, items)
    h = held[held["customer_id"].isin(users) & held["stock_code"].isin(items)]
    rows = np.searchsorted(users, h["customer_id"].to_numpy())
    cols = np.searchsorted(items, h["stock_code"].to_numpy())
    rel: dict[int, set] = {}
    bought = np.asarray(counts[rows, cols]).ravel() if len(rows) else np.zeros(0)
    for r, c, units in zip(rows, cols, bought):
        if units == 0:  # new to the customer
            rel.setdefault(int(r), set()).add(int(c))
    eval_rows = np.array(sorted(rel), dtype=np.int64)
    return EvalSplit(users, items, counts, eval_rows, [rel[int(r)] for r in eval_rows])


def popularity_order(counts) -> np.ndarray:
    """Items by number of distinct buyers, most popular first (ties by column)."""
    buyers = np.asarray((counts > 0).sum(axis=0)).ravel()
    return np.lexsort((np.arange(len(buyers)), -buyers))


def popularity_recommend(counts, rows: np.ndarray, n: int, order: np.ndarray | None = None) -> list[list[int]]:
    order = popularity_order(counts) if order is None else order
    out = []
    for r in rows:
        bought = set(counts[r].indices.tolist())
        recs = []
        for i in order:
            if i not in bought:
                recs.append(int(i))
                if len(recs) == n:
                    break
        out.append(recs)
    return out


def als_recommend(model, C, rows: np.ndarray, n: int) -> list[list[int]]:
    if len(rows) == 0:
        return []
    ids, _ = model.recommend(rows, C[rows], N=n, filter_already_liked_items=True)
    return [[int(i) for i in r if i >= 0] for r in ids]


def evaluate_split(split: EvalSplit, params: ALSParams, random_state: int = 0) -> tuple[dict, float]:
    from ecommerce_platform.ml.metrics import ranking_metrics

    t0 = time.perf_counter()
    model, C = fit_als(split.counts, params, random_state)
    seconds = time.perf_counter() - t0
    recs = als_recommend(model, C, split.eval_rows, K)
    return ranking_metrics(recs, split.relevant, K, len(split.items)), seconds


@dataclass
class ALSRun:
    params: ALSParams
    metrics: dict
    popularity_metrics: dict
    validation: list[dict]
    holdout_info: dict
    train_seconds: float
    eval_seconds: float
    tuning_seconds: float
    model: object = None
    users: np.ndarray = field(default=None, repr=False)
    items: np.ndarray = field(default=None, repr=False)
    counts: object = field(default=None, repr=False)

    run_id: str = field(default_factory=runs.new_run_id)

    @property
    def lift(self) -> float | None:
        return lift(self.metrics, self.popularity_metrics)

    @property
    def gate_failures(self) -> list[str]:
        return gate(self.metrics, self.popularity_metrics)

    @property
    def beats_popularity(self) -> bool:
        return not self.gate_failures

    def summary(self) -> dict:
        return {
            "run_id": self.run_id, "params": asdict(self.params), "metrics": self.metrics,
            "popularity_metrics": self.popularity_metrics, "precision_lift": self.lift, "min_lift": MIN_LIFT,
            "beats_popularity": self.beats_popularity, "gate_failures": self.gate_failures,
            "validation": self.validation, "holdout": self.holdout_info, "train_seconds": self.train_seconds,
            "eval_seconds": self.eval_seconds, "tuning_seconds": self.tuning_seconds,
        }


def lift(metrics: dict, popularity_metrics: dict) -> float | None:
    """ALS precision@K / popularity's (None when popularity's is 0)."""
    base = popularity_metrics[f"precision_at_{K}"]
    return metrics[f"precision_at_{K}"] / base if base > 0 else None


def gate(metrics: dict, popularity_metrics: dict) -> list[str]:
    """Why a run must not be served (empty: it may): its precision@K on the test holdout must be > 0
    and at least MIN_LIFT x the popularity baseline's, measured on the same users."""
    p, base = metrics[f"precision_at_{K}"], popularity_metrics[f"precision_at_{K}"]
    reasons = []
    if not p > 0:
        reasons.append(f"ALS precision@{K} is {p:.4f}: it recommends nothing the customers bought next")
    if p < MIN_LIFT * base:
        reasons.append(f"ALS precision@{K} {p:.4f} < {MIN_LIFT} x popularity's {base:.4f}")
    return reasons


def data_problems(interactions, split: "EvalSplit | None" = None, val_split: "EvalSplit | None" = None) -> dict[str, dict]:
    """What ``interactions`` lack for an honest evaluation (empty: enough): products, and customers with
    a held-out product new to them in the test split and in the validation split."""
    missing: dict[str, dict] = {}
    if interactions.empty:
        runs.need(missing, "interactions", 1, 0)
        return missing
    runs.need(missing, "products", MIN_ITEMS, int(interactions["stock_code"].nunique()))
    runs.need(missing, "test customers (last invoice holds a product new to them)", MIN_EVAL_USERS,
              0 if split is None else len(split.eval_rows))
    runs.need(missing, "validation customers (second-last invoice holds a product new to them)", MIN_EVAL_USERS,
              0 if val_split is None else len(val_split.eval_rows))
    return missing


def train_and_evaluate(interactions, settings: ALSSettings | None = None) -> ALSRun:
    from ecommerce_platform.ml.metrics import ranking_metrics

    s = settings or ALSSettings()
    if interactions.empty:
        raise runs.InsufficientData(data_problems(interactions))
    t0 = time.perf_counter()
    train, test_rows = holdout(interactions, 1, s.min_invoices)
    val_train, val_rows = holdout(train, 2, s.min_invoices)
    split, val_split = make_split(train, test_rows), make_split(val_train, val_rows)
    missing = data_problems(interactions, split, val_split)
    if missing:
        raise runs.InsufficientData(missing)
    # 1. tune on validation (carved from the training part only)
    validation = []
    for params in s.grid:
        m, secs = evaluate_split(val_split, params, s.random_state)
        validation.append({**asdict(params), **{k: round(v, 5) for k, v in m.items()}, "fit_seconds": round(secs, 3)})
    best = max(range(len(s.grid)), key=lambda i: (validation[i][f"map_at_{K}"], -i))
    params = s.grid[best]
    tuning_seconds = time.perf_counter() - t0
    # 2. evaluate the chosen configuration and popularity on the test holdout
    t1 = time.perf_counter()
    metrics, _ = evaluate_split(split, params, s.random_state)
    pop = ranking_metrics(popularity_recommend(split.counts, split.eval_rows, K), split.relevant, K, len(split.items))
    eval_seconds = time.perf_counter() - t1
    # 3. refit on everything for serving
    users = np.sort(interactions["customer_id"].unique())
    items = np.sort(interactions["stock_code"].unique())
    counts = user_item_matrix(interactions, users, items)
    t2 = time.perf_counter()
    model, _ = fit_als(counts, params, s.random_state)
    train_seconds = time.perf_counter() - t2
    info = {"min_invoices": s.min_invoices, "test_users": int(len(split.eval_rows)),
            "validation_users": int(len(val_split.eval_rows)), "train_interactions": int(split.counts.nnz),
            "users": int(len(users)), "items": int(len(items))}
    return ALSRun(params, metrics, pop, validation, info, round(train_seconds, 3), round(eval_seconds, 3),
                  round(tuning_seconds, 3), model, users, items, counts)


# ----------------------------------------------------------------------------- lake I/O + serving
def _parquet(df) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def product_catalog(warehouse):  # noqa: ANN001, ANN201 - Warehouse -> DataFrame
    from ecommerce_platform.resources.sql_dialect import read_sql

    return warehouse.query_df(read_sql("ecommerce_platform.ml", "product_catalog.sql"))


def save_model(lake, run: ALSRun, catalog, prefix: str = CURRENT_PREFIX) -> str:  # noqa: ANN001
    """Write the run's model under ``prefix``, replacing what was there in one publish."""
    import pandas as pd

    staging = lake.staging_prefix(prefix)
    buf = io.BytesIO()
    np.savez_compressed(buf, user_factors=np.asarray(run.model.user_factors),
                        item_factors=np.asarray(run.model.item_factors))
    lake.put_bytes(f"{staging}/factors.npz", buf.getvalue())
    purchased = run.counts.tocsr()
    users = pd.DataFrame({"customer_id": run.users, "row": np.arange(len(run.users), dtype=np.int64)})
    items = pd.DataFrame({"stock_code": run.items, "col": np.arange(len(run.items), dtype=np.int64)})
    items = items.merge(catalog, on="stock_code", how="left").sort_values("col")
    items["buyers"] = np.asarray((purchased > 0).sum(axis=0)).ravel()
    lake.put_bytes(f"{staging}/users.parquet", _parquet(users))
    lake.put_bytes(f"{staging}/items.parquet", _parquet(items.reset_index(drop=True)))
    coo = purchased.tocoo()
    lake.put_bytes(f"{staging}/purchased.parquet", _parquet(pd.DataFrame(
        {"row": coo.row.astype(np.int64), "col": coo.col.astype(np.int64), "units": coo.data.astype(np.float64)})))
    lake.put_text(f"{staging}/model.json", json.dumps(runs.json_safe(
        {**run.summary(), "format": "implicit-als-factors/1", "trained_at": runs.now_iso()}), indent=2))
    lake.publish_prefix(staging, prefix)
    return lake.uri(prefix)


def served_run_id(lake, prefix: str = CURRENT_PREFIX) -> str | None:  # noqa: ANN001
    key = f"{prefix}/model.json"
    return json.loads(lake.get_text(key)).get("run_id") if lake.exists(key) else None


def run_and_publish(lake, interactions, catalog_fn, settings: ALSSettings) -> tuple[dict, ALSRun | None]:  # noqa: ANN001
    """Train, evaluate and publish one run: the candidate always, the served model only if the run
    passes its gate (``catalog_fn()`` gives product names). Records the run and returns (record, run)."""
    try:
        run = train_and_evaluate(interactions, settings)
    except runs.InsufficientData as exc:
        record = {"status": runs.INSUFFICIENT, "run_id": runs.new_run_id(), "finished_at": runs.now_iso(),
                  "missing": exc.missing, "message": str(exc), "served_run_id": served_run_id(lake),
                  "min_invoices": settings.min_invoices}
        runs.write_record(lake, MODEL_PREFIX, record)
        return record, None
    catalog = catalog_fn()
    save_model(lake, run, catalog, CANDIDATE_PREFIX)
    if run.beats_popularity:
        save_model(lake, run, catalog, CURRENT_PREFIX)
    record = {**run.summary(), "status": runs.SERVED if run.beats_popularity else runs.REJECTED,
              "finished_at": runs.now_iso(), "served_run_id": served_run_id(lake),
              "min_invoices": settings.min_invoices}
    runs.write_record(lake, MODEL_PREFIX, record)
    return record, run


def outputs_exist(lake) -> bool:  # noqa: ANN001
    record = runs.read_record(lake, MODEL_PREFIX)
    if record is None:
        return False
    return record.get("served_run_id") is None or served_run_id(lake) == record["served_run_id"]


def popularity_on_holdout(interactions, min_invoices: int) -> dict:
    """The popularity baseline on the test holdout, counted again from ``interactions`` (the check's
    recount: independent of what the run reported)."""
    from ecommerce_platform.ml.metrics import ranking_metrics

    train, test_rows = holdout(interactions, 1, min_invoices)
    split = make_split(train, test_rows)
    return ranking_metrics(popularity_recommend(split.counts, split.eval_rows, K), split.relevant, K, len(split.items))


class UnknownItemError(KeyError):
    pass


@dataclass
class Recommender:
    """The served model, loaded from npz/Parquet/JSON only."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    users: object  # DataFrame customer_id,row
    items: object  # DataFrame stock_code,col,description,buyers
    purchased: object  # CSR users x items
    meta: dict

    @classmethod
    def load(cls, lake, prefix: str = CURRENT_PREFIX) -> "Recommender":  # noqa: ANN001
        import pandas as pd
        import scipy.sparse as sp

        if not lake.exists(f"{prefix}/model.json"):
            raise FileNotFoundError(f"no recommender at {lake.uri(prefix)}: materialize `als_model` first "
                                    "(a model is served only when it beats the popularity baseline)")
        with np.load(io.BytesIO(lake.get_bytes(f"{prefix}/factors.npz")), allow_pickle=False) as z:
            uf, itf = z["user_factors"], z["item_factors"]
        users = pd.read_parquet(io.BytesIO(lake.get_bytes(f"{prefix}/users.parquet")))
        items = pd.read_parquet(io.BytesIO(lake.get_bytes(f"{prefix}/items.parquet")))
        p = pd.read_parquet(io.BytesIO(lake.get_bytes(f"{prefix}/purchased.parquet")))
        purchased = sp.csr_matrix((p["units"].to_numpy(), (p["row"].to_numpy(), p["col"].to_numpy())),
                                  shape=(len(users), len(items)))
        return cls(uf, itf, users, items, purchased, json.loads(lake.get_text(f"{prefix}/model.json")))

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id", ""))

    def _rows(self, idx: list[int], scores: list[float] | None, reason: str) -> list[dict]:
        out = []
        for rank, i in enumerate(idx):
            item = self.items.iloc[int(i)]
            desc = item.get("description")
            out.append({"rank": rank + 1, "stock_code": str(item["stock_code"]),
                        "description": None if desc is None or desc != desc else str(desc),
                        "score": None if scores is None else round(float(scores[rank]), 5), "source": reason})
        return out

    def popular(self, n: int, exclude: set | None = None) -> list[int]:
        order = np.lexsort((np.arange(len(self.items)), -self.items["buyers"].to_numpy()))
        exclude = exclude or set()
        return [int(i) for i in order if int(i) not in exclude][:n]

    def recommend(self, customer_id, n: int = 10, include_purchased: bool = False) -> dict:
        cid = str(customer_id).strip()
        match = self.users.index[self.users["customer_id"] == cid]
        if len(match) == 0:
            return {"customer_id": cid, "known_customer": False, "model_run_id": self.run_id,
                    "message": f"customer {cid!r} is not in the model: showing the most popular products (cold start)",
                    "items": self._rows(self.popular(n), None, "popularity")}
        row = int(self.users.loc[match[0], "row"])
        scores = self.item_factors @ self.user_factors[row]
        bought = set(self.purchased[row].indices.tolist())
        if not include_purchased:
            scores = scores.copy()
            scores[list(bought)] = -np.inf
        top = [int(i) for i in np.argsort(-scores, kind="stable")[:n] if np.isfinite(scores[i])]
        return {"customer_id": cid, "known_customer": True, "purchased_products": len(bought),
                "model_run_id": self.run_id, "items": self._rows(top, [scores[i] for i in top], "als")}

    def similar(self, stock_code, n: int = 10) -> dict:
        code = str(stock_code).strip().upper()
        match = self.items.index[self.items["stock_code"] == code]
        if len(match) == 0:
            raise UnknownItemError(f"unknown stock code {code!r}: it was never sold to a known customer")
        col = int(self.items.loc[match[0], "col"])
        f = self.item_factors
        norms = np.linalg.norm(f, axis=1)
        sims = (f @ f[col]) / np.maximum(norms * norms[col], 1e-12)
        sims[col] = -np.inf
        top = [int(i) for i in np.argsort(-sims, kind="stable")[:n]]
        item = self.items.iloc[col]
        return {"stock_code": code, "description": item.get("description"),
                "items": self._rows(top, [sims[i] for i in top], "als-cosine")}
