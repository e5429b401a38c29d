"""The data quality report: what the cleaning did, in numbers and words.

Sources, all published by the layers before this one:
- the clean zone's own record of every month (``lake.clean.month_results``: lines in, clean,
  quarantined, duplicates, reasons) and its tables ``transactions`` and ``quarantine``, recounted here:
  the reconciliation (lines in = clean + duplicates folded + quarantined) is shown per month;
- the layer's aggregate SQL over ``transactions``: cancellations, returns, guest checkouts, lines
  without a country, non-product lines, zero prices; lines flagged (kept in the clean zone, not dropped)
  for an extreme quantity or unit price (bounds of ``lake/rules.py``) or for text with mojibake
  (``rules.MOJIBAKE_PATTERN``, counted per column, with examples); statistical fences on quantity and
  price;
- money from the analytics view ``daily_sales`` (never recomputed here), so the report's figures agree
  with the views to the penny.
Written to the reports zone as Markdown (for people) and JSON (for programs).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from ecommerce_platform.eda.queries import TEXT_COLUMNS, UNSPECIFIED_COUNTRY, mojibake_examples, query
from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

MARKDOWN_KEY = "reports/data_quality.md"
JSON_KEY = "reports/data_quality.json"
TUKEY_K = 1.5
EXAMPLES = 10
MOJIBAKE_EXAMPLES = 5
MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class CleanZoneMissingError(RuntimeError):
    """The clean zone has not been built: the report has nothing to describe."""


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


def _no_fences() -> dict:
    return {"q1": None, "median": None, "q3": None, "low": None, "high": None,
            "method": "no sale line: no fences"}


@dataclass
class QualityReport:
    data: dict
    markdown: str


def reconciliation(warehouse: Warehouse) -> dict:
    """Per month: what the clean transform recorded when it cleaned the month, and the same counts taken
    again from the published tables; balanced when lines in = clean + duplicates + quarantined."""
    from ecommerce_platform.lake.clean import month_results

    recorded = month_results(warehouse.lake)
    if not recorded:
        raise CleanZoneMissingError("the clean zone has no cleaned month: materialize clean_parquet first")
    tables: dict[str, dict] = {}

    def month(key: str) -> dict:
        return tables.setdefault(key, {"rows_clean": 0, "rows_duplicate": 0, "rows_quarantined": 0, "reasons": {}})

    for r in query(warehouse, "clean_counts.sql").to_dict("records"):
        m = month(f"{int(r['year']):04d}-{int(r['month']):02d}")
        m["rows_clean"], m["rows_duplicate"] = int(r["rows_clean"]), int(r["rows_duplicate"])
    for r in query(warehouse, "quarantine_counts.sql").to_dict("records"):
        m = month(str(r["partition_month"]))
        m["rows_quarantined"] += int(r["lines"])
        m["reasons"][str(r["reason"])] = m["reasons"].get(str(r["reason"]), 0) + int(r["lines"])
    rows = []
    for key in sorted(set(recorded) | set(tables)):
        rec = recorded.get(key)
        got = tables.get(key, {"rows_clean": 0, "rows_duplicate": 0, "rows_quarantined": 0, "reasons": {}})
        rows_in = rec.rows_in if rec else 0
        accounted = got["rows_clean"] + got["rows_duplicate"] + got["rows_quarantined"]
        rows.append({
            "month": key, "rows_in": rows_in,
            "rows_clean": got["rows_clean"], "rows_duplicate": got["rows_duplicate"],
            "rows_quarantined": got["rows_quarantined"], "difference": rows_in - accounted,
            "balanced": rows_in == accounted,
            "matches_clean_record": rec is not None and (rec.rows_clean, rec.rows_duplicate, rec.rows_quarantined)
            == (got["rows_clean"], got["rows_duplicate"], got["rows_quarantined"]),
            "quarantine_by_reason": got["reasons"],
        })
    reasons: dict[str, int] = {}
    for r in rows:
        for reason, n in r["quarantine_by_reason"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    totals = {k: sum(r[k] for r in rows) for k in ("rows_in", "rows_clean", "rows_duplicate", "rows_quarantined")}
    return {
        **totals,
        "balanced": all(r["balanced"] for r in rows),
        "matches_clean_record": all(r["matches_clean_record"] for r in rows),
        "months": len(rows),
        "quarantine_by_reason": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "by_month": rows,
    }


def build_quality(warehouse: Warehouse, examples: int = EXAMPLES) -> QualityReport:
    from ecommerce_platform.lake.rules import EXTREME_QUANTITY, EXTREME_UNIT_PRICE, MOJIBAKE_PATTERN

    cleaning = reconciliation(warehouse)
    qty = query(warehouse, "quantity_counts.sql")
    price = query(warehouse, "price_counts.sql")
    qf = log_tukey_fences(qty["quantity"], qty["lines"]) if len(qty) else _no_fences()
    pf = log_tukey_fences(price["unit_price"], price["lines"]) if len(price) else _no_fences()
    flags = {"extreme_quantity": EXTREME_QUANTITY, "extreme_unit_price": float(EXTREME_UNIT_PRICE)}
    # no sale line: fences that flag nothing
    fences = {"qty_lo": qf["low"] if qf["low"] is not None else 0.0, "qty_hi": qf["high"] or 0.0,
              "price_lo": pf["low"] if pf["low"] is not None else 0.0, "price_hi": pf["high"] or 0.0}
    months = query(warehouse, "quality_by_month.sql", unspecified=UNSPECIFIED_COUNTRY, **flags,
                   **{k: float(v) for k, v in fences.items()})
    totals = query(warehouse, "quality_totals.sql", unspecified=UNSPECIFIED_COUNTRY).iloc[0].to_dict()
    money_by_month = query(warehouse, "sales_by_month.sql")
    non_product = query(warehouse, "non_product_lines.sql")
    largest = query(warehouse, "largest_lines.sql", limit=int(examples))
    extreme = query(warehouse, "extreme_lines.sql", limit=int(examples), **flags)
    quarantined = query(warehouse, "quarantine_examples.sql", limit=int(examples))
    mojibake_counts = query(warehouse, "mojibake_counts.sql", pattern=MOJIBAKE_PATTERN).iloc[0]
    mojibake = {c: int(mojibake_counts[c]) for c in TEXT_COLUMNS}
    mojibake_values = {
        c: [{"value": str(r["value"]), "lines": int(r["lines"])}
            for r in mojibake_examples(warehouse, c, MOJIBAKE_PATTERN, MOJIBAKE_EXAMPLES).to_dict("records")]
        for c, n in mojibake.items() if n
    }

    count_cols = [c for c in months.columns if c not in ("year", "month")]
    sums = {c: int(months[c].sum()) for c in count_cols}
    sale_lines = max(sums.get("sale_lines", 0), 1)
    money = {
        "gross_sales": _cents(money_by_month["gross_sales"]) / 100,
        "returns_value": _cents(money_by_month["returns_value"]) / 100,
        "net_revenue": _cents(money_by_month["net_revenue"]) / 100,
        "source": "the analytics view daily_sales",
    }
    money_rows = {(int(r["year"]), int(r["month"])): r for r in money_by_month.to_dict("records")}
    by_month = []
    for row in months.to_dict("records"):
        m = money_rows.get((int(row["year"]), int(row["month"])), {})
        by_month.append({**{k: _plain(v) for k, v in row.items()},
                         **{k: round(float(m[k]), 2) if k in m else 0.0 for k in ("gross_sales", "returns_value", "net_revenue")}})
    data = {
        "cleaning": cleaning,
        "totals": {k: _plain(v) for k, v in totals.items()},
        "money": money,
        "lines": sums,
        "shares_of_clean_lines": {
            k: round(sums[k] / max(sums["lines"], 1), 5)
            for k in ("sale_lines", "cancellation_lines", "return_lines", "guest_lines", "unspecified_country_lines",
                      "non_product_lines", "zero_price_lines", "missing_description")
        },
        "flags": {
            "extreme_quantity": {"bound": EXTREME_QUANTITY, "rule": f"|quantity| >= {EXTREME_QUANTITY:,} units",
                                 "lines": sums["extreme_quantity_lines"]},
            "extreme_unit_price": {"bound": float(EXTREME_UNIT_PRICE),
                                   "rule": f"unit price >= £{EXTREME_UNIT_PRICE:,.2f}",
                                   "lines": sums["extreme_price_lines"]},
            "extreme_examples": [{k: _plain(v) for k, v in r.items()} for r in extreme.to_dict("records")],
            "mojibake": {"pattern": MOJIBAKE_PATTERN, "lines_by_column": mojibake,
                         "lines": sum(mojibake.values()), "examples": mojibake_values},
        },
        "outliers": {
            "quantity": {**qf, "lines_outside": sums["quantity_outliers"],
                         "share_of_sale_lines": round(sums["quantity_outliers"] / sale_lines, 5)},
            "unit_price": {**pf, "lines_outside": sums["price_outliers"],
                           "share_of_sale_lines": round(sums["price_outliers"] / sale_lines, 5)},
        },
        "by_month": by_month,
        "non_product_codes": [{k: _plain(v) for k, v in r.items()} for r in non_product.to_dict("records")],
        "largest_lines": [{k: _plain(v) for k, v in r.items()} for r in largest.to_dict("records")],
        "quarantine_examples": [{k: _plain(v) for k, v in r.items()} for r in quarantined.to_dict("records")],
    }
    return QualityReport(data=data, markdown=to_markdown(data, largest, extreme, non_product, quarantined))


def _cents(series) -> int:  # noqa: ANN001
    """A money column summed in pence (exact: every value is a whole number of pence)."""
    return int(sum(int(round(float(v) * 100)) for v in series if v is not None and v == v))


def _plain(v):  # noqa: ANN001, ANN202 - numpy/pandas scalars to JSON-able Python
    import decimal

    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if isinstance(v, decimal.Decimal):
        return float(v)
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if hasattr(v, "item"):
        v = v.item()
        return None if isinstance(v, float) and math.isnan(v) else v
    return v


def _pct(n: float, d: float) -> str:
    return f"{100 * n / d:.2f} %" if d else "n/a"


def _gbp(v) -> str:  # noqa: ANN001
    return "n/a" if v is None else f"£{v:,.2f}"


def _num(v, fmt: str = "g", prefix: str = "") -> str:  # noqa: ANN001
    return "n/a" if v is None else f"{prefix}{v:{fmt}}"


def _table(df) -> str:  # noqa: ANN001
    """A Markdown table; dates without a midnight time, identifiers as text."""
    import pandas as pd

    if not len(df):
        return "(none)"
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            midnight = bool((s.dropna() == s.dropna().dt.normalize()).all())
            out[col] = s.dt.strftime("%Y-%m-%d" if midnight else "%Y-%m-%d %H:%M").fillna("")
        elif col in ("customer_id", "invoice_no", "stock_code"):
            out[col] = s.astype(str).where(s.notna(), "")
    return out.to_markdown(index=False, floatfmt=",.2f", intfmt=",")


def summary_markdown(data: dict) -> str:
    """The report's first lines (a few hundred bytes): what the asset shows in Dagster."""
    c, f, m = data["cleaning"], data["flags"], data["money"]
    return (
        f"**{c['rows_in']:,} lines in**: {c['rows_clean']:,} clean, {c['rows_duplicate']:,} exact duplicates "
        f"folded, {c['rows_quarantined']:,} quarantined "
        + ("(every line accounted for)" if c["balanced"] else "(**the counts do not balance**)")
        + f". Net revenue {_gbp(m['net_revenue'])} (from the view daily_sales). Flagged, kept: "
        f"{f['extreme_quantity']['lines']:,} extreme quantities, {f['extreme_unit_price']['lines']:,} extreme "
        f"unit prices, {f['mojibake']['lines']:,} values with mojibake."
    )


def to_markdown(data: dict, largest, extreme, non_product, quarantined) -> str:  # noqa: ANN001
    import pandas as pd

    c, t, s, o, f = data["cleaning"], data["totals"], data["lines"], data["outliers"], data["flags"]
    reasons = c["quarantine_by_reason"]
    money = data["money"]
    lines = [
        "# Data quality report",
        "",
        "## What the cleaning did",
        f"- **{c['rows_in']:,} lines in** (counted by the source readers): **{c['rows_clean']:,} clean**, "
        f"**{c['rows_duplicate']:,} exact duplicates** folded into a clean row "
        f"({_pct(c['rows_duplicate'], c['rows_in'])}), **{c['rows_quarantined']:,} quarantined** "
        f"({_pct(c['rows_quarantined'], c['rows_in'])}). "
        + ("Every input line is accounted for in every month (in = clean + duplicates + quarantined, "
           "recounted from the published tables)." if c["balanced"]
           else "**The counts do not balance: see the months below and investigate the clean transform.**"),
        "- Quarantine by reason: "
        + (", ".join(f"{r}: {n:,}" for r, n in reasons.items()) if reasons else "none")
        + ".",
        f"- The clean table spans {str(t['first_invoice'])[:10]} to {str(t['last_invoice'])[:10]} in "
        f"{c['months']} invoice months: {t['invoices']:,} invoices, {t['customers']:,} known customers, "
        f"{t['stock_codes']:,} stock codes, {t['countries']} countries (lines without a country, "
        f"'{UNSPECIFIED_COUNTRY}', are not counted as one: {s['unspecified_country_lines']:,} lines).",
        "",
        "| month | lines in | clean | duplicates | quarantined | balanced |",
        "|---|---:|---:|---:|---:|---|",
        *(f"| {r['month']} | {r['rows_in']:,} | {r['rows_clean']:,} | {r['rows_duplicate']:,} | "
          f"{r['rows_quarantined']:,} | {'yes' if r['balanced'] else 'NO (' + format(r['difference'], ',') + ')'} |"
          for r in c["by_month"]),
        "",
        "## What the clean lines are",
        f"- **Sales** (`is_sale`: not cancelled, quantity > 0, price > 0, a real product): "
        f"{s['sale_lines']:,} lines ({_pct(s['sale_lines'], s['lines'])}); gross sales "
        f"{_gbp(money['gross_sales'])}, returns {_gbp(money['returns_value'])}, net revenue "
        f"{_gbp(money['net_revenue'])} ({money['source']}). The plain sum of every clean line's total "
        f"(cancellations, fees, adjustments included) is {_gbp(t['gross_line_total'])}.",
        f"- **Cancellations**: {t['cancelled_invoices']:,} invoices, {s['cancellation_lines']:,} lines "
        f"({_pct(s['cancellation_lines'], s['lines'])}); of them {s['return_lines']:,} are returned "
        "product lines.",
        f"- **Guest checkouts** (no customer id): {s['guest_lines']:,} lines "
        f"({_pct(s['guest_lines'], s['lines'])}) in {t['guest_invoices']:,} invoices; they count as "
        "sales but not as customers.",
        f"- **Non-product lines** (postage, fees, manual adjustments, vouchers): {s['non_product_lines']:,} "
        f"lines over {t['non_product_codes']} codes.",
        f"- **Zero unit price**: {s['zero_price_lines']:,} lines; **quantity <= 0 without a "
        f"cancellation** (stock adjustments): {s['nonpositive_qty_not_cancelled']:,} lines; "
        f"**missing description**: {s['missing_description']:,} lines.",
        "",
        "## Flagged lines (kept in the clean zone, not dropped)",
        f"- **Extreme quantity** ({f['extreme_quantity']['rule']}, `EXTREME_QUANTITY` in lake/rules.py): "
        f"{f['extreme_quantity']['lines']:,} lines.",
        f"- **Extreme unit price** ({f['extreme_unit_price']['rule']}, `EXTREME_UNIT_PRICE`): "
        f"{f['extreme_unit_price']['lines']:,} lines.",
        "- **Mojibake** (UTF-8 text read as Windows-1252, pattern `MOJIBAKE_PATTERN`): "
        + (", ".join(f"{col}: {n:,} lines" for col, n in f["mojibake"]["lines_by_column"].items() if n) or "none")
        + ".",
    ]
    for col, values in f["mojibake"]["examples"].items():
        lines.append(f"  - {col}: " + "; ".join(f"`{v['value']}` ({v['lines']:,})" for v in values))
    lines += [
        "",
        "Lines flagged for an extreme quantity or unit price, the largest first:",
        "",
        _table(extreme),
        "",
        "## Outliers (sale lines)",
        f"Method: {o['quantity']['method']}; a fence is a reason to look, not to delete.",
        "",
        "| value | Q1 | median | Q3 | low fence | high fence | lines outside | share |",
        "|---|---|---|---|---|---|---|---|",
        f"| quantity (units) | {_num(o['quantity']['q1'])} | {_num(o['quantity']['median'])} | "
        f"{_num(o['quantity']['q3'])} | {_num(o['quantity']['low'])} | {_num(o['quantity']['high'])} | "
        f"{o['quantity']['lines_outside']:,} | {100 * o['quantity']['share_of_sale_lines']:.2f} % |",
        f"| unit price (GBP) | {_num(o['unit_price']['q1'], prefix='£')} | {_num(o['unit_price']['median'], prefix='£')} | "
        f"{_num(o['unit_price']['q3'], prefix='£')} | {_num(o['unit_price']['low'], prefix='£')} | "
        f"{_num(o['unit_price']['high'], prefix='£')} | {o['unit_price']['lines_outside']:,} | "
        f"{100 * o['unit_price']['share_of_sale_lines']:.2f} % |",
        "",
        "Largest lines by absolute value (a huge sale cancelled by an equal negative line is a data-entry "
        "mistake corrected by the shop, not revenue: `is_sale` keeps it, the cancellation is a return):",
        "",
        _table(largest),
        "",
        "## By month",
        "",
    ]
    view = pd.DataFrame(data["by_month"])
    if len(view):
        view.insert(0, "month_name", [f"{MONTH_NAMES[m - 1]} {y}" for y, m in zip(view["year"], view["month"])])
        view = view.drop(columns=["year", "month"]).rename(columns={"month_name": "month"})
    lines.append(_table(view))
    lines += ["", "## Non-product codes", "", _table(non_product)]
    lines += ["", "## Quarantine examples", "", _table(quarantined)]
    return "\n".join(lines) + "\n"


def write_quality(lake: Lake, report: QualityReport) -> list[str]:
    lake.put_text(JSON_KEY, json.dumps(report.data, indent=2, sort_keys=True, default=str))
    lake.put_text(MARKDOWN_KEY, report.markdown)
    return [MARKDOWN_KEY, JSON_KEY]
