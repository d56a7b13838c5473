"""Turns what the OpenAI client and httpx raise into our domain errors, with a message that says what to do.

All three providers speak the OpenAI protocol through the `openai` package, so one table covers them.
Messages name the provider and model but never the API key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from controller.providers import LOCAL, ProviderConfig
from errors import (
    AuthenticationFailed,
    BnaGPTError,
    ContextTooLong,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StreamInterrupted,
)

if TYPE_CHECKING:
    import openai

_CONTEXT_HINTS = ("context", "too long", "maximum context", "exceed", "too many tokens")


def provider_errors() -> tuple[type[BaseException], ...]:
    """What talking to a provider can raise: our domain errors, the OpenAI client's and httpx's. Anything
    else is a bug of ours and is left to surface (AppTest's `at.exception`, the server log)."""
    import openai  # loaded with the agent already; importing it up front slows the first page by 0.4 s

    return (BnaGPTError, openai.APIError, httpx.HTTPError)


def translate(error: BaseException, config: ProviderConfig, streaming: bool = False) -> BnaGPTError:
    """The domain error for one of `provider_errors()`, raised talking to the provider in `config`."""
    if isinstance(error, BnaGPTError):
        return error
    import openai

    where = _where(config)
    if isinstance(error, openai.APITimeoutError | httpx.TimeoutException):
        return ProviderTimeout(
            f"{where} did not answer within {config.timeout:.0f} s. Try again; if it keeps "
            "happening, raise BNAGPT_TIMEOUT or choose a smaller model."
        )
    if isinstance(error, openai.APIConnectionError | httpx.TransportError):
        if streaming:
            return StreamInterrupted(
                f"{where} stopped in the middle of the reply: the connection broke off. What "
                "arrived is kept; press Retry for a full answer."
            )
        if config.kind == LOCAL:
            return ProviderUnavailable(
                "The local engine is not answering. It will be restarted on your next try; if "
                "it keeps failing, open Settings to see its status and log."
            )
        at = f" at {config.base_url}" if config.base_url else ""
        return ProviderUnavailable(
            f"Could not connect to {where}{at}. Check that the server is running and the base URL "
            "is right (Settings has a connection test), then retry."
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return AuthenticationFailed(
            f"{where} refused the API key ({error.status_code}). Check the key in the sidebar "
            "or in .env, then retry."
        )
    if isinstance(error, openai.NotFoundError):
        return ModelNotFound(
            f"{where} does not know the model “{config.model}” (404). Pick a model the server "
            "offers (Settings → Test connection lists them), then retry."
        )
    if isinstance(error, openai.APIStatusError):
        return _from_status(error, config, where)
    if isinstance(error, openai.APIError):
        return StreamInterrupted(
            f"{where} reported an error in the middle of the reply: {_detail(error)}. What "
            "arrived is kept; press Retry."
        )
    return ProviderError(f"{where} answered in a way bnaGPT cannot read ({error}). Retry.")


def _from_status(error: openai.APIStatusError, config: ProviderConfig, where: str) -> BnaGPTError:
    detail = _detail(error)
    if error.status_code in (413, 429):
        retry_after = _retry_after(error.response)
        wait = f" Wait {retry_after:.0f} s, then retry." if retry_after else " Wait a moment, then retry."
        what = (
            "the request is too large for your rate limit"
            if error.status_code == 413
            else ("too many requests")
        )
        return RateLimited(f"{where} says {what} ({error.status_code}).{wait}", retry_after)
    if error.status_code == 400 and any(hint in detail.lower() for hint in _CONTEXT_HINTS):
        return ContextTooLong(
            f"The message and the conversation so far do not fit in the model's context window "
            f"({config.context_window} tokens). Shorten the message, or start a new chat. "
            f"({where}: {detail})"
        )
    if error.status_code >= 500:
        return ProviderUnavailable(f"{where} had an internal error ({error.status_code}). Retry.")
    return ProviderError(f"{where} refused the request ({error.status_code}): {detail}")


def _where(config: ProviderConfig) -> str:
    if config.kind == LOCAL:
        return "The local engine"
    return f"{config.label} ({config.model})"


def _detail(error: openai.APIError) -> str:
    body = error.body
    if isinstance(body, dict):
        message = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(message, dict):
            message = message.get("message")
        if message:
            return str(message)[:300]
    return str(error.message)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None
