"""The stream: one interface with Kinesis semantics, an embedded durable log (local) and Kinesis (aws).

Interface (``Stream``):
  ``ensure(shards)``                     create the stream when missing (idempotent)
  ``shard_ids()``                        the shards, in order
  ``put_records([(data, key), ...])``    a PutRecords call: one ``PutResult`` per entry, in order, each
                                         with (shard_id, sequence_number) or an ``error_code``
                                         (e.g. ProvisionedThroughputExceededException)
  ``shard_iterator(shard, type, seq)``   TRIM_HORIZON | AT_SEQUENCE_NUMBER | AFTER_SEQUENCE_NUMBER | LATEST
  ``get_records(iterator, limit)``       -> (records, next_iterator); records are ``StreamRecord``
  ``read_checkpoint(consumer)`` / ``write_checkpoint(consumer, state)``
                                         a consumer's durable JSON state (checkpoints per shard, ...)

``LocalStream`` (the embedded default) keeps the log under ``<ECOMMERCE_DATA_DIR>/stream/<name>/``:
  shard-000000/seg-<first seq>.log    append-only segment files of framed records:
      [u32 length of body][u32 crc32 of body][body = u64 seq | f64 arrival | u16 key length | key | data]
  checkpoints/<consumer>.json          consumer state (written to a temp name, fsync'd, renamed)
Appends are one ``write`` + ``fsync`` per shard per call under an exclusive ``flock``; a torn tail
(a crash mid-append) is detected on open by length/CRC and truncated, never touching earlier records.
Readers stop at an incomplete tail (a writer may be appending), so one writer process and any number
of reader processes are safe. Shards are chosen like Kinesis: MD5 of the partition key as a 128-bit
integer, mapped into equal hash-key ranges. Sequence numbers are per-shard, increasing (decimal text,
zero-padded so that text order = numeric order). Records older than ``retention_hours`` are invisible
to readers and whole expired segments are deleted.

``KinesisStream`` (aws) is boto3 against Kinesis (honours AWS_ENDPOINT_URL); consumer state is a small
JSON object in S3 (``s3://<bucket>/<prefix>/_stream_checkpoints/<stream>/<consumer>.json``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import threading
import time
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

ITERATOR_TYPES = ("TRIM_HORIZON", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "LATEST")
THROTTLED = "ProvisionedThroughputExceededException"
MAX_RECORDS_PER_PUT = 500
MAX_BYTES_PER_PUT = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
HASH_SPACE = 1 << 128
SEQ_WIDTH = 20


class StreamError(RuntimeError):
    """A stream operation failed; the message names the stream and the problem."""


@dataclass
class PutResult:
    shard_id: str | None = None
    sequence_number: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_code is None


@dataclass(slots=True)
class StreamRecord:
    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # approximate arrival timestamp, epoch seconds (UTC)


def hash_key(partition_key: str) -> int:
    """Kinesis' hash key of a partition key: MD5 as a 128-bit unsigned integer."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")  # noqa: S324


def shard_index(partition_key: str, shards: int) -> int:
    """The shard owning the key when the hash-key space is split into ``shards`` equal ranges."""
    return min(hash_key(partition_key) * shards // HASH_SPACE, shards - 1)


def shard_id_of(index: int) -> str:
    return f"shardId-{index:012d}"


class Stream(dg.ConfigurableResource, ABC):
    """A stream with Kinesis semantics. Subclasses: LocalStream (embedded log) and KinesisStream."""

    @property
    @abstractmethod
    def stream_name(self) -> str: ...

    @property
    def lands_itself(self) -> bool:
        """True when the platform must land the stream (local); False when Firehose does it (aws)."""
        return True

    @abstractmethod
    def ensure(self, shards: int | None = None) -> None: ...

    @abstractmethod
    def shard_ids(self) -> list[str]: ...

    @abstractmethod
    def put_records(self, entries: list[tuple[bytes, str]]) -> list[PutResult]: ...

    def put_record(self, data: bytes, partition_key: str) -> PutResult:
        """One record per call (the seed's way; kept for the benchmark baseline)."""
        return self.put_records([(data, partition_key)])[0]

    @abstractmethod
    def shard_iterator(self, shard_id: str, iterator_type: str, sequence_number: str | None = None) -> str: ...

    @abstractmethod
    def get_records(self, iterator: str, limit: int = 10_000) -> tuple[list[StreamRecord], str | None]: ...

    @abstractmethod
    def read_checkpoint(self, consumer: str) -> dict: ...

    @abstractmethod
    def write_checkpoint(self, consumer: str, state: dict) -> None: ...

    def consumer_lock(self, consumer: str):
        """Context manager held by a consumer while it moves its checkpoint (one at a time)."""
        import contextlib

        return contextlib.nullcontext()

    def read_shard(self, shard_id: str, after: str | None = None, limit: int | None = None,
                   page: int = 10_000):
        """Records of one shard after ``after`` (or from the trim horizon), in order, in pages."""
        it = self.shard_iterator(shard_id, "AFTER_SEQUENCE_NUMBER" if after else "TRIM_HORIZON", after)
        taken = 0
        while it is not None:
            want = page if limit is None else min(page, limit - taken)
            if want <= 0:
                return
            records, it = self.get_records(it, want)
            if not records:
                return
            taken += len(records)
            yield records


# --------------------------------------------------------------------------------------------------
# The embedded durable log
# --------------------------------------------------------------------------------------------------

_FRAME = struct.Struct("<II")  # body length, crc32(body)
_BODY = struct.Struct("<QdH")  # sequence, arrival, key length
_SEGMENT_BYTES = 64 * 1024 * 1024
_LOCKS: dict[str, threading.Lock] = {}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def scan_segment(path: Path, start: int = 0, chunk: int = 4 << 20):
    """Yield (offset, end, seq, arrival, key, data) of the complete, valid records from ``start``;
    stops at the first torn or corrupt record (the caller decides whether to truncate there)."""
    frame, body_hdr = _FRAME, _BODY
    with open(path, "rb") as fh:
        fh.seek(start)
        base, buf = start, b""
        while True:
            more = fh.read(chunk)
            buf = buf + more if buf else more
            n, pos = len(buf), 0
            while pos + 8 <= n:
                length, crc = frame.unpack_from(buf, pos)
                end = pos + 8 + length
                if length < body_hdr.size:
                    return  # corrupt frame header
                if end > n:
                    break  # need more bytes (or a torn tail)
                body = buf[pos + 8 : end]
                if zlib.crc32(body) != crc:
                    return
                seq, arrival, klen = body_hdr.unpack_from(body, 0)
                kend = body_hdr.size + klen
                yield base + pos, base + end, seq, arrival, body[body_hdr.size : kend].decode("utf-8"), body[kend:]
                pos = end
            buf = buf[pos:]
            base += pos
            if not more:
                return


def _read_into(out: list, path: Path, start: int, shard_id: str, nxt: int, horizon: float,
               limit: int, chunk: int = 1 << 20) -> tuple[int, int]:
    """Append to ``out`` the valid records of one segment from byte ``start`` with seq >= ``nxt`` and
    arrival >= ``horizon``, up to ``limit`` in ``out``; returns (byte position reached, next seq).
    The hot loop of every reader (``scan_segment`` inlined for speed)."""
    unpack_frame, unpack_body, crc32 = _FRAME.unpack_from, _BODY.unpack_from, zlib.crc32
    hdr = _BODY.size
    append, Record = out.append, StreamRecord
    with open(path, "rb") as fh:
        fh.seek(start)
        base, buf = start, b""
        while len(out) < limit:
            more = fh.read(chunk)
            buf = buf + more if buf else more
            n, pos = len(buf), 0
            while pos + 8 <= n:
                length, crc = unpack_frame(buf, pos)
                end = pos + 8 + length
                if length < hdr:
                    return base + pos, nxt  # corrupt frame: stop (the writer truncates on open)
                if end > n:
                    break
                body = buf[pos + 8 : end]
                if crc32(body) != crc:
                    return base + pos, nxt
                seq, arrival, klen = unpack_body(body, 0)
                pos = end
                if seq < nxt:
                    continue
                if arrival < horizon:  # expired (retention): invisible
                    nxt = seq + 1
                    continue
                append(Record(shard_id, "%020d" % seq, body[hdr : hdr + klen].decode("utf-8"),
                              body[hdr + klen :], arrival))
                nxt = seq + 1
                if len(out) >= limit:
                    return base + pos, nxt
            buf = buf[pos:]
            base += pos
            if not more:
                break
    return base, nxt


class _ShardLog:
    """One shard's directory of segments; appends under flock, recovers a torn tail on open."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock_path = self.dir / "writer.lock"
        self.active: Path | None = None
        self.active_size = -1
        self.next_seq = 1

    def segments(self) -> list[tuple[int, Path]]:
        out = []
        for p in self.dir.glob("seg-*.log"):
            try:
                out.append((int(p.stem[4:]), p))
            except ValueError:
                continue
        return sorted(out)

    def _recover(self) -> None:
        """(Under the lock.) Find the active segment and the next sequence; truncate a torn tail."""
        segs = self.segments()
        if not segs:
            self.active, self.active_size, self.next_seq = None, 0, self._floor_seq()
            return
        first, path = segs[-1]
        last_end, last_seq = 0, first - 1
        for _, end, seq, *_ in scan_segment(path):
            last_end, last_seq = end, seq
        size = path.stat().st_size
        if size != last_end:  # torn or corrupt tail: cut it off (earlier records untouched)
            with open(path, "r+b") as fh:
                fh.truncate(last_end)
                fh.flush()
                os.fsync(fh.fileno())
        self.active, self.active_size, self.next_seq = path, last_end, max(last_seq + 1, first)

    def _floor_seq(self) -> int:
        """After every segment was trimmed, sequences continue from the recorded high-water mark."""
        mark = self.dir / "next_seq"
        try:
            return int(mark.read_text())
        except (OSError, ValueError):
            return 1

    def append(self, items: list[tuple[str, bytes]], arrival: float) -> list[int]:
        import fcntl

        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self.active is None or not self.active.exists() or self.active.stat().st_size != self.active_size:
                    self._recover()  # first use, or another writer appended since
                if self.active is None or self.active_size >= _SEGMENT_BYTES:
                    self.active = self.dir / f"seg-{self.next_seq:0{SEQ_WIDTH}d}.log"
                    self.active_size = 0
                    self.active.touch()
                    _fsync_dir(self.dir)
                seqs, parts = [], []
                seq = self.next_seq
                for key, data in items:
                    kb = key.encode("utf-8")
                    body = _BODY.pack(seq, arrival, len(kb)) + kb + data
                    parts.append(_FRAME.pack(len(body), zlib.crc32(body)))
                    parts.append(body)
                    seqs.append(seq)
                    seq += 1
                blob = b"".join(parts)
                fd = os.open(self.active, os.O_WRONLY | os.O_APPEND)
                try:
                    written = 0
                    while written < len(blob):
                        written += os.write(fd, blob[written:])
                    os.fdatasync(fd)  # data + size durable before the call returns
                finally:
                    os.close(fd)
                self.active_size += len(blob)
                self.next_seq = seq
                return seqs
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def last_seq(self) -> int:
        segs = self.segments()
        if not segs:
            return self._floor_seq() - 1
        last = segs[-1][0] - 1
        for _, _, seq, *_ in scan_segment(segs[-1][1]):
            last = seq
        return last

    def trim(self, older_than: float) -> int:
        """Delete whole segments whose every record is older than ``older_than`` (not the newest)."""
        import fcntl

        removed = 0
        with open(self.lock_path, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                segs = self.segments()
                if not segs:
                    return 0
                # remember where sequences continue, so numbering never restarts
                nxt = self.last_seq() + 1
                (self.dir / "next_seq").write_text(str(nxt))
                for _, path in segs[:-1]:
                    newest = None
                    for _, _, _, arrival, *_ in scan_segment(path):
                        newest = arrival
                    if newest is None or newest < older_than:
                        path.unlink()
                        removed += 1
                    else:
                        break
                _fsync_dir(self.dir)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return removed


class LocalStream(Stream):
    """An embedded durable stream on disk with Kinesis semantics (see the module docstring)."""

    path: str
    name: str = "ecommerce-transactions"
    shards: int = 4
    retention_hours: float = 24.0

    @property
    def stream_name(self) -> str:
        return self.name

    @property
    def root(self) -> Path:
        return Path(self.path).expanduser().resolve() / self.name

    def _meta(self) -> dict:
        meta_path = self.root / "stream.json"
        try:
            return json.loads(meta_path.read_text())
        except FileNotFoundError:
            return {}

    def ensure(self, shards: int | None = None) -> None:
        meta = self._meta()
        if meta:
            return
        _write_json_atomic(self.root / "stream.json", {"name": self.name, "shards": shards or self.shards,
                                                        "created": time.time()})

    def _shard_count(self) -> int:
        meta = self._meta()
        if not meta:
            self.ensure()
            meta = self._meta()
        return int(meta["shards"])

    def shard_ids(self) -> list[str]:
        return [shard_id_of(i) for i in range(self._shard_count())]

    def _log(self, shard_id: str) -> _ShardLog:
        key = str(self.root / shard_id)
        log = _LOGS.get(key)
        if log is None:
            log = _LOGS[key] = _ShardLog(Path(key))
        return log

    def put_records(self, entries: list[tuple[bytes, str]]) -> list[PutResult]:
        if len(entries) > MAX_RECORDS_PER_PUT:
            raise StreamError(f"{self.name}: PutRecords takes at most {MAX_RECORDS_PER_PUT} records, got {len(entries)}")
        n = self._shard_count()
        results: list[PutResult | None] = [None] * len(entries)
        by_shard: dict[int, list[int]] = {}
        total = 0
        for i, (data, key) in enumerate(entries):
            if not key or len(key) > 256:
                results[i] = PutResult(error_code="InvalidArgumentException",
                                       error_message="partition key must be 1-256 characters")
                continue
            size = len(data) + len(key.encode("utf-8"))
            total += size
            if size > MAX_RECORD_BYTES:
                results[i] = PutResult(error_code="InvalidArgumentException", error_message="record larger than 1 MiB")
                continue
            by_shard.setdefault(shard_index(key, n), []).append(i)
        if total > MAX_BYTES_PER_PUT:
            raise StreamError(f"{self.name}: PutRecords payload is {total} bytes, above {MAX_BYTES_PER_PUT}")
        arrival = time.time()
        lock = _LOCKS.setdefault(str(self.root), threading.Lock())
        jobs = [(shard_id_of(idx), positions) for idx, positions in sorted(by_shard.items())]

        def append(job):  # noqa: ANN001, ANN202
            sid, positions = job
            return self._log(sid).append([(entries[i][1], entries[i][0]) for i in positions], arrival)

        with lock:
            # shards are independent files: their appends (and fsyncs) run in parallel
            done = list(_pool().map(append, jobs)) if len(jobs) > 1 else [append(j) for j in jobs]
        for (sid, positions), seqs in zip(jobs, done):
            for i, seq in zip(positions, seqs):
                results[i] = PutResult(shard_id=sid, sequence_number=f"{seq:0{SEQ_WIDTH}d}")
        return results  # type: ignore[return-value]

    # iterators are opaque text: base64 of JSON {shard, next (seq wanted), seg, off (a position hint)}
    @staticmethod
    def _encode(state: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()

    @staticmethod
    def _decode(iterator: str) -> dict:
        try:
            return json.loads(base64.urlsafe_b64decode(iterator.encode()))
        except (ValueError, TypeError) as exc:
            raise StreamError(f"invalid shard iterator ({exc})") from None

    def shard_iterator(self, shard_id: str, iterator_type: str, sequence_number: str | None = None) -> str:
        if shard_id not in self.shard_ids():
            raise StreamError(f"{self.name}: no shard {shard_id!r} (shards: {', '.join(self.shard_ids())})")
        if iterator_type not in ITERATOR_TYPES:
            raise StreamError(f"iterator type {iterator_type!r} is not one of {', '.join(ITERATOR_TYPES)}")
        if iterator_type == "TRIM_HORIZON":
            nxt = 0
        elif iterator_type == "LATEST":
            nxt = self._log(shard_id).last_seq() + 1
        else:
            if sequence_number is None:
                raise StreamError(f"{iterator_type} needs a sequence number")
            nxt = int(sequence_number) + (1 if iterator_type == "AFTER_SEQUENCE_NUMBER" else 0)
        return self._encode({"shard": shard_id, "next": nxt, "seg": None, "off": 0})

    def get_records(self, iterator: str, limit: int = 10_000) -> tuple[list[StreamRecord], str | None]:
        state = self._decode(iterator)
        shard_id, nxt = state["shard"], int(state["next"])
        log = self._log(shard_id)
        segs = log.segments()
        horizon = time.time() - self.retention_hours * 3600.0
        out: list[StreamRecord] = []
        seg_first, off = state.get("seg"), int(state.get("off") or 0)
        firsts = [s[0] for s in segs]
        if seg_first is not None and seg_first in firsts:
            start_idx = firsts.index(seg_first)  # the position hint of the previous call
        else:
            off = 0
            start_idx = max([i for i, f in enumerate(firsts) if f <= nxt] or [0])
        seg_hint, off_hint = seg_first, off
        for si in range(start_idx, len(segs)):
            first, path = segs[si]
            end, nxt = _read_into(out, path, off if si == start_idx else 0, shard_id, nxt, horizon, limit)
            seg_hint, off_hint = first, end
            if len(out) >= limit:
                break
            if si + 1 < len(segs):
                seg_hint, off_hint = segs[si + 1][0], 0
        return out, self._encode({"shard": shard_id, "next": nxt, "seg": seg_hint, "off": off_hint})

    def trim(self) -> int:
        """Delete the segments older than the retention period; returns how many were deleted."""
        horizon = time.time() - self.retention_hours * 3600.0
        return sum(self._log(s).trim(horizon) for s in self.shard_ids())

    def _checkpoint_path(self, consumer: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in consumer)
        return self.root / "checkpoints" / f"{safe}.json"

    def consumer_lock(self, consumer: str):
        import contextlib
        import fcntl

        @contextlib.contextmanager
        def held():
            path = self._checkpoint_path(consumer).with_suffix(".lock")
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a+b") as fh:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StreamError(
                        f"{self.name}: consumer {consumer!r} is already running in another process"
                    ) from None
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

        return held()

    def read_checkpoint(self, consumer: str) -> dict:
        try:
            return json.loads(self._checkpoint_path(consumer).read_text())
        except FileNotFoundError:
            return {}

    def write_checkpoint(self, consumer: str, state: dict) -> None:
        _write_json_atomic(self._checkpoint_path(consumer), state)


_LOGS: dict[str, _ShardLog] = {}
_POOL = None


def _pool():
    global _POOL  # noqa: PLW0603
    if _POOL is None:
        from concurrent.futures import ThreadPoolExecutor

        _POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="stream-append")
    return _POOL


# --------------------------------------------------------------------------------------------------
# Kinesis
# --------------------------------------------------------------------------------------------------


class KinesisStream(Stream):
    """A Kinesis Data Stream (aws). Consumer state lives as small JSON objects in the lake bucket. The
    records reach the lake through the Firehose delivery stream ``firehose_name`` (the CDK app's)."""

    name: str = "ecommerce-transactions"
    region: str = "eu-west-1"
    endpoint_url: str | None = None
    checkpoint_bucket: str | None = None
    checkpoint_prefix: str = "lake/_stream_checkpoints"
    firehose_name: str = "ecommerce-transactions-to-s3"

    def firehose(self) -> dict:
        """The delivery stream that lands this stream: status, source, buffering interval (seconds);
        ``{"status": "MISSING"}`` when there is none (then nothing reaches the lake)."""
        client = self._client("firehose")
        try:
            desc = client.describe_delivery_stream(DeliveryStreamName=self.firehose_name)["DeliveryStreamDescription"]
        except client.exceptions.ResourceNotFoundException:
            return {"name": self.firehose_name, "status": "MISSING", "buffer_seconds": None}
        interval = None
        for dest in desc.get("Destinations", []):
            cfg = dest.get("ExtendedS3DestinationDescription") or dest.get("S3DestinationDescription") or {}
            interval = (cfg.get("BufferingHints") or {}).get("IntervalInSeconds", interval)
        source = (desc.get("Source") or {}).get("KinesisStreamSourceDescription", {}).get("KinesisStreamARN", "")
        return {"name": self.firehose_name, "status": desc.get("DeliveryStreamStatus"), "buffer_seconds": interval,
                "reads_this_stream": source.endswith(f"/{self.name}")}

    def records_since(self, since: float, limit: int = 10_000) -> int:
        """Records that arrived after ``since`` (epoch seconds), counted up to ``limit``."""
        import datetime as dt

        client, n = self._client(), 0
        for shard in self.shard_ids():
            it = client.get_shard_iterator(StreamName=self.name, ShardId=shard, ShardIteratorType="AT_TIMESTAMP",
                                           Timestamp=dt.datetime.fromtimestamp(since, dt.timezone.utc))["ShardIterator"]
            while it and n < limit:
                resp = client.get_records(ShardIterator=it, Limit=min(10_000, limit - n))
                n += len(resp["Records"])
                if not resp["Records"] or resp.get("MillisBehindLatest", 0) == 0:
                    break
                it = resp.get("NextShardIterator")
        return n

    @property
    def stream_name(self) -> str:
        return self.name

    @property
    def lands_itself(self) -> bool:
        return False  # Firehose lands the stream in the raw zone

    def _client(self, service: str = "kinesis"):
        # one client per process and endpoint (creating a boto3 client costs ~0.1 s)
        key = (service, self.region, self.endpoint_url, os.getpid())
        client = _CLIENTS.get(key)
        if client is None:
            from ecommerce_platform.resources.aws import boto_client

            client = _CLIENTS[key] = boto_client(service, region=self.region, endpoint_url=self.endpoint_url)
        return client

    def ensure(self, shards: int | None = None) -> None:
        """The stream must exist: the CDK app provisions it (on-demand, read by Firehose). A stream this
        resource created would be one that no Firehose reads, so a missing one is an error naming it."""
        client = self._client()
        try:
            client.describe_stream_summary(StreamName=self.name)
        except client.exceptions.ResourceNotFoundException:
            raise StreamError(
                f"the Kinesis stream {self.name!r} does not exist in {self.region}: check ECOMMERCE_STREAM_NAME "
                "(the CDK app's stack outputs give it; `make -C infra env` writes it to .env)") from None

    def shard_ids(self) -> list[str]:
        client = self._client()
        out, token = [], None
        while True:
            resp = client.list_shards(NextToken=token) if token else client.list_shards(StreamName=self.name)
            out += [s["ShardId"] for s in resp["Shards"]]
            token = resp.get("NextToken")
            if not token:
                return sorted(out)

    def put_records(self, entries: list[tuple[bytes, str]]) -> list[PutResult]:
        resp = self._client().put_records(
            StreamName=self.name, Records=[{"Data": d, "PartitionKey": k} for d, k in entries]
        )
        return [
            PutResult(shard_id=r.get("ShardId"), sequence_number=r.get("SequenceNumber"),
                      error_code=r.get("ErrorCode"), error_message=r.get("ErrorMessage"))
            for r in resp["Records"]
        ]

    def shard_iterator(self, shard_id: str, iterator_type: str, sequence_number: str | None = None) -> str:
        kwargs = {"StreamName": self.name, "ShardId": shard_id, "ShardIteratorType": iterator_type}
        if sequence_number is not None and iterator_type in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            kwargs["StartingSequenceNumber"] = sequence_number
        it = self._client().get_shard_iterator(**kwargs)["ShardIterator"]
        _ITER_SHARDS[it] = shard_id
        return it

    def get_records(self, iterator: str, limit: int = 10_000) -> tuple[list[StreamRecord], str | None]:
        resp = self._client().get_records(ShardIterator=iterator, Limit=min(limit, 10_000))
        shard = _ITER_SHARDS.pop(iterator, "")
        nxt = resp.get("NextShardIterator")
        if nxt:
            _ITER_SHARDS[nxt] = shard
        records = [
            StreamRecord(shard, r["SequenceNumber"], r["PartitionKey"], r["Data"],
                         r["ApproximateArrivalTimestamp"].timestamp())
            for r in resp["Records"]
        ]
        return records, resp.get("NextShardIterator")

    def _checkpoint_key(self, consumer: str) -> str:
        return f"{self.checkpoint_prefix.strip('/')}/{self.name}/{consumer}.json"

    def read_checkpoint(self, consumer: str) -> dict:
        if not self.checkpoint_bucket:
            raise StreamError("KinesisStream needs checkpoint_bucket (ECOMMERCE_S3_BUCKET) for consumer state")
        s3 = self._client("s3")
        try:
            body = s3.get_object(Bucket=self.checkpoint_bucket, Key=self._checkpoint_key(consumer))["Body"].read()
        except s3.exceptions.NoSuchKey:
            return {}
        return json.loads(body)

    def write_checkpoint(self, consumer: str, state: dict) -> None:
        if not self.checkpoint_bucket:
            raise StreamError("KinesisStream needs checkpoint_bucket (ECOMMERCE_S3_BUCKET) for consumer state")
        self._client("s3").put_object(Bucket=self.checkpoint_bucket, Key=self._checkpoint_key(consumer),
                                      Body=json.dumps(state, sort_keys=True).encode())


_ITER_SHARDS: dict[str, str] = {}
_CLIENTS: dict = {}


def _shard_of_iterator(iterator: str) -> str:
    return _ITER_SHARDS.get(iterator, "")


class ThrottlingStream:
    """Fault injection: wraps a stream and fails a fraction of every PutRecords batch with
    ProvisionedThroughputExceededException (the rest is really written). Not a resource: tests and
    the benchmark wrap the real stream with it."""

    def __init__(self, inner: Stream, fraction: float = 0.3, seed: int = 7):
        import random

        self.inner = inner
        self.fraction = fraction
        self.rng = random.Random(seed)
        self.calls = 0
        self.throttled = 0

    def __getattr__(self, name):  # noqa: ANN001, ANN204 - everything else goes to the real stream
        return getattr(self.inner, name)

    def put_records(self, entries: list[tuple[bytes, str]]) -> list[PutResult]:
        self.calls += 1
        fail = {i for i in range(len(entries)) if self.rng.random() < self.fraction}
        passed = [e for i, e in enumerate(entries) if i not in fail]
        inner = iter(self.inner.put_records(passed) if passed else [])
        out = []
        for i in range(len(entries)):
            if i in fail:
                self.throttled += 1
                out.append(PutResult(error_code=THROTTLED, error_message="Rate exceeded for shard (injected)"))
            else:
                out.append(next(inner))
        return out

    def put_record(self, data: bytes, partition_key: str) -> PutResult:
        return self.put_records([(data, partition_key)])[0]


def build_stream(settings) -> Stream:  # noqa: ANN001 - config.Settings
    if settings.deployment == "aws":
        return KinesisStream(
            name=settings.stream_name, region=settings.region, endpoint_url=settings.endpoint_url,
            checkpoint_bucket=settings.s3_bucket,
            checkpoint_prefix=f"{settings.s3_prefix}/_stream_checkpoints".strip("/"),
            firehose_name=settings.firehose_name,
        )
    return LocalStream(path=str(settings.data_dir / "stream"), name=settings.stream_name,
                       shards=settings.stream_shards, retention_hours=settings.stream_retention_hours)
