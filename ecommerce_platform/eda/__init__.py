"""EDA layer: a profiling report, a data quality report and figures of the clean zone.

Plain modules (testable without Dagster): ``queries`` (the layer's SQL, run by the warehouse),
``quality``, ``figures``, ``profile``, ``manifest``; ``assets`` is the Dagster surface.
"""
