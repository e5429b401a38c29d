"""Every SQL file of the EDA layer runs on Trino too: transpiled with to_trino, parsed as Trino."""

import pytest

from ecommerce_platform.eda.queries import render, sql_names
from ecommerce_platform.resources.sql_dialect import parse_trino, read_sql, to_trino

PARAMS = {"qty_lo": 0.5, "qty_hi": 500.0, "price_lo": 0.2, "price_hi": 25.0, "limit": 10, "step": 6}


def test_the_layer_has_its_sql_files():
    assert {"customer_features.sql", "quality_by_month.sql", "profile_sample.sql", "raw_sample.sql"} <= set(sql_names())


@pytest.mark.parametrize("name", sql_names())
def test_sql_is_trino_portable(name):
    if name == "raw_sample.sql":
        sql = read_sql("ecommerce_platform.eda", name)
        for key, value in PARAMS.items():
            sql = sql.replace("{" + key + "}", str(value))
        sql = sql.replace("{sources}", "SELECT * FROM raw_source")
    else:
        sql = render(name, **{k: v for k, v in PARAMS.items() if "{" + k + "}" in read_sql("ecommerce_platform.eda", name)})
    trino = to_trino(sql)
    trees = parse_trino(trino)
    assert len(trees) == 1, name
    assert "{" not in trino


def test_render_refuses_unfilled_placeholders():
    with pytest.raises(ValueError, match="qty_hi"):
        render("quality_by_month.sql", qty_lo=1.0, price_lo=0.1, price_hi=10.0)


def test_render_formats_numbers_without_exponent():
    sql = render("quality_by_month.sql", qty_lo=1e-7, qty_hi=1e7, price_lo=0.2, price_hi=25.0)
    assert "e-07" not in sql and "10000000.000000" in sql
