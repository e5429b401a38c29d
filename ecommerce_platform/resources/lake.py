"""The lake: one interface, a local-folder implementation and an S3 implementation.

Keys are '/'-separated paths relative to the lake root (``raw/batch/...``). ``uri(key)`` gives the
address an engine (DuckDB, Athena) reads: an absolute path locally, ``s3://bucket/prefix/key`` in aws.
Writes are atomic: a single object is written under a temporary name and renamed (local) or put in
one request (S3); a whole prefix is published by ``publish_prefix`` from a staging prefix. A writer that
dies (SIGKILL, power loss) leaves its staging prefix behind: the next writer of the same zone sweeps the
debris of writers that are gone (``sweep_debris``), so nothing accumulates.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

# Debris of a writer on another machine (S3) is swept once it is this old.
STALE_SECONDS = 6 * 3600


def _owner_tag() -> str:
    """Who writes a staging prefix: host and process, so that the next writer can tell it is gone."""
    host = "".join(ch if ch.isalnum() else "_" for ch in socket.gethostname())[:40] or "host"
    return f"{host}.{os.getpid()}.{int(time.time())}"


def _writer_gone(tag: str) -> bool:
    """True when the writer that named a staging prefix ``<name>--<host>.<pid>.<epoch>--<id>`` is gone."""
    try:
        host, pid, started = tag.rsplit(".", 2)
        pid_n, started_n = int(pid), int(started)
    except ValueError:
        return False
    me = "".join(ch if ch.isalnum() else "_" for ch in socket.gethostname())[:40] or "host"
    if host == me:
        try:
            os.kill(pid_n, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return time.time() - started_n > STALE_SECONDS


def _clean_key(key: str) -> str:
    key = key.replace("\\", "/").strip("/")
    if ".." in key.split("/"):
        raise ValueError(f"lake key {key!r} must not contain '..'")
    return key


class Lake(dg.ConfigurableResource, ABC):
    """Where the lake's zones live. Subclasses: LocalLake (a folder) and S3Lake (a bucket + prefix)."""

    @property
    @abstractmethod
    def root(self) -> str: ...

    def uri(self, key: str = "") -> str:
        key = _clean_key(key)
        return f"{self.root.rstrip('/')}/{key}" if key else self.root

    @property
    def is_remote(self) -> bool:
        return self.root.startswith("s3://")

    @abstractmethod
    def put_bytes(self, key: str, data: bytes) -> str: ...

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys (relative to the lake root) of the objects under ``prefix``, sorted."""

    @abstractmethod
    def list_versions(self, prefix: str) -> dict[str, str]:
        """Key -> a version that changes whenever the object changes (one listing call)."""

    @abstractmethod
    def modified(self, key: str) -> float:
        """When the object was last written (epoch seconds)."""

    @abstractmethod
    def upload_file(self, local_path: str | Path, key: str) -> str: ...

    @abstractmethod
    def download_file(self, key: str, local_path: str | Path) -> Path: ...

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int: ...

    @abstractmethod
    def publish_prefix(self, staging_prefix: str, final_prefix: str) -> None:
        """Replace everything under ``final_prefix`` with what is under ``staging_prefix``."""

    @abstractmethod
    def add_to_prefix(self, staging_prefix: str, final_prefix: str) -> None:
        """Add the objects under ``staging_prefix`` to ``final_prefix`` beside the ones it holds (each under
        a name of its own: nothing there is replaced)."""

    def staging_prefix(self, final_prefix: str) -> str:
        """A new staging prefix beside ``final_prefix``, named after its writer; debris of writers that are
        gone is swept first."""
        final_prefix = _clean_key(final_prefix)
        head, _, name = final_prefix.rpartition("/")
        self.sweep_debris(f"{head}/_staging" if head else "_staging")
        return _clean_key(f"{head}/_staging/{name}--{_owner_tag()}--{uuid.uuid4().hex[:12]}")

    def sweep_debris(self, staging_root: str) -> int:
        """Delete the staging prefixes under ``staging_root`` whose writer is gone; returns how many."""
        swept = 0
        names = {k[len(staging_root) + 1:].split("/", 1)[0] for k in self.list(staging_root)}
        for name in sorted(names):
            parts = name.split("--")
            if len(parts) == 3 and _writer_gone(parts[1]):
                swept += 1 if self.delete_prefix(f"{staging_root}/{name}") else 0
        return swept

    def put_text(self, key: str, text: str) -> str:
        return self.put_bytes(key, text.encode("utf-8"))

    def get_text(self, key: str) -> str:
        return self.get_bytes(key).decode("utf-8")

    def local_copy(self, key: str, cache_dir: str | Path) -> Path:
        """A local file with the object's content (the file itself when the lake is local)."""
        target = Path(cache_dir) / _clean_key(key)
        return self.download_file(key, target)

    def configure_duckdb(self, con) -> None:  # noqa: ANN001 - duckdb connection
        """Let a DuckDB connection read and write this lake's URIs."""


class LocalLake(Lake):
    """The lake as a folder on disk (the embedded default): ``<ECOMMERCE_DATA_DIR>/lake``."""

    path: str

    @property
    def root(self) -> str:
        return str(Path(self.path).resolve())

    def _p(self, key: str) -> Path:
        return Path(self.root) / _clean_key(key)

    def put_bytes(self, key: str, data: bytes) -> str:
        target = self._p(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        return str(target)

    def get_bytes(self, key: str) -> bytes:
        return self._p(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._p(key).exists()

    def list(self, prefix: str) -> list[str]:
        base = self._p(prefix)
        if base.is_file():
            return [_clean_key(prefix)]
        if not base.exists():
            return []
        root = Path(self.root)
        return sorted(
            p.relative_to(root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def sweep_debris(self, staging_root: str) -> int:
        root = self._p(staging_root)
        if not root.is_dir():
            return 0
        swept = 0
        for entry in root.iterdir():
            parts = entry.name.split("--")
            if len(parts) == 3 and _writer_gone(parts[1]):
                shutil.rmtree(entry, ignore_errors=True)
                swept += 1
        with contextlib.suppress(OSError):
            if not any(root.iterdir()):
                root.rmdir()
        return swept

    def modified(self, key: str) -> float:
        return self._p(key).stat().st_mtime

    def list_versions(self, prefix: str) -> dict[str, str]:
        out = {}
        for key in self.list(prefix):
            with contextlib.suppress(FileNotFoundError):
                st = self._p(key).stat()
                out[key] = f"{st.st_size}:{st.st_mtime_ns}"
        return out

    def upload_file(self, local_path: str | Path, key: str) -> str:
        target = self._p(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        shutil.copyfile(local_path, tmp)
        os.replace(tmp, target)
        return str(target)

    def download_file(self, key: str, local_path: str | Path) -> Path:
        return self._p(key)  # already local: no copy

    def delete_prefix(self, prefix: str) -> int:
        base = self._p(prefix)
        if base.is_file():
            base.unlink()
            return 1
        if not base.exists():
            return 0
        n = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        parent = base.parent
        if parent.name == "_staging" and parent.exists() and not any(parent.iterdir()):
            parent.rmdir()  # the last staging folder gone: leave no empty _staging behind
        return n

    def add_to_prefix(self, staging_prefix: str, final_prefix: str) -> None:
        # one atomic publish still: the folder is staged again with hard links to the files it holds, plus
        # the new ones, and replaces the old folder in one rename (readers never see half of an addition)
        src, dst = self._p(staging_prefix), self._p(final_prefix)
        if dst.is_dir():
            tag = uuid.uuid4().hex[:8]
            for f in [f for f in src.rglob("*") if f.is_file()]:
                os.replace(f, f.with_name(f"add-{tag}-{f.name}"))
            for f in dst.rglob("*"):
                if f.is_file() and not f.name.startswith("."):
                    target = src / f.relative_to(dst)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.link(f, target)
        self.publish_prefix(staging_prefix, final_prefix)

    def publish_prefix(self, staging_prefix: str, final_prefix: str) -> None:
        src, dst = self._p(staging_prefix), self._p(final_prefix)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not src.exists():
            src.mkdir(parents=True)
        for debris in dst.parent.glob(f".{dst.name}.old-*"):  # left by a writer killed mid-publish
            shutil.rmtree(debris, ignore_errors=True)
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(dst, old)
        os.replace(src, dst)  # readers see the old or the new folder, never a half-written one
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        staging_parent = src.parent
        if staging_parent.name == "_staging" and not any(staging_parent.iterdir()):
            staging_parent.rmdir()


class S3Lake(Lake):
    """The lake in an S3 bucket under a prefix (the aws deployment). The client comes from dagster-aws's
    ``S3Resource`` (one per resource lifetime); it honours AWS_ENDPOINT_URL."""

    bucket: str
    prefix: str = "lake"
    region: str = "eu-west-1"
    endpoint_url: str | None = None

    _s3: Any = PrivateAttr(default=None)

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}".rstrip("/")

    def _client(self):
        if self._s3 is None:
            from dagster_aws.s3 import S3Resource

            self._s3 = S3Resource(region_name=self.region, endpoint_url=self.endpoint_url,
                                  max_attempts=8).get_client()
        return self._s3

    def _k(self, key: str) -> str:
        key = _clean_key(key)
        p = self.prefix.strip("/")
        return f"{p}/{key}" if p else key

    @staticmethod
    def _content_type(key: str) -> dict:
        """Pages and images are served as what they are (a browser opens the dashboard from S3)."""
        import mimetypes

        typ = mimetypes.guess_type(key)[0]
        return {"ContentType": typ} if typ else {}

    def put_bytes(self, key: str, data: bytes) -> str:
        self._client().put_object(Bucket=self.bucket, Key=self._k(key), Body=data, **self._content_type(key))
        return self.uri(key)

    def get_bytes(self, key: str) -> bytes:
        return self._client().get_object(Bucket=self.bucket, Key=self._k(key))["Body"].read()

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._client().head_object(Bucket=self.bucket, Key=self._k(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def _list_full(self, prefix: str) -> list[str]:
        full = self._k(prefix)
        paginator = self._client().get_paginator("list_objects_v2")
        keys: list[str] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        # a prefix 'a/b' must not match 'a/bc': keep the exact key or keys below 'a/b/'
        return [k for k in keys if k == full or k.startswith(full.rstrip("/") + "/")]

    def list(self, prefix: str) -> list[str]:
        p = self.prefix.strip("/")
        cut = len(p) + 1 if p else 0
        return sorted(k[cut:] for k in self._list_full(prefix))

    def modified(self, key: str) -> float:
        return self._client().head_object(Bucket=self.bucket, Key=self._k(key))["LastModified"].timestamp()

    def list_versions(self, prefix: str) -> dict[str, str]:
        full = self._k(prefix)
        p = self.prefix.strip("/")
        cut = len(p) + 1 if p else 0
        out = {}
        for page in self._client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
            for o in page.get("Contents", []):
                if o["Key"] == full or o["Key"].startswith(full.rstrip("/") + "/"):
                    out[o["Key"][cut:]] = o["ETag"]
        return out

    def upload_file(self, local_path: str | Path, key: str) -> str:
        self._client().upload_file(str(local_path), self.bucket, self._k(key),
                                   ExtraArgs=self._content_type(key) or None)
        return self.uri(key)

    def download_file(self, key: str, local_path: str | Path) -> Path:
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = local_path.with_name(f".{local_path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._client().download_file(self.bucket, self._k(key), str(tmp))
        os.replace(tmp, local_path)
        return local_path

    def delete_prefix(self, prefix: str) -> int:
        keys = self._list_full(prefix)
        client = self._client()
        for i in range(0, len(keys), 1000):
            client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
            )
        return len(keys)

    def publish_prefix(self, staging_prefix: str, final_prefix: str) -> None:
        # S3 has no rename: copy the new objects in, then delete the stale ones and the staging copy.
        client = self._client()
        src_full = self._k(staging_prefix).rstrip("/") + "/"
        dst_full = self._k(final_prefix).rstrip("/") + "/"
        new_keys = set()
        for key in self._list_full(staging_prefix):
            target = dst_full + key[len(src_full) :]
            client.copy_object(
                Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key}
            )
            new_keys.add(target)
        stale = [k for k in self._list_full(final_prefix) if k not in new_keys]
        for i in range(0, len(stale), 1000):
            client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in stale[i : i + 1000]], "Quiet": True},
            )
        self.delete_prefix(staging_prefix)

    def add_to_prefix(self, staging_prefix: str, final_prefix: str) -> None:
        client = self._client()
        src_full = self._k(staging_prefix).rstrip("/") + "/"
        dst_full = self._k(final_prefix).rstrip("/") + "/"
        tag = uuid.uuid4().hex[:8]
        for key in self._list_full(staging_prefix):
            head, _, name = key[len(src_full):].rpartition("/")
            target = dst_full + (f"{head}/" if head else "") + f"add-{tag}-{name}"
            client.copy_object(Bucket=self.bucket, Key=target, CopySource={"Bucket": self.bucket, "Key": key})
        self.delete_prefix(staging_prefix)

    def configure_duckdb(self, con) -> None:  # noqa: ANN001
        from ecommerce_platform.resources.aws import duckdb_s3_secret_sql

        con.execute(duckdb_s3_secret_sql(region=self.region, endpoint_url=self.endpoint_url))
