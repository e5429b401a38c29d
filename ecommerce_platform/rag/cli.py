"""``ecommerce ask "QUESTION"``: grounded product Q&A over the published index.

The deployment's resources come from ``ecommerce_platform.resources.build_resources()``: the lake (where
the index is published), ``embeddings`` (the MiniLM encoder, its cache under <ECOMMERCE_DATA_DIR>/cache)
and ``llm`` (OpenAI when OPENAI_API_KEY is set, else the offline answerer). Heavy imports stay out:
onnxruntime + tokenizers + faiss + numpy; the openai client only when a key is set.
"""

from __future__ import annotations

import json

import click


def ask_resources() -> tuple:
    """(lake, embeddings, llm) of the deployment, from build_resources(); ``embeddings`` and ``llm`` are
    built from the same settings when the core's build_resources() does not provide them yet."""
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.resources import build_resources
    from ecommerce_platform.resources.embeddings import build_embeddings
    from ecommerce_platform.resources.llm import build_llm

    settings = load_settings()
    res = build_resources(settings)
    embeddings = res.get("embeddings") or build_embeddings(settings)
    llm = res.get("llm") or build_llm(settings)
    return res["lake"], embeddings, llm


@click.command("ask")
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"answer": ..., "sources": [...]} as JSON.')
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, 50),
              help="How many products to retrieve.")
@click.option("--offline", is_flag=True, help="Never call the language model, even with OPENAI_API_KEY set.")
def ask(question: tuple[str, ...], as_json: bool, top_k: int, offline: bool) -> None:
    """Answer a product question from the product knowledge (offline, or OpenAI with OPENAI_API_KEY)."""
    from ecommerce_platform.rag.answer import answer
    from ecommerce_platform.rag.store import IndexNotBuilt, open_index

    text = " ".join(question).strip()
    if not text:
        raise click.UsageError("the question is empty")
    lake, embeddings, llm = ask_resources()
    try:
        retriever, _ = open_index(lake, embeddings)
    except IndexNotBuilt as exc:
        raise click.ClickException(str(exc)) from exc
    hits = retriever.search(text, k=top_k)
    result = answer(text, hits, llm=llm, offline=offline, warn=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    click.echo(result.answer)
    click.echo("")
    click.echo(f"Sources ({result.answered_by}):")
    for s in result.sources:
        click.echo(f"  [{s['stock_code']}] {s['description']}  (score {s['score']:.3f})")
