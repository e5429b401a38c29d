"""ML layer: the feature tables (SQL in the warehouse), the models ``classifier``, ``segments`` (table
``customer_segments``) and ``als_model``, the view ``vip_transactions``, and the checks that keep a
model that does not beat its baseline (or does not cover its customers) from being served.

Each model asset records its run in the lake (``models/<model>/last_run.json``, ml/runs.py); its
check reads that record and what is served, and counts again from the published tables. A model whose
input is too small materializes with ``status: insufficient_data`` and its check warns."""


import dagster as dg

from ecommerce_platform.ml import contract as C
from ecommerce_platform.ml import runs
from ecommerce_platform.ml.features import CUSTOMER_FEATURES, INVOICE_FEATURES, USER_ITEM_INTERACTIONS, FeatureTable
from ecommerce_platform.operations import ENGINE_TAG, WRITER_POOL
from ecommerce_platform.recompute import code_version, config_defaults, data_version, files_exist, previous_if_fresh
from ecommerce_platform.resources.warehouse import Warehouse

PACKAGE = "ecommerce_platform.ml"
PREVIEW_ROWS = 5


# ------------------------------------------------------------------------------------ metadata helpers
def _schema(columns) -> dg.TableSchema:  # noqa: ANN001
    return dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in columns])


def _value(v):  # noqa: ANN001, ANN202
    """A cell of a preview: JSON-able, floats rounded to what is meaningful."""
    import math

    if v is None:
        return None
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        if not math.isfinite(v):
            return None
        return round(v, 2) if abs(v) >= 1 else round(v, 4)
    if isinstance(v, (bool, int, str)):
        return v
    return str(v)


def _records_table(rows: list[dict], columns: list[tuple[str, str]]) -> dg.MetadataValue:
    """``rows`` as a MetadataValue.table; ``columns``: (name, type) in order."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({c: _value(r.get(c)) for c, _ in columns}) for r in rows],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, t) for c, t in columns]))


def _preview(warehouse: Warehouse, name: str, columns, order_by: str) -> dg.MetadataValue:  # noqa: ANN001
    df = warehouse.query_df(f"SELECT * FROM {name} ORDER BY {order_by} LIMIT {PREVIEW_ROWS}")
    return _records_table(df.to_dict("records"), [(c, t) for c, t, _ in columns if c in df.columns])


def _lineage(lineage: dict[str, tuple[str, ...]], source: str = "clean_parquet") -> dg.TableColumnLineage:
    key = dg.AssetKey(source)
    return dg.TableColumnLineage(deps_by_column={
        col: [dg.TableColumnDep(asset_key=key, column_name=c) for c in cols] for col, cols in lineage.items()})


def table_metadata(warehouse: Warehouse, name: str, columns, order_by: str, prefix: str | None = None,  # noqa: ANN001
                   rows: int | None = None) -> dict:
    """The metadata of a published table (or view, without ``prefix``): schema, row count, the name
    users of the engine know it by, where its files are, and a 5-row preview."""
    from ecommerce_platform.ml.features import count_rows

    meta = {
        "dagster/column_schema": _schema(columns),
        "dagster/row_count": dg.MetadataValue.int(count_rows(warehouse, name) if rows is None else rows),
        "dagster/table_name": warehouse.table_name(name),
        "preview": _preview(warehouse, name, columns, order_by),
    }
    if prefix is not None:
        meta["dagster/uri"] = dg.MetadataValue.path(warehouse.lake.uri(prefix))
    return meta


def _num(meta: dict, key: str, value) -> None:  # noqa: ANN001
    """A metric as a float rounded to 4 decimals (left out when undefined)."""
    v = runs.r4(value)
    if v is not None:
        meta[key] = dg.MetadataValue.float(v)


def _status_metadata(record: dict) -> dict:
    meta = {
        "status": record["status"],
        "promoted": record["status"] == runs.SERVED,
        "run_id": record["run_id"],
        "served_run_id": record.get("served_run_id") or "none",
    }
    if record["status"] == runs.INSUFFICIENT:
        meta["missing"] = dg.MetadataValue.json(record["missing"])
        meta["message"] = f"too little data for an honest model: {record['message']}; nothing new is served"
    return meta


# ------------------------------------------------------------------------------------ feature tables
def _feature_asset(table: FeatureTable, description: str) -> dg.AssetsDefinition:
    @dg.asset(
        name=table.name,
        deps=["clean_parquet"],
        pool=WRITER_POOL,
        kinds={"sql", "parquet"},
        tags={ENGINE_TAG: "warehouse"},
        code_version=code_version(PACKAGE, "features.py", f"sql/{table.sql_file}"),
        description=description,
        metadata={"dagster/column_schema": _schema(table.columns), "dagster/table_name": table.name},
    )
    def _asset(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        from ecommerce_platform.ml.features import build_feature_table, catalog_table

        previous = previous_if_fresh(context, exists=files_exist(warehouse.lake, table.prefix))
        if previous is not None:
            catalog_table(warehouse, table)  # idempotent: the table stays in the catalog
            return previous
        result = build_feature_table(warehouse, table)
        context.log.info(f"{table.name}: {result.rows:,} rows in {result.seconds:.2f} s ({warehouse.engine})")
        return dg.MaterializeResult(metadata={
            **table_metadata(warehouse, table.name, table.columns, table.order_by, table.prefix, result.rows),
            "dagster/column_lineage": _lineage(table.lineage),
            "engine_seconds": dg.MetadataValue.float(result.seconds),
        })

    return _asset


invoice_features = _feature_asset(
    INVOICE_FEATURES,
    "One row per sale invoice of a known customer: strictly-prior customer history, country, time of "
    "day/week, basket size in lines (never the invoice's own quantities or prices); SQL in the warehouse.",
)
customer_features = _feature_asset(
    CUSTOMER_FEATURES,
    "One row per customer: recency, frequency, net spend (sales minus returns), average basket; SQL in the warehouse.",
)
user_item_interactions = _feature_asset(
    USER_ITEM_INTERACTIONS,
    "Units bought per (customer, product, invoice), with each invoice's position in the customer's "
    "history; SQL in the warehouse.",
)


# ------------------------------------------------------------------------------------ classifier
class ClassifierConfig(dg.Config):
    label_threshold_gbp: float = 1000.0
    test_months: int = 3
    validation_months: int = 2


@dg.asset(
    key="classifier",
    deps=["invoice_features"],
    pool=WRITER_POOL,
    kinds={"scikitlearn", "python"},
    code_version=code_version(PACKAGE, "classifier.py", "contract.py", "features.py", "metrics.py", "runs.py",
                              params=config_defaults(ClassifierConfig)),
    description="High-value invoice classifier (total >= threshold GBP) from what is known before the "
    "total; time split, threshold chosen on validation; served only if it beats its baseline.",
)
def classifier(context: dg.AssetExecutionContext, config: ClassifierConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import classifier as clf

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=lambda: clf.outputs_exist(lake))
    if previous is not None:
        return previous
    settings = clf.ClassifierSettings(label_threshold_gbp=config.label_threshold_gbp, test_months=config.test_months,
                                      validation_months=config.validation_months)
    record, run = clf.run_and_publish(lake, warehouse.query_df(f"SELECT * FROM {INVOICE_FEATURES.name}"), settings)
    meta = _status_metadata(record)
    meta["label_threshold_gbp"] = dg.MetadataValue.float(float(config.label_threshold_gbp))
    if run is None:
        context.log.warning(f"classifier: {meta['message']}")
    else:
        m, b = run.metrics, run.baseline_metrics
        (context.log.info if run.beats_baseline else context.log.warning)(
            f"classifier ROC-AUC {m['roc_auc']:.4f} vs baseline {b['roc_auc']:.4f}: "
            + ("served" if run.beats_baseline else "NOT served (" + "; ".join(run.gate_failures) + ")"))
        keys = ("roc_auc", "pr_auc", "precision", "recall", "f1")
        for k in keys:
            _num(meta, f"test_{k}", m[k])
            _num(meta, f"baseline_{k}", b[k])
        _num(meta, "auc_margin", m["roc_auc"] - b["roc_auc"])
        _num(meta, "required_auc_margin", C.MIN_AUC_MARGIN)
        _num(meta, "leak_auc", C.LEAK_AUC)
        _num(meta, "decision_threshold", m["threshold"])
        _num(meta, "test_positive_rate", m["positive_rate"])
        _num(meta, "validation_roc_auc", m["validation_roc_auc"])
        meta.update({
            "gate_failures": dg.MetadataValue.json(run.gate_failures),
            "metrics": _records_table(
                [{"model": "gradient boosting", **m}, {"model": clf.BASELINE, **b}],
                [("model", "string"), *((k, "float") for k in (*keys, "threshold"))]),
            "split": dg.MetadataValue.json({k: v for k, v in run.split.items() if k != "months"}),
            "features": dg.MetadataValue.json(run.model.feature_names),
            "train_seconds": dg.MetadataValue.float(run.train_seconds),
            "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
            "dagster/uri": dg.MetadataValue.path(lake.uri(clf.CURRENT_PREFIX if run.beats_baseline
                                                          else clf.CANDIDATE_PREFIX)),
        })
    return dg.MaterializeResult(metadata=meta, data_version=data_version(record["run_id"], record.get("served_run_id")))


def _insufficient(record: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={
        "status": runs.INSUFFICIENT, "missing": dg.MetadataValue.json(record["missing"]),
        "served_run_id": record.get("served_run_id") or "none",
        "message": "too little data to train or evaluate honestly: nothing new is served"})


def _never_run(name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, metadata={"problem": f"{name} has no run recorded in the lake"})


@dg.asset_check(
    asset="classifier", blocking=True,
    description=f"The served model is this run's, and its test ROC-AUC, recomputed from the published model "
    f"and invoice_features, is >= the baseline's (refit on the same split) + {C.MIN_AUC_MARGIN} and < "
    f"{C.LEAK_AUC} (higher means a leak); warns when the data is too small for an honest model",
)
def classifier_beats_baseline(warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.ml import classifier as clf

    lake = warehouse.lake
    record = runs.read_record(lake, clf.MODEL_PREFIX)
    if record is None:
        return _never_run("classifier")
    if record["status"] == runs.INSUFFICIENT:
        return _insufficient(record)
    served = clf.served_run_id(lake)
    meta: dict = {"status": record["status"], "run_id": record["run_id"], "served_run_id": served or "none"}
    _num(meta, "reported_roc_auc", record["metrics"].get("roc_auc"))
    _num(meta, "reported_baseline_roc_auc", record["baseline_metrics"].get("roc_auc"))
    if served is None:
        return dg.AssetCheckResult(passed=False, metadata={**meta, "problem": "no classifier is served"})
    recount = clf.evaluate_served(lake, warehouse.query_df(f"SELECT * FROM {INVOICE_FEATURES.name}"), record)
    failures = clf.gate({"roc_auc": recount["roc_auc"]}, {"roc_auc": recount["baseline_roc_auc"]})
    if served != record["run_id"]:
        failures.append(f"the served model ({served}) is not this run's ({record['run_id']})")
    _num(meta, "served_roc_auc", recount["roc_auc"])
    _num(meta, "baseline_roc_auc", recount["baseline_roc_auc"])
    _num(meta, "required_margin", C.MIN_AUC_MARGIN)
    meta["failures"] = dg.MetadataValue.json(failures)
    return dg.AssetCheckResult(passed=not failures, metadata=meta)


# ------------------------------------------------------------------------------------ segments
class SegmentsConfig(dg.Config):
    k: int = 4
    random_state: int = 0


@dg.asset(
    key="segments",
    deps=["customer_features"],
    pool=WRITER_POOL,
    kinds={"scikitlearn", "parquet"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, "segments.py", "contract.py", "runs.py", "sql/segment_coverage.sql",
                              params=config_defaults(SegmentsConfig)),
    description="Customer segments: K-Means on log-scaled RFM, named from centroid profiles; table "
    "`customer_segments`, published only when it labels every customer exactly once.",
    metadata={"dagster/column_schema": _schema(C.SEGMENT_COLUMNS), "dagster/table_name": C.SEGMENTS_TABLE},
)
def segments(context: dg.AssetExecutionContext, config: SegmentsConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import segments as seg

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=lambda: seg.outputs_exist(lake))
    if previous is not None:
        seg.catalog_table(warehouse)
        return previous
    customers = warehouse.query_df(f"SELECT * FROM {CUSTOMER_FEATURES.name}")
    record, run = seg.run_and_publish(warehouse, customers, seg.SegmentSettings(k=config.k, random_state=config.random_state))
    meta = _status_metadata(record)
    meta["k"] = dg.MetadataValue.int(config.k)
    if run is None:
        context.log.warning(f"segments: {meta['message']}")
    else:
        if record["problems"]:
            context.log.error("segments NOT published: " + "; ".join(record["problems"]))
        meta["problems"] = dg.MetadataValue.json(record["problems"])
        _num(meta, "silhouette_k", run.silhouettes.get(config.k))
        meta["silhouettes"] = _records_table([{"k": k, "silhouette": v} for k, v in run.silhouettes.items()],
                                             [("k", "int"), ("silhouette", "float")])
        meta["profiles"] = _records_table(run.profiles.to_dict("records"), [
            ("segment", "string"), ("customers", "int"), ("share", "float"), ("recency_days_median", "float"),
            ("frequency_median", "float"), ("monetary_median", "float"), ("avg_basket_median", "float"),
            ("monetary_total", "float")])
        meta["segment_sizes"] = dg.MetadataValue.json(record["sizes"])
        meta["excluded_no_net_spend"] = dg.MetadataValue.int(run.n_excluded)
        meta["train_seconds"] = dg.MetadataValue.float(run.train_seconds)
        meta["eval_seconds"] = dg.MetadataValue.float(run.eval_seconds)
    if seg.published(lake):
        meta.update(table_metadata(warehouse, C.SEGMENTS_TABLE, C.SEGMENT_COLUMNS, "customer_id", seg.SEGMENTS_PREFIX))
        if lake.exists(seg.PLOT_KEY):
            meta["pca_plot"] = dg.MetadataValue.path(lake.uri(seg.PLOT_KEY))
    else:
        meta["dagster/row_count"] = dg.MetadataValue.int(0)
        meta["dagster/table_name"] = warehouse.table_name(C.SEGMENTS_TABLE)
    return dg.MaterializeResult(metadata=meta, data_version=data_version(record["run_id"], record.get("served_run_id")))


@dg.asset_check(
    asset="segments", blocking=True,
    description="Counted again from the published tables: every customer of customer_features has exactly "
    "one named segment, only customers with net spend are clustered; warns when there are too few customers",
)
def segments_cover_customers(warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.ml import segments as seg

    lake = warehouse.lake
    record = runs.read_record(lake, seg.MODEL_PREFIX)
    if record is None:
        return _never_run("segments")
    if record["status"] == runs.INSUFFICIENT:
        return _insufficient(record)
    counts = {k: int(v) for k, v in warehouse.query_df(seg.coverage_sql()).iloc[0].items()}
    problems = seg.coverage_problems(counts)
    if record["status"] != runs.SERVED:
        problems = [f"this run was {record['status']}: " + "; ".join(record.get("problems") or []), *problems]
    return dg.AssetCheckResult(passed=not problems, metadata={
        **{k: dg.MetadataValue.int(v) for k, v in counts.items()}, "status": record["status"],
        "problems": dg.MetadataValue.json(problems)})


@dg.asset(
    key="vip_transactions",
    deps=["segments", "clean_parquet"],
    pool=WRITER_POOL,
    kinds={"sql"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, "sql/vip_transactions.sql", params={"segment": C.TOP_SEGMENT}),
    description=f"View `vip_transactions`: the sale lines of the '{C.TOP_SEGMENT}' segment's customers, "
    "with their net spend.",
    metadata={"dagster/column_schema": _schema(C.VIP_COLUMNS), "dagster/table_name": C.VIP_VIEW},
)
def vip_transactions(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import segments as seg

    def exists() -> bool:
        try:
            warehouse.query_df(f"SELECT * FROM {C.VIP_VIEW} LIMIT 0")
        except Exception:  # noqa: BLE001 - any engine's "no such view"
            return False
        return True

    previous = previous_if_fresh(context, exists=exists)
    if previous is not None:
        return previous
    seg.catalog_table(warehouse)  # the view binds even before the first segments are published
    warehouse.create_view(C.VIP_VIEW, seg.vip_view_sql())
    customers = int(warehouse.query_df(f"SELECT count(DISTINCT customer_id) AS n FROM {C.VIP_VIEW}").iloc[0]["n"])
    return dg.MaterializeResult(metadata={
        **table_metadata(warehouse, C.VIP_VIEW, C.VIP_COLUMNS, "invoice_ts DESC, invoice_no, stock_code"),
        "customers": dg.MetadataValue.int(customers),
        "segment": C.TOP_SEGMENT,
    })


# ------------------------------------------------------------------------------------ ALS
class ALSConfig(dg.Config):
    min_invoices: int = 2


@dg.asset(
    key="als_model",
    deps=["user_item_interactions", "clean_parquet"],
    pool=WRITER_POOL,
    kinds={"python", "numpy"},
    code_version=code_version(PACKAGE, "recommender.py", "contract.py", "metrics.py", "runs.py", "sql/product_catalog.sql",
                              params=config_defaults(ALSConfig)),
    description="Implicit ALS recommender on users x items confidence; tuned on validation, evaluated on "
    "each customer's last invoice against popularity; served (npz + Parquet) only if it beats it.",
)
def als_model(context: dg.AssetExecutionContext, config: ALSConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import recommender as rec

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=lambda: rec.outputs_exist(lake))
    if previous is not None:
        return previous
    interactions = warehouse.query_df(
        "SELECT customer_id, stock_code, invoice_no, quantity, invoice_rank_desc, customer_invoices "
        f"FROM {USER_ITEM_INTERACTIONS.name}")
    record, run = rec.run_and_publish(lake, interactions, lambda: rec.product_catalog(warehouse),
                                      rec.ALSSettings(min_invoices=config.min_invoices))
    meta = _status_metadata(record)
    if run is None:
        context.log.warning(f"als_model: {meta['message']}")
    else:
        (context.log.info if run.beats_popularity else context.log.warning)(
            f"ALS precision@{C.K} {run.metrics[f'precision_at_{C.K}']:.4f} vs popularity "
            f"{run.popularity_metrics[f'precision_at_{C.K}']:.4f}: "
            + ("served" if run.beats_popularity else "NOT served (" + "; ".join(run.gate_failures) + ")"))
        keys = (f"precision_at_{C.K}", f"recall_at_{C.K}", f"map_at_{C.K}", "coverage")
        for k in keys:
            _num(meta, f"als_{k}", run.metrics[k])
            _num(meta, f"popularity_{k}", run.popularity_metrics[k])
        _num(meta, "precision_lift", run.lift)
        _num(meta, "min_lift", C.MIN_LIFT)
        grid_cols = [("factors", "int"), ("regularization", "float"), ("alpha", "float"), ("iterations", "int"),
                     ("scaling", "string"), (f"precision_at_{C.K}", "float"), (f"map_at_{C.K}", "float"),
                     ("fit_seconds", "float")]
        meta.update({
            "gate_failures": dg.MetadataValue.json(run.gate_failures),
            "metrics": _records_table(
                [{"model": "ALS", **run.metrics}, {"model": "popularity", **run.popularity_metrics}],
                [("model", "string"), *((k, "float") for k in keys), ("users", "int")]),
            "validation_grid": _records_table(run.validation, grid_cols),
            "params": dg.MetadataValue.json(dict(run.params.__dict__)),
            "holdout": dg.MetadataValue.json(run.holdout_info),
            "n_users": dg.MetadataValue.int(int(run.model.user_factors.shape[0])),
            "n_items": dg.MetadataValue.int(int(run.model.item_factors.shape[0])),
            "train_seconds": dg.MetadataValue.float(run.train_seconds),
            "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
            "tuning_seconds": dg.MetadataValue.float(run.tuning_seconds),
            "dagster/uri": dg.MetadataValue.path(lake.uri(rec.CURRENT_PREFIX if run.beats_popularity
                                                          else rec.CANDIDATE_PREFIX)),
        })
    return dg.MaterializeResult(metadata=meta, data_version=data_version(record["run_id"], record.get("served_run_id")))


@dg.asset_check(
    asset="als_model", blocking=True,
    description=f"The served model is this run's, and its precision@{C.K} on the time holdout is > 0 and >= "
    f"{C.MIN_LIFT}x the popularity baseline's, counted again from user_item_interactions; warns when the "
    "data is too small for an honest evaluation",
)
def als_beats_popularity(warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.ml import recommender as rec

    lake = warehouse.lake
    record = runs.read_record(lake, rec.MODEL_PREFIX)
    if record is None:
        return _never_run("als_model")
    if record["status"] == runs.INSUFFICIENT:
        return _insufficient(record)
    served = rec.served_run_id(lake)
    interactions = warehouse.query_df(
        "SELECT customer_id, stock_code, invoice_no, quantity, invoice_rank_desc, customer_invoices "
        f"FROM {USER_ITEM_INTERACTIONS.name}")
    popularity = rec.popularity_on_holdout(interactions, int(record["min_invoices"]))
    failures = rec.gate(record["metrics"], popularity)
    if served != record["run_id"]:
        failures.append(f"the served model ({served or 'none'}) is not this run's ({record['run_id']})")
    p = f"precision_at_{C.K}"
    meta: dict = {"status": record["status"], "run_id": record["run_id"], "served_run_id": served or "none",
                  "failures": dg.MetadataValue.json(failures)}
    _num(meta, f"als_{p}", record["metrics"][p])
    _num(meta, f"popularity_{p}", popularity[p])
    _num(meta, f"reported_popularity_{p}", record["popularity_metrics"][p])
    _num(meta, "precision_lift", rec.lift(record["metrics"], popularity))
    _num(meta, "min_lift", C.MIN_LIFT)
    return dg.AssetCheckResult(passed=not failures, metadata=meta)


ASSETS = [invoice_features, customer_features, user_item_interactions, classifier, segments, vip_transactions,
          als_model]
CHECKS = [classifier_beats_baseline, segments_cover_customers, als_beats_popularity]
