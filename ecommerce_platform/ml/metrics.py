"""Evaluation helpers shared by the models (plain numpy, no Dagster)."""

from __future__ import annotations

import numpy as np


def binary_metrics(y_true, scores, threshold: float) -> dict[str, float]:
    from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    pred = (scores >= threshold).astype(int)
    both = len(np.unique(y_true)) == 2
    return {
        "roc_auc": float(roc_auc_score(y_true, scores)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y_true, scores)) if both else float("nan"),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred, zero_division=0)),
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "threshold": float(threshold),
        "positive_rate": float(y_true.mean()) if len(y_true) else float("nan"),
        "rows": int(len(y_true)),
    }


def best_f1_threshold(y_true, scores) -> float:
    """The score threshold maximising F1 (used on a validation slice only)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(np.asarray(y_true).astype(int), scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    if len(thresholds) == 0:
        return 0.5
    return float(thresholds[int(np.argmax(f1[:-1]))])


def ranking_metrics(recommended: list, relevant: list[set], k: int, n_items: int) -> dict[str, float]:
    """precision@k, recall@k, MAP@k over users, and catalogue coverage (share of the n_items
    recommended to at least one user)."""
    precisions, recalls, aps = [], [], []
    shown: set = set()
    for recs, rel in zip(recommended, relevant):
        recs = list(recs)[:k]
        shown.update(recs)
        hits = [r in rel for r in recs]
        n_hit = sum(hits)
        precisions.append(n_hit / k)
        recalls.append(n_hit / len(rel) if rel else 0.0)
        score, found = 0.0, 0
        for i, hit in enumerate(hits):
            if hit:
                found += 1
                score += found / (i + 1)
        aps.append(score / min(len(rel), k) if rel else 0.0)
    n = len(precisions)
    return {
        f"precision_at_{k}": float(np.mean(precisions)) if n else 0.0,
        f"recall_at_{k}": float(np.mean(recalls)) if n else 0.0,
        f"map_at_{k}": float(np.mean(aps)) if n else 0.0,
        "coverage": len(shown) / n_items if n_items else 0.0,
        "users": n,
    }


# ----------------------------------------------------------------------------- gates that decide
PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"


def decide(lo: float, hi: float) -> str:
    """The verdict on a margin D (model minus what it must beat), from D's confidence interval:
    ``pass`` when the whole interval is above 0, ``fail`` when it is below 0, ``undecided`` when it
    straddles 0 (the test set is too small to tell; the caller keeps the previous model and warns)."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return UNDECIDED
    if lo > 0:
        return PASS
    if hi < 0:
        return FAIL
    return UNDECIDED


def bootstrap_mean_ci(values, level: float, samples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean of per-unit ``values`` and its two-sided percentile bootstrap interval
    (units resampled with replacement; fixed seed: the same data gives the same verdict)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    step = max(1, 2_000_000 // max(len(v), 1))  # bounded memory: resample in chunks
    for start in range(0, samples, step):
        stop = min(samples, start + step)
        means[start:stop] = v[rng.integers(0, len(v), (stop - start, len(v)))].mean(axis=1)
    a = (1 - level) / 2
    return float(v.mean()), float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def bootstrap_ratio_ci(num, den, level: float, samples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(sum(num)/sum(den), lo, hi) with blocks (one entry of ``num``/``den`` each) resampled with
    replacement: the interval of a ratio of sums (e.g. a WAPE difference, resampling backtest weeks)."""
    n_, d_ = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if len(n_) == 0 or d_.sum() == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(n_), (samples, len(n_)))
    ratios = n_[idx].sum(axis=1) / np.where(d_[idx].sum(axis=1) == 0, np.nan, d_[idx].sum(axis=1))
    a = (1 - level) / 2
    return float(n_.sum() / d_.sum()), float(np.nanquantile(ratios, a)), float(np.nanquantile(ratios, 1 - a))


def _midrank(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j < len(x) and xs[j] == xs[i]:
            j += 1
        ranks[i:j] = 0.5 * (i + j - 1) + 1
        i = j
    out = np.empty(len(x))
    out[order] = ranks
    return out


def delong_auc_difference(y_true, scores_a, scores_b, level: float) -> tuple[float, float, float]:
    """(AUC(a) - AUC(b), lo, hi): the difference of two correlated ROC-AUCs on the same examples and
    its normal interval with DeLong's variance (DeLong, DeLong & Clarke-Pearson 1988; fast midrank
    form of Sun & Xu 2014). Deterministic: the same data gives the same verdict."""
    from scipy.stats import norm

    y = np.asarray(y_true).astype(int)
    pos, neg = y == 1, y == 0
    m, n = int(pos.sum()), int(neg.sum())
    if m < 2 or n < 2:
        return float("nan"), float("nan"), float("nan")
    aucs, v01, v10 = [], [], []
    for s in (np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)):
        x, z = s[pos], s[neg]
        tx, tz, txz = _midrank(x), _midrank(z), _midrank(np.concatenate([x, z]))
        aucs.append((txz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v01.append((txz[:m] - tx) / n)
        v10.append(1.0 - (txz[m:] - tz) / m)
    s01, s10 = np.cov(np.vstack(v01)), np.cov(np.vstack(v10))
    var = (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / m + (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / n
    diff = float(aucs[0] - aucs[1])
    half = float(norm.ppf(0.5 + level / 2) * np.sqrt(max(var, 0.0)))
    return diff, diff - half, diff + half
