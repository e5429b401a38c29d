"""What a shop worker asks, parsed without a model: a deterministic parser of the questions asked most
(rankings, totals and counts, return rates, co-purchases, a product's figures in a period, comparisons of
two periods, which countries bought a product), with their filters (country, period, product words, price
range, customer), and the questions the data cannot answer (costs, margins, suppliers, stock levels, web
traffic, periods outside the data...).

``parse(question, vocabulary) -> Query``. Pure Python (no database, no numpy): the vocabulary (countries,
the data's first and last day, the words of product names, stock codes) is read once by the caller
(``qa.Context``). Nothing here builds SQL: ``qa`` turns a Query into statements from templates where every
value is a literal (``sql_dialect.render``).

How a question is read, in order:
1. normalised (lower case, quotes, hyphens, ``£``), misspelt words corrected against the parser's own
   words, the countries and the words of product names (difflib, close matches only);
2. periods taken out: dates, ranges (``from X to Y``, ``between X and Y``), months (a month without a
   year is its last occurrence in the data), quarters, years, and relative periods measured from the
   data's last day (``last month`` = the calendar month before the one the data ends in);
3. country (names, usual aliases and adjectives before ``customers``), customer id, stock codes, price
   range (``under £1``, ``50p``), N and direction (``top 10``, ``worst 3``);
4. out-of-scope topics -> refusal; then the family from its cue words; what is left of the words is the
   product text (a product to resolve, or words product names must contain).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass, field

# ------------------------------------------------------------------------------------------ vocabulary
MONTHS = {"january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "mar": 3, "april": 4, "apr": 4,
          "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9,
          "sep": 9, "sept": 9, "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12}
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December")
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "fifty": 50,
                "hundred": 100, "a dozen": 12, "dozen": 12}
ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4}

# country aliases -> the data's spelling (checked against the data's countries at parse time)
COUNTRY_ALIASES: dict[str, str] = {
    "united kingdom": "United Kingdom", "uk": "United Kingdom", "u k": "United Kingdom",
    "great britain": "United Kingdom", "britain": "United Kingdom", "gb": "United Kingdom",
    "england": "United Kingdom", "scotland": "United Kingdom", "wales": "United Kingdom",
    "eire": "EIRE", "ireland": "EIRE", "republic of ireland": "EIRE",
    "netherlands": "Netherlands", "the netherlands": "Netherlands", "holland": "Netherlands",
    "germany": "Germany", "deutschland": "Germany", "france": "France", "spain": "Spain",
    "belgium": "Belgium", "switzerland": "Switzerland", "portugal": "Portugal", "australia": "Australia",
    "norway": "Norway", "italy": "Italy", "channel islands": "Channel Islands", "jersey": "Channel Islands",
    "guernsey": "Channel Islands", "finland": "Finland", "cyprus": "Cyprus", "sweden": "Sweden",
    "austria": "Austria", "denmark": "Denmark", "japan": "Japan", "poland": "Poland", "israel": "Israel",
    "usa": "USA", "u s a": "USA", "united states": "USA", "united states of america": "USA", "america": "USA",
    "hong kong": "Hong Kong", "singapore": "Singapore", "iceland": "Iceland", "canada": "Canada",
    "greece": "Greece", "malta": "Malta", "united arab emirates": "United Arab Emirates",
    "uae": "United Arab Emirates", "emirates": "United Arab Emirates", "european community": "European Community",
    "rsa": "RSA", "south africa": "RSA", "lebanon": "Lebanon", "lithuania": "Lithuania", "brazil": "Brazil",
    "czech republic": "Czech Republic", "czechia": "Czech Republic", "bahrain": "Bahrain",
    "saudi arabia": "Saudi Arabia",
}
# adjectives: a country only before a word about people or markets ("dutch customers"), since several
# are words of product names too (FRENCH, SWISS, DANISH, ENGLISH)
COUNTRY_ADJECTIVES: dict[str, str] = {
    "british": "United Kingdom", "english": "United Kingdom", "uk": "United Kingdom", "irish": "EIRE",
    "dutch": "Netherlands", "german": "Germany", "french": "France", "spanish": "Spain", "belgian": "Belgium",
    "swiss": "Switzerland", "portuguese": "Portugal", "australian": "Australia", "norwegian": "Norway",
    "italian": "Italy", "finnish": "Finland", "cypriot": "Cyprus", "swedish": "Sweden", "austrian": "Austria",
    "danish": "Denmark", "japanese": "Japan", "polish": "Poland", "israeli": "Israel", "american": "USA",
    "canadian": "Canada", "greek": "Greece", "maltese": "Malta", "icelandic": "Iceland", "lebanese": "Lebanon",
    "lithuanian": "Lithuania", "brazilian": "Brazil", "czech": "Czech Republic", "saudi": "Saudi Arabia",
    "singaporean": "Singapore", "south african": "RSA",
}
# countries a worker may name that are not in the data (a question about them is refused, not guessed)
OTHER_COUNTRIES = (
    "china", "india", "mexico", "russia", "argentina", "chile", "korea", "south korea", "thailand", "turkey",
    "egypt", "nigeria", "kenya", "new zealand", "ukraine", "romania", "hungary", "luxembourg", "slovakia",
    "slovenia", "croatia", "estonia", "latvia", "bulgaria", "serbia", "morocco", "vietnam", "indonesia",
    "malaysia", "philippines", "pakistan", "bangladesh", "qatar", "kuwait", "peru", "colombia", "venezuela",
    "taiwan", "scotland yard",
)
PEOPLE_WORDS = {"customers", "customer", "clients", "client", "buyers", "buyer", "shoppers", "shops", "market",
                "markets", "orders", "sales", "people", "accounts", "stores", "retailers", "revenue", "trade"}
PLACE_PREPOSITIONS = {"in", "to", "from", "for", "across", "within", "into", "at", "by", "of"}
BUYING_VERBS = {"buy", "buys", "bought", "order", "orders", "ordered", "spend", "spends", "spent", "purchase",
                "purchases", "purchased", "return", "returns", "returned", "sales", "revenue", "customers"}

# cue words
RANK_DESC = {"top", "best", "most", "highest", "biggest", "largest", "greatest", "leading", "popular",
             "bestselling", "bestseller", "bestsellers", "busiest", "strongest", "favourite", "favorite"}
RANK_ASC = {"bottom", "worst", "least", "lowest", "fewest", "smallest", "slowest", "weakest", "quietest"}
ENTITY_WORDS = {
    "product": {"product", "products", "item", "items", "article", "articles", "seller", "sellers",
                "bestseller", "bestsellers", "lines", "sku", "skus", "goods", "things", "stuff"},
    "customer": {"customer", "customers", "client", "clients", "buyer", "buyers", "shopper", "shoppers",
                 "account", "accounts", "spender", "spenders"},
    "country": {"country", "countries", "market", "markets", "nation", "nations"},
    "month": {"month", "months"},
    "day": {"day", "days", "date", "dates"},
}
SINGULAR_ENTITY = {"product", "item", "article", "seller", "bestseller", "sku", "customer", "client", "buyer",
                   "shopper", "account", "spender", "country", "market", "nation", "month", "day", "date",
                   "thing"}
METRIC_WORDS = {
    "revenue": {"revenue", "revenues", "turnover", "takings", "income", "money", "earned", "earn", "earns",
                "spend", "spent", "spending", "spends", "value", "worth", "sales", "gbp", "pounds", "made",
                "make", "makes", "valuable", "lucrative"},
    "units": {"units", "unit", "quantity", "quantities", "pieces", "volume", "sold", "sell", "sells", "selling",
              "bestselling", "bestseller", "bestsellers", "popular", "moved", "shifted", "ordered", "bought",
              "buy", "buys", "purchased"},
    "orders": {"orders", "order", "invoices", "invoice", "transactions", "baskets", "basket", "purchases"},
    "returns": {"returns", "returned", "refunds", "refunded", "cancellations", "cancelled", "canceled",
                "return"},
    "customers": {"customers", "clients", "buyers", "shoppers"},
}
TOTAL_CUES = {"total", "how much", "how many", "number of", "count", "overall", "sum", "altogether",
              "in total", "average order value", "aov", "what was", "what were", "what is the revenue",
              "what are the sales"}
COPURCHASE_CUES = ("bought with", "bought together", "sold with", "sold together", "buy with", "buy together",
                   "goes with", "go with", "go together", "goes together", "paired with", "pairs with",
                   "purchased with", "purchased together", "ordered with", "ordered together", "along with",
                   "alongside", "also buy", "also bought", "together with", "in the same order",
                   "in the same basket", "on the same invoice", "frequently bought", "often bought",
                   "complements", "cross sell", "cross-sell")
COUNTRIES_CUES = ("which countries", "what countries", "which country", "what country", "where is", "where are",
                  "where was", "where were", "where do", "where does", "where did", "in which countries",
                  "to which countries", "which markets", "what markets", "countries ordered", "countries bought",
                  "countries buy", "countries order", "countries that")
COMPARE_CUES = {"compare", "compared", "comparing", "comparison", "vs", "versus", "against", "than",
                "difference", "change", "changed", "grow", "grew", "growth", "increase", "decrease", "up on",
                "down on", "more", "less", "better", "worse", "higher", "lower", "bigger", "smaller"}
REORDER_CUES = ("reorder", "re order", "restock", "re stock", "stock up", "order more", "replenish", "top up",
                "order again", "buy in", "should we order", "should i order", "what to order")
RETURN_RATE_CUES = ("return rate", "returns rate", "rate of return", "rate of returns", "return ratio",
                    "refund rate", "cancellation rate", "share returned", "percentage returned",
                    "percent returned", "proportion returned", "how often returned", "return rates",
                    "returned most often", "most often returned", "returned more often", "often returned")
LOOKUP_CUES = ("tell me about", "what is", "what's", "what are", "information on", "info on", "details of",
               "details on", "describe", "look up", "lookup", "do you have", "do we have", "do we sell",
               "do you sell", "looking for", "have you got", "is there", "price of", "cost of", "how much is",
               "how much does", "how much do")

# questions the data cannot answer: topic -> what is missing (the refusal names it)
OUT_OF_SCOPE: tuple[tuple[str, str], ...] = (
    (r"\b(cost price|unit cost|our costs?|costs? us|cost of goods|cogs|purchase cost|buying cost|landed cost|"
     r"wholesale cost|costs?\b(?! of\b)(?=.*\b(make|produce|buy in|supplier|acquire)\b)|what did .* cost us|"
     r"how much did we pay|costs)\b", "costs (what the shop paid for its goods)"),
    (r"\b(margins?|profits?|profitable|profitability|markup|mark up|gross profit|net profit|ebitda|roi|"
     r"return on investment)\b", "costs, margins or profit"),
    (r"\b(suppliers?|vendors?|manufacturers?|wholesalers?|made by|produced by|factory|factories|sourced|"
     r"sourcing|procurement)\b", "suppliers or where goods come from"),
    (r"\b(in stock|stock levels?|stock on hand|inventory|inventories|how many left|left in stock|"
     r"out of stock|warehouse stock|stockroom|on the shelf|on hand|how much stock|stock (do|does|did) we have|"
     r"stock of|stock left|stock count|stocktake|stock take|units left|have left)\b", "stock levels or inventory"),
    (r"\b(web ?traffic|website traffic|site traffic|visitors?|visits|page ?views?|clicks?|click through|"
     r"sessions?|bounce rate|conversion rates?|conversions?|google analytics|seo|search rankings?)\b",
     "web traffic, visits or conversion"),
    (r"\b(marketing|advertising|adverts?|ad spend|campaigns?|newsletters?|promotions? budget|"
     r"social media|instagram|facebook|tiktok)\b", "marketing or advertising"),
    (r"\b(employees?|staff|salar(y|ies)|wages?|payroll|headcount|workers)\b", "staff or wages"),
    (r"\b(delivery times?|shipping times?|lead times?|how long .* (deliver|ship|arrive)|dispatch times?|"
     r"couriers?|tracking)\b", "deliveries or shipping times"),
    (r"\b(weather|temperature|rain)\b", "the weather"),
    (r"\b(reviews?|ratings?|rated|stars?\b(?=.*\b(review|rating|customer))|feedback|complaints?|"
     r"satisfaction|nps)\b", "reviews, ratings or feedback"),
    (r"\b(competitors?|competition|market share|rivals?)\b", "competitors or market share"),
    (r"\b(forecast|forecasts|predict|prediction|projected|projection|next year|next month|next week|"
     r"next quarter|tomorrow|will sell|going to sell|future)\b", "the future (the data is history only)"),
    (r"\b(email|e mail|phone numbers?|addresses|address|postcode|post code|age|ages|gender|birthday|"
     r"names? of (the )?customers?|customer names?|who is customer|personal details)\b",
     "customers' personal details (customers are ids only)"),
    (r"\b(vat|tax|taxes|duty|duties|exchange rates?|currency conversion|in dollars|in euros|usd|eur)\b",
     "taxes or other currencies (figures are GBP as invoiced)"),
    (r"\b(payment methods?|paid by card|credit cards?|paypal|cash payments?|payment types?)\b", "payment methods"),
    (r"\b(why did|why do|why does|why is|why are|why was|why were|reason for|reasons for|cause of|"
     r"caused)\b", "causes (the data shows what happened, not why)"),
    (r"\b(ceo|owner of the (shop|company)|who founded|opening hours|store hours)\b", "the company itself"),
    (r"\b(weight|weigh|dimensions?|how big|how heavy|size of|made of|material|materials)\b",
     "product dimensions or materials (only names, prices and sales are recorded)"),
    (r"\b(discount codes?|coupons?|voucher codes?|promo codes?)\b", "discount codes"),
)
# fee, postage and voucher lines: charges, not products
FEE_WORDS = {"postage", "post", "shipping", "delivery", "carriage", "packing", "packaging", "charge", "charges",
             "fee", "fees", "voucher", "vouchers", "bank", "amazon", "commission", "manual", "discount",
             "discounts", "adjustment", "adjustments", "dotcom", "p&p", "courier", "next", "day", "gift",
             "samples", "sample", "giftvoucher"}
ALWAYS_FEES = {"postage", "shipping", "p&p", "voucher", "vouchers", "giftvoucher"}
FEE_CORE = {"postage", "shipping", "delivery", "carriage", "packing", "packaging", "fee", "fees", "voucher",
            "vouchers", "commission", "charge", "charges", "adjustment", "adjustments", "discount", "discounts",
            "samples", "giftvoucher"}

STOPWORDS = {
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "and", "or", "is", "are", "was",
    "were", "be", "been", "being", "do", "does", "did", "done", "doing", "have", "has", "had", "having", "we",
    "our", "ours", "us", "you", "your", "i", "me", "my", "it", "its", "they", "them", "their", "this", "that",
    "these", "those", "what", "which", "who", "whom", "whose", "where", "when", "how", "why", "much", "many",
    "any", "some", "all", "each", "every", "there", "here", "please", "can", "could", "would", "should", "will",
    "shall", "may", "might", "must", "tell", "show", "give", "list", "find", "get", "me", "about", "so", "far",
    "up", "down", "out", "over", "under", "than", "then", "as", "into", "per", "via", "also", "just", "only",
    "ever", "still", "yet", "if", "not", "no", "yes", "okay", "ok", "hi", "hello", "thanks", "thank", "kindly",
    "whats", "what's", "information", "info", "details", "detail", "figures", "figure", "stats", "statistics",
    "numbers", "number", "data", "report", "look", "looking", "lookup", "know", "want", "need", "like", "see",
    "one", "ones", "did", "sale", "sales", "sell", "sells", "selling", "sold", "buy", "buys", "bought", "buying",
    "order", "orders", "ordered", "ordering", "purchase", "purchases", "purchased", "units", "unit", "revenue",
    "total", "price", "prices", "priced", "cost", "costs", "costing", "stock", "code", "codes", "product",
    "products", "item", "items", "article", "articles", "thing", "things", "stuff", "goods", "shop", "store",
    "make", "made", "makes", "well", "good", "great", "best", "top", "most", "more", "less", "least", "worst",
    "lowest", "highest", "popular", "rank", "ranking", "ranked", "period", "time", "times", "during",
    "between", "since", "until", "till", "through", "across", "within", "again", "amount", "quantity",
    "value", "customers", "customer", "countries", "country", "returns", "returned", "return", "rate",
    "money", "bring", "brought", "earn", "earned", "generate", "generated", "currently", "right", "now",
    "recently", "lately", "often", "frequently", "usually", "together", "alongside", "along", "same",
    "other", "else", "people", "someone", "anyone", "everyone", "who", "does", "compare", "vs", "versus",
    "against", "higher", "lower", "bigger", "smaller", "largest", "biggest", "smallest", "next", "previous",
    "last", "first", "year", "years", "month", "months", "week", "weeks", "day", "days", "quarter",
    "quarters", "date", "dates", "ago", "past", "recent", "current", "latest", "sum", "count", "overall",
    "average", "avg", "mean", "typical", "figure", "share", "percentage", "percent", "proportion", "ratio",
    "versus", "difference", "change", "changed", "compared", "comparing", "comparison", "grow", "grew",
    "growth", "increase", "decrease", "better", "worse", "sellers", "seller", "bestseller", "bestsellers", "bestselling",
    "shoppers", "clients", "client", "buyers", "buyer", "invoice", "invoices", "basket", "baskets", "go",
    "goes", "went", "come", "comes", "paired", "pairs", "pair", "around", "approximately", "roughly",
    "exactly", "precisely", "both", "either", "neither", "whole", "entire", "altogether", "altogether",
    "reorder", "restock", "replenish", "name", "named", "called", "called", "type", "kind", "kinds", "sort",
    "variety", "range", "ranges", "cheap", "cheaper", "cheapest", "expensive", "pricey", "pounds", "pound",
    "pence", "gbp", "quid", "cheaply", "affordable", "anything", "something", "everything", "nothing",
    "ones", "via", "uk", "markets", "market", "stores", "retail", "retailer", "account", "accounts", "spent",
    "spend", "spending", "spender", "spenders", "moved", "shifted", "volume", "volumes", "pieces", "piece",
    "lines", "line", "sku", "skus", "distinct", "different", "unique", "available", "offer", "offered",
    "carry", "stocked", "stocking", "catalogue", "catalog", "assortment", "ordering", "trend", "trends",
    "performance", "perform", "performed", "performing", "did", "doing", "does", "turnover", "takings",
    "income", "worth", "lucrative", "valuable", "busiest", "quietest", "strongest", "weakest", "leading",
    "fewest", "slowest", "favourite", "favorite", "greatest", "bottom", "refunds", "refunded", "refund",
    "cancellations", "cancelled", "canceled", "cancellation", "net", "gross", "including", "excluding",
    "included", "excluded", "guest", "guests", "known", "identified", "during", "throughout", "whilst",
    "while", "season", "festive", "holiday", "holidays", "period", "periods", "we've", "weve", "ive",
    "much", "has", "had", "been", "apart", "besides", "except", "aside", "nation", "nations", "placed",
    "place", "places", "which", "went", "gone", "amounts", "totals", "totalled", "totaled", "grand",
    "combined", "altogether", "individually", "each", "per", "every", "come", "came", "week", "ordered",
    "bestsellers", "bestseller", "buyers", "take", "takes", "took", "taken", "taking", "got", "gets",
    "getting", "receive", "received", "came", "back", "put", "use", "used", "using", "keep", "kept", "let",
    "say", "said", "seen", "wanted", "needed", "usually", "normally", "typically", "generally", "mostly",
    "mainly", "us", "ourselves", "anybody", "somebody", "everybody", "can't", "cant", "isnt", "arent",
    "wasnt", "werent", "didnt", "doesnt", "dont", "gone", "happen", "happened", "happening", "terms",
    "regarding", "respect", "concerning", "based", "according", "overview", "summary", "breakdown", "ship",
    "shipped", "send", "sent", "deliver", "delivered", "dispatch", "dispatched", "level", "levels", "values",
    "result", "results", "records", "record", "history", "historical", "trending", "relative", "relatively",
    "compare", "figure", "out", "ones", "whole", "full", "entire", "complete", "available", "possible",
}


@dataclass(frozen=True)
class Period:
    start: dt.date
    end: dt.date
    label: str
    note: str = ""

    def describe(self) -> str:
        span = (f"{self.start.isoformat()}" if self.start == self.end
                else f"{self.start.isoformat()} to {self.end.isoformat()}")
        text = self.label if self.label == span else f"{self.label} ({span})"
        return text + (f"; {self.note}" if self.note else "")


@dataclass
class Vocabulary:
    """What the parser needs to know of the data: its countries (as spelt in the data, without
    'Unspecified'), its first and last day of sales, the words of product names, the stock codes."""

    countries: tuple[str, ...]
    first_day: dt.date
    last_day: dt.date
    product_words: frozenset[str] = frozenset()
    codes: frozenset[str] = frozenset()
    _spell: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._known = set(self.product_words) | KEYWORDS | STOPWORDS | set(MONTHS) | set(NUMBER_WORDS)
        for alias in (*COUNTRY_ALIASES, *COUNTRY_ADJECTIVES, *OTHER_COUNTRIES, *(c.lower() for c in self.countries)):
            self._known.update(alias.split())
        self._keyword_list = sorted((KEYWORDS | set(MONTHS) | {w for a in (*COUNTRY_ALIASES, *COUNTRY_ADJECTIVES)
                                                               for w in a.split()}) - {"vs", "gb", "uk", "usa"})
        self._product_list = sorted(self.product_words)

    def correct(self, word: str) -> str:
        """A misspelt word's closest known word (parser words first, then product words), else itself."""
        if word in self._known or len(word) < 4 or not word.isalpha():
            return word
        if word not in self._spell:
            # a typo keeps the first letter (``iphone`` is not a misspelt ``phone``)
            same_start = [w for w in self._keyword_list if w[0] == word[0]]
            best = difflib.get_close_matches(word, same_start, n=1, cutoff=0.8)
            if not best:
                same_start = [w for w in self._product_list if w[0] == word[0] and abs(len(w) - len(word)) <= 2]
                best = difflib.get_close_matches(word, same_start, n=1, cutoff=0.8)
            if not best:  # two words written as one ("bulldog": BULL DOG)
                for i in range(3, len(word) - 2):
                    if word[:i] in self.product_words and word[i:] in self.product_words:
                        best = [f"{word[:i]} {word[i:]}"]
                        break
            self._spell[word] = best[0] if best else word
        return self._spell[word]

    def is_known(self, word: str) -> bool:
        return word in self._known


KEYWORDS = (set().union(*ENTITY_WORDS.values()) | set().union(*METRIC_WORDS.values()) | RANK_DESC | RANK_ASC
            | COMPARE_CUES | {"return", "rate", "total", "average", "many", "much", "number", "together", "which",
                              "countries", "reorder", "restock", "quarter", "year", "month", "week", "last",
                              "previous", "this", "between", "compare", "christmas", "xmas", "cheap",
                              "cheaper", "under", "below", "above", "over", "price", "priced", "pence",
                              "pounds", "postage", "shipping", "delivery", "voucher", "supplier", "margin",
                              "profit", "inventory", "traffic", "visitors", "customer", "bought"})


@dataclass
class Query:
    """A parsed question. ``family``: lookup | ranking | total | return_rate | copurchase |
    product_countries | product_period | compare | refusal | unknown."""

    question: str
    family: str = "lookup"
    entity: str | None = None  # product | customer | country | month | day
    metric: str | None = None  # revenue | units | orders | returns | return_rate | customers | products | countries | aov
    n: int | None = None
    order: str = "desc"
    period: Period | None = None
    period2: Period | None = None
    country: str | None = None
    customer: str | None = None
    codes: tuple[str, ...] = ()
    text: str = ""  # what is left: a product name, or words product names must contain
    words: tuple[tuple[str, ...], ...] = ()  # the text's filter words (alternatives per word), upper case
    price_min: float | None = None
    price_max: float | None = None
    reorder: bool = False
    singular: bool = False
    refusal: str | None = None  # what the data does not hold (family refusal)
    fee: bool = False  # asks about a fee, postage or voucher line
    unknown_words: tuple[str, ...] = ()  # product words the data has never seen
    normalized: str = ""
    notes: list[str] = field(default_factory=list)

    def filters(self) -> dict:
        out: dict = {}
        for key in ("country", "customer", "codes", "words", "price_min", "price_max"):
            v = getattr(self, key)
            if v:
                out[key] = v
        if self.period:
            out["period"] = [self.period.start.isoformat(), self.period.end.isoformat()]
        return out


# ------------------------------------------------------------------------------------------ normalising
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                         "\u00a3": " £"})


def normalize(text: str, vocabulary: Vocabulary | None = None) -> str:
    """Lower case, one space between words, hyphens and most punctuation as spaces, apostrophes dropped,
    ``£`` kept before amounts; ISO dates (2011-03-05) and d/m/y dates kept whole. Misspelt words corrected
    when a vocabulary is given."""
    s = str(text or "").translate(_QUOTES).lower()
    s = re.sub(r"(\d{4})-(\d{1,2})-(\d{1,2})", r"\1§\2§\3", s)  # keep ISO dates
    s = re.sub(r"(\d{4})-(\d{1,2})\b", r"\1§\2", s)  # ISO months 2011-03
    s = re.sub(r"(\d)\s*[-\u2013]\s*(\d)", r"\1 to \2", s)  # 1-3 (ranges of numbers)
    s = s.replace("'", "").replace("&", " and ")
    s = re.sub(r"(?<=\d)\.(?=\d)", "·", s)  # decimal points
    s = re.sub(r"[^a-z0-9£§·/%<>\s]", " ", s)
    s = s.replace("·", ".").replace("§", "-")
    s = re.sub(r"\s+", " ", s).strip()
    if vocabulary is not None:
        s = " ".join(vocabulary.correct(w) for w in s.split(" "))
    return s


def _span_blank(s: str, start: int, end: int) -> str:
    return s[:start] + " " * (end - start) + s[end:]


# ------------------------------------------------------------------------------------------ periods
def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def _add_months(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    y, m = day.year + m // 12, m % 12 + 1
    return dt.date(y, m, min(day.day, _month_end(y, m).day))


@dataclass
class _P:
    """A period found in the text: its span, and either a date range or a month/quarter without a year."""
    start: int
    end: int
    first: dt.date | None = None
    last: dt.date | None = None
    label: str = ""
    month: int | None = None  # a month without a year
    quarter: int | None = None  # a quarter without a year
    year_given: bool = True
    relative: bool = False


_MONTH_RE = r"(january|february|march|april|may|june|july|august|september|october|november|december|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)"
_DAY_RE = r"(\d{1,2})(?:st|nd|rd|th)?"
_YEAR_RE = r"((?:19|20)\d{2})"


def _find_periods(s: str, v: Vocabulary) -> tuple[list[_P], str]:
    found: list[_P] = []

    def take(pattern: str, make) -> None:  # noqa: ANN001
        nonlocal s
        for m in list(re.finditer(pattern, s)):
            if not s[m.start():m.end()].strip():
                continue
            p = make(m)
            if p is None:
                continue
            p.start, p.end = m.start(), m.end()
            found.append(p)
            s = _span_blank(s, m.start(), m.end())

    def day(y: int, mo: int, d: int) -> dt.date | None:
        try:
            return dt.date(y, mo, d)
        except ValueError:
            return None

    def one_day(d: dt.date | None, label: str | None = None) -> _P | None:
        return None if d is None else _P(0, 0, d, d, label or d.isoformat())

    # single days
    take(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b", lambda m: one_day(day(int(m[1]), int(m[2]), int(m[3]))))
    take(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", lambda m: one_day(day(int(m[3]), int(m[2]), int(m[1]))))
    take(rf"\b{_DAY_RE} (?:of )?{_MONTH_RE},? {_YEAR_RE}\b",
         lambda m: one_day(day(int(m[3]), MONTHS[m[2]], int(m[1]))))
    take(rf"\b{_MONTH_RE} {_DAY_RE},? {_YEAR_RE}\b", lambda m: one_day(day(int(m[3]), MONTHS[m[1]], int(m[2]))))
    # quarters
    quarter_words = r"(q[1-4]|(?:first|second|third|fourth|1st|2nd|3rd|4th) quarter)"

    def quarter(text: str, year: int | None) -> _P:
        q = int(text[1]) if text.startswith("q") else ORDINALS[text.split()[0]]
        if year is None:
            return _P(0, 0, quarter=q, year_given=False, label=f"Q{q}")
        first = dt.date(year, 3 * q - 2, 1)
        return _P(0, 0, first, _month_end(year, 3 * q), f"Q{q} {year}")

    take(rf"\b{quarter_words} (?:of |in )?{_YEAR_RE}\b", lambda m: quarter(m[1], int(m[2])))
    take(rf"\b{_YEAR_RE} {quarter_words}\b", lambda m: quarter(m[2], int(m[1])))
    take(rf"\b(?:the )?{quarter_words}\b", lambda m: quarter(m[1], None))

    def half(text: str, year: int) -> _P:
        h = 1 if text in ("first", "1st", "h1") else 2
        return _P(0, 0, dt.date(year, 6 * h - 5, 1), _month_end(year, 6 * h), f"H{h} {year}")

    take(rf"\b(?:the )?(first|second|1st|2nd) half (?:of |in )?{_YEAR_RE}\b", lambda m: half(m[1], int(m[2])))
    take(rf"\b(h1|h2) {_YEAR_RE}\b", lambda m: half(m[1], int(m[2])))
    # months with a year
    def month_year(mo: int, year: int) -> _P:
        return _P(0, 0, dt.date(year, mo, 1), _month_end(year, mo), f"{MONTH_NAMES[mo - 1]} {year}")

    take(rf"\b{_MONTH_RE},? (?:of )?{_YEAR_RE}\b", lambda m: month_year(MONTHS[m[1]], int(m[2])))
    take(r"\b(\d{4})-(\d{1,2})\b", lambda m: month_year(int(m[2]), int(m[1])) if 1 <= int(m[2]) <= 12 else None)
    take(r"\b(\d{1,2})/(\d{4})\b", lambda m: month_year(int(m[1]), int(m[2])) if 1 <= int(m[1]) <= 12 else None)

    # relative periods, measured from the data's last day
    last = v.last_day

    def relative(kind: str, n: int = 1, this: bool = False) -> _P:
        if kind == "month":
            if this:
                return _P(0, 0, last.replace(day=1), last, f"this month ({MONTH_NAMES[last.month - 1]} {last.year})",
                          relative=True)
            first = _add_months(last.replace(day=1), -1)
            return _P(0, 0, first, _month_end(first.year, first.month),
                      f"last month ({MONTH_NAMES[first.month - 1]} {first.year})", relative=True)
        if kind == "year":
            y = last.year if this else last.year - 1
            return _P(0, 0, dt.date(y, 1, 1), dt.date(y, 12, 31), f"{'this' if this else 'last'} year ({y})",
                      relative=True)
        if kind == "quarter":
            q = (last.month - 1) // 3 + 1
            y = last.year
            if not this:
                q -= 1
                if q == 0:
                    q, y = 4, y - 1
            return _P(0, 0, dt.date(y, 3 * q - 2, 1), _month_end(y, 3 * q),
                      f"{'this' if this else 'last'} quarter (Q{q} {y})", relative=True)
        if kind == "week":
            monday = last - dt.timedelta(days=last.weekday())
            if this:
                return _P(0, 0, monday, monday + dt.timedelta(days=6), "this week", relative=True)
            return _P(0, 0, monday - dt.timedelta(days=7), monday - dt.timedelta(days=1), "last week", relative=True)
        raise ValueError(kind)

    def rolling(n: int, unit: str) -> _P:
        unit = unit.rstrip("s")
        if unit == "day":
            first = last - dt.timedelta(days=n - 1)
        elif unit == "week":
            first = last - dt.timedelta(days=7 * n - 1)
        elif unit == "month":
            first = _add_months(last, -n) + dt.timedelta(days=1)
        else:
            first = _add_months(last, -12 * n) + dt.timedelta(days=1)
        return _P(0, 0, first, last, f"the last {n} {unit}{'s' if n != 1 else ''} of the data", relative=True)

    num = r"(\d+|" + "|".join(k for k in NUMBER_WORDS if " " not in k) + ")"
    take(rf"\b(?:in |over |during |for |within )?(?:the )?(?:last|past|previous|recent) {num} (days?|weeks?|months?|years?)\b",
         lambda m: rolling(int(m[1]) if m[1].isdigit() else NUMBER_WORDS[m[1]], m[2]))
    take(r"\b(?:the )?(?:last|previous|past) (month|year|quarter|week)\b", lambda m: relative(m[1]))
    take(r"\b(?:this|the current|current) (month|year|quarter|week)\b", lambda m: relative(m[1], this=True))
    take(r"\b(?:yesterday)\b", lambda m: one_day(last - dt.timedelta(days=1), "yesterday"))
    take(r"\b(?:today)\b", lambda m: one_day(last, "today"))
    # months without a year ("may" only with a preposition: it is also a verb)
    take(rf"\b(?:in|during|for|of|from|since|until|till|to|through|between|and|vs|versus|than|with) {_MONTH_RE}\b(?! \d)",
         lambda m: _P(0, 0, month=MONTHS[m[1]], year_given=False, label=MONTH_NAMES[MONTHS[m[1]] - 1]))
    take(r"\b(january|february|march|april|june|july|august|september|october|november|december)\b",
         lambda m: _P(0, 0, month=MONTHS[m[1]], year_given=False, label=MONTH_NAMES[MONTHS[m[1]] - 1]))
    # years
    take(rf"\b{_YEAR_RE}\b", lambda m: _P(0, 0, dt.date(int(m[1]), 1, 1), dt.date(int(m[1]), 12, 31), m[1]))
    found.sort(key=lambda p: p.start)
    return found, s


def _resolve_years(found: list[_P], v: Vocabulary) -> None:
    """A month or quarter without a year: the year of another period of the question, else its last
    occurrence in the data."""
    years = [p.first.year for p in found if p.year_given and p.first is not None]
    for p in found:
        if p.year_given:
            continue
        if p.month:
            year = years[0] if years else (v.last_day.year if p.month <= v.last_day.month else v.last_day.year - 1)
            p.first, p.last = dt.date(year, p.month, 1), _month_end(year, p.month)
            p.label = f"{MONTH_NAMES[p.month - 1]} {year}"
        elif p.quarter:
            q = p.quarter
            last_q = (v.last_day.month - 1) // 3 + 1
            year = years[0] if years else (v.last_day.year if q <= last_q else v.last_day.year - 1)
            p.first, p.last = dt.date(year, 3 * q - 2, 1), _month_end(year, 3 * q)
            p.label = f"Q{q} {year}"


def _clip(first: dt.date, last: dt.date, label: str, v: Vocabulary) -> Period | None:
    """The part of [first, last] the data covers (None: none of it), with a note when it is partial."""
    if last < v.first_day or first > v.last_day:
        return None
    note = ""
    lo, hi = max(first, v.first_day), min(last, v.last_day)
    if lo > first and hi < last:
        note = f"the data covers only {lo.isoformat()} to {hi.isoformat()} of it"
    elif lo > first:
        note = f"the data starts on {v.first_day.isoformat()}"
    elif hi < last:
        note = f"the data ends on {v.last_day.isoformat()}"
    return Period(lo, hi, label, note)


# ------------------------------------------------------------------------------------------ the parser
def _has(s: str, phrases) -> bool:  # noqa: ANN001
    """Whether ``s`` (normalised: words separated by single spaces) holds one of the phrases as whole
    words (no regular expressions: a new process compiles each one)."""
    padded = f" {s} "
    return any(f" {p} " in padded for p in phrases)


def _words(s: str) -> list[str]:
    return [w for w in s.split() if w]


def filter_word(word: str, vocabulary: Vocabulary) -> tuple[str, ...] | None:
    """A word of a question as product-name words: its singular form when the plural is not itself a
    word of product names (``mugs`` -> MUG matches MUG and MUGS); Christmas also matches XMAS. None for
    words too short to filter by."""
    if len(word) < 2 or word.isdigit():
        return None
    if word in ("christmas", "xmas"):
        return ("CHRISTMAS", "XMAS")
    w = word
    known = vocabulary.product_words
    if w not in known or w.endswith("s"):
        for cand in ((w[:-3] + "y") if w.endswith("ies") else None, w[:-2] if w.endswith(("ses", "xes", "ches", "shes")) else None,
                     w[:-1] if w.endswith("s") and not w.endswith("ss") else None):
            if cand and (cand in known or any(k.startswith(cand) for k in known if len(k) <= len(cand) + 2)):
                w = cand
                break
    return (w.upper(),)


def parse(question: str, vocabulary: Vocabulary) -> Query:
    v = vocabulary
    q = Query(question=question)
    raw = normalize(question)
    s = normalize(question, v)
    q.normalized = s

    # -- refusals by topic (checked on the whole question, as written and with its spelling corrected)
    for pattern, what in OUT_OF_SCOPE:
        if re.search(pattern, raw) or re.search(pattern, s):
            q.family, q.refusal = "refusal", what
            return q

    # -- periods
    found, rest = _find_periods(s, v)
    _resolve_years(found, v)
    compare = _has(s, COMPARE_CUES) and len(found) >= 2
    periods: list[_P] = []
    for p in found:
        if periods:
            between = s[periods[-1].end:p.start].strip()
            before = s[:periods[-1].start].rstrip()
            joins = between in ("to", "until", "till", "through", "up to", "and") and (
                between != "and" or before.endswith("between"))
            if joins and not compare:
                prev = periods[-1]
                prev.last, prev.end = p.last, p.end
                prev.label = f"{prev.first.isoformat()} to {p.last.isoformat()}"
                if prev.first and p.first and prev.first.day == 1 and p.last == _month_end(p.last.year, p.last.month):
                    prev.label = f"{prev_label(prev.first)} to {MONTH_NAMES[p.last.month - 1]} {p.last.year}"
                continue
        periods.append(p)
    clipped: list[Period] = []
    for p in periods:
        per = _clip(p.first, p.last, p.label, v)
        if per is None:
            q.family = "refusal"
            q.refusal = (f"{p.label}: the data covers {v.first_day.isoformat()} to {v.last_day.isoformat()} "
                         "only")
            q.period = Period(p.first, p.last, p.label)
            return q
        clipped.append(per)
    if re.search(r"\bsince\b", s) and clipped and not compare:
        clipped[0] = Period(clipped[0].start, v.last_day, f"since {clipped[0].label}")
    if re.search(r"\b(until|till|up to|before)\b", s) and len(clipped) == 1 and not re.search(r"\b(from|between|since)\b", s):
        clipped[0] = Period(v.first_day, clipped[0].end, f"until {clipped[0].label}")
    if clipped:
        q.period = clipped[0]
    if len(clipped) >= 2:
        q.period2 = clipped[1]

    # -- country
    rest_padded = f" {rest} "
    for alias in sorted(COUNTRY_ALIASES, key=len, reverse=True):
        hit = rest_padded.find(f" {alias} ")
        if hit < 0:
            continue
        start, end = hit + 1, hit + 1 + len(alias)
        if rest_padded[:start].endswith(" the "):
            start -= 4
        target = COUNTRY_ALIASES[alias]
        before = rest_padded[:start].split()[-1:] or [""]
        after = rest_padded[end:].split()[:1] or [""]
        is_product_word = all(w in v.product_words for w in alias.split())
        if is_product_word and before[0] not in PLACE_PREPOSITIONS and after[0] not in PEOPLE_WORDS | BUYING_VERBS:
            continue
        country = next((c for c in v.countries if c.lower() == target.lower()), None)
        if country is None:
            q.family, q.refusal = "refusal", f"country:{target}"
            return q
        q.country = country
        rest_padded = _span_blank(rest_padded, start, end)
        break
    if q.country is None:
        for adj in sorted(COUNTRY_ADJECTIVES, key=len, reverse=True):
            hit = rest_padded.find(f" {adj} ")
            if hit < 0:
                continue
            following = rest_padded[hit + len(adj) + 2:].split()[:1]
            if following and following[0] in PEOPLE_WORDS:
                target = COUNTRY_ADJECTIVES[adj]
                q.country = next((c for c in v.countries if c.lower() == target.lower()), None)
                if q.country is None:
                    q.family, q.refusal = "refusal", f"country:{target}"
                    return q
                rest_padded = _span_blank(rest_padded, hit + 1, hit + 1 + len(adj))
                break
    if q.country is None:
        for other in OTHER_COUNTRIES:
            hit = rest_padded.find(f" {other} ")
            if hit < 0:
                continue
            before = rest_padded[:hit + 1].split()[-1:] or [""]
            after = rest_padded[hit + 1 + len(other):].split()[:1] or [""]
            if other not in v.product_words or before[0] in PLACE_PREPOSITIONS or after[0] in PEOPLE_WORDS:
                q.family, q.refusal = "refusal", f"country:{other.title()}"
                return q
    rest = rest_padded.strip()

    # -- fees, postage and vouchers: charges, not products (postage, shipping and vouchers are in no product
    # name; carriage, packing, charges and fees only when nothing else is asked about)
    content = [w for w in _words(rest) if w not in STOPWORDS and not w.isdigit()]
    if content and (any(w in ALWAYS_FEES for w in content) or (
            any(w in FEE_CORE for w in content) and all(w in FEE_WORDS for w in content))):
        q.family, q.fee = "refusal", True
        q.refusal = "fee"
        return q

    # -- customer id
    m = re.search(r"\b(?:customer|client|account|buyer|shopper)s? (?:id |number |no |# ?)?([a-z]?\d+)\b"
                  r"|\bcustomer id (\w+)\b", rest)
    if m:
        q.customer = m.group(1) or m.group(2)
        rest = _span_blank(rest, m.start(), m.end())

    # -- stock codes (known codes; a 'code'/'product'/'item' word before a number makes it one)
    codes = []
    for m in re.finditer(r"\b([a-z]{0,6}\d{3,}[a-z]{0,3})\b", rest):
        token = m.group(1).upper()
        if token in v.codes or re.search(r"(code|product|item|sku|article|number|no|#)\s*$", rest[:m.start()]):
            codes.append(token)
            rest = _span_blank(rest, m.start(), m.end())
    q.codes = tuple(dict.fromkeys(codes))

    # -- price range
    money = r"(£\s*\d+(?:\.\d+)?|\d+(?:\.\d+)?\s*(?:p|pence|pounds?|gbp|quid)\b|\d+(?:\.\d+)?)"

    def amount(text: str) -> float:
        t = text.replace("£", "").strip()
        num = float(re.match(r"\d+(?:\.\d+)?", t).group(0))
        if re.search(r"(p|pence)$", t):
            num /= 100
        return num

    def has_currency(text: str) -> bool:
        return bool(re.search(r"£|\d\s*(p|pence|pounds?|gbp|quid)\b", text))

    pm = re.search(rf"\b(?:priced |costing |price |at a price |unit price )?between {money} and {money}", rest)
    if pm and (has_currency(pm.group(0)) or re.search(r"pric|cost", pm.group(0))):
        q.price_min, q.price_max = amount(pm.group(1)), amount(pm.group(2))
        rest = _span_blank(rest, pm.start(), pm.end())
    for pattern, side in ((rf"\b(?:under|below|less than|cheaper than|up to|at most|no more than|lower than|<)\s*{money}", "max"),
                          (rf"\b(?:over|above|more than|at least|dearer than|pricier than|higher than|>)\s*{money}", "min")):
        pm = re.search(pattern, rest)
        if pm and (has_currency(pm.group(0)) or re.search(r"\b(pric\w*|cost\w*|cheap\w*)\b", rest)):
            if side == "max":
                q.price_max = amount(pm.group(1))
            else:
                q.price_min = amount(pm.group(1))
            rest = _span_blank(rest, pm.start(), pm.end())

    # -- N and direction
    num = r"(\d+|" + "|".join(NUMBER_WORDS) + ")"
    order_words = RANK_DESC | RANK_ASC
    nm = (re.search(rf"\b(top|bottom|best|worst|first|last|most|least|highest|lowest|leading)\s+{num}\b", rest)
          or re.search(rf"\b{num}\s+(?:best|worst|top|bottom|most|least|highest|lowest|biggest|largest|leading|"
                       rf"smallest|popular|bestselling|busiest|quietest|slowest|fewest)\b", rest)
          or re.search(rf"\b{num}\s+(?:{'|'.join(sorted(set().union(*ENTITY_WORDS.values())))})\b", rest))
    if nm:
        token = next(g for g in nm.groups() if g and (g.isdigit() or g in NUMBER_WORDS))
        q.n = int(token) if token.isdigit() else NUMBER_WORDS[token]
        rest = _span_blank(rest, nm.start(), nm.end()) if nm.group(0).split()[0] in (*order_words, "first", "last") \
            or nm.group(0).split()[0].isdigit() or nm.group(0).split()[0] in NUMBER_WORDS else rest
        if re.search(r"\b(bottom|worst|least|lowest|fewest|smallest|slowest|quietest)\b", nm.group(0)):
            q.order = "asc"
    words = _words(s)
    no_at_least = re.sub(r"\bat least\b", " ", s)
    asc = any(w in RANK_ASC for w in no_at_least.split()) or _has(s, (
        "sell badly", "sell poorly", "sold badly", "sold poorly", "not selling", "dont sell", "sells worst",
        "slow moving", "slow sellers", "poor sellers", "less popular", "unpopular"))
    desc = any(w in RANK_DESC for w in words) or _has(s, ("sells best", "sell best", "sold best", "sold most",
                                                         "sells most", "sell most", "sell well", "sells well",
                                                         "sold well", "spent most", "spend most", "the most",
                                                         "bought most", "ordered most", "most often"))
    if asc:  # "least popular": the modifier decides
        q.order = "asc"
        desc = False

    # -- entity and metric
    entity_hits = [(e, w) for w in words for e, ws in ENTITY_WORDS.items() if w in ws]
    if entity_hits:
        q.entity = entity_hits[0][0]
        q.singular = entity_hits[0][1] in SINGULAR_ENTITY
    if q.entity is None and re.search(r"\bwhich (?!\w+s\b)\w+ (sells|sold|is|was|has|had|makes|made)\b", s):
        q.singular = True
    if _has(s, ("who spent", "who buys", "who bought", "who orders", "who ordered", "who spends", "whom")) and q.entity is None:
        q.entity = "customer"
    metric = None
    if _has(s, RETURN_RATE_CUES) or re.search(
            r"\b(percentage|percent|share|proportion|fraction|%)\b.*\b(returns?|returned|came back|come back|"
            r"refunds?|refunded)\b|\b(returns?|returned|refunds?)\b.*\b(percentage|percent|share|proportion|"
            r"fraction|%)\b", s):
        metric = "return_rate"
    elif _has(s, ("average order value", "aov", "average order", "average basket", "basket size", "average spend per order")):
        metric = "aov"
    elif any(w in METRIC_WORDS["returns"] for w in words):
        metric = "returns"
    elif (any(w in METRIC_WORDS["orders"] for w in words) and not _has(s, ("ordered", "order more"))) or _has(
            s, ("most ordered", "ordered most", "most often ordered", "ordered most often", "least ordered")):
        metric = "orders"
    elif any(w in METRIC_WORDS["revenue"] for w in words) or "£" in rest or _has(s, ("how much money", "how much did we make", "how much did", "how much revenue")):
        metric = "revenue"
        if _has(s, ("how many", "units")) and not _has(s, ("revenue", "money", "value", "turnover", "£", "spent", "spend")):
            metric = "units"
    elif any(w in METRIC_WORDS["units"] for w in words):
        metric = "units"
    if _has(s, ("how many customers", "number of customers", "how many clients", "how many buyers",
                "how many different customers", "customer count", "count of customers", "how many shoppers")):
        metric = "customers"
    elif _has(s, ("how many products", "number of products", "how many different products", "how many items",
                  "how many skus", "product count", "how many stock codes", "how many distinct products")) \
            and not q.codes:
        metric = "products"
    elif _has(s, ("how many countries", "number of countries", "how many markets", "country count")):
        metric = "countries"
    elif _has(s, ("how many orders", "number of orders", "how many invoices", "number of invoices",
                  "order count", "how many transactions", "how many baskets")):
        metric = "orders"
    q.metric = metric

    # -- what is left: the product text
    left = [w for w in _words(rest) if w not in STOPWORDS and w not in order_words and not re.fullmatch(r"[<>%/£-]+", w)]
    left = [w for w in left if not (w in NUMBER_WORDS and q.n is not None)]
    q.text = " ".join(left)
    product_left = [w for w in left if not w.isdigit()]
    q.unknown_words = tuple(w for w in product_left if w not in v.product_words and not w.isdigit()
                            and w not in KEYWORDS and len(w) > 1)

    # -- the family
    has_product = bool(q.codes or product_left)
    if _has(s, COPURCHASE_CUES) or re.search(r"\bwith (it|this|that)\b", s):
        q.family = "copurchase"
    elif _has(s, REORDER_CUES):
        q.family, q.reorder = "ranking", True
        q.entity, q.metric = "product", "units"
    elif has_product and (_has(s, COUNTRIES_CUES) or (q.entity == "country" and not q.country and not desc and not asc)):
        q.family = "product_countries"
    elif compare and q.period2 is not None:
        q.family = "compare"
    elif metric == "return_rate" and not q.codes and (desc or asc or q.n or re.search(
            r"\b(which|what) (\w+ )?(products?|items?|countries|customers|months)\b|\b(products|customers|countries) by\b", s)):
        q.family = "ranking"
        q.entity = q.entity or "product"
    elif metric == "return_rate":
        q.family = "return_rate"
    elif (desc or asc or q.n) and (q.entity or metric or not has_product or q.price_max or q.price_min
                                  or _has(s, ("sells best", "sell best", "sold best", "best selling",
                                              "bestselling", "sold most", "sell well", "sells well", "most popular",
                                              "least popular", "sold least", "sell badly", "sell poorly"))):
        q.family = "ranking"
    elif q.entity in ("customer", "country", "month", "day") and re.search(
            r"\b(which|what) (\w+ ){0,2}(customers?|clients?|buyers?|countries|country|markets?|months?|days?|dates?)\b"
            r"|\bwho\b", s) and not _has(s, ("how many", "how much", "number of")):
        q.family = "ranking"
    elif not q.codes and re.search(r"\b(products|items|customers|clients|countries|markets|months|days) (ranked )?by\b"
                                   r"|\b(rank|ranking|ranked|league table|leaderboard)\b", s):
        q.family = "ranking"
    elif metric in ("customers", "products", "countries", "orders", "aov") and not has_product and q.customer is None:
        q.family = "total"
    elif q.customer is not None:
        q.family = "total"
    elif has_product and (q.period or q.country):
        q.family = "product_period"
    elif has_product and (q.price_max is not None or q.price_min is not None):
        q.family = "ranking"
    elif has_product and not q.codes and (metric in ("revenue", "units", "orders", "returns") and _has(s, TOTAL_CUES)):
        q.family = "total"
    elif has_product:
        q.family = "lookup"
    elif metric or q.period or q.country or _has(s, TOTAL_CUES):
        q.family = "total"
    else:
        q.family = "unknown"

    if q.family == "ranking":
        q.entity = q.entity or "product"
        if q.metric in (None, "customers", "products", "countries"):
            q.metric = {"product": "units", "customer": "revenue", "country": "revenue", "month": "revenue",
                        "day": "revenue"}[q.entity]
        if q.entity == "customer" and q.metric == "units" and not _has(s, ("units", "quantity", "pieces", "volume")):
            q.metric = "revenue"  # "who bought the most": by what they spent
        if q.n is None:
            q.n = 1 if q.singular else 10
        if q.reorder and q.period is None:
            start = _add_months(v.last_day, -3) + dt.timedelta(days=1)
            q.period = Period(start, v.last_day, "the last 3 months of the data")
    if q.family in ("product_countries", "product_period", "copurchase", "lookup") or (
            q.family in ("ranking", "total", "return_rate", "compare") and product_left):
        q.words = tuple(fw for fw in (filter_word(w, v) for w in product_left) if fw)
    if q.family == "total" and q.metric is None:
        q.metric = "revenue"
    if q.family == "compare" and q.metric is None:
        q.metric = "customers" if q.entity == "customer" else "revenue"
    return q


def prev_label(day: dt.date) -> str:
    return f"{MONTH_NAMES[day.month - 1]} {day.year}"

