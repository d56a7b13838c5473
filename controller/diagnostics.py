"""The Settings page's connection test: reach the provider, list its models, check the chosen one."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import openai

from controller.provider_errors import provider_errors, translate
from controller.providers import LOCAL, ProviderConfig, connect
from errors import ModelNotFound, ProviderMisconfigured
from utils.local_server import LocalEngine


@dataclass(frozen=True, slots=True)
class ConnectionReport:
    """What a successful connection test found."""

    base_url: str
    models: list[str]
    milliseconds: float


def check_connection(config: ProviderConfig, engine: LocalEngine | None = None) -> ConnectionReport:
    """List the provider's models; raise a domain error saying what is wrong."""
    if config.kind == LOCAL:
        if engine is None:
            raise ProviderMisconfigured("No local model file was found; set BNAGPT_LOCAL_MODEL.")
        engine.ensure_running()
        config = config.with_changes(base_url=engine.base_url)
    # Building the LLM checks the settings the same way a chat would, and knows Groq's address.
    connection = connect(config)
    connection.close()
    config = config.with_changes(base_url=connection.llm.api_base)
    started = time.perf_counter()
    with httpx.Client(timeout=min(config.timeout, 15.0)) as http:
        client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "no-key",
            http_client=http,
            max_retries=0,
        )
        try:
            models = sorted(m.id for m in client.models.list())
        except provider_errors() as error:
            raise translate(error, config) from error
    elapsed = (time.perf_counter() - started) * 1000
    if config.kind != LOCAL and config.model and models and config.model not in models:
        shown = ", ".join(models[:12]) + (" …" if len(models) > 12 else "")
        raise ModelNotFound(
            f"Connected to {config.base_url}, but it does not offer “{config.model}”. It offers: {shown}."
        )
    return ConnectionReport(base_url=config.base_url, models=models, milliseconds=elapsed)
