"""Hybrid retrieval over the product chunks: dense (FAISS inner product of MiniLM vectors) fused with a
lexical signal (BM25 over what people search by: names, other names, stock code) and an exact stock-code
match. Light imports only (numpy, faiss, json): this runs in ``ecommerce ask``.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

TOKEN = re.compile(r"[a-z0-9]+")
# a code-looking token: digits with an optional letter suffix, or letters+digits (e.g. 85123A, DCGS0003)
CODE_TOKEN = re.compile(r"\b[A-Za-z]{0,6}\d{3,}[A-Za-z]{0,3}\b")

DEFAULT_K = 5
DENSE_CANDIDATES = 100
BM25_WEIGHT = 0.3
CODE_BONUS = 1.0
BM25_K1 = 1.2
BM25_B = 0.75


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


@dataclass
class Hit:
    stock_code: str
    description: str
    score: float
    dense: float
    lexical: float
    code_match: bool
    chunk: dict = field(repr=False, default_factory=dict)

    def source(self) -> dict:
        return {"stock_code": self.stock_code, "description": self.description, "score": round(self.score, 4)}


class BM25:
    """Okapi BM25 over short documents: per term, the ids of the documents holding it and their
    precomputed term weights (numpy arrays), so a query costs a few vector adds."""

    def __init__(self, docs: list[list[str]], k1: float = BM25_K1, b: float = BM25_B):
        import numpy as np

        self.n = len(docs)
        avg = (sum(len(d) for d in docs) / self.n) if docs else 1.0
        postings: dict[str, dict[int, int]] = defaultdict(dict)
        for i, d in enumerate(docs):
            for t in d:
                postings[t][i] = postings[t].get(i, 0) + 1
        self.terms: dict[str, tuple] = {}
        for t, p in postings.items():
            idf = math.log(1 + (self.n - len(p) + 0.5) / (len(p) + 0.5))
            ids = np.fromiter(p.keys(), dtype=np.int64, count=len(p))
            tf = np.fromiter(p.values(), dtype=np.float64, count=len(p))
            lengths = np.array([len(docs[i]) for i in ids], dtype=np.float64)
            weights = idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths / avg))
            self.terms[t] = (ids, weights)

    def scores(self, query: list[str]):
        """Scores of every document (numpy array; 0 where no query term occurs)."""
        import numpy as np

        out = np.zeros(self.n, dtype=np.float64)
        for t in set(query):
            if t in self.terms:
                ids, weights = self.terms[t]
                out[ids] += weights
        return out


class Retriever:
    """Search the chunks of one built index. ``embed`` maps a list of texts to normalised vectors."""

    def __init__(self, chunks: list[dict], index, embed):  # noqa: ANN001 - faiss.Index, callable
        self.chunks = chunks
        self.index = index
        self.embed = embed
        self.bm25 = BM25([tokens(c["search_text"]) for c in chunks])
        self.by_code: dict[str, list[int]] = defaultdict(list)
        for i, c in enumerate(chunks):
            self.by_code[c["stock_code"].upper()].append(i)
        # the vectors themselves (a flat index holds them): exact dense scores for lexical candidates
        self.vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else None

    @classmethod
    def from_folder(cls, folder: str | Path, embed) -> "Retriever":  # noqa: ANN001
        import faiss

        folder = Path(folder)
        chunks = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
        index = faiss.read_index(str(folder / "index.faiss"))
        return cls(chunks, index, embed)

    def facts(self) -> list[dict]:
        """The facts of every product of the index (what passed its gate), one record each."""
        return [c["facts"] for c in self.chunks if c.get("part", 0) == 0]

    def code_matches(self, question: str) -> set[int]:
        found: set[int] = set()
        for tok in CODE_TOKEN.findall(question):
            found.update(self.by_code.get(tok.upper(), ()))
        return found

    def search(self, question: str, k: int = DEFAULT_K, query_vector=None) -> list[Hit]:  # noqa: ANN001
        import numpy as np

        n = len(self.chunks)
        if n == 0 or not question.strip():
            return []
        q = query_vector if query_vector is not None else self.embed([question])[0]
        q = np.asarray(q, dtype="float32").reshape(1, -1)
        _, dense_ids = self.index.search(q, min(DENSE_CANDIDATES, n))
        lexical = self.bm25.scores(tokens(question))
        top_lex = float(lexical.max()) if n else 0.0
        codes = self.code_matches(question)
        lex_ids = np.argsort(-lexical)[:DENSE_CANDIDATES] if top_lex > 0 else np.array([], dtype=np.int64)
        candidates = sorted({int(i) for i in dense_ids[0] if i >= 0}
                            | {int(i) for i in lex_ids if lexical[i] > 0} | codes)
        cand = np.array(candidates, dtype=np.int64)
        dense_c = self.vectors[cand] @ q[0]  # cosine (vectors are normalised): same as the FAISS scores
        dense = dict(zip(candidates, dense_c.tolist()))
        lexical = {i: float(lexical[i]) for i in candidates}
        best: dict[str, Hit] = {}
        for i in candidates:
            lex = lexical.get(i, 0.0) / top_lex if top_lex > 0 else 0.0
            is_code = i in codes
            score = dense[i] + BM25_WEIGHT * lex + (CODE_BONUS if is_code else 0.0)
            c = self.chunks[i]
            hit = Hit(c["stock_code"], c["description"], score, dense[i], lex, is_code, c)
            if c["stock_code"] not in best or best[c["stock_code"]].score < score:
                best[c["stock_code"]] = hit  # one hit per product (its best chunk)
        return sorted(best.values(), key=lambda h: (-h.score, h.stock_code))[:k]
