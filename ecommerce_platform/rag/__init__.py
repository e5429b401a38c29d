"""RAG layer: product knowledge documents, the FAISS index, hybrid retrieval and `ecommerce ask`.

Plain modules (testable without Dagster): ``knowledge`` (facts per product, SQL in ``sql/``), ``index``
(chunks, FAISS, the publication gate), ``retrieval`` (dense + BM25 + exact stock code), ``store`` (opens
the published index), ``answer`` (product answers: offline, or a language model from the facts),
``questions`` (the deterministic question parser), ``qa`` (``answer_question``: the router, analytic
answers from SQL templates in ``sql/qa_*.sql``, refusals), ``text_to_sql`` (a language model writing
checked, sandboxed SQL), ``lite`` and ``dialect`` (what the CLI needs without importing Dagster),
``evaluation`` (retrieval hit@1 / hit@5), ``qa_evaluation`` (the questions of ``qa_questions.json`` judged
against the clean table), ``cli`` (``ecommerce ask``). The embedding model and the language model are the
resources ``embeddings`` and ``llm`` (resources/embeddings.py, resources/llm.py). Dagster surface:
``assets``.
"""
