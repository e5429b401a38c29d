"""High-value invoice classifier: will this invoice total >= N GBP, from what is known before its total?

Features come from ``invoice_features`` (strictly-prior customer history, country, time of day and
week, basket size in lines; never the invoice's quantities, prices or total), plus two derived from
them: the customer's prior average value per line (prior_avg_order / prior_avg_lines) and the basket's
expected total at that value (basket_lines x it). Split by time: train on the earliest months, choose
the decision threshold on the next months (validation), report on the last months (test).

Baselines, trained and evaluated in the same run on the same split: logistic regressions (standardised
log1p features) on one feature (the prior average order), on four (basket lines, prior average order,
prior largest order, prior average lines) and on every feature the model sees (with missing-history
indicators and one-hot country, hour and weekday). The strongest on the test months is the one to beat.

Which model is the candidate: the simplest one that is not significantly beaten. The gradient-boosted
trees are the candidate only when they beat the all-features logistic regression (the gate below);
otherwise that logistic regression is the candidate (as accurate on this data, simpler), held to the
simple baselines (1 and 4 features).

Promotion gate (``gate``): D = test ROC-AUC - (the strongest baseline's + ``MIN_AUC_MARGIN``) with
DeLong's interval for correlated ROC curves (contract.CONFIDENCE): served when the interval is above 0,
rejected when below 0 (or when the ROC-AUC reaches ``LEAK_AUC``: a leak), inconclusive (not served, the
check warns) when it straddles 0. A run that is not served is kept as a candidate; the served model
stays. Too little data for an honest split (``data_problems``): nothing is trained, the run is recorded
as ``insufficient_data``.

The trees are scikit-learn's HistGradientBoostingClassifier, exported to plain arrays (``npz``: the
nodes of every tree) + JSON, and evaluated by a small numpy tree walker; the logistic regression is
exported as its scaler and coefficients (``npz``). Nothing is pickled, and the exported models'
probabilities equal scikit-learn's (tests check it).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from ecommerce_platform.ml import runs
from ecommerce_platform.ml.contract import CONFIDENCE, LEAK_AUC, MIN_AUC_MARGIN, MIN_CLASS_ROWS  # noqa: F401
from ecommerce_platform.ml.features import HISTORY_COLUMNS, INVOICE_FEATURE_COLUMNS, customer_history_sql

MODEL_PREFIX = "models/classifier"
CANDIDATE_PREFIX = f"{MODEL_PREFIX}/candidate"
CURRENT_PREFIX = f"{MODEL_PREFIX}/current"
OTHER_COUNTRY = "__other__"
BASELINE_FEATURE = "prior_avg_order"
BASELINE_FEATURES: dict[str, tuple[str, ...]] = {
    "logreg_1_feature": (BASELINE_FEATURE,),
    "logreg_4_features": ("basket_lines", "prior_avg_order", "prior_max_order", "prior_avg_lines"),
    "logreg_all_features": (),  # every feature of the model (design_matrix), see baseline_matrix
}
BASELINES = tuple(BASELINE_FEATURES)
FULL_LOGREG = "logreg_all_features"  # the candidate when the trees do not beat it
SIMPLE_BASELINES = tuple(b for b in BASELINES if b != FULL_LOGREG)
GBM = "gradient_boosting"
DERIVED_FEATURES = ("prior_avg_line_value", "expected_basket_total")


@dataclass
class ClassifierSettings:
    label_threshold_gbp: float = 1000.0
    test_months: int = 3
    validation_months: int = 2
    top_countries: int = 10
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 40
    l2_regularization: float = 1.0
    random_state: int = 0


class PredictInputError(ValueError):
    """A prediction request is malformed; the message names the request and the field."""


# ----------------------------------------------------------------------------- exported model
@dataclass
class ExportedGBM:
    """A binary gradient-boosted tree ensemble as arrays: tree t owns nodes offsets[t]:offsets[t+1]."""

    baseline: float
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    missing_left: np.ndarray
    is_leaf: np.ndarray
    value: np.ndarray
    offsets: np.ndarray

    @classmethod
    def from_sklearn(cls, clf) -> "ExportedGBM":  # noqa: ANN001
        trees = [predictors[0].nodes for predictors in clf._predictors]
        if any(t["is_categorical"].any() for t in trees):
            raise ValueError("categorical splits are not exportable: one-hot encode instead")
        nodes = np.concatenate(trees)
        offsets = np.cumsum([0] + [len(t) for t in trees]).astype(np.int64)
        return cls(
            baseline=float(np.ravel(clf._baseline_prediction)[0]),
            feature=nodes["feature_idx"].astype(np.int64),
            threshold=nodes["num_threshold"].astype(np.float64),
            left=nodes["left"].astype(np.int64),
            right=nodes["right"].astype(np.int64),
            missing_left=nodes["missing_go_to_left"].astype(bool),
            is_leaf=nodes["is_leaf"].astype(bool),
            value=nodes["value"].astype(np.float64),
            offsets=offsets,
        )

    def raw(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        out = np.full(len(X), self.baseline)
        rows = np.arange(len(X))
        for t in range(len(self.offsets) - 1):
            base = self.offsets[t]
            node = np.zeros(len(X), dtype=np.int64)
            while True:
                g = base + node
                active = ~self.is_leaf[g]
                if not active.any():
                    break
                ga = g[active]
                x = X[rows[active], self.feature[ga]]
                go_left = np.where(np.isnan(x), self.missing_left[ga], x <= self.threshold[ga])
                node[active] = np.where(go_left, self.left[ga], self.right[ga])
            out += self.value[base + node]
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.raw(X)))

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        arrays = {k: v for k, v in asdict(self).items() if k != "baseline"}
        np.savez_compressed(buf, baseline=np.array([self.baseline]), **arrays)
        return buf.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> "ExportedGBM":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            kw = {k: z[k] for k in z.files}
        kw["baseline"] = float(kw["baseline"][0])
        return cls(**kw)


@dataclass
class ExportedLogReg:
    """A standardised logistic regression as arrays: p = sigmoid(((x - mean) / scale) . coef + intercept)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def from_sklearn(cls, pipe) -> "ExportedLogReg":  # noqa: ANN001 - make_pipeline(StandardScaler, LogisticRegression)
        scaler, lr = pipe.steps[0][1], pipe.steps[-1][1]
        return cls(np.asarray(scaler.mean_, np.float64), np.asarray(scaler.scale_, np.float64),
                   np.asarray(lr.coef_[0], np.float64), float(lr.intercept_[0]))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = ((np.asarray(X, dtype=np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_npz(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, mean=self.mean, scale=self.scale, coef=self.coef, intercept=np.array([self.intercept]))
        return buf.getvalue()

    @classmethod
    def from_npz(cls, data: bytes) -> "ExportedLogReg":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls(z["mean"], z["scale"], z["coef"], float(z["intercept"][0]))


# ----------------------------------------------------------------------------- design matrix
def derived_features(df) -> np.ndarray:
    """prior_avg_line_value (GBP per line of the customer's prior invoices) and expected_basket_total
    (basket_lines x that value): known before the total, NaN without history."""
    import pandas as pd

    avg_order = pd.to_numeric(df["prior_avg_order"], errors="coerce").to_numpy(np.float64)
    avg_lines = pd.to_numeric(df["prior_avg_lines"], errors="coerce").to_numpy(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_line = np.where(avg_lines > 0, avg_order / avg_lines, np.nan)
    return np.column_stack([per_line, pd.to_numeric(df["basket_lines"], errors="coerce").to_numpy(np.float64) * per_line])


def design_matrix(df, countries: list[str]) -> tuple[np.ndarray, list[str]]:
    """Numeric features, the derived ones + one-hot country (countries outside the list -> OTHER_COUNTRY)."""
    import pandas as pd

    X = df[list(INVOICE_FEATURE_COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    country = df["country"].fillna("").astype(str).to_numpy()
    known = np.isin(country, countries)
    onehot = [(country == c).astype(np.float64) for c in countries]
    onehot.append((~known).astype(np.float64))
    names = (list(INVOICE_FEATURE_COLUMNS) + list(DERIVED_FEATURES) + [f"country={c}" for c in countries]
             + [f"country={OTHER_COUNTRY}"])
    return np.column_stack([X, derived_features(df), *onehot]), names


def _log1p_signed(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.log1p(np.abs(x))


def baseline_matrix(df, name: str, countries: list[str]) -> np.ndarray:
    """The inputs of baseline ``name``: log1p of its features (missing -> 0); for the all-features
    baseline, every numeric feature of the model log1p-scaled, missing-history indicators, and one-hot
    country, hour and weekday."""
    import pandas as pd

    cols = BASELINE_FEATURES[name]
    if cols:
        return np.column_stack([np.log1p(pd.to_numeric(df[c], errors="coerce").fillna(0).clip(lower=0)
                                         .to_numpy(np.float64)) for c in cols])
    X, names = design_matrix(df, countries)
    numeric = [i for i, n in enumerate(names) if not n.startswith("country=") and n not in ("hour_of_day", "day_of_week")]
    values = X[:, numeric]
    hour = pd.to_numeric(df["hour_of_day"], errors="coerce").fillna(-1).to_numpy()
    dow = pd.to_numeric(df["day_of_week"], errors="coerce").fillna(-1).to_numpy()
    parts = [_log1p_signed(np.nan_to_num(values, nan=0.0)), np.isnan(values).astype(np.float64),  # fixed columns
             X[:, [i for i, n in enumerate(names) if n.startswith("country=")]],
             np.column_stack([(hour == h).astype(np.float64) for h in range(6, 21)]),
             np.column_stack([(dow == d).astype(np.float64) for d in range(1, 8)])]
    return np.column_stack(parts)


def baseline_feature(df) -> np.ndarray:
    return baseline_matrix(df, "logreg_1_feature", [])


def labels(df, label_threshold_gbp: float) -> np.ndarray:
    return (df["invoice_total"].to_numpy(np.float64) >= label_threshold_gbp).astype(int)


def split_months(months, test_months: int, validation_months: int) -> dict:
    """The invoice months of each slice: the last ``test_months`` are the test, the
    ``validation_months`` before them the validation slice, everything earlier the training set."""
    distinct = sorted({int(m) for m in np.asarray(months).tolist()})
    needed = test_months + validation_months + 1
    if len(distinct) < needed:
        raise runs.InsufficientData({"invoice months (train + validation + test)": {"needed": needed,
                                                                                     "found": len(distinct)}})
    return {"train": distinct[: -(test_months + validation_months)],
            "validation": distinct[-(test_months + validation_months):-test_months],
            "test": distinct[-test_months:]}


def split_masks(months, split: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    months = np.asarray(months).astype(int)
    return (np.isin(months, split["train"]), np.isin(months, split["validation"]), np.isin(months, split["test"]))


def time_split(months, test_months: int, validation_months: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """Masks (train, validation, test) by invoice month, and the months of each slice."""
    split = split_months(months, test_months, validation_months)
    train, val, test = split_masks(months, split)
    info = {f"{name}_months": f"{m[0]}-{m[-1]}" for name, m in split.items()}
    return train, val, test, {**info, "months": split}


def data_problems(df, s: ClassifierSettings) -> dict[str, dict]:
    """What the input lacks for an honest run (empty when it is enough): invoice months for the time
    split, and at least MIN_CLASS_ROWS invoices of each class in every slice."""
    missing: dict[str, dict] = {}
    if df.empty:
        runs.need(missing, "invoices", 1, 0)
        return missing
    try:
        split = split_months(df["invoice_month"].to_numpy(), s.test_months, s.validation_months)
    except runs.InsufficientData as exc:
        return exc.missing
    y = labels(df, s.label_threshold_gbp)
    for name, mask in zip(("train", "validation", "test"), split_masks(df["invoice_month"].to_numpy(), split)):
        positives = int(y[mask].sum())
        runs.need(missing, f"{name} invoices >= {s.label_threshold_gbp:g} GBP", MIN_CLASS_ROWS, positives)
        runs.need(missing, f"{name} invoices < {s.label_threshold_gbp:g} GBP", MIN_CLASS_ROWS, int(mask.sum()) - positives)
    return missing


# ----------------------------------------------------------------------------- model + training
@dataclass
class ClassifierModel:
    gbm: "ExportedGBM | ExportedLogReg"  # the exported estimator (trees, or the logistic regression)
    feature_names: list[str]
    countries: list[str]
    decision_threshold: float
    label_threshold_gbp: float
    run_id: str = ""
    trained_at: str = ""
    kind: str = GBM  # GBM or FULL_LOGREG

    def predict_proba(self, df) -> np.ndarray:
        X, names = design_matrix(df, self.countries)
        if names != self.feature_names:
            raise ValueError("feature names differ from the model's: retrain the classifier")
        if self.kind == FULL_LOGREG:
            X = baseline_matrix(df, FULL_LOGREG, self.countries)
        return self.gbm.predict_proba(X)

    def meta(self) -> dict:
        return {
            "format": "exported-hist-gbm/1" if self.kind == GBM else "logistic-regression/1", "kind": self.kind,
            "feature_names": self.feature_names,
            "countries": self.countries, "decision_threshold": self.decision_threshold,
            "label_threshold_gbp": self.label_threshold_gbp, "run_id": self.run_id,
            "trained_at": self.trained_at,
        }


def gate(y_test, model_scores, baseline_scores: dict[str, np.ndarray]) -> tuple[str, list[str], dict]:
    """(verdict, reasons, figures): the model's test ROC-AUC against the strongest baseline's (measured in
    the same run, on the same split): D = AUC - (AUC_baseline + MIN_AUC_MARGIN) with DeLong's interval;
    pass above 0, fail below 0 or at a leak-sized ROC-AUC (>= LEAK_AUC), undecided in between."""
    from sklearn.metrics import roc_auc_score

    from ecommerce_platform.ml.metrics import FAIL, PASS, decide, delong_auc_difference

    y = np.asarray(y_test).astype(int)
    if len(np.unique(y)) < 2 or not baseline_scores:
        return FAIL, ["test ROC-AUC undefined (a slice with a single class)"], {}
    aucs = {name: float(roc_auc_score(y, s)) for name, s in baseline_scores.items()}
    strongest = max(aucs, key=lambda n: (aucs[n], -list(aucs).index(n)))
    auc = float(roc_auc_score(y, model_scores))
    d, lo, hi = delong_auc_difference(y, model_scores, baseline_scores[strongest], CONFIDENCE)
    d, lo, hi = d - MIN_AUC_MARGIN, lo - MIN_AUC_MARGIN, hi - MIN_AUC_MARGIN
    verdict = decide(lo, hi)
    reasons = []
    if verdict != PASS:
        reasons.append(f"test ROC-AUC {auc:.4f} vs {strongest} {aucs[strongest]:.4f} + margin {MIN_AUC_MARGIN}: the "
                       f"{CONFIDENCE:.0%} interval of the difference [{lo:.4f}, {hi:.4f}] is "
                       + ("below 0" if verdict == FAIL else "not above 0 (too few test invoices to decide)"))
    if auc >= LEAK_AUC:
        reasons.append(f"test ROC-AUC {auc:.4f} >= {LEAK_AUC}: a leak, not a model")
        verdict = FAIL
    return verdict, reasons, {"roc_auc": auc, "baseline_roc_auc": aucs, "strongest_baseline": strongest,
                              "auc_difference": d, "auc_difference_lo": lo, "auc_difference_hi": hi}


@dataclass
class ClassifierRun:
    model: ClassifierModel
    metrics: dict
    baseline_metrics: dict  # baseline name -> its test metrics
    split: dict
    train_seconds: float
    eval_seconds: float
    verdict: str = "fail"
    gate_failures: list = field(default_factory=list)
    gate_figures: dict = field(default_factory=dict)
    gbm_metrics: dict = field(default_factory=dict)  # the trees' test metrics (whichever model is the candidate)
    selection: dict = field(default_factory=dict)  # the trees against the all-features logistic regression

    @property
    def strongest_baseline(self) -> str:
        return self.gate_figures.get("strongest_baseline") or max(
            self.baseline_metrics, key=lambda n: self.baseline_metrics[n]["roc_auc"])

    @property
    def beats_baseline(self) -> bool:
        return self.verdict == "pass"

    def summary(self) -> dict:
        return {
            "run_id": self.model.run_id, "metrics": self.metrics, "baseline_metrics": self.baseline_metrics,
            "split": self.split, "train_seconds": self.train_seconds, "eval_seconds": self.eval_seconds,
            "min_auc_margin": MIN_AUC_MARGIN, "leak_auc": LEAK_AUC, "confidence": CONFIDENCE,
            "verdict": self.verdict, "gate_failures": self.gate_failures, "gate": self.gate_figures,
            "strongest_baseline": self.strongest_baseline, "baselines": {k: list(v) for k, v in BASELINE_FEATURES.items()},
            "label_threshold_gbp": self.model.label_threshold_gbp, "model_kind": self.model.kind,
            "gbm_metrics": self.gbm_metrics, "selection": self.selection,
        }


def fit_baselines(df, y, train, countries: list[str]) -> dict:
    """Every baseline fitted on the training rows: name -> (fitted pipeline, its input matrix)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = {}
    for name in BASELINES:
        X = baseline_matrix(df, name, countries)
        out[name] = (make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X[train], y[train]), X)
    return out


def train_and_evaluate(df, settings: ClassifierSettings | None = None) -> ClassifierRun:
    """Train and evaluate on ``df`` (invoice_features); raises runs.InsufficientData when it is too small."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from ecommerce_platform.ml._threads import single_threaded
    from ecommerce_platform.ml.metrics import best_f1_threshold, binary_metrics

    s = settings or ClassifierSettings()
    missing = data_problems(df, s)
    if missing:
        raise runs.InsufficientData(missing)
    order = [c for c in ("invoice_ts", "invoice_no") if c in df.columns]
    df = df.sort_values(order, kind="stable").reset_index(drop=True) if order else df  # reproducible
    y = labels(df, s.label_threshold_gbp)
    train, val, test, split = time_split(df["invoice_month"].to_numpy(), s.test_months, s.validation_months)
    split.update({"train_rows": int(train.sum()), "validation_rows": int(val.sum()), "test_rows": int(test.sum())})
    countries = df.loc[train, "country"].value_counts().index[: s.top_countries].tolist()
    X, names = design_matrix(df, countries)

    t0 = time.perf_counter()
    with single_threaded():
        clf = HistGradientBoostingClassifier(
            max_iter=s.max_iter, learning_rate=s.learning_rate, max_leaf_nodes=s.max_leaf_nodes,
            min_samples_leaf=s.min_samples_leaf, l2_regularization=s.l2_regularization,
            early_stopping=False, random_state=s.random_state,
        ).fit(X[train], y[train])
    train_seconds = time.perf_counter() - t0

    t1 = time.perf_counter()
    with single_threaded():
        baselines = fit_baselines(df, y, train, countries)
    gbm = ExportedGBM.from_sklearn(clf)
    p_val, p_test = gbm.predict_proba(X[val]), gbm.predict_proba(X[test])
    gbm_metrics = binary_metrics(y[test], p_test, best_f1_threshold(y[val], p_val))
    gbm_metrics["validation_roc_auc"] = binary_metrics(y[val], p_val, 0.5)["roc_auc"]
    baseline_metrics, baseline_val, baseline_test = {}, {}, {}
    for name, (pipe, Xb) in baselines.items():
        baseline_val[name], baseline_test[name] = pipe.predict_proba(Xb[val])[:, 1], pipe.predict_proba(Xb[test])[:, 1]
        baseline_metrics[name] = binary_metrics(y[test], baseline_test[name], best_f1_threshold(y[val], baseline_val[name]))
    # the candidate: the trees if they beat the all-features logistic regression, else that regression
    selection_verdict, selection_reasons, selection = gate(y[test], p_test, {FULL_LOGREG: baseline_test[FULL_LOGREG]})
    selection = {**selection, "verdict": selection_verdict, "reasons": selection_reasons}
    if selection_verdict == "pass":
        kind, estimator, cand_val, cand_test = GBM, gbm, p_val, p_test
        verdict, failures, figures = gate(y[test], p_test, baseline_test)
    else:
        kind, estimator = FULL_LOGREG, ExportedLogReg.from_sklearn(baselines[FULL_LOGREG][0])
        cand_val, cand_test = baseline_val[FULL_LOGREG], baseline_test[FULL_LOGREG]
        verdict, failures, figures = gate(y[test], cand_test, {b: baseline_test[b] for b in SIMPLE_BASELINES})
    threshold = best_f1_threshold(y[val], cand_val)
    metrics = binary_metrics(y[test], cand_test, threshold)
    metrics["validation_roc_auc"] = binary_metrics(y[val], cand_val, threshold)["roc_auc"]
    eval_seconds = time.perf_counter() - t1
    model = ClassifierModel(
        gbm=estimator, feature_names=names, countries=countries, decision_threshold=threshold,
        label_threshold_gbp=float(s.label_threshold_gbp), run_id=runs.new_run_id(), trained_at=runs.now_iso(),
        kind=kind,
    )
    return ClassifierRun(model, metrics, baseline_metrics, split, round(train_seconds, 3), round(eval_seconds, 3),
                         verdict, failures, figures, gbm_metrics, selection)


# ----------------------------------------------------------------------------- lake I/O
def save_model(lake, model: ClassifierModel, prefix: str, summary: dict | None = None) -> str:  # noqa: ANN001
    """Write the model under ``prefix``, replacing what was there in one publish."""
    staging = lake.staging_prefix(prefix)
    lake.put_bytes(f"{staging}/model.npz", model.gbm.to_npz())
    if summary is not None:
        lake.put_text(f"{staging}/metrics.json", json.dumps(runs.json_safe(summary), indent=2, sort_keys=True))
    lake.put_text(f"{staging}/model.json", json.dumps(model.meta(), indent=2))
    lake.publish_prefix(staging, prefix)
    return lake.uri(prefix)


def load_model(lake, prefix: str = CURRENT_PREFIX) -> ClassifierModel:  # noqa: ANN001
    if not lake.exists(f"{prefix}/model.json"):
        raise FileNotFoundError(
            f"no classifier at {lake.uri(prefix)}: materialize the `classifier` asset first "
            "(a model is served only when it beats its baselines)"
        )
    meta = json.loads(lake.get_text(f"{prefix}/model.json"))
    kind = meta.get("kind", GBM)
    data = lake.get_bytes(f"{prefix}/model.npz")
    estimator = ExportedGBM.from_npz(data) if kind == GBM else ExportedLogReg.from_npz(data)
    return ClassifierModel(
        gbm=estimator, feature_names=meta["feature_names"], countries=meta["countries"],
        decision_threshold=float(meta["decision_threshold"]),
        label_threshold_gbp=float(meta["label_threshold_gbp"]), run_id=meta.get("run_id", ""),
        trained_at=meta.get("trained_at", ""), kind=kind,
    )


def served_run_id(lake, prefix: str = CURRENT_PREFIX) -> str | None:  # noqa: ANN001
    key = f"{prefix}/model.json"
    return json.loads(lake.get_text(key)).get("run_id") if lake.exists(key) else None


def read_summary(lake, prefix: str) -> dict | None:  # noqa: ANN001
    key = f"{prefix}/metrics.json"
    return json.loads(lake.get_text(key)) if lake.exists(key) else None


def run_and_publish(lake, df, settings: ClassifierSettings) -> tuple[dict, ClassifierRun | None]:  # noqa: ANN001
    """Train, evaluate and publish one run: the candidate always, the served model only if the run
    passes its gate. Records the run (runs.write_record) and returns (record, run or None)."""
    served_before = served_run_id(lake)
    try:
        run = train_and_evaluate(df, settings)
    except runs.InsufficientData as exc:
        record = runs.record_insufficient(lake, MODEL_PREFIX, exc, served_before,
                                          label_threshold_gbp=settings.label_threshold_gbp)
        return record, None
    summary = run.summary()
    save_model(lake, run.model, CANDIDATE_PREFIX, summary)
    status = runs.status_for(run.verdict)
    if status == runs.SERVED:
        save_model(lake, run.model, CURRENT_PREFIX, summary)
    record = {**summary, "status": status, "finished_at": runs.now_iso(), "served_run_id": served_run_id(lake)}
    runs.write_record(lake, MODEL_PREFIX, record)
    return record, run


def outputs_exist(lake) -> bool:  # noqa: ANN001
    """The run record and, when it says a model is served, the served files."""
    return runs.outputs_exist(lake, MODEL_PREFIX, served_run_id)


def evaluate_served(lake, df, record: dict, prefix: str = CURRENT_PREFIX) -> dict:  # noqa: ANN001
    """The gate evaluated again from the published files: the served model (models/classifier/current)
    scored on the test months of ``record``'s split of ``df`` (invoice_features), the baselines refit on
    its training months (all of them for the trees; the simple ones for the logistic regression); the
    same gate on them."""
    from ecommerce_platform.ml._threads import single_threaded

    model = load_model(lake, prefix)
    order = [c for c in ("invoice_ts", "invoice_no") if c in df.columns]
    df = df.sort_values(order, kind="stable").reset_index(drop=True) if order else df
    train, _, test = split_masks(df["invoice_month"].to_numpy(), record["split"]["months"])
    y = labels(df, float(record["label_threshold_gbp"]))
    if len(np.unique(y[test])) < 2 or len(np.unique(y[train])) < 2:
        return {"verdict": "fail", "reasons": ["a slice with a single class"], "test_rows": int(test.sum())}
    with single_threaded():
        baselines = fit_baselines(df, y, train, model.countries)
    p = model.predict_proba(df.loc[test])
    against = BASELINES if model.kind == GBM else SIMPLE_BASELINES
    verdict, reasons, figures = gate(y[test], p, {n: pipe.predict_proba(X[test])[:, 1]
                                                 for n, (pipe, X) in baselines.items() if n in against})
    return {"verdict": verdict, "reasons": reasons, **figures, "test_rows": int(test.sum()),
            "served_run_id": model.run_id}


# ----------------------------------------------------------------------------- predict path
def _parse_ts(value, where: str) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise PredictInputError(f"{where}: 'invoice_ts' must be an ISO timestamp string, got {value!r}")
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise PredictInputError(f"{where}: 'invoice_ts' {value!r} is not an ISO timestamp") from None
    return ts.replace(tzinfo=None)


def parse_requests(payload) -> list[dict]:
    """Validate prediction requests (one object or a list). Each needs ``invoice_ts`` (ISO), ``country``,
    and the basket: ``lines`` (a list of lines, counted) or ``basket_lines`` (a count);
    ``customer_id`` is optional (absent/null: a new customer with no history)."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise PredictInputError("no request: give one JSON object or a non-empty list")
    out = []
    for i, item in enumerate(items):
        where = f"request {i}"
        if not isinstance(item, dict):
            raise PredictInputError(f"{where}: expected a JSON object, got {type(item).__name__}")
        ts = _parse_ts(item.get("invoice_ts", item.get("invoice_date")), where)
        country = item.get("country")
        if not isinstance(country, str) or not country.strip():
            raise PredictInputError(f"{where}: 'country' must be a non-empty string")
        if "lines" in item:
            if not isinstance(item["lines"], list):
                raise PredictInputError(f"{where}: 'lines' must be a list of basket lines")
            n_lines = len(item["lines"])
        elif "basket_lines" in item:
            n_lines = item["basket_lines"]
            if isinstance(n_lines, bool) or not isinstance(n_lines, int) or n_lines < 0:
                raise PredictInputError(f"{where}: 'basket_lines' must be a non-negative integer")
        else:
            raise PredictInputError(f"{where}: give the basket as 'lines' (a list) or 'basket_lines' (a count)")
        cid = item.get("customer_id")
        if isinstance(cid, float) and cid.is_integer():
            cid = int(cid)
        cid = None if cid is None or str(cid).strip() == "" else str(cid).strip()
        out.append({"customer_id": cid, "country": country.strip(), "invoice_ts": ts, "basket_lines": int(n_lines)})
    return out


def history_features(warehouse, requests: list[dict]):  # noqa: ANN001 - Warehouse
    """The strictly-prior history of each request's customer at its timestamp, from the clean table."""
    from ecommerce_platform.resources.sql_dialect import literal

    values = ", ".join(
        f"({i}, {literal(r['customer_id']) if r['customer_id'] else 'CAST(NULL AS VARCHAR)'}, "
        f"{literal(r['invoice_ts'].replace(microsecond=0))})"
        for i, r in enumerate(requests)
    )
    relation = f"(SELECT * FROM (VALUES {values}) AS v(request_id, customer_id, as_of_ts))"
    df = warehouse.query_df(customer_history_sql(relation))
    return df.sort_values("request_id").reset_index(drop=True)


def request_frame(warehouse, requests: list[dict]):  # noqa: ANN001
    import pandas as pd

    hist = history_features(warehouse, requests)
    base = pd.DataFrame({
        "hour_of_day": [r["invoice_ts"].hour for r in requests],
        "day_of_week": [r["invoice_ts"].isoweekday() for r in requests],
        "basket_lines": [r["basket_lines"] for r in requests],
        "country": [r["country"] for r in requests],
    })
    for col in HISTORY_COLUMNS:
        base[col] = pd.to_numeric(hist[col], errors="coerce").to_numpy()
    return base


def predict(warehouse, payload, model: ClassifierModel | None = None) -> list[dict]:  # noqa: ANN001
    """Predictions for the requests in ``payload`` with the served model (``warehouse.lake``)."""
    requests = parse_requests(payload)
    model = model or load_model(warehouse.lake)
    frame = request_frame(warehouse, requests)
    proba = model.predict_proba(frame)
    out = []
    for r, p, (_, row) in zip(requests, proba, frame.iterrows()):
        out.append({
            "customer_id": r["customer_id"],
            "invoice_ts": r["invoice_ts"].isoformat(),
            "probability": round(float(p), 6),
            "high_value": bool(p >= model.decision_threshold),
            "label_threshold_gbp": model.label_threshold_gbp,
            "decision_threshold": round(model.decision_threshold, 6),
            "known_customer": bool(row["prior_orders"] > 0),
            "model_run_id": model.run_id,
        })
    return out
