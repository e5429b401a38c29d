"""Product recommendations in two modes, held to strong baselines.

- ``discovery``: products NEW to the customer (what they bought before is never recommended). The model
  blends implicit's ALS (users x items confidence matrix, CSR rows = customers) with recent popularity
  (buyers in the last ``RECENT_DAYS`` days): score = (1 - w) * minmax(ALS) + w * minmax(recent).
- ``next-basket``: what the customer buys next, re-orders included. The model blends the customer's own
  repeat signal (invoices of theirs holding the product) with ALS: score = w * minmax(repeat) +
  (1 - w) * minmax(ALS).
(minmax: per customer, over the products.) The blend weights (and the ALS configuration when a grid is
given) are chosen on a VALIDATION split, never on a test: the global time cut one month earlier (train
before the last ``2 x TIME_CUT_DAYS`` days, validate on the month after).

Two evaluations, each in both modes, each against every baseline measured on the same customers:
- the global time cut (the standard leak check): train on everything before the last
  ``TIME_CUT_DAYS`` days of data, test on what each customer bought in them;
- the per-customer holdout: each customer's last invoice (customers with >= ``min_invoices``), the
  model trained on everything else.
Relevant products: discovery, the held-out products new to the customer; next-basket, every held-out
product. Baselines: popularity (distinct buyers), recent popularity (buyer-days in the 30 days before the
held-out invoice, or before the cut), item-kNN (cosine between products' buyer sets, summed over the
customer's products), and, for next-basket, "repeat most-bought" (the customer's own products by the
number of their invoices holding it). Discovery baselines never recommend a product already bought.

Gate (``gate``): in each mode and each evaluation, D = precision@K - MIN_LIFT[mode] x the strongest
baseline's precision@K per customer, with a paired bootstrap interval over customers
(contract.CONFIDENCE): served when every interval is above 0, rejected when one is below 0, inconclusive
(not served, the check warns) otherwise. Too few customers to evaluate or products: nothing is trained,
``insufficient_data``. After evaluation the chosen configuration is refit on all interactions.

Served artefacts (no pickle): ``factors.npz`` (user and item factors), ``users.parquet`` and
``items.parquet`` (id <-> row mappings, descriptions, popularity, recent buyers), ``purchased.parquet``
(units and invoices per customer and product), ``model.json`` (blend weights, figures),
``evaluation.parquet`` (each test customer's precision@K of the model, for the check's recount).
"""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ecommerce_platform.ml import runs
from ecommerce_platform.ml._threads import set_blas_env, single_threaded
from ecommerce_platform.ml.contract import (  # noqa: F401
    BOOTSTRAP_SAMPLES,
    CONFIDENCE,
    DISCOVERY,
    MIN_EVAL_USERS,
    MIN_ITEMS,
    MIN_LIFT,
    MIN_SHARED_BUYERS,
    MODES,
    NEXT_BASKET,
    RECENT_DAYS,
    TIME_CUT_DAYS,
    K,
)

MODEL_PREFIX = "models/als_model"
CURRENT_PREFIX = f"{MODEL_PREFIX}/current"  # the served model
CANDIDATE_PREFIX = f"{MODEL_PREFIX}/candidate"  # the last run's model, served or not
TIME_CUT = "time_cut"
LAST_INVOICE = "last_invoice"
EVALUATIONS = (TIME_CUT, LAST_INVOICE)
POPULARITY, RECENT, ITEM_KNN, REPEAT = "popularity", "recent_popularity", "item_knn", "repeat_most_bought"
BASELINES = {DISCOVERY: (POPULARITY, RECENT, ITEM_KNN), NEXT_BASKET: (POPULARITY, RECENT, ITEM_KNN, REPEAT)}
BLEND_WEIGHTS = tuple(round(w, 1) for w in np.linspace(0.0, 1.0, 11))
INTERACTION_COLUMNS = "customer_id, stock_code, invoice_no, invoice_ts, quantity, invoice_rank_desc, customer_invoices"


def mode_key(mode: str) -> str:
    return mode.replace("-", "_")


@dataclass(frozen=True)
class ALSParams:
    factors: int = 64
    regularization: float = 0.1
    alpha: float = 1.0
    iterations: int = 15
    scaling: str = "log"  # log: alpha*log1p(units); binary: alpha; bm25: alpha*BM25 weight


# The configuration earlier runs chose on validation among (64|32 factors) x (log|binary|bm25): one
# fit per split keeps a run within seconds; give a longer grid to tune it again.
DEFAULT_GRID: tuple[ALSParams, ...] = (ALSParams(64, 0.1, 1.0, 15, "log"),)


@dataclass
class ALSSettings:
    min_invoices: int = 2
    grid: tuple[ALSParams, ...] = DEFAULT_GRID
    random_state: int = 0
    time_cut_days: int = TIME_CUT_DAYS
    recent_days: int = RECENT_DAYS


# ----------------------------------------------------------------------------- matrices and ALS
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


def user_item_matrix(df, users: np.ndarray, items: np.ndarray, value: str = "units"):
    """CSR users x items of summed units (``value="units"``) or of invoices holding the product
    (``value="invoices"``); users/items are sorted id arrays (row/column order)."""
    import pandas as pd
    import scipy.sparse as sp

    rows, cols = positions(users, df["customer_id"]), positions(items, df["stock_code"])
    keep = (rows >= 0) & (cols >= 0)
    if value == "units":
        vals = df["quantity"].to_numpy(np.float32)[keep]
        m = sp.csr_matrix((vals, (rows[keep], cols[keep])), shape=(len(users), len(items)))
        m.sum_duplicates()
        return m
    # distinct (cell, invoice) pairs, hashed (np.unique(axis=0) sorts rows of a 2-D array: 10x slower)
    cell = rows[keep].astype(np.int64) * len(items) + cols[keep]
    cells = pd.DataFrame({"cell": cell, "invoice": positions(None, df["invoice_no"])[keep]}).drop_duplicates()
    cells = cells["cell"].to_numpy()
    m = sp.csr_matrix((np.ones(len(cells), np.float32), (cells // len(items), cells % len(items))),
                      shape=(len(users), len(items)))
    m.sum_duplicates()
    return m


def positions(index: np.ndarray | None, values) -> np.ndarray:
    """The position of each value in the sorted id array ``index`` (-1 when absent); with no index, a
    dense code per distinct value (hash-based: no string comparisons)."""
    import pandas as pd

    if index is None:
        return pd.factorize(np.asarray(values))[0]
    return pd.Index(index).get_indexer(np.asarray(values))


def fit_als(counts, params: ALSParams, random_state: int = 0):
    set_blas_env()
    import scipy.linalg  # noqa: F401  (load every BLAS before limiting their threads)
    from implicit.cpu.als import AlternatingLeastSquares

    C = confidence(counts, params)
    with single_threaded():  # implicit checks OpenBLAS's threads when the model is constructed
        model = AlternatingLeastSquares(
            factors=params.factors, regularization=params.regularization, alpha=1.0,
            iterations=params.iterations, random_state=random_state, num_threads=0,
        )  # implicit's own threads (0: every core); each user's (item's) solve is independent: same factors
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


def time_cut(df, days: int, before_days: int = 0):
    """(train rows, test rows) of the global time cut: test = the ``days`` days ending ``before_days``
    days before the last interaction, train = everything before them."""
    import pandas as pd

    end = df["invoice_ts"].max() - pd.Timedelta(days=before_days)
    cut = end - pd.Timedelta(days=days)
    return df[df["invoice_ts"] <= cut], df[(df["invoice_ts"] > cut) & (df["invoice_ts"] <= end)]


def popularity_order(counts) -> np.ndarray:
    """Items by number of distinct buyers, most popular first (ties by column)."""
    buyers = np.asarray((counts > 0).sum(axis=0)).ravel()
    return np.lexsort((np.arange(len(buyers)), -buyers))


# ----------------------------------------------------------------------------- scoring (shared by evaluation and serving)
def minmax(scores: np.ndarray) -> np.ndarray:
    """Per row, scaled to [0, 1] (a constant row -> 0)."""
    s = np.asarray(scores, dtype=np.float32)
    lo, hi = s.min(axis=1, keepdims=True), s.max(axis=1, keepdims=True)
    out = np.subtract(s, lo)  # one new array, divided in place
    out /= np.maximum(hi - lo, 1e-12)
    return out


def blend(als_scaled: np.ndarray, other_scaled: np.ndarray, w: float) -> np.ndarray:
    """(1 - w) x ALS + w x the other signal, both already scaled by ``minmax`` (one new array)."""
    out = np.multiply(als_scaled, 1 - w)
    out += np.multiply(other_scaled, w)
    return out


def discovery_scores(als: np.ndarray, recent: np.ndarray, w: float) -> np.ndarray:
    return blend(minmax(als), minmax(recent), w)


def next_basket_scores(als: np.ndarray, repeat: np.ndarray, w: float) -> np.ndarray:
    return blend(minmax(als), minmax(repeat), w)


TOP_K_ROWS = 256  # rows ranked at a time: small working arrays (the whole matrix's argpartition indices are
# 8 bytes a cell, 126 MB for 4,300 customers x 3,657 products), blocks spread over the cores


def top_k(scores: np.ndarray, k: int, exclude: np.ndarray | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """Column indices of the k best scores per row, best first (ties by column); ``exclude``: a boolean
    mask of what may not be recommended (-1 pads rows with fewer candidates). ``rows``: the rows of
    ``scores`` to rank (default all; ``exclude`` and the result follow them). ``scores``: an array, or a
    function of row positions -> those rows' scores."""
    from concurrent.futures import ThreadPoolExecutor

    rows = np.arange(np.shape(scores)[0]) if rows is None else np.asarray(rows)  # (a function needs rows)
    k = min(k, np.shape(scores(rows[:1]) if callable(scores) else scores)[1])
    out = np.empty((len(rows), k), dtype=np.int64)

    def block(start: int) -> None:
        stop = start + TOP_K_ROWS
        block_rows = rows[start:stop]
        neg = np.negative(np.asarray(scores(block_rows) if callable(scores) else scores[block_rows], dtype=np.float32))
        if exclude is not None:
            neg[exclude[start:stop]] = np.inf
        # the k-th best score; every better one is taken, and the ties at it by lowest column
        kth = np.partition(neg, k - 1, axis=1)[:, k - 1:k]
        better, tied = neg < kth, neg == kth
        take = better | (tied & (np.cumsum(tied, axis=1) <= k - better.sum(axis=1, keepdims=True)))
        part = np.nonzero(take)[1].reshape(len(neg), k)  # exactly k per row, in column order
        order = np.lexsort((part, np.take_along_axis(neg, part, axis=1)), axis=1)
        idx = np.take_along_axis(part, order, axis=1)
        out[start:stop] = np.where(np.isfinite(np.take_along_axis(neg, idx, axis=1)), idx, -1)

    starts = range(0, len(rows), TOP_K_ROWS)
    if len(starts) <= 1:
        for start in starts:
            block(start)
    else:  # numpy releases the GIL in these loops
        with ThreadPoolExecutor(min(len(starts), os.cpu_count() or 1)) as pool:
            list(pool.map(block, starts))
    return out


# ----------------------------------------------------------------------------- one evaluation split
class Evaluation:
    """A train/test split with everything the models and baselines need, for the customers who have a
    held-out product among the training products. ``per_customer``: the recent-popularity window ends at
    each customer's held-out invoice (per-customer holdout) instead of at the end of training."""

    def __init__(self, train, test, per_customer: bool, recent_days: int = RECENT_DAYS):
        import pandas as pd
        import scipy.sparse as sp

        self.users = np.sort(train["customer_id"].unique())
        self.items = np.sort(train["stock_code"].unique())
        n_items = len(self.items)
        self.counts = user_item_matrix(train, self.users, self.items)
        self.invoices = user_item_matrix(train, self.users, self.items, "invoices")
        t_rows, t_cols = positions(self.users, test["customer_id"]), positions(self.items, test["stock_code"])
        known = (t_rows >= 0) & (t_cols >= 0)
        t, t_rows, t_cols = test[known], t_rows[known], t_cols[known]
        self.rows = np.unique(t_rows)
        pos = np.searchsorted(self.rows, t_rows)
        self.relevant_all = np.zeros((len(self.rows), n_items), dtype=bool)
        self.relevant_all[pos, t_cols] = True
        self.bought = (self.counts[self.rows] > 0).toarray()
        self.relevant = {NEXT_BASKET: self.relevant_all, DISCOVERY: self.relevant_all & ~self.bought}
        self.customers = self.users[self.rows]
        binary = (self.counts > 0).astype(np.float32).tocsr()
        self.popularity = np.asarray(binary.sum(axis=0)).ravel()
        # recent popularity: buyer-days of each product in the window before the prediction
        tr = train[["customer_id", "stock_code", "invoice_ts"]]
        day0 = tr["invoice_ts"].min().normalize()
        tr_day = ((tr["invoice_ts"].dt.normalize() - day0).dt.days).to_numpy()
        cells = pd.DataFrame({"d": tr_day, "i": positions(self.items, tr["stock_code"]),
                              "c": positions(self.users, tr["customer_id"])}).drop_duplicates()
        n_days = int(tr_day.max()) + 2 if len(tr_day) else 1
        daily = sp.csr_matrix((np.ones(len(cells), np.float32), (cells["d"], cells["i"])), shape=(n_days, n_items))
        cum = np.vstack([np.zeros((1, n_items), np.float32), np.cumsum(daily.toarray(), axis=0)])  # cum[d] = days < d

        def window(end_day: np.ndarray) -> np.ndarray:
            end = np.clip(end_day, 0, n_days)
            start = np.clip(end_day - recent_days, 0, n_days)
            return cum[end] - cum[start]

        if per_customer:
            first = t.groupby("customer_id")["invoice_ts"].min().reindex(self.customers)
            self.recent = window(((first.dt.normalize() - day0).dt.days).to_numpy())
        else:
            self.recent = np.broadcast_to(window(np.array([n_days]))[0], (len(self.rows), n_items))
        # item-kNN: cosine between the products' buyer sets
        norms = np.sqrt(np.asarray(binary.sum(axis=0)).ravel()) + 1e-9
        sim = (binary.T @ binary).toarray().astype(np.float32)
        sim /= norms[:, None]
        sim /= norms[None, :]
        np.fill_diagonal(sim, 0.0)
        self.knn = np.asarray(binary[self.rows] @ sim, dtype=np.float32)
        del sim
        self.als = None
        self._scaled: dict[str, np.ndarray] = {}
        self.fit_seconds = 0.0

    def n_users(self, mode: str) -> int:
        return int(self.relevant[mode].any(axis=1).sum())

    def fit(self, params: ALSParams, random_state: int = 0) -> None:
        t0 = time.perf_counter()
        model, _ = fit_als(self.counts, params, random_state)
        self.fit_seconds = time.perf_counter() - t0
        self.als = np.asarray(model.user_factors)[self.rows] @ np.asarray(model.item_factors).T
        self._scaled.pop("als", None)

    def scaled(self, signal: str) -> np.ndarray:
        """``minmax`` of a blend's signal (als, recent, repeat), computed once per fit: tuning blends
        the same signals with every weight."""
        if signal not in self._scaled:
            raw = {"als": lambda: self.als, "recent": lambda: self.recent,
                   "repeat": lambda: self.invoices[self.rows].toarray()}[signal]()
            self._scaled[signal] = minmax(raw)
        return self._scaled[signal]

    def scores(self, method: str, mode: str, w: float | None = None):  # noqa: ANN201
        """The method's scores as a function of row positions (into ``rows``) -> those customers' scores
        (customers x products): ``top_k`` asks for a block of rows at a time, so no customers x products
        temporary is made per method and weight."""
        tie = (1e-6 * self.popularity / max(self.popularity.max(), 1.0)).astype(np.float32)[None, :]
        if method == POPULARITY:
            pop = self.popularity.astype(np.float32)
            return lambda r: np.broadcast_to(pop, (len(r), len(pop)))
        if method == RECENT:
            return lambda r: self.recent[r] + tie
        if method == ITEM_KNN:
            return lambda r: self.knn[r] + tie
        if method == REPEAT:
            scale = 1.0 + self.counts[self.rows].max()

            def repeat(r: np.ndarray) -> np.ndarray:
                units = self.counts[self.rows[r]].toarray()
                return self.invoices[self.rows[r]].toarray() + 1e-3 * units / scale + tie
            return repeat
        if method == "als":
            return lambda r: self.als[r]
        if method == "model":
            als, other = self.scaled("als"), self.scaled("recent" if mode == DISCOVERY else "repeat")

            def model(r: np.ndarray) -> np.ndarray:
                out = blend(als[r], other[r], w)
                out += tie
                return out
            return model
        raise ValueError(f"unknown method {method!r}")

    def precision(self, method: str, mode: str, w: float | None = None, full: bool = True) -> tuple[np.ndarray, dict]:
        """(per-customer precision@K over the customers with a relevant product, ranking metrics; with
        ``full=False`` only precision@K)."""
        from ecommerce_platform.ml.metrics import ranking_metrics

        keep = self.relevant[mode].any(axis=1)
        exclude = self.bought[keep] if mode == DISCOVERY else None
        scores = self.scores(method, mode, w)
        top = top_k(scores, K, exclude, rows=np.flatnonzero(keep))
        rel = self.relevant[mode][keep]
        hits = np.take_along_axis(rel, np.maximum(top, 0), axis=1) & (top >= 0)
        per_user = hits.sum(axis=1) / K
        if not full:
            return per_user, {f"precision_at_{K}": float(per_user.mean()) if len(per_user) else 0.0}
        recs = [[int(i) for i in r if i >= 0] for r in top]
        sets = [set(np.flatnonzero(r).tolist()) for r in rel]
        return per_user, ranking_metrics(recs, sets, K, len(self.items))


# ----------------------------------------------------------------------------- gate
def lift(model_p: float, base_p: float) -> float | None:
    return model_p / base_p if base_p > 0 else None


def gate_one(model_pu: np.ndarray, base_pu: np.ndarray, min_lift: float) -> tuple[str, float, float, float]:
    """(verdict, D, lo, hi) for D = precision@K - min_lift x the baseline's, paired over customers."""
    from ecommerce_platform.ml.metrics import bootstrap_mean_ci, decide

    d, lo, hi = bootstrap_mean_ci(np.asarray(model_pu) - min_lift * np.asarray(base_pu), CONFIDENCE, BOOTSTRAP_SAMPLES)
    if not np.mean(model_pu) > 0:
        return "fail", d, lo, hi
    return decide(lo, hi), d, lo, hi


def gate(results: dict) -> tuple[str, list[str]]:
    """Combine the verdicts of every (evaluation, mode): ``results[evaluation][mode]`` holds
    ``verdict``, ``strongest`` (baseline), the precisions and the interval. Fail if one fails, pass if
    all pass, undecided otherwise."""
    verdicts, reasons = [], []
    for ev, modes in results.items():
        for mode, r in modes.items():
            verdicts.append(r["verdict"])
            if r["verdict"] != "pass":
                what = "is below" if r["verdict"] == "fail" else "is not shown above (too few customers to decide)"
                reasons.append(
                    f"{ev} {mode}: precision@{K} {r['precision']:.4f} {what} {MIN_LIFT[mode]} x {r['strongest']} "
                    f"{r['baseline_precision']:.4f} (interval of the difference [{r['lo']:.4f}, {r['hi']:.4f}])")
    if "fail" in verdicts:
        return "fail", reasons
    if all(v == "pass" for v in verdicts):
        return "pass", reasons
    return "undecided", reasons


def evaluate(ev: Evaluation, weights: dict[str, float]) -> tuple[dict, dict]:
    """(results per mode, per-customer model precision per mode) of the fitted evaluation ``ev``."""
    out, per_user = {}, {}
    for mode in MODES:
        model_pu, model_m = ev.precision("model", mode, weights[mode])
        als_pu, als_m = ev.precision("als", mode)
        base = {b: ev.precision(b, mode) for b in BASELINES[mode]}
        strongest = max(BASELINES[mode], key=lambda b: (base[b][1][f"precision_at_{K}"], -BASELINES[mode].index(b)))
        verdict, d, lo, hi = gate_one(model_pu, base[strongest][0], MIN_LIFT[mode])
        out[mode] = {
            "verdict": verdict, "strongest": strongest, "precision": model_m[f"precision_at_{K}"],
            "baseline_precision": base[strongest][1][f"precision_at_{K}"], "min_lift": MIN_LIFT[mode],
            "lift": lift(model_m[f"precision_at_{K}"], base[strongest][1][f"precision_at_{K}"]),
            "difference": d, "lo": lo, "hi": hi, "users": int(len(model_pu)), "weight": weights[mode],
            "metrics": {"model": model_m, "als": als_m, **{b: base[b][1] for b in BASELINES[mode]}},
        }
        per_user[mode] = model_pu
    return out, per_user


def tune(ev: Evaluation) -> dict[str, dict]:
    """Validation precision@K of the blend for every weight of BLEND_WEIGHTS, per mode."""
    return {mode: {w: float(ev.precision("model", mode, w, full=False)[1][f"precision_at_{K}"]) for w in BLEND_WEIGHTS}
            for mode in MODES}


# ----------------------------------------------------------------------------- a run
@dataclass
class ALSRun:
    params: ALSParams
    weights: dict
    results: dict  # evaluation -> mode -> figures
    validation: list[dict]
    split_info: dict
    verdict: str
    gate_failures: list[str]
    train_seconds: float
    eval_seconds: float
    tuning_seconds: float
    per_user: dict = field(default_factory=dict, repr=False)  # evaluation -> (customers, mode -> precision)
    model: object = None
    users: np.ndarray = field(default=None, repr=False)
    items: np.ndarray = field(default=None, repr=False)
    counts: object = field(default=None, repr=False)
    invoices: object = field(default=None, repr=False)
    recent: np.ndarray = field(default=None, repr=False)
    run_id: str = field(default_factory=runs.new_run_id)

    @property
    def served(self) -> bool:
        return self.verdict == "pass"

    def precision(self, mode: str, method: str = "model", evaluation: str = TIME_CUT) -> float:
        return float(self.results[evaluation][mode]["metrics"][method][f"precision_at_{K}"])

    def summary(self) -> dict:
        slim = {ev: {mode: {k: v for k, v in r.items()} for mode, r in modes.items()}
                for ev, modes in self.results.items()}
        return {
            "run_id": self.run_id, "params": asdict(self.params), "weights": self.weights, "results": slim,
            "verdict": self.verdict, "gate_failures": self.gate_failures, "validation": self.validation,
            "split": self.split_info, "min_lift": MIN_LIFT, "confidence": CONFIDENCE,
            "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
            "tuning_seconds": self.tuning_seconds,
        }


def data_problems(interactions, evaluations: dict | None = None) -> dict[str, dict]:
    """What ``interactions`` lack for an honest evaluation (empty: enough): products, and customers with
    a held-out product (new to them, for discovery) in every split."""
    missing: dict[str, dict] = {}
    if interactions.empty:
        runs.need(missing, "interactions", 1, 0)
        return missing
    runs.need(missing, "products", MIN_ITEMS, int(interactions["stock_code"].nunique()))
    for name, ev in (evaluations or {}).items():
        found = 0 if ev is None else ev.n_users(DISCOVERY)
        runs.need(missing, f"{name} customers (a held-out product new to them)", MIN_EVAL_USERS, found)
    return missing


def _evaluation(train, test, per_customer: bool, s: ALSSettings) -> Evaluation | None:
    if train.empty or test.empty:
        return None
    return Evaluation(train, test, per_customer, s.recent_days)


def train_and_evaluate(interactions, settings: ALSSettings | None = None) -> ALSRun:
    """``interactions``: rows of user_item_interactions (with invoice_ts). Raises runs.InsufficientData
    when the data is too small to evaluate honestly."""
    s = settings or ALSSettings()
    if interactions.empty:
        raise runs.InsufficientData(data_problems(interactions))
    t0 = time.perf_counter()
    evs = {
        "validation (time cut one month earlier)": _evaluation(*time_cut(interactions, s.time_cut_days, s.time_cut_days), False, s),
        "time cut (last month)": _evaluation(*time_cut(interactions, s.time_cut_days), False, s),
        "last invoice": _evaluation(*holdout(interactions, 1, s.min_invoices), True, s),
    }
    missing = data_problems(interactions, evs)
    if missing:
        raise runs.InsufficientData(missing)
    val, tc, li = evs.values()
    # 1. tune on validation: the ALS configuration (grid) and each mode's blend weight
    validation, best = [], None
    for params in s.grid:
        val.fit(params, s.random_state)
        curves = tune(val)
        row = {**asdict(params), "fit_seconds": round(val.fit_seconds, 3)}
        for mode in MODES:
            w = max(BLEND_WEIGHTS, key=lambda x: (curves[mode][x], -x))
            row[f"{mode_key(mode)}_weight"] = w
            row[f"{mode_key(mode)}_precision_at_{K}"] = round(curves[mode][w], 5)
            row[f"{mode_key(mode)}_curve"] = {str(k): round(v, 5) for k, v in curves[mode].items()}
        validation.append(row)
        score = sum(row[f"{mode_key(m)}_precision_at_{K}"] for m in MODES)
        if best is None or score > best[0]:
            best = (score, params, {m: row[f"{mode_key(m)}_weight"] for m in MODES})
    _, params, weights = best
    tuning_seconds = time.perf_counter() - t0
    # 2. evaluate on both tests against every baseline
    t1 = time.perf_counter()
    results, per_user = {}, {}
    for name, ev in ((TIME_CUT, tc), (LAST_INVOICE, li)):
        ev.fit(params, s.random_state)
        results[name], pu = evaluate(ev, weights)
        per_user[name] = {mode: (ev.customers[ev.relevant[mode].any(axis=1)], pu[mode]) for mode in MODES}
    verdict, failures = gate(results)
    eval_seconds = time.perf_counter() - t1
    # 3. refit on everything for serving
    users = np.sort(interactions["customer_id"].unique())
    items = np.sort(interactions["stock_code"].unique())
    counts = user_item_matrix(interactions, users, items)
    invoices = user_item_matrix(interactions, users, items, "invoices")
    t2 = time.perf_counter()
    model, _ = fit_als(counts, params, s.random_state)
    train_seconds = time.perf_counter() - t2
    recent = recent_buyers(interactions, items, s.recent_days)
    info = {"min_invoices": s.min_invoices, "time_cut_days": s.time_cut_days, "recent_days": s.recent_days,
            "users": int(len(users)), "items": int(len(items)),
            **{f"{name}_users": {m: int(ev.n_users(m)) for m in MODES} for name, ev in evs.items()}}
    return ALSRun(params, weights, results, validation, info, verdict, failures, round(train_seconds, 3),
                  round(eval_seconds, 3), round(tuning_seconds, 3), per_user, model, users, items, counts,
                  invoices, recent)


def recent_buyers(interactions, items: np.ndarray, days: int) -> np.ndarray:
    """Buyer-days of each product in the last ``days`` days of the data (the served recent popularity)."""
    import pandas as pd

    end = interactions["invoice_ts"].max()
    w = interactions[interactions["invoice_ts"] > end - pd.Timedelta(days=days)]
    cells = w.assign(day=w["invoice_ts"].dt.normalize())[["customer_id", "stock_code", "day"]].drop_duplicates()
    return cells.groupby("stock_code").size().reindex(items, fill_value=0).to_numpy(np.float32)


# ----------------------------------------------------------------------------- lake I/O + serving
def _parquet(df) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    return buf.getvalue()


def product_catalog(warehouse):  # noqa: ANN001, ANN201 - Warehouse -> DataFrame
    from ecommerce_platform.resources.sql_dialect import read_sql

    return warehouse.query_df(read_sql("ecommerce_platform.ml", "product_catalog.sql"))


def evaluation_frame(run: ALSRun):
    """Each test customer's precision@K of the model, per evaluation and mode (the check's recount)."""
    import pandas as pd

    frames = [pd.DataFrame({"evaluation": ev, "mode": mode, "customer_id": ids.astype(str), "precision": pu})
              for ev, modes in run.per_user.items() for mode, (ids, pu) in modes.items()]
    return pd.concat(frames, ignore_index=True)


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
    items["recent_buyers"] = run.recent
    lake.put_bytes(f"{staging}/users.parquet", _parquet(users))
    lake.put_bytes(f"{staging}/items.parquet", _parquet(items.reset_index(drop=True)))
    coo = purchased.tocoo()
    inv = run.invoices.tocsr()
    lake.put_bytes(f"{staging}/purchased.parquet", _parquet(pd.DataFrame(
        {"row": coo.row.astype(np.int64), "col": coo.col.astype(np.int64), "units": coo.data.astype(np.float64),
         "invoices": np.asarray(inv[coo.row, coo.col]).ravel().astype(np.int64)})))
    lake.put_bytes(f"{staging}/evaluation.parquet", _parquet(evaluation_frame(run)))
    lake.put_text(f"{staging}/model.json", json.dumps(runs.json_safe(
        {**run.summary(), "format": "implicit-als-factors/2", "trained_at": runs.now_iso()}), indent=2))
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
        record = runs.record_insufficient(lake, MODEL_PREFIX, exc, served_run_id(lake),
                                          settings=_settings_dict(settings))
        return record, None
    catalog = catalog_fn()
    save_model(lake, run, catalog, CANDIDATE_PREFIX)
    status = runs.status_for(run.verdict)
    if status == runs.SERVED:
        save_model(lake, run, catalog, CURRENT_PREFIX)
    record = {**run.summary(), "status": status, "finished_at": runs.now_iso(),
              "served_run_id": served_run_id(lake), "settings": _settings_dict(settings)}
    runs.write_record(lake, MODEL_PREFIX, record)
    return record, run


def _settings_dict(s: ALSSettings) -> dict:
    return {"min_invoices": s.min_invoices, "time_cut_days": s.time_cut_days, "recent_days": s.recent_days}


def outputs_exist(lake) -> bool:  # noqa: ANN001
    """The run record and, when it says a model is served, the served files."""
    return runs.outputs_exist(lake, MODEL_PREFIX, served_run_id)


def recount(lake, interactions, record: dict) -> dict:  # noqa: ANN001
    """The gate evaluated again from what was published: every baseline's per-customer precision counted
    again from ``interactions`` (user_item_interactions) on both test splits, the model's read from the
    run's published ``evaluation.parquet``; then the same gate."""
    import pandas as pd

    key = f"{CANDIDATE_PREFIX}/evaluation.parquet"
    if not lake.exists(key):
        return {"problem": f"no evaluation published at {lake.uri(key)}"}
    model = pd.read_parquet(io.BytesIO(lake.get_bytes(key)))
    st = record["settings"]
    splits = {TIME_CUT: (time_cut(interactions, int(st["time_cut_days"])), False),
              LAST_INVOICE: (holdout(interactions, 1, int(st["min_invoices"])), True)}
    results: dict = {}
    for name, ((train, test), per_customer) in splits.items():
        ev = Evaluation(train, test, per_customer, int(st["recent_days"]))
        results[name] = {}
        for mode in MODES:
            keep = ev.relevant[mode].any(axis=1)
            ids = ev.customers[keep].astype(str)
            m = model[(model["evaluation"] == name) & (model["mode"] == mode)].set_index("customer_id")["precision"]
            if len(m) != len(ids) or set(m.index) != set(ids):
                return {"problem": f"{name} {mode}: the published evaluation covers {len(m):,} customers, the "
                                   f"recount {len(ids):,}"}
            model_pu = m.reindex(ids).to_numpy(float)
            base = {b: ev.precision(b, mode, full=False) for b in BASELINES[mode]}
            strongest = max(BASELINES[mode], key=lambda b: (base[b][1][f"precision_at_{K}"], -BASELINES[mode].index(b)))
            verdict, d, lo, hi = gate_one(model_pu, base[strongest][0], MIN_LIFT[mode])
            results[name][mode] = {"verdict": verdict, "strongest": strongest, "precision": float(model_pu.mean()),
                                   "baseline_precision": base[strongest][1][f"precision_at_{K}"],
                                   "baselines": {b: base[b][1][f"precision_at_{K}"] for b in BASELINES[mode]},
                                   "difference": d, "lo": lo, "hi": hi}
    verdict, reasons = gate(results)
    return {"verdict": verdict, "reasons": reasons, "results": results}


class UnknownItemError(KeyError):
    pass


@dataclass
class Recommender:
    """The served model, loaded from npz/Parquet/JSON only."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    users: object  # DataFrame customer_id,row
    items: object  # DataFrame stock_code,col,description,buyers,recent_buyers
    purchased: object  # CSR users x items (units)
    invoices: object  # CSR users x items (invoices holding the product)
    meta: dict

    @classmethod
    def load(cls, lake, prefix: str = CURRENT_PREFIX) -> "Recommender":  # noqa: ANN001
        import pandas as pd
        import scipy.sparse as sp

        if not lake.exists(f"{prefix}/model.json"):
            raise FileNotFoundError(f"no recommender at {lake.uri(prefix)}: materialize `als_model` first "
                                    "(a model is served only when it beats its strongest baselines)")
        with np.load(io.BytesIO(lake.get_bytes(f"{prefix}/factors.npz")), allow_pickle=False) as z:
            uf, itf = z["user_factors"], z["item_factors"]
        users = pd.read_parquet(io.BytesIO(lake.get_bytes(f"{prefix}/users.parquet")))
        items = pd.read_parquet(io.BytesIO(lake.get_bytes(f"{prefix}/items.parquet")))
        p = pd.read_parquet(io.BytesIO(lake.get_bytes(f"{prefix}/purchased.parquet")))
        shape = (len(users), len(items))
        purchased = sp.csr_matrix((p["units"].to_numpy(), (p["row"].to_numpy(), p["col"].to_numpy())), shape=shape)
        invoices = sp.csr_matrix((p["invoices"].to_numpy(np.float64), (p["row"].to_numpy(), p["col"].to_numpy())),
                                 shape=shape)
        return cls(uf, itf, users, items, purchased, invoices, json.loads(lake.get_text(f"{prefix}/model.json")))

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id", ""))

    def _rows(self, idx: list[int], scores: list[float] | None, reason: str, extra: dict | None = None) -> list[dict]:
        out = []
        for rank, i in enumerate(idx):
            item = self.items.iloc[int(i)]
            desc = item.get("description")
            row = {"rank": rank + 1, "stock_code": str(item["stock_code"]),
                   "description": None if desc is None or desc != desc else str(desc),
                   "score": None if scores is None else round(float(scores[rank]), 5), "source": reason}
            if extra:
                row.update({k: v[rank] for k, v in extra.items()})
            out.append(row)
        return out

    def popular(self, n: int, exclude: set | None = None) -> list[int]:
        """Products by recent buyers (the last RECENT_DAYS days), then by all-time buyers."""
        recent = self.items["recent_buyers"].to_numpy() if "recent_buyers" in self.items else np.zeros(len(self.items))
        order = np.lexsort((np.arange(len(self.items)), -self.items["buyers"].to_numpy(), -recent))
        exclude = exclude or set()
        return [int(i) for i in order if int(i) not in exclude][:n]

    def recommend(self, customer_id, n: int = 10, mode: str = DISCOVERY) -> dict:
        """Top ``n`` products for ``customer_id`` in ``mode`` (discovery: new to them; next-basket:
        re-orders allowed). An unknown customer gets the recently popular products (cold start)."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: {' or '.join(MODES)}")
        cid = str(customer_id).strip()
        match = self.users.index[self.users["customer_id"] == cid]
        if len(match) == 0:
            return {"customer_id": cid, "known_customer": False, "mode": mode, "model_run_id": self.run_id,
                    "message": f"customer {cid!r} is not in the model: showing the most popular products of "
                               f"the last {RECENT_DAYS} days (cold start)",
                    "items": self._rows(self.popular(n), None, "popularity")}
        row = int(self.users.loc[match[0], "row"])
        als = (self.item_factors @ self.user_factors[row])[None, :]
        w = float(self.meta["weights"][mode])
        bought_cols = self.purchased[row].indices
        if mode == DISCOVERY:
            scores = discovery_scores(als, self.items["recent_buyers"].to_numpy(np.float32)[None, :], w)
            exclude = np.zeros_like(scores, dtype=bool)
            exclude[0, bought_cols] = True
        else:
            scores = next_basket_scores(als, self.invoices[row].toarray(), w)
            exclude = None
        top = [int(i) for i in top_k(scores, n, exclude)[0] if i >= 0]
        bought = set(bought_cols.tolist())
        return {"customer_id": cid, "known_customer": True, "mode": mode, "purchased_products": len(bought),
                "model_run_id": self.run_id,
                "items": self._rows(top, [scores[0, i] for i in top], f"{mode} blend",
                                    {"reorder": [i in bought for i in top]})}

    def similar(self, stock_code, n: int = 10, min_shared_buyers: int = MIN_SHARED_BUYERS) -> dict:
        """Products most similar to ``stock_code`` (cosine of ALS item factors) among those sharing at
        least ``min_shared_buyers`` buyers with it: a product bought by a handful of customers says
        nothing reliable about taste."""
        code = str(stock_code).strip().upper()
        match = self.items.index[self.items["stock_code"] == code]
        if len(match) == 0:
            raise UnknownItemError(f"unknown stock code {code!r}: it was never sold to a known customer")
        col = int(self.items.loc[match[0], "col"])
        binary = (self.purchased > 0).astype(np.float32).tocsc()
        shared = np.asarray((binary.T @ binary[:, col]).todense()).ravel()
        f = self.item_factors
        norms = np.linalg.norm(f, axis=1)
        sims = (f @ f[col]) / np.maximum(norms * norms[col], 1e-12)
        sims[col] = -np.inf
        sims[shared < min_shared_buyers] = -np.inf
        top = [int(i) for i in np.argsort(-sims, kind="stable")[:n] if np.isfinite(sims[i])]
        item = self.items.iloc[col]
        return {"stock_code": code, "description": item.get("description"), "min_shared_buyers": min_shared_buyers,
                "buyers": int(shared[col]),
                "items": self._rows(top, [sims[i] for i in top], "als-cosine",
                                    {"shared_buyers": [int(shared[i]) for i in top]})}
