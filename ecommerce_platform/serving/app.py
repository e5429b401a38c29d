"""The HTTP API and the web page (FastAPI on Starlette, run by uvicorn: ``ecommerce serve``).

Endpoints (schema at ``/openapi.json``, Swagger UI at ``/docs``, every asset served by this app):

- ``GET /api/health``: status, deployment, the data and model versions served by this worker;
- ``POST /api/ask`` ``{"question": str, "top_k"?: int, "offline"?: bool}``: ``ecommerce ask --json``'s
  contract ``{"answer", "kind", "sources", "sql", "rows", "definition"}``;
- ``GET /api/recommend/{customer_id}?n=10&mode=discovery|next-basket&cold_start=false``: ``ecommerce
  recommend --json`` (an unknown customer: 404, or the recently popular products with ``cold_start=true``);
- ``GET /api/similar/{stock_code}?n=10&min_shared_buyers=5``: ``ecommerce similar --json``;
- ``POST /api/predict-high-value``: one invoice or a list, ``ecommerce predict-high-value``'s JSON;
- ``GET /api/forecast?horizon=&granularity=week|day&country=``: ``ecommerce forecast --json``;
- ``GET /``: the web page (ask, recommendations, similar products).

Errors are ``{"error": message, "status": code, "request_id": id}`` (validation errors add ``details``):
400 malformed JSON, 404 unknown customer / stock code / country / path, 405, 413 body over the limit,
415 a body that is not JSON, 422 invalid input, 503 a model not served (yet); 500 says only "internal
error" (the traceback is in the server's log, under the request id).

Not ``from __future__ import annotations``: FastAPI reads the endpoints' annotations at run time.
"""

import asyncio
import contextlib
import importlib.util
import json
import logging
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ecommerce_platform.serving.middleware import ServingMiddleware, json_error
from ecommerce_platform.serving.state import ServingState

log = logging.getLogger("ecommerce_platform.serving")

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONTRACT = ("answer", "kind", "sources", "sql", "rows", "definition")  # rag.cli.CONTRACT (a test holds them equal)
# what a customer id and a stock code may look like in a path (anything else: 422, not a lookup)
CUSTOMER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
STOCK_CODE = r"^[A-Za-z0-9][A-Za-z0-9 ._/-]{0,31}$"
PUBLIC_NAMES = {"recommender": "the recommender (als_model)", "classifier": "the classifier",
                "forecast": "the sales forecast (sales_forecast)", "ask": "the question answerer (product index)"}


# ------------------------------------------------------------------------------------------ schemas
class ErrorBody(BaseModel):
    error: str = Field(description="What is wrong, in words")
    status: int
    request_id: str = Field(description="Also in the X-Request-ID header and the server's access log")
    details: list[dict] | None = Field(None, description="Validation errors: the field and the problem")


class Source(BaseModel):
    stock_code: str
    description: str | None
    score: float | None


class Answer(BaseModel):
    """``ecommerce ask --json``'s contract."""

    answer: str
    kind: Literal["product", "analytics", "not_answerable"]
    sources: list[Source] | None
    sql: str | None = Field(description="The SQL that computed an analytic answer")
    rows: list[dict] | None = Field(description="The rows it returned")
    definition: str | None = Field(description="The definition of the figures")


class Item(BaseModel):
    rank: int
    stock_code: str
    description: str | None
    score: float | None
    source: str
    reorder: bool | None = None
    shared_buyers: int | None = None


class Recommendation(BaseModel):
    customer_id: str
    known_customer: bool
    mode: str
    purchased_products: int | None = None
    model_run_id: str
    message: str | None = None
    items: list[Item]


class Similar(BaseModel):
    stock_code: str
    description: str | None
    min_shared_buyers: int
    buyers: int
    items: list[Item]


class Invoice(BaseModel):
    """One invoice to score (as ``ecommerce predict-high-value`` reads it)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": {
        "customer_id": "14646", "country": "Netherlands", "invoice_ts": "2011-12-01T10:00:00", "basket_lines": 40}})
    customer_id: str | int | None = Field(None, description="Optional: absent or null is a new customer")
    country: str
    invoice_ts: str = Field(description="ISO timestamp (or give invoice_date)")
    basket_lines: int | None = Field(None, description="The basket's number of lines (or give lines)")
    lines: list | None = Field(None, description="The basket's lines (counted)")


class Prediction(BaseModel):
    customer_id: str | None
    invoice_ts: str
    probability: float
    high_value: bool
    label_threshold_gbp: float
    decision_threshold: float
    known_customer: bool
    model_run_id: str


class ForecastRow(BaseModel):
    period_start: str
    period_end: str
    horizon: int
    trading_days: int
    forecast: float
    lower: float
    upper: float


class Forecast(BaseModel):
    series: str
    granularity: Literal["week", "day"]
    origin: str
    interval: float
    run_id: str
    rows: list[ForecastRow]


def ask_request_model(max_chars: int) -> type[BaseModel]:
    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"question": "what is product 84077?"}})
        question: str = Field(max_length=max_chars, description=f"The question, 1 to {max_chars:,} characters")
        top_k: int = Field(5, ge=1, le=50, description="How many products to retrieve for a product question")
        offline: bool = Field(False, description="Never call the language model, even when one is configured")

        @field_validator("question")
        @classmethod
        def not_blank(cls, value: str) -> str:
            if not value.strip():
                raise ValueError("the question is empty")
            return value

    return AskRequest


ERRORS = {code: {"model": ErrorBody} for code in (400, 404, 413, 415, 422, 503)}


# ------------------------------------------------------------------------------------------ helpers
def _plain(value):  # noqa: ANN001, ANN202
    """JSON-safe: NaN and infinities as null, numpy scalars as Python numbers."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        with contextlib.suppress(ValueError, AttributeError, TypeError):
            return _plain(value.item())
    return value


def json_response(body: Any, status: int = 200) -> Response:
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        text = json.dumps(_plain(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=str)
    return Response(text.encode(), status_code=status, media_type="application/json")


def served(request: Request, name: str):  # noqa: ANN201
    state: ServingState = request.app.state.serving
    snap = state.snapshot
    value = snap.value(name)
    if value is None:
        why = snap.errors.get(name) or "not loaded yet"
        raise HTTPException(503, f"{PUBLIC_NAMES[name]} is not served: {why}")
    return value


UNSUPPORTED = "the request body must be JSON (Content-Type: application/json)"


def _is_json(content_type: str | None) -> bool:
    """No Content-Type (the body is read as JSON), application/json or a +json type."""
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _rid(request: Request) -> str | None:
    return request.scope.get("state", {}).get("request_id")


def _field(loc) -> str:  # noqa: ANN001
    return ".".join(str(p) for p in loc)


def _swagger_static() -> Path | None:
    spec = importlib.util.find_spec("swagger_ui")  # the package's files only: it is not imported
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


# ------------------------------------------------------------------------------------------ the app
def create_app(settings=None, state: ServingState | None = None) -> FastAPI:  # noqa: ANN001, C901, PLR0915
    """The application of the deployment ``settings`` (``load_settings()`` by default). uvicorn calls it
    once per worker (``factory=True``); the models are loaded in its lifespan, before it serves."""
    if settings is None:
        from ecommerce_platform.config import load_settings

        settings = load_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        serving = state or ServingState(settings)
        await asyncio.to_thread(serving.check)
        app.state.serving = serving
        task = asyncio.create_task(_reload_loop(serving, settings.serve_reload_seconds))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    from importlib.metadata import PackageNotFoundError, version

    try:
        app_version = version("ecommerce-platform")
    except PackageNotFoundError:
        app_version = "0"
    app = FastAPI(
        title="Ecommerce platform API",
        version=app_version,
        description="Questions, recommendations, similar products, high-value predictions and the sales "
                    "forecast, served from what the platform's assets published (docs/serving.md).",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json", lifespan=lifespan,
    )
    app.add_middleware(ServingMiddleware, max_body_bytes=settings.serve_max_body_bytes,
                       access=settings.serve_access_log)
    AskRequest = ask_request_model(settings.serve_max_question_chars)  # noqa: N806
    ask_slots = asyncio.Semaphore(settings.serve_ask_concurrency)
    max_batch = settings.serve_max_batch

    # ---------------------------------------------------------------- errors: never a stack trace
    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such path: {request.url.path}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return Response(json_error(exc.status_code, message, _rid(request)), status_code=exc.status_code,
                        media_type="application/json", headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if not _is_json(request.headers.get("content-type")) and any(
                tuple(e.get("loc") or ())[:1] == ("body",) for e in errors):
            return Response(json_error(415, UNSUPPORTED, _rid(request)), status_code=415,
                            media_type="application/json")
        bad_json = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if bad_json is not None:
            why = (bad_json.get("ctx") or {}).get("error") or "not valid JSON"
            loc = tuple(bad_json.get("loc") or ())
            where = f" at character {loc[1] + 1}" if len(loc) > 1 and isinstance(loc[1], int) else ""
            return Response(json_error(400, f"malformed JSON: {why}{where}", _rid(request)), status_code=400,
                            media_type="application/json")
        details = []
        for e in errors:
            loc = tuple(e.get("loc") or ())
            msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
            if loc == ("body",) and e.get("type") == "missing":
                msg = "a JSON body is required"
            details.append({"field": _field(loc), "message": msg})
        text = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return Response(json_error(422, f"invalid request: {text}", _rid(request), details=details),
                        status_code=422, media_type="application/json")

    # ---------------------------------------------------------------- the API
    @app.get("/api/health", tags=["operations"], summary="Status and the versions served by this worker")
    async def health(request: Request) -> Response:
        return json_response(request.app.state.serving.health())

    @app.post("/api/ask", tags=["questions"], response_model=Answer, responses=ERRORS,
              summary="Ask the data (ecommerce ask --json)")
    async def ask(request: Request, body: AskRequest) -> Response:  # type: ignore[valid-type]
        from ecommerce_platform.rag.qa import answer_question

        backend = served(request, "ask")
        question = body.question.strip()
        # an answer that depends only on the data (no language model) is kept for the next time it is asked
        key = (question, body.top_k) if backend.cache is not None and (backend.llm is None or body.offline) else None
        if key is not None:
            cached = backend.cache.get(key)
            if cached is not None:
                return Response(cached, media_type="application/json", headers={"X-Answer-Cache": "hit"})
        # at most ECOMMERCE_SERVE_ASK_CONCURRENCY answers computed at once per worker: the others wait their
        # turn instead of all slowing down together (each DuckDB query already uses every core)
        async with ask_slots:
            out = await run_in_threadpool(
                answer_question, question, backend.warehouse, backend.retriever, backend.llm,
                context=backend.context, offline=body.offline, k=body.top_k,
                warn=lambda m: log.warning(m, extra={"fields": {"event": "ask_warning"}}))
        response = json_response({k: out.get(k) for k in CONTRACT})
        if key is not None:
            backend.cache.put(key, response.body)
            response.headers["X-Answer-Cache"] = "miss"
        return response

    @app.get("/api/recommend/{customer_id}", tags=["recommendations"], response_model=Recommendation,
             responses=ERRORS, summary="Products to recommend to a customer (ecommerce recommend --json)")
    async def recommend(
        request: Request,
        customer_id: Annotated[str, PathParam(pattern=CUSTOMER_ID, description="A customer id, e.g. 14646")],
        n: Annotated[int, Query(ge=1, le=500, description="How many products")] = 10,
        mode: Annotated[Literal["discovery", "next-basket"], Query(
            description="discovery: products new to the customer; next-basket: what they buy next")] = "discovery",
        cold_start: Annotated[bool, Query(
            description="For a customer the model does not know: the recently popular products instead of 404")] = False,
    ) -> Response:
        rec = served(request, "recommender")
        cid = customer_id.strip()
        if cid not in rec.customers and not cold_start:
            raise HTTPException(404, f"unknown customer {cid!r}: the model knows {len(rec.customers):,} customers "
                                     "(those with a purchase); add cold_start=true for the recently popular products")
        return json_response(rec.model.recommend(cid, n=n, mode=mode))

    @app.get("/api/similar/{stock_code}", tags=["recommendations"], response_model=Similar, responses=ERRORS,
             summary="Products bought by the same customers (ecommerce similar --json)")
    def similar(
        request: Request,
        stock_code: Annotated[str, PathParam(pattern=STOCK_CODE, description="A stock code, e.g. 85123A")],
        n: Annotated[int, Query(ge=1, le=500)] = 10,
        min_shared_buyers: Annotated[int | None, Query(
            ge=1, description="Only products bought by at least this many of the product's buyers (default 5)")] = None,
    ) -> Response:
        from ecommerce_platform.ml.contract import MIN_SHARED_BUYERS
        from ecommerce_platform.ml.recommender import UnknownItemError

        rec = served(request, "recommender")
        try:
            out = rec.model.similar(stock_code, n=n, min_shared_buyers=min_shared_buyers or MIN_SHARED_BUYERS)
        except UnknownItemError as exc:
            raise HTTPException(404, exc.args[0]) from None
        return json_response(out)

    @app.post("/api/predict-high-value", tags=["predictions"], responses=ERRORS,
              summary="Probability that an invoice is high-value (ecommerce predict-high-value)",
              response_model=Prediction | list[Prediction],
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {
                  "anyOf": [{"$ref": "#/components/schemas/Invoice"},
                            {"type": "array", "items": {"$ref": "#/components/schemas/Invoice"},
                             "maxItems": max_batch}]}}}}})
    async def predict_high_value(request: Request) -> Response:
        from ecommerce_platform.ml.classifier import PredictInputError, predict

        if not _is_json(request.headers.get("content-type")):
            raise HTTPException(415, UNSUPPORTED)
        raw = await request.body()
        if not raw.strip():
            raise HTTPException(422, "a JSON body is required: one invoice object or a list of them")
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            why = f"{exc.msg} at line {exc.lineno}, column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
                else "not UTF-8"
            raise HTTPException(400, f"malformed JSON: {why}") from None
        if isinstance(payload, list) and len(payload) > max_batch:
            raise HTTPException(422, f"{len(payload):,} invoices in one request: at most {max_batch:,}")
        from ecommerce_platform.resources.warehouse import WarehouseError

        clf = served(request, "classifier")
        try:
            out = await run_in_threadpool(predict, clf.warehouse, payload, clf.model)
        except PredictInputError as exc:
            raise HTTPException(422, str(exc)) from None
        except WarehouseError as exc:  # e.g. no clean table yet: the customers' history cannot be read
            log.warning("predict-high-value: %s", exc, extra={"fields": {"event": "warehouse_error"}})
            raise HTTPException(503, f"the customers' history cannot be read: {str(exc).splitlines()[0]}") from None
        return json_response(out if isinstance(payload, list) else out[0])

    @app.get("/api/forecast", tags=["predictions"], response_model=Forecast, responses=ERRORS,
             summary="Net revenue forecast with its prediction interval (ecommerce forecast --json)")
    async def forecast(
        request: Request,
        horizon: Annotated[int | None, Query(
            ge=1, le=3660, description="Periods ahead to return (weeks, or days with granularity=day); default all")] = None,
        granularity: Annotated[Literal["week", "day"], Query()] = "week",
        country: Annotated[str | None, Query(max_length=64, description="A country the forecast covers "
                                                                         "(default: the whole business)")] = None,
    ) -> Response:
        from ecommerce_platform.ml.contract import ALL_SERIES

        table = served(request, "forecast")
        series = country.strip() if country and country.strip() else ALL_SERIES
        entry = table.by_key.get((series.lower(), granularity))
        if entry is None:
            raise HTTPException(404, f"no forecast for {series!r}: the forecast covers {', '.join(table.series)}")
        rows = entry["rows"] if horizon is None else [r for r in entry["rows"] if r["horizon"] <= horizon]
        return json_response({**entry, "rows": rows})

    # ---------------------------------------------------------------- the page and the docs
    page = (STATIC_DIR / "index.html").read_bytes()

    @app.get("/", include_in_schema=False)
    async def index() -> Response:
        return Response(page, media_type="text/html; charset=utf-8")

    app.mount("/static/app", StaticFiles(directory=STATIC_DIR), name="static-app")
    swagger = _swagger_static()
    if swagger is not None:
        app.mount("/static/swagger", StaticFiles(directory=swagger), name="static-swagger")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        if swagger is None:
            raise HTTPException(404, "Swagger UI's files are not installed (swagger-ui-python): the schema is at "
                                     "/openapi.json")
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title="Ecommerce platform API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js", swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/app/favicon.svg",
            swagger_ui_parameters={"validatorUrl": None, "defaultModelsExpandDepth": 0})

    return app


async def _reload_loop(state: ServingState, interval: float) -> None:
    """Check the lake's signals every ``interval`` seconds (in a thread: a load never blocks requests)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.to_thread(state.check)
        except Exception:  # noqa: BLE001 - logged; the next check tries again
            log.exception("reload check failed", extra={"fields": {"event": "reload_failed"}})
