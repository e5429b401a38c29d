"""Every SQL file of the ML layer transpiles to Trino and parses as Trino (Athena runs it)."""

import pytest

from ecommerce_platform.ml.features import all_sql_files
from ecommerce_platform.ml.segments import vip_view_sql
from ecommerce_platform.resources.sql_dialect import parse_trino, to_trino

FILES = all_sql_files()


def test_layer_has_sql_files():
    assert {"invoice_features.sql", "customer_features.sql", "user_item_interactions.sql",
            "customer_history.sql", "product_catalog.sql"} <= set(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_sql_file_is_trino_portable(name):
    sql = FILES[name].replace("{requests}", "(SELECT 1 AS request_id, 'x' AS customer_id, "
                                            "CAST('2011-01-01 00:00:00' AS TIMESTAMP) AS as_of_ts)")
    trino = to_trino(sql)
    assert parse_trino(trino), name
    assert "EPOCH(" not in trino.upper().replace("TO_UNIXTIME", "")


def test_vip_view_is_trino_portable():
    assert parse_trino(to_trino(vip_view_sql()))
