"""What the ML layer promises, in one light module (no numpy: the Dagster surface imports it when the
definitions load): the gates that decide what is served, and the columns of the tables it publishes.
The plain modules (classifier, segments, recommender) import these names from here."""

from __future__ import annotations

# classifier: served only when test ROC-AUC >= baseline's + MIN_AUC_MARGIN and < LEAK_AUC
MIN_AUC_MARGIN = 0.05
LEAK_AUC = 0.99  # a test ROC-AUC at or above this means a leak, not a good model
MIN_CLASS_ROWS = 20  # fewer invoices of a class in a slice: its ROC-AUC or threshold is noise

# recommender: served only when precision@K > 0 and >= MIN_LIFT x the popularity baseline's
K = 10
MIN_LIFT = 1.5
MIN_EVAL_USERS = 50  # customers with a held-out product new to them, in the test and validation splits
MIN_ITEMS = 2 * K  # fewer products and top-10 lists say little

# segments: published only when every customer is labelled exactly once
MIN_CUSTOMERS_PER_SEGMENT = 25  # fewer customers with net spend per cluster: no honest segmentation
SEGMENTS_TABLE = "customer_segments"
VIP_VIEW = "vip_transactions"
TOP_SEGMENT = "champions"
NO_NET_SPEND = "no net spend"

SEGMENT_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("customer_id", "string", "Customer"),
    ("segment", "string", "Segment name, from the cluster's RFM profile (or 'no net spend')"),
    ("cluster", "int", "K-Means cluster id of this run (-1: not clustered); names are the stable handle"),
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
