"""``ecommerce ask "QUESTION"``: grounded product Q&A over the built index.

Imports stay light (no Dagster, pandas, torch): onnxruntime + tokenizers + faiss + numpy; the openai
client only when OPENAI_API_KEY is set.
"""

from __future__ import annotations

import json

import click


@click.command("ask")
@click.argument("question", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help='Print {"answer": ..., "sources": [...]} as JSON.')
@click.option("-k", "--top-k", default=5, show_default=True, type=click.IntRange(1, 50),
              help="How many products to retrieve.")
@click.option("--offline", is_flag=True, help="Never call the OpenAI API, even with OPENAI_API_KEY set.")
def ask(question: tuple[str, ...], as_json: bool, top_k: int, offline: bool) -> None:
    """Answer a product question from the product knowledge (offline, or OpenAI with OPENAI_API_KEY)."""
    from ecommerce_platform.rag.answer import answer
    from ecommerce_platform.rag.store import IndexNotBuilt, open_retriever

    text = " ".join(question).strip()
    if not text:
        raise click.UsageError("the question is empty")
    try:
        retriever, _ = open_retriever()
    except IndexNotBuilt as exc:
        raise click.ClickException(str(exc)) from exc
    hits = retriever.search(text, k=top_k)
    result = answer(text, hits, use_llm=False if offline else None,
                    warn=lambda m: click.echo(m, err=True))
    if as_json:
        click.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
        return
    click.echo(result.answer)
    click.echo("")
    click.echo(f"Sources ({result.answered_by}):")
    for s in result.sources:
        click.echo(f"  [{s['stock_code']}] {s['description']}  (score {s['score']:.3f})")
