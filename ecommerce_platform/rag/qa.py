"""Ask the data: ``answer_question(question, warehouse, retriever, llm) -> dict``, the one entry point of
``ecommerce ask`` (and of an HTTP server later). The answer follows the ``ask --json`` contract::

    {"answer": str, "kind": "product" | "analytics" | "not_answerable",
     "sources": [{"stock_code", "description", "score"}], "sql": str | None, "rows": [dict] | None,
     "definition": str | None}

The router (``questions.parse``, deterministic):
- product questions (a name, a stock code) -> retrieval over the product index and the product's facts
  (``answer.py``); several products equally good -> listed, and the user is asked which one;
- analytic questions (rankings, totals and counts, return rates, co-purchases, a product's figures in a
  period, comparisons, which countries bought a product) -> SQL over the analytics view ``sale_lines``
  (THE sales definition turned into amounts) from the templates ``sql/qa_*.sql``, every value of the
  question a literal (``sql_dialect.render``); the answer states the figure, its definition and the
  period;
- what the data cannot answer (costs, margins, suppliers, stock levels, web traffic, other countries,
  periods outside the data, products or customers it does not have, fee lines) -> an explicit refusal
  that says what the data holds, with no figure.
With a language model (``llm`` enabled): analytic questions go through text-to-SQL with tool calling
(``text_to_sql``); product answers are written by the model from the retrieved facts (``answer.py``);
any failure falls back to the offline answer, with a warning.

Lists are complete or say how many more there are; fee, postage and voucher lines are never products;
'Unspecified' (no country) is never a country.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import time
from dataclasses import dataclass, field

from ecommerce_platform.rag.knowledge import NOT_PRODUCTS, UNSPECIFIED_COUNTRY
from ecommerce_platform.rag.questions import STOPWORDS, Period, Query, Vocabulary, parse

STOP_NAME_WORDS = frozenset(STOPWORDS) - {"set", "pack", "box", "bag"}

SQL_PACKAGE = "ecommerce_platform.rag"
KINDS = ("product", "analytics", "not_answerable")
MAX_N = 100
ALL_ROWS = 1000  # "complete list" answers (countries of a product): more than there are countries
MIN_UNITS_FOR_RATE = 100  # products ranked by return rate: at least this many units sold in the period
MIN_SALES_FOR_RATE = 1000.0  # customers / countries ranked by return rate: at least this gross, GBP
LOW_CONFIDENCE = 0.6  # retrieval score under which a name match is only the closest one
NO_MATCH = 0.45  # retrieval score under which nothing is said to match

DATA_HOLDS = ("The data holds the shop's invoice lines from {first} to {last}: products (stock codes, names, "
              "unit prices), quantities sold, cancelled and returned, invoice dates, customer ids (no names "
              "or other personal details) and their countries.")

DEFINITIONS = {
    "units": "net units = units sold (sale lines: is_sale, never cancelled orders) minus units cancelled or "
             "returned (is_return lines, counted when the return was raised); guest checkouts included",
    "revenue": "net revenue = gross sales minus returns, GBP, as the sales_kpis view counts it (sale lines: "
               "is_sale; returns: is_return lines, counted when the return was raised); guest checkouts included",
    "orders": "orders = distinct invoices with a sale line (cancelled invoices are not orders); guest checkouts "
              "included",
    "returns": "returns = units on cancelled or returned product lines (is_return), counted when the return was "
               "raised, and their value in GBP",
    "customers": "customers = distinct known customers with a sale (guest checkouts have no customer id: their "
                 "sales count in money and units, not as customers)",
    "products": "products = distinct stock codes of real products with a sale (fee, postage and voucher lines "
                "are not products)",
    "countries": "countries = distinct customer countries with a sale ('Unspecified', lines without a country, "
                 "is not a country)",
    "aov": "average order value = gross sales / orders (invoices with a sale line), GBP; guest checkouts included",
    "return_rate_units": "return rate = units cancelled or returned / units sold in the period (as the "
                         "popular_products view)",
    "return_rate_value": "return rate = value of returns / gross sales in the period (as the returns view)",
    "copurchase": "bought with = other products sold on the same invoices (invoices with a sale of the product); "
                  "fee, postage and voucher lines are not products",
}
PRODUCT_NOTE = "fee, postage and voucher lines are not products"
COUNTRY_NOTE = "'Unspecified' (lines without a country) is not a country"
GUEST_NOTE = "guest checkouts (no customer id) are not customers"


# ------------------------------------------------------------------------------------------ data access
def plain(value):  # noqa: ANN001, ANN201
    """A value as JSON-able Python: Decimal/numpy -> float/int, dates -> ISO text, NaN -> None."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError):
            pass
    if isinstance(value, decimal.Decimal):
        value = float(value)
    if isinstance(value, float):
        return None if not math.isfinite(value) else value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        return value.isoformat()
    if isinstance(value, (bool, int, str)):
        return value
    return str(value)


def run_rows(warehouse, sql: str) -> list[dict]:  # noqa: ANN001
    """The rows of ``sql`` as plain dicts, through the warehouse (``query_rows`` where the warehouse has
    it, e.g. the CLI's read-only connection; else ``query_df``)."""
    if hasattr(warehouse, "query_rows"):
        rows = warehouse.query_rows(sql)
    else:
        df = warehouse.query_df(sql)
        rows = df.to_dict("records")
    return [{k: plain(v) for k, v in r.items()} for r in rows]


def template(name: str) -> str:
    from ecommerce_platform.resources import sql_dialect

    return sql_dialect.read_sql(SQL_PACKAGE, name)


# one scan: the countries with a sale, and the first and last day of sales
CONTEXT_SQL = ("SELECT country, MIN(invoice_date) AS first_day, MAX(invoice_date) AS last_day FROM sale_lines "
               "WHERE is_sale GROUP BY country ORDER BY country")


_NAME_TOKEN = re.compile(r"[a-z0-9]+")


def name_tokens(text: str | None) -> list[str]:
    """Words of a product name, as questions are normalised (hyphens as spaces, apostrophes dropped)."""
    return _NAME_TOKEN.findall(str(text or "").lower().replace("'", ""))


@dataclass
class Context:
    """What answering needs to know, read once: the parser's vocabulary (countries and the span of the
    sales from the warehouse, product names), and the products' facts. Products come from the SERVED
    index when there is one (``retriever.facts()``: what passed the index's gate), else from the table
    product_knowledge."""

    vocabulary: Vocabulary
    products: dict[str, dict]
    loaded_at: float = field(default_factory=time.monotonic)
    _words: tuple | None = field(default=None, repr=False, compare=False)  # (sorted name words, their codes)

    @classmethod
    def load(cls, warehouse, retriever=None) -> "Context":  # noqa: ANN001
        from ecommerce_platform.rag.knowledge import records_from_rows

        facts = retriever.facts() if retriever is not None and hasattr(retriever, "facts") else None
        if facts is None:
            facts = records_from_rows(run_rows(warehouse, "SELECT * FROM product_knowledge ORDER BY stock_code"))
        products = {r["stock_code"]: dict(r) for r in facts}
        words: set[str] = set()
        for r in products.values():
            r["tokens"] = set(name_tokens(r["description"]))
            r["all_tokens"] = r["tokens"] | set(name_tokens(r.get("other_names")))
            words |= r["all_tokens"]
        try:
            per_country = run_rows(warehouse, CONTEXT_SQL)
            countries = tuple(r["country"] for r in per_country if r["country"] and r["country"] != UNSPECIFIED_COUNTRY)
            span = {"first_day": min((str(r["first_day"]) for r in per_country), default=None),
                    "last_day": max((str(r["last_day"]) for r in per_country), default=None)}
        except Exception:  # noqa: BLE001 - no analytics view: products can still be looked up
            days = [str(r.get(k))[:10] for r in products.values() for k in ("first_sale", "last_sale") if r.get(k)]
            span = {"first_day": min(days) if days else None, "last_day": max(days) if days else None}
            countries = ()
        first = dt.date.fromisoformat(str(span["first_day"])[:10]) if span["first_day"] else dt.date(2010, 12, 1)
        last = dt.date.fromisoformat(str(span["last_day"])[:10]) if span["last_day"] else first
        vocab = Vocabulary(countries=countries, first_day=first, last_day=last, product_words=frozenset(words),
                           codes=frozenset(c.upper() for c in products))
        return cls(vocab, products)

    def codes_with_word(self, prefix: str) -> set[str]:
        """Products with a name word (description or other names) starting with ``prefix`` (a binary search
        of the products' sorted words, not a scan of every product)."""
        import bisect

        if self._words is None:
            pairs = sorted((t, c) for c, r in self.products.items() for t in r["all_tokens"])
            self._words = ([t for t, _ in pairs], [c for _, c in pairs])
        words, codes = self._words
        out, i = set(), bisect.bisect_left(words, prefix)
        while i < len(words) and words[i].startswith(prefix):
            out.add(codes[i])
            i += 1
        return out

    def name(self, code: str) -> str:
        rec = self.products.get(code)
        return rec["description"] if rec else code

    def facts(self, code: str) -> dict:
        """The product's facts (as the index holds them), without the parser's word sets."""
        return {k: v for k, v in self.products[code].items() if k not in ("tokens", "all_tokens")}

    def holds(self) -> str:
        v = self.vocabulary
        return DATA_HOLDS.format(first=v.first_day.isoformat(), last=v.last_day.isoformat())


_CONTEXTS: dict[tuple[int, int], Context] = {}
CONTEXT_TTL_SECONDS = 300.0


def context_for(warehouse, retriever=None) -> Context:  # noqa: ANN001
    """The context of a warehouse and retriever, cached for a few minutes (a server answers many)."""
    key = (id(warehouse), id(retriever))
    ctx = _CONTEXTS.get(key)
    if ctx is None or time.monotonic() - ctx.loaded_at > CONTEXT_TTL_SECONDS:
        ctx = _CONTEXTS[key] = Context.load(warehouse, retriever)
    return ctx


# ------------------------------------------------------------------------------------------ SQL
def _sql():  # noqa: ANN202
    """(Sql, render) of the platform's sql_dialect (values as literals; Sql: fragments written here)."""
    from ecommerce_platform.resources import sql_dialect

    d = sql_dialect
    return d.Sql, d.render


# the description of a line as questions are normalised: upper case, hyphens, commas and slashes as
# spaces, apostrophes dropped, a leading space (a word of the name starts after a space)
DESC_NORMALIZED = ("(' ' || replace(replace(replace(replace(upper(coalesce(description, '')), '-', ' '), ',', ' '), "
                   "'/', ' '), '''', ''))")


def lines_filter(q: Query, *, period: Period | None = None, codes: tuple[str, ...] | None = None,
                 products_only: bool = False, words: bool = True, known_customers: bool = False,
                 countries_only: bool = False) -> str:
    """The WHERE condition on sale_lines for a question: fixed fragments, every value a literal."""
    Sql, render = _sql()
    parts: list[str] = []
    period = period if period is not None else q.period
    if period is not None:
        parts.append(render("invoice_date BETWEEN {start} AND {end}", start=period.start, end=period.end))
    if q.country:
        parts.append(render("country = {country}", country=q.country))
    if countries_only:
        parts.append(render("country <> {unspecified}", unspecified=UNSPECIFIED_COUNTRY))
    if q.customer:
        parts.append(render("customer_id = {customer}", customer=q.customer))
    if codes:
        parts.append(render("stock_code IN {codes}", codes=tuple(codes)))
    if words:
        for alternatives in q.words:
            ors = [render(DESC_NORMALIZED + " LIKE {pattern}", pattern=f"% {w}%") for w in alternatives]
            # the names are matched once each (a few thousand), not once per line (hundreds of thousands)
            parts.append("description IN (SELECT description FROM (SELECT DISTINCT description FROM sale_lines) "
                         "AS names WHERE " + " OR ".join(ors) + ")")
    if products_only or codes or (words and q.words):
        parts.append(render("stock_code NOT IN {not_products}", not_products=NOT_PRODUCTS))
    if known_customers:
        parts.append("NOT is_guest AND customer_id IS NOT NULL")
    return Sql(" AND ".join(parts) if parts else "TRUE")


KEYS = {"product": "stock_code", "customer": "customer_id", "country": "country", "month": "sale_month",
        "day": "invoice_date"}
# metric -> (column ranked on, per entity where it differs)
RANK_COLUMNS = {"units": "net_units", "revenue": "net_revenue", "orders": "orders", "customers": "customers",
                "aov": "avg_order_value"}


def rank_column(entity: str, metric: str) -> str:
    if metric == "returns":
        return "units_returned" if entity == "product" else "returns_value"
    if metric == "return_rate":
        return "unit_return_rate" if entity == "product" else "value_return_rate"
    if metric == "aov":
        return "avg_price" if entity == "product" else "aov"
    return RANK_COLUMNS.get(metric, "net_revenue")


def ranking_sql(q: Query, entity: str, metric: str, n: int, order: str, *, codes=None,  # noqa: ANN001
                countries_only: bool | None = None) -> tuple[str, str]:
    """(SQL, the column ranked on) of a ranking."""
    Sql, render = _sql()
    col = rank_column(entity, metric)
    having = ["key IS NOT NULL"]
    if entity == "product":
        having.append("units_sold > 0")
        if q.price_max is not None:
            having.append(render("avg_price < {p}", p=float(q.price_max)))
        if q.price_min is not None:
            having.append(render("avg_price > {p}", p=float(q.price_min)))
        if metric == "return_rate":
            having.append(render("units_sold >= {m}", m=MIN_UNITS_FOR_RATE))
    else:
        having.append("gross_sales > 0")
        if metric == "return_rate":
            having.append(render("gross_sales >= {m}", m=MIN_SALES_FOR_RATE))
    column = col if col != "aov" else "avg_order_value"
    direction = "DESC" if order == "desc" else "ASC"
    sql = render(
        template("qa_ranking.sql"),
        lines_filter=lines_filter(q, codes=codes, products_only=entity == "product",
                                  known_customers=entity == "customer",
                                  countries_only=entity == "country" if countries_only is None else countries_only),
        key=Sql(KEYS[entity]), having=Sql(" AND ".join(having)), rank_value=Sql(column),
        order_by=Sql(f"{column} {direction} NULLS LAST, key"), limit=int(n))
    return sql, column


def totals_sql(q: Query, *, period: Period | None = None, codes=None, products_only: bool = False) -> str:  # noqa: ANN001
    _, render = _sql()
    return render(template("qa_totals.sql"), lines_filter=lines_filter(q, period=period, codes=codes,
                                                                       products_only=products_only),
                  unspecified=UNSPECIFIED_COUNTRY)


def copurchase_sql(q: Query, codes: tuple[str, ...], n: int) -> str:
    _, render = _sql()
    return render(template("qa_copurchase.sql"), lines_filter=lines_filter(q, words=False), codes=tuple(codes),
                  not_products=NOT_PRODUCTS, limit=int(n))


# ------------------------------------------------------------------------------------------ formatting
def money(x) -> str:  # noqa: ANN001
    x = float(x or 0)
    return f"-£{-x:,.2f}" if x < 0 else f"£{x:,.2f}"


def count(x) -> str:  # noqa: ANN001
    return f"{int(x or 0):,}"


def n_of(x, one: str, many: str | None = None) -> str:  # noqa: ANN001
    """``1 order``, ``2,345 orders``."""
    n = int(x or 0)
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def pct(x) -> str:  # noqa: ANN001
    return "n/a" if x is None else f"{float(x) * 100:.1f}%"


def quoted(text: str) -> str:
    from ecommerce_platform.rag.knowledge import one_line

    return "\u201c" + one_line(text) + "\u201d"


def period_text(q: Query, period: Period | None = None) -> str:
    period = period if period is not None else q.period
    return period.describe() if period else "all the data"


def all_data(ctx: Context) -> str:
    v = ctx.vocabulary
    return f"all the data ({v.first_day.isoformat()} to {v.last_day.isoformat()})"


def where_text(q: Query, ctx: Context, period: Period | None = None, words: bool = True) -> str:
    period = period if period is not None else q.period
    bits = [period.describe() if period else all_data(ctx)]
    if q.country:
        bits.append(f"customers in {q.country}")
    if q.customer:
        bits.append(f"customer {q.customer}")
    if q.words and words:
        bits.append("products whose name contains " + " and ".join(
            "/".join(alt) for alt in q.words))
    if q.price_max is not None and q.price_min is not None:
        bits.append(f"average unit price between {money(q.price_min)} and {money(q.price_max)}")
    elif q.price_max is not None:
        bits.append(f"average unit price under {money(q.price_max)}")
    elif q.price_min is not None:
        bits.append(f"average unit price over {money(q.price_min)}")
    return "; ".join(bits)


def value_text(entity: str, column: str, row: dict) -> str:
    v = row.get(column)
    if column in ("net_revenue", "gross_sales", "returns_value", "avg_price", "avg_order_value"):
        main = money(v) + {"net_revenue": " net revenue", "gross_sales": " gross sales",
                           "returns_value": " of returns", "avg_price": " average unit price",
                           "avg_order_value": " average order value"}[column]
    elif column in ("unit_return_rate", "value_return_rate"):
        main = f"return rate {pct(v)}"
        main += (f" ({count(row['units_returned'])} of {count(row['units_sold'])} units)" if column == "unit_return_rate"
                 else f" ({money(row['returns_value'])} of {money(row['gross_sales'])})")
        return main
    elif column == "net_units":
        main = n_of(v, "net unit")
    elif column == "units_returned":
        main = n_of(v, "unit") + " returned"
    elif column == "orders":
        main = n_of(v, "order")
    elif column == "customers":
        main = n_of(v, "customer")
    else:
        main = str(v)
    extras = []
    if column != "net_units" and entity == "product":
        extras.append(n_of(row["net_units"], "net unit"))
    if column != "net_revenue":
        extras.append(f"{money(row['net_revenue'])} net revenue")
    if column not in ("orders",) and entity != "product":
        extras.append(n_of(row["orders"], "order"))
    return main + (f" ({', '.join(extras)})" if extras else "")


def key_text(entity: str, key, ctx: Context) -> str:  # noqa: ANN001
    if entity == "product":
        return f"{quoted(ctx.name(key))} ({key})"
    if entity == "customer":
        return f"customer {key}"
    if entity == "month":
        d = dt.date.fromisoformat(str(key)[:10])
        return d.strftime("%B %Y")
    if entity == "day":
        d = dt.date.fromisoformat(str(key)[:10])
        return f"{d.isoformat()} ({d.strftime('%A')})"
    return str(key)


def result(answer: str, kind: str, *, sources=None, sql=None, rows=None, definition=None, **extra) -> dict:  # noqa: ANN001, ANN003
    out = {"answer": answer, "kind": kind, "sources": sources or [], "sql": sql, "rows": rows,
           "definition": definition}
    out.update(extra)
    return out


def refusal(ctx: Context, why: str, *, sources=None, family: str = "refusal") -> dict:  # noqa: ANN001
    return result(f"{why} {ctx.holds()}", "not_answerable", sources=sources, family=family)


# ------------------------------------------------------------------------------------------ products
@dataclass
class Resolution:
    status: str  # one | ambiguous | category | none
    codes: tuple[str, ...] = ()
    hits: list = field(default_factory=list)
    note: str = ""


def _retriever(retriever):  # noqa: ANN001, ANN202
    """A retriever, or a zero-argument loader of one (loaded on first use: most analytic questions never
    need the embedding model)."""
    if retriever is None or hasattr(retriever, "search"):
        return retriever
    return retriever()


class LazyRetriever:
    """Loads the retriever on first use (the CLI's analytic questions never pay for the model).
    ``facts``: a cheap loader of the served index's product facts (else the retriever's)."""

    def __init__(self, load, facts=None):  # noqa: ANN001
        self._load = load
        self._facts = facts
        self._value = None

    def _retriever(self):  # noqa: ANN202
        if self._value is None:
            self._value = self._load()
        return self._value

    def search(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        return self._retriever().search(*args, **kwargs)

    def facts(self) -> list[dict] | None:
        if self._facts is not None:
            found = self._facts()
            if found is not None:
                return found
        r = self._retriever()
        return r.facts() if hasattr(r, "facts") else None


def lexical_candidates(q: Query, ctx: Context) -> list[str]:
    """Products whose names (description or other names) contain every filter word of the question (a
    word of the name starting with it), as the SQL filter reads them."""
    if not q.words:
        return []
    matched: set[str] | None = None
    for alternatives in q.words:
        codes = set().union(*(ctx.codes_with_word(w.lower()) for w in alternatives))
        matched = codes if matched is None else matched & codes
    return [code for code in ctx.products if code in matched]


def joined_words(q: Query, ctx: Context) -> Query:
    """The question with two neighbouring words written as the one word of product names they make
    ("cake stand": CAKESTAND), when the words as written are in no product name together."""
    from dataclasses import replace

    from ecommerce_platform.rag.questions import filter_word

    if len(q.words) < 2 or lexical_candidates(q, ctx):
        return q
    raw = q.text.split()
    for i in range(len(raw) - 1):
        joined = raw[i] + raw[i + 1]
        if joined not in ctx.vocabulary.product_words:
            continue
        text = " ".join([*raw[:i], joined, *raw[i + 2:]])
        words = tuple(fw for fw in (filter_word(w, ctx.vocabulary) for w in text.split() if not w.isdigit()) if fw)
        new = replace(q, text=text, words=words)
        if lexical_candidates(new, ctx):
            return new
    return q


def resolve_product(q: Query, ctx: Context, retriever, k: int = 5) -> Resolution:  # noqa: ANN001
    """Which product the question is about: its stock code; a name that only one product (or products
    sharing that name) has; a name nearly matched by retrieval; several products whose names contain the
    words (a category); or none."""
    if q.codes:
        known = tuple(c for c in q.codes if c in ctx.products)
        if not known:
            return Resolution("none", note=f"no product has stock code {', '.join(q.codes)}")
        return Resolution("one", known[:1] if len(known) == 1 else known)
    words = [w for w in q.text.split() if not w.isdigit()]
    if not words:
        return Resolution("none", note="no product named")
    cands = lexical_candidates(q, ctx)
    if cands:
        cands, top, best = lexical_match(q, ctx)
        names = {" ".join(ctx.products[c]["description"].split()) for c in top}
        if best == 0 or len(cands) == 1:
            if len(names) == 1:
                return Resolution("one" if len(top) == 1 else "ambiguous", tuple(sorted(top)))
        if len(cands) <= 3 and len(names) > 1:
            return Resolution("ambiguous", tuple(sorted(cands)))
        return Resolution("category", tuple(sorted(cands)))
    if q.unknown_words:
        return Resolution("none", note="no product name contains " + ", ".join(
            quoted(w) for w in q.unknown_words))
    r = _retriever(retriever)
    if r is None:
        return Resolution("none", note="no product index to search")
    hits = r.search(q.text, k=k)
    if not hits or (hits[0].score < NO_MATCH and not hits[0].code_match):
        return Resolution("none", hits=hits, note="no product name is close to it")
    from ecommerce_platform.rag.answer import same_name

    ties = same_name(hits)
    if len(ties) > 1:
        return Resolution("ambiguous", tuple(h.stock_code for h in ties), hits)
    note = "" if hits[0].score >= LOW_CONFIDENCE else "closest match"
    return Resolution("one", (hits[0].stock_code,), hits, note)


def product_sources(codes, ctx: Context, hits=None) -> list[dict]:  # noqa: ANN001
    if hits:
        return [h.source() for h in hits]
    return [{"stock_code": c, "description": ctx.name(c), "score": 1.0} for c in codes]


def ambiguous_answer(q: Query, ctx: Context, res: Resolution) -> dict:
    lines = []
    for c in res.codes[:10]:
        rec = ctx.products.get(c, {})
        net = int(rec.get("units_sold") or 0) - int(rec.get("units_returned") or 0)
        lines.append(f"- {quoted(ctx.name(c))} (stock code {c}): {net:,} net units, "
                     f"{money(rec.get('net_revenue'))} net revenue over all the data")
    more = len(res.codes) - 10
    what = quoted(q.text) if q.text else "the question"
    text = (f"{len(res.codes)} products match {what} equally well; which one do you mean? Ask again with its "
            "stock code.\n" + "\n".join(lines) + (f"\n(and {more:,} more)" if more > 0 else ""))
    return result(text, "product", sources=product_sources(res.codes[:10], ctx, None), family="ambiguous",
                  candidates=list(res.codes))


# ------------------------------------------------------------------------------------------ families
def answer_ranking(q: Query, ctx: Context, warehouse) -> dict:  # noqa: ANN001
    entity, metric = q.entity or "product", q.metric or "units"
    n = max(1, min(int(q.n or 10), MAX_N))
    sql, column = ranking_sql(q, entity, metric, n, q.order)
    rows = run_rows(warehouse, sql)
    plural = {"product": "products", "customer": "customers", "country": "countries", "month": "months",
              "day": "days"}[entity]
    label = {"net_units": "net units sold", "net_revenue": "net revenue", "orders": "orders",
             "customers": "customers", "units_returned": "units returned", "returns_value": "value of returns",
             "unit_return_rate": "return rate (units)", "value_return_rate": "return rate (value)",
             "avg_price": "average unit price", "avg_order_value": "average order value"}[column]
    scope = where_text(q, ctx)
    definition = _definition(entity, metric, column)
    if not rows:
        text = (f"No {plural} had a sale in {scope}." if not q.reorder else
                f"No products were sold to {q.country or 'customers'} in {scope}.")
        return result(text + f" Definition: {definition}.", "analytics", sql=sql, rows=[], definition=definition,
                      family="ranking")
    total = int(rows[0]["ranked_count"])
    cut = rows[-1]
    tied_beyond = int(cut["same_value_count"]) - sum(1 for r in rows if r[column] == cut[column])
    for r in rows:
        r.pop("same_value_count", None)
        if entity == "product":
            r["description"] = ctx.name(r["key"])
        r[KEYS[entity]] = r.pop("key")
    key_col = KEYS[entity]
    items = [f"{i}. {key_text(entity, r[key_col], ctx)}: {value_text(entity, column, r)}" for i, r in enumerate(rows, 1)]
    word = "Top" if q.order == "desc" else "Bottom"
    if n == 1 and len(rows) == 1:
        head = (f"{'Top' if q.order == 'desc' else 'Bottom'} {entity} by {label} ({scope}): "
                f"{key_text(entity, rows[0][key_col], ctx)}, {value_text(entity, column, rows[0])}.")
    else:
        head = f"{word} {len(rows)} {plural} by {label} ({scope}):\n" + "\n".join(items)
    tail = []
    if tied_beyond > 0:
        tail.append(f"{tied_beyond:,} more {plural} have the same {label} as the last one listed.")
    more = total - len(rows)
    tail.append(f"{total:,} {plural} ranked" + (f"; {more:,} more not listed." if more > 0 else "; all listed."))
    if q.reorder:
        head = ("The data holds no stock levels, so it cannot say what is running out; as a guide, what "
                f"{q.country + ' customers' if q.country else 'customers'} bought most recently. " + head)
    text = head + "\n" + " ".join(tail) + f"\nDefinition: {definition}."
    sources = product_sources([r[key_col] for r in rows], ctx) if entity == "product" else []
    return result(text, "analytics", sources=sources, sql=sql, rows=rows, definition=definition, family="ranking")


def _definition(entity: str, metric: str, column: str) -> str:
    if column == "unit_return_rate":
        d = DEFINITIONS["return_rate_units"] + f"; products with at least {MIN_UNITS_FOR_RATE} units sold"
    elif column == "value_return_rate":
        d = DEFINITIONS["return_rate_value"] + f"; at least {money(MIN_SALES_FOR_RATE)} of gross sales"
    elif column == "avg_price":
        d = "average unit price = gross sales / units sold, GBP"
    else:
        d = DEFINITIONS.get(metric, DEFINITIONS["revenue"])
    notes = []
    if entity == "product":
        notes.append(PRODUCT_NOTE)
    if entity == "country":
        notes.append(COUNTRY_NOTE)
    if entity == "customer":
        notes.append(GUEST_NOTE)
    return d + ("; " + "; ".join(notes) if notes else "")


def _total_text(metric: str, row: dict) -> str:
    if metric == "units":
        return (f"{count(row['net_units'])} net units ({count(row['units_sold'])} sold, "
                f"{count(row['units_returned'])} cancelled or returned)")
    if metric == "orders":
        return n_of(row["orders"], "order")
    if metric == "customers":
        return n_of(row["customers"], "known customer")
    if metric == "products":
        return n_of(row["products"], "product") + " sold"
    if metric == "countries":
        return n_of(row["countries"], "country", "countries")
    if metric == "aov":
        return f"{money(row['avg_order_value'])} average order value ({count(row['orders'])} orders)"
    if metric == "returns":
        return (f"{count(row['units_returned'])} units cancelled or returned, worth {money(row['returns_value'])}, "
                f"on {count(row['return_invoices'])} return invoices")
    return (f"{money(row['net_revenue'])} net revenue ({money(row['gross_sales'])} gross sales minus "
            f"{money(row['returns_value'])} of returns)")


def answer_total(q: Query, ctx: Context, warehouse, *, codes=None, family: str = "total",  # noqa: ANN001
                 subject: str | None = None, sources=None) -> dict:  # noqa: ANN001
    metric = q.metric or "revenue"
    products_only = bool(codes) or bool(q.words) or metric == "products"
    sql = totals_sql(q, codes=codes, products_only=products_only)
    rows = run_rows(warehouse, sql)
    row = rows[0] if rows else {}
    scope = where_text(q, ctx, words=not codes)
    definition = DEFINITIONS.get(metric, DEFINITIONS["revenue"])
    if products_only:
        definition += "; " + PRODUCT_NOTE
    figure = _total_text(metric, row) if row.get("units_sold") is not None else None
    who = f"{subject}: " if subject else ""
    if figure is None:
        text = f"{who}no sales or returns in {scope}. Definition: {definition}."
    else:
        others = []
        if metric != "revenue":
            others.append(f"{money(row['net_revenue'])} net revenue")
        if metric not in ("units",):
            others.append(n_of(row["net_units"], "net unit"))
        if metric not in ("orders", "aov"):
            others.append(n_of(row["orders"], "order"))
        text = f"{who}{figure} in {scope}"
        if others:
            text += f" (also: {', '.join(others)})"
        if q.words and not codes:
            text += f". {count(row['products'])} products match"
        text += f". Definition: {definition}."
    return result(text, "analytics", sources=sources or [], sql=sql, rows=rows, definition=definition, family=family)


def answer_return_rate(q: Query, ctx: Context, warehouse, *, codes=None, subject=None, sources=None) -> dict:  # noqa: ANN001
    products = bool(codes) or bool(q.words)
    sql = totals_sql(q, codes=codes, products_only=products)
    rows = run_rows(warehouse, sql)
    row = rows[0] if rows else {}
    scope = where_text(q, ctx, words=not codes)
    if products:
        definition = DEFINITIONS["return_rate_units"] + "; " + PRODUCT_NOTE
        figure = (f"return rate {pct(row.get('unit_return_rate'))}: {count(row.get('units_returned'))} units "
                  f"cancelled or returned of {count(row.get('units_sold'))} sold")
    else:
        definition = DEFINITIONS["return_rate_value"]
        figure = (f"return rate {pct(row.get('value_return_rate'))}: {money(row.get('returns_value'))} of returns "
                  f"against {money(row.get('gross_sales'))} of gross sales")
    who = f"{subject}: " if subject else ""
    text = f"{who}{figure} in {scope}. Definition: {definition}."
    return result(text, "analytics", sources=sources or [], sql=sql, rows=rows, definition=definition,
                  family="return_rate")


def answer_compare(q: Query, ctx: Context, warehouse, *, codes=None, subject=None, sources=None) -> dict:  # noqa: ANN001
    metric = q.metric if q.metric in ("revenue", "units", "orders", "customers", "aov", "returns", "products") else "revenue"
    products_only = bool(codes) or bool(q.words)
    rows, sqls = [], []
    for per in (q.period, q.period2):
        sql = totals_sql(q, period=per, codes=codes, products_only=products_only)
        sqls.append(sql)
        r = run_rows(warehouse, sql)[0]
        r["period"] = per.describe()
        r["period_start"], r["period_end"] = per.start.isoformat(), per.end.isoformat()
        rows.append(r)
    col = {"revenue": "net_revenue", "units": "net_units", "orders": "orders", "customers": "customers",
           "aov": "avg_order_value", "returns": "units_returned", "products": "products"}[metric]
    a, b = (float(rows[0].get(col) or 0), float(rows[1].get(col) or 0))
    fmt = money if col in ("net_revenue", "avg_order_value") else count
    diff = b - a
    change = "n/a" if a == 0 else f"{diff / a * 100:+.1f}%"
    definition = DEFINITIONS.get(metric, DEFINITIONS["revenue"]) + ("; " + PRODUCT_NOTE if products_only else "")
    scope = where_text(replace_period(q), ctx, words=not codes).replace(all_data(ctx) + "; ", "").replace(
        all_data(ctx), "")
    who = f"{subject}: " if subject else ""
    name = {"net_revenue": "net revenue", "net_units": "net units", "orders": "orders", "customers": "customers",
            "avg_order_value": "average order value", "units_returned": "units returned",
            "products": "products sold"}[col]
    text = (f"{who}{name}{' for ' + scope if scope else ''}: {fmt(a)} in {q.period.describe()} against {fmt(b)} in "
            f"{q.period2.describe()}: {'+' if diff >= 0 else '-'}{fmt(abs(diff))} ({change}) from the first to "
            f"the second. Definition: {definition}.")
    for r in rows:
        r.pop("first_sale", None), r.pop("last_sale", None)  # noqa: B018
    return result(text, "analytics", sources=sources or [], sql=";\n".join(sqls), rows=rows, definition=definition,
                  family="compare")


def replace_period(q: Query) -> Query:
    from dataclasses import replace

    return replace(q, period=None)


def answer_product_countries(q: Query, ctx: Context, warehouse, codes, subject: str, sources) -> dict:  # noqa: ANN001
    sql, column = ranking_sql(q, "country", "units", ALL_ROWS, "desc", codes=codes, countries_only=False)
    # ranked on net units; every country listed (the limit is above the number of countries)
    rows = run_rows(warehouse, sql)
    for r in rows:
        r.pop("same_value_count", None)
        r["country"] = r.pop("key")
    real = [r for r in rows if r["country"] != UNSPECIFIED_COUNTRY]
    unspecified = [r for r in rows if r["country"] == UNSPECIFIED_COUNTRY]
    scope = where_text(q, ctx, words=False)
    definition = DEFINITIONS["units"] + "; " + COUNTRY_NOTE
    if not real and not unspecified:
        text = f"{subject} had no sale in {scope}."
    else:
        items = [f"{r['country']} ({count(r['net_units'])} net units, {money(r['net_revenue'])})" for r in real]
        text = (f"{subject} was ordered by customers in {len(real)} "
                f"{'country' if len(real) == 1 else 'countries'} in {scope} (all listed, by net units): "
                + "; ".join(items) + ".")
        if unspecified:
            u = unspecified[0]
            text += (f" Also {count(u['net_units'])} net units on lines without a country ('Unspecified', not "
                     "counted as a country).")
    text += f" Definition: {definition}."
    return result(text, "analytics", sources=sources, sql=sql, rows=real, definition=definition,
                  family="product_countries", unspecified=unspecified or None)


def answer_copurchase(q: Query, ctx: Context, warehouse, codes, subject: str, sources) -> dict:  # noqa: ANN001
    n = max(1, min(int(q.n or 10), MAX_N))
    sql = copurchase_sql(q, codes, n)
    rows = run_rows(warehouse, sql)
    scope = where_text(q, ctx, words=False)
    definition = DEFINITIONS["copurchase"]
    if not rows:
        text = f"{subject}: no other product was sold on the same invoices in {scope}."
    else:
        anchor = int(rows[0]["anchor_orders"])
        total = int(rows[0]["ranked_count"])
        cut = rows[-1]
        tied = int(cut["same_value_count"]) - sum(1 for r in rows if r["orders_together"] == cut["orders_together"])
        for r in rows:
            r["description"] = ctx.name(r["stock_code"])
            r.pop("same_value_count", None)
        items = [f"{i}. {quoted(r['description'])} ({r['stock_code']}): on {count(r['orders_together'])} of its "
                 f"{count(anchor)} orders" for i, r in enumerate(rows, 1)]
        more = total - len(rows)
        text = (f"Most often bought with {subject} in {scope}:\n" + "\n".join(items) + "\n"
                + (f"{tied:,} more products share the last count. " if tied > 0 else "")
                + f"{total:,} other products were on its invoices" + (f"; {more:,} more not listed." if more > 0 else "; all listed."))
    text += f"\nDefinition: {definition}."
    return result(text, "analytics", sources=sources, sql=sql, rows=rows, definition=definition,
                  family="copurchase")


def _product_subject(codes, ctx: Context) -> str:  # noqa: ANN001
    if len(codes) == 1:
        return f"{quoted(ctx.name(codes[0]))} (stock code {codes[0]})"
    return f"{quoted(ctx.name(codes[0]))} (stock codes {', '.join(codes)})"


def answer_about_product(q: Query, ctx: Context, warehouse, retriever) -> dict:  # noqa: ANN001
    """Families that need one product: resolve it first (ask which one when several match)."""
    res = resolve_product(q, ctx, retriever)
    if res.status == "none":
        return refusal(ctx, f"No product in the data matches {quoted(q.text or ' '.join(q.codes))} "
                            f"({res.note}).", family="unknown_product")
    if res.status == "ambiguous":
        return ambiguous_answer(q, ctx, res)
    if res.status == "category":
        if q.family == "product_period":
            q.family = "total"
            return answer_total(q, ctx, warehouse, family="total")
        if q.family in ("copurchase", "product_countries"):
            return ambiguous_answer(q, ctx, res)
    codes = res.codes
    subject = _product_subject(codes, ctx)
    if res.note == "closest match":
        subject += " (the closest match to " + quoted(q.text) + ")"
    sources = product_sources(codes, ctx, res.hits)
    if q.family == "copurchase":
        return answer_copurchase(q, ctx, warehouse, codes, subject, sources)
    if q.family == "product_countries":
        return answer_product_countries(q, ctx, warehouse, codes, subject, sources)
    if q.family == "return_rate":
        return answer_return_rate(q, ctx, warehouse, codes=codes, subject=subject, sources=sources)
    if q.family == "compare":
        return answer_compare(q, ctx, warehouse, codes=codes, subject=subject, sources=sources)
    if q.metric in (None, "customers", "products", "countries"):
        q.metric = "units" if q.metric in (None, "products", "countries") else q.metric
    return answer_total(q, ctx, warehouse, codes=codes, family="product_period", subject=subject,
                        sources=sources)


def answer_customer(q: Query, ctx: Context, warehouse) -> dict:  # noqa: ANN001
    Sql, render = _sql()
    exists = run_rows(warehouse, render("SELECT COUNT(*) AS n FROM sale_lines WHERE customer_id = {c}", c=q.customer))
    if not exists or not exists[0]["n"]:
        return refusal(ctx, f"There is no customer {q.customer} in the data.", family="unknown_customer")
    subject = f"customer {q.customer}"
    if q.family == "compare" and q.period2:
        return answer_compare(q, ctx, warehouse, subject=subject)
    if q.family == "return_rate":
        return answer_return_rate(q, ctx, warehouse, subject=subject)
    if q.family == "ranking":
        q.entity = "product" if q.entity in (None, "customer") else q.entity
        return answer_ranking(q, ctx, warehouse)
    return answer_total(q, ctx, warehouse, subject=subject, family="total")


REFUSALS = {
    "fee": "Postage, carriage, packing charges, fees and gift vouchers are charges, not products: they are kept out "
           "of every product figure, and this assistant does not report them.",
}


def refusal_text(q: Query, ctx: Context) -> str:
    why = q.refusal or ""
    if why in REFUSALS:
        return REFUSALS[why]
    if why.startswith("country:"):
        name = why.split(":", 1)[1]
        return (f"No customer in {name} appears in the data, so it has no figures for it. Countries in the data: "
                + ", ".join(ctx.vocabulary.countries) + ".")
    if "the data covers" in why:
        return f"The data has nothing for {why}."
    return f"The data cannot answer this: it holds nothing about {why}."


def answer_offline(q: Query, ctx: Context, warehouse, retriever, k: int = 5) -> dict:  # noqa: ANN001
    """The deterministic answer of a parsed question (no language model)."""
    q = joined_words(q, ctx)
    if q.family == "refusal":
        return refusal(ctx, refusal_text(q, ctx), family="refusal")
    if q.customer is not None:
        return answer_customer(q, ctx, warehouse)
    if q.family == "ranking":
        if q.words and not lexical_candidates(q, ctx):
            return refusal(ctx, f"No product name in the data contains {quoted(q.text)}.", family="unknown_product")
        return answer_ranking(q, ctx, warehouse)
    if q.family in ("copurchase", "product_countries", "product_period"):
        if not (q.codes or q.text):
            if q.family == "product_period":
                return answer_total(q, ctx, warehouse)
            return refusal(ctx, "Which product? Name it or give its stock code.", family="unknown_product")
        return answer_about_product(q, ctx, warehouse, retriever)
    if q.family in ("total", "return_rate", "compare"):
        if q.codes:
            return answer_about_product(q, ctx, warehouse, retriever)
        if q.words:
            if not lexical_candidates(q, ctx):
                return refusal(ctx, f"No product name in the data contains {quoted(q.text)}.",
                               family="unknown_product")
            res = resolve_product(q, ctx, None)
            if res.status in ("one", "ambiguous"):
                return answer_about_product(q, ctx, warehouse, retriever)
        if q.family == "return_rate":
            return answer_return_rate(q, ctx, warehouse)
        if q.family == "compare":
            return answer_compare(q, ctx, warehouse)
        return answer_total(q, ctx, warehouse)
    return answer_lookup(q, ctx, retriever, k=k, warehouse=warehouse)


class _Hit:
    """A product found by its stock code or its exact name (no retrieval needed): what answer.py reads."""

    def __init__(self, facts: dict, score: float, code_match: bool):
        self.stock_code, self.description = facts["stock_code"], facts["description"]
        self.score, self.dense, self.lexical, self.code_match = score, 0.0, score, code_match
        from ecommerce_platform.rag.knowledge import render_product

        self.chunk = {"facts": facts, "text": render_product(facts)}

    def source(self) -> dict:
        return {"stock_code": self.stock_code, "description": self.description, "score": round(self.score, 4)}


def lexical_match(q: Query, ctx: Context) -> tuple[list[str], list[str], int]:
    """(every product whose name holds all the question's words, those with the fewest other words, how
    many other words those have)."""
    cands = lexical_candidates(q, ctx)
    if not cands:
        return [], []
    query_tokens = {alt[0].lower() for alt in q.words}

    def extra(code: str) -> int:
        toks = ctx.products[code]["tokens"]
        return len([t for t in toks if len(t) > 1 and t not in STOP_NAME_WORDS
                    and not any(t.startswith(w) for w in query_tokens)])

    best = min(extra(c) for c in cands)
    return cands, [c for c in cands if extra(c) == best], best


def answer_lookup(q: Query, ctx: Context, retriever, k: int = 5, warehouse=None) -> dict:  # noqa: ANN001
    """A product question: its stock code or a name only one product has (answered straight from the
    product table), else retrieval; honest refusals for products the data does not have; several equally
    good matches listed, and the user asked which one."""
    from ecommerce_platform.rag.answer import offline_answer

    if not q.codes and not q.text.strip():
        return refusal(ctx, "I could not tell what the question asks (a product, or figures about sales).",
                       family="unknown")
    if q.codes:
        known = [c for c in q.codes if c in ctx.products]
        if not known:
            return refusal(ctx, f"No product has stock code {', '.join(q.codes)}.", family="unknown_product")
        hits = [_Hit(ctx.facts(c), 2.0, True) for c in known[:1]]
        return result(offline_answer(q.question, hits), "product", sources=[h.source() for h in hits],
                      family="lookup", hits=hits)
    elif q.unknown_words:
        known = [w for w in q.text.split() if w not in q.unknown_words and w in ctx.vocabulary.product_words]
        return refusal(ctx, f"No product in the data matches {quoted(q.text)}: no product name contains "
                            + " or ".join(quoted(w) for w in q.unknown_words)
                            + (f" (names with {quoted(' '.join(known))} exist; ask about one by name)" if known else "")
                            + ".", family="unknown_product")
    elif q.words:
        cands, top, best = lexical_match(q, ctx) if lexical_candidates(q, ctx) else ([], [], None)
        names = {" ".join(ctx.products[c]["description"].split()) for c in top}
        if top and (len(top) == 1 or len(names) == 1) and (best == 0 or len(cands) == len(top)):
            hits = [_Hit(ctx.facts(c), 1.0, False) for c in sorted(top)[:10]]
            return result(offline_answer(q.question, hits), "product", sources=[h.source() for h in hits],
                          family="lookup" if len(hits) == 1 else "ambiguous", hits=hits)
        if len(top) > 1 and len(names) > 1:
            ranked = sorted(top, key=lambda c: (-(ctx.products[c].get("units_sold") or 0), c))
            return ambiguous_answer(q, ctx, Resolution("ambiguous", tuple(ranked)))
    r = _retriever(retriever)
    if r is None:
        return refusal(ctx, "The product index is not built, so products cannot be looked up.", family="unknown")
    hits = r.search(q.question if q.codes else (q.normalized or q.question), k=k)
    if not hits or (hits[0].score < NO_MATCH and not hits[0].code_match):
        return refusal(ctx, f"No product in the data matches {quoted(q.text)}.",
                       sources=[h.source() for h in hits], family="unknown_product")
    return result(offline_answer(q.question, hits), "product", sources=[h.source() for h in hits],
                  family="lookup", hits=hits)


# ------------------------------------------------------------------------------------------ the entry point
def answer_question(question: str, warehouse, retriever, llm=None, *, context: Context | None = None,  # noqa: ANN001, PLR0913
                    offline: bool = False, warn=None, k: int = 5) -> dict:  # noqa: ANN001
    """Answer ``question`` (the ``ask --json`` contract, see the module's docstring). ``warehouse``:
    anything with ``query_df`` (or ``query_rows``); ``retriever``: a ``retrieval.Retriever``, a
    zero-argument loader of one (loaded only when a product must be found), or None; ``llm``: the llm
    resource (None or disabled: offline)."""
    import sys

    say = warn or (lambda m: print(m, file=sys.stderr))
    question = str(question or "").strip()
    ctx = context or context_for(warehouse, retriever)
    if not question:
        return refusal(ctx, "The question is empty.")
    q = parse(question, ctx.vocabulary)
    use_llm = llm is not None and getattr(llm, "enabled", False) and not offline
    if use_llm and q.family not in ("refusal", "lookup"):
        from ecommerce_platform.rag import text_to_sql

        try:
            out = text_to_sql.answer_with_model(question, q, ctx, warehouse, llm)
            if out is not None:
                out["answered_by"] = llm.name
                return _public(out)
        except text_to_sql.ModelAnswerUnavailable as exc:
            say(f"language model answer unavailable: {exc}; answering offline.")
    out = answer_offline(q, ctx, warehouse, retriever, k=k)
    out["answered_by"] = "offline"
    if use_llm and out["kind"] == "product" and out.get("hits") and out.get("family") == "lookup":
        from ecommerce_platform.rag.answer import answer as product_answer

        ans = product_answer(question, out["hits"], llm=llm, warn=say)
        out["answer"], out["answered_by"] = ans.answer, ans.answered_by
    return _public(out)


PUBLIC = ("answer", "kind", "sources", "sql", "rows", "definition")


def _public(out: dict) -> dict:
    """The contract's fields first; ``family`` and the like kept for the evaluation (not the hits)."""
    body = {k: out.get(k) for k in PUBLIC}
    for k, v in out.items():
        if k not in body and k != "hits":
            body[k] = v
    return body
