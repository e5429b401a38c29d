"""The product index: chunks of the Markdown knowledge file (split per product with
langchain-text-splitters, never across products), MiniLM vectors (ONNX) of what people search by, a FAISS
inner-product index and its metadata, all in the lake's ``rag/`` zone without pickle:

- ``rag/index/index.faiss``  FAISS's own format (``faiss.serialize_index`` bytes)
- ``rag/index/chunks.json``  one entry per chunk: stock code, description, search text, full facts
- ``rag/index/meta.json``    products, chunks, dimension, model, timings, cache use, evaluation
- ``rag/cache/embeddings.npz`` vectors keyed by sha256(model fingerprint + text): a rebuild embeds only
  texts it has not embedded before (changed products, new questions)
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from ecommerce_platform.rag.embedder import DIMENSION, model_keys
from ecommerce_platform.rag.knowledge import KNOWLEDGE_MARKDOWN, render_markdown

INDEX_PREFIX = "rag/index"
CACHE_KEY = "rag/cache/embeddings.npz"
INDEX_VERSION = "1"
MAX_CHUNK_CHARS = 1500
_HEADER_CODE = re.compile(r"\(stock code ([^()]+)\)\s*$")


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


# ---------------------------------------------------------------- embedding cache

class CachedEmbedder:
    """Vectors by sha256(model fingerprint + text); the ONNX model is loaded only if a text is missing."""

    def __init__(self, model_fp: str, load_embedder, vectors: dict[str, object] | None = None):  # noqa: ANN001
        self.model_fp = model_fp
        self._load = load_embedder
        self._embedder = None
        self.vectors = dict(vectors or {})
        self.embedded = 0
        self.from_cache = 0
        self.seconds = 0.0
        self.load_seconds = 0.0
        self.used: set[str] = set()

    def key(self, text: str) -> str:
        return sha(self.model_fp + "\0" + text)[:32]

    def embed(self, texts: list[str]):
        import numpy as np

        keys = [self.key(t) for t in texts]
        self.used.update(keys)
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        self.from_cache += len(texts) - sum(1 for k in keys if k in dict(todo))
        if todo:
            if self._embedder is None:
                t0 = time.perf_counter()
                self._embedder = self._load()
                self.load_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            vecs = self._embedder.embed([t for _, t in todo])
            self.seconds += time.perf_counter() - t0
            self.embedded += len(todo)
            for (k, _), v in zip(todo, vecs):
                self.vectors[k] = v
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.vstack([self.vectors[k] for k in keys]).astype(np.float32)

    def to_npz(self) -> bytes:
        import numpy as np

        keys = sorted(self.used)  # keep what the current index and questions use
        buf = io.BytesIO()
        np.savez(  # uncompressed: float vectors barely compress, and saving is 10x faster
            
            buf, keys=np.array(keys, dtype="<U32"), model=np.array(self.model_fp),
            vectors=np.vstack([self.vectors[k] for k in keys]).astype(np.float32) if keys
            else np.zeros((0, DIMENSION), dtype=np.float32),
        )
        return buf.getvalue()


def load_cache(lake, model_fp: str) -> dict:  # noqa: ANN001
    import numpy as np

    if not lake.exists(CACHE_KEY):
        return {}
    try:
        with np.load(io.BytesIO(lake.get_bytes(CACHE_KEY)), allow_pickle=False) as z:
            if str(z["model"]) != model_fp:
                return {}
            return dict(zip(z["keys"].tolist(), z["vectors"]))
    except (OSError, ValueError, KeyError):
        return {}  # a damaged cache only costs a full re-embed


# ---------------------------------------------------------------- build

def fingerprint(model_fp: str, chunks: list[dict], questions: list[dict]) -> str:
    h = hashlib.sha256(f"{INDEX_VERSION}|{model_fp}".encode())
    for c in chunks:
        # the chunk text renders every fact of the product, so its hash covers the facts too
        h.update(f"{c['stock_code']}|{c['content_hash']}|{c['search_text']}|{c['embed_text']}\n".encode())
    h.update(json.dumps(questions, sort_keys=True).encode())
    from ecommerce_platform.rag import evaluation, retrieval

    for module in (retrieval, evaluation):  # the stored evaluation depends on their code
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def read_meta(lake) -> dict | None:  # noqa: ANN001
    key = f"{INDEX_PREFIX}/meta.json"
    return json.loads(lake.get_text(key)) if lake.exists(key) else None


def build_index(lake, records: list[dict], cache_dir: str | Path, markdown: str | None = None,  # noqa: ANN001
                questions: list[dict] | None = None, force: bool = False) -> dict:
    """Build (or reuse) the index of ``records``; returns its metadata (``reused``: nothing changed)."""
    import faiss
    import numpy as np

    from ecommerce_platform.rag import evaluation
    from ecommerce_platform.rag.embedder import Embedder, ensure_model
    from ecommerce_platform.rag.minilm_onnx import model_fingerprint
    from ecommerce_platform.rag.retrieval import Retriever

    t_start = time.perf_counter()
    if markdown is None:
        markdown = lake.get_text(KNOWLEDGE_MARKDOWN) if lake.exists(KNOWLEDGE_MARKDOWN) else render_markdown(records)
    chunks = make_chunks(markdown, records)
    if questions is None:
        questions = evaluation.hand_written() + evaluation.generated(records)
    model_fp = model_fingerprint()
    fp = fingerprint(model_fp, chunks, questions)
    previous = read_meta(lake)
    if (not force and previous and previous.get("fingerprint") == fp
            and lake.exists(f"{INDEX_PREFIX}/index.faiss") and lake.exists(f"{INDEX_PREFIX}/chunks.json")
            and lake.exists(model_keys(model_fp)[0])):
        return {**previous, "reused": True, "embedded": 0, "queries_embedded": 0,
                "from_cache": previous.get("chunks", 0),
                "embedding_seconds": 0.0, "build_seconds": round(time.perf_counter() - t_start, 3)}

    fp_model, onnx_path, tok_path, model_built = ensure_model(lake, cache_dir)
    cached = CachedEmbedder(fp_model, lambda: Embedder(onnx_path, tok_path), load_cache(lake, fp_model))
    vectors = cached.embed([c["embed_text"] for c in chunks])
    doc_embedded, doc_from_cache, doc_seconds = cached.embedded, cached.from_cache, cached.seconds
    index = faiss.IndexFlatIP(DIMENSION)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))

    # evaluation: hit@1 / hit@5 of the right product (question vectors come from the cache too)
    descriptions = {r["stock_code"]: r["description"] for r in records}
    retriever = Retriever(chunks, index, cached.embed)
    qvecs = cached.embed([q["question"] for q in questions])
    qvec = {q["question"]: v for q, v in zip(questions, qvecs)}
    report = evaluation.evaluate(lambda text: retriever.search(text, k=5, query_vector=qvec[text]),
                                 questions, descriptions)

    lake.put_bytes(CACHE_KEY, cached.to_npz())
    meta = {
        "version": INDEX_VERSION,
        "fingerprint": fp,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "runtime": "onnxruntime",
                  "fingerprint": fp_model, "onnx_key": model_keys(fp_model)[0],
                  "tokenizer_key": model_keys(fp_model)[1], "built_now": model_built},
        "products": len(records),
        "chunks": len(chunks),
        "dimension": DIMENSION,
        "index_type": "IndexFlatIP (cosine of L2-normalised vectors)",
        "embedded": doc_embedded,
        "from_cache": doc_from_cache,
        "queries_embedded": cached.embedded - doc_embedded,
        "embedding_seconds": round(cached.seconds, 3),
        "document_embedding_seconds": round(doc_seconds, 3),
        "model_load_seconds": round(cached.load_seconds, 3),
        "evaluation": report,
        "reused": False,
    }
    staging = lake.staging_prefix(INDEX_PREFIX)
    lake.put_bytes(f"{staging}/index.faiss", faiss.serialize_index(index).tobytes())
    lake.put_text(f"{staging}/chunks.json", json.dumps(chunks, ensure_ascii=False))
    meta["build_seconds"] = round(time.perf_counter() - t_start, 3)
    lake.put_text(f"{staging}/meta.json", json.dumps(meta, indent=1, ensure_ascii=False))
    lake.publish_prefix(staging, INDEX_PREFIX)
    return meta
