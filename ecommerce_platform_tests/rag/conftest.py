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
