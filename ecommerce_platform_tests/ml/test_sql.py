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
          "segment_coverage.sql": {"no_net_spend": NO_NET_SPEND}, "forecast_series.sql": {"top_countries": 4}}


def test_layer_has_sql_files():
    assert {"invoice_features.sql", "customer_features.sql", "user_item_interactions.sql",
            "customer_history.sql", "product_catalog.sql", "vip_transactions.sql", "segment_coverage.sql",
            "forecast_series.sql"} <= set(FILES)


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


def test_forecast_series_reads_the_analytics_views_and_ranks_countries():
    import duckdb
    import pandas as pd

    from ecommerce_platform.ml.forecast import series_sql

    con = duckdb.connect()
    days = pd.DataFrame({"sale_date": pd.to_datetime(["2011-01-03", "2011-01-04"]).date, "net_revenue": [10.0, 20.0]})
    by_country = pd.DataFrame({
        "sale_date": pd.to_datetime(["2011-01-03"] * 4 + ["2011-01-04"] * 4).date,
        "country": ["United Kingdom", "France", "Unspecified", "EIRE"] * 2,
        "net_revenue": [5.0, 2.0, 100.0, 1.0, 12.0, 3.0, 100.0, 2.0]})
    con.register("daily_sales", days)
    con.register("daily_sales_by_country", by_country)
    out = con.execute(series_sql(2)).df()
    assert set(out["series"]) == {"all", "United Kingdom", "France"}  # the top 2 by net revenue, never Unspecified
    assert out[out["series"] == "all"]["net_revenue"].sum() == 30.0
