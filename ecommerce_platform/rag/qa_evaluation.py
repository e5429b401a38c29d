"""Evaluation of ``ecommerce ask`` on the questions shop workers ask (``qa_questions.json``): product
lookups, every analytic family, paraphrases, misspellings and questions the data cannot answer.

Each question carries a label: its family and what it asks (entity, metric, N, period, country, product
words or stock codes, price range). ``reference`` computes the expected answer from the label alone with
SQL written here over the clean table ``transactions`` (not the analytics views, not the answerer's
templates: a second implementation of the definitions); ``judge`` compares the answer with it:
- rankings, co-purchases: the same ranking values in order, the same keys above the last value (ties at
  the cut may be listed in any order), as many rows as asked (or all there are), the first figure stated;
- totals, counts, return rates, a product's figures, comparisons: the figure equal (pence, counts
  exactly, rates to 4 decimals) and stated in the answer, with its definition and period;
- which countries bought a product: every country (complete list), each with its net units;
- lookups: the right product first (a product with exactly the same name counts: names cannot tell them
  apart);
- refusals: kind ``not_answerable`` and no figure in the answer that the question or the data's span did
  not give (no invented figure). An answerable question refused counts against refusal precision.

``evaluate`` returns accuracy per family, refusal precision and recall, lookup hit@1 and in-process
latency; ``gate_failures`` says why a report misses the targets (the ``qa_evaluation`` asset's blocking
check).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import statistics
import time
from importlib import resources

from ecommerce_platform.rag.knowledge import NOT_PRODUCTS, UNSPECIFIED_COUNTRY

QUESTIONS_FILE = "qa_questions.json"
QA_REPORT = "rag/qa_evaluation/report.json"  # the last report that met the targets (published)
QA_LAST_RUN = "rag/qa_evaluation/last_run.json"  # the last evaluation, whatever its verdict (the check reads it)
ANALYTIC_FAMILIES = ("ranking", "total", "return_rate", "copurchase", "product_period", "product_countries", "compare")
FAMILIES = ("lookup", *ANALYTIC_FAMILIES, "refusal")
MIN_ANALYTIC_ACCURACY = 0.90
MIN_REFUSAL_RECALL = 0.95
MIN_REFUSAL_PRECISION = 0.95
MIN_LOOKUP_HIT_AT_1 = 0.97
MIN_QUESTIONS = 150
MAX_INVENTED_FIGURES = 0
THRESHOLDS = {"analytic_accuracy": MIN_ANALYTIC_ACCURACY, "refusal_recall": MIN_REFUSAL_RECALL,
              "refusal_precision": MIN_REFUSAL_PRECISION, "lookup_hit@1": MIN_LOOKUP_HIT_AT_1,
              "questions": MIN_QUESTIONS, "invented_figures": MAX_INVENTED_FIGURES}
MIN_UNITS_FOR_RATE = 100
MIN_SALES_FOR_RATE = 1000.0


def _questions_doc() -> dict:
    text = resources.files("ecommerce_platform.rag").joinpath(QUESTIONS_FILE).read_text("utf-8")
    return json.loads(text)


def load_questions() -> list[dict]:
    return _questions_doc()["questions"]


MIN_CODES_PRESENT = 0.95


def applicability(ctx, questions: list[dict] | None = None) -> dict:  # noqa: ANN001 - qa.Context
    """Whether the questions (written for the reference data set) can be asked of this data: its span of
    sales is theirs and the products they name exist. {"applicable": bool, "missing": {...}}."""
    doc = _questions_doc()
    questions = doc["questions"] if questions is None else questions
    codes = {e for q in questions for e in ([q["expect"].get("stock_code")] + list(q["expect"].get("codes") or ())) if e}
    present = sum(1 for c in codes if c in ctx.products)
    span = [ctx.vocabulary.first_day.isoformat(), ctx.vocabulary.last_day.isoformat()]
    missing = {}
    if codes and present / len(codes) < MIN_CODES_PRESENT:
        missing["products the questions name"] = {"needed": len(codes), "found": present}
    if span != doc.get("data_span", span):
        missing["span of the sales the questions were written for"] = {"needed": doc["data_span"], "found": span}
    return {"applicable": not missing, "missing": missing}


# ------------------------------------------------------------------------------------------ reference
def _lit(value) -> str:  # noqa: ANN001
    from ecommerce_platform.resources import sql_dialect

    return sql_dialect.literal(value)


def _filters(e: dict, *, product: bool = False, customer: bool = False, country: bool = False,
             period=None) -> str:  # noqa: ANN001
    """The label's filters over ``transactions`` (values quoted by the platform's literal())."""
    parts = ["(is_sale OR is_return)"]
    period = period if period is not None else e.get("period")
    if period:
        parts.append(f"invoice_date BETWEEN {_lit(dt.date.fromisoformat(period[0]))} AND "
                     f"{_lit(dt.date.fromisoformat(period[1]))}")
    if e.get("country"):
        parts.append(f"country = {_lit(e['country'])}")
    if e.get("customer"):
        parts.append(f"customer_id = {_lit(e['customer'])}")
    if e.get("codes"):
        parts.append(f"stock_code IN {_lit(tuple(e['codes']))}")
    for alternatives in e.get("words") or ():
        norm = ("' ' || replace(replace(replace(replace(upper(coalesce(description, '')), '-', ' '), ',', ' '), "
                "'/', ' '), '''', '')")
        parts.append("description IN (SELECT description FROM (SELECT DISTINCT description FROM transactions) AS d "
                     "WHERE " + " OR ".join(f"{norm} LIKE {_lit('% ' + w + '%')}" for w in alternatives) + ")")
    if product or e.get("codes") or e.get("words"):
        parts.append(f"stock_code NOT IN {_lit(NOT_PRODUCTS)}")
    if customer:
        parts.append("customer_id IS NOT NULL")
    if country:
        parts.append(f"country <> {_lit(UNSPECIFIED_COUNTRY)}")
    return " AND ".join(parts)


SUMS = """
    SUM(CASE WHEN is_sale THEN quantity ELSE 0 END) AS units_sold,
    SUM(CASE WHEN is_return THEN -quantity ELSE 0 END) AS units_returned,
    SUM(CASE WHEN is_sale THEN quantity ELSE 0 END) - SUM(CASE WHEN is_return THEN -quantity ELSE 0 END) AS net_units,
    SUM(CASE WHEN is_sale THEN line_total ELSE 0 END) AS gross_sales,
    SUM(CASE WHEN is_return THEN -line_total ELSE 0 END) AS returns_value,
    SUM(CASE WHEN is_sale THEN line_total ELSE 0 END) - SUM(CASE WHEN is_return THEN -line_total ELSE 0 END) AS net_revenue"""
COUNTS = {
    "orders": "COUNT(DISTINCT CASE WHEN is_sale THEN invoice_no END) AS orders",
    "customers": "COUNT(DISTINCT CASE WHEN is_sale THEN customer_id END) AS customers",
    "products": "COUNT(DISTINCT CASE WHEN is_sale THEN stock_code END) AS products",
    "countries": "COUNT(DISTINCT CASE WHEN is_sale AND country <> 'Unspecified' THEN country END) AS countries",
}


def _select(counts) -> str:  # noqa: ANN001
    return ",".join([SUMS, *(f"\n    {COUNTS[name]}" for name in counts)])


MEASURES = _select(COUNTS)


def measures(metric: str | None) -> str:
    """The sums and only the distinct count the metric needs (a distinct count per group is most of a
    grouped query's time): ``MEASURES`` trimmed for a ranking or a list."""
    needed = "orders" if metric == "aov" else metric
    return _select([name for name in COUNTS if name == needed])


KEY_COLUMNS = {"product": "stock_code", "customer": "customer_id", "country": "country",
               "month": "CAST(date_trunc('month', invoice_date) AS DATE)", "day": "invoice_date"}
ROW_KEYS = {"product": "stock_code", "customer": "customer_id", "country": "country", "month": "sale_month",
            "day": "invoice_date"}


def value_column(entity: str | None, metric: str, basis: str | None = None) -> str:
    """The column of an answer's rows that holds the label's metric (the ask contract's names)."""
    if metric == "returns":
        return "units_returned" if entity in (None, "product") else "returns_value"
    if metric == "return_rate":
        return "unit_return_rate" if (entity == "product" or basis == "units") else "value_return_rate"
    return {"units": "net_units", "revenue": "net_revenue", "orders": "orders", "customers": "customers",
            "products": "products", "countries": "countries", "aov": "avg_order_value"}[metric]


def _rows(warehouse, sql: str) -> list[dict]:  # noqa: ANN001
    from ecommerce_platform.rag.qa import run_rows

    return run_rows(warehouse, sql)


def _derive(r: dict) -> dict:
    sold, back = r.get("units_sold") or 0, r.get("units_returned") or 0
    gross, ret = r.get("gross_sales") or 0.0, r.get("returns_value") or 0.0
    r["unit_return_rate"] = round(back / sold, 4) if sold else None
    r["value_return_rate"] = round(ret / gross, 4) if gross else None
    r["avg_order_value"] = round(gross / r["orders"], 2) if r.get("orders") else None
    r["avg_price"] = round(gross / sold, 2) if sold else None
    return r


def reference(item: dict, warehouse) -> dict:  # noqa: ANN001
    """The expected answer of a labelled question, from ``transactions``."""
    family, e = item["family"], item["expect"]
    if family in ("lookup", "refusal"):
        return dict(e)
    if family == "ranking":
        entity, metric = e["entity"], e["metric"]
        sql = (f"SELECT {KEY_COLUMNS[entity]} AS key, {measures(metric)} FROM transactions WHERE "
               f"{_filters(e, product=entity == 'product', customer=entity == 'customer', country=entity == 'country')} "
               f"GROUP BY 1")
        rows = [_derive(r) for r in _rows(warehouse, sql)]
        col = value_column(entity, metric)
        if entity == "product":
            rows = [r for r in rows if (r["units_sold"] or 0) > 0]
            if e.get("price_max") is not None:
                rows = [r for r in rows if r["avg_price"] is not None and r["avg_price"] < e["price_max"]]
            if e.get("price_min") is not None:
                rows = [r for r in rows if r["avg_price"] is not None and r["avg_price"] > e["price_min"]]
            if metric == "return_rate":
                rows = [r for r in rows if r["units_sold"] >= MIN_UNITS_FOR_RATE]
        else:
            rows = [r for r in rows if (r["gross_sales"] or 0) > 0 and r["key"] is not None]
            if metric == "return_rate":
                rows = [r for r in rows if r["gross_sales"] >= MIN_SALES_FOR_RATE]
        rows = [r for r in rows if r.get(col) is not None]
        sign = -1 if e.get("order", "desc") == "desc" else 1
        rows.sort(key=lambda r: (sign * round(float(r[col]), 6), str(r["key"])))
        return {"entity": entity, "column": col, "n": e["n"], "ranking": [(str(r["key"]), r[col]) for r in rows]}
    if family in ("total", "return_rate", "product_period"):
        sql = f"SELECT {MEASURES} FROM transactions WHERE {_filters(e, product=e.get('metric') == 'products')}"
        row = _derive(_rows(warehouse, sql)[0])
        if family == "return_rate":
            col = "unit_return_rate" if e.get("basis") == "units" else "value_return_rate"
        else:
            col = value_column(None, e["metric"])
        return {"column": col, "value": row.get(col), "row": row}
    if family == "compare":
        values = []
        col = value_column(None, e["metric"])
        for per in e["periods"]:
            sql = f"SELECT {MEASURES} FROM transactions WHERE {_filters(e, period=per)}"
            values.append(_derive(_rows(warehouse, sql)[0]).get(col))
        return {"column": col, "values": values}
    if family == "product_countries":
        sql = (f"SELECT country AS key, {measures(None)} FROM transactions WHERE {_filters(e, country=True)} "
               f"GROUP BY 1")
        rows = [r for r in _rows(warehouse, sql) if (r["gross_sales"] or 0) > 0]
        return {"countries": {r["key"]: r["net_units"] for r in rows}}
    if family == "copurchase":
        anchor = _filters({k: v for k, v in e.items() if k != "codes"})
        codes = _lit(tuple(e["codes"]))
        sql = (f"WITH anchor AS (SELECT DISTINCT invoice_no FROM transactions WHERE is_sale AND stock_code IN "
               f"{codes} AND {anchor}) SELECT t.stock_code AS key, COUNT(DISTINCT t.invoice_no) AS together "
               f"FROM transactions AS t JOIN anchor AS a ON a.invoice_no = t.invoice_no WHERE t.is_sale AND "
               f"t.stock_code NOT IN {codes} AND t.stock_code NOT IN {_lit(NOT_PRODUCTS)} GROUP BY 1")
        rows = sorted(_rows(warehouse, sql), key=lambda r: (-r["together"], r["key"]))
        return {"column": "orders_together", "n": e.get("n", 10), "ranking": [(r["key"], r["together"]) for r in rows]}
    raise ValueError(f"unknown family {family!r}")


# ------------------------------------------------------------------------------------------ judging
def _eq(a, b, col: str) -> bool:  # noqa: ANN001
    if a is None or b is None:
        return a is None and b is None
    if "rate" in col:
        return abs(float(a) - float(b)) < 1e-4 + 1e-9
    if col in ("net_revenue", "gross_sales", "returns_value", "avg_order_value", "avg_price"):
        return abs(float(a) - float(b)) < 0.011
    return abs(float(a) - float(b)) < 1e-6


def stated(text: str, col: str, value) -> bool:  # noqa: ANN001
    """The figure appears in the answer as the answerer formats it."""
    if value is None:
        return True
    v = float(value)
    if "rate" in col:
        return f"{v * 100:.1f}%" in text
    if col in ("net_revenue", "gross_sales", "returns_value", "avg_order_value", "avg_price"):
        return f"£{abs(v):,.2f}" in text
    return f"{int(round(v)):,}" in text


_FIGURE = re.compile(r"\d[\d,]*(?:\.\d+)?")


def invented_figures(answer: str, question: str, allowed_text: str = "") -> list[str]:
    """Numbers in a refusal that neither the question nor ``allowed_text`` (the data's span) gave."""
    allowed = set(_FIGURE.findall(question)) | set(_FIGURE.findall(allowed_text))
    allowed |= {p for a in list(allowed) for p in re.split(r"[-,.]", a)}
    out = []
    for token in _FIGURE.findall(answer):
        if token in allowed or all(p in allowed for p in re.split(r"[-,.]", token) if p):
            continue
        out.append(token)
    return out


def judge(item: dict, answer: dict, expected: dict, *, same_name: dict | None = None, span: str = "") -> tuple[bool, str]:
    """(correct, why not)."""
    family, e = item["family"], item["expect"]
    kind, text, rows = answer.get("kind"), answer.get("answer") or "", answer.get("rows") or []
    if family == "refusal":
        if kind != "not_answerable":
            return False, f"answered ({kind}) instead of refusing"
        bad = invented_figures(text, item["question"], span)
        return (not bad), (f"figures not in the question: {bad}" if bad else "")
    if kind == "not_answerable":
        return False, "refused an answerable question"
    if family == "lookup":
        src = answer.get("sources") or []
        if kind != "product" or not src:
            return False, f"kind {kind}, no product source"
        ok = {e["stock_code"]} | set((same_name or {}).get(e["stock_code"], ()))
        return (src[0]["stock_code"] in ok), f"first source {src[0]['stock_code']}, expected {e['stock_code']}"
    if kind != "analytics":
        return False, f"kind {kind}, expected analytics"
    if not answer.get("definition"):
        return False, "no definition"
    period = e.get("period") or (e.get("periods") or [None])[0]
    if period and span:
        first = max(period[0], span.split()[0]) if " " in span else period[0]
        if first not in text:
            return False, f"period start {first} not stated"
    if family in ("ranking", "copurchase"):
        col = expected["column"]
        key = ROW_KEYS.get(expected.get("entity") or "product", "stock_code")
        want = expected["ranking"][: expected["n"]]
        if len(rows) != len(want):
            return False, f"{len(rows)} rows, expected {len(want)}"
        got_vals = [r.get(col) for r in rows]
        if not all(_eq(a, b, col) for a, (_, b) in zip(got_vals, want)):
            return False, f"values {got_vals[:5]} != {[v for _, v in want[:5]]}"
        if want:
            cut = want[-1][1]
            above_want = {k for k, v in want if not _eq(v, cut, col)}
            above_got = {str(r.get(key)) for r in rows if not _eq(r.get(col), cut, col)}
            if above_want != above_got:
                return False, f"keys differ: {sorted(above_want - above_got)[:3]} vs {sorted(above_got - above_want)[:3]}"
            if not stated(text, col, want[0][1]):
                return False, f"first figure {want[0][1]} not stated"
        return True, ""
    if family in ("total", "return_rate", "product_period"):
        col = expected["column"]
        got = rows[0].get(col) if rows else None
        if got is None and rows and col in ("unit_return_rate", "value_return_rate"):
            got = rows[0].get(col)
        if not _eq(got, expected["value"], col):
            return False, f"{col} {got} != {expected['value']}"
        if not stated(text, col, expected["value"]):
            return False, f"figure {expected['value']} not stated"
        return True, ""
    if family == "compare":
        col = expected["column"]
        got = [r.get(col) for r in rows]
        if len(got) != 2 or not all(_eq(a, b, col) for a, b in zip(got, expected["values"])):
            return False, f"{got} != {expected['values']}"
        if not all(stated(text, col, v) for v in expected["values"]):
            return False, "figures not stated"
        return True, ""
    if family == "product_countries":
        got = {r.get("country"): r.get("net_units") for r in rows}
        want = {k: v for k, v in expected["countries"].items()}
        if set(got) != set(want):
            return False, f"countries differ: {sorted(set(want) ^ set(got))[:5]}"
        bad = [k for k in want if not _eq(got[k], want[k], "net_units")]
        return (not bad), (f"net units differ for {bad[:3]}" if bad else "")
    return False, f"unknown family {family}"


# ------------------------------------------------------------------------------------------ evaluation
def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def evaluate(warehouse, retriever, questions: list[dict] | None = None, answer_fn=None) -> dict:  # noqa: ANN001
    """Ask every question (offline) and judge it. ``answer_fn(question, warehouse, retriever, context)``:
    the answerer (default ``qa.answer_question``)."""
    from ecommerce_platform.rag import qa

    questions = load_questions() if questions is None else questions
    ctx = qa.Context.load(warehouse, retriever)
    if answer_fn is None:
        def answer_fn(question, wh, r, context):  # noqa: ANN001, ANN202
            return qa.answer_question(question, wh, r, None, context=context, offline=True, warn=lambda m: None)
    names: dict[str, list[str]] = {}
    for code, rec in ctx.products.items():
        names.setdefault(" ".join(str(rec["description"]).split()), []).append(code)
    same_name = {c: v for v in names.values() for c in v}
    span = f"{ctx.vocabulary.first_day.isoformat()} {ctx.vocabulary.last_day.isoformat()}"
    results = []
    for item in questions:
        expected = reference(item, warehouse)
        t0 = time.perf_counter()
        try:
            answer = answer_fn(item["question"], warehouse, retriever, ctx)
            error = None
        except Exception as exc:  # noqa: BLE001 - a crash is a wrong answer, recorded
            answer, error = {"kind": "error", "answer": f"{type(exc).__name__}: {exc}"}, str(exc)
        seconds = time.perf_counter() - t0
        ok, why = judge(item, answer, expected, same_name=same_name, span=span) if error is None else (False, error)
        results.append({"question": item["question"], "family": item["family"], "correct": bool(ok),
                        "why": why[:300], "kind": answer.get("kind"), "refused": answer.get("kind") == "not_answerable",
                        "seconds": round(seconds, 4), "answer": (answer.get("answer") or "")[:300]})
    return summarize(results)


def summarize(results: list[dict]) -> dict:
    """The report of per-question results: accuracy per family, refusal precision/recall, hit@1."""
    fam = {}
    for f in FAMILIES:
        sel = [r for r in results if r["family"] == f]
        fam[f] = {"questions": len(sel), "correct": sum(r["correct"] for r in sel),
                  "accuracy": round(sum(r["correct"] for r in sel) / len(sel), 4) if sel else None}
    analytic = [r for r in results if r["family"] in ANALYTIC_FAMILIES]
    unanswerable = [r for r in results if r["family"] == "refusal"]
    refused = [r for r in results if r["refused"]]
    refused_right = [r for r in unanswerable if r["refused"]]
    invented = [r for r in unanswerable if r["refused"] and not r["correct"]]
    seconds = [r["seconds"] for r in results]
    return {
        "questions": len(results),
        "families": fam,
        "analytic_accuracy": round(sum(r["correct"] for r in analytic) / len(analytic), 4) if analytic else None,
        "refusal_recall": round(len(refused_right) / len(unanswerable), 4) if unanswerable else None,
        "refusal_precision": round(len(refused_right) / len(refused), 4) if refused else None,
        "invented_figures": len(invented),
        "lookup_hit@1": fam["lookup"]["accuracy"],
        "accuracy": round(sum(r["correct"] for r in results) / len(results), 4) if results else None,
        "latency_p50_ms": round(1000 * _pct(seconds, 50), 1) if seconds else None,
        "latency_p95_ms": round(1000 * _pct(seconds, 95), 1) if seconds else None,
        "thresholds": THRESHOLDS,
        "results": results,
    }


def recount(report: dict) -> dict:
    """The report's figures counted again from its per-question results (what a check trusts)."""
    return summarize(list(report.get("results") or []))


def gate_failures(report: dict) -> list[str]:
    """Why a report misses the targets (empty: it meets them). Figures recounted from the results."""
    r = recount(report)
    out = []
    if r["questions"] < MIN_QUESTIONS:
        out.append(f"{r['questions']} questions < {MIN_QUESTIONS}")
    for key, minimum in (("analytic_accuracy", MIN_ANALYTIC_ACCURACY), ("refusal_recall", MIN_REFUSAL_RECALL),
                         ("refusal_precision", MIN_REFUSAL_PRECISION), ("lookup_hit@1", MIN_LOOKUP_HIT_AT_1)):
        value = r[key]
        if value is None or value < minimum:
            out.append(f"{key} {value} < {minimum}")
    if r["invented_figures"] > MAX_INVENTED_FIGURES:
        out.append(f"{r['invented_figures']} refusals state figures the question did not give")
    for key in ("questions", "analytic_accuracy", "refusal_recall", "refusal_precision", "lookup_hit@1",
                "invented_figures"):
        if key in report and report[key] != r[key]:
            out.append(f"the report says {key} = {report[key]}, its results say {r[key]}")
    return out


def latency(seconds: list[float]) -> dict:
    return {"p50": statistics.median(seconds) if seconds else None, "p95": _pct(seconds, 95)}


def report_metadata(report: dict) -> dict:
    """What the asset shows (small: the per-question results stay in the report file)."""
    fams = [{"family": f, **v} for f, v in report["families"].items() if v["questions"]]
    misses = [{"family": r["family"], "question": r["question"], "why": r["why"][:160]}
              for r in report["results"] if not r["correct"]][:10]
    return {"status": report.get("status", "n/a"), "questions": report["questions"],
            "analytic_accuracy": report["analytic_accuracy"], "refusal_recall": report["refusal_recall"],
            "refusal_precision": report["refusal_precision"], "invented_figures": report["invented_figures"],
            "lookup_hit@1": report["lookup_hit@1"], "accuracy": report["accuracy"],
            "latency_p50_ms": report["latency_p50_ms"], "latency_p95_ms": report["latency_p95_ms"],
            "families": fams, "misses": misses, "failures": report.get("failures", []),
            "thresholds": report.get("thresholds", THRESHOLDS)}


def recheck(report: dict, warehouse, embeddings, every: int = 10) -> dict:  # noqa: ANN001
    """The check's view of a published report: its figures recounted from its results (``gate_failures``),
    and every ``every``-th question asked again (published index, offline) and judged: a verdict that
    differs from the report's means the report does not describe what ``ask`` answers now."""
    from ecommerce_platform.rag.store import IndexNotBuilt, open_index

    failures = gate_failures(report)
    asked = 0
    results = {r["question"]: r for r in report.get("results") or []}
    sample = [q for i, q in enumerate(load_questions()) if i % max(1, every) == 0]
    missing = [q["question"] for q in sample if q["question"] not in results]
    if missing:
        failures.append(f"{len(missing)} evaluation questions are not in the report, e.g. {missing[:2]}")
    try:
        retriever, _ = open_index(warehouse.lake, embeddings)
    except IndexNotBuilt as exc:
        return {"failures": [*failures, str(exc)], "recount": recount(report), "asked_again": 0}
    again = evaluate(warehouse, retriever, questions=[q for q in sample if q["question"] in results])
    for r in again["results"]:
        asked += 1
        if r["correct"] != results[r["question"]]["correct"]:
            failures.append(f"asked again, {r['question']!r} is {'right' if r['correct'] else 'wrong'}; the "
                            f"report says {'right' if results[r['question']]['correct'] else 'wrong'}")
    return {"failures": failures, "recount": recount(report), "asked_again": asked}
