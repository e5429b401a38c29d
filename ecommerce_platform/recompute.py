"""The one recompute mechanism: Dagster's own.

- Every asset's ``code_version`` is derived from what defines it (``code_version(...)``): the plain
  modules and SQL files that compute it, and the parameters it is built with (config defaults,
  validation bounds). Change one SQL file and exactly its asset gets a new code version; Dagster then
  marks it, and everything downstream of it, stale in the UI.
- Every asset emits a ``DataVersion`` of what it wrote.
- ``previous_if_fresh(context)`` decides, in one place, whether an asset can reuse its last output: it
  asks Dagster's stale-status resolver (the same one behind the UI's badges) whether the asset is
  FRESH, i.e. its last materialization was made with the current code version from the upstream data
  versions that are current now. Then the previous metadata and data version are reported again
  and nothing is recomputed; otherwise the asset rebuilds. Root assets (landing) always run: they look
  at the outside world.
- A user forces a rebuild of any selection with the run tag ``ecommerce/force=true`` (UI: Materialize
  with tags; CLI: ``--tags '{"ecommerce/force": "true"}'``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

import dagster as dg

FORCE_TAG = "ecommerce/force"
REUSED = "reused_previous_output"


def _package_file(package: str, name: str) -> bytes:
    node = resources.files(package)
    for part in name.split("/"):
        node = node.joinpath(part)
    return node.read_bytes()


def code_version(package: str, *files: str, params: object = None) -> str:
    """A code version from the contents of ``files`` (paths relative to ``package``'s folder, e.g.
    ``"views.py"`` or ``"sql/daily_sales.sql"``) and ``params`` (any JSON-able value: config defaults,
    bounds, thresholds). 16 hex digits."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + _package_file(package, name) + b"\0")
    if params is not None:
        h.update(json.dumps(params, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def config_defaults(config_cls: type[dg.Config] | None) -> dict:
    return {} if config_cls is None else config_cls().model_dump()


def data_version(*parts: object) -> dg.DataVersion:
    """A data version from what identifies an output (content hashes, row counts, the inputs' versions)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode() + b"\0")
    return dg.DataVersion(h.hexdigest()[:16])


def forced(context) -> bool:  # noqa: ANN001
    return str(context.run.tags.get(FORCE_TAG, "")).lower() in ("1", "true", "yes")


def stale_resolver(instance: dg.DagsterInstance, graph):  # noqa: ANN001, ANN201
    """Dagster's stale-status resolver (the one behind the UI's badges) over ``graph``."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
    from dagster._core.definitions.data_version import CachingStaleStatusResolver
    from dagster._core.definitions.temporal_context import TemporalContext
    from dagster._time import get_current_datetime

    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    return CachingStaleStatusResolver(instance=instance, asset_graph=graph, loading_context=view)


def _graph(context):  # noqa: ANN001, ANN202
    try:
        return context.repository_def.asset_graph
    except Exception:  # noqa: BLE001 - a job executed on its own: its asset layer holds the whole graph
        return context.job_def.asset_layer.asset_graph


def stale_status(context, key: dg.AssetKey, partition_key: str | None = None):  # noqa: ANN001
    """Dagster's verdict on ``key`` (FRESH, STALE or MISSING), with its causes."""
    resolver = stale_resolver(context.instance, _graph(context))
    return resolver.get_status(key, partition_key), resolver.get_stale_causes(key, partition_key)


def fresh_partitions(context, key: dg.AssetKey, partition_keys: Iterable[str]) -> set[str]:  # noqa: ANN001
    """The partitions of ``key`` that Dagster says are FRESH, from one resolver (asked before anything in
    the step is materialized, so that its cache holds)."""
    resolver = stale_resolver(context.instance, _graph(context))
    return {pk for pk in partition_keys if resolver.get_status(key, pk).name == "FRESH"}


def _latest_event(context, key: dg.AssetKey, partition_key: str | None):  # noqa: ANN001
    if partition_key is None:
        return context.instance.get_latest_materialization_event(key)
    records = context.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition_key]), limit=1)
    return records.records[0].event_log_entry if records.records else None


def previous_if_fresh(
    context,  # noqa: ANN001 - AssetExecutionContext
    key: dg.AssetKey | str | None = None,
    exists: Callable[[], bool] | None = None,
    partition_key: str | None = None,
) -> dg.MaterializeResult | None:
    """The previous materialization of ``key`` reported again when Dagster says it is FRESH and its
    output still ``exists()``; None when the asset must (re)build. Logs why."""
    key = dg.AssetKey.from_coercible(key) if key is not None else context.asset_key
    name = key.to_user_string()
    if forced(context):
        context.log.info(f"{name}: rebuild forced by the run tag {FORCE_TAG}")
        return None
    status, causes = stale_status(context, key, partition_key)
    if status.name != "FRESH":
        why = "; ".join(sorted({f"{c.key.asset_key.to_user_string()}: {c.reason}" for c in causes})) or status.name.lower()
        context.log.info(f"{name}: {status.name.lower()} ({why}): rebuilding")
        return None
    event = _latest_event(context, key, partition_key)
    if event is None or event.asset_materialization is None:
        return None
    if exists is not None and not exists():
        context.log.info(f"{name}: up to date in Dagster but its output is gone from the lake: rebuilding")
        return None
    mat = event.asset_materialization
    metadata = dict(mat.metadata)
    metadata[REUSED] = dg.MetadataValue.bool(True)
    version = (mat.tags or {}).get("dagster/data_version")
    context.log.info(f"{name}: code and inputs unchanged since its last materialization: output reused")
    return dg.MaterializeResult(
        asset_key=key, metadata=metadata, data_version=dg.DataVersion(version) if version else None)


def input_versions(context, keys: Iterable[dg.AssetKey | str]) -> dict[str, str]:  # noqa: ANN001
    """The current data versions of upstream assets (to fold into a data version)."""
    out = {}
    for k in keys:
        key = dg.AssetKey.from_coercible(k)
        event = context.instance.get_latest_materialization_event(key)
        tags = (event.asset_materialization.tags or {}) if event and event.asset_materialization else {}
        out[key.to_user_string()] = tags.get("dagster/data_version", "")
    return out


def files_exist(lake, *keys: str) -> Callable[[], bool]:  # noqa: ANN001
    """An ``exists`` callable: every key (object, or prefix holding objects) is in the lake."""
    def check() -> bool:
        return all(lake.exists(k) or bool(lake.list(k)) for k in keys)

    return check


def module_path(module_file: str) -> Path:
    return Path(module_file).resolve().parent


# ------------------------------------------------------------------------------------------ checks
CHECK_INPUTS = "check_inputs"  # check metadata: a fingerprint of everything the verdict was computed from


def check_fingerprint(context, *parts: object) -> str:  # noqa: ANN001 - AssetCheckExecutionContext
    """A fingerprint of what a check judges: the check, the current data versions of its asset and of the
    asset's parents (from Dagster), and ``parts`` (the check's code version, the files it reads)."""
    check_key = context.check_specs[0].key
    asset = check_key.asset_key
    graph = context.op_execution_context.job_def.asset_layer.asset_graph
    parents = sorted(graph.get(asset).parent_keys, key=lambda k: k.to_user_string()) if graph.has(asset) else []
    versions = input_versions(context, [asset, *parents])
    return data_version(check_key.to_user_string(), versions, *parts).value


def passed_before(context, fingerprint: str) -> dg.AssetCheckResult | None:  # noqa: ANN001
    """The check's last passing result reported again when it was computed from exactly the same inputs
    (``check_fingerprint``): judging the same model on the same data again gives the same verdict, so an
    expensive recount runs once per change, not once per run. None when anything changed, when the last
    evaluation did not pass, or when the run is forced (``ecommerce/force``)."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    if forced(context):
        return None
    check_key = context.check_specs[0].key
    history = context.instance.event_log_storage.get_asset_check_execution_history(
        check_key, limit=1, status={AssetCheckExecutionRecordStatus.SUCCEEDED})
    event = history[0].event if history else None
    evaluation = event.dagster_event.event_specific_data if event is not None and event.dagster_event else None
    if evaluation is None or not getattr(evaluation, "passed", False):
        return None
    metadata = dict(evaluation.metadata)
    previous = metadata.get(CHECK_INPUTS)
    if previous is None or previous.value != fingerprint:
        return None
    metadata[REUSED] = dg.MetadataValue.bool(True)
    context.log.info(f"{check_key.name}: passed on these same inputs in run {history[0].run_id}: verdict reused")
    return dg.AssetCheckResult(passed=True, metadata=metadata, description=evaluation.description)


def with_fingerprint(result: dg.AssetCheckResult, fingerprint: str) -> dg.AssetCheckResult:
    """``result`` with the fingerprint of its inputs in its metadata (what ``passed_before`` compares)."""
    metadata = {**(result.metadata or {}), CHECK_INPUTS: dg.MetadataValue.text(fingerprint)}
    return dg.AssetCheckResult(passed=result.passed, severity=result.severity, metadata=metadata,
                               description=result.description, asset_key=result.asset_key,
                               check_name=result.check_name)
