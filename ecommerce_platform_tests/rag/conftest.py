"""Fixtures of the RAG tests: small generated product documents and a session-wide model cache."""

from __future__ import annotations

import random

import pytest

ADJ = ["red", "blue", "vintage", "giant", "mini", "pink", "retro", "rustic", "glass", "paper", "wooden",
       "metal", "spotty", "floral", "golden", "silver", "striped", "pastel", "jumbo", "tiny"]
NOUN = ["mug", "lantern", "teapot", "garland", "cushion", "clock", "doorstop", "umbrella", "notebook",
        "candle", "bag", "tin", "frame", "bowl", "spoon", "apron", "mirror", "basket", "jar", "sign"]


def make_record(i: int, description: str, **over) -> dict:
    rec = {
        "stock_code": f"{10000 + i}", "description": description, "other_names": None,
        "units_sold": 100 + 7 * i, "revenue": round(250.5 + 3.25 * i, 2), "min_price": 0.85,
        "max_price": 2.5, "avg_price": 1.65, "sale_lines": 20 + i, "orders": 18 + i, "customers": 9 + i,
        "countries": 1 + i % 5, "top_countries": "United Kingdom, France", "first_sale": "2010-12-01",
        "last_sale": "2011-12-09", "units_returned": i % 4, "return_rate": round((i % 4) / (100 + 7 * i), 4),
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
    """One local folder where the ONNX graph is built once per session (every test lake copies it)."""
    return tmp_path_factory.mktemp("rag_model_cache")
