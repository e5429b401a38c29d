"""Serving: ``ecommerce serve``, an HTTP JSON API and a web page over what the assets published.

- ``state``: what a worker serves (the recommender, the classifier, the sales forecast, the question
  answerer with its index, embedder and warehouse), loaded once per worker from the lake and swapped
  atomically when a cheap signal (the version of each model's ``current/model.json``, of the index's
  ``meta.json``, of the warehouse catalog and of the clean months) says a new materialization landed;
- ``app``: the FastAPI application (endpoints, validation, errors, the page, ``/docs``);
- ``middleware``: request ids, request size limits, structured access logs, no stack trace to a client;
- ``cli``: the ``serve`` command (uvicorn).

It does not run Dagster: it reads the lake the assets wrote, read-only.
"""
