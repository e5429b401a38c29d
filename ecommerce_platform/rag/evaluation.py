"""Retrieval evaluation: hit@1 and hit@5 of the right product on product questions.

Two sets: the hand-written questions in ``eval_questions.json`` (loose names and stock codes written from
the real data) and questions generated from the knowledge table with a fixed seed (by name, by a loose
form of the name, by stock code). A question asked by name also counts as a hit when the retrieved product
has exactly the same description as the expected one (such products cannot be told apart by name).
"""

from __future__ import annotations

import json
import random
import re
from importlib import resources

GENERATED_SEED = 20240611
GENERATED_PER_KIND = 40
NAME_TEMPLATES = ("{x}", "tell me about the {x}", "how many {x} did we sell?", "what does the {x} cost?")
LOOSE_TEMPLATES = ("{x}", "looking for {x}", "do you have {x}?", "{x} sales")
CODE_TEMPLATES = ("what is product {c}?", "stock code {c}", "how many units of {c} were sold?",
                  "who buys item {c}?")


def hand_written() -> list[dict]:
    text = resources.files("ecommerce_platform.rag").joinpath("eval_questions.json").read_text("utf-8")
    return [dict(q, source="hand") for q in json.loads(text)["questions"]]


def _loosen(name: str, rng: random.Random) -> str:
    words = [w for w in re.split(r"[\s/,+]+", name.lower()) if w]
    if len(words) > 3:
        del words[rng.randrange(len(words))]  # drop a word
    if len(words) > 2 and rng.random() < 0.5:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]  # swap two neighbours
    if len(words) > 1 and rng.random() < 0.3:
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 4:  # one typo: drop a letter
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + w[j + 1 :]
    return " ".join(words)


def generated(records: list[dict], per_kind: int = GENERATED_PER_KIND, seed: int = GENERATED_SEED) -> list[dict]:
    """Questions generated from the knowledge table with a fixed seed (the same products each build)."""
    rng = random.Random(seed)
    named = [r for r in records if r.get("description") and len(str(r["description"]).split()) >= 2]
    if not named:
        return []
    out = []
    picks = rng.sample(named, min(len(named), 3 * per_kind))
    for i, r in enumerate(picks):
        kind = ("name", "loose", "code")[i % 3]
        if kind == "name":
            q = rng.choice(NAME_TEMPLATES).format(x=str(r["description"]).lower().strip())
        elif kind == "loose":
            q = rng.choice(LOOSE_TEMPLATES).format(x=_loosen(str(r["description"]), rng))
        else:
            q = rng.choice(CODE_TEMPLATES).format(c=r["stock_code"])
        out.append({"question": q, "stock_code": r["stock_code"], "kind": kind, "source": "generated"})
    return out


def evaluate(search, questions: list[dict], descriptions: dict[str, str]) -> dict:  # noqa: ANN001
    """``search(question) -> list of hits (with .stock_code)``; ``descriptions``: stock code -> name.
    Questions about products that are not in the index are skipped (counted)."""
    rows = []
    skipped = 0
    for q in questions:
        code = q["stock_code"]
        if code not in descriptions:
            skipped += 1
            continue
        hits = search(q["question"])
        same = {code}
        if q.get("kind") != "code":
            same |= {c for c, d in descriptions.items() if d == descriptions[code]}
        rank = next((i + 1 for i, h in enumerate(hits) if h.stock_code in same), None)
        rows.append({**q, "rank": rank, "top": hits[0].stock_code if hits else None})

    def rate(sel: list[dict], k: int) -> float | None:
        return round(sum(1 for r in sel if r["rank"] and r["rank"] <= k) / len(sel), 4) if sel else None

    report: dict = {"questions": len(rows), "skipped": skipped, "hit@1": rate(rows, 1), "hit@5": rate(rows, 5)}
    for src in ("hand", "generated"):
        sel = [r for r in rows if r.get("source") == src]
        report[src] = {"questions": len(sel), "hit@1": rate(sel, 1), "hit@5": rate(sel, 5)}
    for kind in ("name", "loose", "code"):
        sel = [r for r in rows if r.get("kind") == kind]
        report[f"kind_{kind}"] = {"questions": len(sel), "hit@1": rate(sel, 1), "hit@5": rate(sel, 5)}
    report["misses"] = [
        {"question": r["question"], "expected": r["stock_code"], "top": r["top"], "rank": r["rank"]}
        for r in rows if r["rank"] != 1
    ][:20]
    return report
