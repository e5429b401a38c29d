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

import os

import dagster as dg

from ecommerce_platform.resources.openai_chat import LLMUnavailable, chat, endpoint

__all__ = ["LLM", "LLMUnavailable", "build_llm"]

API_KEY_ENV = "OPENAI_API_KEY"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 1


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

    def chat(self, messages: list[dict], tools: list[dict] | None = None) -> dict:
        """One turn: ``{"content", "tool_calls"}`` (openai_chat.chat); raises LLMUnavailable (with a
        reason, never the key) when there is no key, or on network errors, timeouts and API errors."""
        return chat(self, messages, tools=tools)

    def complete(self, messages: list[dict]) -> str:
        """The model's text reply to chat ``messages``; LLMUnavailable as ``chat``, or when it is empty."""
        content = self.chat(messages)["content"]
        if not content or not content.strip():
            raise LLMUnavailable(f"{endpoint(self)} returned an empty answer")
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
