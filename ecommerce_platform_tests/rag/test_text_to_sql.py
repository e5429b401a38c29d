"""Text-to-SQL with a language model, against the local chat-completions server of test_answer.py (tool
calling, the real ``openai`` client): a grounded answer from the rows of ONE checked SELECT; hostile model
output (DDL, other tables, several statements, no LIMIT, COPY ... TO, read_csv of a local file, settings,
ATTACH) refused before it runs, told to the model, and the answer given offline; the sandbox itself
cannot read or write a file or touch the warehouse even when the check is bypassed; ungrounded figures,
timeouts and errors fall back to the offline answer."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from ecommerce_platform.rag.text_to_sql import ALLOWED_RELATIONS, MAX_LIMIT, Sandbox, SqlError, UnsafeSql, check_sql
from ecommerce_platform_tests.rag.conftest import tiny_warehouse
from ecommerce_platform_tests.rag.test_answer import KEY, ChatServer
from ecommerce_platform_tests.rag.test_qa import ROWS

GOOD = ("SELECT country, SUM(sale_amount) - SUM(return_amount) AS net_revenue FROM sale_lines "
        "WHERE country <> 'Unspecified' GROUP BY country ORDER BY net_revenue DESC LIMIT 3")


def hostile(tmp_path) -> dict[str, str]:  # noqa: ANN001
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    target = tmp_path / "stolen.csv"
    return {
        "ddl": "DROP VIEW sale_lines",
        "create": "CREATE TABLE sale_lines2 AS SELECT * FROM sale_lines",
        "insert": "INSERT INTO transactions SELECT * FROM transactions LIMIT 1",
        "other table": "SELECT * FROM raw_lines LIMIT 5",
        "quarantine in a subquery": "SELECT (SELECT count(*) FROM quarantine) AS n FROM sale_lines LIMIT 1",
        "catalog": "SELECT * FROM information_schema.tables LIMIT 5",
        "several statements": "SELECT 1 AS x FROM sale_lines LIMIT 1; DROP VIEW sale_lines",
        "no limit": "SELECT * FROM sale_lines",
        "huge limit": f"SELECT * FROM sale_lines LIMIT {MAX_LIMIT + 1}",
        "copy to": f"COPY (SELECT * FROM transactions) TO '{target}'",
        "read_csv": f"SELECT * FROM read_csv('{secret}') LIMIT 5",
        "read_text": f"SELECT read_text('{secret}') AS t FROM sale_lines LIMIT 1",
        "a file as a table": f"SELECT * FROM '{secret}' LIMIT 5",
        "glob": "SELECT * FROM glob('/*') LIMIT 5",
        "getenv": "SELECT getenv('OPENAI_API_KEY') AS k FROM sale_lines LIMIT 1",
        "settings": "SET enable_external_access = true",
        "attach": f"ATTACH '{tmp_path / 'x.db'}' AS x",
        "into": "SELECT * INTO stolen FROM sale_lines LIMIT 1",
        "pragma": "PRAGMA database_list",
    }


HOSTILE = ("ddl", "create", "insert", "other table", "quarantine in a subquery", "catalog", "several statements",
           "no limit", "huge limit", "copy to", "read_csv", "read_text", "a file as a table", "glob", "getenv",
           "settings", "attach", "into", "pragma")


@pytest.mark.parametrize("name", HOSTILE)
def test_the_check_refuses_hostile_statements(tmp_path, name):
    with pytest.raises(UnsafeSql):
        check_sql(hostile(tmp_path)[name])


def test_the_check_accepts_one_read_only_select():
    assert check_sql(GOOD).startswith("SELECT country")
    assert check_sql("WITH m AS (SELECT sale_month, SUM(net_revenue) AS n FROM monthly_sales GROUP BY 1) "
                     "SELECT * FROM m ORDER BY n DESC LIMIT 3")
    assert check_sql("SELECT strftime(invoice_date, '%Y-%m') AS m, count(*) AS n FROM transactions "
                     "GROUP BY 1 ORDER BY 1 LIMIT 20")


@pytest.fixture
def tiny(tmp_path):
    lake, wh, tx = tiny_warehouse(tmp_path, ROWS)
    return tmp_path, lake, wh


def lake_state(lake) -> dict:  # noqa: ANN001
    return {k: hashlib.sha256(lake.get_bytes(k)).hexdigest() for k in lake.list("")}


class QueriesOnly:
    """A warehouse seen only through its queries (as an engine whose catalog cannot be read)."""

    engine = "other"

    def __init__(self, wh):  # noqa: ANN001
        self.query_df = wh.query_df


@pytest.mark.parametrize("via_catalog", [True, False])
def test_the_sandbox_holds_copies_only_and_no_file_access(tiny, via_catalog):
    """Even a statement that skipped the check cannot read or write files, change settings or reach the
    warehouse: the sandbox is a locked in-memory copy of the allowed relations (built from the lake's
    catalog entries, or through the warehouse's queries)."""
    import duckdb

    tmp_path, lake, wh = tiny
    before = lake_state(lake)
    box = Sandbox.build(wh if via_catalog else QueriesOnly(wh))
    assert set(box.relations) == {"transactions", "sale_lines", "product_knowledge"}
    assert set(box.relations) <= set(ALLOWED_RELATIONS)
    assert "raw_lines" not in box.schema() and "sale_lines(" in box.schema()
    attacks = hostile(tmp_path)
    for name in ("copy to", "read_csv", "read_text", "a file as a table", "glob", "settings", "attach"):
        with pytest.raises(duckdb.Error):
            box.con.execute(attacks[name]).fetchall()
    assert not (tmp_path / "stolen.csv").exists()
    assert box.run(GOOD)[1] == [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()}
                                for r in wh.query_df(GOOD).to_dict("records")]
    box.con.execute("DROP VIEW sale_lines")  # only the copy
    assert len(wh.query_df("SELECT * FROM sale_lines")) > 0 and lake_state(lake) == before
    box.close()


def test_a_statement_that_runs_too_long_is_stopped(tiny):
    _, _, wh = tiny
    box = Sandbox.build(wh)
    slow = ("WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 200000000) "
            "SELECT count(*) AS n FROM r LIMIT 1")
    t0 = time.monotonic()
    with pytest.raises(SqlError, match="longer than"):
        box.run(slow, timeout=0.3)
    assert time.monotonic() - t0 < 20
    sql, rows = box.run(GOOD)
    assert rows[0]["country"] == "United Kingdom" and sql.endswith("LIMIT 3")


# ------------------------------------------------------------------ the model, through the local server
@pytest.fixture
def server():
    with ChatServer() as s:
        yield s


def llm_for(server, timeout: float = 5.0):  # noqa: ANN001, ANN201
    from ecommerce_platform.resources.llm import LLM

    return LLM(api_key=KEY, base_url=server.url, model="test-model", timeout_seconds=timeout, max_retries=0)


def ask(wh, server, question: str, timeout: float = 5.0) -> tuple[dict, list[str]]:  # noqa: ANN001
    from ecommerce_platform.rag.qa import _CONTEXTS, answer_question

    _CONTEXTS.clear()
    warnings: list[str] = []
    out = answer_question(question, wh, None, llm_for(server, timeout), warn=warnings.append)
    return out, warnings


def tool_results(server) -> list[dict]:  # noqa: ANN001
    last = server.requests[-1]["body"]["messages"]
    return [json.loads(m["content"]) for m in last if m["role"] == "tool"]


def scripted(*steps):  # noqa: ANN002, ANN201
    """Replies in order: ("sql", statement) -> a run_sql call; ("say", text) -> a final answer."""
    state = {"i": 0}

    def reply(body):  # noqa: ANN001, ANN202
        kind, value = steps[min(state["i"], len(steps) - 1)]
        state["i"] += 1
        if kind == "sql":
            return {"content": None, "tool_calls": [{"id": f"call_{state['i']}", "name": "run_sql",
                                                     "arguments": {"sql": value}}]}
        if kind == "cannot":
            return {"content": None, "tool_calls": [{"id": "c", "name": "cannot_answer", "arguments": {"reason": value}}]}
        return {"content": value}

    return reply


def test_a_grounded_model_answer(tiny, server):
    _, _, wh = tiny
    top = wh.query_df(GOOD).to_dict("records")
    figure = f"£{float(top[0]['net_revenue']):,.2f}"
    server.script = scripted(("sql", GOOD), ("say", f"{top[0]['country']} leads with {figure} of net revenue "
                                                    "(gross sales minus returns, all the data)."))
    out, warnings = ask(wh, server, "which 3 countries bring in the most revenue, by region?")
    assert warnings == [] and out["kind"] == "analytics" and out["answered_by"] == "openai:test-model"
    assert out["answer"].startswith("United Kingdom leads with") and out["sql"].endswith("LIMIT 3")
    assert [r["country"] for r in out["rows"]] == [r["country"] for r in top]
    first = server.requests[0]
    assert first["auth"] == f"Bearer {KEY}" and [t["function"]["name"] for t in first["body"]["tools"]] == [
        "run_sql", "cannot_answer"]
    system = first["body"]["messages"][0]["content"]
    assert "sale_lines(" in system and "raw_lines" not in system and "'Unspecified'" in system
    assert tool_results(server)[0]["row_count"] == 3


@pytest.mark.parametrize("name", ["ddl", "create", "insert", "other table", "several statements", "no limit",
                                  "copy to", "read_csv", "a file as a table", "getenv", "attach", "into"])
def test_hostile_model_output_is_refused_and_answered_offline(tiny, server, name):
    tmp_path, lake, wh = tiny
    attack = hostile(tmp_path)[name]
    before = lake_state(lake)
    server.script = scripted(("sql", attack))  # the model insists, every round
    out, warnings = ask(wh, server, "top 3 countries by revenue")
    assert any("answering offline" in w and "refused" in w for w in warnings), warnings
    assert out["answered_by"] == "offline" and out["kind"] == "analytics" and "FROM sale_lines" in out["sql"]
    assert [r["country"] for r in out["rows"]][:1] == ["United Kingdom"]
    results = tool_results(server)
    assert results and all("refused" in r for r in results)  # told why, never run
    assert lake_state(lake) == before and not (tmp_path / "stolen.csv").exists()
    assert "hunter2" not in json.dumps(server.requests)
    assert len(wh.query_df("SELECT * FROM sale_lines")) > 0


def test_a_refused_statement_can_be_corrected(tiny, server):
    _, _, wh = tiny
    server.script = scripted(("sql", "SELECT * FROM raw_lines LIMIT 3"), ("sql", GOOD),
                             ("say", "The top country is United Kingdom."))
    out, warnings = ask(wh, server, "which countries bring in most, by region?")
    assert warnings == [] and out["answered_by"] == "openai:test-model" and out["sql"] == check_sql(GOOD)
    first, second = tool_results(server)
    assert "refused" in first and "relation 'raw_lines' is not allowed" in first["refused"] and "rows" in second


def test_figures_not_in_the_rows_fall_back_offline(tiny, server):
    _, _, wh = tiny
    server.script = scripted(("sql", GOOD), ("say", "United Kingdom made £1,234,567.89."))
    out, warnings = ask(wh, server, "top 3 countries by revenue")
    assert any("not in the rows" in w and "1,234,567.89" in w for w in warnings)
    assert out["answered_by"] == "offline" and "1,234,567.89" not in out["answer"]


def test_the_model_may_say_the_data_cannot_answer(tiny, server):
    _, _, wh = tiny
    server.script = scripted(("cannot", "no cost prices in the data"))
    out, _ = ask(wh, server, "which products have the best contribution per order line")
    assert out["kind"] == "not_answerable" and "no cost prices" in out["answer"] and out["sql"] is None


@pytest.mark.parametrize("mode, reason", [("500", "HTTP 500"), ("slow", "timed out")])
def test_errors_and_timeouts_fall_back_offline(tiny, server, mode, reason):
    _, _, wh = tiny
    server.mode = mode
    out, warnings = ask(wh, server, "total revenue in february 2011", timeout=0.5)
    assert any(reason in w for w in warnings) and out["answered_by"] == "offline"
    assert out["kind"] == "analytics" and out["rows"][0]["net_revenue"] is not None


def test_refusals_and_product_lookups_do_not_go_to_text_to_sql(tiny, server):
    _, _, wh = tiny
    server.script = scripted(("say", "should not be asked"))
    out, _ = ask(wh, server, "what is our profit margin")
    assert out["kind"] == "not_answerable" and server.requests == []


# the issue's questions, with a model that writes the right SQL and answers from the rows it gets back
ISSUE_SQL = {
    "what sells best at Christmas": (
        "SELECT stock_code, SUM(units_sold) - SUM(units_returned) AS net_units FROM sale_lines "
        "WHERE upper(description) LIKE '%CHRISTMAS%' OR upper(description) LIKE '%XMAS%' "
        "GROUP BY stock_code ORDER BY net_units DESC, stock_code LIMIT 10"),
    "total revenue in February 2011": (
        "SELECT SUM(sale_amount) - SUM(return_amount) AS net_revenue FROM sale_lines "
        "WHERE invoice_date BETWEEN DATE '2011-02-01' AND DATE '2011-02-28' LIMIT 1"),
    "best-selling product in France": (
        "SELECT stock_code, SUM(units_sold) - SUM(units_returned) AS net_units FROM sale_lines "
        "WHERE country = 'France' GROUP BY stock_code ORDER BY net_units DESC, stock_code LIMIT 1"),
    "which countries ordered the blue jar": (
        "SELECT country, SUM(units_sold) - SUM(units_returned) AS net_units FROM sale_lines "
        "WHERE stock_code = 'B2' AND country <> 'Unspecified' AND is_sale GROUP BY country ORDER BY country LIMIT 100"),
}


def sql_model(body):  # noqa: ANN001, ANN201
    messages = body["messages"]
    if messages[-1]["role"] == "tool":
        rows = json.loads(messages[-1]["content"])["rows"]
        return {"content": "From the rows: " + "; ".join(", ".join(f"{k} {v}" for k, v in r.items()) for r in rows)}
    question = messages[1]["content"]
    return {"content": None, "tool_calls": [{"id": "call_1", "name": "run_sql", "arguments": {"sql": ISSUE_SQL[question]}}]}


@pytest.mark.parametrize("question", list(ISSUE_SQL))
def test_the_issues_questions_with_the_model(tiny, server, question):
    from ecommerce_platform_tests.rag.conftest import tiny_transactions
    from ecommerce_platform_tests.rag.test_qa import lines

    _, _, wh = tiny
    server.script = sql_model
    out, warnings = ask(wh, server, question)
    assert warnings == [] and out["answered_by"] == "openai:test-model" and out["kind"] == "analytics"
    t = lines(tiny_transactions(ROWS))
    t = t.assign(net=t.sold - t.back)
    if question.startswith("what sells best"):
        xmas = t[t.description.str.contains("CHRISTMAS|XMAS")].groupby("stock_code").net.sum()
        assert [r["stock_code"] for r in out["rows"]] == list(xmas.sort_values(ascending=False).index)
    elif question.startswith("total revenue"):
        feb = t[t.invoice_date.astype(str).str.startswith("2011-02")]
        assert out["rows"][0]["net_revenue"] == pytest.approx(feb.gross.sum() - feb.ret.sum())
    elif question.startswith("best-selling"):
        fr = t[t.country == "France"].groupby("stock_code").net.sum().sort_values(ascending=False)
        assert out["rows"][0]["stock_code"] == fr.index[0] and str(fr.iloc[0]) in out["answer"]
    else:
        b2 = t[(t.stock_code == "B2") & t.is_sale & (t.country != "Unspecified")]
        assert {r["country"] for r in out["rows"]} == set(b2.country)
    assert out["sql"] == check_sql(ISSUE_SQL[question])
