"""Small data degrades gracefully: two months of generated transactions, landed and cleaned the way
`make run` does, then every ML and RAG asset materialized with its checks. The run succeeds; each model
materializes with `status: insufficient_data` and what is missing (with the numbers), serves nothing,
and its check warns (WARN) instead of failing."""

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import build_lake, platform_environment
from ecommerce_platform_tests.ml.conftest import checks, meta, query, write_online_retail

pytestmark = pytest.mark.graph


def test_two_months_of_data_materialize_everything_and_serve_no_model(tmp_path):
    from ecommerce_platform.ml import assets as ML
    from ecommerce_platform.ml import classifier as clf
    from ecommerce_platform.ml import forecast as fc
    from ecommerce_platform.ml import recommender as rec
    from ecommerce_platform.ml import segments as seg
    from ecommerce_platform.rag import assets as RAG
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.resources.embeddings import build_embeddings
    from ecommerce_platform.resources.llm import build_llm
    from ecommerce_platform.resources.sql_dialect import read_sql

    source = tmp_path / "two_months.parquet"
    write_online_retail(source, months=("2011-03", "2011-04"), customers=40)
    data_dir = tmp_path / "data"
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(source)):
        with dg.DagsterInstance.ephemeral() as instance:
            assert all(r.success for r in build_lake(instance))
        resources = build_resources()
        resources.setdefault("embeddings", build_embeddings())
        resources.setdefault("llm", build_llm())
        # the analytics views the product facts and the forecast read (what the analytics layer publishes)
        for view in ("sale_lines", "daily_sales", "daily_sales_by_country"):
            resources["warehouse"].create_view(view, read_sql("ecommerce_platform.analytics", f"{view}.sql"))
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize([*ML.ASSETS, *ML.CHECKS, *RAG.ASSETS, *RAG.CHECKS], resources=resources,
                                    instance=instance, raise_on_error=False)
        assert result.success
        materialized = {m.asset_key.to_user_string() for m in result.get_asset_materialization_events()}
        assert materialized == {a.key.to_user_string() for a in (*ML.ASSETS, *RAG.ASSETS)}

        customers = int(query("SELECT count(*) AS n FROM customer_features WHERE has_net_spend").iloc[0]["n"])
        months = int(query("SELECT count(DISTINCT invoice_month) AS n FROM invoice_features").iloc[0]["n"])
        lake = resources["warehouse"].lake
        assert months == 2 and 0 < customers

        c = meta(result, "classifier")
        assert c["status"] == "insufficient_data" and c["promoted"] is False and c["served_run_id"] == "none"
        assert c["missing"] == {"invoice months (train + validation + test)": {"needed": 6, "found": months}}
        repeat = int(query("SELECT count(*) AS n FROM customer_features WHERE has_net_spend AND frequency >= 2"
                           ).iloc[0]["n"])
        s = meta(result, "segments")
        assert s["status"] == "insufficient_data" and s["dagster/row_count"] == 0
        assert s["missing"] == {"repeat buyers with net spend (k=2 x 25)": {"needed": 50, "found": repeat}}
        a = meta(result, "als_model")
        assert a["status"] == "insufficient_data"
        test_users = a["missing"]["time cut (last month) customers (a held-out product new to them)"]
        assert test_users["needed"] == rec.MIN_EVAL_USERS and test_users["found"] < rec.MIN_EVAL_USERS
        f = meta(result, "sales_forecast")
        (what, weeks), = f["missing"].items()
        assert f["status"] == "insufficient_data" and what.startswith("weeks of daily net revenue")
        assert weeks["needed"] == fc.ForecastSettings().min_weeks and weeks["found"] <= 9
        assert f["dagster/row_count"] == 0 and int(query("SELECT count(*) AS n FROM sales_forecast").iloc[0]["n"]) == 0
        for key in ("classifier", "segments", "als_model", "sales_forecast"):
            assert "too little data" in meta(result, key)["message"], key
        assert meta(result, "vip_transactions")["dagster/row_count"] == 0  # over the empty segments table

        evaluations = checks(result)
        for name in ("classifier_beats_baseline", "segments_cover_customers", "als_beats_popularity",
                     "sales_forecast_beats_seasonal_naive"):
            assert not evaluations[name].passed and evaluations[name].severity == dg.AssetCheckSeverity.WARN, name
            assert evaluations[name].metadata["status"].value == "insufficient_data"
        # nothing is served
        assert clf.served_run_id(lake) is None and not lake.list(clf.CURRENT_PREFIX)
        assert rec.served_run_id(lake) is None and not lake.list(rec.CURRENT_PREFIX)
        assert fc.served_run_id(lake) is None and not lake.list(fc.CURRENT_PREFIX)
        assert not seg.published(lake)
        # the RAG layer still builds: the product facts, and an index whose check did not fail the run
        assert meta(result, "product_knowledge")["dagster/row_count"] > 0
        assert meta(result, "faiss_index")["status"] in ("published", "insufficient_data")
        assert evaluations["product_knowledge_matches_sales"].passed
