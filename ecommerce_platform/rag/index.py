"""The product index: chunks of the Markdown knowledge file (split per product with
langchain-text-splitters, never across products), MiniLM vectors (the ``embeddings`` resource) of what
people search by, a FAISS inner-product index and its metadata, all in the lake's ``rag/`` zone without
pickle:

- ``rag/index/index.faiss``  FAISS's own format (``faiss.serialize_index`` bytes)
- ``rag/index/chunks.json``  one entry per chunk: stock code, description, search text, full facts
- ``rag/index/facts.json``   the facts of every indexed product (what ``ecommerce ask`` reads names and product
  answers from without loading the chunks or the model)
- ``rag/index/meta.json``    build id, products, chunks, dimension, model, timings, cache use, evaluation
- ``rag/index_last_build.json``  what the last build did (status, evaluation): the check reads it

Publication gate (``quality_failures``): a build is published (``rag/index``, what ``ecommerce ask``
serves) only when retrieval finds the right product for the evaluation questions (hit@5 >= MIN_HIT_AT_5,
hit@1 >= MIN_HIT_AT_1); otherwise it is kept in ``rag/index_candidate`` and the published index stays.
No product, or fewer than MIN_EVAL_QUESTIONS questions to evaluate it with: ``insufficient_data``.

Vectors come through the embedding cache of the ``embeddings`` resource (the deployment's data folder):
a rebuild embeds only texts it has not embedded before (changed products, new questions).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from datetime import datetime, timezone

from ecommerce_platform.rag.knowledge import KNOWLEDGE_MARKDOWN, render_markdown

INDEX_PREFIX = "rag/index"
CANDIDATE_PREFIX = "rag/index_candidate"
RECORD_KEY = "rag/index_last_build.json"
INDEX_FILES = ("meta.json", "chunks.json", "facts.json", "index.faiss")
INDEX_VERSION = "2"
MAX_CHUNK_CHARS = 1500
MIN_HIT_AT_5 = 0.95
MIN_HIT_AT_1 = 0.80
MIN_EVAL_QUESTIONS = 20  # fewer and hit rates say little
_HEADER_CODE = re.compile(r"\(stock code ([^()]+)\)\s*$")

PUBLISHED = "published"
REJECTED = "rejected"
INSUFFICIENT = "insufficient_data"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def embed_text(rec: dict) -> str:
    """What is embedded: what people search by, the name and its other names. The stock code is matched
    lexically (a vector of '85123A' means little) and the facts stay in ``text``: short texts keep
    embedding cheap (~8 tokens a product) and the vector about the name."""
    from ecommerce_platform.rag.knowledge import one_line

    parts = [one_line(rec["description"])]
    if rec.get("other_names"):
        parts.append(one_line(rec["other_names"]))
    return " / ".join(parts)


def search_text(rec: dict) -> str:
    """What the lexical (BM25) signal indexes: the names and the stock code."""
    return f"{embed_text(rec)} (stock code {rec['stock_code']})"


def make_chunks(markdown: str, records: list[dict]) -> list[dict]:
    """One chunk per product section of the knowledge file (``##`` header); a section longer than
    MAX_CHUNK_CHARS is split inside the product only, each piece keeping the product's header."""
    from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

    by_code = {r["stock_code"]: r for r in records}
    sections = MarkdownHeaderTextSplitter(
        headers_to_split_on=[("##", "product")], strip_headers=False
    ).split_text(markdown)
    inner = RecursiveCharacterTextSplitter(
        chunk_size=MAX_CHUNK_CHARS, chunk_overlap=0, separators=["\n- ", "\n", " ", ""]
    )
    chunks: list[dict] = []
    seen: set[str] = set()
    for doc in sections:
        head = doc.metadata.get("product")
        if not head:
            continue  # the file's introduction
        m = _HEADER_CODE.search(head)
        if not m or m.group(1) not in by_code:
            raise ValueError(f"knowledge file section {head!r}: no product with that stock code in the "
                             "knowledge table (rebuild product_knowledge)")
        code = m.group(1)
        seen.add(code)
        rec = by_code[code]
        text = doc.page_content.strip()
        pieces = [text]
        if len(text) > MAX_CHUNK_CHARS:
            first_line, _, body = text.partition("\n")
            pieces = [f"{first_line}\n{p.strip()}" for p in inner.split_text(body)]
        stext, etext = search_text(rec), embed_text(rec)
        for part, piece in enumerate(pieces):
            chunks.append({
                "id": len(chunks), "stock_code": code, "description": rec["description"], "part": part,
                "search_text": stext, "embed_text": etext, "text": piece, "content_hash": sha(piece)[:16], "facts": rec,
            })
    missing = set(by_code) - seen
    if missing:
        raise ValueError(f"{len(missing)} products of the knowledge table have no section in the knowledge "
                         f"file (e.g. {sorted(missing)[:3]}): rebuild product_knowledge")
    return chunks


# ---------------------------------------------------------------- gate and records

def quality_failures(evaluation: dict) -> list[str]:
    """Why an index must not be published (empty: it may)."""
    n = evaluation.get("questions", 0)
    h5, h1 = evaluation.get("hit@5"), evaluation.get("hit@1")
    if not n or h5 is None or h1 is None:
        return ["no evaluation question could be asked of the index"]
    failures = []
    if h5 < MIN_HIT_AT_5:
        failures.append(f"hit@5 {h5:.4f} < {MIN_HIT_AT_5} on {n} questions")
    if h1 < MIN_HIT_AT_1:
        failures.append(f"hit@1 {h1:.4f} < {MIN_HIT_AT_1} on {n} questions")
    return failures


def _json_safe(obj):  # noqa: ANN001, ANN202
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def read_record(lake) -> dict | None:  # noqa: ANN001
    return json.loads(lake.get_text(RECORD_KEY)) if lake.exists(RECORD_KEY) else None


def read_meta(lake, prefix: str = INDEX_PREFIX) -> dict | None:  # noqa: ANN001
    """The metadata of the published index (None: nothing published)."""
    key = f"{prefix}/meta.json"
    return json.loads(lake.get_text(key)) if lake.exists(key) else None


def served_build_id(lake) -> str | None:  # noqa: ANN001
    meta = read_meta(lake)
    return meta.get("build_id") if meta and all(lake.exists(f"{INDEX_PREFIX}/{f}") for f in INDEX_FILES) else None


def outputs_exist(lake) -> bool:  # noqa: ANN001
    record = read_record(lake)
    if record is None:
        return False
    return record.get("served_build_id") is None or served_build_id(lake) == record["served_build_id"]


def _write_record(lake, record: dict) -> dict:  # noqa: ANN001
    lake.put_text(RECORD_KEY, json.dumps(_json_safe(record), indent=1, sort_keys=True))
    return record


# ---------------------------------------------------------------- build

def evaluation_questions(records: list[dict]) -> list[dict]:
    """The hand-written questions (eval_questions.json) and those generated from ``records``."""
    from ecommerce_platform.rag import evaluation

    return evaluation.hand_written() + evaluation.generated(records)


def build_index(lake, records: list[dict], embeddings, markdown: str | None = None,  # noqa: ANN001
                questions: list[dict] | None = None) -> dict:
    """Build the index of ``records`` (the product_knowledge table), evaluate it, and publish it only if
    it passes ``quality_failures``. Returns the build's record (also written to RECORD_KEY): ``status``
    published / rejected / insufficient_data, the evaluation, the build's metadata."""
    import faiss
    import numpy as np

    from ecommerce_platform.rag import evaluation
    from ecommerce_platform.rag.retrieval import Retriever

    t_start = time.perf_counter()
    build_id = uuid.uuid4().hex[:12]
    base = {"build_id": build_id, "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "served_build_id": served_build_id(lake)}
    if not records:
        return _write_record(lake, {**base, "status": INSUFFICIENT, "missing": {"products": {"needed": 1, "found": 0}},
                                    "message": "products: needs 1, found 0"})
    if markdown is None:
        markdown = lake.get_text(KNOWLEDGE_MARKDOWN) if lake.exists(KNOWLEDGE_MARKDOWN) else render_markdown(records)
    chunks = make_chunks(markdown, records)
    if questions is None:
        questions = evaluation_questions(records)

    cache = embeddings.cache()
    vectors = cache.embed([c["embed_text"] for c in chunks])
    doc_embedded, doc_from_cache, doc_seconds = cache.embedded, cache.from_cache, cache.seconds
    index = faiss.IndexFlatIP(embeddings.dimension)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    # evaluation: hit@1 / hit@5 of the right product (question vectors come from the cache too)
    descriptions = {r["stock_code"]: r["description"] for r in records}
    retriever = Retriever(chunks, index, cache.embed)
    qvecs = cache.embed([q["question"] for q in questions])
    qvec = {q["question"]: v for q, v in zip(questions, qvecs)}
    report = evaluation.evaluate(lambda text: retriever.search(text, k=5, query_vector=qvec[text]),
                                 questions, descriptions)
    cache.save()
    model = {k: v for k, v in embeddings.describe().items() if k != "cache_dir"}
    meta = {
        "version": INDEX_VERSION,
        "build_id": build_id,
        "created_at": base["finished_at"],
        "model": model,
        "products": len(records),
        "chunks": len(chunks),
        "dimension": embeddings.dimension,
        "index_type": "IndexFlatIP (cosine of L2-normalised vectors)",
        "embedded": doc_embedded,
        "from_cache": doc_from_cache,
        "queries_embedded": cache.embedded - doc_embedded,
        "embedding_seconds": round(cache.seconds, 3),
        "document_embedding_seconds": round(doc_seconds, 3),
        "model_load_seconds": round(cache.load_seconds, 3),
        "evaluation": report,
        "thresholds": {"hit@5": MIN_HIT_AT_5, "hit@1": MIN_HIT_AT_1, "questions": MIN_EVAL_QUESTIONS},
    }
    if report["questions"] < MIN_EVAL_QUESTIONS:
        found = report["questions"]
        return _write_record(lake, {
            **base, "status": INSUFFICIENT, "meta": meta,
            "missing": {"evaluation questions about indexed products": {"needed": MIN_EVAL_QUESTIONS, "found": found}},
            "message": f"evaluation questions about indexed products: needs {MIN_EVAL_QUESTIONS}, found {found}"})
    failures = quality_failures(report)
    prefix = CANDIDATE_PREFIX if failures else INDEX_PREFIX
    staging = lake.staging_prefix(prefix)
    lake.put_bytes(f"{staging}/index.faiss", faiss.serialize_index(index).tobytes())
    lake.put_text(f"{staging}/chunks.json", json.dumps(chunks, ensure_ascii=False))
    lake.put_text(f"{staging}/facts.json", json.dumps([c["facts"] for c in chunks if c["part"] == 0], ensure_ascii=False))
    meta["build_seconds"] = round(time.perf_counter() - t_start, 3)
    lake.put_text(f"{staging}/meta.json", json.dumps(_json_safe(meta), indent=1, ensure_ascii=False))
    lake.publish_prefix(staging, prefix)
    return _write_record(lake, {**base, "status": REJECTED if failures else PUBLISHED, "failures": failures,
                                "meta": meta, "served_build_id": served_build_id(lake), "uri": lake.uri(prefix)})


def reevaluate(lake, warehouse, embeddings) -> dict:  # noqa: ANN001 - Lake, Warehouse, Embeddings
    """The published index asked the evaluation questions again: hand-written ones and those generated
    from the product_knowledge table (the facts it should hold, not its own chunks). Question vectors
    come through the embedding cache. Returns {served_build_id, evaluation, failures}."""
    from ecommerce_platform.rag import evaluation
    from ecommerce_platform.rag.knowledge import read_knowledge
    from ecommerce_platform.rag.store import IndexNotBuilt, open_index

    served = served_build_id(lake)
    if served is None:
        return {"served_build_id": None, "evaluation": {}, "failures": ["no index is published"]}
    records = read_knowledge(warehouse)
    questions = evaluation_questions(records)
    cache = embeddings.cache()
    try:
        retriever, _ = open_index(lake, embeddings, embed=cache.embed)
    except IndexNotBuilt as exc:
        return {"served_build_id": served, "evaluation": {}, "failures": [str(exc)]}
    qvecs = cache.embed([q["question"] for q in questions]) if questions else []
    qvec = {q["question"]: v for q, v in zip(questions, qvecs)}
    report = evaluation.evaluate(lambda text: retriever.search(text, k=5, query_vector=qvec[text]), questions,
                                 {r["stock_code"]: r["description"] for r in records})
    return {"served_build_id": served, "evaluation": report, "failures": quality_failures(report)}
