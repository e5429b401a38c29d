"""RAG layer: product knowledge documents, the FAISS index, hybrid retrieval and grounded answers.

Plain modules (testable without Dagster): ``knowledge`` (facts per product, SQL in ``sql/``), ``index``
(chunks, FAISS, the publication gate), ``retrieval`` (dense + BM25 + exact stock code), ``store`` (opens
the published index), ``answer`` (offline answerer, prompts for a language model), ``evaluation``
(hit@1 / hit@5), ``cli`` (``ecommerce ask``). The embedding model and the language model are the
resources ``embeddings`` and ``llm`` (resources/embeddings.py, resources/llm.py). Dagster surface:
``assets``.
"""
