"""Benchmark of the RAG layer on the real file: the index build, retrieval, the QA evaluation of `ecommerce
ask` (accuracy per family, refusals, lookups) and `ecommerce ask` from a new process, with baselines
measured in the same run.

    .venv/bin/python bench/rag_index.py [--source data/reference/online_retail.parquet] [--data-dir DIR]
                                        [--ask-runs N] [--skip-seed] [--seed-limit N]

Builds raw + clean (the ingestion and lake layers, as `make run`), the analytics views and
product_knowledge in a data dir first (reused when --data-dir holds them). Then, every step a NEW Python
process (imports and model load counted):

1. full ``faiss_index`` build: empty local cache (the ONNX graph built from the weights, every product and
   evaluation question embedded);
2. rebuild with nothing changed; 3. rebuild after 1 % of the products changed their name; 4. back;
5. retrieval latency (embed + FAISS + BM25 + code match), warm, p50 / p95 over the index's questions;
6. the QA evaluation (qa_questions.json, offline, in one process): accuracy per family, refusal precision
   and recall, lookup hit@1, answer latency p50 / p95;
7. ``ecommerce ask`` offline from a new process, start to printed answer, over a mix of questions
   (analytic; product lookups by code, by name, misspelt, and by loose words that need the embedding model;
   refusals), p50 / p95 overall and per kind; baselines:
   ``python -c pass`` and ``python -c "import duckdb"`` (what any answer pays);
8. (unless --skip-seed) the seed's way: 500-character chunks of the Markdown file, sentence-transformers.
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

ASK_MIX = [  # (kind, question)
    ("analytics", "total revenue in 2011"),
    ("analytics", "what sells best at Christmas"),
    ("analytics", "best-selling product in Germany"),
    ("analytics", "top 5 customers"),
    ("analytics", "how many white hanging heart t-light holders did we sell in March 2011"),
    ("analytics", "which countries ordered 84077"),
    ("analytics", "compare revenue in october 2011 and november 2011"),
    ("product (code)", "what is product 84077?"),
    ("product (code)", "tell me about 23843"),
    ("product (exact name)", "medium ceramic top storage"),
    ("product (exact name)", "regency cakestand 3 tier"),
    ("product (name, misspelt)", "water hot botle"),
    ("product (name, misspelt)", "do you have heart decoraton zinc?"),
    ("product (dense retrieval)", "red spotty lunch box"),
    ("product (dense retrieval)", "pink polka dot cake cases"),
    ("refusal", "do we sell iPhone chargers?"),
    ("refusal", "what is our profit margin on mugs"),
]


def _env(data_dir: Path, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ECOMMERCE_DEPLOYMENT")}
    env.update(ECOMMERCE_DATA_DIR=str(data_dir), ECOMMERCE_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT),
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    return env


def _child(args: list[str], env: dict) -> tuple[float, dict]:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, *args], env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"step {args} failed:\n{out.stderr[-3000:]}")
    return wall, json.loads(out.stdout.strip().splitlines()[-1])


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _resources():  # noqa: ANN202
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.resources.embeddings import build_embeddings

    res = build_resources()
    return res["warehouse"].lake, res["warehouse"], res.get("embeddings") or build_embeddings()


# ---------------------------------------------------------------- child steps (new processes)
def step_build(perturb: float) -> dict:
    from ecommerce_platform.rag.index import build_index
    from ecommerce_platform.rag.knowledge import read_knowledge, render_markdown

    lake, wh, embeddings = _resources()
    records = read_knowledge(wh)
    markdown = None
    if perturb:
        import random

        rng = random.Random(7)
        for i in rng.sample(range(len(records)), max(1, round(perturb * len(records)))):
            records[i] = dict(records[i], description=records[i]["description"] + " (NEW EDITION)")
        markdown = render_markdown(records)
    record = build_index(lake, records, embeddings, markdown=markdown)
    meta = record["meta"]
    meta.pop("evaluation")
    return {**meta, "status": record["status"]}


def step_queries() -> dict:
    from ecommerce_platform.rag import evaluation
    from ecommerce_platform.rag.store import open_index

    lake, _, embeddings = _resources()
    t0 = time.perf_counter()
    retriever, meta = open_index(lake, embeddings)
    load = time.perf_counter() - t0
    questions = evaluation.hand_written() + evaluation.generated(retriever.facts())
    lat = []
    for q in questions:
        t = time.perf_counter()
        retriever.search(q["question"], k=5)
        lat.append(time.perf_counter() - t)
    ev = meta["evaluation"]
    return {"queries": len(lat), "open_seconds": load, "search_p50_ms": 1000 * _pct(lat, 50),
            "search_p95_ms": 1000 * _pct(lat, 95), "hit@1": ev["hit@1"], "hit@5": ev["hit@5"],
            "eval_questions": ev["questions"], "hand_hit@1": ev["hand"]["hit@1"], "generated_hit@1": ev["generated"]["hit@1"],
            "generated_hit@5": ev["generated"]["hit@5"]}


def step_qa() -> dict:
    from ecommerce_platform.rag.qa_evaluation import evaluate
    from ecommerce_platform.rag.store import open_index

    lake, wh, embeddings = _resources()
    retriever, _ = open_index(lake, embeddings)
    t0 = time.perf_counter()
    report = evaluate(wh, retriever)
    report["seconds"] = time.perf_counter() - t0
    holdout = [r for r, q in zip(report["results"], _questions()) if q.get("split", "").startswith("holdout")]
    report["holdout"] = {"questions": len(holdout), "correct": sum(r["correct"] for r in holdout)}
    report["misses"] = [{k: r[k] for k in ("family", "question", "why")} for r in report["results"] if not r["correct"]]
    report.pop("results")
    return report


def _questions() -> list[dict]:
    from ecommerce_platform.rag.qa_evaluation import load_questions

    return load_questions()


def step_seed(limit: int | None) -> dict:
    t0 = time.perf_counter()
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from ecommerce_platform.config import load_settings

    s = load_settings()
    md = (Path(s.lake_dir) / "rag" / "product_knowledge.md").read_text(encoding="utf-8")
    chunks = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=0).split_text(md)
    n_all = len(chunks)
    chunks = chunks[:limit] if limit else chunks
    t1 = time.perf_counter()
    import faiss
    from sentence_transformers import SentenceTransformer

    from ecommerce_platform.resources.embeddings import model_dir

    model = SentenceTransformer(str(model_dir()), device="cpu")
    t2 = time.perf_counter()
    vecs = model.encode(chunks, batch_size=32)
    index = faiss.IndexFlatL2(vecs.shape[1])
    index.add(vecs)
    t3 = time.perf_counter()
    return {"chunks_total": n_all, "chunks_embedded": len(chunks), "split_seconds": t1 - t0,
            "import_and_load_seconds": t2 - t1, "encode_seconds": t3 - t2, "total_seconds": t3 - t0}


# ---------------------------------------------------------------- driver
def prepare(data_dir: Path, source: str) -> float:
    """raw + clean (as `make run`), the analytics views, product_knowledge; returns its SQL seconds."""
    os.environ.update(ECOMMERCE_DATA_DIR=str(data_dir), ECOMMERCE_SOURCE=source)
    from ecommerce_platform.analytics.views import VIEWS, create_view
    from ecommerce_platform.rag.knowledge import build_knowledge
    from ecommerce_platform.resources import build_resources

    res = build_resources()
    wh = res["warehouse"]
    if not wh.lake.list("clean/transactions"):
        import dagster as dg

        from ecommerce_platform.definitions import build_definitions
        from ecommerce_platform.runner import rebuild

        with dg.DagsterInstance.ephemeral() as instance:
            runs = rebuild(instance, build_definitions(layers=("ingestion", "lake")), log=lambda _m: None)
            assert runs and all(r.success for r in runs)
    for view in VIEWS:
        create_view(wh, view)
    t0 = time.perf_counter()
    build_knowledge(wh)
    return time.perf_counter() - t0


def ask_latency(env: dict, runs: int) -> dict:
    def timed(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
        took = time.perf_counter() - t0
        if out.returncode != 0:
            raise SystemExit(f"{cmd} failed:\n{out.stderr[-2000:]}")
        return took

    by_kind: dict[str, list[float]] = {}
    base = {"python -c pass": [], "python -c 'import duckdb'": []}
    for _ in range(runs):
        base["python -c pass"].append(timed([sys.executable, "-c", "pass"]))
        base["python -c 'import duckdb'"].append(timed([sys.executable, "-c", "import duckdb"]))
        for kind, question in ASK_MIX:
            by_kind.setdefault(kind, []).append(
                timed([sys.executable, "-m", "ecommerce_platform.cli", "ask", "--offline", question]))
    every = [x for xs in by_kind.values() for x in xs]
    return {"all": every, "by_kind": by_kind, "baselines": base}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--step", default=None)
    ap.add_argument("--perturb", type=float, default=0.0)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--source", default=str(ROOT / "data" / "reference" / "online_retail.parquet"))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--ask-runs", type=int, default=3, help="rounds of the question mix asked from new processes")
    ap.add_argument("--seed-limit", type=int, default=0, help="embed only the first N seed chunks")
    ap.add_argument("--skip-seed", action="store_true")
    args = ap.parse_args()
    if args.step:
        fn = {"build": lambda: step_build(args.perturb), "queries": step_queries, "qa": step_qa,
              "seed": lambda: step_seed(args.limit or None)}[args.step]
        print(json.dumps(fn(), default=str))
        return

    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="bench_rag_")) / "data"
    print(f"data dir: {data_dir}   cores: {os.cpu_count()}   load average: {os.getloadavg()[0]:.1f}")
    knowledge_seconds = prepare(data_dir, args.source)
    print(f"product_knowledge SQL (warehouse engine): {knowledge_seconds:.1f} s")

    cache = Path(tempfile.mkdtemp(prefix="bench_rag_cache_"))
    env = _env(data_dir, cache)
    rows = []
    wall, full = _child(["--step", "build"], env)
    rows.append(("full faiss_index build (new process, ONNX graph built, all embedded)", wall,
                 f"{full['status']}; embedded {full['embedded']} products + {full['queries_embedded']} questions in "
                 f"{full['embedding_seconds']:.1f} s; build fn {full['build_seconds']:.1f} s"))
    wall, same = _child(["--step", "build"], env)
    rows.append(("rebuild, nothing changed (new process)", wall,
                 f"embedded {same['embedded']}, build fn {same['build_seconds']:.2f} s"))
    wall, one = _child(["--step", "build", "--perturb", "0.01"], env)
    rows.append(("rebuild, 1 % of products renamed (new process)", wall,
                 f"embedded {one['embedded']} products + {one['queries_embedded']} questions, from cache "
                 f"{one['from_cache']}; model load {one['model_load_seconds']:.2f} s; build fn {one['build_seconds']:.2f} s"))
    wall, _ = _child(["--step", "build"], env)
    rows.append(("rebuild back to the real names (new process)", wall, ""))
    _, q = _child(["--step", "queries"], env)
    wall, qa = _child(["--step", "qa"], env)
    lat = ask_latency(env, args.ask_runs)

    print("\n== index ==")
    for name, seconds, note in rows:
        print(f"{name:<72} {seconds:7.2f} s   ({note})")
    print(f"{'retrieval (embed + FAISS + BM25 + code match), warm':<72} p50 {q['search_p50_ms']:.1f} ms  "
          f"p95 {q['search_p95_ms']:.1f} ms  ({q['queries']} questions)")
    print(f"{'retrieval evaluation (faiss_index)':<72} hit@1 {q['hit@1']}  hit@5 {q['hit@5']}  ({q['eval_questions']} "
          f"questions; hand-written hit@1 {q['hand_hit@1']}; generated hit@1 {q['generated_hit@1']} hit@5 "
          f"{q['generated_hit@5']})")
    print("\n== ask: the QA evaluation (qa_questions.json, offline, one process) ==")
    print(f"{qa['questions']} questions in {qa['seconds']:.1f} s; answer latency in process p50 {qa['latency_p50_ms']} ms "
          f"p95 {qa['latency_p95_ms']} ms")
    for family, f in qa["families"].items():
        print(f"  {family:<20} {f['correct']:>4} / {f['questions']:<4} {f['accuracy']}")
    print(f"  analytic accuracy {qa['analytic_accuracy']}  refusal recall {qa['refusal_recall']}  precision "
          f"{qa['refusal_precision']}  invented figures {qa['invented_figures']}  lookup hit@1 {qa['lookup_hit@1']}  "
          f"(held-out questions: {qa['holdout']['correct']} / {qa['holdout']['questions']})")
    for m in qa["misses"]:
        print(f"  MISS [{m['family']}] {m['question']}: {m['why']}")
    print(f"\n== ecommerce ask --offline, new process, start to printed answer ({args.ask_runs} rounds of "
          f"{len(ASK_MIX)} questions) ==")
    print(f"{'all':<28} p50 {statistics.median(lat['all']):.2f} s   p95 {_pct(lat['all'], 95):.2f} s")
    for kind, xs in lat["by_kind"].items():
        print(f"{kind:<28} p50 {statistics.median(xs):.2f} s   p95 {_pct(xs, 95):.2f} s")
    for name, xs in lat["baselines"].items():
        print(f"{'baseline: ' + name:<28} p50 {statistics.median(xs):.2f} s")

    if not args.skip_seed:
        wall, seed = _child(["--step", "seed"] + (["--limit", str(args.seed_limit)] if args.seed_limit else []), env)
        print("\n== seed's way (500-character chunks of the Markdown file, sentence-transformers) ==")
        print(f"{'chunks':<72} {seed['chunks_total']} (embedded {seed['chunks_embedded']})")
        print(f"{'import sentence-transformers + load model':<72} {seed['import_and_load_seconds']:7.2f} s")
        print(f"{'encode + FAISS':<72} {seed['encode_seconds']:7.2f} s   (new process: {wall:.1f} s)")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (2 cores; other work on the machine slows every figure)")


if __name__ == "__main__":
    main()
