"""ML layer: feature tables computed in SQL by the warehouse, a high-value invoice classifier, customer
segments and an ALS recommender, each evaluated on a time holdout against a baseline."""
