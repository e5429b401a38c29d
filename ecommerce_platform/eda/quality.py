"""The data quality report: what the cleaning did, in numbers and words.

Sources: the clean manifest (rows in, duplicates, quarantine by reason), the ``quarantine`` table
and the layer's aggregate SQL over ``transactions`` (cancellations, returns, guest checkouts,
non-product lines, zero prices, price and quantity outliers, by month). Written to the reports zone
as Markdown (for people) and JSON (for programs).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ecommerce_platform.eda.queries import _numeric, query
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

MARKDOWN_KEY = "reports/data_quality.md"
JSON_KEY = "reports/data_quality.json"
TUKEY_K = 1.5
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def weighted_quantile(values, weights, q: float) -> float:
    """The q-quantile of values repeated weight times (lower value at ties; exact, no interpolation)."""
    pairs = sorted((float(v), float(w)) for v, w in zip(values, weights) if w > 0)
    if not pairs:
        raise ValueError("no values")
    total = sum(w for _, w in pairs)
    target = q * total
    acc = 0.0
    for v, w in pairs:
        acc += w
        if acc >= target:
            return v
    return pairs[-1][0]


def log_tukey_fences(values, weights, k: float = TUKEY_K) -> dict:
    """Tukey fences on log10 of positive values (quantity and price are log-normal-ish: fences on
    the raw scale would flag every bulk order). Returns the quartiles and fences on the raw scale."""
    pos = [(v, w) for v, w in zip(values, weights) if v > 0 and w > 0]
    if not pos:
        raise ValueError("no positive values to fence")
    vs, ws = zip(*pos)
    logs = [math.log10(v) for v in vs]
    q1, q3 = weighted_quantile(logs, ws, 0.25), weighted_quantile(logs, ws, 0.75)
    iqr = q3 - q1
    return {
        "q1": round(10**q1, 4), "median": round(10 ** weighted_quantile(logs, ws, 0.5), 4),
        "q3": round(10**q3, 4), "low": round(10 ** (q1 - k * iqr), 4), "high": round(10 ** (q3 + k * iqr), 4),
        "method": f"Tukey fences (k={k}) on log10 of the value, over sale lines",
    }


@dataclass
class QualityReport:
    data: dict
    markdown: str


def build_quality(warehouse: Warehouse, lake: Lake, examples: int = 10) -> QualityReport:
    from ecommerce_platform.eda.manifest import CleanZoneMissingError
    from ecommerce_platform.lake.clean import read_result

    clean = read_result(lake)
    if clean is None:
        raise CleanZoneMissingError("no clean manifest: materialize clean_parquet first")
    qty = query(warehouse, lake, "quantity_counts.sql")
    price = query(warehouse, lake, "price_counts.sql")
    qty, price = _numeric(qty), _numeric(price)
    qf = log_tukey_fences(qty["quantity"], qty["lines"])
    pf = log_tukey_fences(price["unit_price"], price["lines"])
    months = _numeric(query(warehouse, lake, "quality_by_month.sql", qty_lo=float(qf["low"]),
                            qty_hi=float(qf["high"]), price_lo=float(pf["low"]), price_hi=float(pf["high"])))
    totals = _numeric(query(warehouse, lake, "quality_totals.sql"),
                      exclude=("first_invoice", "last_invoice")).iloc[0].to_dict()
    non_product = _numeric(query(warehouse, lake, "non_product_lines.sql"), exclude=("stock_code", "description"))
    largest = query(warehouse, lake, "largest_lines.sql", limit=examples)
    quarantined = query(warehouse, lake, "quarantine_examples.sql", limit=examples)

    sums = {c: int(months[c].sum()) for c in months.columns
            if c not in ("year", "month", "revenue", "returned_value")}
    sale_lines = max(sums["sale_lines"], 1)
    data = {
        "cleaning": {
            "rows_in": clean.rows_in, "rows_clean": clean.rows_clean,
            "rows_duplicate": clean.rows_duplicate, "rows_quarantined": clean.rows_quarantined,
            "quarantine_by_reason": clean.quarantine_by_reason, "sources": clean.sources,
            "partitions": len(clean.partitions), "balanced": clean.rows_in
            == clean.rows_clean + clean.rows_duplicate + clean.rows_quarantined,
        },
        "totals": {k: _plain(v) for k, v in totals.items()},
        "money": {"revenue": round(float(months["revenue"].sum()), 2),
                  "returned_value": round(float(months["returned_value"].sum()), 2)},
        "lines": sums,
        "shares_of_clean_lines": {
            k: round(sums[k] / max(sums["lines"], 1), 5)
            for k in ("sale_lines", "cancellation_lines", "return_lines", "guest_lines",
                      "non_product_lines", "zero_price_lines", "missing_description")
        },
        "outliers": {
            "quantity": {**qf, "lines_outside": sums["quantity_outliers"],
                         "share_of_sale_lines": round(sums["quantity_outliers"] / sale_lines, 5)},
            "unit_price": {**pf, "lines_outside": sums["price_outliers"],
                           "share_of_sale_lines": round(sums["price_outliers"] / sale_lines, 5)},
        },
        "by_month": [{k: _plain(v) for k, v in row.items()} for row in months.to_dict("records")],
        "non_product_codes": [{k: _plain(v) for k, v in r.items()} for r in non_product.to_dict("records")],
        "largest_lines": [{k: _plain(v) for k, v in r.items()} for r in largest.to_dict("records")],
        "quarantine_examples": [{k: _plain(v) for k, v in r.items()} for r in quarantined.to_dict("records")],
    }
    return QualityReport(data=data, markdown=to_markdown(data, months, non_product, largest, quarantined))


def _plain(v):  # noqa: ANN001, ANN202 - numpy/pandas scalars to JSON-able Python
    import pandas as pd

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp) or hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):
        return v.item()
    return v


def _pct(n: float, d: float) -> str:
    return f"{100 * n / d:.2f} %" if d else "n/a"


def to_markdown(data: dict, months, non_product, largest, quarantined) -> str:  # noqa: ANN001
    c, t, s, o = data["cleaning"], data["totals"], data["lines"], data["outliers"]
    reasons = c["quarantine_by_reason"]
    lines = [
        "# Data quality report",
        "",
        "## What the cleaning did",
        f"- **{c['rows_in']:,} rows in** from {len(c['sources'])} source(s): "
        f"**{c['rows_clean']:,} clean**, **{c['rows_duplicate']:,} exact duplicates** dropped "
        f"({_pct(c['rows_duplicate'], c['rows_in'])}), **{c['rows_quarantined']:,} quarantined** "
        f"({_pct(c['rows_quarantined'], c['rows_in'])}). "
        + ("Every input row is accounted for (in = clean + duplicates + quarantined)."
           if c["balanced"] else "**The counts do not balance: investigate the clean transform.**"),
        "- Quarantine by reason: "
        + (", ".join(f"{r}: {n:,}" for r, n in reasons.items()) if reasons else "none")
        + ".",
        f"- The clean table spans {str(t['first_invoice'])[:10]} to {str(t['last_invoice'])[:10]} in "
        f"{c['partitions']} monthly partitions: {t['invoices']:,} invoices, {t['customers']:,} known "
        f"customers, {t['stock_codes']:,} stock codes, {t['countries']} countries.",
        "",
        "## What the clean lines are",
        f"- **Sales** (`is_sale`: not cancelled, quantity > 0, price > 0, a real product): "
        f"{s['sale_lines']:,} lines ({_pct(s['sale_lines'], s['lines'])}), revenue "
        f"£{t['sales_revenue']:,.2f} (gross sum of all line totals £{t['gross_line_total']:,.2f}).",
        f"- **Cancellations**: {t['cancelled_invoices']:,} invoices, {s['cancellation_lines']:,} lines "
        f"({_pct(s['cancellation_lines'], s['lines'])}); of them {s['return_lines']:,} are returned "
        f"product lines worth £{data['money']['returned_value']:,.2f}.",
        f"- **Guest checkouts** (no customer id): {s['guest_lines']:,} lines "
        f"({_pct(s['guest_lines'], s['lines'])}) in {t['guest_invoices']:,} invoices; they count as "
        "sales but not in any customer feature.",
        f"- **Non-product lines** (postage, fees, manual adjustments, vouchers): {s['non_product_lines']:,} "
        f"lines over {t['non_product_codes']} codes.",
        f"- **Zero unit price**: {s['zero_price_lines']:,} lines; **quantity <= 0 without a "
        f"cancellation** (stock adjustments): {s['nonpositive_qty_not_cancelled']:,} lines; "
        f"**missing description**: {s['missing_description']:,} lines.",
        "",
        "## Outliers (sale lines)",
        f"Method: {o['quantity']['method']}; a fence is a reason to look, not to delete.",
        "",
        "| value | Q1 | median | Q3 | low fence | high fence | lines outside | share |",
        "|---|---|---|---|---|---|---|---|",
        f"| quantity (units) | {o['quantity']['q1']:g} | {o['quantity']['median']:g} | {o['quantity']['q3']:g} | "
        f"{o['quantity']['low']:g} | {o['quantity']['high']:g} | {o['quantity']['lines_outside']:,} | "
        f"{100 * o['quantity']['share_of_sale_lines']:.2f} % |",
        f"| unit price (GBP) | £{o['unit_price']['q1']:g} | £{o['unit_price']['median']:g} | £{o['unit_price']['q3']:g} | "
        f"£{o['unit_price']['low']:g} | £{o['unit_price']['high']:g} | {o['unit_price']['lines_outside']:,} | "
        f"{100 * o['unit_price']['share_of_sale_lines']:.2f} % |",
        "",
        "Largest lines by absolute value (a huge sale cancelled by an equal negative line is a data-entry "
        "mistake corrected by the shop, not revenue: `is_sale` keeps it, the cancellation is a return):",
        "",
        largest.to_markdown(index=False, floatfmt=",.2f", intfmt=","),
        "",
        "## By month",
        "",
    ]
    view = months.copy()
    view.insert(0, "month_name", [f"{MONTH_NAMES[m - 1]} {y}" for y, m in zip(view["year"], view["month"])])
    view = view.drop(columns=["year", "month"]).rename(columns={"month_name": "month"})
    lines.append(view.to_markdown(index=False, floatfmt=",.2f", intfmt=","))
    lines += ["", "## Non-product codes", "", non_product.to_markdown(index=False, floatfmt=",.2f", intfmt=",")]
    lines += ["", "## Quarantine examples", ""]
    lines.append(quarantined.to_markdown(index=False) if len(quarantined) else "(none)")
    return "\n".join(lines) + "\n"


def write_quality(lake: Lake, report: QualityReport) -> list[str]:
    lake.put_text(MARKDOWN_KEY, report.markdown)
    lake.put_text(JSON_KEY, json.dumps(report.data, indent=2, sort_keys=True, default=str))
    return [MARKDOWN_KEY, JSON_KEY]
