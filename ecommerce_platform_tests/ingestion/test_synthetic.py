"""The synthetic Online-Retail generator: schema, determinism, atomic write and the realism the
platform's layers rely on (messiness to clean, high-value invoices to predict, tastes to recommend)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ecommerce_platform.ingestion import synthetic
from ecommerce_platform_tests.conftest import REAL_SOURCE

ROWS = 50_000
SEED = 7
SPECIAL = {"POST", "DOT", "M", "C2", "D", "BANK CHARGES", "AMAZONFEE", "B"}
EXPECTED_SCHEMA = pa.schema([
    ("InvoiceNo", pa.string()), ("StockCode", pa.string()), ("Description", pa.string()),
    ("Quantity", pa.int64()), ("InvoiceDate", pa.string()), ("UnitPrice", pa.float64()),
    ("CustomerID", pa.float64()), ("Country", pa.string()),
])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return synthetic.generate(tmp_path_factory.mktemp("synthetic") / "online_retail.parquet", rows=ROWS, seed=SEED)


@pytest.fixture(scope="module")
def df(generated) -> pd.DataFrame:
    return pd.read_parquet(generated)


@pytest.fixture(scope="module")
def sales(df) -> pd.DataFrame:
    """Product sale lines (not cancelled, positive quantity and price, a real product)."""
    s = df[~df.InvoiceNo.str.startswith(("C", "A")) & (df.Quantity > 0) & (df.UnitPrice > 0)
           & ~df.StockCode.isin(SPECIAL)].copy()
    s["line_total"] = s.Quantity * s.UnitPrice
    s["ts"] = pd.to_datetime(s.InvoiceDate)
    return s


@pytest.fixture(scope="module")
def invoices(sales) -> pd.DataFrame:
    g = sales.groupby("InvoiceNo").agg(
        total=("line_total", "sum"), lines=("line_total", "size"), customer=("CustomerID", "first"),
        country=("Country", "first"), ts=("ts", "first"))
    g["high_value"] = g.total >= 1000
    return g.sort_values("ts", kind="stable")


# --- file contract ------------------------------------------------------------------------------

def test_schema_and_dtypes_equal_the_real_file(generated, df):
    schema = pq.read_schema(generated)
    assert schema.remove_metadata().equals(EXPECTED_SCHEMA)
    if REAL_SOURCE.exists():
        assert schema.remove_metadata().equals(pq.read_schema(REAL_SOURCE).remove_metadata())
    assert list(df.columns) == list(synthetic.COLUMNS)
    assert df.dtypes.astype(str).tolist() == ["object", "object", "object", "int64", "object", "float64",
                                              "float64", "object"]
    assert len(df) == ROWS
    assert df.InvoiceDate.str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()


def test_deterministic_for_a_seed(tmp_path, generated):
    again = synthetic.generate(tmp_path / "again.parquet", rows=ROWS, seed=SEED)
    assert sha256(again) == sha256(generated)
    other = synthetic.generate(tmp_path / "other.parquet", rows=ROWS, seed=SEED + 1)
    assert sha256(other) != sha256(generated)
    assert not pd.read_parquet(other).equals(pd.read_parquet(generated))


def test_atomic_write_leaves_only_the_target(tmp_path):
    target = tmp_path / "sub" / "retail.parquet"
    target.parent.mkdir()
    target.write_bytes(b"old contents")
    out = synthetic.generate(str(target), rows=2_000, seed=3)
    assert out == target and isinstance(out, Path)
    assert [p.name for p in target.parent.iterdir()] == ["retail.parquet"]
    assert len(pd.read_parquet(target)) == 2_000


def test_small_sizes_other_ranges_and_bad_arguments(tmp_path):
    small = synthetic.synthesize(rows=1_000, seed=1, start="2011-03-01", end="2011-05-31")
    assert len(small) == 1_000
    ts = pd.to_datetime(small.InvoiceDate)
    assert ts.min() >= pd.Timestamp("2011-03-01") and ts.max() < pd.Timestamp("2011-06-01")
    with pytest.raises(ValueError):
        synthetic.synthesize(rows=10)
    with pytest.raises(ValueError):
        synthetic.synthesize(rows=1_000, start="2011-05-01", end="2011-04-01")


# --- invoices and calendar ----------------------------------------------------------------------

def test_invoice_numbers_are_six_digits_increasing_with_time(df):
    assert df.InvoiceNo.str.fullmatch(r"[CA]?\d{6}").all()
    assert set(df.loc[df.InvoiceNo.str.startswith("A"), "StockCode"]) == {"B"}
    first = (df.assign(num=df.InvoiceNo.str[-6:].astype(int), ts=pd.to_datetime(df.InvoiceDate))
             .groupby("num").ts.min().sort_index())
    assert first.is_monotonic_increasing
    assert pd.to_datetime(df.InvoiceDate).is_monotonic_increasing  # rows sorted by time


def test_basket_sizes_are_skewed_around_fifteen_lines(invoices):
    lines = invoices.lines
    assert 10 <= lines.median() <= 20
    assert lines.mean() > lines.median()
    assert lines.quantile(0.9) > 2.5 * lines.median()
    assert (lines == 1).sum() > 0


def test_calendar_business_hours_no_saturdays_and_autumn_peak(df):
    ts = pd.to_datetime(df.InvoiceDate)
    assert ts.min() >= pd.Timestamp("2010-12-01") and ts.max() < pd.Timestamp("2011-12-10")
    assert (ts.dt.dayofweek == 5).sum() == 0
    assert ((ts.dt.hour >= 7) & (ts.dt.hour <= 20)).mean() >= 0.99
    assert ts.dt.second.eq(0).all()
    per_day = ts.dt.normalize().value_counts()
    month = per_day.index.month
    peak = per_day[np.isin(month, (9, 10, 11))].mean()
    base = per_day[np.isin(month, (1, 2, 3, 4, 5, 6, 7, 8))].mean()
    assert peak > 1.3 * base
    assert ts.dt.month.isin((9, 10, 11)).mean() > 0.3
    assert not ((ts.dt.month == 12) & (ts.dt.day == 25)).any()  # shut for Christmas


# --- customers ----------------------------------------------------------------------------------

def test_customers_ids_repeat_purchases_and_countries(df, invoices):
    ids = df.CustomerID.dropna()
    assert ids.between(12346, 18287).all() and (ids == ids.round()).all()
    n_customers = ids.nunique()
    assert 300 <= n_customers <= 500  # scales with rows: ~4,370 at the real file's 541,909 rows
    per_customer = invoices.dropna(subset=["customer"]).groupby("customer").size().sort_values(ascending=False)
    assert (per_customer >= 2).mean() > 0.4
    top = per_customer.head(max(1, len(per_customer) // 10)).sum() / per_customer.sum()
    assert top > 0.3  # Pareto-like: the top tenth of customers places about 40 % of the invoices
    uk = (df.Country == "United Kingdom").mean()
    assert 0.85 <= uk <= 0.95
    assert df.Country.nunique() >= 20
    assert (df.dropna(subset=["CustomerID"]).groupby("CustomerID").Country.nunique() == 1).all()


def test_guest_checkouts(df, invoices):
    guest = df.CustomerID.isna()
    assert 0.22 <= guest.mean() <= 0.28
    assert (df.loc[guest, "Country"] == "United Kingdom").mean() > 0.95
    guest_inv = invoices[invoices.customer.isna()]
    known_inv = invoices[invoices.customer.notna()]
    # guests buy either a couple of things or a large "dotcom" order
    assert (guest_inv.lines > 40).mean() > (known_inv.lines > 40).mean()
    assert guest_inv.lines.quantile(0.9) > known_inv.lines.quantile(0.9)


def test_tastes_are_stable_so_a_recommender_can_learn(sales):
    catalog = synthetic.product_catalog(rows=ROWS, seed=SEED)
    assert catalog.StockCode.is_unique
    known = sales.dropna(subset=["CustomerID"]).copy()
    known["category"] = known.StockCode.map(dict(zip(catalog.StockCode, catalog.category)))
    assert known.category.notna().all()
    counts = known.groupby(["CustomerID", "category"]).size().unstack(fill_value=0)
    n = counts.sum(axis=1)
    regular = n >= 20
    top = counts[regular].idxmax(axis=1)
    top_share = counts[regular].max(axis=1) / n[regular]
    overall = known.category.value_counts(normalize=True)
    lift = top_share / overall.reindex(top).to_numpy()  # vs. buying that category at the overall rate
    assert regular.sum() > 100
    assert lift.median() > 2.5
    assert top_share.median() > 0.35

    # re-buys: items of a customer's later invoices already bought in their first one
    num = known.InvoiceNo.astype(int)
    first = num == num.groupby(known.CustomerID).transform("min")
    seen = set(zip(known.CustomerID[first], known.StockCode[first]))
    later = known[~first]
    rebuy = np.mean([pair in seen for pair in zip(later.CustomerID, later.StockCode)])
    shuffled = later.CustomerID.sample(frac=1.0, random_state=0).to_numpy()
    baseline = np.mean([pair in seen for pair in zip(shuffled, later.StockCode)])
    assert rebuy > 3 * baseline


def test_high_value_invoices_are_rare_and_predictable(invoices):
    hv = invoices.high_value
    assert 0.03 <= hv.mean() <= 0.08
    # customer history: a customer's earlier high-value invoice predicts the next one
    known = invoices.dropna(subset=["customer"]).copy()
    known["had_hv_before"] = known.groupby("customer").high_value.transform(
        lambda s: s.shift(1, fill_value=False).astype(int).cummax().astype(bool))
    assert known[known.had_hv_before].high_value.mean() > 3 * known[~known.had_hv_before].high_value.mean()
    # country and basket size
    foreign = invoices.country != "United Kingdom"
    assert invoices[foreign].high_value.mean() > invoices[~foreign].high_value.mean()
    assert invoices[invoices.lines > 50].high_value.mean() > 5 * hv.mean()
    assert invoices[invoices.lines <= 10].high_value.mean() < hv.mean() / 5


# --- products -----------------------------------------------------------------------------------

def test_products_codes_prices_quantities_descriptions(df, sales):
    codes = sales.StockCode.unique()
    assert 1_000 <= len(codes) <= 3_000
    assert pd.Series(codes).str.fullmatch(r"\d{5}[A-Z]?").all()
    assert sales.Description.notna().all()
    assert (sales.Description == sales.Description.str.upper()).all()
    # stable prices: the usual price of a product covers most of its lines, with a few variants
    mode_share = sales.groupby("StockCode").UnitPrice.agg(lambda p: p.value_counts(normalize=True).iloc[0])
    assert mode_share.median() >= 0.6
    assert sales.groupby("StockCode").UnitPrice.nunique().median() <= 4
    assert 1.0 <= sales.UnitPrice.median() <= 3.5
    # a few products sold under two descriptions
    variants = sales.groupby("StockCode").Description.nunique()
    assert 1 <= (variants == 2).sum() <= 0.1 * len(variants)
    # skewed quantities in packs
    top = sales.Quantity.value_counts().head(8).index
    assert {1, 2, 12, 6}.issubset(set(top))
    assert sales.Quantity.isin([1, 2, 3, 4, 6, 8, 10, 12, 24, 36, 48, 72, 96, 144]).mean() > 0.85
    assert sales.Quantity.median() < sales.Quantity.mean()


def test_null_descriptions_have_zero_price(df):
    nulls = df[df.Description.isna()]
    assert 0.002 <= len(nulls) / len(df) <= 0.004
    assert (nulls.UnitPrice == 0).all() and nulls.CustomerID.isna().all()


# --- messiness ----------------------------------------------------------------------------------

def test_cancellations_undo_earlier_purchases(df):
    canc = df[df.InvoiceNo.str.startswith("C")]
    assert 0.015 <= len(canc) / len(df) <= 0.02
    assert (canc.Quantity < 0).all()
    assert canc.CustomerID.notna().mean() > 0.85
    products = canc[~canc.StockCode.isin(SPECIAL) & canc.CustomerID.notna()]
    bought = df[~df.InvoiceNo.str.startswith(("C", "A")) & (df.Quantity > 0)]
    first_buy = bought.groupby(["CustomerID", "StockCode"]).InvoiceDate.min()
    key = pd.MultiIndex.from_frame(products[["CustomerID", "StockCode"]])
    earlier = first_buy.reindex(key).to_numpy()
    assert pd.notna(earlier).all()
    assert (earlier <= products.InvoiceDate.to_numpy()).all()


def test_non_product_lines(df):
    expected = {"POST": "POSTAGE", "M": "Manual", "DOT": "DOTCOM POSTAGE", "BANK CHARGES": "Bank Charges",
                "AMAZONFEE": "AMAZON FEE", "C2": "CARRIAGE", "D": "Discount"}
    for code, description in expected.items():
        rows = df[df.StockCode == code]
        assert len(rows) > 0, code
        assert (rows.Description == description).all(), code
        assert (rows.UnitPrice > 0).all(), code
    assert df[df.StockCode == "D"].InvoiceNo.str.startswith("C").all()
    assert df[df.StockCode == "AMAZONFEE"].InvoiceNo.str.startswith("C").all()
    assert df[df.StockCode == "DOT"].CustomerID.isna().all()
    assert (df[df.StockCode == "POST"].Country != "United Kingdom").mean() > 0.8


def test_stock_adjustments(df):
    adj = df[~df.InvoiceNo.str.startswith("C") & (df.Quantity < 0)]
    assert 0.003 <= len(adj) / len(df) <= 0.008
    assert (adj.UnitPrice == 0).all() and adj.CustomerID.isna().all()
    notes = adj.Description.dropna()
    assert len(notes) > 0 and (notes != notes.str.upper()).any()  # hand-typed notes, not product names


def test_exact_duplicate_rows(df):
    dups = df.duplicated(keep="first").sum()
    assert 0.008 * len(df) <= dups <= 0.015 * len(df)


def test_bad_debt_rows(df):
    negative = df[df.UnitPrice < 0]
    assert len(negative) == 2
    assert (negative.StockCode == "B").all() and (negative.Description == "Adjust bad debt").all()
    assert negative.InvoiceNo.str.startswith("A").all()
