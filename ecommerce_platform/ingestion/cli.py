"""`ecommerce produce` and `ecommerce land`: the stream producer and the one-shot landing."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import click


def _sources(source: str | None) -> list[Path]:
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.ingestion.raw import resolve_sources

    if source:
        return [Path(source).expanduser()]
    return [s.path for s in resolve_sources(load_settings())]


def _stream(shards: int | None):
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.resources.stream import build_stream

    stream = build_stream(load_settings())
    stream.ensure(shards)
    return stream


@click.command("produce")
@click.option("--count", "-n", type=click.IntRange(min=1), default=None, help="Send at most N records (default: all).")
@click.option("--rate", "-r", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Records per second (default: as fast as the stream takes them).")
@click.option("--replay", is_flag=True, help="Replay the history in invoice-time order, paced by --speed.")
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=3600.0, show_default=True,
              help="Replay compression factor (3600: one hour of history per second).")
@click.option("--source", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Source file (default: ECOMMERCE_SOURCE, else the data folder's source files).")
@click.option("--shards", type=click.IntRange(min=1), default=None,
              help="Shards when the stream is created (embedded default 4, or ECOMMERCE_STREAM_SHARDS).")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
def produce(count, rate, replay, speed, source, shards, progress) -> None:  # noqa: ANN001
    """Send source transactions to the stream as newline-delimited JSON (PutRecords batches).

    Ctrl-C stops cleanly between batches and reports exactly what was sent.
    """
    from ecommerce_platform.ingestion.producer import ProduceError, ProduceResult, produce as run
    from ecommerce_platform.ingestion.producer import source_records
    from ecommerce_platform.ingestion.source import SourceError
    from ecommerce_platform.resources.stream import StreamError

    stop = threading.Event()

    def on_sigint(signum, frame):  # noqa: ANN001, ARG001
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint)
    total = ProduceResult()
    try:
        stream = _stream(shards)
        remaining = count
        for path in _sources(source):
            if stop.is_set() or (remaining is not None and remaining <= 0):
                break
            records = source_records(path, count=remaining, replay=replay)
            click.echo(f"producing from {path} to stream {stream.stream_name!r}", err=True)
            result = run(stream, records, rate=rate, replay_speed=speed if replay else None, stop=stop,
                         progress=progress, total=remaining)
            for name in ("sent", "batches", "put_calls", "retried_entries", "rejected", "seconds"):
                setattr(total, name, getattr(total, name) + getattr(result, name))
            total.first_line_id = total.first_line_id or result.first_line_id
            total.last_line_id = result.last_line_id or total.last_line_id
            total.interrupted = total.interrupted or result.interrupted or stop.is_set()
            if remaining is not None:
                remaining -= result.sent + result.rejected
    except (SourceError, ProduceError, StreamError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        signal.signal(signal.SIGINT, previous)
    summary = (f"sent {total.sent:,} records in {total.batches:,} PutRecords batches "
               f"({total.put_calls:,} calls, {total.retried_entries:,} entries retried, "
               f"{total.rejected:,} rejected) in {total.seconds:.1f}s ({total.rate:,.0f} records/s); "
               f"line_ids {total.first_line_id} .. {total.last_line_id}")
    if total.interrupted:
        click.echo(f"interrupted (Ctrl-C): {summary}")
        sys.exit(130)
    click.echo(summary)


@click.command("land")
@click.option("--batch-records", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Records per shard batch (one object per shard, per day, per batch).")
def land(batch_records) -> None:  # noqa: ANN001
    """Land the stream into the raw zone once (what the `raw_stream` asset does locally)."""
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.ingestion.landing import land_stream
    from ecommerce_platform.resources import build_lake

    settings = load_settings()
    stream = _stream(None)
    if not stream.lands_itself:
        raise click.ClickException("in the aws deployment Firehose lands the stream; nothing to do here")
    from ecommerce_platform.resources.stream import StreamError

    try:
        result = land_stream(stream, build_lake(settings), batch_records=batch_records)
    except StreamError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"landed {result.records_landed:,} records ({result.records_failed:,} malformed) in "
        f"{len(result.objects)} objects (+{len(result.error_objects)} error objects), "
        f"{result.redone_batches} interrupted batch(es) redone, {result.seconds:.2f}s "
        f"({result.rate:,.0f} records/s)"
    )
