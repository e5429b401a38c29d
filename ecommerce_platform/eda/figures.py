"""The EDA figures (PNG, matplotlib Agg): distributions of the user-item interactions, sales over
time, top customers and products, and the seed's four customer-feature figures.

``load_data`` pulls aggregates only (per customer, per product, per day, per distinct value) through
the warehouse: customer and product figures from the analytics views ``sale_lines`` and
``popular_products``, sales over time from ``daily_sales`` (the EDA layer never computes revenue
itself). ``build_figures`` returns ``{name: (title, png bytes)}``; ``write_figures`` puts them in the
reports zone, with the daily series the sales figure shows as CSV beside it. Heavy imports
(matplotlib, seaborn) happen inside the functions.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from ecommerce_platform.resources.lake import Lake
from ecommerce_platform.resources.warehouse import Warehouse

FIGURES_PREFIX = "reports/figures"
SALES_SERIES_KEY = f"{FIGURES_PREFIX}/sales_over_time.csv"
DPI = 110
TOP_N = 15

# name -> title (the order is the order shown in Dagster)
FIGURES: dict[str, str] = {
    "spent_vs_orders": "Total spent vs number of orders, per customer",
    "spent_vs_basket": "Total spent vs average basket size, per customer",
    "recency_vs_spent": "Recency vs total spent, per customer",
    "customer_feature_correlation": "Correlation of customer features (Spearman)",
    "quantity_distribution": "Quantity per sale line",
    "customer_activity": "Customer activity: orders and products per customer",
    "item_frequency": "Item frequency: how often each product sells",
    "sales_over_time": "Sales over time",
    "top_customers": f"Top {TOP_N} customers by total spent",
    "top_products": f"Top {TOP_N} products by gross sales",
}
FEATURE_LABELS = {
    "orders": "orders", "total_spent": "total spent", "avg_order_value": "avg order value",
    "avg_basket_units": "avg basket (units)", "avg_basket_lines": "avg basket (lines)",
    "distinct_products": "distinct products", "recency_days": "recency (days)",
    "tenure_days": "tenure (days)", "return_lines": "return lines", "returned_value": "returned value",
}


@dataclass
class EdaData:
    customers: object  # DataFrame, one row per known customer (sql/customer_features.sql)
    products: object  # one row per product with sales (sql/product_stats.sql: the view popular_products)
    daily: object  # one row per day with a sale or a return (sql/sales_by_day.sql: the view daily_sales)
    quantity_counts: object  # (quantity, lines) over sale lines


def load_data(warehouse: Warehouse) -> EdaData:
    from ecommerce_platform.eda import queries

    return EdaData(
        customers=queries.customer_features(warehouse),
        products=queries.product_stats(warehouse),
        daily=queries.sales_by_day(warehouse),
        quantity_counts=queries.value_counts(warehouse, "quantity"),
    )


def gbp(value: float, _pos=None) -> str:  # noqa: ANN001
    """GBP for axis ticks: £950, £12k, £1.2M."""
    a = abs(value)
    sign = "-" if value < 0 else ""
    if a >= 1e6:
        return f"{sign}£{f'{a / 1e6:,.2f}'.rstrip('0').rstrip('.')}M"
    if a >= 1e4:
        return f"{sign}£{a / 1e3:,.0f}k"
    if a >= 1e3:
        return f"{sign}£{f'{a / 1e3:.1f}'.rstrip('0').rstrip('.')}k"
    if a >= 1 or a == 0:
        return f"{sign}£{a:,.0f}"
    return f"{sign}£{a:.2f}"


def plain(value: float, _pos=None) -> str:  # noqa: ANN001
    """Counts for log axes: 1, 10, 1k, 10k."""
    if value >= 1e6:
        return f"{value / 1e6:g}M"
    if value >= 1e3:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _setup():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": DPI, "axes.titleweight": "bold", "axes.titlesize": 12})
    return plt, sns


def _png(fig) -> bytes:  # noqa: ANN001
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _log_bins(max_value: float, per_decade: int = 8):
    import numpy as np

    top = max(float(max_value), 1.0)
    return np.logspace(0, np.log10(top) + 1e-9 + 1 / per_decade, int(np.ceil(np.log10(top) * per_decade)) + 2)


def _fmt_axis(axis, fn) -> None:  # noqa: ANN001
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(fn))


def build_figures(data: EdaData) -> dict[str, tuple[str, bytes]]:
    """Every figure of FIGURES as PNG bytes."""
    plt, sns = _setup()
    c = data.customers
    out: dict[str, tuple[str, bytes]] = {}
    n_cust = len(c)

    def scatter(x: str, y: str, xlabel: str, ylabel: str, logx: bool, note: str):  # noqa: ANN202
        fig, ax = plt.subplots(figsize=(7.5, 5.2), layout="constrained")
        d = c[(c[y] > 0) & ((c[x] > 0) if logx else (c[x] >= 0))]
        ax.scatter(d[x], d[y], s=9, alpha=0.35, color="#1f77b4", edgecolors="none")
        ax.set_yscale("log")
        _fmt_axis(ax.yaxis, gbp)
        if logx:
            ax.set_xscale("log")
            _fmt_axis(ax.xaxis, plain)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.text(0.99, 0.02, note, transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="#555")
        return fig, ax

    def top_bars(name: str, labels, values, color: str, width: float, xlabel: str,  # noqa: ANN001, ANN202
                 ylabel: str | None = None):
        """Figure ``name``: a bar per label (the largest on top), its GBP value beside it."""
        fig, ax = plt.subplots(figsize=(width, 6), layout="constrained")
        bars = ax.barh(labels, values, color=color)
        ax.bar_label(bars, labels=[gbp(v) for v in values], padding=3, fontsize=8)
        _fmt_axis(ax.xaxis, gbp)
        ax.set_xlabel(xlabel)
        if ylabel is not None:
            ax.set_ylabel(ylabel)
        ax.set_title(FIGURES[name])
        ax.margins(x=0.12)
        out[name] = (FIGURES[name], _png(fig))

    if n_cust:
        for key, column, xlabel, log_x in (
            ("spent_vs_orders", "orders", "orders (distinct invoices with a sale, log scale)", True),
            ("spent_vs_basket", "avg_basket_units", "average basket size (units per order, log scale)", True),
            ("recency_vs_spent", "recency_days", "recency (days since the last purchase)", False),
        ):
            rho = c[[column, "total_spent"]].corr(method="spearman").iloc[0, 1]
            fig, ax = scatter(column, "total_spent", xlabel, "total spent (GBP, log scale)", log_x,
                              f"{n_cust:,} customers · Spearman ρ = {rho:.2f}")
            ax.set_title(FIGURES[key])
            out[key] = (FIGURES[key], _png(fig))

        cols = [k for k in FEATURE_LABELS if k in c.columns]
        corr = c[cols].astype(float).corr(method="spearman").rename(index=FEATURE_LABELS, columns=FEATURE_LABELS)
        fig, ax = plt.subplots(figsize=(8.5, 7), layout="constrained")
        sns.heatmap(corr, annot=True, fmt=".2f", cmap="RdBu_r", vmin=-1, vmax=1, square=True,
                    annot_kws={"size": 8}, cbar_kws={"label": "Spearman rank correlation", "shrink": 0.8}, ax=ax)
        ax.set_title(f"{FIGURES['customer_feature_correlation']}, {n_cust:,} customers")
        ax.tick_params(axis="x", rotation=40)
        plt.setp(ax.get_xticklabels(), ha="right")
        out["customer_feature_correlation"] = (FIGURES["customer_feature_correlation"], _png(fig))

    q = data.quantity_counts
    if len(q):
        fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
        ax.hist(q["quantity"], bins=_log_bins(q["quantity"].max()), weights=q["lines"], color="#2a9d8f",
                edgecolor="white")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _fmt_axis(ax.xaxis, plain)
        _fmt_axis(ax.yaxis, plain)
        total = q["lines"].sum()
        med = _wmedian(q["quantity"], q["lines"])
        ax.axvline(med, color="#e76f51", ls="--", lw=1.2, label=f"median {med:g} units")
        ax.set_xlabel("quantity on the line (units, log scale)")
        ax.set_ylabel("sale lines (log scale)")
        ax.set_title(FIGURES["quantity_distribution"])
        ax.legend(title=f"{total:,} sale lines; max {q['quantity'].max():,}")
        out["quantity_distribution"] = (FIGURES["quantity_distribution"], _png(fig))

    if n_cust:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
        for ax, col, label, color in (
            (axes[0], "orders", "orders per customer", "#264653"),
            (axes[1], "distinct_products", "distinct products per customer", "#e9c46a"),
        ):
            ax.hist(c[col], bins=_log_bins(c[col].max()), color=color, edgecolor="white")
            ax.set_xscale("log")
            _fmt_axis(ax.xaxis, plain)
            med = c[col].median()
            ax.axvline(med, color="#e76f51", ls="--", lw=1.2, label=f"median {med:g}")
            ax.set_xlabel(f"{label} (log scale)")
            ax.set_ylabel("customers")
            ax.legend()
        axes[0].set_title("Orders per customer")
        axes[1].set_title("Distinct products per customer")
        fig.suptitle(f"{FIGURES['customer_activity']} ({n_cust:,} known customers)", fontweight="bold")
        out["customer_activity"] = (FIGURES["customer_activity"], _png(fig))

    p = data.products
    if len(p):
        import numpy as np

        fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
        axes[0].hist(p["orders"], bins=_log_bins(p["orders"].max()), color="#8ab17d", edgecolor="white")
        axes[0].set_xscale("log")
        _fmt_axis(axes[0].xaxis, plain)
        axes[0].set_xlabel("orders containing the product (log scale)")
        axes[0].set_ylabel("products")
        axes[0].set_title("Orders per product")
        ranked = np.sort(p["orders"].to_numpy())[::-1]
        axes[1].plot(np.arange(1, len(ranked) + 1), ranked, color="#287271")
        axes[1].set_xscale("log")
        axes[1].set_yscale("log")
        _fmt_axis(axes[1].xaxis, plain)
        _fmt_axis(axes[1].yaxis, plain)
        share = p.sort_values("gross_sales", ascending=False)["gross_sales"].cumsum() / p["gross_sales"].sum()
        top20 = min(int((share <= 0.8).sum()) + 1, len(p))
        axes[1].set_xlabel("product rank (log scale)")
        axes[1].set_ylabel("orders (log scale)")
        axes[1].set_title("Long tail: orders by product rank")
        axes[1].text(0.03, 0.05, f"{top20:,} of {len(p):,} products ({top20 / len(p):.0%}) make 80 % of gross sales",
                     transform=axes[1].transAxes, fontsize=9, color="#333")
        fig.suptitle(f"{FIGURES['item_frequency']} ({len(p):,} products with sales)", fontweight="bold")
        out["item_frequency"] = (FIGURES["item_frequency"], _png(fig))

    d = data.daily
    if len(d):
        import matplotlib.dates as mdates
        import pandas as pd

        d = d.set_index("sale_date").sort_index()
        monthly = d["net_revenue"].resample("MS").sum()
        fig, axes = plt.subplots(2, 1, figsize=(11, 7), sharex=False, layout="constrained")
        axes[0].bar(monthly.index, monthly.to_numpy(), width=20, color="#1d3557", align="edge")
        axes[0].set_title("Net revenue per month (sales - returns; the last month may be partial)")
        axes[0].set_ylabel("net revenue (GBP)")
        _fmt_axis(axes[0].yaxis, gbp)
        for ax in axes:
            ax.xaxis.set_major_locator(mdates.MonthLocator())
            ax.xaxis.set_major_formatter(mdates.DateFormatter("%b\n%Y"))
        full = d["net_revenue"].asfreq("D", fill_value=0)
        axes[1].plot(d.index, d["net_revenue"], ".", ms=3, color="#5b8db8", alpha=0.6, label="day with sales or returns")
        axes[1].plot(full.index, full.rolling(7).mean(), color="#e63946", lw=1.5, label="7-day average (calendar days)")
        axes[1].set_title("Net revenue per day")
        axes[1].set_ylabel("net revenue (GBP)")
        _fmt_axis(axes[1].yaxis, gbp)
        axes[1].legend(loc="upper left")
        fig.suptitle(f"{FIGURES['sales_over_time']}: {pd.Timestamp(d.index.min()):%d %b %Y} to "
                     f"{pd.Timestamp(d.index.max()):%d %b %Y}, net revenue {gbp(d['net_revenue'].sum())} "
                     "(view daily_sales)", fontweight="bold")
        out["sales_over_time"] = (FIGURES["sales_over_time"], _png(fig))

    if n_cust:
        top = c.nlargest(TOP_N, "total_spent").iloc[::-1]
        labels = [f"{cid} ({o:,} order{'s' if o != 1 else ''})" for cid, o in zip(top["customer_id"], top["orders"])]
        top_bars("top_customers", labels, top["total_spent"], "#457b9d", 8,
                 "total spent (GBP, gross sales before returns)", "customer id")

    if len(p):
        top = p.nlargest(TOP_N, "gross_sales").iloc[::-1]
        labels = [f"{str(desc or '')[:32]} [{code}]" for desc, code in zip(top["description"], top["stock_code"])]
        top_bars("top_products", labels, top["gross_sales"], "#f4a261", 8.5,
                 "gross sales (GBP, before returns; view popular_products)")
    return out


def _wmedian(values, weights) -> float:  # noqa: ANN001
    from ecommerce_platform.eda.quality import weighted_quantile

    return weighted_quantile(values, weights, 0.5)


def write_figures(lake: Lake, figures: dict[str, tuple[str, bytes]], daily=None) -> list[str]:  # noqa: ANN001
    """The PNGs in reports/figures/ (and the daily series of the sales figure as CSV); returns their keys.
    Figures of an earlier run that this one did not draw (no data for them now) are removed."""
    keys = []
    for name, (_title, png) in figures.items():
        key = f"{FIGURES_PREFIX}/{name}.png"
        lake.put_bytes(key, png)
        keys.append(key)
    if daily is not None:
        lake.put_text(SALES_SERIES_KEY, sales_series_csv(daily))
        keys.append(SALES_SERIES_KEY)
    for stale in set(lake.list(FIGURES_PREFIX)) - set(keys):
        if stale.endswith((".png", ".csv")):
            lake.delete_prefix(stale)
    return keys


def sales_series_csv(daily) -> str:  # noqa: ANN001
    """The daily series as CSV: date, gross sales, returns, net revenue (GBP, pence), orders, customers."""
    out = daily.copy()
    out["sale_date"] = out["sale_date"].dt.strftime("%Y-%m-%d")
    for col in ("gross_sales", "returns_value", "net_revenue"):
        out[col] = out[col].map(lambda v: f"{v:.2f}")
    return out.to_csv(index=False)
