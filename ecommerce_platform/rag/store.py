"""Open the published index for questions (``ecommerce ask``, the index's check): its files straight from
a local lake's folder, or copied once per build into the embeddings resource's cache folder from a remote
lake (the aws deployment). The index must have been built with the embedding model installed here."""

from __future__ import annotations

import json
from pathlib import Path

from ecommerce_platform.rag.index import INDEX_FILES, INDEX_PREFIX


class IndexNotBuilt(RuntimeError):
    pass


def index_folder(lake, embeddings) -> tuple[Path, dict]:  # noqa: ANN001 - Lake, Embeddings
    """(local folder holding the published index files, its meta.json)."""
    if not lake.exists(f"{INDEX_PREFIX}/meta.json"):
        raise IndexNotBuilt(
            f"no product index at {lake.uri(INDEX_PREFIX)}: materialize the rag assets first "
            "(dagster asset materialize -m ecommerce_platform.definitions --select product_knowledge,faiss_index) "
            "or point ECOMMERCE_DATA_DIR at a built data folder"
        )
    meta = json.loads(lake.get_text(f"{INDEX_PREFIX}/meta.json"))
    if not lake.is_remote:
        return Path(lake.uri(INDEX_PREFIX)), meta
    folder = embeddings.cache_path / "index" / meta["build_id"]
    for name in INDEX_FILES:
        if not (folder / name).exists():
            lake.download_file(f"{INDEX_PREFIX}/{name}", folder / name)
    return folder, meta


def open_index(lake, embeddings, embed=None):  # noqa: ANN001, ANN201
    """(Retriever, meta) of the published index. ``embed``: texts -> vectors (default: the resource's
    encoder). Raises IndexNotBuilt when there is none, or when it was built with another model."""
    from ecommerce_platform.rag.retrieval import Retriever

    folder, meta = index_folder(lake, embeddings)
    built_with = meta.get("model", {}).get("fingerprint")
    if built_with != embeddings.fingerprint():
        raise IndexNotBuilt(
            f"the product index at {lake.uri(INDEX_PREFIX)} was built with embedding model {built_with}, "
            f"this installation has {embeddings.fingerprint()} ({embeddings.describe()['package']}): "
            "rebuild faiss_index")
    return Retriever.from_folder(folder, embed or embeddings.embed), meta
