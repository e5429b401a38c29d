"""Open the built index for questions: from the local lake folder directly (no Dagster import), or
through the lake resource in the aws deployment (files copied to a local cache first).
Light imports only: this is the start of ``ecommerce ask``."""

from __future__ import annotations

import json
import os
from pathlib import Path

INDEX_PREFIX = "rag/index"  # same as index.INDEX_PREFIX (not imported: keeps this module light)
INDEX_FILES = ("meta.json", "chunks.json", "index.faiss")


class IndexNotBuilt(RuntimeError):
    pass


def _local_files(settings) -> tuple[Path, dict, Path, Path]:  # noqa: ANN001
    root = Path(settings.lake_dir)
    folder = root / INDEX_PREFIX
    if not (folder / "meta.json").exists():
        raise IndexNotBuilt(
            f"no product index in {folder}: materialize the rag assets first "
            "(dagster asset materialize -m ecommerce_platform.definitions --select product_knowledge,faiss_index) "
            "or point ECOMMERCE_DATA_DIR at a built data folder"
        )
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return folder, meta, root / meta["model"]["onnx_key"], root / meta["model"]["tokenizer_key"]


def _remote_files(settings, cache_dir: Path) -> tuple[Path, dict, Path, Path]:  # noqa: ANN001
    from ecommerce_platform.resources import build_lake

    lake = build_lake(settings)
    if not lake.exists(f"{INDEX_PREFIX}/meta.json"):
        raise IndexNotBuilt(f"no product index at {lake.uri(INDEX_PREFIX)}: materialize faiss_index first")
    meta = json.loads(lake.get_text(f"{INDEX_PREFIX}/meta.json"))
    folder = cache_dir / "index" / meta["fingerprint"][:16]
    for name in INDEX_FILES:
        if not (folder / name).exists():
            lake.download_file(f"{INDEX_PREFIX}/{name}", folder / name)
    onnx_path = lake.local_copy(meta["model"]["onnx_key"], cache_dir)
    tok_path = lake.local_copy(meta["model"]["tokenizer_key"], cache_dir)
    return folder, meta, onnx_path, tok_path


def open_retriever(settings=None, cache_dir: str | Path | None = None):  # noqa: ANN001, ANN201
    """(Retriever, meta) of the index the settings point at (ECOMMERCE_DATA_DIR / the deployment)."""
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.rag.embedder import Embedder
    from ecommerce_platform.rag.retrieval import Retriever

    settings = settings or load_settings()
    if settings.deployment == "local":
        folder, meta, onnx_path, tok_path = _local_files(settings)
    else:
        cache = Path(cache_dir or os.environ.get("ECOMMERCE_CACHE_DIR") or Path(settings.data_dir) / ".cache" / "rag")
        folder, meta, onnx_path, tok_path = _remote_files(settings, cache)
    embedder = Embedder(onnx_path, tok_path)
    return Retriever.from_folder(folder, embedder.embed), meta
