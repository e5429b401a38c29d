"""Small crafted source files run through the REAL landing and clean transform (ingestion.raw.land_source,
lake.clean.run_clean) into a DuckDB warehouse of their own: what the analytics and EDA tests build their
expectations on, by hand."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

HEADER = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")


def write_csv(path: Path, rows) -> Path:  # noqa: ANN001
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


def cleaned_warehouse(work: Path, rows, name: str = "crafted.csv", warehouse_cls=None, **warehouse_options):  # noqa: ANN001, ANN201
    """Land a CSV of ``rows`` in a fresh local lake under ``work`` and clean every month it holds with the
    platform's own SQL; returns the DuckDB warehouse (its lake: ``warehouse.lake``)."""
    from ecommerce_platform.ingestion.raw import ResolvedSource, land_source
    from ecommerce_platform.lake.clean import run_clean
    from ecommerce_platform.resources.lake import LocalLake
    from ecommerce_platform.resources.warehouse import DuckDBWarehouse
    from ecommerce_platform_tests.conftest import platform_environment

    source = write_csv(work / "in" / name, rows)
    lake = LocalLake(path=str(work / "lake"))
    cls = warehouse_cls or DuckDBWarehouse
    warehouse = cls(lake=lake, path=str(work / "warehouse.duckdb"), memory_limit="1GB", **warehouse_options)
    with platform_environment(work / "data"):
        land_source(lake, ResolvedSource(source, "env", "crafted test file"), ingest_date=dt.date(2024, 1, 2))
        run_clean(warehouse)
    return warehouse


# Every branch of the sale definition (is_sale: not a cancellation, quantity > 0, unit price > 0, a real
# product; is_return: a cancelled product line with quantity < 0), on three days of two months.
# The expectations of test_sale_definition.py are worked out by hand from these lines.
SALE_DEFINITION_ROWS = [
    # --- 2011-03-01
    ("536001", "85123A", "WHITE HANGING HEART", 6, "2011-03-01 09:00", 2.55, "17850", "United Kingdom"),  # L1 sale 15.30
    ("536001", "22423", "REGENCY CAKESTAND", 2, "2011-03-01 09:00", 12.75, "17850", "United Kingdom"),  # L2 sale 25.50
    ("536001", "POST", "POSTAGE", 1, "2011-03-01 09:00", 18.00, "17850", "United Kingdom"),  # L3 postage
    ("536001", "85123A", "WHITE HANGING HEART", 6, "2011-03-01 09:00", 2.55, "17850", "United Kingdom"),  # L4 = L1
    ("536002", "22423", "REGENCY CAKESTAND", 1, "2011-03-01 10:00", 12.75, None, "United Kingdom"),  # L5 guest sale
    ("536002", "DOT", "DOTCOM POSTAGE", 1, "2011-03-01 10:00", 30.00, None, "United Kingdom"),  # L6 postage
    ("536003", "21731", "RED TOADSTOOL LED", 3, "2011-03-01 11:00", 1.65, "12345", "France"),  # L7 sale 4.95
    ("536003", "C2", "CARRIAGE", 1, "2011-03-01 11:00", 50.00, "12345", "France"),  # L8 carriage
    ("536004", "AMAZONFEE", "AMAZON FEE", 1, "2011-03-01 12:00", 100.00, None, "United Kingdom"),  # L9 fee
    ("536005", "BANK CHARGES", "Bank Charges", 1, "2011-03-01 12:30", 15.00, "12345", "France"),  # L10 fee
    ("536006", "GIFT_0001_20", "Dotcomgiftshop Gift Voucher 20.00", 1, "2011-03-01 13:00", 16.67, None,
     "United Kingdom"),  # L11 voucher
    ("536007", "22139", "RETROSPOT TEA SET", 5, "2011-03-01 14:00", 0.00, "17850", "United Kingdom"),  # L12 free
    ("536008", "22139", "RETROSPOT TEA SET", 1, "2011-03-01 14:30", -2.00, "17850", "United Kingdom"),  # L13 quarantined
    ("536009", "21731", "RED TOADSTOOL LED", 2, "2011-03-01 15:00", 1.65, None, None),  # L14 guest, no country: 3.30
    ("536010", "21731", "damaged", -4, "2011-03-01 16:00", 0.00, None, "United Kingdom"),  # L15 stock adjustment
    # --- 2011-03-02
    ("C536011", "85123A", "WHITE HANGING HEART", 2, "2011-03-02 09:00", 2.55, "17850", "United Kingdom"),  # L16 cancelled, qty > 0
    ("C536012", "22423", "REGENCY CAKESTAND", -1, "2011-03-02 10:00", 12.75, "17850", "United Kingdom"),  # L17 return 12.75
    ("C536013", "M", "Manual", -1, "2011-03-02 11:00", 5.00, "12345", "France"),  # L18 cancelled manual line
    ("536014", "22423", "REGENCY CAKESTAND", 4, "2011-03-02 12:00", 12.75, "12345", "France"),  # L19 sale 51.00
    ("536014", "85123A", "WHITE HANGING HEART", 1, "2011-03-02 12:00", 2.95, "12345", "France"),  # L20 sale 2.95
    # --- 2011-04-05
    ("536015", "85123A", "WHITE HANGING HEART", 12, "2011-04-05 10:00", 2.55, "17850", "United Kingdom"),  # L21 sale 30.60
    ("536016", "21731", "RED TOADSTOOL LED", 10, "2011-04-05 11:00", 1.65, "55555", None),  # L22 sale 16.50
    ("536016", "22139", "RETROSPOT TEA SET", 1, "2011-04-05 11:00", 4.95, "55555", None),  # L23 sale 4.95
    ("536017", "22139", "RETROSPOT TEA SET", 2, "2011-04-05 12:00", 4.95, "55555", "Germany"),  # L24 sale 9.90
]
