"""Synthetic "Online Retail" transactions for a fresh, offline machine with no source data.

``generate(path, rows=200_000, seed=7)`` writes a Parquet file with exactly the columns and dtypes of
the UCI "Online Retail" file (InvoiceNo, StockCode, Description, Quantity, InvoiceDate, UnitPrice,
CustomerID, Country) and with its messiness, so that every layer of the platform has something to
clean and some signal to learn:

* invoices: 6-digit numbers increasing with time, skewed basket sizes (median ~15 lines), business
  hours, no Saturdays, closed over Christmas, sales rising to a Sep-Nov peak;
* customers: 5-digit ids (12346-18287, stored as float), Pareto-like repeat purchasing, stable tastes
  (a few preferred categories and a personal set of favourite products), ~90 % of rows from the
  United Kingdom, a small set of wholesale customers with large invoices (so a few % of invoices
  reach 1,000 GBP, predictably from customer history, country and basket size);
* ~25 % of rows are guest checkouts (null CustomerID, mostly UK, either tiny or large "dotcom" baskets
  at marked-up prices, the latter with a DOTCOM POSTAGE line);
* ~3,000 invented products (upper-case names from word lists, 5-digit codes with an optional letter
  suffix for colour variants) with stable prices and a few price variants (bulk, dotcom, a mid-period
  price change), pack-size quantities, a few products with a second description;
* messiness: ~1.7 % cancellation rows ('C' invoices, negative quantities, of lines bought earlier),
  non-product lines (POST, DOT, M, C2, BANK CHARGES, AMAZONFEE, D), stock adjustments (negative
  quantity, price 0, no customer, a note as description), null descriptions with price 0, ~1 %
  exact duplicate rows and two bad-debt rows with a negative price (stock code 'B').

Everything is drawn from one ``numpy.random.Generator`` seeded with ``seed``: the output is a pure
function of the arguments (the bytes too, for a given pyarrow version). The catalogue is exposed by
``product_catalog`` so tests and demos can see the (hidden) category of each product.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
SCHEMA = pa.schema([
    ("InvoiceNo", pa.string()),
    ("StockCode", pa.string()),
    ("Description", pa.string()),
    ("Quantity", pa.int64()),
    ("InvoiceDate", pa.string()),
    ("UnitPrice", pa.float64()),
    ("CustomerID", pa.float64()),
    ("Country", pa.string()),
])

REFERENCE_ROWS = 541_909  # size of the real file; the synthetic population scales from it
MIN_ROWS = 200
CUSTOMER_ID_MIN, CUSTOMER_ID_MAX = 12346, 18287
HIGH_VALUE_GBP = 1000.0

# --- product vocabulary (invented) -------------------------------------------------------------

CATEGORIES: dict[str, tuple[str, ...]] = {
    "kitchen": ("CAKE STAND", "TEA CUP AND SAUCER", "MUG", "JAM JAR", "LUNCH BOX", "BAKING SET",
                "CAKE CASES", "TEA TOWEL", "APRON", "SERVING TRAY", "BREAD BIN", "MIXING BOWL",
                "DINNER PLATE", "MILK JUG", "EGG CUP", "TEAPOT", "OVEN GLOVE", "BISCUIT TIN"),
    "christmas": ("CHRISTMAS BAUBLE", "TREE DECORATION", "ADVENT CALENDAR", "CHRISTMAS STOCKING",
                  "HANGING STAR", "DOOR WREATH", "SNOWFLAKE GARLAND", "ANGEL ORNAMENT", "CHRISTMAS CRACKERS",
                  "REINDEER FIGURE", "SANTA SACK", "NATIVITY SET"),
    "lighting": ("T-LIGHT HOLDER", "LANTERN", "PILLAR CANDLE", "NIGHT LIGHT", "STRING LIGHTS",
                 "TABLE LAMP", "CANDLE POT", "VOTIVE HOLDER", "FAIRY LIGHTS", "OIL BURNER"),
    "bags": ("JUMBO BAG", "SHOPPER BAG", "LUNCH BAG", "TOTE BAG", "DRAWSTRING BAG", "COIN PURSE",
             "WASH BAG", "GIFT BAG", "SHOULDER BAG", "BEACH BAG"),
    "stationery": ("NOTEBOOK", "GREETING CARD", "WRAPPING PAPER", "GIFT TAGS", "PENCIL SET", "STICKER SHEET",
                   "MEMO PAD", "ADDRESS BOOK", "PEN POT", "ENVELOPES", "JOURNAL", "BIRTHDAY CARD"),
    "home_decor": ("PHOTO FRAME", "WALL CLOCK", "CUSHION COVER", "DOORMAT", "HANGING HEART", "METAL SIGN",
                   "WALL MIRROR", "FLOWER VASE", "DOOR STOP", "WALL ART", "CANDLESTICK", "WIND CHIME"),
    "garden": ("BIRD HOUSE", "PLANT POT", "WATERING CAN", "PLANT MARKERS", "BIRD FEEDER", "GARDEN KNEELER",
               "SEED TIN", "HERB POT", "GARDEN TRUG", "FLOWER BASKET"),
    "kids": ("SKIPPING ROPE", "SPINNING TOP", "JIGSAW PUZZLE", "KIDS CUTLERY SET", "PAINTING SET",
             "RAG DOLL", "TOY SOLDIER", "CHALK SET", "BUILDING BLOCKS", "MARBLES BAG", "TEA SET TOY",
             "KIDS APRON"),
    "party": ("PAPER CHAIN KIT", "PARTY BUNTING", "PAPER NAPKINS", "PAPER PLATES", "PAPER CUPS",
              "BALLOONS", "PARTY BAGS", "DRINKING STRAWS", "CAKE TOPPERS", "PARTY HATS"),
    "storage": ("STORAGE TIN", "TRINKET BOX", "WICKER BASKET", "DRAWER KNOB", "COAT HOOK", "COAT RACK",
                "STORAGE JAR", "KEY CABINET", "SHOE BOX", "MAGAZINE RACK"),
    "accessories": ("NECKLACE", "BRACELET", "EARRINGS", "HAIR CLIP", "KEY RING", "BROOCH", "HAIR BAND",
                    "POCKET MIRROR", "UMBRELLA", "SCARF"),
    "bath": ("SOAP DISH", "HAND TOWEL", "HOT WATER BOTTLE", "BATH SALTS", "SOAP BAR", "TOOTHBRUSH HOLDER",
             "BATH SPONGE", "TOILETRY BAG"),
}
CATEGORY_NAMES = tuple(CATEGORIES)
COLOURS = ("RED", "PINK", "BLUE", "GREEN", "IVORY", "WHITE", "BLACK", "CREAM", "SILVER", "GOLD",
           "PURPLE", "ORANGE", "YELLOW", "LILAC", "TEAL", "NAVY", "MINT", "CHOCOLATE")
PATTERNS = ("POLKADOT", "SPOTTY", "STRIPED", "FLORAL", "PAISLEY", "GINGHAM", "HEART", "STAR", "BIRD",
            "VINTAGE", "REGENCY", "NORDIC", "ROSE", "DAISY", "PARISIENNE", "TOILE", "LACE", "OWL",
            "BUTTERFLY", "ANCHOR", "CIRCUS", "WOODLAND", "FOLK", "RETRO", "ORIENTAL", "PATCHWORK")
MATERIALS = ("WOODEN", "ZINC", "GLASS", "CERAMIC", "ENAMEL", "WICKER", "FELT", "TIN", "PORCELAIN",
             "CROCHET", "BAMBOO", "METAL", "HAND PAINTED", "SMALL", "LARGE", "MINI", "JUMBO",
             "SET OF 3", "SET OF 6", "ANTIQUE", "FRENCH", "ENGLISH")
# "Nice" retail price points the catalogue snaps to (GBP).
PRICE_POINTS = np.array([
    0.19, 0.21, 0.29, 0.36, 0.39, 0.42, 0.55, 0.65, 0.72, 0.79, 0.85, 0.95, 1.06, 1.25, 1.45, 1.65,
    1.69, 1.95, 2.10, 2.25, 2.55, 2.95, 3.25, 3.39, 3.75, 4.25, 4.95, 5.45, 5.95, 6.35, 6.75, 7.95,
    8.50, 9.95, 10.95, 12.75, 14.95, 16.95, 18.00, 19.95, 24.95, 29.95, 39.95, 49.95,
])

# Countries other than the UK and their weights (roughly the customer mix of the real data).
COUNTRIES = ("United Kingdom", "Germany", "France", "EIRE", "Spain", "Belgium", "Switzerland", "Portugal",
             "Italy", "Finland", "Norway", "Australia", "Netherlands", "Austria", "Channel Islands",
             "Sweden", "Denmark", "Japan", "Cyprus", "Poland", "Israel", "Greece", "Unspecified", "USA",
             "Canada", "Malta", "United Arab Emirates", "Bahrain", "Iceland", "Lithuania", "Saudi Arabia",
             "Lebanon", "Singapore", "Czech Republic", "Brazil", "European Community", "RSA", "Hong Kong")
_FOREIGN_WEIGHTS = np.array([95, 87, 12, 29, 24, 20, 19, 15, 12, 10, 9, 9, 9, 9, 8, 8, 8, 7, 6, 4, 4, 4, 4,
                             4, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2], dtype=float)

ADJUSTMENT_NOTES = ("check", "damages", "damaged", "?", "Damaged", "thrown away", "wet damaged", "smashed",
                    "missing", "??", "sold as set on website", "mixed up", "incorrect stock entry.",
                    "unsaleable, destroyed.", "found broken", "water damage", "lost in warehouse")

# Non-product stock codes: code -> description.
NON_PRODUCT = {
    "POST": "POSTAGE", "DOT": "DOTCOM POSTAGE", "M": "Manual", "C2": "CARRIAGE", "D": "Discount",
    "BANK CHARGES": "Bank Charges", "AMAZONFEE": "AMAZON FEE", "B": "Adjust bad debt",
}

# Calendar shape.
_MONTH_FACTOR = np.array([0.0, 0.78, 0.85, 1.0, 0.95, 1.05, 1.0, 1.0, 0.9, 1.3, 1.5, 1.95, 1.45])  # index 1..12
_WEEKDAY_FACTOR = np.array([0.95, 1.0, 0.95, 1.05, 0.85, 0.0, 0.65])  # Mon..Sun; shop shut on Saturdays
_HOURS = np.arange(7, 21)
_HOUR_WEIGHTS = np.array([0.4, 9, 34, 49, 58, 79, 72, 67, 78, 55, 29, 8, 3.7, 0.9])

# Quantity building blocks.
_NICE_MULT = np.array([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 25, 30, 40, 50, 60, 80, 100])


def _scaled(rows: int) -> tuple[int, int]:
    """Number of customers and products for a data set of ``rows`` rows."""
    f = rows / REFERENCE_ROWS
    n_customers = int(np.clip(round(4372 * f), 40, CUSTOMER_ID_MAX - CUSTOMER_ID_MIN + 1))  # ~4.3 invoices each
    n_products = int(np.clip(round(3000 * min(1.0, f) ** 0.25), 150, 3000))
    return n_customers, n_products


# --- catalogue ---------------------------------------------------------------------------------

def _build_catalog(rng: np.random.Generator, n_products: int) -> dict[str, np.ndarray]:
    n_cat = len(CATEGORY_NAMES)
    cat_pop = rng.dirichlet(np.full(n_cat, 6.0))
    counts = np.maximum(3, np.round(cat_pop * n_products)).astype(int)
    counts[np.argmax(counts)] += n_products - counts.sum()
    cat_level = rng.normal(0.0, 0.4, n_cat)  # log median price per category

    descs: list[str] = []
    alt: list[str | None] = []
    cats: list[int] = []
    family: list[int] = []
    seen: set[str] = set()
    fam_id = 0
    for c, name in enumerate(CATEGORY_NAMES):
        objects = CATEGORIES[name]
        made = 0
        while made < counts[c]:
            obj = objects[rng.integers(len(objects))]
            style = rng.random()
            if style < 0.45:
                stem = f"{PATTERNS[rng.integers(len(PATTERNS))]} {obj}"
            elif style < 0.75:
                stem = f"{MATERIALS[rng.integers(len(MATERIALS))]} {obj}"
            else:
                stem = f"{MATERIALS[rng.integers(len(MATERIALS))]} {PATTERNS[rng.integers(len(PATTERNS))]} {obj}"
            size = 1 if rng.random() < 0.72 else int(rng.integers(2, 6))  # colour-variant families
            size = min(size, counts[c] - made)
            colours = rng.choice(len(COLOURS), size=size, replace=False)
            added = 0
            for k in colours:
                d = f"{COLOURS[k]} {stem}" if (size > 1 or rng.random() < 0.5) else stem
                if len(d) > 35 or d in seen:
                    continue
                seen.add(d)
                descs.append(d)
                cats.append(c)
                family.append(fam_id)
                variant = None
                if rng.random() < 0.04:  # a second wording of the same product
                    if " SET OF " in d:
                        variant = d.replace(" SET OF ", " SET/")
                    elif not obj.endswith("S"):
                        variant = d.replace(obj, obj + "S", 1)
                    else:
                        variant = d + " ASSORTED"
                alt.append(variant)
                added += 1
            made += added
            fam_id += 1 if added else 0
    n = len(descs)
    cats_a = np.array(cats)
    family_a = np.array(family)

    # stock codes: one 5-digit number per family; families of several products get letter suffixes
    fam_numbers = rng.choice(np.arange(10002, 90000), size=fam_id, replace=False)
    codes = np.empty(n, dtype=object)
    fam_size = np.bincount(family_a, minlength=fam_id)
    pos_in_fam = np.zeros(n, dtype=int)
    counter = np.zeros(fam_id, dtype=int)
    for i, f in enumerate(family_a):
        pos_in_fam[i] = counter[f]
        counter[f] += 1
    letters = "ABCDEFGHJKLMNPRSTUVW"
    for i in range(n):
        f = family_a[i]
        suffix = letters[pos_in_fam[i]] if fam_size[f] > 1 else ("" if rng.random() > 0.03 else "L")
        codes[i] = f"{fam_numbers[f]}{suffix}"

    # prices: category level x product noise, snapped to retail price points
    log_raw = cat_level[cats_a] + rng.normal(0, 0.75, n)
    raw = np.exp(log_raw - np.median(log_raw) + np.log(2.1))  # median catalogue price ~2.10 GBP
    price_idx = np.clip(np.searchsorted(PRICE_POINTS, raw), 0, len(PRICE_POINTS) - 1)
    price = PRICE_POINTS[price_idx]
    # a mid-period price change for some products (one price point up)
    change_at = np.where(rng.random(n) < 0.15, rng.uniform(0.3, 0.8, n), np.inf)
    price_new = PRICE_POINTS[np.minimum(price_idx + 1, len(PRICE_POINTS) - 1)]
    bulk_price = PRICE_POINTS[np.maximum(price_idx - 1, 0)]
    # pack sizes: cheap things come by the dozen
    pack = np.ones(n, dtype=np.int64)
    r = rng.random(n)
    cheap, mid, dear = price < 1.0, (price >= 1.0) & (price < 3.0), (price >= 3.0) & (price < 8.0)
    pack[cheap] = np.array([12, 24, 6, 10, 1, 12])[np.minimum((r[cheap] * 6).astype(int), 5)]
    pack[mid] = np.array([1, 2, 4, 6, 12, 12, 6, 3])[np.minimum((r[mid] * 8).astype(int), 7)]
    pack[dear] = np.array([1, 1, 2, 3, 4, 6, 8, 2])[np.minimum((r[dear] * 8).astype(int), 7)]
    # popularity within its category (Zipf-like); the order of products inside a category is random
    order = np.lexsort((rng.random(n), cats_a))
    return {
        "code": codes[order], "desc": np.array(descs, dtype=object)[order],
        "alt": np.array(alt, dtype=object)[order], "cat": cats_a[order], "price": price[order],
        "price_new": price_new[order], "bulk_price": bulk_price[order], "change_at": change_at[order],
        "pack": pack[order], "cat_pop": cat_pop,
    }


def product_catalog(rows: int = 200_000, seed: int = 7) -> pd.DataFrame:
    """The invented product catalogue ``generate(rows=rows, seed=seed)`` sells from, with categories."""
    rng = np.random.default_rng(seed)
    cat = _build_catalog(rng, _scaled(rows)[1])
    return pd.DataFrame({
        "StockCode": cat["code"].astype(str), "Description": cat["desc"].astype(str),
        "category": np.array(CATEGORY_NAMES)[cat["cat"]], "UnitPrice": cat["price"],
    })


# --- calendar ----------------------------------------------------------------------------------

def _calendar(start: str, end: str) -> tuple[np.ndarray, np.ndarray]:
    first = np.datetime64(pd.Timestamp(start).date(), "D")
    last = np.datetime64(pd.Timestamp(end).date(), "D")
    days = np.arange(first, last + 1)
    if len(days) == 0:
        raise ValueError(f"empty date range {start} .. {end}")
    dt = pd.DatetimeIndex(days)
    month, dom, dow = dt.month.to_numpy(), dt.day.to_numpy(), dt.dayofweek.to_numpy()
    w = _MONTH_FACTOR[month] * _WEEKDAY_FACTOR[dow]
    closed = ((month == 12) & (dom >= 24)) | ((month == 1) & (dom <= 3))
    w = np.where(closed, 0.0, w)
    if w.sum() == 0:
        w = _WEEKDAY_FACTOR[dow].astype(float)
    if w.sum() == 0:
        raise ValueError(f"date range {start} .. {end} holds only Saturdays")
    cdf = np.cumsum(w) / w.sum()
    return days, cdf


def _draw_minutes(rng: np.random.Generator, days: np.ndarray, cdf: np.ndarray, n: int) -> np.ndarray:
    """``n`` invoice times (minutes since the epoch) from the seasonal calendar, in opening hours."""
    d = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(days) - 1)
    hour = _HOURS[rng.choice(len(_HOURS), size=n, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())]
    minute = rng.integers(0, 60, n)
    return days[d].astype("datetime64[m]").astype(np.int64) + hour * 60 + minute


def _cut(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Keep a prefix of ``sizes`` summing exactly to ``budget`` (the last kept one is trimmed)."""
    cs = np.cumsum(sizes)
    k = int(np.searchsorted(cs, budget, side="left"))
    out = sizes[: k + 1].copy()
    out[-1] -= cs[k] - budget
    return out[out > 0]


def _snap_mult(x: np.ndarray) -> np.ndarray:
    i = np.searchsorted(_NICE_MULT, x, side="right") - 1
    return _NICE_MULT[np.clip(i, 0, len(_NICE_MULT) - 1)]


# --- generator ---------------------------------------------------------------------------------

def generate(path: str | Path, rows: int = 200_000, seed: int = 7, start: str = "2010-12-01",
             end: str = "2011-12-09") -> Path:
    """Write ``rows`` synthetic Online-Retail rows to the Parquet file ``path`` (atomically); return it."""
    path = Path(path)
    df = synthesize(rows=rows, seed=seed, start=start, end=end)
    table = pa.Table.from_pandas(df, schema=SCHEMA, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="snappy")
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def synthesize(rows: int = 200_000, seed: int = 7, start: str = "2010-12-01", end: str = "2011-12-09") -> pd.DataFrame:
    """The synthetic data set as a DataFrame (what ``generate`` writes)."""
    rows = int(rows)
    if rows < MIN_ROWS:
        raise ValueError(f"rows must be at least {MIN_ROWS}, got {rows}")
    rng = np.random.default_rng(seed)
    n_cust, n_prod = _scaled(rows)
    cat = _build_catalog(rng, n_prod)
    n_prod = len(cat["code"])
    n_cat = len(CATEGORY_NAMES)
    days, cdf = _calendar(start, end)
    t0 = days[0].astype("datetime64[m]").astype(np.int64)
    t1 = (days[-1] + 1).astype("datetime64[m]").astype(np.int64)
    span = float(t1 - t0)
    day_open = np.zeros(len(days), dtype=bool)
    day_open[np.flatnonzero(np.diff(np.concatenate([[0.0], cdf])) > 0)] = True

    def open_at(times: np.ndarray) -> np.ndarray:
        d = times // 1440 - days[0].astype(np.int64)
        ok = (times >= t0) & (times < t1)
        return ok & day_open[np.clip(d, 0, len(days) - 1)]

    def some_days_after(times: np.ndarray, n_days: np.ndarray) -> np.ndarray:
        day = times // 1440 + n_days
        day = np.where((day + 3) % 7 == 5, day + 2, day)  # Saturday -> Monday (day 0 was a Thursday)
        hour = _HOURS[rng.choice(len(_HOURS), len(times), p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum())]
        return day * 1440 + hour * 60 + rng.integers(0, 60, len(times))

    def shortly_after(times: np.ndarray) -> np.ndarray:
        later_ = times + rng.integers(5, 180, len(times))
        return np.minimum(later_, np.maximum((times // 1440) * 1440 + 20 * 60 + 59, times))

    # ---- row budget ---------------------------------------------------------------------------
    def share(rate, minimum=1):
        return max(minimum, int(round(rate * rows)))

    n_dup = share(0.0097)
    n_adj = share(0.0025)
    n_nulldesc = share(0.0027)
    n_post = share(0.0023)
    n_c2 = share(0.00027)
    n_m_sale = share(0.0006)
    n_m_canc = share(0.0004)
    n_d = share(0.00014)
    n_bank = share(0.00007)
    n_amazon = share(0.00006)
    n_bad = 3  # one positive and two negative bad-debt adjustments
    n_canc_total = share(0.0171, 5)
    n_canc_prod = n_canc_total - n_m_canc - n_d - n_bank - n_amazon
    fixed = n_dup + n_adj + n_nulldesc + n_post + n_c2 + n_m_sale + n_canc_total + n_bad
    sale_budget = rows - fixed  # product lines of sales + DOT lines
    guest_budget = int(round(0.245 * rows)) - n_adj - n_nulldesc
    known_budget = sale_budget - guest_budget

    # ---- customers ----------------------------------------------------------------------------
    cust_ids = np.sort(rng.choice(np.arange(CUSTOMER_ID_MIN, CUSTOMER_ID_MAX + 1), n_cust, replace=False))
    # ~8.5 % of customers abroad: every other country gets one first (as far as they go), then by weight
    fw = _FOREIGN_WEIGHTS / _FOREIGN_WEIGHTS.sum()
    n_foreign = max(1, int(round(0.085 * n_cust)))
    foreign_countries = np.concatenate([
        1 + rng.permutation(len(fw))[: min(n_foreign, len(fw))],
        1 + rng.choice(len(fw), max(0, n_foreign - len(fw)), p=fw),
    ])
    foreign_idx = rng.choice(n_cust, n_foreign, replace=False)
    foreign = np.zeros(n_cust, dtype=bool)
    foreign[foreign_idx] = True
    cust_country = np.zeros(n_cust, dtype=np.int64)
    cust_country[foreign_idx] = foreign_countries
    # wholesale buyers: ~12 % of foreign and ~2 % of UK customers
    wholesale = np.zeros(n_cust, dtype=bool)
    for group, rate in ((np.flatnonzero(foreign), 0.15), (np.flatnonzero(~foreign), 0.02)):
        wholesale[rng.choice(group, int(round(rate * len(group))), replace=False)] = True
    activity = np.minimum(rng.pareto(1.1, n_cust) + 1.0, 60.0) * np.where(wholesale, 2.0, 1.0)
    activity = np.minimum(activity, 0.012 * activity.sum())  # nobody places more than ~1 % of the invoices
    # how much a customer buys per line (quantity multiplier) and basket size
    scale = np.exp(rng.normal(-1.02, 0.35, n_cust)) * np.where(foreign, 2.0, 1.0) * np.where(wholesale, 3.5, 1.0)
    basket_med = np.exp(rng.normal(np.log(15.5), 0.4, n_cust)) * np.where(wholesale, 2.2, 1.0)
    # tastes: 2-3 preferred categories (drawn by popularity), a personal list of favourite products
    n_pref = 3
    gumbel = np.log(cat["cat_pop"])[None, :] - np.log(-np.log(rng.random((n_cust, n_cat))))
    pref = np.argsort(-gumbel, axis=1)[:, :n_pref]  # weighted sampling without replacement
    pref_w = rng.dirichlet([3.0, 1.5, 0.6], n_cust)
    pref_cw = np.cumsum(pref_w, axis=1)
    p_fav = rng.uniform(0.25, 0.5, n_cust)
    p_pref = rng.uniform(0.3, 0.5, n_cust)

    cat_start = np.searchsorted(cat["cat"], np.arange(n_cat))
    cat_size = np.bincount(cat["cat"], minlength=n_cat)

    # styles: each category's products fall into N_STYLES blocks (its order is random, so a block is a
    # random subset); a customer likes one style in each preferred category and mostly discovers new
    # products there, so who bought what predicts what they buy next (beyond global popularity)
    n_style = 4
    style = rng.integers(0, n_style, (n_cust, n_pref))

    def product_in(cats_: np.ndarray, styles_: np.ndarray | None = None) -> np.ndarray:
        r = rng.random(len(cats_)) ** 2.2  # skewed popularity inside the category (or style)
        size = cat_size[cats_]
        if styles_ is None:
            return cat_start[cats_] + np.minimum((r * size).astype(int), size - 1)
        block = np.maximum(size // n_style, 1)
        start = np.minimum(styles_ * block, np.maximum(size - block, 0))
        return cat_start[cats_] + start + np.minimum((r * block).astype(int), block - 1)

    n_fav = 24
    rows_ = np.arange(n_cust)[:, None]
    k_fav = (rng.random((n_cust, n_fav))[..., None] > pref_cw[:, None, :]).sum(-1).clip(0, n_pref - 1)
    fav = product_in(pref[rows_, k_fav].ravel(), style[rows_, k_fav].ravel()).reshape(n_cust, n_fav)

    # ---- known-customer invoices --------------------------------------------------------------
    p_act = activity / activity.sum()
    est = int(known_budget / 14) + n_cust + 10
    while True:
        inv_c = np.concatenate([rng.permutation(n_cust), rng.choice(n_cust, est, p=p_act)])
        size = np.maximum(1, np.round(np.exp(np.log(basket_med[inv_c]) + rng.normal(0, 0.6, len(inv_c))))).astype(np.int64)
        size = np.minimum(size, 600)
        if size.sum() >= known_budget:
            break
        est *= 2
    size_k = _cut(size, known_budget)
    inv_c = inv_c[: len(size_k)]
    n_ik = len(size_k)
    t_known = _draw_minutes(rng, days, cdf, n_ik)

    # ---- guest invoices: small counter sales or large "dotcom" orders --------------------------
    est = int(guest_budget / 40) + 10
    while True:
        dotcom = rng.random(est) < 0.4
        gsize = np.where(dotcom, np.exp(rng.normal(np.log(42), 0.7, est)),
                         np.exp(rng.normal(np.log(2.5), 0.9, est)))
        gsize = np.clip(np.round(gsize), 1, 900).astype(np.int64)
        gsize = gsize + dotcom  # room for the DOTCOM POSTAGE line
        if gsize.sum() >= guest_budget:
            break
        est *= 2
    size_g = _cut(gsize, guest_budget)
    dotcom = dotcom[: len(size_g)] & (size_g >= 2)
    n_ig = len(size_g)
    t_guest = _draw_minutes(rng, days, cdf, n_ig)
    g_country = np.where(rng.random(n_ig) < 0.985, 0, 1 + rng.choice(len(fw), n_ig, p=fw))

    # invoice table (sales first, more appended below)
    inv_time = [t_known, t_guest]
    inv_cust = [inv_c, np.full(n_ig, -1)]
    inv_country = [cust_country[inv_c], g_country]

    # ---- sale lines ---------------------------------------------------------------------------
    size_all = np.concatenate([size_k, size_g])
    product_lines = size_all - np.concatenate([np.zeros(n_ik, dtype=np.int64), dotcom.astype(np.int64)])
    l_inv = np.repeat(np.arange(n_ik + n_ig), product_lines)
    l_ord = np.arange(len(l_inv)) - np.repeat(np.cumsum(product_lines) - product_lines, product_lines)
    nl = len(l_inv)
    l_cust = np.concatenate(inv_cust)[l_inv]
    l_time = np.concatenate(inv_time)[l_inv]
    known = l_cust >= 0
    tfrac = (l_time - t0) / span
    month = ((l_time // (60 * 24)).astype("datetime64[D]").astype("datetime64[M]").astype(int) % 12) + 1
    xmas_cat = CATEGORY_NAMES.index("christmas")

    def global_cat(n, months):
        c = rng.choice(n_cat, n, p=cat["cat_pop"])
        boost = np.isin(months, (8, 9, 10, 11, 12)) & (rng.random(n) < np.where(months >= 10, 0.22, 0.1))
        return np.where(boost, xmas_cat, c)

    prod = np.empty(nl, dtype=np.int64)
    u = rng.random(nl)
    kc = np.where(known, l_cust, 0)
    use_fav = known & (u < p_fav[kc])
    use_pref = known & ~use_fav & (u < p_fav[kc] + p_pref[kc])
    use_glob = ~(use_fav | use_pref)
    j = np.minimum((rng.random(use_fav.sum()) ** 1.5 * n_fav).astype(int), n_fav - 1)
    prod[use_fav] = fav[kc[use_fav], j]
    pc = kc[use_pref]
    k = (rng.random(len(pc))[:, None] > pref_cw[pc]).sum(1).clip(0, n_pref - 1)
    prod[use_pref] = product_in(pref[pc, k], style[pc, k])
    prod[use_glob] = product_in(global_cat(int(use_glob.sum()), month[use_glob]))
    # avoid the same product twice on one invoice (re-draw a few times; the rest stays, as in reality)
    for _ in range(4):
        key = l_inv * n_prod + prod
        srt = np.argsort(key, kind="stable")
        dup = np.zeros(nl, dtype=bool)
        dup[srt[1:]] = key[srt[1:]] == key[srt[:-1]]
        if not dup.any():
            break
        prod[dup] = product_in(global_cat(int(dup.sum()), month[dup]))

    # quantities
    pack = cat["pack"][prod]
    m0 = np.array([1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 3, 4, 6])[rng.integers(0, 14, nl)]
    raw_mult = m0 * np.where(known, scale[kc], 1.0) * np.exp(rng.normal(0, 0.25, nl))
    qty = pack * _snap_mult(np.maximum(raw_mult, 1.0))
    small = ~known
    gq = rng.choice(np.array([1, 2, 3, 4, 5, 6, 8, 10, 12]), int(small.sum()),
                    p=np.array([56, 18, 8, 5, 3, 3, 2, 2, 3]) / 100.0)
    qty[small] = gq
    big = rng.random(nl) < 0.0008  # the odd very large order line
    qty[big] *= rng.choice([10, 20, 50, 100], int(big.sum()))
    qty = qty.astype(np.int64)

    # prices: catalogue price (or the new one after a price change), bulk price, dotcom mark-up
    price = np.where(tfrac >= cat["change_at"][prod], cat["price_new"][prod], cat["price"][prod])
    bulk = known & (qty >= 8 * np.maximum(pack, 1)) & (qty >= 24)
    price = np.where(bulk, cat["bulk_price"][prod], price)
    price = np.where(~known, np.round(price * 1.3 + 0.04, 2), price)
    # descriptions: a second wording for some products, used after a date
    alt = cat["alt"][prod]
    desc = cat["desc"][prod].copy()
    use_alt = (alt != None) & (tfrac > 0.5)  # noqa: E711 (object array)
    desc[use_alt] = alt[use_alt]

    lines = {
        "inv": l_inv, "ord": l_ord.astype(np.int64), "code": cat["code"][prod], "desc": desc, "qty": qty,
        "price": price.astype(float), "is_sale_product": np.ones(nl, dtype=bool),
    }
    extra: list[dict] = []

    def add(inv, code, desc_, qty_, price_, ord_=None):
        inv = np.asarray(inv, dtype=np.int64)
        n = len(inv)
        extra.append({
            "inv": inv, "ord": np.full(n, 10_000) if ord_ is None else np.asarray(ord_, dtype=np.int64),
            "code": np.full(n, code, dtype=object) if isinstance(code, str) else np.asarray(code, dtype=object),
            "desc": np.full(n, desc_, dtype=object) if (desc_ is None or isinstance(desc_, str)) else np.asarray(desc_, dtype=object),
            "qty": np.broadcast_to(np.asarray(qty_, dtype=np.int64), (n,)).copy(),
            "price": np.broadcast_to(np.asarray(price_, dtype=float), (n,)).copy(),
            "is_sale_product": np.zeros(n, dtype=bool),
        })

    # DOTCOM POSTAGE on every dotcom order, priced with the order
    dot_inv = n_ik + np.flatnonzero(dotcom)
    line_total = qty * price
    inv_total = np.bincount(l_inv, weights=line_total, minlength=n_ik + n_ig)
    add(dot_inv, "DOT", NON_PRODUCT["DOT"], 1, np.round(inv_total[dot_inv] * rng.uniform(0.08, 0.2, len(dot_inv)) + 3, 2))
    # POSTAGE on foreign customers' invoices, CARRIAGE on some others
    foreign_inv = np.flatnonzero(np.concatenate([cust_country[inv_c] != 0, np.zeros(n_ig, dtype=bool)]))
    pool = foreign_inv if len(foreign_inv) else np.arange(n_ik)
    post_inv = rng.choice(pool, n_post, replace=n_post > len(pool))
    add(post_inv, "POST", NON_PRODUCT["POST"], rng.choice([1, 1, 1, 2, 2, 3, 4], n_post),
        rng.choice([18.0, 18.0, 18.0, 15.0, 28.0, 40.0, 5.0], n_post))
    add(rng.choice(n_ik, n_c2), "C2", NON_PRODUCT["C2"], 1, rng.choice([50.0, 50.0, 50.0, 40.0, 100.0], n_c2))
    add(rng.choice(n_ik, n_m_sale), "M", NON_PRODUCT["M"], rng.choice([1, 1, 1, 2, 4, 12], n_m_sale),
        np.round(np.exp(rng.normal(np.log(6.0), 1.0, n_m_sale)), 2))

    n_inv = n_ik + n_ig
    inv_time_a = np.concatenate(inv_time)
    inv_cust_a = np.concatenate(inv_cust)
    inv_country_a = np.concatenate(inv_country)
    new_time, new_cust, new_country, new_prefix = [], [], [], []

    def new_invoices(times, custs, countries, prefix):
        nonlocal n_inv
        ids = np.arange(n_inv, n_inv + len(times))
        n_inv += len(times)
        new_time.append(np.asarray(times, dtype=np.int64))
        new_cust.append(np.asarray(custs, dtype=np.int64))
        new_country.append(np.asarray(countries, dtype=np.int64))
        new_prefix.append(np.full(len(times), prefix, dtype=np.int8))
        return ids

    # ---- cancellations of earlier purchases ----------------------------------------------------
    inv_start = np.concatenate([[0], np.cumsum(product_lines)[:-1]])
    src_pool = np.flatnonzero(product_lines > 0)
    src_w = np.where(inv_cust_a[src_pool] >= 0, 1.0, 0.15)
    est = n_canc_prod + 5
    src = rng.choice(src_pool, est, p=src_w / src_w.sum())
    k = np.minimum(rng.geometric(0.5, est) + (rng.random(est) < 0.08) * rng.integers(2, 12, est), product_lines[src])
    k = _cut(k.astype(np.int64), n_canc_prod)
    src = src[: len(k)]
    off = (rng.random(len(k)) * (product_lines[src] - k + 1)).astype(np.int64)
    canc_lines = np.repeat(inv_start[src] + off, k) + (np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))
    # when: the same day (a while later) or some days later, never before the purchase
    st = inv_time_a[src]
    later = rng.random(len(k)) < 0.6
    delay_days = np.where(later, np.minimum(rng.geometric(0.12, len(k)), 60), 0)
    same = shortly_after(st)
    other = some_days_after(st, delay_days)
    ctime = np.where(later & open_at(other) & (other > st), other, same)
    cinv = new_invoices(ctime, inv_cust_a[src], inv_country_a[src], 1)
    orig_q = qty[canc_lines]
    part = rng.random(len(canc_lines)) < 0.3
    cq = np.where(part, np.maximum(1, (orig_q * rng.uniform(0.1, 1.0, len(orig_q))).astype(np.int64)), orig_q)
    add(np.repeat(cinv, k), lines["code"][canc_lines], desc[canc_lines], -cq, price[canc_lines],
        ord_=np.arange(k.sum()) - np.repeat(np.cumsum(k) - k, k))

    known_inv = np.flatnonzero(inv_cust_a[:n_ik + n_ig] >= 0)
    # discounts and manual credits for known customers, bank charges and Amazon fees without customer
    for code, n, has_cust, prices in (
        ("D", n_d, True, np.round(np.exp(rng.normal(np.log(20.0), 1.1, n_d)), 2)),
        ("M", n_m_canc, True, np.round(np.exp(rng.normal(np.log(10.0), 1.3, n_m_canc)), 2)),
        ("BANK CHARGES", n_bank, False, np.round(rng.uniform(5, 120, n_bank), 2)),
        ("AMAZONFEE", n_amazon, False, np.round(np.exp(rng.normal(np.log(5000.0), 0.6, n_amazon)), 2)),
    ):
        if has_cust:
            s = rng.choice(known_inv, n)
            times = some_days_after(inv_time_a[s], rng.integers(1, 21, n))
            times = np.where(open_at(times) & (times > inv_time_a[s]), times, shortly_after(inv_time_a[s]))
            ids = new_invoices(times, inv_cust_a[s], inv_country_a[s], 1)
        else:
            ids = new_invoices(_draw_minutes(rng, days, cdf, n), np.full(n, -1), np.zeros(n), 1)
        add(ids, code, NON_PRODUCT[code], -1, prices)

    # ---- stock adjustments and lines without description (own invoices, price 0, no customer) ---
    adj_p = rng.integers(0, n_prod, n_adj)
    ids = new_invoices(_draw_minutes(rng, days, cdf, n_adj), np.full(n_adj, -1), np.zeros(n_adj), 0)
    adj_q = -np.minimum(np.round(np.exp(rng.normal(np.log(8), 1.3, n_adj))), 5000).astype(np.int64) - 1
    add(ids, cat["code"][adj_p], np.array(ADJUSTMENT_NOTES, dtype=object)[rng.integers(0, len(ADJUSTMENT_NOTES), n_adj)], adj_q, 0.0)
    nd_p = rng.integers(0, n_prod, n_nulldesc)
    ids = new_invoices(_draw_minutes(rng, days, cdf, n_nulldesc), np.full(n_nulldesc, -1), np.zeros(n_nulldesc), 0)
    nd_q = np.minimum(np.round(np.exp(rng.normal(np.log(6), 1.4, n_nulldesc))), 5000).astype(np.int64) + 1
    nd_q = np.where(rng.random(n_nulldesc) < 0.6, -nd_q, nd_q)
    add(ids, cat["code"][nd_p], None, nd_q, 0.0)
    # ---- bad-debt adjustments: one booked, then two written back with a negative price ---------
    bt = _draw_minutes(rng, days, cdf, 1)[0]
    amount = float(np.round(rng.uniform(5000, 15000), 2))
    ids = new_invoices([bt, bt + 1, bt + 2], [-1, -1, -1], [0, 0, 0], 2)
    add(ids, "B", NON_PRODUCT["B"], 1, np.array([amount, -amount, -amount]))

    # ---- assemble -----------------------------------------------------------------------------
    all_lines = {key: np.concatenate([lines[key]] + [e[key] for e in extra]) for key in lines}
    inv_time_a = np.concatenate([inv_time_a] + new_time)
    inv_cust_a = np.concatenate([inv_cust_a] + new_cust)
    inv_country_a = np.concatenate([inv_country_a] + new_country)
    inv_prefix_a = np.concatenate([np.zeros(n_ik + n_ig, dtype=np.int8)] + new_prefix)

    # exact duplicate rows: copies of sale product lines, right after the original
    cand = np.flatnonzero(all_lines["is_sale_product"])
    dsrc = rng.choice(cand, n_dup, replace=False)
    for key in all_lines:
        all_lines[key] = np.concatenate([all_lines[key], all_lines[key][dsrc]])
    assert len(all_lines["inv"]) == rows, (len(all_lines["inv"]), rows)

    # invoice numbers: 6 digits, increasing with time (small gaps, as numbers get used elsewhere)
    used = np.zeros(len(inv_time_a), dtype=bool)
    used[all_lines["inv"]] = True
    inv_order = np.lexsort((np.arange(len(inv_time_a)), inv_time_a))
    inv_order = inv_order[used[inv_order]]
    steps = rng.choice([1, 1, 1, 2, 2, 3], len(inv_order))
    base = 536_001
    if base + steps.sum() > 999_999:
        base = max(100_000, 999_999 - int(steps.sum()))
    number = np.zeros(len(inv_time_a), dtype=np.int64)
    number[inv_order] = base + np.cumsum(steps)
    rank = np.zeros(len(inv_time_a), dtype=np.int64)
    rank[inv_order] = np.arange(len(inv_order))
    inv_no = np.char.add(np.array(["", "C", "A"])[inv_prefix_a], number.astype(str)).astype(object)
    stamp = np.char.replace(np.datetime_as_string(inv_time_a.astype("datetime64[m]"), unit="m"), "T", " ")
    stamp = np.char.add(stamp, ":00").astype(object)

    li = all_lines["inv"]
    row_order = np.lexsort((all_lines["ord"], rank[li]))
    li = li[row_order]
    cust = inv_cust_a[li]
    df = pd.DataFrame({
        "InvoiceNo": inv_no[li],
        "StockCode": all_lines["code"][row_order],
        "Description": all_lines["desc"][row_order],
        "Quantity": all_lines["qty"][row_order].astype(np.int64),
        "InvoiceDate": stamp[li],
        "UnitPrice": np.round(all_lines["price"][row_order].astype(np.float64), 2),
        "CustomerID": np.where(cust >= 0, cust_ids[np.maximum(cust, 0)], np.nan).astype(np.float64),
        "Country": np.array(COUNTRIES, dtype=object)[inv_country_a[li].astype(int)],
    })
    return df
