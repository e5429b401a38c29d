"""What one server worker serves, loaded once from the lake and swapped atomically when a new
materialization lands.

Each served component is loaded from the files its asset published (never through Dagster):

| component   | from                                              | signal (its version)                      |
|-------------|---------------------------------------------------|-------------------------------------------|
| recommender | ``models/als_model/current/`` (``Recommender``)   | ``models/als_model/current/model.json``   |
| classifier  | ``models/classifier/current/`` (``load_model``)   | ``models/classifier/current/model.json``  |
| forecast    | ``models/sales_forecast/current/forecast.parquet``| ``models/sales_forecast/current/model.json``|
| ask         | what ``ecommerce ask`` uses (``ask_backends``):   | ``rag/index/meta.json``, the warehouse    |
|             | warehouse views, product index, embedder, facts   | catalog ``_catalog/duckdb/``, the clean   |
|             |                                                   | months ``clean/_months/``                 |

A signal is the lake's version of those objects (size and modification time locally, the ETag on S3:
``Lake.list_versions``, one stat or one listing each), read by ``check()`` at most every
``ECOMMERCE_SERVE_RELOAD_SECONDS`` by a background task, never per request. A model's ``current/``
folder is published by one rename, so a new ``model.json`` means a whole new model. A component whose
signal changed is loaded again beside the one being served (the signal read before and after the load
must agree, or the load is retried: no half-old, half-new model), then the worker's ``Snapshot`` is
replaced in one assignment: a request uses the snapshot it started with. A component that fails to load
keeps the previous one serving and is reported by ``/api/health`` (tried again when its signal changes,
or after ``RETRY_SECONDS``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("ecommerce_platform.serving")

RETRY_SECONDS = 60.0  # a component that failed to load is tried again after this long, signal unchanged
LOAD_ATTEMPTS = 3  # loads whose signal moved during the load (a publish in between) before giving up


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def signal_keys() -> dict[str, str]:
    """Signal name -> the lake key (an object or a prefix) whose version identifies what is published."""
    from ecommerce_platform.lake.clean import MONTHS_PREFIX
    from ecommerce_platform.ml import classifier, forecast, recommender
    from ecommerce_platform.rag.index import INDEX_PREFIX
    from ecommerce_platform.rag.lite import CATALOG_PREFIX

    return {
        "als_model": f"{recommender.CURRENT_PREFIX}/model.json",
        "classifier": f"{classifier.CURRENT_PREFIX}/model.json",
        "sales_forecast": f"{forecast.CURRENT_PREFIX}/model.json",
        "index": f"{INDEX_PREFIX}/meta.json",
        "catalog": CATALOG_PREFIX,
        "data": MONTHS_PREFIX,
    }


def version_of(versions: dict[str, str]) -> str | None:
    """A short version of a listing (key -> object version); None when nothing is there."""
    if not versions:
        return None
    text = json.dumps(sorted(versions.items()), separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Loaded:
    value: Any
    version: tuple  # the signals' versions it was loaded from
    loaded_at: str
    info: dict  # what /api/health shows about it


@dataclass(frozen=True)
class Snapshot:
    """What a worker serves at one moment; replaced whole, never changed in place."""

    components: dict[str, Loaded] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    signals: dict[str, str | None] = field(default_factory=dict)

    def value(self, name: str):  # noqa: ANN201
        loaded = self.components.get(name)
        return None if loaded is None else loaded.value


class NotServed(RuntimeError):
    """A component is not loaded (nothing published yet, or it failed to load): the message says why."""


# ------------------------------------------------------------------------------------------ components
@dataclass(frozen=True)
class RecommenderModel:
    model: Any  # ml.recommender.Recommender
    customers: frozenset  # the customer ids the model knows


@dataclass(frozen=True)
class ClassifierModel:
    model: Any  # ml.classifier.ClassifierModel
    warehouse: Any  # where the customers' history is read (the clean table), as the CLI does


@dataclass(frozen=True)
class ForecastTable:
    """The served forecast, per (series lower-cased, granularity): the CLI's JSON without the rows' cut."""

    series: tuple[str, ...]
    by_key: dict  # (series.lower(), granularity) -> {"series", "granularity", "origin", "interval", "run_id", "rows"}


class AnswerCache:
    """Answers already given (their JSON bytes) by question, least recently used first out, within a byte
    budget. One per load of the answerer: a new materialization starts an empty one. Only answers that
    depend on nothing but the data are kept (no language model involved)."""

    def __init__(self, max_bytes: int):
        from collections import OrderedDict

        self.max_bytes = int(max_bytes)
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key) -> bytes | None:  # noqa: ANN001
        with self._lock:
            body = self._items.get(key)
            if body is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key, body: bytes) -> None:  # noqa: ANN001
        if len(body) > self.max_bytes // 8:
            return  # one answer may not take the cache over
        with self._lock:
            if key in self._items:
                return
            self._items[key] = body
            self.size += len(body)
            while self.size > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self.size -= len(old)

    def stats(self) -> dict:
        return {"answers": len(self._items), "bytes": self.size, "hits": self.hits, "misses": self.misses}


@dataclass(frozen=True)
class AskBackend:
    warehouse: Any  # rag.lite.LakeCatalogWarehouse or the warehouse resource
    retriever: Any  # rag.qa.LazyRetriever over the loaded Retriever (and the index's facts)
    llm: Any  # the llm resource when OPENAI_API_KEY is set, else None
    context: Any  # rag.qa.Context (vocabulary, product facts), read once per load
    how: str  # "lite" | "resources" (rag.cli.ask_backends)
    cache: AnswerCache | None = None  # None: ECOMMERCE_SERVE_ANSWER_CACHE_MB=0


def forecast_table(df, meta: dict) -> ForecastTable:  # noqa: ANN001 - DataFrame of the served forecast
    """Records as ``ecommerce forecast --json`` prints them, precomputed per series and granularity."""
    by_key: dict = {}
    names = tuple(str(n) for n in df["series"].drop_duplicates())
    for (series, granularity), rows in df.groupby(["series", "granularity"], sort=False):
        rows = rows.sort_values("horizon")
        first = rows.iloc[0]
        records = [{"period_start": str(r.period_start), "period_end": str(r.period_end), "horizon": int(r.horizon),
                    "trading_days": int(r.trading_days), "forecast": float(r.forecast), "lower": float(r.lower),
                    "upper": float(r.upper)} for r in rows.itertuples()]
        by_key[(str(series).lower(), str(granularity))] = {
            "series": str(series), "granularity": str(granularity), "origin": str(first["origin"]),
            "interval": float(first["interval"]), "run_id": str(first["run_id"]), "rows": records}
    return ForecastTable(names, by_key)


class ServingState:
    """The worker's served components, their signals and the reload logic."""

    def __init__(self, settings, lake=None):  # noqa: ANN001 - config.Settings, resources.Lake
        self.settings = settings
        if lake is None:
            from ecommerce_platform.resources import build_lake

            lake = build_lake(settings)
        self.lake = lake
        self.keys = signal_keys()
        self.snapshot = Snapshot()
        self.started_at = now_iso()
        self.checked_at: str | None = None
        self.reloads = 0  # loads after the first one of each component
        self._lock = threading.Lock()
        self._failed: dict[str, tuple[tuple, float]] = {}
        self._ml_warehouse = None
        self.specs: dict[str, tuple[tuple[str, ...], Callable[[], tuple[Any, dict]]]] = {
            "recommender": (("als_model",), self._load_recommender),
            "classifier": (("classifier",), self._load_classifier),
            "forecast": (("sales_forecast",), self._load_forecast),
            "ask": (("index", "catalog", "data"), self._load_ask),
        }

    # ---------------------------------------------------------------- signals
    def read_signals(self) -> dict[str, str | None]:
        out = {}
        for name, key in self.keys.items():
            try:
                out[name] = version_of(self.lake.list_versions(key))
            except Exception as exc:  # noqa: BLE001 - an unreachable lake: keep serving, say so in health
                log.warning("cannot read the signal %s (%s): %s", name, key, exc)
                out[name] = self.snapshot.signals.get(name)
        return out

    def _versions(self, names: tuple[str, ...]) -> tuple:
        return tuple(version_of(self.lake.list_versions(self.keys[n])) for n in names)

    # ---------------------------------------------------------------- loaders
    def _load_recommender(self) -> tuple[Any, dict]:
        from ecommerce_platform.ml.recommender import Recommender

        model = Recommender.load(self.lake)
        customers = frozenset(str(c).strip() for c in model.users["customer_id"])
        info = {"run_id": model.run_id, "trained_at": model.meta.get("trained_at"),
                "customers": len(customers), "products": int(len(model.items))}
        return RecommenderModel(model, customers), info

    def ml_warehouse(self):  # noqa: ANN201
        """The warehouse the classifier reads the customers' history from: the deployment's warehouse
        resource, as ``ecommerce predict-high-value`` uses it (DuckDB: in-memory views over the lake's
        Parquet, the catalog followed every few seconds; never the warehouse.duckdb file)."""
        if self._ml_warehouse is None:
            from ecommerce_platform.resources import build_warehouse

            self._ml_warehouse = build_warehouse(self.settings, self.lake)
        return self._ml_warehouse

    def _load_classifier(self) -> tuple[Any, dict]:
        from ecommerce_platform.ml.classifier import load_model

        model = load_model(self.lake)
        warehouse = self.ml_warehouse()
        warehouse.query_df("SELECT 1 AS ok")  # open its connection now, not on a request
        info = {"run_id": model.run_id, "trained_at": model.trained_at, "kind": model.kind,
                "decision_threshold": round(float(model.decision_threshold), 6),
                "label_threshold_gbp": model.label_threshold_gbp}
        return ClassifierModel(model, warehouse), info

    def _load_forecast(self) -> tuple[Any, dict]:
        from ecommerce_platform.ml.forecast import CURRENT_PREFIX, load_served

        df = load_served(self.lake)
        meta = json.loads(self.lake.get_text(f"{CURRENT_PREFIX}/model.json"))
        table = forecast_table(df, meta)
        info = {"run_id": meta.get("run_id"), "trained_at": meta.get("trained_at"), "origin": meta.get("origin"),
                "series": len(table.series)}
        return table, info

    def _load_ask(self) -> tuple[Any, dict]:
        from ecommerce_platform.rag.cli import ask_backends
        from ecommerce_platform.rag.index import INDEX_PREFIX
        from ecommerce_platform.rag.qa import Context, LazyRetriever

        warehouse, load, llm, how, facts = ask_backends(offline=False)
        retriever = load()  # the index and the embedder, once per load (not on the first question)
        lazy = LazyRetriever(lambda: retriever, facts)
        context = Context.load(warehouse, lazy)
        retriever.search("warm up", k=1)  # the embedder's first run pays for its set-up here
        meta = json.loads(self.lake.get_text(f"{INDEX_PREFIX}/meta.json"))
        vocab = context.vocabulary
        info = {"build_id": meta.get("build_id"), "created_at": meta.get("created_at"),
                "products": meta.get("products"), "embedding_model": (meta.get("model") or {}).get("package"),
                "backend": how, "answered_by": getattr(llm, "name", None) or "offline",
                "first_day": vocab.first_day.isoformat(), "last_day": vocab.last_day.isoformat()}
        mb = self.settings.serve_answer_cache_mb
        cache = AnswerCache(int(mb * 1024 * 1024)) if mb > 0 else None
        return AskBackend(warehouse, lazy, llm, context, how, cache), info

    # ---------------------------------------------------------------- reload
    def _load(self, name: str) -> Loaded:
        signals, loader = self.specs[name]
        for _ in range(LOAD_ATTEMPTS):
            before = self._versions(signals)
            value, info = loader()
            after = self._versions(signals)
            if before == after:
                return Loaded(value, after, now_iso(), info)
            log.info("%s was published again while loading it: loading again", name)
        raise RuntimeError(f"{name} kept changing while it was loaded ({LOAD_ATTEMPTS} attempts)")

    def check(self) -> list[str]:
        """Read the signals; load what changed (or is missing); swap the snapshot. Returns what was
        loaded. One check at a time per worker."""
        with self._lock:
            signals = self.read_signals()
            current = self.snapshot
            components = dict(current.components)
            errors = dict(current.errors)
            loaded: list[str] = []
            for name, (names, _) in self.specs.items():
                want = tuple(signals[n] for n in names)
                have = components.get(name)
                if have is not None and have.version == want:
                    continue
                failed = self._failed.get(name)
                if failed and failed[0] == want and time.monotonic() - failed[1] < RETRY_SECONDS:
                    continue
                t0 = time.perf_counter()
                try:
                    new = self._load(name)
                except Exception as exc:  # noqa: BLE001 - reported in /api/health; the previous one keeps serving
                    self._failed[name] = (want, time.monotonic())
                    errors[name] = _message(exc)
                    log.warning("cannot load %s: %s", name, errors[name],
                                extra={"fields": {"event": "load_failed", "component": name}})
                    continue
                components[name] = new
                errors.pop(name, None)
                self._failed.pop(name, None)
                loaded.append(name)
                if have is not None:
                    self.reloads += 1
                log.info("%s %s in %.2f s", "reloaded" if have is not None else "loaded", name,
                         time.perf_counter() - t0,
                         extra={"fields": {"event": "reloaded" if have is not None else "loaded",
                                           "component": name, **_short(new.info)}})
            self.snapshot = Snapshot(components, errors, signals)  # one assignment: the swap
            self.checked_at = now_iso()
            return loaded

    # ---------------------------------------------------------------- health
    def health(self) -> dict:
        snap = self.snapshot
        names = {"recommender": "als_model", "classifier": "classifier", "forecast": "sales_forecast",
                 "ask": "product_index"}
        models = {}
        for name, public in names.items():
            loaded = snap.components.get(name)
            entry: dict = {"served": loaded is not None}
            if loaded is not None:
                entry.update(loaded.info)
                entry["loaded_at"] = loaded.loaded_at
            if name in snap.errors:
                entry["error"] = snap.errors[name]
            if name == "ask" and loaded is not None and loaded.value.cache is not None:
                entry["answer_cache"] = loaded.value.cache.stats()
            models[public] = entry
        ok = all(m["served"] and "error" not in m for m in models.values())
        return {
            "status": "ok" if ok else "degraded",
            "deployment": self.settings.deployment,
            "lake": self.lake.root,
            "warehouse": self.settings.warehouse_engine,
            "data": {"version": snap.signals.get("data"), "catalog_version": snap.signals.get("catalog"),
                     "first_day": models["product_index"].get("first_day"),
                     "last_day": models["product_index"].get("last_day")},
            "models": models,
            "worker": {"pid": os.getpid(), "started_at": self.started_at, "checked_at": self.checked_at,
                       "reload_seconds": self.settings.serve_reload_seconds, "reloads": self.reloads},
        }


def _message(exc: BaseException) -> str:
    """One line for /api/health: the platform's own 'not published' errors as they are (they say what to
    materialize), anything else with its type."""
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0]
    plain = type(exc) in (FileNotFoundError, RuntimeError) or type(exc).__name__ == "IndexNotBuilt"
    return text if plain else f"{type(exc).__name__}: {text}"


def _short(info: dict) -> dict:
    return {k: v for k, v in info.items() if k in ("run_id", "build_id", "origin")}
