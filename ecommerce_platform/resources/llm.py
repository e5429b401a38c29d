"""The ``llm`` resource: the language model behind grounded answers (``ecommerce ask``).

Offline by default: with no API key there is no model, and the answerer states the retrieved facts
itself (rag/answer.py). With ``OPENAI_API_KEY`` set in the environment, ``complete`` calls the OpenAI chat
completions API through the official ``openai`` client. The key comes only from the environment: in
the Definitions it is ``dg.EnvVar("OPENAI_API_KEY")`` (the UI shows the variable's name, never the
value); it is never logged, never put in metadata, and the resource's repr hides it.

Other settings, also from the environment (``build_llm``): ``ECOMMERCE_OPENAI_MODEL`` (default
gpt-4o-mini), ``OPENAI_BASE_URL`` (an OpenAI-compatible endpoint), ``ECOMMERCE_OPENAI_TIMEOUT``
(seconds, default 30), ``ECOMMERCE_OPENAI_MAX_RETRIES`` (default 1).
"""

import contextlib
import os
from collections.abc import Iterator

import dagster as dg

API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 1


class LLMUnavailable(RuntimeError):
    """The API could not answer; the message says why (never contains the key)."""


@contextlib.contextmanager
def openai_errors(where: str, timeout_seconds: float, error: type[Exception] = LLMUnavailable) -> Iterator[None]:
    """Turns what the ``openai`` client raises inside the block (network errors, timeouts, rate
    limits, API errors) into ``error`` with the reason in words, never the key; ``where``: the endpoint."""
    import openai

    try:
        yield
    except openai.APITimeoutError as exc:
        raise error(f"request to {where} timed out after {timeout_seconds:g}s") from exc
    except openai.RateLimitError as exc:
        raise error(f"rate limited by {where} (HTTP 429)") from exc
    except openai.AuthenticationError as exc:
        raise error(f"{where} rejected the API key (HTTP 401)") from exc
    except openai.APIStatusError as exc:
        raise error(f"{where} returned HTTP {exc.status_code}") from exc
    except openai.APIConnectionError as exc:
        raise error(f"could not connect to {where}") from exc
    except openai.OpenAIError as exc:
        raise error(f"{where} failed: {type(exc).__name__}") from exc


class LLM(dg.ConfigurableResource):
    """OpenAI chat completions when ``api_key`` is set (only ever from OPENAI_API_KEY), else offline."""

    api_key: str | None = None
    model: str = DEFAULT_MODEL
    base_url: str | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES

    def __repr_args__(self):  # noqa: ANN204 - the key never shows in a repr, a log line or an error
        for name, value in super().__repr_args__():
            yield name, ("<set>" if value else None) if name == "api_key" else value

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    @property
    def name(self) -> str:
        return f"openai:{self.model}" if self.enabled else "offline"

    def describe(self) -> dict:
        """What answers (for logs and metadata): never the key, only whether it is set."""
        return {"answerer": self.name, "api_key": f"${API_KEY_ENV} " + ("set" if self.enabled else "not set"),
                "endpoint": self.base_url or "the OpenAI API", "timeout_seconds": self.timeout_seconds,
                "max_retries": self.max_retries}

    def complete(self, messages: list[dict]) -> str:
        """The model's reply to chat ``messages``; raises LLMUnavailable (with a reason, never the key)
        when there is no key, or on network errors, timeouts, rate limits and API errors."""
        if not self.enabled:
            raise LLMUnavailable(f"{API_KEY_ENV} is not set")
        import openai

        where = self.base_url or "the OpenAI API"
        client = openai.OpenAI(api_key=self.api_key, base_url=self.base_url or None,
                               timeout=self.timeout_seconds, max_retries=self.max_retries)
        with openai_errors(where, self.timeout_seconds):
            resp = client.chat.completions.create(model=self.model, messages=messages, temperature=0)
        content = resp.choices[0].message.content if resp.choices else None
        if not content or not content.strip():
            raise LLMUnavailable(f"{where} returned an empty answer")
        return content.strip()


def build_llm(settings=None, env_vars: bool = False) -> LLM:  # noqa: ANN001, ARG001 - settings: config.Settings
    """The deployment's answerer, from the environment. ``env_vars=True`` (Definitions): the key as
    ``dg.EnvVar("OPENAI_API_KEY")`` so the UI shows its name; otherwise its value (the CLI)."""
    from ecommerce_platform.config import load_settings

    settings = settings or load_settings()
    # the key is a secret: read from the environment here only, never kept in the settings or logged
    key = os.environ.get(API_KEY_ENV) or None if settings.openai_key_set else None
    return LLM(
        api_key=dg.EnvVar(API_KEY_ENV) if (env_vars and key) else key,
        model=settings.openai_model or DEFAULT_MODEL,
        base_url=settings.openai_base_url,
        timeout_seconds=settings.openai_timeout_seconds,
        max_retries=settings.openai_max_retries,
    )
