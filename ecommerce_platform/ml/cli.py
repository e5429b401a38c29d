"""`ecommerce predict-high-value`, `ecommerce recommend`, `ecommerce similar`: the ML layer's predict
paths, reading the served models (npz/Parquet/JSON) and, for the classifier, the customer's history
from the lake through the warehouse."""

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


def _print_items(items: list[dict], as_json: bool) -> None:
    if as_json:
        return
    for it in items:
        score = "" if it["score"] is None else f"  ({it['score']:.3f})"
        click.echo(f"{it['rank']:>3}. {it['stock_code']:<10} {it['description'] or '(no description)'}{score}")


@click.command("recommend")
@click.argument("customer_id")
@click.option("-n", "--n", "n", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--include-purchased", is_flag=True, help="Also recommend products the customer already bought.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a list.")
def recommend(customer_id: str, n: int, include_purchased: bool, as_json: bool) -> None:
    """Products to recommend to CUSTOMER_ID (popular products for an unknown customer)."""
    rec = _load_recommender()
    out = rec.recommend(customer_id, n=n, include_purchased=include_purchased)
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out["known_customer"]:
        click.echo(out["message"])
    else:
        click.echo(f"Recommendations for customer {out['customer_id']} "
                   f"({'including' if include_purchased else 'excluding'} {out['purchased_products']} products already bought):")
    _print_items(out["items"], as_json)


@click.command("similar")
@click.argument("stock_code")
@click.option("-n", "--n", "n", default=10, show_default=True, type=click.IntRange(1, 500))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a list.")
def similar(stock_code: str, n: int, as_json: bool) -> None:
    """Products similar to STOCK_CODE (cosine of ALS item factors)."""
    from ecommerce_platform.ml.recommender import UnknownItemError

    rec = _load_recommender()
    try:
        out = rec.similar(stock_code, n=n)
    except UnknownItemError as exc:
        _fail(exc.args[0])
    if as_json:
        click.echo(json.dumps(out, indent=2, default=str))
        return
    click.echo(f"Products similar to {out['stock_code']} ({out['description'] or 'no description'}):")
    _print_items(out["items"], as_json)
