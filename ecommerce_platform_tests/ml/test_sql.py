"""Every SQL file of the ML layer transpiles to Trino and parses as Trino (Athena runs it), filled the way
the layer fills it (sql_dialect.render: every placeholder must have a value)."""

import pytest

from ecommerce_platform.ml.contract import NO_NET_SPEND, TOP_SEGMENT
from ecommerce_platform.ml.features import all_sql_files, customer_history_sql
from ecommerce_platform.ml.segments import coverage_sql, vip_view_sql
from ecommerce_platform.resources.sql_dialect import Sql, parse_trino, render, to_trino

FILES = all_sql_files()
REQUESTS = Sql("(SELECT 1 AS request_id, 'x' AS customer_id, CAST('2011-01-01 00:00:00' AS TIMESTAMP) AS as_of_ts)")
PARAMS = {"customer_history.sql": {"requests": REQUESTS}, "vip_transactions.sql": {"segment": TOP_SEGMENT},
          "segment_coverage.sql": {"no_net_spend": NO_NET_SPEND}}


def test_layer_has_sql_files():
    assert {"invoice_features.sql", "customer_features.sql", "user_item_interactions.sql",
            "customer_history.sql", "product_catalog.sql", "vip_transactions.sql", "segment_coverage.sql"} <= set(FILES)


@pytest.mark.parametrize("name", sorted(FILES))
def test_sql_file_is_trino_portable(name):
    sql = render(FILES[name], **PARAMS.get(name, {}))
    trino = to_trino(sql)
    assert parse_trino(trino), name
    assert "EPOCH(" not in trino.upper().replace("TO_UNIXTIME", "")


def test_templates_are_filled_by_the_code_that_runs_them():
    assert "'champions'" in vip_view_sql() and "{segment}" not in vip_view_sql().split("\n", 3)[-1]
    assert f"'{NO_NET_SPEND}'" in coverage_sql()
    assert parse_trino(to_trino(customer_history_sql(str(REQUESTS))))
    with pytest.raises(KeyError, match="segment"):
        render(FILES["vip_transactions.sql"])
