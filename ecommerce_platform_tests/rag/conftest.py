"""Fixtures of the RAG tests: small generated product documents and a session-wide embeddings cache."""

from __future__ import annotations

import random

import pytest

ADJ = ["red", "blue", "vintage", "giant", "mini", "pink", "retro", "rustic", "glass", "paper", "wooden",
       "metal", "spotty", "floral", "golden", "silver", "striped", "pastel", "jumbo", "tiny"]
NOUN = ["mug", "lantern", "teapot", "garland", "cushion", "clock", "doorstop", "umbrella", "notebook",
        "candle", "bag", "tin", "frame", "bowl", "spoon", "apron", "mirror", "basket", "jar", "sign"]


def make_record(i: int, description: str, **over) -> dict:
    gross = round(250.5 + 3.25 * i, 2)
    returned = round(0.85 * (i % 4), 2)
    rec = {
        "stock_code": f"{10000 + i}", "description": description, "other_names": None,
        "units_sold": 100 + 7 * i, "gross_sales": gross, "units_returned": i % 4, "returns_value": returned,
        "net_revenue": round(gross - returned, 2), "min_price": 0.85, "max_price": 2.5, "avg_price": 1.65,
        "sale_lines": 20 + i, "orders": 18 + i, "customers": 9 + i, "countries": 1 + i % 5,
        "top_countries": "United Kingdom, France", "first_sale": "2010-12-01", "last_sale": "2011-12-09",
        "return_rate": round((i % 4) / (100 + 7 * i), 4),
        "bought_with": f"{10000 + (i + 1) % 200} SOMETHING ELSE (3 orders)",
    }
    rec.update(over)
    return rec


def synthetic_records(n: int = 200, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    names: set[str] = set()
    out = []
    i = 0
    while len(out) < n:
        name = f"{rng.choice(ADJ)} {rng.choice(ADJ)} {rng.choice(NOUN)} {rng.choice(['set', 'large', 'small', 'holder', 'box'])}".upper()
        if name in names:
            continue
        names.add(name)
        out.append(make_record(i, name))
        i += 1
    return out


@pytest.fixture
def records() -> list[dict]:
    return synthetic_records()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One cache folder for the session: the ONNX graph is built once, vectors are shared."""
    return tmp_path_factory.mktemp("rag_model_cache")


@pytest.fixture(scope="session")
def embeddings(model_cache):
    """The embeddings resource with the session's cache folder."""
    from ecommerce_platform.resources.embeddings import Embeddings

    return Embeddings(cache_dir=str(model_cache))


def seeded_embeddings(cache_dir, embeddings):
    """An embeddings resource with its own (empty) cache folder, given the session's built ONNX graph
    (building it again costs seconds, and it is not what these tests are about)."""
    import shutil
    from pathlib import Path

    from ecommerce_platform.resources.embeddings import Embeddings

    onnx_path, _ = embeddings.onnx_path()
    target = Path(cache_dir) / "models" / onnx_path.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx_path, target)
    return Embeddings(cache_dir=str(cache_dir))


def truth_questions(records: list[dict]) -> list[dict]:
    """Evaluation questions generated from ``records`` (the facts the index should hold)."""
    from ecommerce_platform.rag.evaluation import generated

    return generated(records)


# ------------------------------------------------------------------ a tiny warehouse for the answerer
def tiny_transactions(rows) -> "pd.DataFrame":  # noqa: F821
    """The clean table's columns for ``rows`` (invoice, code, description, qty, price, customer, country,
    day, is_product), flags derived as the clean zone does (is_sale, is_return, is_guest...)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=["invoice_no", "stock_code", "description", "quantity", "unit_price",
                                     "customer_id", "country", "invoice_date", "is_product"])
    df["quantity"] = df["quantity"].astype("int64")
    df["unit_price"] = df["unit_price"].astype(float)
    df["invoice_date"] = pd.to_datetime(df["invoice_date"]).dt.date
    df["invoice_ts"] = pd.to_datetime(df["invoice_date"]).astype("datetime64[us]")
    df["line_total"] = (df["quantity"] * df["unit_price"]).round(2)
    df["is_cancellation"] = df["invoice_no"].str.startswith("C")
    df["is_guest"] = df["customer_id"].isna()
    df["is_sale"] = ~df["is_cancellation"] & (df["quantity"] > 0) & (df["unit_price"] > 0) & df["is_product"]
    df["is_return"] = df["is_cancellation"] & (df["quantity"] < 0) & df["is_product"]
    return df


TINY_COLUMNS = (
    ("invoice_no", "string", ""), ("stock_code", "string", ""), ("description", "string", ""),
    ("quantity", "bigint", ""), ("invoice_ts", "timestamp", ""), ("invoice_date", "date", ""),
    ("unit_price", "double", ""), ("customer_id", "string", ""), ("country", "string", ""),
    ("line_total", "double", ""), ("is_cancellation", "boolean", ""), ("is_product", "boolean", ""),
    ("is_guest", "boolean", ""), ("is_sale", "boolean", ""), ("is_return", "boolean", ""),
)


def tiny_warehouse(tmp_path, rows, knowledge: bool = True):  # noqa: ANN001, ANN201
    """(lake, warehouse, transactions frame): ``rows`` as the table ``transactions``, the analytics view
    ``sale_lines`` over it (its real SQL, as the analytics layer publishes it) and, with ``knowledge``,
    product_knowledge built by the rag layer."""
    from ecommerce_platform.rag.knowledge import build_knowledge
    from ecommerce_platform.resources.lake import LocalLake
    from ecommerce_platform.resources.sql_dialect import read_sql
    from ecommerce_platform.resources.warehouse import DuckDBWarehouse
    from ecommerce_platform_tests.ml.conftest import publish_table

    lake = LocalLake(path=str(tmp_path / "lake"))
    wh = DuckDBWarehouse(lake=lake, path=str(tmp_path / "wh.duckdb"), publish_file=False)
    tx = tiny_transactions(rows)
    publish_table(wh, "transactions", "clean/transactions", tx, TINY_COLUMNS)
    wh.create_view("sale_lines", read_sql("ecommerce_platform.analytics", "sale_lines.sql"))
    if knowledge:
        build_knowledge(wh)
    return lake, wh, tx


def run_check(check, asset, resources: dict, instance=None):  # noqa: ANN001, ANN201
    """The asset check ``check`` of ``asset`` executed alone by Dagster (as a run selecting only it), on
    ``instance`` (a new ephemeral one by default): its AssetCheckEvaluation."""
    import dagster as dg

    def run(inst):  # noqa: ANN001, ANN202
        result = dg.materialize([asset, check], resources=resources, instance=inst,
                                selection=dg.AssetSelection.checks(check), raise_on_error=False)
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation

    if instance is not None:
        return run(instance)
    with dg.DagsterInstance.ephemeral() as inst:
        return run(inst)
