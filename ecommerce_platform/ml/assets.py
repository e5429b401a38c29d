"""ML layer: the feature tables (SQL in the warehouse), the models ``classifier``, ``segments`` (table
``customer_segments``), ``als_model`` and ``sales_forecast`` (table ``sales_forecast``), the view
``vip_transactions``, and the checks that keep a model that does not beat its strongest baseline (or does
not cover its customers) from being served.

Each model asset records its run in the lake (``models/<model>/last_run.json``, ml/runs.py); its
check reads that record and what is published, and counts again from the published tables. Gates decide
on a confidence interval (contract.py): a run whose test set is too small to decide is ``inconclusive``
(nothing new served, the check warns); a model whose input is too small materializes with
``status: insufficient_data`` and its check warns."""


import importlib

import dagster as dg

from ecommerce_platform.metadata_tables import column_schema, records_table
from ecommerce_platform.ml import contract as C
from ecommerce_platform.ml import runs
from ecommerce_platform.ml.features import CUSTOMER_FEATURES, INVOICE_FEATURES, USER_ITEM_INTERACTIONS, FeatureTable
from ecommerce_platform.operations import ENGINE_TAG, WRITER_POOL
from ecommerce_platform.recompute import (
    check_fingerprint,
    code_version,
    config_defaults,
    data_version,
    files_exist,
    passed_before,
    previous_if_fresh,
    with_fingerprint,
)
from ecommerce_platform.resources.warehouse import Warehouse
from ecommerce_platform.schema import CLEAN_PREFIX

PACKAGE = "ecommerce_platform.ml"
PREVIEW_ROWS = 5


# ------------------------------------------------------------------------------------ metadata helpers
def _preview(warehouse: Warehouse, name: str, columns, order_by: str) -> dg.MetadataValue:  # noqa: ANN001
    df = warehouse.query_df(f"SELECT * FROM {name} ORDER BY {order_by} LIMIT {PREVIEW_ROWS}")
    return records_table(df.to_dict("records"), [(c, t) for c, t, _ in columns if c in df.columns])


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
        "dagster/column_schema": column_schema(columns),
        "dagster/row_count": dg.MetadataValue.int(count_rows(warehouse, name) if rows is None else rows),
        "dagster/table_name": warehouse.table_name(name),
        "preview": _preview(warehouse, name, columns, order_by),
    }
    if prefix is not None:
        meta["dagster/uri"] = dg.MetadataValue.path(warehouse.lake.uri(prefix))
    return meta


def _model_table_metadata(warehouse: Warehouse, published: bool, name: str, columns, order_by: str,  # noqa: ANN001
                          prefix: str) -> dict:
    """A model's published table's metadata (table_metadata), or, before anything is published, its
    name and no rows."""
    if published:
        return table_metadata(warehouse, name, columns, order_by, prefix)
    return {"dagster/row_count": dg.MetadataValue.int(0), "dagster/table_name": warehouse.table_name(name)}


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
    elif record["status"] == runs.INCONCLUSIVE:
        meta["message"] = ("the test set is too small to decide whether the model beats its baseline: nothing "
                           "new is served, the previous model stays")
    return meta


def _model_result(meta: dict, record: dict) -> dg.MaterializeResult:
    """A model asset's result: its data version is the run and the run served after it."""
    return dg.MaterializeResult(metadata=meta, data_version=data_version(record["run_id"], record.get("served_run_id")))


def _log_verdict(context, name: str, record: dict, headline: str) -> None:  # noqa: ANN001
    status = record["status"]
    reasons = "; ".join(record.get("gate_failures") or [])
    if status == runs.SERVED:
        context.log.info(f"{name}: {headline}: served")
    else:
        context.log.warning(f"{name}: {headline}: {status}, NOT served ({reasons})")


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
        metadata={"dagster/column_schema": column_schema(table.columns), "dagster/table_name": table.name},
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
    "total; time split; served only if significantly better than its strongest logistic-regression baseline.",
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
        m, g = run.metrics, run.gate_figures
        strongest = run.strongest_baseline
        _log_verdict(context, "classifier", record, f"{run.model.kind} ROC-AUC {m['roc_auc']:.4f} vs {strongest} "
                     f"{run.baseline_metrics[strongest]['roc_auc']:.4f}")
        keys = ("roc_auc", "pr_auc", "precision", "recall", "f1")
        for k in keys:
            _num(meta, f"test_{k}", m[k])
            _num(meta, f"baseline_{k}", run.baseline_metrics[strongest][k])
        for name, bm in run.baseline_metrics.items():
            _num(meta, f"roc_auc_{name}", bm["roc_auc"])
        _num(meta, "roc_auc_gradient_boosting", run.gbm_metrics.get("roc_auc"))
        _num(meta, "auc_margin", g.get("auc_difference"))
        _num(meta, "auc_margin_lo", g.get("auc_difference_lo"))
        _num(meta, "auc_margin_hi", g.get("auc_difference_hi"))
        _num(meta, "required_auc_margin", C.MIN_AUC_MARGIN)
        _num(meta, "confidence", C.CONFIDENCE)
        _num(meta, "leak_auc", C.LEAK_AUC)
        _num(meta, "decision_threshold", m["threshold"])
        _num(meta, "test_positive_rate", m["positive_rate"])
        _num(meta, "validation_roc_auc", m["validation_roc_auc"])
        rows = [{"model": f"{run.model.kind} (candidate)", **m}, {"model": f"{clf.GBM} (trees)", **run.gbm_metrics},
                *({"model": name, **bm} for name, bm in run.baseline_metrics.items())]
        meta.update({
            "model_kind": run.model.kind,
            "strongest_baseline": strongest,
            "model_selection": dg.MetadataValue.json(runs.json_safe(
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in run.selection.items()
                 if k != "baseline_roc_auc"})),
            "gate_failures": dg.MetadataValue.json(run.gate_failures),
            "metrics": records_table(rows, [("model", "string"), *((k, "float") for k in (*keys, "threshold"))]),
            "split": dg.MetadataValue.json({k: v for k, v in run.split.items() if k != "months"}),
            "features": dg.MetadataValue.json(run.model.feature_names),
            "train_seconds": dg.MetadataValue.float(run.train_seconds),
            "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
            "dagster/uri": dg.MetadataValue.path(lake.uri(clf.CURRENT_PREFIX if run.beats_baseline
                                                          else clf.CANDIDATE_PREFIX)),
        })
    return _model_result(meta, record)


def _insufficient(record: dict) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={
        "status": runs.INSUFFICIENT, "missing": dg.MetadataValue.json(record["missing"]),
        "served_run_id": record.get("served_run_id") or "none",
        "message": "too little data to train or evaluate honestly: nothing new is served"})


def _never_run(name: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, metadata={"problem": f"{name} has no run recorded in the lake"})


def _model_check(model: str, module: str, description: str, reads: tuple[str, ...]):  # noqa: ANN202
    """Declares the blocking check of model asset ``model``, whose code is ml/<module>.py. The decorated
    function ``(warehouse, module, record)`` judges the run record; when there is none to judge it is
    not called: no run recorded fails the check, too little data for a model warns. ``reads``: the lake
    prefixes of the tables the judge reads (with the model's files, what its verdict depends on)."""

    def declare(judge):  # noqa: ANN001, ANN202
        @dg.asset_check(asset=model, name=judge.__name__, blocking=True, description=description)
        def check(context: dg.AssetCheckExecutionContext, warehouse: Warehouse) -> dg.AssetCheckResult:
            code = importlib.import_module(f"{PACKAGE}.{module}")
            record = runs.read_record(warehouse.lake, code.MODEL_PREFIX)
            if record is None:
                return _never_run(model)
            if record["status"] == runs.INSUFFICIENT:
                return _insufficient(record)
            # the recount is the expensive part: once per change of the model, its record, its files or
            # its inputs, not once per run
            fingerprint = check_fingerprint(
                context, code_version(PACKAGE, "assets.py", "contract.py", "runs.py", f"{module}.py"), record,
                {p: warehouse.lake.list_versions(p) for p in (code.MODEL_PREFIX, *reads)})
            return passed_before(context, fingerprint) or with_fingerprint(judge(warehouse, code, record), fingerprint)

        return check

    return declare


def _verdict_check(record: dict, served: str | None, verdict: str, reasons: list[str], meta: dict) -> dg.AssetCheckResult:
    """The check's result from its recount: the recounted gate must pass and the served model be this
    run's; an undecided recount (or an inconclusive run) warns; anything else fails."""
    failures = list(reasons)
    if record["status"] == runs.SERVED and served != record["run_id"]:
        failures.append(f"the served model ({served or 'none'}) is not this run's ({record['run_id']})")
        verdict = "fail"
    if record["status"] == runs.REJECTED:
        verdict = "fail"
    meta = {**meta, "status": record["status"], "run_id": record["run_id"], "served_run_id": served or "none",
            "verdict": verdict, "failures": dg.MetadataValue.json(failures)}
    if verdict == "pass" and record["status"] == runs.SERVED:
        return dg.AssetCheckResult(passed=True, metadata=meta)
    if verdict == "undecided" or record["status"] == runs.INCONCLUSIVE:
        meta["message"] = "the test set is too small to decide: nothing new is served, the previous model stays"
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata=meta)
    return dg.AssetCheckResult(passed=False, metadata=meta)


@_model_check(
    "classifier", "classifier", reads=(INVOICE_FEATURES.prefix,),
    description=f"Recomputed from the published model and invoice_features: its test ROC-AUC beats the strongest "
    f"baseline (refit on the same split) + {C.MIN_AUC_MARGIN}, the {C.CONFIDENCE:.0%} DeLong interval of the "
    f"difference above 0, and is < {C.LEAK_AUC}; the served model is this run's. Warns when the test set is too "
    "small to decide or the data too small for an honest model",
)
def classifier_beats_baseline(warehouse: Warehouse, clf, record: dict) -> dg.AssetCheckResult:  # noqa: ANN001
    lake = warehouse.lake
    served = clf.served_run_id(lake)
    prefix = clf.CURRENT_PREFIX if record["status"] == runs.SERVED else clf.CANDIDATE_PREFIX
    recount = clf.evaluate_served(lake, warehouse.query_df(f"SELECT * FROM {INVOICE_FEATURES.name}"), record, prefix)
    meta: dict = {"strongest_baseline": recount.get("strongest_baseline") or "none"}
    _num(meta, "reported_roc_auc", record["metrics"].get("roc_auc"))
    _num(meta, "recounted_roc_auc", recount.get("roc_auc"))
    for name, auc in (recount.get("baseline_roc_auc") or {}).items():
        _num(meta, f"recounted_roc_auc_{name}", auc)
    _num(meta, "auc_margin_lo", recount.get("auc_difference_lo"))
    _num(meta, "auc_margin_hi", recount.get("auc_difference_hi"))
    _num(meta, "required_margin", C.MIN_AUC_MARGIN)
    return _verdict_check(record, served, recount["verdict"], recount["reasons"], meta)


# ------------------------------------------------------------------------------------ segments
class SegmentsConfig(dg.Config):
    k: int = 0  # 0: chosen by silhouette and bootstrap stability; > 0: a business choice (said in the metadata)
    random_state: int = 0


@dg.asset(
    key="segments",
    deps=["customer_features"],
    pool=WRITER_POOL,
    kinds={"scikitlearn", "parquet"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, "segments.py", "contract.py", "runs.py", "sql/segment_coverage.sql",
                              params=config_defaults(SegmentsConfig)),
    description="Customer segments: rules (no net spend, new, one-time buyers), then K-Means on repeat buyers' "
    "log-scaled RFM with k chosen by silhouette and stability, named from profile thresholds; table "
    "`customer_segments`, published only when it labels every customer exactly once.",
    metadata={"dagster/column_schema": column_schema(C.SEGMENT_COLUMNS), "dagster/table_name": C.SEGMENTS_TABLE},
)
def segments(context: dg.AssetExecutionContext, config: SegmentsConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import segments as seg

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=lambda: seg.outputs_exist(lake))
    if previous is not None:
        seg.catalog_table(warehouse)
        return previous
    customers = warehouse.query_df(f"SELECT * FROM {CUSTOMER_FEATURES.name}")
    record, run = seg.run_and_publish(warehouse, customers, seg.SegmentSettings(k=config.k or None,
                                                                                random_state=config.random_state))
    meta = _status_metadata(record)
    meta["thresholds"] = dg.MetadataValue.json(seg.thresholds())
    if run is None:
        context.log.warning(f"segments: {meta['message']}")
    else:
        if record["problems"]:
            context.log.error("segments NOT published: " + "; ".join(record["problems"]))
        meta["problems"] = dg.MetadataValue.json(record["problems"])
        meta["k"] = dg.MetadataValue.int(run.k)
        meta["k_reason"] = run.k_reason
        _num(meta, "silhouette_k", run.silhouettes.get(run.k))
        meta["k_choice"] = records_table(run.k_choice, [("k", "int"), ("silhouette", "float"),
                                                         ("stability_ari", "float"), ("stability_ari_min", "float")])
        meta["profiles"] = records_table(run.profiles.to_dict("records"), [
            ("segment", "string"), ("customers", "int"), ("share", "float"), ("recency_days_median", "float"),
            ("frequency_median", "float"), ("monetary_median", "float"), ("avg_basket_median", "float"),
            ("monetary_total", "float")])
        meta["segment_sizes"] = dg.MetadataValue.json(record["sizes"])
        meta["excluded_no_net_spend"] = dg.MetadataValue.int(run.n_excluded)
        meta["train_seconds"] = dg.MetadataValue.float(run.train_seconds)
        meta["eval_seconds"] = dg.MetadataValue.float(run.eval_seconds)
    published = seg.published(lake)
    meta.update(_model_table_metadata(warehouse, published, C.SEGMENTS_TABLE, C.SEGMENT_COLUMNS, "customer_id",
                                      seg.SEGMENTS_PREFIX))
    if published and lake.exists(seg.PLOT_KEY):
        meta["pca_plot"] = dg.MetadataValue.path(lake.uri(seg.PLOT_KEY))
    return _model_result(meta, record)


@_model_check(
    "segments", "segments", reads=(CUSTOMER_FEATURES.prefix,),
    description="Counted again from the published tables: every customer of customer_features has exactly "
    "one named segment, only customers with net spend are clustered; warns when there are too few customers",
)
def segments_cover_customers(warehouse: Warehouse, seg, record: dict) -> dg.AssetCheckResult:  # noqa: ANN001
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
    metadata={"dagster/column_schema": column_schema(C.VIP_COLUMNS), "dagster/table_name": C.VIP_VIEW},
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
    time_cut_days: int = C.TIME_CUT_DAYS
    recent_days: int = C.RECENT_DAYS


def _als_interactions(warehouse: Warehouse):  # noqa: ANN202
    from ecommerce_platform.ml.recommender import INTERACTION_COLUMNS

    return warehouse.query_df(f"SELECT {INTERACTION_COLUMNS} FROM {USER_ITEM_INTERACTIONS.name}")


@dg.asset(
    key="als_model",
    deps=["user_item_interactions", "clean_parquet"],
    pool=WRITER_POOL,
    kinds={"python", "numpy"},
    code_version=code_version(PACKAGE, "recommender.py", "contract.py", "metrics.py", "runs.py", "sql/product_catalog.sql",
                              params=config_defaults(ALSConfig)),
    description="Recommender in two modes (discovery: ALS + recent popularity; next-basket: repeat + ALS), "
    "evaluated on a global time cut and each customer's last invoice against popularity, recent popularity, "
    "item-kNN and repeat-most-bought; served only if each mode beats its strongest baseline.",
)
def als_model(context: dg.AssetExecutionContext, config: ALSConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import recommender as rec

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=lambda: rec.outputs_exist(lake))
    if previous is not None:
        return previous
    record, run = rec.run_and_publish(lake, _als_interactions(warehouse), lambda: rec.product_catalog(warehouse),
                                      rec.ALSSettings(min_invoices=config.min_invoices, time_cut_days=config.time_cut_days,
                                                      recent_days=config.recent_days))
    meta = _status_metadata(record)
    if run is None:
        context.log.warning(f"als_model: {meta['message']}")
        return _model_result(meta, record)
    p = f"precision_at_{C.K}"
    tc = run.results[rec.TIME_CUT]
    _log_verdict(context, "als_model", record, "; ".join(
        f"{mode} {p} {r['precision']:.4f} vs {r['strongest']} {r['baseline_precision']:.4f}" for mode, r in tc.items()))
    rows = []
    for ev, modes in run.results.items():
        suffix = "" if ev == rec.TIME_CUT else f"_{ev}"
        for mode, r in modes.items():
            mk = rec.mode_key(mode)
            _num(meta, f"{mk}{suffix}_{p}", r["precision"])
            for method, m in r["metrics"].items():
                if method != "model":
                    _num(meta, f"{mk}{suffix}_{p}_{method}", m[p])
                rows.append({"evaluation": ev, "mode": mode, "method": method, **m})
            _num(meta, f"{mk}{suffix}_lift", r["lift"])
            _num(meta, f"{mk}{suffix}_margin_lo", r["lo"])
            _num(meta, f"{mk}{suffix}_margin_hi", r["hi"])
            meta[f"{mk}{suffix}_strongest_baseline"] = r["strongest"]
    cols = [("evaluation", "string"), ("mode", "string"), ("method", "string"), (p, "float"),
            (f"recall_at_{C.K}", "float"), (f"map_at_{C.K}", "float"), ("coverage", "float"), ("users", "int")]
    meta.update({
        "min_lift": dg.MetadataValue.json(C.MIN_LIFT),
        "blend_weights": dg.MetadataValue.json({m: float(w) for m, w in run.weights.items()}),
        "gate_failures": dg.MetadataValue.json(run.gate_failures),
        "metrics": records_table(rows, cols),
        "validation": dg.MetadataValue.json(runs.json_safe(run.validation)),
        "params": dg.MetadataValue.json(dict(run.params.__dict__)),
        "split": dg.MetadataValue.json(runs.json_safe(run.split_info)),
        "n_users": dg.MetadataValue.int(int(run.model.user_factors.shape[0])),
        "n_items": dg.MetadataValue.int(int(run.model.item_factors.shape[0])),
        "train_seconds": dg.MetadataValue.float(run.train_seconds),
        "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
        "tuning_seconds": dg.MetadataValue.float(run.tuning_seconds),
        "dagster/uri": dg.MetadataValue.path(lake.uri(rec.CURRENT_PREFIX if run.served else rec.CANDIDATE_PREFIX)),
    })
    return _model_result(meta, record)


@_model_check(
    "als_model", "recommender", reads=(USER_ITEM_INTERACTIONS.prefix,),
    description=f"Counted again from user_item_interactions: in both modes, on the global time cut and on each "
    f"customer's last invoice, precision@{C.K} beats {C.MIN_LIFT} x the strongest baseline (popularity, recent "
    f"popularity, item-kNN, repeat-most-bought), the {C.CONFIDENCE:.0%} bootstrap interval of the difference "
    "above 0; the served model is this run's. Warns when too few customers to decide or too little data",
)
def als_beats_popularity(warehouse: Warehouse, rec, record: dict) -> dg.AssetCheckResult:  # noqa: ANN001
    lake = warehouse.lake
    served = rec.served_run_id(lake)
    recount = rec.recount(lake, _als_interactions(warehouse), record)
    if "problem" in recount:
        return dg.AssetCheckResult(passed=False, metadata={"problem": recount["problem"]})
    p = f"precision_at_{C.K}"
    meta: dict = {}
    for ev, modes in recount["results"].items():
        suffix = "" if ev == rec.TIME_CUT else f"_{ev}"
        for mode, r in modes.items():
            mk = rec.mode_key(mode)
            _num(meta, f"{mk}{suffix}_{p}", r["precision"])
            _num(meta, f"reported_{mk}{suffix}_{p}", record["results"][ev][mode]["precision"])
            for b, v in r["baselines"].items():
                _num(meta, f"{mk}{suffix}_{p}_{b}", v)
                _num(meta, f"reported_{mk}{suffix}_{p}_{b}", record["results"][ev][mode]["metrics"][b][p])
            _num(meta, f"{mk}{suffix}_margin_lo", r["lo"])
    return _verdict_check(record, served, recount["verdict"], recount["reasons"], meta)


# ------------------------------------------------------------------------------------ sales forecast
class SalesForecastConfig(dg.Config):
    horizon_weeks: int = 8
    backtest_weeks: int = 12
    validation_weeks: int = 12
    top_countries: int = 4


def _forecast_settings(config: SalesForecastConfig):  # noqa: ANN202
    from ecommerce_platform.ml.forecast import ForecastSettings

    return ForecastSettings(horizon_weeks=config.horizon_weeks, backtest_weeks=config.backtest_weeks,
                            validation_weeks=config.validation_weeks, top_countries=config.top_countries)


@dg.asset(
    key="sales_forecast",
    deps=["daily_sales", "daily_sales_by_country"],
    pool=WRITER_POOL,
    kinds={"python", "numpy", "parquet"},
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, "forecast.py", "contract.py", "metrics.py", "runs.py", "sql/forecast_series.sql",
                              params=config_defaults(SalesForecastConfig)),
    description="Daily and weekly net revenue (total and largest countries) 8 weeks ahead with prediction "
    "intervals; rolling-origin backtest against seasonal naive and a moving average; table `sales_forecast`, "
    "served only if it beats seasonal naive.",
    metadata={"dagster/column_schema": column_schema(C.FORECAST_COLUMNS), "dagster/table_name": C.FORECAST_TABLE},
)
def sales_forecast(context: dg.AssetExecutionContext, config: SalesForecastConfig, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.ml import forecast as fc

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=lambda: fc.outputs_exist(lake))
    if previous is not None:
        fc.catalog_table(warehouse)
        return previous
    settings = _forecast_settings(config)
    record, run = fc.run_and_publish(warehouse, warehouse.query_df(fc.series_sql(settings.top_countries)), settings)
    meta = _status_metadata(record)
    meta["horizon_weeks"] = dg.MetadataValue.int(config.horizon_weeks)
    if run is None:
        context.log.warning(f"sales_forecast: {meta['message']}")
    else:
        t = run.total
        _log_verdict(context, "sales_forecast", record, f"WAPE {t.wapes['model']:.4f} vs seasonal naive "
                     f"{t.wapes['seasonal_naive']:.4f}")
        _num(meta, "wape", t.wapes["model"])
        _num(meta, "wape_seasonal_naive", t.wapes["seasonal_naive"])
        _num(meta, "wape_moving_average", t.wapes["moving_average"])
        _num(meta, "wape_vs_seasonal_naive", t.wapes["model"] / t.wapes["seasonal_naive"])
        _num(meta, "mase", t.mase)
        _num(meta, "interval_coverage", t.coverage)
        _num(meta, "interval_coverage_weekly", t.coverage_weekly)
        _num(meta, "interval", settings.interval)
        _num(meta, "wape_difference_lo", run.figures["wape_difference_lo"])
        _num(meta, "wape_difference_hi", run.figures["wape_difference_hi"])
        rows = [{"series": r.name, "model": r.config.name, "wape": r.wapes["model"],
                 "wape_seasonal_naive": r.wapes["seasonal_naive"], "wape_moving_average": r.wapes["moving_average"],
                 "weekly_wape": r.test.weekly_wapes()["model"],
                 "weekly_wape_seasonal_naive": r.test.weekly_wapes()["seasonal_naive"],
                 "mase": r.mase, "interval_coverage": r.coverage} for r in run.results]
        meta.update({
            "origin": run.origin.isoformat(),
            "backtest": dg.MetadataValue.json({"weeks": settings.backtest_weeks, "horizon_days": 7,
                                               "validation_weeks": settings.validation_weeks}),
            "series": records_table(rows, [("series", "string"), ("model", "string"),
                                            *((k, "float") for k in list(rows[0])[2:])]),
            "gate_failures": dg.MetadataValue.json(run.reasons),
            "train_seconds": dg.MetadataValue.float(run.train_seconds),
            "eval_seconds": dg.MetadataValue.float(run.eval_seconds),
            "plot": dg.MetadataValue.path(lake.uri(f"{fc.CURRENT_PREFIX if record['status'] == runs.SERVED else fc.CANDIDATE_PREFIX}/forecast.png")),
        })
    meta.update(_model_table_metadata(warehouse, bool(lake.list(fc.TABLE_PREFIX)), C.FORECAST_TABLE,
                                      C.FORECAST_COLUMNS, "series, granularity, period_start", fc.TABLE_PREFIX))
    return _model_result(meta, record)


@_model_check(
    "sales_forecast", "forecast", reads=(CLEAN_PREFIX,),
    description=f"Counted again from daily_sales / daily_sales_by_country and the run's published backtest: the "
    f"model's daily WAPE one week ahead beats seasonal naive's on the total (the {C.CONFIDENCE:.0%} interval of the "
    "difference, resampling backtest weeks, above 0) and is confidently worse on no country; the table serves "
    "this run. "
    "Warns when the backtest is too short to decide or the history too short",
)
def sales_forecast_beats_seasonal_naive(warehouse: Warehouse, fc, record: dict) -> dg.AssetCheckResult:  # noqa: ANN001
    lake = warehouse.lake
    served = fc.served_run_id(lake)
    recount = fc.recount(warehouse, record)
    if "problem" in recount:
        return dg.AssetCheckResult(passed=False, metadata={"problem": recount["problem"]})
    meta: dict = {}
    for name, w in recount["series"].items():
        _num(meta, f"wape_{name}", w["wape"])
        _num(meta, f"wape_seasonal_naive_{name}", w["wape_seasonal_naive"])
    _num(meta, "reported_wape", record.get("wape"))
    _num(meta, "wape_difference_lo", recount.get("wape_difference_lo"))
    _num(meta, "wape_difference_hi", recount.get("wape_difference_hi"))
    if record["status"] == runs.SERVED:
        table_runs = warehouse.query_df(f"SELECT DISTINCT run_id FROM {C.FORECAST_TABLE}")["run_id"].tolist()
        if table_runs != [record["run_id"]]:
            recount["reasons"].append(f"the table {C.FORECAST_TABLE} serves runs {table_runs}, not {record['run_id']}")
            recount["verdict"] = "fail"
    return _verdict_check(record, served, recount["verdict"], recount["reasons"], meta)


ASSETS = [invoice_features, customer_features, user_item_interactions, classifier, segments, vip_transactions,
          als_model, sales_forecast]
CHECKS = [classifier_beats_baseline, segments_cover_customers, als_beats_popularity, sales_forecast_beats_seasonal_naive]
