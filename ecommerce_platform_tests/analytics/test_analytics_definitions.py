"""How the analytics layer is declared: one asset per view (each depending on what its SQL reads, each
with its own code version), the dashboard on the views it reads, cadence arrival, the writer pool, the
engine tag, blocking checks; nothing is called athena_views any more."""

from __future__ import annotations

import dagster as dg

from ecommerce_platform.analytics.views import VIEWS


def _defs() -> dg.Definitions:
    from ecommerce_platform.analytics.definitions import definitions
    from ecommerce_platform.config import load_settings
    from ecommerce_platform.resources import build_resources

    settings = load_settings()
    return dg.Definitions.merge(definitions(settings), dg.Definitions(resources=build_resources(settings)))


def test_one_asset_per_view_and_the_dashboard():
    from ecommerce_platform.operations import CADENCE_TAG, ENGINE_TAG, WRITER_POOL

    graph = _defs().resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.materializable_asset_keys}
    assert keys == {*VIEWS, "sales_dashboard"}
    versions = set()
    for key in graph.materializable_asset_keys:
        node = graph.get(key)
        name = key.to_user_string()
        assert node.group_name == "analytics" and node.tags[CADENCE_TAG] == "arrival", name
        assert node.tags[ENGINE_TAG] == "warehouse" and node.pools == {WRITER_POOL}, name
        assert node.description and node.owners and node.automation_condition is not None, name
        versions.add(node.code_version)
        parents = {p.to_user_string() for p in node.parent_keys}
        if name == "sale_lines":
            assert parents == {"clean_parquet"}
        elif name == "sales_dashboard":
            assert parents == {"daily_sales", "monthly_sales", "popular_products", "sales_by_country",
                               "top_customers", "sales_kpis"}
        else:
            assert parents == {"sale_lines"}, name
    assert len(versions) == len(keys)  # each view its own code version


def test_code_version_follows_the_views_own_sql_file(monkeypatch):
    from ecommerce_platform import recompute
    from ecommerce_platform.analytics import assets

    before = {v: assets.view_code_version(v) for v in VIEWS}
    real = recompute._package_file

    def edited(package: str, name: str) -> bytes:
        data = real(package, name)
        return data + b"\n-- edited" if name == "sql/daily_sales.sql" else data

    monkeypatch.setattr(recompute, "_package_file", edited)
    after = {v: assets.view_code_version(v) for v in VIEWS}
    assert {v for v in VIEWS if before[v] != after[v]} == {"daily_sales"}


def test_checks_are_blocking_and_guard_the_views():
    from ecommerce_platform.analytics import assets

    specs = {spec.name: spec for check in assets.CHECKS for spec in check.check_specs}
    assert set(specs) == {"views_reconcile", "net_revenue_plausible", *(f"{v}_not_empty" for v in VIEWS)}
    assert all(spec.blocking for spec in specs.values())
    assert specs["views_reconcile"].asset_key == dg.AssetKey("sales_kpis")
    for v in VIEWS:
        assert specs[f"{v}_not_empty"].asset_key == dg.AssetKey(v)


def test_the_dashboard_depends_on_exactly_the_views_it_queries():
    from ecommerce_platform.analytics.dashboard import QUERIES, VIEWS_READ
    from ecommerce_platform.analytics.lineage import relations_read

    read = set().union(*(relations_read(sql) for sql in QUERIES.values()))
    assert read == set(VIEWS_READ)
