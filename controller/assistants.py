"""Applying an assistant's settings to a provider configuration."""

from __future__ import annotations

from controller import json_mode
from controller.providers import ProviderConfig
from model.assistant import Assistant


def with_assistant(config: ProviderConfig, assistant: Assistant, strict: bool = True) -> ProviderConfig:
    """`config` with the assistant's model, temperature, reply length and JSON mode where it sets them."""
    changes: dict[str, object] = {
        "response_format": json_mode.response_format(
            assistant.json_mode, assistant.schema(), config.kind, strict=strict
        )
    }
    if assistant.model:
        changes["model"] = assistant.model
    if assistant.temperature is not None:
        changes["temperature"] = assistant.temperature
    if assistant.max_tokens is not None:
        changes["max_tokens"] = assistant.max_tokens
    return config.with_changes(**changes)


def openai_errors() -> tuple[type[BaseException], ...]:
    """The error a server raises when it refuses a `json_schema` response format (a 400)."""
    import openai

    return (openai.BadRequestError, openai.UnprocessableEntityError)
