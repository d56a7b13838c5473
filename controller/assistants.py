"""Applying an assistant's settings to a provider configuration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from controller import json_mode
from controller.providers import ProviderConfig
from errors import UnreadableFile
from model.assistant import Assistant

if TYPE_CHECKING:
    from controller.documents import Documents
    from model.assistant_store import AssistantStore


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


def add_knowledge(
    store: AssistantStore, documents: Documents, assistant: Assistant, uploads: Sequence[tuple[str, bytes]]
) -> tuple[Assistant, list[UnreadableFile]]:
    """Attach files to an assistant as its knowledge: (the assistant as saved, the files that could not
    be read, each error naming its file). Chats started with it afterwards can draw on them."""
    added, failed = [], []
    for name, data in uploads:
        try:
            added.append(documents.attach(name, data))
        except UnreadableFile as error:
            failed.append(error)
    kept = {f.sha256 for f in assistant.files}
    fresh = tuple(f for f in added if f.sha256 not in kept)
    if fresh:
        assistant = store.save(replace(assistant, files=(*assistant.files, *fresh)))
    return assistant, failed


def remove_knowledge(store: AssistantStore, assistant: Assistant, sha256: str) -> Assistant:
    """Take a file out of an assistant's knowledge."""
    return store.save(replace(assistant, files=tuple(f for f in assistant.files if f.sha256 != sha256)))
