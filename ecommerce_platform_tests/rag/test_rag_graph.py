"""Graph test: product_knowledge and faiss_index materialized on the real file (clean zone from the
session fixture), evaluated, and `ecommerce ask` answering offline from the built lake in a new process."""

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from ecommerce_platform_tests.conftest import REPO_ROOT, platform_environment

pytestmark = pytest.mark.graph


def _meta(result, key):
    return {k: v.value for k, v in result.asset_materializations_for_node(key)[-1].metadata.items()}


def test_rag_assets_on_real_file(clean_lake, real_source, tmp_path):
    from ecommerce_platform.rag.assets import faiss_index, faiss_index_retrieval_quality, product_knowledge

    data_dir, resources = clean_lake
    with platform_environment(data_dir, ECOMMERCE_SOURCE=str(real_source),
                              ECOMMERCE_CACHE_DIR=str(tmp_path / "cache")):
        result = dg.materialize([product_knowledge, faiss_index, faiss_index_retrieval_quality],
                                resources=resources)
        assert result.success
        pk = _meta(result, "product_knowledge")
        assert pk["products"] == 3_798  # stock codes with at least one sale (is_sale)
        fi = _meta(result, "faiss_index")
        assert fi["products"] == 3_798 and fi["chunks"] == 3_798 and fi["dimension"] == 384
        assert fi["eval_questions"] >= 160
        assert fi["hit@5"] >= 0.95 and fi["hit@1"] >= 0.8
        for check in result.get_asset_check_evaluations():
            assert check.passed, check.check_name

        # facts are sales only: cross-check one product against the clean table
        wh, lake = resources["warehouse"], resources["lake"]
        facts = wh.query_df("SELECT units_sold, units_returned, orders FROM product_knowledge "
                            "WHERE stock_code = '84077'", lake).iloc[0]
        raw = wh.query_df(
            "SELECT sum(quantity) FILTER (WHERE is_sale) AS sold, "
            "sum(-quantity) FILTER (WHERE is_return) AS returned, "
            "count(DISTINCT invoice_no) FILTER (WHERE is_sale) AS orders "
            "FROM transactions WHERE stock_code = '84077'", lake).iloc[0]
        assert (int(facts.units_sold), int(facts.units_returned), int(facts.orders)) == (
            int(raw.sold), int(raw.returned), int(raw.orders))
        assert "## WORLD WAR 2 GLIDERS ASSTD DESIGNS (stock code 84077)" in lake.get_text("rag/product_knowledge.md")

        # a second materialization with nothing changed reuses everything
        again = dg.materialize([product_knowledge, faiss_index], resources=resources)
        assert _meta(again, "product_knowledge")["reused_previous_output"]
        assert _meta(again, "faiss_index")["reused_previous_output"] and _meta(again, "faiss_index")["embedded_now"] == 0

    # `ecommerce ask` as a new process, offline, from the built lake
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ECOMMERCE_DEPLOYMENT")}
    env.update(ECOMMERCE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO_ROOT))
    for question, code in (("what is product 84077?", "84077"), ("medium ceramic top storage", "23166")):
        out = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", "ask", "--json", question],
                             env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["sources"][0]["stock_code"] == code and len(body["sources"]) == 5
        assert f"(stock code {code})" in body["answer"]
    assert "sold 54,951 units" in subprocess.run(
        [sys.executable, "-m", "ecommerce_platform.cli", "ask", "what is product 84077?"],
        env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120).stdout
