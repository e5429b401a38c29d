"""Index build on generated products: per-product chunks, ONNX = sentence-transformers, round-trip
without pickle, the embedding cache (nothing changed: 0 embedded; 1 % changed: only those), retrieval."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecommerce_platform.rag.index import CACHE_KEY, INDEX_PREFIX, build_index, make_chunks
from ecommerce_platform.rag.knowledge import render_markdown
from ecommerce_platform_tests.rag.conftest import make_record

QUESTIONS = [
    {"question": "what is product 10007?", "stock_code": "10007", "kind": "code", "source": "hand"},
    {"question": "tell me about stock code 10150", "stock_code": "10150", "kind": "code", "source": "hand"},
]


@pytest.fixture
def lake(tmp_path):
    from ecommerce_platform.resources.lake import LocalLake

    return LocalLake(path=str(tmp_path / "data" / "lake"))


def test_chunks_never_cut_a_product(records):
    long = make_record(999, "LONG PRODUCT", bought_with="; ".join(f"2{i:04d} THING NUMBER {i} (2 orders)"
                                                                  for i in range(120)))
    recs = records[:20] + [long]
    chunks = make_chunks(render_markdown(recs), recs)
    assert {c["stock_code"] for c in chunks} == {r["stock_code"] for r in recs}
    for c in chunks:
        assert c["text"].count("## ") == 1  # exactly one product header per chunk
        assert c["text"].startswith(f"## {c['description']} (stock code {c['stock_code']})")
    parts = [c for c in chunks if c["stock_code"] == long["stock_code"]]
    assert len(parts) > 1 and all(len(c["text"]) <= 1600 for c in parts)
    assert sum(1 for c in chunks if c["stock_code"] != long["stock_code"]) == 20  # one chunk each


def test_onnx_matches_sentence_transformers(lake, model_cache):
    from sentence_transformers import SentenceTransformer

    from ecommerce_platform.rag.embedder import Embedder, ensure_model
    from ecommerce_platform.rag.minilm_onnx import model_dir

    _, onnx_path, tok_path, _ = ensure_model(lake, model_cache)
    texts = ["MEDIUM CERAMIC TOP STORAGE JAR", "what is product 84077?", "a",
             "WHITE HANGING HEART T-LIGHT HOLDER / CREAM HANGING HEART T-LIGHT HOLDER " * 3]
    ours = Embedder(onnx_path, tok_path).embed(texts, batch_size=3)  # padded batch + a batch of one
    ref = SentenceTransformer(str(model_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    cos = (ours * ref).sum(axis=1)
    assert ours.shape == (4, 384) and np.all(cos > 0.999), cos


def test_build_round_trip_cache_and_retrieval(lake, records, model_cache):
    import faiss

    meta = build_index(lake, records, model_cache, questions=QUESTIONS)
    assert (meta["products"], meta["chunks"], meta["dimension"]) == (200, 200, 384)
    assert meta["embedded"] == 200 and meta["from_cache"] == 0 and not meta["reused"]
    assert meta["evaluation"]["hit@1"] == 1.0

    # round trip: FAISS's own format and JSON/npz, nothing pickled anywhere in the rag zone
    for key in lake.list("rag"):
        assert not lake.get_bytes(key)[:2] == b"\x80\x04", key
    raw = lake.get_bytes(f"{INDEX_PREFIX}/index.faiss")
    index = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))
    assert index.ntotal == 200 and index.d == 384
    chunks = json.loads(lake.get_text(f"{INDEX_PREFIX}/chunks.json"))
    assert [c["stock_code"] for c in chunks] == [r["stock_code"] for r in records]
    with np.load(lake.uri(CACHE_KEY), allow_pickle=False) as z:
        assert z["vectors"].shape == (202, 384)  # 200 documents + 2 questions
    vec = index.reconstruct(0)
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-4

    # nothing changed: reused, nothing embedded
    again = build_index(lake, records, model_cache, questions=QUESTIONS)
    assert again["reused"] and again["embedded"] == 0
    # forced rebuild: every vector from the cache
    forced = build_index(lake, records, model_cache, questions=QUESTIONS, force=True)
    assert forced["embedded"] == 0 and forced["from_cache"] == 200 and forced["queries_embedded"] == 0
    # 1 % of the products renamed: only those are embedded
    changed = [dict(r) for r in records]
    for i in (3, 150):
        changed[i]["description"] = f"BRAND NEW NAME {i} LANTERN"
    after = build_index(lake, changed, model_cache, questions=QUESTIONS)
    assert after["embedded"] == 2 and after["from_cache"] == 198
    # figures changed but names not: the index is rebuilt (new facts), nothing embedded
    refigured = [dict(r, units_sold=r["units_sold"] + 1) for r in changed]
    figures = build_index(lake, refigured, model_cache, questions=QUESTIONS)
    assert not figures["reused"] and figures["embedded"] == 0
    assert json.loads(lake.get_text(f"{INDEX_PREFIX}/chunks.json"))[0]["facts"]["units_sold"] == refigured[0]["units_sold"]

    # retrieval from the published files: exact code, loose name
    from ecommerce_platform.rag.embedder import Embedder
    from ecommerce_platform.rag.retrieval import Retriever

    m = json.loads(lake.get_text(f"{INDEX_PREFIX}/meta.json"))
    emb = Embedder(lake.uri(m["model"]["onnx_key"]), lake.uri(m["model"]["tokenizer_key"]))
    r = Retriever.from_folder(lake.uri(INDEX_PREFIX), emb.embed)
    hits = r.search("what is product 10042?")
    assert hits[0].stock_code == "10042" and hits[0].code_match and len(hits) == 5
    target = records[77]
    words = target["description"].lower().split()
    loose = " ".join([words[1], words[0], words[2]])  # reordered, one word dropped
    assert target["stock_code"] in [h.stock_code for h in r.search(loose)]
    assert r.search("BRAND NEW NAME 150 LANTERN", k=1)[0].stock_code == changed[150]["stock_code"]
