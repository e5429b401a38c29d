"""The sales dashboard: the four QuickSight pictures of the seed (daily sales, top products, sales by
country, top customers) plus a monthly trend, drawn from the analytics views as PNG charts and one HTML
page in the lake's analytics zone (``analytics/dashboard/``).

The page references its charts by relative path (``daily_sales.png`` beside ``index.html``), so it
works opened from the lake folder and served by any web server. Only aggregates leave the warehouse
(a few hundred rows). Reuse is decided by the asset (``recompute.previous_if_fresh``).
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field

from ecommerce_platform.analytics.views import as_numbers
from ecommerce_platform.resources.warehouse import Warehouse
from ecommerce_platform.schema import UNSPECIFIED_COUNTRY  # the clean zone's "no country": not a country

DASHBOARD_PREFIX = "analytics/dashboard"
DASHBOARD_HTML = f"{DASHBOARD_PREFIX}/index.html"
TOP_N = 15
DATE_COLUMNS = ("sale_date", "sale_month", "first_day", "last_day", "first_purchase", "last_purchase")
TEXT_COLUMNS = frozenset({"customer_id", "stock_code", "invoice_no", "description", "country"})

# chart file stem -> title (the same title is drawn on the PNG and written above it in the HTML)
CHARTS: dict[str, str] = {
    "daily_sales": "Daily net revenue",
    "monthly_trend": "Monthly net revenue and orders",
    "top_products": f"Top {TOP_N} products by net revenue",
    "sales_by_country": f"Net revenue by country (top {TOP_N})",
    "top_customers": f"Top {TOP_N} customers by net revenue",
}
# The views the dashboard reads (its asset's dependencies; a test checks them against QUERIES).
VIEWS_READ: tuple[str, ...] = (
    "daily_sales", "monthly_sales", "popular_products", "sales_by_country", "top_customers", "sales_kpis",
)
QUERIES: dict[str, str] = {
    "kpis": "SELECT * FROM sales_kpis",
    "daily": "SELECT sale_date, gross_sales, returns_value, net_revenue, orders, customers "
    "FROM daily_sales ORDER BY sale_date",
    "monthly": "SELECT * FROM monthly_sales ORDER BY sale_month",
    "products": f"SELECT * FROM popular_products WHERE revenue_rank <= {TOP_N} ORDER BY revenue_rank",
    "countries": "SELECT * FROM sales_by_country ORDER BY revenue_rank NULLS LAST, country",
    "customers": f"SELECT * FROM top_customers WHERE revenue_rank <= {TOP_N} ORDER BY revenue_rank",
}

BLUE, LIGHT_BLUE, ORANGE, GREY = "#1f5f99", "#9ec5e8", "#d9731a", "#6b6b6b"


@dataclass
class DashboardResult:
    html_key: str
    chart_keys: dict[str, str]
    kpis: dict
    unspecified_country_net: float = 0.0  # net revenue of lines without a country (not charted)
    top_products: list[dict] = field(default_factory=list)  # the page's first table, as plain records


# ----------------------------------------------------------------------------------------- data
def load_data(warehouse: Warehouse) -> dict:
    """The aggregates the dashboard shows, from the views (numbers typed, dates as datetimes)."""
    import pandas as pd

    data = {}
    for name, sql in QUERIES.items():
        df = as_numbers(warehouse.query_df(sql), TEXT_COLUMNS)
        for col in DATE_COLUMNS:
            if col in df.columns:
                df[col] = pd.to_datetime(df[col])
        data[name] = df
    if data["kpis"].empty or data["daily"].empty or data["kpis"]["orders"].fillna(0).iloc[0] == 0:
        raise RuntimeError("the analytics views hold no sale: there is nothing to draw (is the clean zone empty?)")
    return data


# --------------------------------------------------------------------------------------- charts
def gbp(value: float, decimals: int = 0) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}£{abs(value):,.{decimals}f}"


def gbp_short(value: float, _pos=None) -> str:  # noqa: ANN001 - matplotlib tick formatter
    v = abs(value)
    sign = "-" if value < 0 else ""
    if v >= 1_000_000:
        m = v / 1_000_000
        return f"{sign}£{m:,.0f}m" if m == int(m) else f"{sign}£{m:,.1f}m"
    if v >= 1_000:
        return f"{sign}£{v / 1_000:,.0f}k"
    return f"{sign}£{v:,.0f}"


def _figure(width: float = 11.0, height: float = 5.6):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "font.size": 10.5, "axes.titlesize": 14, "axes.titleweight": "bold", "axes.labelsize": 11,
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
        "figure.dpi": 100, "savefig.dpi": 100,
    })
    return plt.subplots(figsize=(width, height))


def _png(fig) -> bytes:  # noqa: ANN001
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _subtitle(ax, text: str) -> None:  # noqa: ANN001
    ax.text(0.0, 1.01, text, transform=ax.transAxes, fontsize=9.5, color=GREY, va="bottom")


def chart_daily(daily, kpis) -> bytes:  # noqa: ANN001
    import matplotlib.dates as mdates
    from matplotlib.ticker import FuncFormatter

    fig, ax = _figure()
    d = daily.sort_values("sale_date").set_index("sale_date")
    ax.bar(d.index, d["net_revenue"], width=0.9, color=LIGHT_BLUE, label="Net revenue per day")
    rolling = d["net_revenue"].rolling("28D", min_periods=1).mean()
    ax.plot(rolling.index, rolling.values, color=BLUE, linewidth=2.2, label="28-day rolling mean")
    ax.axhline(0, color=GREY, linewidth=0.8)
    ax.yaxis.set_major_formatter(FuncFormatter(gbp_short))
    ax.xaxis.set_major_locator(mdates.MonthLocator())
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%b\n%Y"))
    ax.set_xlabel("Invoice date")
    ax.set_ylabel("Net revenue (GBP)")
    ax.set_title(CHARTS["daily_sales"], loc="left", pad=22)
    k = kpis.iloc[0]
    _subtitle(ax, f"{int(k['trading_days']):,} trading days, {k['first_day']:%d %b %Y} to "
                  f"{k['last_day']:%d %b %Y}; net = sales - returns (GBP)")
    ax.legend(loc="upper left", frameon=False)
    return _png(fig)


def partial_months(monthly, kpis):  # noqa: ANN001, ANN201
    """The first and last months of the data are partial when the data starts or stops mid-month
    (more than a week from the month's edge); closures inside a month (Christmas) are not."""
    import pandas as pd

    k = kpis.iloc[0]
    start = monthly["sale_month"]
    end = start + pd.offsets.MonthEnd(0)
    first = (start == start.min()) & ((k["first_day"] - start).dt.days > 7)
    last = (start == start.max()) & ((end - k["last_day"]).dt.days > 7)
    return (first | last).to_numpy()


def chart_monthly(monthly, kpis) -> bytes:  # noqa: ANN001
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, StrMethodFormatter

    plt.close(_figure()[0])  # applies the shared style
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(11, 6.6), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.08})
    m = monthly.sort_values("sale_month").reset_index(drop=True)
    labels = [f"{t:%b %Y}" for t in m["sale_month"]]
    partial = partial_months(m, kpis)
    x = list(range(len(m)))
    for i, row in m.iterrows():
        ax.bar(i, row["net_revenue"], color=LIGHT_BLUE if partial[i] else BLUE,
               hatch="//" if partial[i] else None, edgecolor=BLUE, width=0.7)
        note = f"\n(to {row['last_day']:%d %b})" if partial[i] else ""
        ax.text(i, row["net_revenue"], gbp_short(row["net_revenue"]) + note, ha="center",
                va="bottom", fontsize=9)
    ax.yaxis.set_major_formatter(FuncFormatter(gbp_short))
    ax.set_ylabel("Net revenue (GBP)")
    ax.set_ylim(0, max(m["net_revenue"].max(), 1) * 1.2)
    ax.grid(axis="x", visible=False)
    ax.set_title(CHARTS["monthly_trend"], loc="left", pad=22)
    _subtitle(ax, "Net revenue per month (GBP); hatched: partial month (the data stops mid-month)")
    ax2.plot(x, m["orders"], color=ORANGE, marker="o", linewidth=2, label="Orders")
    ax2.plot(x, m["customers"], color=GREY, marker="s", linewidth=1.5, label="Customers")
    ax2.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax2.set_ylim(0, max(m["orders"].max(), 1) * 1.25)
    ax2.set_ylabel("Count")
    ax2.legend(loc="upper left", frameon=False, ncol=2)
    ax2.set_xticks(x, labels, rotation=45, ha="right")
    ax2.set_xlabel("Month")
    return _png(fig)


def _label(text: str, width: int = 38) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _hbar(ax, labels, values, annotations, color=BLUE):  # noqa: ANN001, ANN202
    y = list(range(len(labels)))[::-1]
    ax.barh(y, values, color=color, height=0.7)
    ax.set_yticks(y, labels)
    ax.grid(axis="y", visible=False)
    for yi, v, a in zip(y, values, annotations):
        ax.text(v, yi, f"  {a}", va="center", fontsize=9)


def _revenue_ranking(chart: str, labels, revenue, notes, subtitle: str, headroom: float,  # noqa: ANN001
                     log: bool = False) -> bytes:
    """A bar per ranked item (the first on top), its net revenue on a GBP axis that runs ``headroom``
    times past the largest (from 0, or on a log scale from below the smallest) and its note beside it."""
    from matplotlib.ticker import FuncFormatter

    fig, ax = _figure(11, 6.4)
    _hbar(ax, labels, revenue, notes)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(revenue.min() / 1.5, revenue.max() * headroom)
    else:
        ax.set_xlim(0, revenue.max() * headroom)
    ax.xaxis.set_major_formatter(FuncFormatter(gbp_short))
    ax.set_xlabel("Net revenue (GBP, log scale)" if log else "Net revenue (GBP)")
    ax.set_title(CHARTS[chart], loc="left", pad=22)
    _subtitle(ax, subtitle)
    return _png(fig)


def chart_products(products) -> bytes:  # noqa: ANN001
    p = products.sort_values("revenue_rank").head(TOP_N)
    labels = [f"{_label(d)} ({c})" for d, c in zip(p["description"], p["stock_code"])]
    notes = [f"{gbp(v)} · {int(u):,} units" for v, u in zip(p["net_revenue"], p["units_sold"])]
    return _revenue_ranking("top_products", labels, p["net_revenue"], notes,
                            "Product name = its most frequent description; net = sales - returns", headroom=1.35)


def chart_countries(countries) -> bytes:  # noqa: ANN001
    c = countries[countries["revenue_rank"].notna()].sort_values("revenue_rank").head(TOP_N)
    c = c[c["net_revenue"] > 0]
    notes = [f"{gbp(v)} ({s:.1%})" for v, s in zip(c["net_revenue"], c["share_of_net_revenue"])]
    top = c.iloc[0]
    # Log scale because the range spans orders of magnitude (one country dominates): on a linear
    # axis every bar but the first would be invisible. Labels carry the exact values and shares.
    return _revenue_ranking("sales_by_country", list(c["country"]), c["net_revenue"], notes,
                            f"Log scale: {top['country']} alone is {top['share_of_net_revenue']:.1%} of net "
                            f"revenue; lines without a country ({UNSPECIFIED_COUNTRY!r}) are not shown",
                            headroom=5, log=True)


def chart_customers(customers) -> bytes:  # noqa: ANN001
    c = customers.sort_values("revenue_rank").head(TOP_N)
    labels = [f"Customer {cid} · {country}" for cid, country in zip(c["customer_id"], c["country"])]
    notes = [f"{gbp(v)} · {int(o):,} orders" for v, o in zip(c["net_revenue"], c["orders"])]
    return _revenue_ranking("top_customers", labels, c["net_revenue"], notes,
                            "Identified customers only (guest checkouts excluded); net = sales - returns", headroom=1.3)


def render_charts(data: dict) -> dict[str, bytes]:
    return {
        "daily_sales": chart_daily(data["daily"], data["kpis"]),
        "monthly_trend": chart_monthly(data["monthly"], data["kpis"]),
        "top_products": chart_products(data["products"]),
        "sales_by_country": chart_countries(data["countries"]),
        "top_customers": chart_customers(data["customers"]),
    }


# ----------------------------------------------------------------------------------------- page
def kpi_values(kpis) -> dict:  # noqa: ANN001
    """The headline figures: money rounded to pence, counts as integers, the period as ISO dates."""
    k = kpis.iloc[0]
    return {
        "net_revenue": round(float(k["net_revenue"]), 2),
        "gross_sales": round(float(k["gross_sales"]), 2),
        "returns_value": round(float(k["returns_value"]), 2),
        "orders": int(k["orders"]),
        "customers": int(k["customers"]),
        "countries": int(k["countries"]),
        "avg_order_value": round(float(k["avg_order_value"]), 2),
        "first_day": f"{k['first_day']:%Y-%m-%d}",
        "last_day": f"{k['last_day']:%Y-%m-%d}",
    }


def format_frame(df):  # noqa: ANN001, ANN201
    """Values as a person reads them: dates without a time, GBP with pence, counts with separators."""
    import pandas as pd

    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            is_date = bool((s.dropna() == s.dropna().dt.normalize()).all())
            out[col] = s.dt.strftime("%Y-%m-%d" if is_date else "%Y-%m-%d %H:%M").fillna("")
        elif pd.api.types.is_bool_dtype(s):
            out[col] = s.astype(str)
        elif pd.api.types.is_integer_dtype(s):
            out[col] = s.map(lambda v: f"{v:,}")
        elif pd.api.types.is_float_dtype(s):
            if col.endswith(("_rate", "share_of_net_revenue")):
                out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:.2%}")
            elif col.startswith(("units", "return_lines", "revenue_rank")):
                out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:,.0f}")
            else:
                out[col] = s.map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
        else:
            out[col] = s.astype(str).where(s.notna(), "")
    return out


def tables(data: dict) -> dict:
    """Small tables shown under the charts (as DataFrames of display strings)."""
    products = data["products"].head(10)[
        ["revenue_rank", "stock_code", "description", "units_sold", "net_revenue", "orders", "customers", "return_rate"]
    ]
    ranked = data["countries"][data["countries"]["revenue_rank"].notna()]
    countries = ranked.head(10)[
        ["revenue_rank", "country", "net_revenue", "orders", "customers", "avg_order_value", "share_of_net_revenue"]
    ].copy()
    countries["revenue_rank"] = countries["revenue_rank"].astype("int64")
    customers = data["customers"].head(10)[
        ["revenue_rank", "customer_id", "country", "net_revenue", "orders", "first_purchase", "last_purchase"]
    ]
    monthly = data["monthly"][
        ["sale_month", "trading_days", "gross_sales", "returns_value", "net_revenue", "orders", "customers", "new_customers"]
    ].copy()
    monthly["sale_month"] = monthly["sale_month"].dt.strftime("%b %Y")
    return {
        "Top 10 products": format_frame(products),
        "Top 10 countries": format_frame(countries),
        "Top 10 customers": format_frame(customers),
        "Monthly figures": format_frame(monthly),
    }


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;background:#f6f7f9}
h1{margin:0 0 4px}p.note{color:#555;margin:0 0 18px;max-width:70em}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin-bottom:20px}
.kpi{background:#fff;border-radius:8px;padding:12px 16px;min-width:150px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
.kpi .label{font-size:12px;color:#666;text-transform:uppercase;letter-spacing:.04em}
.kpi .value{font-size:22px;font-weight:600;color:#1f5f99}
figure{background:#fff;border-radius:8px;padding:12px;margin:0 0 20px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
figure h2{margin:0 0 8px;font-size:18px}figure img{max-width:100%;height:auto;display:block}
.tables{display:grid;grid-template-columns:repeat(auto-fit,minmax(520px,1fr));gap:16px}
table{border-collapse:collapse;background:#fff;font-size:13px;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #e3e3e3;text-align:right}
th{background:#eef2f6}td:nth-child(-n+3){text-align:left}
section.table{background:#fff;border-radius:8px;padding:12px;box-shadow:0 1px 3px rgba(0,0,0,.12);overflow-x:auto}
section.table h2{font-size:16px;margin:0 0 8px}
"""


def _table_html(df) -> str:  # noqa: ANN001
    head = "".join(f"<th>{html.escape(c.replace('_', ' '))}</th>" for c in df.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in df.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def chart_file(name: str) -> str:
    """The chart's file name, beside index.html (the page refers to it by this relative path)."""
    return f"{name}.png"


def render_html(kpis: dict, table_frames: dict, unspecified_net: float = 0.0) -> str:
    tiles = [
        ("Net revenue", gbp(kpis["net_revenue"])), ("Gross sales", gbp(kpis["gross_sales"])),
        ("Returns", gbp(kpis["returns_value"])), ("Orders", f"{kpis['orders']:,}"),
        ("Customers", f"{kpis['customers']:,}"), ("Average order value", gbp(kpis["avg_order_value"], 2)),
        ("Countries", f"{kpis['countries']:,}"), ("Period", f"{kpis['first_day']} to {kpis['last_day']}"),
    ]
    tiles_html = "".join(
        f'<div class="kpi"><div class="label">{html.escape(a)}</div><div class="value">{html.escape(b)}</div></div>'
        for a, b in tiles
    )
    figures = "".join(
        f'<figure id="{name}"><h2>{html.escape(title)}</h2>'
        f'<img alt="{html.escape(title)}" src="{html.escape(chart_file(name))}"></figure>'
        for name, title in CHARTS.items()
    )
    tables_html = "".join(
        f'<section class="table"><h2>{html.escape(title)}</h2>{_table_html(df)}</section>'
        for title, df in table_frames.items()
    )
    unspecified = (
        f" Lines without a country ({html.escape(UNSPECIFIED_COUNTRY)}, net revenue "
        f"{html.escape(gbp(unspecified_net, 2))}) count in every total but are not a country: they are "
        "not ranked or counted among the countries." if unspecified_net else ""
    )
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        f"<title>Sales dashboard</title><style>{_CSS}</style></head><body>"
        "<h1>Sales dashboard</h1>"
        "<p class=\"note\">A sale is a line that is not a cancellation, has quantity &gt; 0 and unit price "
        "&gt; 0, and is a real product (not postage, fees, adjustments or vouchers). Net revenue = gross "
        "sales - returns (cancelled product lines). Amounts in GBP. Source: the analytics views "
        f"({', '.join(VIEWS_READ)}).{unspecified}</p>"
        f"<div class=\"kpis\">{tiles_html}</div>{figures}<div class=\"tables\">{tables_html}</div>"
        "</body></html>"
    )


# ----------------------------------------------------------------------------------------- build
def build_dashboard(warehouse: Warehouse) -> DashboardResult:
    """Charts, then the page that shows them, in ``analytics/dashboard/`` of the warehouse's lake (each
    object written atomically; the page last, so it never refers to a chart not written yet)."""
    from ecommerce_platform.analytics.views import plain

    lake = warehouse.lake
    data = load_data(warehouse)
    charts = render_charts(data)
    kpis = kpi_values(data["kpis"])
    countries = data["countries"]
    unspecified = round(float(countries.loc[countries["revenue_rank"].isna(), "net_revenue"].sum()), 2)
    chart_keys = {name: f"{DASHBOARD_PREFIX}/{chart_file(name)}" for name in CHARTS}
    for name, png in charts.items():
        lake.put_bytes(chart_keys[name], png)
    lake.put_text(DASHBOARD_HTML, render_html(kpis, tables(data), unspecified))
    top = data["products"].head(10)[["revenue_rank", "stock_code", "description", "units_sold", "net_revenue"]]
    return DashboardResult(
        html_key=DASHBOARD_HTML, chart_keys=chart_keys, kpis=kpis, unspecified_country_net=unspecified,
        top_products=[{k: plain(v) for k, v in r.items()} for r in top.to_dict("records")],
    )


def output_keys() -> list[str]:
    """Every object the dashboard writes (what must exist for it to be reused)."""
    return [DASHBOARD_HTML, *(f"{DASHBOARD_PREFIX}/{chart_file(n)}" for n in CHARTS)]
