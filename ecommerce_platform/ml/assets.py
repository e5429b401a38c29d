"""ML layer: feature tables (SQL in the warehouse), `classifier`, `segments`, `als_model`, and the
blocking checks that keep a model that does not beat its baseline from being served."""


import dagster as dg

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

OWNERS = ["team:data-platform"]
TAGS = {"layer": "ml"}


def _schema(columns) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns])


MODEL_MANIFESTS = "models/_manifests"


def _model_fingerprint(lake: Lake, name: str, inputs: tuple[str, ...], config: dg.Config) -> str:
    """Inputs (feature tables' fingerprints), config and the model's code: unchanged -> reuse."""
    import hashlib
    import json
    from pathlib import Path

    from ecommerce_platform.ml.features import TABLES

    h = hashlib.sha256(json.dumps(config.model_dump(), sort_keys=True).encode())
    for table in inputs:
        key = TABLES[table].manifest_key
        h.update(json.loads(lake.get_text(key)).get("fingerprint", "").encode() if lake.exists(key) else b"?")
    here = Path(__file__).parent
    for module in ("assets.py", "features.py", "metrics.py", f"{MODEL_MODULES[name]}.py"):
        h.update((here / module).read_bytes())
    return h.hexdigest()


MODEL_MODULES = {"classifier": "classifier", "segments": "segments", "als_model": "recommender"}


def _reused(context: dg.AssetExecutionContext, lake: Lake, name: str, fp: str) -> dg.MaterializeResult | None:
    """The previous materialization's metadata, when the fingerprint is unchanged and the instance has it."""
    import json

    key = f"{MODEL_MANIFESTS}/{name}.json"
    if not lake.exists(key) or json.loads(lake.get_text(key)).get("fingerprint") != fp:
        return None
    event = context.instance.get_latest_materialization_event(dg.AssetKey(name))
    if event is None or event.asset_materialization is None:
        return None
    meta = dict(event.asset_materialization.metadata)
    meta["reused_previous_output"] = dg.MetadataValue.bool(True)
    context.log.info(f"{name}: inputs, config and code unchanged: reusing the served model")
    return dg.MaterializeResult(metadata=meta)


def _remember(lake: Lake, name: str, fp: str) -> None:
    import json

    lake.put_text(f"{MODEL_MANIFESTS}/{name}.json", json.dumps({"fingerprint": fp}))


def _md_table(rows: list[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".4f")


def _feature_asset(table_name: str, description: str):
    from ecommerce_platform.ml.features import TABLES

    table = TABLES[table_name]
    schema = _schema(table.columns)

    @dg.asset(
        name=table_name,
        deps=["clean_parquet"],
        group_name="ml",
        pool="zone_features",
        kinds={"duckdb", "sql", "parquet"},
        code_version="1",
        description=description,
        owners=OWNERS,
        tags=TAGS,
        metadata={"dagster/column_schema": schema, "table": table_name},
    )
    def _asset(context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
        from ecommerce_platform.ml.features import build_feature_table

        result = build_feature_table(warehouse, lake, table)
        if result.reused:
            context.log.info(f"{table_name}: clean zone and SQL unchanged, previous output reused")
        preview = warehouse.query_df(f"SELECT * FROM {table_name} LIMIT 5", lake)
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": dg.MetadataValue.int(result.rows),
                "dagster/column_schema": schema,
                "uri": dg.MetadataValue.path(result.uri),
                "engine_seconds": dg.MetadataValue.float(result.seconds),
                "reused_previous_output": result.reused,
                "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
            },
            data_version=dg.DataVersion(result.fingerprint[:16]),
        )

    return _asset


invoice_features = _feature_asset(
    "invoice_features",
    "One row per sale invoice of a known customer: strictly-prior customer history, country, time of "
    "day/week, basket size in lines (never the invoice's own quantities or prices); SQL in the warehouse.",
)
customer_features = _feature_asset(
    "customer_features",
    "One row per customer: recency, frequency, net spend (sales minus returns), average basket; SQL.",
)
user_item_interactions = _feature_asset(
    "user_item_interactions",
    "Units bought per (customer, product, invoice), with each invoice's position in the customer's history; SQL.",
)


# ----------------------------------------------------------------------------- classifier
class ClassifierConfig(dg.Config):
    label_threshold_gbp: float = 1000.0
    test_months: int = 3
    validation_months: int = 2


@dg.asset(
    key="classifier",
    deps=["invoice_features"],
    group_name="ml",
    pool="zone_models",
    kinds={"scikitlearn", "python"},
    code_version="1",
    description="High-value invoice classifier (total >= threshold GBP) from what is known before the "
    "total; time split, threshold chosen on validation, promoted only if it beats its baseline.",
    owners=OWNERS,
    tags=TAGS,
)
def classifier(
    context: dg.AssetExecutionContext, config: ClassifierConfig, lake: Lake, warehouse: Warehouse
) -> dg.MaterializeResult:
    from ecommerce_platform.ml import classifier as clf

    fp = _model_fingerprint(lake, "classifier", ("invoice_features",), config)
    if (previous := _reused(context, lake, "classifier", fp)) is not None:
        return previous
    df = warehouse.query_df("SELECT * FROM invoice_features", lake)
    run = clf.train_and_evaluate(df, clf.ClassifierSettings(
        label_threshold_gbp=config.label_threshold_gbp, test_months=config.test_months,
        validation_months=config.validation_months))
    promoted = clf.publish(lake, run)
    (context.log.info if promoted else context.log.warning)(
        f"classifier ROC-AUC {run.metrics['roc_auc']:.4f} vs baseline {run.baseline_metrics['roc_auc']:.4f}: "
        + ("promoted" if promoted else "NOT promoted (kept as candidate)"))
    m, b = run.metrics, run.baseline_metrics
    rows = [{"model": name, **{k: v[k] for k in ("roc_auc", "pr_auc", "precision", "recall", "f1", "threshold")}}
            for name, v in (("gradient boosting", m), ("baseline (logreg on prior avg order)", b))]
    meta = {f"test_{k}": dg.MetadataValue.float(float(m[k])) for k in ("roc_auc", "pr_auc", "precision", "recall", "f1")}
    meta.update({f"baseline_{k}": dg.MetadataValue.float(float(b[k])) for k in ("roc_auc", "pr_auc", "precision", "recall", "f1")})
    meta.update({
        "decision_threshold": dg.MetadataValue.float(float(m["threshold"])),
        "baseline_threshold": dg.MetadataValue.float(float(b["threshold"])),
        "test_positive_rate": dg.MetadataValue.float(float(m["positive_rate"])),
        "validation_roc_auc": dg.MetadataValue.float(float(m["validation_roc_auc"])),
        "label_threshold_gbp": dg.MetadataValue.float(float(config.label_threshold_gbp)),
        "metrics": dg.MetadataValue.md(_md_table(rows)),
        "split": dg.MetadataValue.json(run.split),
        "features": dg.MetadataValue.json(run.model.feature_names),
        "train_seconds": dg.MetadataValue.float(run.train_seconds),
        "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
        "promoted": promoted,
        "run_id": run.model.run_id,
        "uri": dg.MetadataValue.path(lake.uri(clf.CURRENT_PREFIX if promoted else clf.CANDIDATE_PREFIX)),
        "reused_previous_output": False,
    })
    if promoted:
        _remember(lake, "classifier", fp)
    return dg.MaterializeResult(metadata=meta)


def _latest_meta(context, key: str) -> dict | None:  # noqa: ANN001
    event = context.instance.get_latest_materialization_event(dg.AssetKey(key))
    if event is None or event.asset_materialization is None:
        return None
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


@dg.asset_check(asset="classifier", blocking=True,
                description="Test ROC-AUC >= baseline + 0.05 and < 0.99 (higher means a leak), and that run is the served model")
def classifier_beats_baseline(context: dg.AssetCheckExecutionContext, lake: Lake) -> dg.AssetCheckResult:
    from ecommerce_platform.ml import classifier as clf

    meta = _latest_meta(context, "classifier")
    if meta is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "classifier never materialized"})
    auc, base = float(meta["test_roc_auc"]), float(meta["baseline_roc_auc"])
    current = clf.read_summary(lake, clf.CURRENT_PREFIX) or {}
    served = current.get("run_id") == meta["run_id"]
    passed = auc >= base + clf.MIN_AUC_MARGIN and auc < clf.LEAK_AUC and served
    return dg.AssetCheckResult(passed=bool(passed), metadata={
        "roc_auc": auc, "baseline_roc_auc": base, "margin": round(auc - base, 4),
        "required_margin": clf.MIN_AUC_MARGIN, "leak_auc": clf.LEAK_AUC, "served_run_id": current.get("run_id", "none"),
        "run_id": meta["run_id"],
    })


# ----------------------------------------------------------------------------- segments
class SegmentsConfig(dg.Config):
    k: int = 4
    random_state: int = 0


@dg.asset(
    key="segments",
    deps=["customer_features", "clean_parquet"],
    group_name="ml",
    pool="zone_models",
    kinds={"scikitlearn", "parquet", "duckdb"},
    code_version="1",
    description="Customer segments: K-Means on log-scaled RFM, named from centroid profiles; table "
    "`customer_segments` and view `vip_transactions` (champions' sales).",
    owners=OWNERS,
    tags=TAGS,
    metadata={"table": "customer_segments", "view": "vip_transactions"},
)
def segments(context: dg.AssetExecutionContext, config: SegmentsConfig, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import segments as seg

    fp = _model_fingerprint(lake, "segments", ("customer_features",), config)
    if (previous := _reused(context, lake, "segments", fp)) is not None:
        seg.register_segments(warehouse, lake)
        return previous
    customers = warehouse.query_df("SELECT * FROM customer_features", lake)
    run = seg.fit_segments(customers, seg.SegmentSettings(k=config.k, random_state=config.random_state))
    written = seg.write_segments(warehouse, lake, run)
    vip = warehouse.query_df(f"SELECT count(*) AS n, count(DISTINCT customer_id) AS c FROM {seg.VIP_VIEW}", lake).iloc[0]
    sil = [{"k": k, "silhouette": v} for k, v in run.silhouettes.items()]
    sizes = dict(zip(run.profiles["segment"], map(int, run.profiles["customers"])))
    _remember(lake, "segments", fp)
    return dg.MaterializeResult(metadata={
        "reused_previous_output": False,
        "dagster/row_count": dg.MetadataValue.int(len(run.table)),
        "dagster/column_schema": _schema(seg.SEGMENT_COLUMNS),
        "k": config.k,
        "silhouette_k": dg.MetadataValue.float(run.silhouettes.get(config.k, float("nan"))),
        "silhouettes": dg.MetadataValue.md("| k | silhouette |\n|---|---|\n" + "\n".join(
            f"| {r['k']} | {r['silhouette']:.4f} |" for r in sil)),
        "segment_sizes": dg.MetadataValue.json(sizes),
        "profiles": dg.MetadataValue.md(run.profiles.to_markdown(index=False, floatfmt=".2f")),
        "excluded_no_net_spend": dg.MetadataValue.int(run.n_excluded),
        "vip_transactions_rows": dg.MetadataValue.int(int(vip["n"])),
        "vip_customers": dg.MetadataValue.int(int(vip["c"])),
        "pca_plot": dg.MetadataValue.md(seg.png_markdown(written["png"], "segments PCA")),
        "pca_plot_uri": dg.MetadataValue.path(written["png_uri"]),
        "train_seconds": dg.MetadataValue.float(run.train_seconds),
        "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
        "uri": dg.MetadataValue.path(written["uri"]),
    })


@dg.asset_check(asset="segments", blocking=True,
                description="Every customer of customer_features has exactly one named segment; champions' VIP view has rows")
def segments_cover_customers(lake: Lake, warehouse: Warehouse) -> dg.AssetCheckResult:
    row = warehouse.query_df(
        "SELECT (SELECT count(*) FROM customer_features) AS customers, "
        "(SELECT count(*) FROM customer_segments) AS labelled, "
        "(SELECT count(DISTINCT customer_id) FROM customer_segments) AS distinct_labelled, "
        "(SELECT count(*) FROM customer_segments WHERE segment IS NULL OR segment = '') AS unnamed, "
        "(SELECT count(*) FROM customer_segments WHERE segment <> 'no net spend' AND monetary <= 0) AS clustered_without_spend, "
        "(SELECT count(*) FROM vip_transactions) AS vip_rows", lake).iloc[0]
    vals = {k: int(v) for k, v in row.items()}
    passed = (vals["customers"] == vals["labelled"] == vals["distinct_labelled"] and vals["unnamed"] == 0
              and vals["clustered_without_spend"] == 0 and vals["vip_rows"] > 0)
    return dg.AssetCheckResult(passed=bool(passed), metadata=vals)


# ----------------------------------------------------------------------------- ALS
class ALSConfig(dg.Config):
    min_invoices: int = 2


@dg.asset(
    key="als_model",
    deps=["user_item_interactions"],
    group_name="ml",
    pool="zone_models",
    kinds={"python", "numpy"},
    code_version="1",
    description="Implicit ALS recommender on users x items confidence; tuned on validation, evaluated on "
    "each customer's last invoice against popularity; served (npz + Parquet) only if it beats it.",
    owners=OWNERS,
    tags=TAGS,
)
def als_model(context: dg.AssetExecutionContext, config: ALSConfig, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import recommender as rec

    fp = _model_fingerprint(lake, "als_model", ("user_item_interactions",), config)
    if (previous := _reused(context, lake, "als_model", fp)) is not None:
        return previous
    interactions = warehouse.query_df(
        "SELECT customer_id, stock_code, invoice_no, quantity, invoice_rank_desc, customer_invoices "
        "FROM user_item_interactions", lake)
    run = rec.train_and_evaluate(interactions, rec.ALSSettings(min_invoices=config.min_invoices))
    promoted, uri = rec.publish(lake, run, rec.product_catalog(warehouse, lake))
    (context.log.info if promoted else context.log.warning)(
        f"ALS precision@10 {run.metrics['precision_at_10']:.4f} = {run.lift:.2f}x popularity: "
        + ("served" if promoted else "NOT served (candidate)"))
    k = rec.K
    keys = (f"precision_at_{k}", f"recall_at_{k}", f"map_at_{k}", "coverage")
    meta = {f"als_{x}": dg.MetadataValue.float(float(run.metrics[x])) for x in keys}
    meta.update({f"popularity_{x}": dg.MetadataValue.float(float(run.popularity_metrics[x])) for x in keys})
    rows = [{"model": n, **{x: v[x] for x in keys}, "users": v["users"]}
            for n, v in (("ALS", run.metrics), ("popularity", run.popularity_metrics))]
    meta.update({
        "precision_lift": dg.MetadataValue.float(float(run.lift)),
        "metrics": dg.MetadataValue.md(_md_table(rows)),
        "validation_grid": dg.MetadataValue.md(_md_table(run.validation)),
        "params": dg.MetadataValue.json({**run.params.__dict__}),
        "holdout": dg.MetadataValue.json(run.holdout_info),
        "n_users": dg.MetadataValue.int(int(run.model.user_factors.shape[0])),
        "n_items": dg.MetadataValue.int(int(run.model.item_factors.shape[0])),
        "train_seconds": dg.MetadataValue.float(run.train_seconds),
        "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
        "tuning_seconds": dg.MetadataValue.float(run.tuning_seconds),
        "promoted": promoted,
        "uri": dg.MetadataValue.path(uri),
        "reused_previous_output": False,
    })
    if promoted:
        _remember(lake, "als_model", fp)
    return dg.MaterializeResult(metadata=meta)


@dg.asset_check(asset="als_model", blocking=True,
                description="ALS precision@10 >= 1.5x the popularity baseline on the time holdout, and the run is served")
def als_beats_popularity(context: dg.AssetCheckExecutionContext, lake: Lake) -> dg.AssetCheckResult:
    from ecommerce_platform.ml import recommender as rec

    meta = _latest_meta(context, "als_model")
    if meta is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "als_model never materialized"})
    lift = float(meta["precision_lift"])
    served = bool(meta.get("promoted")) and lake.exists(f"{rec.MODEL_PREFIX}/factors.npz")
    return dg.AssetCheckResult(passed=bool(lift >= rec.MIN_LIFT and served), metadata={
        "precision_lift": lift, "min_lift": rec.MIN_LIFT, "served": served,
        "als_precision_at_10": float(meta["als_precision_at_10"]),
        "popularity_precision_at_10": float(meta["popularity_precision_at_10"]),
    })
