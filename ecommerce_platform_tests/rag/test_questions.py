"""The deterministic question parser (no data, no model): periods (dates, ranges, months without a year,
quarters, relative to the data's last day), countries and their aliases, price ranges, N and direction,
misspellings, the family of each kind of question, and the topics the data cannot answer."""

from __future__ import annotations

import datetime as dt

import pytest

from ecommerce_platform.rag.questions import Vocabulary, parse

D = dt.date
COUNTRIES = ("United Kingdom", "France", "Germany", "EIRE", "Netherlands", "USA", "Spain", "Channel Islands")
WORDS = {"red", "mug", "mugs", "french", "blue", "lantern", "christmas", "xmas", "star", "phone", "charm", "charger",
         "zinc", "heart", "lunch", "bag", "jumbo", "retrospot", "bull", "dog", "clock", "regency", "cakestand",
         "tier", "3", "white", "hanging", "t", "light", "holder", "paper", "craft", "little", "birdie", "candle",
         "bunting", "party", "set", "of", "tins", "cake", "stand", "slice", "popcorn", "carriage", "france"}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary(countries=COUNTRIES, first_day=D(2010, 12, 1), last_day=D(2011, 12, 9),
                      product_words=frozenset(WORDS), codes=frozenset({"85123A", "84077", "22423"}))


def span(q):  # noqa: ANN001, ANN201
    return (q.period.start, q.period.end) if q.period else None


@pytest.mark.parametrize("text, start, end", [
    ("revenue in march 2011", D(2011, 3, 1), D(2011, 3, 31)),
    ("revenue in mar 2011", D(2011, 3, 1), D(2011, 3, 31)),
    ("revenue in 2011-03", D(2011, 3, 1), D(2011, 3, 31)),
    ("revenue on 2011-11-14", D(2011, 11, 14), D(2011, 11, 14)),
    ("revenue on 05/03/2011", D(2011, 3, 5), D(2011, 3, 5)),  # day/month/year
    ("revenue on 5th march 2011", D(2011, 3, 5), D(2011, 3, 5)),
    ("revenue in december", D(2011, 12, 1), D(2011, 12, 9)),  # its last occurrence, up to the data's end
    ("revenue in june", D(2011, 6, 1), D(2011, 6, 30)),
    ("revenue in q1 2011", D(2011, 1, 1), D(2011, 3, 31)),
    ("revenue in the third quarter of 2011", D(2011, 7, 1), D(2011, 9, 30)),
    ("revenue in 2011", D(2011, 1, 1), D(2011, 12, 9)),
    ("revenue in 2010", D(2010, 12, 1), D(2010, 12, 31)),  # the data starts on 2010-12-01
    ("revenue last month", D(2011, 11, 1), D(2011, 11, 30)),
    ("revenue this month", D(2011, 12, 1), D(2011, 12, 9)),
    ("revenue last week", D(2011, 11, 28), D(2011, 12, 4)),
    ("revenue last quarter", D(2011, 7, 1), D(2011, 9, 30)),
    ("revenue last year", D(2010, 12, 1), D(2010, 12, 31)),
    ("revenue in the last 30 days", D(2011, 11, 10), D(2011, 12, 9)),
    ("revenue over the past 3 months", D(2011, 9, 10), D(2011, 12, 9)),
    ("revenue between 1 march 2011 and 15 april 2011", D(2011, 3, 1), D(2011, 4, 15)),
    ("revenue from march to may 2011", D(2011, 3, 1), D(2011, 5, 31)),
    ("revenue since june 2011", D(2011, 6, 1), D(2011, 12, 9)),
])
def test_periods(vocab, text, start, end):
    q = parse(text, vocab)
    assert q.family == "total" and q.metric == "revenue", q
    assert span(q) == (start, end)


@pytest.mark.parametrize("text", ["sales in 2012", "revenue in january 2010", "what did we sell in 2009"])
def test_periods_outside_the_data_are_refused(vocab, text):
    q = parse(text, vocab)
    assert q.family == "refusal" and "2010-12-01 to 2011-12-09" in q.refusal


def test_comparisons_keep_both_periods(vocab):
    q = parse("revenue in march vs april 2011", vocab)
    assert q.family == "compare" and span(q) == (D(2011, 3, 1), D(2011, 3, 31))
    assert (q.period2.start, q.period2.end) == (D(2011, 4, 1), D(2011, 4, 30))
    q = parse("did we sell more units in september or october 2011", vocab)
    assert q.family == "compare" and q.metric == "units" and q.period2.start == D(2011, 10, 1)


@pytest.mark.parametrize("text, country", [
    ("revenue in the uk", "United Kingdom"), ("sales in holland", "Netherlands"), ("orders from ireland", "EIRE"),
    ("what do dutch customers buy most", "Netherlands"), ("revenue from the united states", "USA"),
    ("sales in germny", "Germany"), ("revenue in jersey", "Channel Islands"), ("how much did france buy", "France"),
])
def test_countries(vocab, text, country):
    assert parse(text, vocab).country == country


def test_a_country_word_in_a_product_name_is_not_a_country(vocab):
    q = parse("french blue lantern", vocab)
    assert q.country is None and q.family == "lookup" and "french" in q.text
    assert parse("sales of the french blue lantern in france", vocab).country == "France"


def test_countries_not_in_the_data_are_refused(vocab):
    q = parse("how much did we sell in china", vocab)
    assert q.family == "refusal" and q.refusal == "country:China"
    assert parse("sales to spain", vocab).country == "Spain"


@pytest.mark.parametrize("text, lo, hi", [
    ("products under 1 pound that sell well", None, 1.0), ("best sellers cheaper than 50p", None, 0.5),
    ("top products over £10", 10.0, None), ("best products priced between £1 and £2.50", 1.0, 2.5),
])
def test_price_ranges(vocab, text, lo, hi):
    q = parse(text, vocab)
    assert q.family == "ranking" and q.entity == "product" and (q.price_min, q.price_max) == (lo, hi)
    assert q.metric == "units"


@pytest.mark.parametrize("text, entity, metric, n, order", [
    ("top 5 products by revenue", "product", "revenue", 5, "desc"),
    ("five best selling products", "product", "units", 5, "desc"),
    ("worst 3 products", "product", "units", 3, "asc"),
    ("least popular christmas items", "product", "units", 10, "asc"),
    ("best-selling product in germany", "product", "units", 1, "desc"),
    ("who are our top 10 customers", "customer", "revenue", 10, "desc"),
    ("which customer spent the most", "customer", "revenue", 1, "desc"),
    ("countries by number of orders", "country", "orders", 10, "desc"),
    ("which country has the fewest orders", "country", "orders", 1, "asc"),
    ("best month for sales", "month", "revenue", 1, "desc"),
    ("busiest day in 2011", "day", "revenue", 1, "desc"),
    ("which products are returned the most", "product", "returns", 10, "desc"),
    ("which products have the highest return rate", "product", "return_rate", 10, "desc"),
    ("most ordered products", "product", "orders", 10, "desc"),
])
def test_rankings(vocab, text, entity, metric, n, order):
    q = parse(text, vocab)
    assert (q.family, q.entity, q.metric, q.n, q.order) == ("ranking", entity, metric, n, order), q


def test_the_issues_questions(vocab):
    q = parse("what sells best at Christmas", vocab)
    assert (q.family, q.entity, q.metric, q.words) == ("ranking", "product", "units", (("CHRISTMAS", "XMAS"),))
    q = parse("how many white hanging heart t-light holders did we sell in March 2011", vocab)
    assert q.family == "product_period" and span(q) == (D(2011, 3, 1), D(2011, 3, 31)) and "holder" in q.text
    q = parse("total revenue in 2011", vocab)
    assert (q.family, q.metric) == ("total", "revenue")
    q = parse("what to reorder for Netherlands customers", vocab)
    assert q.family == "ranking" and q.reorder and q.country == "Netherlands" and span(q) == (D(2011, 9, 10), D(2011, 12, 9))
    q = parse("which countries ordered the paper craft little birdie", vocab)
    assert q.family == "product_countries" and q.text == "paper craft little birdie"
    q = parse("do we sell iPhone chargers?", vocab)
    assert q.family == "lookup" and q.unknown_words == ("iphone",)  # not "phone": a typo keeps its first letter
    assert parse("price of postage", vocab).refusal == "fee"
    assert parse("highest return rate", vocab).metric == "return_rate"


@pytest.mark.parametrize("text, family", [
    ("what is bought with the jumbo bag red retrospot", "copurchase"),
    ("what goes with 22423", "copurchase"),
    ("where is the regency cakestand sold", "product_countries"),
    ("which countries buy 22423?", "product_countries"),
    ("return rate in germany", "return_rate"),
    ("return rate of product 22423", "return_rate"),
    ("how many customers in 2011", "total"),
    ("how much did customer 12347 spend", "total"),
    ("what is product 84077?", "lookup"),
    ("regency cakestand 3 tier", "lookup"),
    ("units of 84077 sold in november 2011", "product_period"),
])
def test_families(vocab, text, family):
    assert parse(text, vocab).family == family


def test_misspellings_are_corrected_against_known_words(vocab):
    q = parse("totl revnue in germny", vocab)
    assert (q.family, q.metric, q.country) == ("total", "revenue", "Germany")
    assert parse("regency cakestnad", vocab).text == "regency cakestand"
    assert parse("bulldog clock", vocab).text == "bull dog clock"  # one word written for two


@pytest.mark.parametrize("text", [
    "what is our profit margin on mugs", "how much does the lantern cost us", "who is the supplier of the mugs",
    "how many mugs are left in stock", "how much web traffic did we get", "what is our conversion rate",
    "forecast revenue for next year", "how much did we spend on marketing", "what is the email of customer 12347",
    "why did sales drop in february", "what is the weather doing to sales", "what are the reviews of the mug",
])
def test_topics_outside_the_data_are_refused(vocab, text):
    q = parse(text, vocab)
    assert q.family == "refusal" and q.refusal and q.refusal != "fee", q


def test_a_price_question_is_not_a_cost_question(vocab):
    assert parse("what does the red mug cost?", vocab).family == "lookup"
    assert parse("price of the red mug", vocab).family == "lookup"
