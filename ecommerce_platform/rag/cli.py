"""``ecommerce ask "QUESTION"``: ask the data. Product questions are answered from the published product
index, analytic questions from the warehouse (SQL over the analytics views), and what the data cannot
answer is refused, saying what it holds (``qa.answer_question``).

A local deployment answers without importing Dagster (``lite``: the warehouse's views rebuilt from the
lake's catalog in memory, the served index's facts, its embedding graph from the cache, loaded only when a
product must be found by loose words); otherwise the
deployment's resources (``build_resources()``: lake, warehouse, ``embeddings``). The ``llm`` resource
(OpenAI when OPENAI_API_KEY is set) only when a key is set and ``--offline`` is not given.
"""

from __future__ import annotations

import json

import click

CONTRACT = ("answer", "kind", "sources", "sql", "rows", "definition")


def ask_resources() -> tuple:
    """(lake, warehouse, embeddings, llm) of the deployment, from build_resources()."""
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.resources.embeddings import build_embeddings
    from ecommerce_platform.resources.llm import build_llm

    settings = load_settings()
    res = build_resources(settings)
    embeddings = res.get("embeddings") or build_embeddings(settings)
    llm = res.get("llm") or build_llm(settings)
    return res["lake"], res["warehouse"], embeddings, llm


def ask_backends(offline: bool):  # noqa: ANN201
    """(warehouse, retriever loader, llm or None, how: 'lite' | 'resources', loader of the served index's
    product facts or None). Raises IndexNotBuilt when nothing is published."""
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.rag import lite

    settings = load_settings()
    want_llm = settings.openai_key_set and not offline
    if settings.deployment == "local" and lite.index_meta(settings.lake_dir) and lite.catalog_entries(settings.lake_dir):
        wh = lite.LakeCatalogWarehouse(settings.lake_dir)

        def load():  # noqa: ANN202
            retriever = lite.load_retriever(settings.lake_dir, settings.cache_path)
            if retriever is None:  # graph not cached, or another model installed: the resource decides
                from ecommerce_platform.rag.store import open_index

                lake, _, embeddings, _ = ask_resources()
                retriever, _ = open_index(lake, embeddings)
            return retriever

        llm = None
        if want_llm:
            from ecommerce_platform.resources.llm import build_llm

            llm = build_llm(settings)
        return wh, load, llm, "lite", (lambda: lite.load_facts(settings.lake_dir))
    from ecommerce_platform.rag.store import index_folder, open_index

    lake, warehouse, embeddings, llm = ask_resources()
    index_folder(lake, embeddings)  # raises IndexNotBuilt with what to do

    def load_full():  # noqa: ANN202
        return open_index(lake, embeddings)[0]

    return warehouse, load_full, (llm if want_llm else None), "resources", None


@click.command("ask")
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True,
              help='Print {"answer", "kind", "sources", "sql", "rows", "definition"} as JSON.')
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, 50),
              help="How many products to retrieve for a product question.")
@click.option("--offline", is_flag=True, help="Never call the language model, even with OPENAI_API_KEY set.")
def ask(question: tuple[str, ...], as_json: bool, top_k: int, offline: bool) -> None:
    """Ask the data: a product (name or stock code), or figures (rankings, totals, return rates,
    co-purchases, comparisons of periods). Offline, or OpenAI with OPENAI_API_KEY."""
    from ecommerce_platform.rag.qa import LazyRetriever, answer_question
    from ecommerce_platform.rag.store import IndexNotBuilt

    text = " ".join(question).strip()
    if not text:
        raise click.UsageError("the question is empty")
    try:
        warehouse, load, llm, _, facts = ask_backends(offline)
        out = answer_question(text, warehouse, LazyRetriever(load, facts), llm, offline=offline, k=top_k,
                              warn=lambda m: click.echo(m, err=True))
    except IndexNotBuilt as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps({k: out.get(k) for k in CONTRACT}, ensure_ascii=False, indent=2, default=str))
        return
    click.echo(out["answer"])
    if out.get("sources") and out["kind"] == "product":
        click.echo("")
        click.echo(f"Sources ({out.get('answered_by', 'offline')}):")
        for s in out["sources"]:
            click.echo(f"  [{s['stock_code']}] {s['description']}  (score {s['score']:.3f})")
    if out.get("sql"):
        click.echo("")
        click.echo("SQL:")
        click.echo(out["sql"])
