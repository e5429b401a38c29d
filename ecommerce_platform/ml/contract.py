"""What the ML layer promises, in one light module (no numpy: the Dagster surface imports it when the
definitions load): the gates that decide what is served, and the columns of the tables it publishes.
The plain modules (classifier, segments, recommender) import these names from here."""

from __future__ import annotations

# Every gate decides on a margin D = model - what it must beat, measured on the test set with its
# uncertainty: served when the CONFIDENCE-level interval of D lies above 0, rejected (the check fails)
# when it lies below 0, inconclusive (not served, the previous model stays, the check warns) when the
# interval straddles 0: the test set is too small to decide (metrics.decide).
CONFIDENCE = 0.90
BOOTSTRAP_SAMPLES = 2000

# classifier: D = test ROC-AUC - (the strongest baseline's ROC-AUC + MIN_AUC_MARGIN), DeLong interval;
# the baselines (logistic regressions on 1, 4 and all features) are trained on the same split.
MIN_AUC_MARGIN = 0.01  # the smallest ROC-AUC gain worth a model; a tie with the baseline is a failure
LEAK_AUC = 0.99  # a test ROC-AUC at or above this means a leak, not a good model
MIN_CLASS_ROWS = 20  # fewer invoices of a class in a slice: its ROC-AUC or threshold is noise

# recommender: two modes, each gated against its strongest baseline on the global time cut AND on the
# per-customer holdout: D = precision@K - MIN_LIFT[mode] x the strongest baseline's, per-customer
# paired bootstrap interval.
K = 10
DISCOVERY = "discovery"  # products new to the customer
NEXT_BASKET = "next-basket"  # what the customer buys next, re-orders included
MODES = (DISCOVERY, NEXT_BASKET)
MIN_LIFT = {DISCOVERY: 1.2, NEXT_BASKET: 1.05}
TIME_CUT_DAYS = 30  # global time cut: train before the last 30 days of data, test on them
RECENT_DAYS = 30  # the recent-popularity baseline: buyers in the 30 days before the prediction
MIN_EVAL_USERS = 50  # customers with a held-out product (per evaluation, validation included)
MIN_ITEMS = 2 * K  # fewer products and top-10 lists say little
MIN_SHARED_BUYERS = 5  # `similar`: a product shares at least this many buyers with the query product

# sales forecast: D = WAPE(seasonal naive) - WAPE(model) on the total, daily, one week ahead, over
# the rolling-origin backtest (interval by resampling backtest weeks); and no country served may be
# confidently worse than its seasonal naive (its interval of D below 0).
FORECAST_TABLE = "sales_forecast"
ALL_SERIES = "all"
FORECAST_INTERVAL = 0.80  # prediction intervals served: 10 % - 90 %

# segments: published only when every customer is labelled exactly once
MIN_CUSTOMERS_PER_SEGMENT = 25  # fewer customers per cluster: no honest segmentation
MIN_STABILITY_ARI = 0.8  # a k whose bootstrap refits agree less (mean adjusted Rand index) is not stable
SEGMENTS_TABLE = "customer_segments"
VIP_VIEW = "vip_transactions"
TOP_SEGMENT = "champions"
NO_NET_SPEND = "no net spend"
ONE_TIME = "one-time buyers"  # a single sale invoice, longer ago than NEW_DAYS (rule, not clustered)
NEW = "new"  # a single sale invoice within the last NEW_DAYS (rule, not clustered)
NEW_DAYS = 90
# names of the clusters of repeat buyers, from their median profile (segments.name_clusters):
CHAMPION_RECENCY_DAYS = 30  # champions: median recency <= 30 days and median frequency >= 5 invoices
CHAMPION_FREQUENCY = 5
ACTIVE_DAYS = 90  # 'regulars': median recency <= 90 days (not champions)
LAPSED_DAYS = 180  # 'at risk': 90 < median recency <= 180 days; 'lapsed': beyond

SEGMENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("customer_id", "string", "Customer"),
    ("segment", "string", "Segment name: a rule ('no net spend', 'one-time buyers', 'new') or the repeat "
     "buyers' cluster named from its median RFM profile"),
    ("cluster", "int", "K-Means cluster id of this run (-1: segment by rule, not clustered); names are the stable handle"),
    ("recency_days", "double", "Days since the last sale (to the end of the data, plus one)"),
    ("frequency", "bigint", "Completed sale invoices"),
    ("monetary", "double", "Net spend, GBP"),
    ("avg_basket", "double", "Net spend per sale invoice, GBP"),
    ("pca_x", "double", "First principal component of the scaled RFM features"),
    ("pca_y", "double", "Second principal component of the scaled RFM features"),
)
VIP_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("invoice_no", "string", "Sale invoice"),
    ("stock_code", "string", "Product"),
    ("description", "string", "Product name on the line"),
    ("quantity", "bigint", "Units"),
    ("invoice_ts", "timestamp", "Invoice date and time"),
    ("unit_price", "double", "Unit price, GBP"),
    ("line_total", "double", "quantity x unit_price, GBP"),
    ("customer_id", "string", "Customer"),
    ("country", "string", "Customer country"),
    ("segment", "string", f"The customer's segment ('{TOP_SEGMENT}')"),
    ("customer_net_spend", "double", "The customer's net spend, GBP"),
)

FORECAST_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("series", "string", "'all' (the whole business) or a country"),
    ("granularity", "string", "'day' or 'week' (7 days from period_start)"),
    ("period_start", "date", "First day of the period"),
    ("period_end", "date", "Last day of the period"),
    ("horizon", "int", "Periods ahead of the last observed day (days for 'day', weeks for 'week')"),
    ("trading_days", "int", "Days of the period the business is expected to trade (0: closed)"),
    ("forecast", "double", "Forecast net revenue (sales minus returns), GBP"),
    ("lower", "double", "Lower bound of the prediction interval, GBP"),
    ("upper", "double", "Upper bound of the prediction interval, GBP"),
    ("interval", "double", "Nominal coverage of [lower, upper]"),
    ("origin", "date", "Last day of the history the forecast is made from"),
    ("run_id", "string", "The run that made the forecast"),
)
