"""Every SQL file of the EDA layer runs on Trino too (transpiled with to_trino, parsed as Trino); each
asset's SQL reads only what the asset depends on; money is never summed from the clean table."""

import pytest
import sqlglot
from sqlglot import exp

from ecommerce_platform.eda.queries import sql_names, sql_text
from ecommerce_platform.resources.sql_dialect import Sql, parse_trino, read_sql, to_trino

PARAMS = {"qty_lo": 0.5, "qty_hi": 500.0, "price_lo": 0.2, "price_hi": 25.0, "limit": 10, "step": 6,
          "extreme_quantity": 10_000, "extreme_unit_price": 5_000.0, "unspecified": "Unspecified",
          "pattern": "(Â[\u00a0-\u00bf]|Ã[\u0080-\u00bf]|â€)", "column": Sql("description")}
# What each asset's SQL may read: the tables and views of the assets it depends on.
PUBLISHED = {"clean_parquet": "transactions", "quarantine": "quarantine", "raw_lines": "raw_lines"}


def _rendered(name: str) -> str:
    text = read_sql("ecommerce_platform.eda", name)
    return sql_text(name, **{k: v for k, v in PARAMS.items() if "{" + k + "}" in text})


def test_the_layer_has_its_sql_files():
    assert {"customer_features.sql", "quality_by_month.sql", "profile_sample.sql", "raw_sample.sql",
            "sales_by_day.sql", "mojibake_counts.sql", "extreme_lines.sql", "clean_counts.sql"} <= set(sql_names())


@pytest.mark.parametrize("name", sql_names())
def test_sql_is_trino_portable(name):
    trino = to_trino(_rendered(name))
    trees = parse_trino(trino)
    assert len(trees) == 1, name
    assert "{" not in trino
    assert "REGEXP_MATCHES" not in trino.upper()  # Trino's is REGEXP_LIKE


def test_render_refuses_unfilled_placeholders():
    with pytest.raises(KeyError, match="qty_hi"):
        sql_text("quality_by_month.sql", qty_lo=1.0, price_lo=0.1, price_hi=10.0, extreme_quantity=1,
                 extreme_unit_price=1.0, unspecified="Unspecified")


def test_values_become_literals_never_sql():
    sql = sql_text("quality_totals.sql", unspecified="x') OR (1=1")
    assert "country <> 'x'') OR (1=1'" in sql


def _reads(name: str) -> set[str]:
    tree = sqlglot.parse_one(_rendered(name), read="duckdb")
    ctes = {c.alias_or_name for c in tree.find_all(exp.CTE)}
    return {t.name for t in tree.find_all(exp.Table)} - ctes


def _asset_files(files) -> list[str]:  # noqa: ANN001
    return [f.split("/", 1)[1] for f in files if f.startswith("sql/")]


@pytest.mark.parametrize("asset", ["data_quality_report", "eda_figures", "data_profile"])
def test_each_assets_sql_reads_only_what_it_depends_on(asset):
    from ecommerce_platform.eda import assets

    definition = getattr(assets, asset)
    deps = {k.to_user_string() for k in definition.asset_deps[definition.key]}
    allowed = {PUBLISHED.get(d, d) for d in deps}
    files = {"data_quality_report": assets.QUALITY_FILES, "eda_figures": assets.FIGURES_FILES,
             "data_profile": assets.PROFILE_FILES}[asset]
    read = set().union(*(_reads(f) for f in _asset_files(files)))
    assert read <= allowed, (asset, read - allowed)
    assert read, asset


def test_every_sql_file_belongs_to_an_asset_code_version():
    from ecommerce_platform.eda import assets

    used = set(_asset_files((*assets.QUALITY_FILES, *assets.FIGURES_FILES, *assets.PROFILE_FILES)))
    assert used == set(sql_names())


@pytest.mark.parametrize("name", sql_names())
def test_no_revenue_is_computed_from_the_clean_table(name):
    """Money of sales and returns comes from the analytics views; the clean table is only counted."""
    tree = sqlglot.parse_one(_rendered(name), read="duckdb")
    if "transactions" not in _reads(name):
        return
    for agg in tree.find_all(exp.Sum):
        columns = {c.name for c in agg.find_all(exp.Column)}
        filters = {c.name for c in (agg.parent.find_all(exp.Column) if isinstance(agg.parent, exp.Filter) else [])}
        assert not ({"line_total"} & columns and {"is_sale", "is_return"} & (columns | filters)), (name, agg.sql())
