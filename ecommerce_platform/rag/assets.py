"""RAG layer: ``product_knowledge`` (facts per product, SQL in the warehouse) and ``faiss_index``
(per-product chunks, MiniLM/ONNX vectors with a content-hash cache, FAISS index, retrieval evaluation)."""


import dagster as dg

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

OWNERS = ["team:data-platform"]
TAGS = {"layer": "rag"}
MIN_HIT_AT_5 = 0.95
MIN_HIT_AT_1 = 0.80


def _knowledge_schema() -> dg.TableSchema:
    from ecommerce_platform.rag.knowledge import KNOWLEDGE_COLUMNS

    return dg.TableSchema(columns=[dg.TableColumn(n, t, description=d) for n, t, d in KNOWLEDGE_COLUMNS])


def _cache_dir(lake: Lake) -> str:
    import os
    import tempfile

    return os.environ.get("ECOMMERCE_CACHE_DIR") or os.path.join(tempfile.gettempdir(), "ecommerce_rag_cache")


@dg.asset(
    key="product_knowledge",
    deps=["clean_parquet"],
    group_name="rag",
    kinds={"duckdb", "sql", "parquet", "markdown"},
    code_version="1",
    description="One document of facts per product (sales, revenue, prices, customers, countries, returns, "
    "co-purchases) aggregated in SQL from the clean zone; Parquet + a readable Markdown file in rag/.",
    owners=OWNERS,
    tags=TAGS,
    metadata={"table": "product_knowledge"},
)
def product_knowledge(context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.rag.knowledge import (
        KNOWLEDGE_MARKDOWN,
        KNOWLEDGE_PREFIX,
        KNOWLEDGE_TABLE,
        build_knowledge,
        render_product,
    )

    result = build_knowledge(warehouse, lake)
    if result.reused:
        context.log.info("clean zone and SQL unchanged: product knowledge reused")
    preview = warehouse.query_df(
        f"SELECT stock_code, description, units_sold, revenue, orders, customers, return_rate "
        f"FROM {KNOWLEDGE_TABLE} ORDER BY revenue DESC LIMIT 10", lake)
    top = warehouse.query_df(f"SELECT * FROM {KNOWLEDGE_TABLE} ORDER BY revenue DESC LIMIT 1", lake)
    from ecommerce_platform.rag.knowledge import records_from_frame

    sample = render_product(records_from_frame(top)[0]) if len(top) else "(no products)"
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": dg.MetadataValue.int(result.products),
            "products": dg.MetadataValue.int(result.products),
            "engine_seconds": dg.MetadataValue.float(result.engine_seconds),
            "markdown_chars": dg.MetadataValue.int(result.markdown_chars),
            "reused_previous_output": result.reused,
            "uri": dg.MetadataValue.path(lake.uri(KNOWLEDGE_PREFIX)),
            "markdown_uri": dg.MetadataValue.path(lake.uri(KNOWLEDGE_MARKDOWN)),
            "top_products_by_revenue": dg.MetadataValue.md(preview.to_markdown(index=False)),
            "sample_document": dg.MetadataValue.md(sample),
            "dagster/column_schema": _knowledge_schema(),
        },
        data_version=dg.DataVersion(result.fingerprint[:16]),
    )


@dg.asset(
    key="faiss_index",
    deps=["product_knowledge"],
    group_name="rag",
    kinds={"faiss", "onnx", "python"},
    code_version="1",
    description="FAISS index of per-product chunks embedded with all-MiniLM-L6-v2 (ONNX, content-hash "
    "cache), metadata as JSON (no pickle), evaluated by hit@1/hit@5 on product questions.",
    owners=OWNERS,
    tags=TAGS,
)
def faiss_index(context: dg.AssetExecutionContext, lake: Lake, warehouse: Warehouse) -> dg.MaterializeResult:
    from ecommerce_platform.rag.index import INDEX_PREFIX, build_index
    from ecommerce_platform.rag.knowledge import read_knowledge, register

    register(warehouse, lake)
    records = read_knowledge(warehouse, lake)
    if not records:
        raise dg.Failure("product_knowledge is empty: no product has a sale in the clean zone")
    meta = build_index(lake, records, _cache_dir(lake))
    ev = meta["evaluation"]
    if meta["reused"]:
        context.log.info("products, model and questions unchanged: index reused")
    rows = "\n".join(
        f"| {name} | {ev[key]['questions']} | {ev[key]['hit@1']} | {ev[key]['hit@5']} |"
        for name, key in (("hand-written", "hand"), ("generated (seeded)", "generated"),
                          ("by name", "kind_name"), ("by loose name", "kind_loose"), ("by stock code", "kind_code"))
    )
    misses = "\n".join(f"| {m['question']} | {m['expected']} | {m['top']} | {m['rank']} |" for m in ev["misses"][:10])
    return dg.MaterializeResult(
        metadata={
            "products": dg.MetadataValue.int(meta["products"]),
            "chunks": dg.MetadataValue.int(meta["chunks"]),
            "dimension": dg.MetadataValue.int(meta["dimension"]),
            "embedding_seconds": dg.MetadataValue.float(meta["embedding_seconds"]),
            "embedded_now": dg.MetadataValue.int(meta["embedded"]),
            "embeddings_from_cache": dg.MetadataValue.int(meta.get("from_cache", 0)),
            "build_seconds": dg.MetadataValue.float(meta["build_seconds"]),
            "reused_previous_output": meta["reused"],
            "hit@1": dg.MetadataValue.float(ev["hit@1"]),
            "hit@5": dg.MetadataValue.float(ev["hit@5"]),
            "eval_questions": dg.MetadataValue.int(ev["questions"]),
            "evaluation": dg.MetadataValue.md(
                "| questions | n | hit@1 | hit@5 |\n|---|---|---|---|\n" + rows
                + ("\n\n**misses (rank != 1)**\n\n| question | expected | top | rank |\n|---|---|---|---|\n" + misses
                   if misses else "")),
            "model": meta["model"]["name"] + " (onnxruntime)",
            "model_uri": dg.MetadataValue.path(lake.uri(meta["model"]["onnx_key"])),
            "uri": dg.MetadataValue.path(lake.uri(INDEX_PREFIX)),
        },
        data_version=dg.DataVersion(meta["fingerprint"][:16]),
    )


@dg.asset_check(asset="faiss_index", blocking=True,
                description=f"Retrieval finds the right product: hit@5 >= {MIN_HIT_AT_5}, hit@1 >= {MIN_HIT_AT_1}")
def faiss_index_retrieval_quality(lake: Lake) -> dg.AssetCheckResult:
    from ecommerce_platform.rag.index import read_meta

    meta = read_meta(lake)
    if meta is None:
        return dg.AssetCheckResult(passed=False, metadata={"problem": "no index metadata in the lake"})
    ev = meta["evaluation"]
    ok = (ev["questions"] > 0 and (ev["hit@5"] or 0) >= MIN_HIT_AT_5 and (ev["hit@1"] or 0) >= MIN_HIT_AT_1)
    return dg.AssetCheckResult(passed=bool(ok), metadata={
        "hit@1": ev["hit@1"], "hit@5": ev["hit@5"], "questions": ev["questions"]})
