"""The QA evaluation's machinery on crafted input: its reference and judge on a tiny warehouse (every
family right with the real answerer), the gate FAILING on the issue's old behaviour (every question
answered with a product sheet) and on a report whose summary does not match its results, the blocking
check of ``qa_evaluation`` failing on a crafted report (and warning when there was nothing to evaluate),
the asset degrading to insufficient_data on data its questions are not about."""

from __future__ import annotations

import json

import dagster as dg
import pytest

from ecommerce_platform.rag import qa_evaluation as E
from ecommerce_platform_tests.rag.conftest import tiny_warehouse
from ecommerce_platform_tests.rag.test_qa import ROWS

FEB = ["2011-02-01", "2011-02-28"]
QUESTIONS = [
    {"question": "top 3 products by revenue", "family": "ranking",
     "expect": {"entity": "product", "metric": "revenue", "n": 3}},
    {"question": "best selling product in France", "family": "ranking",
     "expect": {"entity": "product", "metric": "units", "n": 1, "country": "France"}},
    {"question": "which countries bring in the most revenue", "family": "ranking",
     "expect": {"entity": "country", "metric": "revenue", "n": 10}},
    {"question": "total revenue in february 2011", "family": "total", "expect": {"metric": "revenue", "period": FEB}},
    {"question": "how many customers", "family": "total", "expect": {"metric": "customers"}},
    {"question": "return rate in the uk", "family": "return_rate", "expect": {"basis": "value", "country": "United Kingdom"}},
    {"question": "what is bought with the blue jar", "family": "copurchase", "expect": {"codes": ["B2"], "n": 10}},
    {"question": "which countries ordered the blue jar", "family": "product_countries", "expect": {"codes": ["B2"]}},
    {"question": "how many blue jars did we sell in february 2011", "family": "product_period",
     "expect": {"codes": ["B2"], "metric": "units", "period": FEB}},
    {"question": "compare revenue in january 2011 and february 2011", "family": "compare",
     "expect": {"metric": "revenue", "periods": [["2011-01-01", "2011-01-31"], FEB]}},
    {"question": "green tin", "family": "lookup", "expect": {"stock_code": "C3"}},
    {"question": "what is our profit margin", "family": "refusal", "expect": {"refuse": True}},
    {"question": "price of postage", "family": "refusal", "expect": {"refuse": True}},
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    lake, wh, _ = tiny_warehouse(tmp_path_factory.mktemp("qaeval"), ROWS)
    return lake, wh


def old_behaviour(question, wh, retriever, context):  # noqa: ANN001, ANN201
    """The issue's `ask`: whatever the question, one product's fact sheet."""
    code = sorted(context.products)[0]
    return {"answer": f"Best match: {context.name(code)}", "kind": "product", "sources": [
        {"stock_code": code, "description": context.name(code), "score": 0.7}], "sql": None, "rows": None,
        "definition": None}


def test_every_family_is_judged_right_with_the_answerer(tiny):
    _, wh = tiny
    report = E.evaluate(wh, None, questions=QUESTIONS)
    assert [r["question"] for r in report["results"] if not r["correct"]] == []
    assert report["analytic_accuracy"] == 1.0 and report["refusal_recall"] == 1.0 == report["refusal_precision"]
    assert report["lookup_hit@1"] == 1.0 and report["invented_figures"] == 0


def test_the_gate_fails_on_the_old_behaviour(tiny):
    _, wh = tiny
    report = E.evaluate(wh, None, questions=QUESTIONS, answer_fn=old_behaviour)
    assert report["analytic_accuracy"] == 0.0 and report["refusal_recall"] == 0.0
    failures = E.gate_failures(report)
    assert any(f.startswith("analytic_accuracy 0.0 < 0.9") for f in failures)
    assert any(f.startswith("refusal_recall 0.0 < 0.95") for f in failures)


def test_the_gate_recounts_and_catches_a_summary_that_lies():
    results = [{"question": f"q{i}", "family": "ranking", "correct": i % 10 != 0, "why": "", "kind": "analytics",
                "refused": False, "seconds": 0.01, "answer": ""} for i in range(120)]
    results += [{"question": f"r{i}", "family": "refusal", "correct": True, "why": "", "kind": "not_answerable",
                 "refused": True, "seconds": 0.01, "answer": ""} for i in range(20)]
    results += [{"question": f"l{i}", "family": "lookup", "correct": True, "why": "", "kind": "product",
                 "refused": False, "seconds": 0.01, "answer": ""} for i in range(20)]
    honest = E.summarize(results)
    assert honest["analytic_accuracy"] == 0.9 and E.gate_failures(honest) == []
    results[1]["correct"] = False  # one more wrong: 0.8917
    lying = dict(E.summarize(results), analytic_accuracy=1.0)
    failures = E.gate_failures(lying)
    assert "analytic_accuracy 0.8917 < 0.9" in failures
    assert "the report says analytic_accuracy = 1.0, its results say 0.8917" in failures
    invented = E.summarize([dict(r, correct=False) if r["family"] == "refusal" and r["question"] == "r0" else r
                            for r in results[:1] + results[120:]])
    assert invented["invented_figures"] == 1 and any("state figures" in f for f in E.gate_failures(invented))


def test_invented_figures_in_a_refusal_are_caught():
    span = "2010-12-01 2011-12-09"
    assert E.invented_figures("The data covers 2010-12-01 to 2011-12-09 only.", "sales in 2012", span) == []
    assert E.invented_figures("Margins were about 42% last year.", "what is our margin", span) == ["42"]


def test_the_check_fails_on_a_crafted_evaluation_and_warns_without_one(tiny, embeddings):
    from ecommerce_platform.rag.assets import qa_evaluation, qa_evaluation_meets_targets
    from ecommerce_platform_tests.rag.conftest import run_check

    lake, wh = tiny
    resources = {"warehouse": wh, "embeddings": embeddings}
    crafted = E.evaluate(wh, None, questions=QUESTIONS, answer_fn=old_behaviour)
    lake.put_text(E.QA_LAST_RUN, json.dumps(crafted))
    result = run_check(qa_evaluation_meets_targets, qa_evaluation, resources)
    failures = result.metadata["failures"].value
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert any("analytic_accuracy" in f for f in failures) and any("questions <" in f for f in failures)
    lake.put_text(E.QA_LAST_RUN, json.dumps({"status": "insufficient_data", "missing": {"x": 1}, "message": "m"}))
    warn = run_check(qa_evaluation_meets_targets, qa_evaluation, resources)
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    lake.delete_prefix("rag/qa_evaluation")
    assert not run_check(qa_evaluation_meets_targets, qa_evaluation, resources).passed


def test_on_data_the_questions_are_not_about_it_is_insufficient_and_publishes_nothing(tmp_path, embeddings):
    """The questions name the reference data set's products and span: on other data (here without an index,
    then with one) the asset says so, publishes no report, and its check warns."""
    from ecommerce_platform.rag.assets import qa_evaluation, qa_evaluation_meets_targets
    from ecommerce_platform.rag.index import build_index
    from ecommerce_platform.rag.knowledge import read_knowledge
    from ecommerce_platform_tests.rag.conftest import seeded_embeddings, truth_questions

    lake, wh, _ = tiny_warehouse(tmp_path, ROWS)
    emb = seeded_embeddings(tmp_path / "cache", embeddings)
    resources = {"warehouse": wh, "embeddings": emb}
    for with_index in (False, True):
        if with_index:
            recs = read_knowledge(wh)
            build_index(lake, recs, emb, questions=truth_questions(recs) * 10)
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize([qa_evaluation, qa_evaluation_meets_targets], resources=resources,
                                    instance=instance)
        assert result.success
        md = result.asset_materializations_for_node("qa_evaluation")[0].metadata
        assert md["status"].value == "insufficient_data"
        missing = md["missing"].value
        assert ("published product index" in missing) == (not with_index)
        if with_index:  # 23843 is the one product of the reference data the tiny rows have
            named = missing["products the questions name"]
            assert named["found"] == 1 and named["needed"] > 30
            assert missing["span of the sales the questions were written for"]["found"] == ["2011-01-05", "2011-03-09"]
        (check,) = result.get_asset_check_evaluations()
        assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
        assert not lake.exists(E.QA_REPORT)
