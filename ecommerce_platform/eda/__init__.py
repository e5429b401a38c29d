"""EDA layer: a data quality report, figures and a profiling report of the clean zone (and of the raw
input, for the profile).

Plain modules (testable without Dagster): ``queries`` (the layer's SQL, run by the warehouse),
``quality``, ``figures``, ``profile``; ``assets`` is the Dagster surface, ``definitions`` declares how
the layer runs.
"""
