"""Benchmark of `ecommerce serve`: latency per endpoint on a warm server, throughput of /api/recommend
under concurrent clients, against the CLI's new-process time measured in the same run.

    .venv/bin/python bench/serving.py [--data-dir DIR] [--source FILE] [--workers N] [--clients 16]
                                      [--duration 30] [--requests 200] [--cli-runs 5] [--url URL]

1. A data folder with what the server serves: raw + clean from the source (as `make run`), then the
   analytics views, the ML models (classifier, als_model, sales_forecast with their feature tables) and
   the product index (product_knowledge, faiss_index), materialized with Dagster in this process
   (``--data-dir`` with them already built is reused as it is).
2. `ecommerce serve` started on 127.0.0.1 on a free port (``--workers``), access log on (as in
   production; written to a file). ``--url`` measures a server already running instead.
3. Warm latency, one client, keep-alive, ``--requests`` requests per endpoint after a warm-up: health,
   recommend (rotating over known customers), similar (rotating over products), predict-high-value (one
   invoice), forecast; ask: the questions of rag/qa_questions.json when present (else a fixed mix), each
   asked once (not in the worker's answer cache: p50 / p95 overall and per question family), then each
   asked again (answered from the cache).
4. Throughput: ``--clients`` threads, each with its own keep-alive connection, requesting
   /api/recommend for ``--duration`` seconds: requests/s, errors, p50 / p95 under load. Then, for a third
   of the time each, a mix (recommend, similar, forecast, and ask answered from the cache), and the
   questions on a second server started with the answer cache off (every answer computed).
5. Baseline: the same answers from the CLI, one new process each (`ecommerce recommend --json`, `ecommerce
   ask --json`, `ecommerce similar --json`), ``--cli-runs`` runs each.
The client runs on the same machine as the server (2 cores shared): figures include its cost.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from ecommerce_platform_tests.processes import start_group, stop_group  # noqa: E402 - after sys.path

ASK_MIX = [  # (family, question): used when rag/qa_questions.json is not there
    ("total", "total revenue in 2011"),
    ("ranking", "what sells best at Christmas"),
    ("ranking", "best-selling product in Germany"),
    ("ranking", "top 5 customers"),
    ("product_period", "how many white hanging heart t-light holders did we sell in March 2011"),
    ("product_countries", "which countries ordered 84077"),
    ("compare", "compare revenue in october 2011 and november 2011"),
    ("lookup", "what is product 84077?"),
    ("lookup", "medium ceramic top storage"),
    ("lookup", "red spotty lunch box"),
    ("lookup", "pink polka dot cake cases"),
    ("refusal", "do we sell iPhone chargers?"),
    ("refusal", "what is our profit margin on mugs"),
]
PREDICT = {"customer_id": "14646", "country": "Netherlands", "invoice_ts": "2011-12-01T10:00:00", "basket_lines": 40}


def load_average() -> str:
    try:
        return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    except OSError:
        return "load average unknown"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the data
def served_files_exist(data_dir: Path) -> bool:
    lake = data_dir / "lake"
    return all((lake / p).is_file() for p in ("models/als_model/current/model.json", "models/classifier/current/model.json",
                                              "models/sales_forecast/current/model.json", "rag/index/meta.json"))


def prepare(data_dir: Path, source: str) -> float:
    """Build what the server serves into ``data_dir`` (see the module's docstring); returns seconds."""
    os.environ.update(ECOMMERCE_DATA_DIR=str(data_dir), ECOMMERCE_SOURCE=source)
    t0 = time.perf_counter()
    import dagster as dg

    from ecommerce_platform.analytics.assets import analytics_views
    from ecommerce_platform.definitions import build_definitions
    from ecommerce_platform.ml import assets as ml
    from ecommerce_platform.rag import assets as rag
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.runner import rebuild

    with dg.DagsterInstance.ephemeral() as instance:
        runs = rebuild(instance, build_definitions(layers=("ingestion", "lake")), log=lambda _m: None)
        assert runs and all(r.success for r in runs), "landing and cleaning failed"
        assets = [analytics_views, *ml.ASSETS, rag.product_knowledge, rag.faiss_index]
        keys = [dg.AssetKey(k) for k in ("sale_lines", "daily_sales", "daily_sales_by_country", "invoice_features",
                                         "customer_features", "user_item_interactions", "classifier", "als_model",
                                         "sales_forecast", "product_knowledge", "faiss_index")]
        result = dg.materialize(assets, resources=build_resources(), instance=instance,
                                selection=dg.AssetSelection.assets(*keys))
        assert result.success, "materializing the served assets failed"
    return time.perf_counter() - t0


def sample_ids(data_dir: Path, n: int = 200) -> tuple[list[str], list[str]]:
    """Known customers and products of the served recommender (its files, read with pandas)."""
    import pandas as pd

    cur = data_dir / "lake" / "models" / "als_model" / "current"
    users = pd.read_parquet(cur / "users.parquet")["customer_id"].astype(str).tolist()
    items = pd.read_parquet(cur / "items.parquet")
    items = items.sort_values("buyers", ascending=False)["stock_code"].astype(str).tolist()
    step = max(1, len(users) // n)
    return users[::step][:n], items[: n]


def ask_questions() -> list[tuple[str, str]]:
    path = ROOT / "ecommerce_platform" / "rag" / "qa_questions.json"
    if path.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return [(q["family"], q["question"]) for q in json.loads(path.read_text())["questions"]]
    return ASK_MIX


# ---------------------------------------------------------------- the server
def start_server(env: dict, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    return start_group([sys.executable, "-m", "ecommerce_platform.cli", "serve", "--port", str(port),
                        "--workers", str(workers)], log_path, env=env, cwd=ROOT)


stop_server = stop_group


class Client:
    """One keep-alive connection."""

    def __init__(self, base: str):
        u = urlsplit(base)
        self.host, self.port = u.hostname, u.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.last_headers: dict[str, str] = {}

    def request(self, method: str, path: str, body: dict | list | None = None) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        for attempt in (1, 2):
            try:
                self.conn.request(method, path, body=data, headers=headers)
                resp = self.conn.getresponse()
                body = resp.read()
                self.last_headers = {k.lower(): v for k, v in resp.getheaders()}
                return resp.status, body
            except (http.client.HTTPException, ConnectionError, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")


def wait_healthy(base: str, proc: subprocess.Popen | None, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise SystemExit("the server exited before serving (see its log)")
        with contextlib.suppress(OSError, http.client.HTTPException):
            status, body = Client(base).request("GET", "/api/health")
            if status == 200:
                health = json.loads(body)
                if all(m["served"] for m in health["models"].values()):
                    return health
        time.sleep(0.5)
    raise SystemExit(f"the server did not serve every model within {timeout:.0f} s")


# ---------------------------------------------------------------- measurements
def latency(base: str, name: str, calls: list[tuple[str, str, object]], requests: int) -> list[float]:
    c = Client(base)
    for method, path, body in calls[: min(len(calls), 5)]:  # warm-up
        c.request(method, path, body)
    times = []
    for i in range(requests):
        method, path, body = calls[i % len(calls)]
        t0 = time.perf_counter()
        status, _ = c.request(method, path, body)
        times.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise SystemExit(f"{name}: {method} {path} answered {status}")
    return times


def load_test(base: str, calls: list[tuple[str, str, object]], clients: int, seconds: float) -> dict:
    stop = time.monotonic() + seconds
    results: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    statuses: dict[int, int] = {}
    lock = threading.Lock()

    def worker(k: int) -> None:
        c = Client(base)
        i = k * 7
        while time.monotonic() < stop:
            method, path, body = calls[i % len(calls)]
            i += 1
            t0 = time.perf_counter()
            try:
                status, _ = c.request(method, path, body)
            except Exception:  # noqa: BLE001 - counted
                status = -1
            results[k].append((time.perf_counter() - t0) * 1000)
            if status != 200:
                errors[k] += 1
                with lock:
                    statuses[status] = statuses.get(status, 0) + 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    times = [x for r in results for x in r]
    return {"requests": len(times), "errors": sum(errors), "statuses": statuses, "seconds": wall,
            "rps": len(times) / wall, "p50": pct(times, 50), "p95": pct(times, 95), "p99": pct(times, 99)}


def cli_times(env: dict, args: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", *args], env=env, cwd=ROOT,
                             capture_output=True, text=True)
        out.append((time.perf_counter() - t0) * 1000)
        if res.returncode != 0:
            raise SystemExit(f"ecommerce {' '.join(args)} failed: {res.stderr[-2000:]}")
    return out


def line(name: str, times: list[float]) -> str:
    return (f"  {name:<34} p50 {pct(times, 50):8.1f} ms   p95 {pct(times, 95):8.1f} ms   "
            f"mean {statistics.fmean(times):8.1f} ms   n={len(times)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--source", default=str(ROOT / "data" / "reference" / "online_retail.parquet"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--cli-runs", type=int, default=5)
    ap.add_argument("--url", default=None, help="measure a server already running (its data dir: --data-dir)")
    args = ap.parse_args()

    tmp = None
    data_dir = args.data_dir
    if data_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench_serving_")
        data_dir = Path(tmp.name) / "data"
    data_dir = data_dir.resolve()
    print(f"bench/serving.py: {load_average()}; data {data_dir}")
    if not served_files_exist(data_dir):
        if args.url:
            raise SystemExit(f"{data_dir} has no served models: give the running server's --data-dir")
        print(f"building what the server serves from {args.source} ...", flush=True)
        print(f"  built in {prepare(data_dir, args.source):.0f} s")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECOMMERCE_", "DAGSTER_")) and k != "OPENAI_API_KEY"}
    env.update(ECOMMERCE_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", OPENBLAS_NUM_THREADS="1")

    proc = None
    log_path = data_dir.parent / "serve.log"
    try:
        if args.url:
            base = args.url.rstrip("/")
        else:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            t0 = time.perf_counter()
            proc = start_server(env, port, args.workers, log_path)
            health = wait_healthy(base, proc)
            print(f"server: {args.workers} worker(s), serving every model {time.perf_counter() - t0:.1f} s after start "
                  f"(log {log_path})")
        health = wait_healthy(base, proc)
        print("serving: " + ", ".join(f"{k} {v.get('run_id') or v.get('build_id')}" for k, v in health["models"].items()))
        customers, products = sample_ids(data_dir)
        questions = ask_questions()

        rec_calls = [("GET", f"/api/recommend/{quote(c)}?n=10", None) for c in customers]
        sim_calls = [("GET", f"/api/similar/{quote(p, safe='')}?n=10", None) for p in products]
        ask_calls = [("POST", "/api/ask", {"question": q}) for _, q in questions]
        fc_calls = [("GET", f"/api/forecast?horizon={h}", None) for h in (1, 4, 8, 13)]
        endpoints = {
            "GET /api/health": [("GET", "/api/health", None)],
            "GET /api/recommend/{id}": rec_calls,
            "GET /api/similar/{code}": sim_calls,
            "POST /api/predict-high-value": [("POST", "/api/predict-high-value", PREDICT)],
            "GET /api/forecast": fc_calls,
        }
        print(f"\nwarm latency, one client, keep-alive ({args.requests} requests each; {load_average()}):")
        for name, calls in endpoints.items():
            print(line(name, latency(base, name, calls, args.requests)), flush=True)
        # /api/ask: every question of the set asked once (the worker's answer cache cannot help: the figure
        # the target is about), then every question again (answered from the cache)
        c = Client(base)
        for _, q in questions[:5]:  # warm-up with another top_k: same work, not the same cache entry
            c.request("POST", "/api/ask", {"question": q, "top_k": 4})
        for label, expect in (("first time", "miss"), ("asked again", "hit")):
            per_family: dict[str, list[float]] = {}
            all_ask = []
            seen = {"hit": 0, "miss": 0, None: 0}
            for family, q in questions:
                t0 = time.perf_counter()
                status, _ = c.request("POST", "/api/ask", {"question": q})
                ms = (time.perf_counter() - t0) * 1000
                if status != 200:
                    raise SystemExit(f"/api/ask {q!r} answered {status}")
                seen[c.last_headers.get("x-answer-cache")] += 1
                per_family.setdefault(family, []).append(ms)
                all_ask.append(ms)
            print(line(f"POST /api/ask, {label} ({len(questions)} q.)", all_ask) + f"   cache {seen[expect]}/{len(all_ask)} {expect}")
            if label == "first time":
                for family, times in sorted(per_family.items()):
                    print("    " + line(family, times).strip())

        print(f"\nthroughput, {args.clients} concurrent clients (threads, keep-alive), {args.duration:.0f} s:", flush=True)
        r = load_test(base, rec_calls, args.clients, args.duration)
        print(f"  GET /api/recommend/{{id}}          {r['rps']:7.1f} requests/s   {r['requests']:,} requests, "
              f"{r['errors']} errors {r['statuses'] or ''}  p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms  "
              f"p99 {r['p99']:.1f} ms", flush=True)
        # the mix's questions were all asked above: their answers come from the worker's answer cache
        mix = [x for group in zip(rec_calls, sim_calls, fc_calls * 50, ask_calls * 5) for x in group]
        r = load_test(base, mix, args.clients, max(5.0, args.duration / 3))
        print(f"  mix recommend/similar/forecast/ask (asks answered from the cache) {r['rps']:7.1f} requests/s   {r['requests']:,} requests, "
              f"{r['errors']} errors {r['statuses'] or ''}  p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms", flush=True)

        if proc is not None:  # questions under load, every answer computed: a second server without the cache
            port2 = free_port()
            proc2 = start_server({**env, "ECOMMERCE_SERVE_ANSWER_CACHE_MB": "0"}, port2, args.workers, log_path)
            try:
                base2 = f"http://127.0.0.1:{port2}"
                wait_healthy(base2, proc2)
                r = load_test(base2, ask_calls, args.clients, max(5.0, args.duration / 3))
                print(f"  POST /api/ask, answer cache off   {r['rps']:7.1f} requests/s   {r['requests']:,} requests, "
                      f"{r['errors']} errors {r['statuses'] or ''}  p50 {r['p50']:.1f} ms  p95 {r['p95']:.1f} ms", flush=True)
            finally:
                stop_server(proc2)

        print(f"\nbaseline: the CLI, a new process per answer ({args.cli_runs} runs each; {load_average()}):")
        print(line("ecommerce recommend --json", cli_times(env, ["recommend", customers[0], "--json"], args.cli_runs)))
        print(line("ecommerce similar --json", cli_times(env, ["similar", products[0], "--json"], args.cli_runs)))
        cli_ask = []
        for i in range(args.cli_runs):
            cli_ask += cli_times(env, ["ask", "--json", ASK_MIX[i % len(ASK_MIX)][1]], 1)
        print(line("ecommerce ask --json (mix)", cli_ask))
    finally:
        if proc is not None:
            stop_server(proc)
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
