"""RAG layer: ``product_knowledge`` (facts per product, SQL in the warehouse over the analytics view
``sale_lines``; table + Markdown), ``faiss_index`` (per-product chunks, MiniLM vectors through the
``embeddings`` resource, FAISS index published only when retrieval evaluation passes) and
``qa_evaluation`` (``ecommerce ask`` asked its evaluation questions: accuracy per family, refusal
precision and recall, lookup hit@1), and the checks that guard them."""


import json

import dagster as dg

from ecommerce_platform.metadata_tables import column_schema, records_table
from ecommerce_platform.operations import ENGINE_TAG, WRITER_POOL
from ecommerce_platform.rag.index import MIN_EVAL_QUESTIONS, MIN_HIT_AT_1, MIN_HIT_AT_5
from ecommerce_platform.rag.knowledge import KNOWLEDGE_COLUMNS, KNOWLEDGE_PREFIX, KNOWLEDGE_TABLE
from ecommerce_platform.recompute import (
    check_fingerprint,
    code_version,
    data_version,
    files_exist,
    passed_before,
    previous_if_fresh,
    with_fingerprint,
)
from ecommerce_platform.resources.embeddings import Embeddings, model_version
from ecommerce_platform.resources.warehouse import Warehouse

PACKAGE = "ecommerce_platform.rag"
PREVIEW_ROWS = 5
KNOWLEDGE_SQL = ("sql/basket_ids.sql", "sql/half_pairs.sql", "sql/product_knowledge.sql")


def _rate(meta: dict, key: str, value) -> None:  # noqa: ANN001
    if value is not None:
        meta[key] = dg.MetadataValue.float(round(float(value), 4))


# ------------------------------------------------------------------------------------ product_knowledge
@dg.asset(
    key="product_knowledge",
    deps=["sale_lines", "clean_parquet"],
    pool=WRITER_POOL,
    kinds={"sql", "markdown"},  # + the warehouse's engine (operations.with_engine_kinds)
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, "knowledge.py", *KNOWLEDGE_SQL),
    description="One document of facts per product (units, gross sales, returns and net revenue as the "
    "analytics views count them; prices, customers, countries, co-purchases) aggregated in SQL; table "
    "`product_knowledge` + a readable Markdown file in rag/.",
    metadata={"dagster/column_schema": column_schema(KNOWLEDGE_COLUMNS), "dagster/table_name": KNOWLEDGE_TABLE},
)
def product_knowledge(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.rag.knowledge import KNOWLEDGE_MARKDOWN, build_knowledge, catalog_table

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=files_exist(lake, KNOWLEDGE_PREFIX, KNOWLEDGE_MARKDOWN))
    if previous is not None:
        catalog_table(warehouse)
        return previous
    result = build_knowledge(warehouse)
    context.log.info(f"product_knowledge: {result.products:,} products in {result.engine_seconds:.2f} s")
    top = warehouse.query_df(f"SELECT * FROM {KNOWLEDGE_TABLE} ORDER BY net_revenue DESC, stock_code "
                             f"LIMIT {PREVIEW_ROWS}")
    totals = warehouse.query_df(
        f"SELECT sum(units_sold) AS units_sold, sum(gross_sales) AS gross_sales, "
        f"sum(returns_value) AS returns_value, sum(net_revenue) AS net_revenue FROM {KNOWLEDGE_TABLE}").iloc[0]
    preview_cols = [(c, t) for c, t, _ in KNOWLEDGE_COLUMNS if c not in ("bought_with", "other_names", "top_countries")]
    return dg.MaterializeResult(metadata={
        "dagster/column_schema": column_schema(KNOWLEDGE_COLUMNS),
        "dagster/row_count": dg.MetadataValue.int(result.products),
        "dagster/table_name": warehouse.table_name(KNOWLEDGE_TABLE),
        "dagster/uri": dg.MetadataValue.path(lake.uri(KNOWLEDGE_PREFIX)),
        "preview": records_table(top.to_dict("records"), preview_cols),
        "markdown_uri": dg.MetadataValue.path(lake.uri(KNOWLEDGE_MARKDOWN)),
        "markdown_chars": dg.MetadataValue.int(result.markdown_chars),
        "units_sold": dg.MetadataValue.int(int(totals["units_sold"] or 0)),
        "gross_sales_gbp": dg.MetadataValue.float(round(float(totals["gross_sales"] or 0), 2)),
        "returns_gbp": dg.MetadataValue.float(round(float(totals["returns_value"] or 0), 2)),
        "net_revenue_gbp": dg.MetadataValue.float(round(float(totals["net_revenue"] or 0), 2)),
        "engine_seconds": dg.MetadataValue.float(result.engine_seconds),
    })


@dg.asset_check(
    asset="product_knowledge", blocking=True,
    description="Counted again from the analytics view sale_lines: the same products (those with a sale), "
    "and for each the same units sold and returned, gross sales, returns, net revenue and orders",
)
def product_knowledge_matches_sales(warehouse: Warehouse) -> dg.AssetCheckResult:
    from ecommerce_platform.rag.knowledge import compare_with_sales

    diff = compare_with_sales(warehouse)
    return dg.AssetCheckResult(passed=not diff["problems"], metadata={
        "products": dg.MetadataValue.int(diff["products"]),
        "products_with_a_sale": dg.MetadataValue.int(diff["products_with_a_sale"]),
        "products_differing": dg.MetadataValue.int(diff["products_differing"]),
        "problems": dg.MetadataValue.json(diff["problems"][:20]),
        "examples": dg.MetadataValue.json(diff["examples"][:5]),
    })


# ------------------------------------------------------------------------------------ faiss_index
FAISS_FILES = ("index.py", "retrieval.py", "evaluation.py", "knowledge.py", "eval_questions.json")


@dg.asset(
    key="faiss_index",
    deps=["product_knowledge"],
    pool=WRITER_POOL,
    kinds={"faiss", "onnx", "python"},
    code_version=code_version(PACKAGE, *FAISS_FILES, params={"model": model_version()}),
    description="FAISS index of per-product chunks embedded with all-MiniLM-L6-v2 (the `embeddings` "
    "resource), metadata as JSON (no pickle); published (what `ecommerce ask` serves) only when retrieval "
    f"evaluation passes: hit@5 >= {MIN_HIT_AT_5}, hit@1 >= {MIN_HIT_AT_1}.",
)
def faiss_index(context: dg.AssetExecutionContext, warehouse: Warehouse, embeddings: Embeddings) -> dg.MaterializeResult:
    from ecommerce_platform.rag.index import INDEX_PREFIX, PUBLISHED, build_index, outputs_exist
    from ecommerce_platform.rag.knowledge import read_knowledge

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=lambda: outputs_exist(lake))
    if previous is not None:
        return previous
    record = build_index(lake, read_knowledge(warehouse), embeddings)
    meta: dict = {"status": record["status"], "promoted": record["status"] == PUBLISHED,
                  "build_id": record["build_id"], "served_build_id": record.get("served_build_id") or "none"}
    if "missing" in record:
        meta["missing"] = dg.MetadataValue.json(record["missing"])
        meta["message"] = f"too little to build or evaluate an index honestly: {record['message']}; nothing new is served"
        context.log.warning(f"faiss_index: {meta['message']}")
    if record["status"] != PUBLISHED and "failures" in record:
        context.log.error("faiss_index NOT published: " + "; ".join(record["failures"]))
        meta["failures"] = dg.MetadataValue.json(record["failures"])
    built = record.get("meta")
    if built:
        ev = built["evaluation"]
        _rate(meta, "hit@1", ev["hit@1"])
        _rate(meta, "hit@5", ev["hit@5"])
        rows = [{"questions": name, "n": ev[key]["questions"], "hit@1": ev[key]["hit@1"], "hit@5": ev[key]["hit@5"]}
                for name, key in (("hand-written", "hand"), ("generated (seeded)", "generated"), ("by name", "kind_name"),
                                  ("by loose name", "kind_loose"), ("by stock code", "kind_code"))]
        meta.update({
            "products": dg.MetadataValue.int(built["products"]),
            "chunks": dg.MetadataValue.int(built["chunks"]),
            "dimension": dg.MetadataValue.int(built["dimension"]),
            "eval_questions": dg.MetadataValue.int(ev["questions"]),
            "evaluation": records_table(rows, [("questions", "string"), ("n", "int"), ("hit@1", "float"), ("hit@5", "float")]),
            "misses": records_table(ev["misses"][:10], [("question", "string"), ("expected", "string"), ("top", "string"),
                                                 ("rank", "int")]),
            "embedded_now": dg.MetadataValue.int(built["embedded"]),
            "embeddings_from_cache": dg.MetadataValue.int(built["from_cache"]),
            "embedding_seconds": dg.MetadataValue.float(built["embedding_seconds"]),
            "build_seconds": dg.MetadataValue.float(built.get("build_seconds", 0.0)),
            "model": dg.MetadataValue.json(built["model"]),
        })
    if record["status"] == PUBLISHED or record.get("served_build_id"):
        meta["dagster/uri"] = dg.MetadataValue.path(lake.uri(INDEX_PREFIX))
    if record.get("uri") and record["status"] != PUBLISHED:
        meta["candidate_uri"] = dg.MetadataValue.path(record["uri"])
    return dg.MaterializeResult(metadata=meta, data_version=data_version(record["build_id"], record.get("served_build_id")))


@dg.asset_check(
    asset="faiss_index", blocking=True,
    description=f"The published index is this build's, and asked the evaluation questions again (hand-written, "
    f"and generated from product_knowledge) it finds the right product: hit@5 >= {MIN_HIT_AT_5}, hit@1 >= "
    f"{MIN_HIT_AT_1}; warns when there are too few products or questions (< {MIN_EVAL_QUESTIONS})",
)
def faiss_index_retrieval_quality(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                                  embeddings: Embeddings) -> dg.AssetCheckResult:
    from ecommerce_platform.rag.index import INDEX_PREFIX, INSUFFICIENT, read_record

    lake = warehouse.lake
    record = read_record(lake)
    if record is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "faiss_index has no build recorded in the lake"})
    if record["status"] == INSUFFICIENT:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={
            "status": INSUFFICIENT, "missing": dg.MetadataValue.json(record["missing"]),
            "served_build_id": record.get("served_build_id") or "none",
            "message": "too little to build or evaluate an index honestly: nothing new is served"})
    fingerprint = check_fingerprint(context, code_version(PACKAGE, *FAISS_FILES, params={"model": model_version()}),
                                    record, {p: lake.list_versions(p) for p in (INDEX_PREFIX, KNOWLEDGE_PREFIX)})
    return passed_before(context, fingerprint) or with_fingerprint(
        _judge_retrieval(record, warehouse, embeddings), fingerprint)


def _judge_retrieval(record: dict, warehouse: Warehouse, embeddings: Embeddings) -> dg.AssetCheckResult:
    from ecommerce_platform.rag.index import reevaluate

    result = reevaluate(warehouse.lake, warehouse, embeddings)
    failures = list(result["failures"])
    if result["served_build_id"] != record["build_id"]:
        failures.append(f"the published index ({result['served_build_id'] or 'none'}) is not this build's "
                        f"({record['build_id']}, {record['status']})")
    meta: dict = {"status": record["status"], "build_id": record["build_id"],
                  "served_build_id": result["served_build_id"] or "none", "failures": dg.MetadataValue.json(failures),
                  "questions": dg.MetadataValue.int(result["evaluation"].get("questions", 0))}
    _rate(meta, "hit@1", result["evaluation"].get("hit@1"))
    _rate(meta, "hit@5", result["evaluation"].get("hit@5"))
    return dg.AssetCheckResult(passed=not failures, metadata=meta)


# ------------------------------------------------------------------------------------ qa_evaluation
QA_FILES = ("qa.py", "questions.py", "answer.py", "retrieval.py", "knowledge.py", "qa_evaluation.py",
            "qa_questions.json", "sql/qa_ranking.sql", "sql/qa_totals.sql", "sql/qa_copurchase.sql")
QA_RECHECK_EVERY = 10  # the check asks every 10th question again and compares with the published report


def _qa_thresholds() -> dict:
    from ecommerce_platform.rag.qa_evaluation import THRESHOLDS

    return THRESHOLDS


@dg.asset(
    key="qa_evaluation",
    deps=["faiss_index", "product_knowledge", "sale_lines", "clean_parquet"],
    pool=WRITER_POOL,
    kinds={"python", "sql"},  # + the warehouse's engine (operations.with_engine_kinds)
    tags={ENGINE_TAG: "warehouse"},
    code_version=code_version(PACKAGE, *QA_FILES, params={"model": model_version()}),
    description="`ecommerce ask` asked its evaluation questions (qa_questions.json: product lookups, rankings, "
    "totals, return rates, co-purchases, a product's figures, which countries, comparisons, questions the data "
    "cannot answer), each answer judged against the figure computed from the clean table: accuracy per family, "
    "refusal precision and recall, lookup hit@1; report JSON in rag/qa_evaluation/.",
)
def qa_evaluation(context: dg.AssetExecutionContext, warehouse: Warehouse, embeddings: Embeddings) -> dg.MaterializeResult:
    from ecommerce_platform.rag.qa import Context
    from ecommerce_platform.rag.qa_evaluation import (
        QA_LAST_RUN,
        QA_REPORT,
        applicability,
        evaluate,
        gate_failures,
        report_metadata,
    )
    from ecommerce_platform.rag.store import IndexNotBuilt, open_index

    lake = warehouse.lake
    previous = previous_if_fresh(context, exists=files_exist(lake, QA_LAST_RUN))
    if previous is not None:
        return previous

    def insufficient(missing: dict, message: str) -> dg.MaterializeResult:
        context.log.warning(f"qa_evaluation: {message}: nothing evaluated")
        lake.put_text(QA_LAST_RUN, json.dumps({"status": "insufficient_data", "missing": missing, "message": message}))
        return dg.MaterializeResult(
            metadata={"status": "insufficient_data", "missing": dg.MetadataValue.json(missing),
                      "message": f"{message}: the questions cannot be asked honestly of this data"},
            data_version=data_version("insufficient", missing))

    try:
        retriever, meta = open_index(lake, embeddings)
    except IndexNotBuilt as exc:
        return insufficient({"published product index": str(exc)}, "no product index to ask")
    fit = applicability(Context.load(warehouse, retriever))
    if not fit["applicable"]:
        return insufficient(fit["missing"], "the evaluation questions are about the reference data set")
    report = evaluate(warehouse, retriever)
    failures = gate_failures(report)
    report.update(status="passed" if not failures else "failed", failures=failures, index_build_id=meta.get("build_id"))
    text = json.dumps(report, indent=1, ensure_ascii=False, default=str)
    lake.put_text(QA_LAST_RUN, text)
    if failures:  # the published report stays the last one that met the targets
        context.log.error("qa_evaluation below its targets, report not published: " + "; ".join(failures))
    else:
        lake.put_text(QA_REPORT, text)
    md = report_metadata(report)
    md["last_run_uri"] = dg.MetadataValue.path(lake.uri(QA_LAST_RUN))
    if lake.exists(QA_REPORT):
        md["dagster/uri"] = dg.MetadataValue.path(lake.uri(QA_REPORT))
    return dg.MaterializeResult(metadata=_qa_metadata(md), data_version=data_version(
        report["accuracy"], report["questions"], meta.get("build_id")))


def _qa_metadata(md: dict) -> dict:
    out: dict = {}
    for key, value in md.items():
        if key == "families":
            out["accuracy_by_family"] = records_table(value, [("family", "string"), ("questions", "int"),
                                                       ("correct", "int"), ("accuracy", "float")])
        elif key == "misses":
            out["misses"] = records_table(value, [("family", "string"), ("question", "string"), ("why", "string")])
        elif key in ("failures", "thresholds"):
            out[key] = dg.MetadataValue.json(value)
        elif isinstance(value, float):
            out[key] = dg.MetadataValue.float(round(value, 4))
        elif isinstance(value, dg.MetadataValue) or isinstance(value, (int, str, bool)):
            out[key] = value
        elif value is None:
            out[key] = "n/a"
    return out


@dg.asset_check(
    asset="qa_evaluation", blocking=True,
    description="The last QA evaluation meets its targets, its figures counted again from its per-question "
    "results (analytic accuracy >= 0.90, refusal recall and precision >= 0.95, no invented figure in a "
    "refusal, lookup hit@1 >= 0.97, >= 150 questions), and every 10th question asked again gives the same "
    "verdict; warns when there was no index to evaluate",
)
def qa_evaluation_meets_targets(context: dg.AssetCheckExecutionContext, warehouse: Warehouse,
                                embeddings: Embeddings) -> dg.AssetCheckResult:
    from ecommerce_platform.rag.qa_evaluation import QA_LAST_RUN

    lake = warehouse.lake
    if not lake.exists(QA_LAST_RUN):
        return dg.AssetCheckResult(passed=False, metadata={"problem": "qa_evaluation has recorded no evaluation"})
    text = lake.get_text(QA_LAST_RUN)
    # asking questions again is the expensive part: once per change of the evaluation, the code or the
    # inputs (the index, the views, the clean table: the asset's parents), not once per run
    from ecommerce_platform.rag.index import INDEX_PREFIX
    from ecommerce_platform.schema import CLEAN_PREFIX

    fingerprint = check_fingerprint(context, code_version(PACKAGE, *QA_FILES, params={"model": model_version()}),
                                    text, {p: lake.list_versions(p) for p in (INDEX_PREFIX, KNOWLEDGE_PREFIX, CLEAN_PREFIX)})
    return passed_before(context, fingerprint) or with_fingerprint(
        _judge_qa_evaluation(json.loads(text), warehouse, embeddings), fingerprint)


def _judge_qa_evaluation(report: dict, warehouse: Warehouse, embeddings: Embeddings) -> dg.AssetCheckResult:
    from ecommerce_platform.rag.qa_evaluation import recheck

    if report.get("status") == "insufficient_data":
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.WARN, metadata={
            "status": "insufficient_data", "missing": dg.MetadataValue.json(report.get("missing")),
            "message": str(report.get("message"))})
    result = recheck(report, warehouse, embeddings, every=QA_RECHECK_EVERY)
    meta = {"failures": dg.MetadataValue.json(result["failures"]),
            "questions": dg.MetadataValue.int(result["recount"]["questions"]),
            "asked_again": dg.MetadataValue.int(result["asked_again"])}
    for key in ("analytic_accuracy", "refusal_recall", "refusal_precision", "lookup_hit@1"):
        _rate(meta, key, result["recount"].get(key))
    meta["invented_figures"] = dg.MetadataValue.int(result["recount"]["invented_figures"])
    return dg.AssetCheckResult(passed=not result["failures"], metadata=meta)


ASSETS = [product_knowledge, faiss_index, qa_evaluation]
CHECKS = [product_knowledge_matches_sales, faiss_index_retrieval_quality, qa_evaluation_meets_targets]
