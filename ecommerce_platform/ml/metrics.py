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
