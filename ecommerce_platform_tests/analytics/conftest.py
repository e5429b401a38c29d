"""Fixtures of the analytics tests: the analytics assets materialized once on the session's real lake
(on an instance kept for the session, so that a second run can be asked to reuse them), and an
independent computation of the figures straight from the raw reference file."""

from __future__ import annotations

import pandas as pd
import pytest

# Written out here on purpose (not imported from schema.py): the reference computation applies
# the sales definition independently of the platform's code.
NON_PRODUCT = {"POST", "DOT", "C2", "M", "S", "B", "D", "CRUK", "PADS", "BANK CHARGES", "AMAZONFEE",
               "ADJUST", "ADJUST2", "TEST001", "TEST002",
               "23444", "23574", "22016"}  # next-day carriage, packing charge, a gift voucher
NO_COUNTRY = "Unspecified"  # what the reference file (and the clean zone) says when a line has no country


@pytest.fixture(scope="session")
def analytics_run(clean_lake):
    """(data_dir, resources, result, instance): the nine views, the dashboard and every check
    materialized on the real file, once, on an instance that the session keeps."""
    import dagster as dg

    from ecommerce_platform.analytics import assets
    from ecommerce_platform_tests.conftest import platform_environment

    data_dir, resources = clean_lake
    with dg.DagsterInstance.ephemeral() as instance:
        with platform_environment(data_dir):
            result = dg.materialize([*assets.ASSETS, *assets.CHECKS], resources=resources, instance=instance)
        assert result.success
        yield data_dir, resources, result, instance


@pytest.fixture(scope="session")
def reference(real_source) -> dict:
    """The figures computed in pandas from the raw file: exact duplicates removed, then
    sale = not cancelled, quantity > 0, price > 0, product code not in the non-product list;
    return = cancelled, quantity < 0, a product. Amounts in integer pence (exact)."""
    raw = pd.read_parquet(real_source).drop_duplicates()
    df = pd.DataFrame({
        "invoice": raw["InvoiceNo"].astype(str).str.strip(),
        "code": raw["StockCode"].astype(str).str.strip().str.upper(),
        "description": raw["Description"].str.strip(),
        "qty": raw["Quantity"].astype("int64"),
        "price": raw["UnitPrice"].astype(float),
        "customer": raw["CustomerID"].map(lambda v: None if pd.isna(v) else str(int(v))),
        "country": raw["Country"].str.strip(),
        "ts": pd.to_datetime(raw["InvoiceDate"]),
    })
    df = df[df["price"] >= 0]  # the two negative-price bad-debt adjustments are quarantined
    df["date"] = df["ts"].dt.normalize()
    df["month"] = df["ts"].dt.to_period("M").dt.to_timestamp()
    cancelled = df["invoice"].str.startswith("C")
    product = ~(df["code"].isin(NON_PRODUCT) | df["code"].str.startswith("GIFT_"))
    df["pence"] = (df["qty"] * df["price"] * 100).round().astype("int64")
    sale = (~cancelled) & (df["qty"] > 0) & (df["price"] > 0) & product
    ret = cancelled & (df["qty"] < 0) & product
    sales, returns = df[sale], df[ret]

    gross, ret_value = int(sales["pence"].sum()), int(-returns["pence"].sum())
    return {
        "sales": sales,
        "returns": returns,
        "gross_pence": gross,
        "returns_pence": ret_value,
        "net_pence": gross - ret_value,
        "orders": sales["invoice"].nunique(),
        "customers": sales["customer"].nunique(),
        "countries": sales.loc[sales["country"] != NO_COUNTRY, "country"].nunique(),
        "units": int(sales["qty"].sum()),
        "net_by_day": _net(sales, returns, "date"),
        "net_by_month": _net(sales, returns, "month"),
        "net_by_country": _net(sales, returns, "country"),
        "net_by_product": _net(sales, returns, "code"),
        "net_by_customer": _net(sales.dropna(subset=["customer"]), returns.dropna(subset=["customer"]), "customer"),
        "orders_by_day": sales.groupby("date")["invoice"].nunique(),
    }


def _net(sales: pd.DataFrame, returns: pd.DataFrame, by: str) -> pd.Series:
    """Net revenue in pence per group: sales minus the (positive) value of returns."""
    gross = sales.groupby(by)["pence"].sum()
    back = -returns.groupby(by)["pence"].sum()
    return gross.sub(back, fill_value=0).astype("int64")
