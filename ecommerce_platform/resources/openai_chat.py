"""The platform's one way of calling the OpenAI chat completions API (the official ``openai`` client),
without Dagster, so a light process (``ecommerce ask``) and the ``llm`` resource share it.

``chat(config, messages, tools=None)`` makes one turn and returns ``{"content", "tool_calls": [{"id",
"name", "arguments"}]}``; ``config`` is anything with ``api_key``, ``model`` and optionally
``base_url``, ``timeout_seconds`` and ``max_retries`` (the ``llm`` resource, or its plain values). What
the client raises (network errors, timeouts, rate limits, API errors) becomes ``error`` with the reason in
words, never the key (``openai_errors``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class LLMUnavailable(RuntimeError):
    """The API could not answer; the message says why (never contains the key)."""


@contextlib.contextmanager
def openai_errors(where: str, timeout_seconds: float, error: type[Exception] = LLMUnavailable) -> Iterator[None]:
    """Turns what the ``openai`` client raises inside the block into ``error`` with the reason in words;
    ``where``: the endpoint."""
    import openai

    reasons = (  # the first class that matches says why, in words (never the key)
        (openai.APITimeoutError, lambda e: f"request to {where} timed out after {timeout_seconds:g}s"),
        (openai.RateLimitError, lambda e: f"rate limited by {where} (HTTP 429)"),
        (openai.AuthenticationError, lambda e: f"{where} rejected the API key (HTTP 401)"),
        (openai.APIStatusError, lambda e: f"{where} returned HTTP {e.status_code}"),
        (openai.APIConnectionError, lambda e: f"could not connect to {where}"),
        (openai.OpenAIError, lambda e: f"{where} failed: {type(e).__name__}"),
    )
    try:
        yield
    except openai.OpenAIError as exc:
        reason = next(say for kind, say in reasons if isinstance(exc, kind))
        raise error(reason(exc)) from exc


def endpoint(config) -> str:  # noqa: ANN001
    return getattr(config, "base_url", None) or "the OpenAI API"


def chat(config, messages: list[dict], tools: list[dict] | None = None,  # noqa: ANN001
         error: type[Exception] = LLMUnavailable) -> dict:
    """One chat-completions turn (temperature 0); raises ``error`` when there is no key or the API fails."""
    if not getattr(config, "api_key", None):
        raise error("OPENAI_API_KEY is not set")
    import openai

    timeout = getattr(config, "timeout_seconds", 30.0)
    client = openai.OpenAI(api_key=config.api_key, base_url=getattr(config, "base_url", None) or None,
                           timeout=timeout, max_retries=getattr(config, "max_retries", 1))
    where = endpoint(config)
    kwargs = {"tools": tools} if tools else {}
    with openai_errors(where, timeout, error):
        resp = client.chat.completions.create(model=config.model, messages=messages, temperature=0, **kwargs)
    if not resp.choices:
        raise error(f"{where} returned no answer")
    msg = resp.choices[0].message
    calls = [{"id": c.id, "name": c.function.name, "arguments": c.function.arguments or "{}"}
             for c in (msg.tool_calls or [])]
    return {"content": msg.content, "tool_calls": calls}
