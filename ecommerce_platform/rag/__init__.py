"""RAG layer: product knowledge documents, the FAISS index, hybrid retrieval and grounded answers.

Plain modules (testable without Dagster): ``knowledge`` (facts per product, SQL in ``sql/``),
``minilm_onnx`` + ``embedder`` (MiniLM as ONNX, no torch), ``index`` (chunks, embedding cache, FAISS),
``retrieval`` (dense + BM25 + exact stock code), ``answer`` (offline and OpenAI answerers),
``evaluation`` (hit@1 / hit@5), ``cli`` (``ecommerce ask``). Dagster surface: ``assets``.
"""
