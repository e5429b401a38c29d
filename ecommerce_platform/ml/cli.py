"""`ecommerce predict-high-value`, `ecommerce recommend`, `ecommerce similar`, `ecommerce forecast`: the ML
layer's predict paths, reading only what the assets served (npz/Parquet/JSON in the lake) and, for the
classifier, the customer's history from the lake through the warehouse."""

from __future__ import annotations

import json
import sys

import click


def _warehouse():
    """The deployment's warehouse (its lake: ``warehouse.lake``), from ``build_resources()``."""
    from ecommerce_platform.resources import build_resources

    return build_resources()["warehouse"]


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


@click.command("predict-high-value")
@click.argument("input_file", type=click.File("r"), default="-")
def predict_high_value(input_file) -> None:  # noqa: ANN001
    """Probability that an invoice will be high-value, from JSON (a file, or stdin with '-').

    Input: one object or a list, each with customer_id (optional), country, invoice_ts (ISO) and the
    basket as "lines" (a list) or "basket_lines" (a count). Output: JSON with probability and label.
    """
    from ecommerce_platform.ml.classifier import PredictInputError, predict

    text = input_file.read()
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(f"input is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})")
    warehouse = _warehouse()
    try:
        out = predict(warehouse, payload)
    except PredictInputError as exc:
        _fail(str(exc))
    except FileNotFoundError as exc:
        _fail(str(exc))
    click.echo(json.dumps(out if isinstance(payload, list) else out[0], indent=2))


def _load_recommender():
    from ecommerce_platform.ml.recommender import Recommender

    try:
        return Recommender.load(_warehouse().lake)
    except FileNotFoundError as exc:
        _fail(str(exc))


@click.command("recommend")
@click.argument("customer_id")
@click.option("-n", "--n", "n", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--mode", type=click.Choice(["discovery", "next-basket"]), default="discovery", show_default=True,
              help="discovery: products new to the customer; next-basket: what they buy next, re-orders included.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a list.")
def recommend(customer_id: str, n: int, mode: str, as_json: bool) -> None:
    """Products to recommend to CUSTOMER_ID (recently popular products for an unknown customer)."""
    rec = _load_recommender()
    out = rec.recommend(customer_id, n=n, mode=mode)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out["known_customer"]:
        click.echo(out["message"])
    elif mode == "discovery":
        click.echo(f"Recommendations for customer {out['customer_id']} (discovery: none of the "
                   f"{out['purchased_products']} products already bought):")
    else:
        click.echo(f"Next basket of customer {out['customer_id']} (re-orders marked *):")
    for it in out["items"]:
        mark = "*" if it.get("reorder") else " "
        score = "" if it["score"] is None else f"  ({it['score']:.3f})"
        click.echo(f"{it['rank']:>3}.{mark}{it['stock_code']:<10} {it['description'] or '(no description)'}{score}")


@click.command("similar")
@click.argument("stock_code")
@click.option("-n", "--n", "n", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--min-shared-buyers", default=None, type=click.IntRange(1, None),
              help="Only products bought by at least this many of the product's buyers (default: 5).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a list.")
def similar(stock_code: str, n: int, min_shared_buyers: int | None, as_json: bool) -> None:
    """Products similar to STOCK_CODE (cosine of ALS item factors, among products sharing buyers with it)."""
    from ecommerce_platform.ml.contract import MIN_SHARED_BUYERS
    from ecommerce_platform.ml.recommender import UnknownItemError

    rec = _load_recommender()
    try:
        out = rec.similar(stock_code, n=n, min_shared_buyers=min_shared_buyers or MIN_SHARED_BUYERS)
    except UnknownItemError as exc:
        _fail(exc.args[0])
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(f"Products similar to {out['stock_code']} ({out['description'] or 'no description'}), sharing at "
               f"least {out['min_shared_buyers']} of its {out['buyers']} buyers:")
    for it in out["items"]:
        click.echo(f"{it['rank']:>3}. {it['stock_code']:<10} {it['description'] or '(no description)'}  "
                   f"({it['score']:.3f}, {it['shared_buyers']} shared buyers)")


@click.command("forecast")
@click.option("--country", default=None, help="A country the forecast covers (default: the whole business).")
@click.option("--weeks", default=None, type=click.IntRange(1, None), help="Weeks to show (default: all served).")
@click.option("--daily", is_flag=True, help="Show the days instead of the weeks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def forecast(country: str | None, weeks: int | None, daily: bool, as_json: bool) -> None:
    """Net revenue forecast (GBP, sales minus returns) with its prediction interval, as served by the
    `sales_forecast` asset."""
    from ecommerce_platform.ml.contract import ALL_SERIES
    from ecommerce_platform.ml.forecast import load_served

    try:
        df = load_served(_warehouse().lake)
    except FileNotFoundError as exc:
        _fail(str(exc))
    series = country.strip() if country else ALL_SERIES
    names = [str(n) for n in df["series"].drop_duplicates()]
    match = [n for n in names if n.lower() == series.lower()]
    if not match:
        _fail(f"no forecast for {series!r}: the forecast covers {', '.join(names)}")
    rows = df[(df["series"] == match[0]) & (df["granularity"] == ("day" if daily else "week"))].sort_values("horizon")
    if weeks is not None:
        rows = rows[rows["horizon"] <= (7 * weeks if daily else weeks)]
    records = [{"period_start": str(r.period_start), "period_end": str(r.period_end), "horizon": int(r.horizon),
                "trading_days": int(r.trading_days), "forecast": float(r.forecast), "lower": float(r.lower),
                "upper": float(r.upper)} for r in rows.itertuples()]
    meta = rows.iloc[0] if len(rows) else df.iloc[0]
    out = {"series": match[0], "granularity": "day" if daily else "week", "origin": str(meta["origin"]),
           "interval": float(meta["interval"]), "run_id": str(meta["run_id"]), "rows": records}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    click.echo(f"Net revenue forecast, {out['series']} (GBP; history up to {out['origin']}; "
               f"{out['interval']:.0%} interval; run {out['run_id']}):")
    for r in records:
        period = r["period_start"] if daily else f"{r['period_start']} .. {r['period_end']}"
        if r["trading_days"] == 0:
            click.echo(f"  {period:<24} closed")
        else:
            click.echo(f"  {period:<24} {r['forecast']:>12,.0f}   [{r['lower']:>10,.0f} - {r['upper']:>10,.0f}]")
