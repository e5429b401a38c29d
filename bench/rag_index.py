"""Benchmark of the RAG layer on the real file, with the seed's way measured in the same run.

    .venv/bin/python bench/rag_index.py [--source data/reference/online_retail.parquet] [--data-dir DIR]
                                        [--seed-limit N] [--skip-seed]

Builds raw + clean + product_knowledge in a data dir first (timed separately; reused when --data-dir
holds them). Every build is a NEW Python process (imports and model load are counted):

1. full ``faiss_index`` build: empty rag zone and empty local cache (the ONNX graph is built from the
   weights, every product embedded, the evaluation questions embedded);
2. rebuild with nothing changed;
3. rebuild after 1 % of the products changed their name (only those are embedded);
4. query latency (retrieve + offline answer, in-process, warm) p50 / p95 over the evaluation questions;
5. ``ecommerce ask`` offline as a new process, start to printed answer (median of 5);
6. the seed's way: the Markdown knowledge file cut into 500-character chunks, ALL embedded with
   sentence-transformers (import + model load + encode, new process), FAISS flat index; plus
   sentence-transformers (torch) on the same short product texts our build embeds with ONNX.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _env(data_dir: Path, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ECOMMERCE_DEPLOYMENT")}
    env.update(ECOMMERCE_DATA_DIR=str(data_dir), ECOMMERCE_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _child(args: list[str], env: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"step {args} failed:\n{out.stderr[-3000:]}")
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- child steps (new processes)

def step_build(perturb: float) -> dict:
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.rag.index import build_index
    from ecommerce_platform.rag.knowledge import read_knowledge, render_markdown
    from ecommerce_platform.resources import build_lake, build_warehouse

    s = load_settings()
    lake, wh = build_lake(s), build_warehouse(s)
    records = read_knowledge(wh, lake)
    markdown = None
    if perturb:
        import random

        rng = random.Random(7)
        for i in rng.sample(range(len(records)), max(1, round(perturb * len(records)))):
            records[i] = dict(records[i], description=records[i]["description"] + " (NEW EDITION)")
        markdown = render_markdown(records)
    meta = build_index(lake, records, os.environ["ECOMMERCE_CACHE_DIR"], markdown=markdown)
    meta.pop("evaluation")
    return meta


def step_seed(limit: int | None, product_texts: bool) -> dict:
    t0 = time.perf_counter()
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from ecommerce_platform.config import load_settings

    s = load_settings()
    md = (Path(s.lake_dir) / "rag" / "product_knowledge.md").read_text(encoding="utf-8")
    chunks = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=0).split_text(md)
    n_all = len(chunks)
    if limit:
        chunks = chunks[:limit]
    t1 = time.perf_counter()
    import faiss
    from sentence_transformers import SentenceTransformer

    from ecommerce_platform.rag.minilm_onnx import model_dir

    model = SentenceTransformer(str(model_dir()), device="cpu")
    t2 = time.perf_counter()
    vecs = model.encode(chunks, batch_size=32)
    index = faiss.IndexFlatL2(vecs.shape[1])
    index.add(vecs)
    t3 = time.perf_counter()
    out = {"chunks_total": n_all, "chunks_embedded": len(chunks), "split_seconds": t1 - t0,
           "import_and_load_seconds": t2 - t1, "encode_seconds": t3 - t2, "total_seconds": t3 - t0,
           "continuation_chunks": sum(1 for c in chunks if not c.lstrip().startswith(("## ", "# ")))}
    if product_texts:
        chunks_meta = json.loads((Path(s.lake_dir) / "rag" / "index" / "chunks.json").read_text())
        texts = sorted({c["embed_text"] for c in chunks_meta})
        t4 = time.perf_counter()
        model.encode(texts, batch_size=64)
        out["torch_product_texts"] = len(texts)
        out["torch_product_texts_seconds"] = time.perf_counter() - t4
    return out


def step_onnx_product_texts() -> dict:
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.rag.embedder import Embedder

    s = load_settings()
    folder = Path(s.lake_dir)
    meta = json.loads((folder / "rag" / "index" / "meta.json").read_text())
    chunks = json.loads((folder / "rag" / "index" / "chunks.json").read_text())
    texts = sorted({c["embed_text"] for c in chunks})
    t0 = time.perf_counter()
    emb = Embedder(folder / meta["model"]["onnx_key"], folder / meta["model"]["tokenizer_key"])
    t1 = time.perf_counter()
    emb.embed(texts)
    return {"texts": len(texts), "load_seconds": t1 - t0, "embed_seconds": time.perf_counter() - t1}


def step_queries() -> dict:
    from ecommerce_platform.rag import evaluation
    from ecommerce_platform.rag.answer import answer
    from ecommerce_platform.rag.store import open_retriever

    t0 = time.perf_counter()
    retriever, meta = open_retriever()
    load = time.perf_counter() - t0
    records = [c["facts"] for c in retriever.chunks if c["part"] == 0]
    questions = evaluation.hand_written() + evaluation.generated(records)
    lat, lat_answer = [], []
    for q in questions:
        t = time.perf_counter()
        hits = retriever.search(q["question"], k=5)
        lat.append(time.perf_counter() - t)
        answer(q["question"], hits, use_llm=False)
        lat_answer.append(time.perf_counter() - t)

    def pct(xs: list[float], p: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] * 1000

    return {"queries": len(lat), "open_seconds": load, "search_p50_ms": pct(lat, 50), "search_p95_ms": pct(lat, 95),
            "answer_p50_ms": pct(lat_answer, 50), "answer_p95_ms": pct(lat_answer, 95),
            "hit@1": meta["evaluation"]["hit@1"], "hit@5": meta["evaluation"]["hit@5"],
            "eval_questions": meta["evaluation"]["questions"],
            "hand_hit@1": meta["evaluation"]["hand"]["hit@1"], "hand_hit@5": meta["evaluation"]["hand"]["hit@5"],
            "generated_hit@1": meta["evaluation"]["generated"]["hit@1"],
            "generated_hit@5": meta["evaluation"]["generated"]["hit@5"]}


# ---------------------------------------------------------------- driver

def prepare(data_dir: Path, source: str) -> float:
    os.environ.update(ECOMMERCE_DATA_DIR=str(data_dir), ECOMMERCE_SOURCE=source)
    import dagster as dg

    from ecommerce_platform.ingestion.assets import raw_s3
    from ecommerce_platform.lake.assets import clean_parquet
    from ecommerce_platform.rag.assets import product_knowledge
    from ecommerce_platform.rag.knowledge import build_knowledge
    from ecommerce_platform.resources import build_resources

    res = build_resources()
    if not res["lake"].exists("clean/_manifests/transactions.json"):
        assert dg.materialize([raw_s3, clean_parquet], resources=res).success
    t0 = time.perf_counter()
    build_knowledge(res["warehouse"], res["lake"], force=True)
    seconds = time.perf_counter() - t0
    assert dg.materialize([product_knowledge], resources=res).success  # registers + reuses
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", default=None)
    ap.add_argument("--perturb", type=float, default=0.0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--product-texts", action="store_true")
    ap.add_argument("--source", default=str(ROOT / "data" / "reference" / "online_retail.parquet"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--seed-limit", type=int, default=0, help="embed only the first N seed chunks")
    ap.add_argument("--skip-seed", action="store_true")
    args = ap.parse_args()
    if args.step:
        fn = {"build": lambda: step_build(args.perturb), "queries": step_queries,
              "onnx_texts": step_onnx_product_texts,
              "seed": lambda: step_seed(args.limit or None, args.product_texts)}[args.step]
        print(json.dumps(fn(), default=str))
        return

    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bench_rag_")) / "data"
    print(f"data dir: {data_dir}   cores: {os.cpu_count()}   load average: {os.getloadavg()[0]:.1f}")
    knowledge_seconds = prepare(data_dir, args.source)
    print(f"product_knowledge SQL (forced, warehouse engine): {knowledge_seconds:.1f} s")

    cache = Path(tempfile.mkdtemp(prefix="bench_rag_cache_"))
    env = _env(data_dir, cache)
    from ecommerce_platform.resources.lake import LocalLake

    lake = LocalLake(path=str(data_dir / "lake"))
    for prefix in ("rag/index", "rag/cache", "rag/model"):
        lake.delete_prefix(prefix)

    rows = []
    wall, full = _child(["--step", "build"], env)
    rows.append(("full faiss_index build (new process, ONNX graph built, all embedded)", wall,
                 f"embedded {full['embedded']} products + {full['queries_embedded']} questions in "
                 f"{full['embedding_seconds']:.1f} s; build fn {full['build_seconds']:.1f} s"))
    wall, same = _child(["--step", "build"], env)
    rows.append(("rebuild, nothing changed (new process)", wall,
                 f"reused={same['reused']}, embedded {same['embedded']}, build fn {same['build_seconds']:.2f} s"))
    wall, one = _child(["--step", "build", "--perturb", "0.01"], env)
    rows.append(("rebuild, 1 % of products renamed (new process)", wall,
                 f"embedded {one['embedded']} products + {one['queries_embedded']} questions, "
                 f"from cache {one['from_cache']}; model load {one['model_load_seconds']:.2f} s; "
                 f"build fn {one['build_seconds']:.2f} s"))
    wall, restore = _child(["--step", "build"], env)
    rows.append(("rebuild back to the real names (new process)", wall,
                 f"embedded {restore['embedded']}; build fn {restore['build_seconds']:.2f} s"))

    _, q = _child(["--step", "queries"], env)
    cold = []
    for _ in range(5):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", "ask", "what is product 84077?"],
                             env=env, capture_output=True, text=True, cwd=ROOT)
        cold.append(time.perf_counter() - t0)
        assert out.returncode == 0 and "84077" in out.stdout, out.stderr
    _, onnx_texts = _child(["--step", "onnx_texts"], env)

    print("\n== ours ==")
    for name, seconds, note in rows:
        print(f"{name:<72} {seconds:7.2f} s   ({note})")
    print(f"{'query: retrieve (embed + FAISS + BM25 + code match), warm':<72} "
          f"p50 {q['search_p50_ms']:.1f} ms  p95 {q['search_p95_ms']:.1f} ms  ({q['queries']} questions)")
    print(f"{'query: retrieve + offline answer, warm':<72} p50 {q['answer_p50_ms']:.1f} ms  p95 {q['answer_p95_ms']:.1f} ms")
    print(f"{'ecommerce ask (offline), new process, start to printed answer':<72} median {statistics.median(cold):.2f} s"
          f"  min {min(cold):.2f} s  max {max(cold):.2f} s")
    print(f"{'retrieval evaluation':<72} hit@1 {q['hit@1']}  hit@5 {q['hit@5']}  ({q['eval_questions']} questions; "
          f"hand-written hit@1 {q['hand_hit@1']} hit@5 {q['hand_hit@5']}; generated hit@1 {q['generated_hit@1']} "
          f"hit@5 {q['generated_hit@5']})")
    print(f"{'ONNX: embed the ' + str(onnx_texts['texts']) + ' product texts (warm process)':<72} "
          f"{onnx_texts['embed_seconds']:7.2f} s   (session load {onnx_texts['load_seconds']:.2f} s)")

    if not args.skip_seed:
        seed_args = ["--step", "seed", "--product-texts"] + (["--limit", str(args.seed_limit)] if args.seed_limit else [])
        wall, seed = _child(seed_args, env)
        print("\n== seed's way (500-character chunks of the Markdown file, sentence-transformers) ==")
        print(f"{'chunks':<72} {seed['chunks_total']} (embedded {seed['chunks_embedded']}); "
              f"{seed['continuation_chunks']} chunks start inside a product (product cut in half)")
        print(f"{'split':<72} {seed['split_seconds']:7.2f} s")
        print(f"{'import sentence-transformers + load model':<72} {seed['import_and_load_seconds']:7.2f} s")
        print(f"{'encode + FAISS':<72} {seed['encode_seconds']:7.2f} s")
        total = wall
        if seed["chunks_embedded"] < seed["chunks_total"]:
            est = seed["import_and_load_seconds"] + seed["split_seconds"] + \
                seed["encode_seconds"] * seed["chunks_total"] / seed["chunks_embedded"]
            print(f"{'total (new process), measured on a prefix':<72} {wall:7.2f} s; all chunks extrapolated: {est:.1f} s")
        else:
            print(f"{'total (new process)':<72} {total:7.2f} s")
        print(f"{'torch: embed the same ' + str(seed['torch_product_texts']) + ' product texts (warm)':<72} "
              f"{seed['torch_product_texts_seconds']:7.2f} s")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores; other work on the machine slows every figure)")


if __name__ == "__main__":
    main()
