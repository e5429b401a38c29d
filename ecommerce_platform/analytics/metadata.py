"""What the warehouse says about a view, as Dagster metadata: its columns and types
(``dagster/column_schema``), rows, table name, column lineage derived from its SQL, a small preview
(floats rounded to 2 decimals); and where a person opens a file of the lake."""

import dagster as dg

from ecommerce_platform.analytics.lineage import view_lineage
from ecommerce_platform.analytics.views import RELATION_ASSETS, column_types, plain, preview, summary
from ecommerce_platform.resources.warehouse import Warehouse


def location(lake, key: str):  # noqa: ANN001, ANN202
    """Where a person opens an object of the lake: a path locally, a URL (s3://) in aws."""
    uri = lake.uri(key)
    return dg.MetadataValue.url(uri) if lake.is_remote else dg.MetadataValue.path(uri)


def view_metadata(warehouse: Warehouse, name: str) -> dict:
    """What the warehouse says about the view now: columns and types, rows, a preview, lineage."""
    columns = column_types(warehouse, name)
    schema = dg.TableSchema(columns=[dg.TableColumn(c, t.lower()) for c, t in columns])
    counted = summary(warehouse, name)
    head = preview(warehouse, name)
    lineage = dg.TableColumnLineage(deps_by_column={
        column: [dg.TableColumnDep(asset_key=dg.AssetKey(RELATION_ASSETS[rel]), column_name=c) for rel, c in deps]
        for column, deps in view_lineage(name).items()
    })
    metadata: dict = {
        "dagster/column_schema": schema,
        "dagster/row_count": dg.MetadataValue.int(counted["rows"]),
        "dagster/table_name": warehouse.table_name(name),
        "dagster/column_lineage": lineage,
        "preview": dg.MetadataValue.table(
            records=[dg.TableRecord({k: plain(v) for k, v in r.items()}) for r in head.to_dict("records")],
            schema=schema),
        "engine": warehouse.engine,
    }
    if warehouse.engine == "duckdb":  # the database file any DuckDB client opens to query the view
        metadata["dagster/uri"] = dg.MetadataValue.path(str(warehouse.path))
    if counted.get("net_revenue") is not None:
        metadata["net_revenue_gbp"] = dg.MetadataValue.float(counted["net_revenue"])
    return metadata
