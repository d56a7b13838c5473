"""LLM providers: the bundled local engine, Groq, and any OpenAI-compatible server.

All are OpenAI-class llama-index LLMs (what `OpenAIAgent` accepts). Each gets its own `httpx.Client` whose
transport (`controller/transport.py`) lets a reply be stopped and smooths over llama.cpp's quirks.

A provider is one record in `PROVIDERS`: its label, the settings the user gives it (sidebar fields read
from environment variables), its context window and what it can do. The sidebar, the Settings page and
the Assistants page loop over the records, so adding a provider is adding a record.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import httpx

from errors import ProviderMisconfigured
from utils.loading import IMPORTS

if TYPE_CHECKING:
    from llama_index.core.llms import LLM

    from controller.transport import StoppableTransport

LOCAL, GROQ, OPENAI = "local", "groq", "openai"


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """Everything needed to build one provider's LLM; the key never appears in `repr`."""

    kind: str
    model: str = ""
    base_url: str = ""
    api_key: str | None = field(default=None, repr=False)
    context_window: int = 8192
    max_tokens: int = 512
    temperature: float = 0.7
    timeout: float = 60.0
    response_format: str = ""  # JSON text of the OpenAI `response_format` to send, "" for none
    vision: bool = False  # the model reads images (`sees_images`)
    model_label: str = ""  # how the user knows the model, where `model` is not it (the local engine's alias)
    # The address was typed by a user of a shared bnaGPT: it must be public, like a web page fetched
    # (no loopback, private, link-local or metadata address), before anything is sent to it.
    public_only: bool = False

    @property
    def label(self) -> str:
        """How the user knows this provider."""
        return provider(self.kind).label

    def with_changes(self, **changes: object) -> ProviderConfig:
        """A copy with some fields changed."""
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider can do, for the pages to offer only what works."""

    streaming: bool = True
    tools: bool = False
    vision: bool = False
    json_schema: bool = False  # `response_format` with a JSON Schema (else any JSON object)
    audio: bool = False
    images: bool = False
    titles: bool = True  # writes good enough chat titles to be asked for one


@dataclass(frozen=True, slots=True)
class SettingField:
    """One setting of a provider: a sidebar field, with the environment variable that presets it."""

    name: Literal["model", "base_url", "api_key"]  # the ProviderConfig field it fills
    label: str
    env: str
    default: str = ""
    placeholder: str = ""

    @property
    def secret(self) -> bool:
        """A key: typed ones stay in the browser tab, configured ones are never shown."""
        return self.name == "api_key"


@dataclass(frozen=True, slots=True)
class Provider:
    """A kind of LLM server the user can choose."""

    kind: str
    label: str
    build: Callable[[ProviderConfig, httpx.Client], LLM]
    fields: tuple[SettingField, ...] = ()
    context_window: int | None = None  # tokens; None: the local engine's (BNAGPT_LOCAL_CONTEXT)
    capabilities: Capabilities = Capabilities()
    chosen_when: str = ""  # an environment variable that, set, makes this the default provider
    note: str = ""  # shown under the choice in the sidebar

    @property
    def local(self) -> bool:
        """Whether it runs on the bundled engine (no fields, the engine's own model)."""
        return self.kind == LOCAL

    def field_key(self, setting: SettingField) -> str:
        """The session key of a field's sidebar input."""
        return f"{self.kind}_{setting.name}"


def _common(config: ProviderConfig, http_client: httpx.Client) -> dict:
    # No retries inside the client: a failure reaches the user at once, with a Retry button, instead of
    # a silent wait of up to a minute while the client backs off.
    return {
        "model": config.model,
        "context_window": config.context_window,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
        "timeout": config.timeout,
        "max_retries": 0,
        "http_client": http_client,
        "additional_kwargs": {"response_format": json.loads(config.response_format)}
        if config.response_format
        else {},
    }


def field_values(
    record: Provider, typed: Mapping[str, str], environment: Mapping[str, str]
) -> dict[str, str]:
    """A provider's settings: what the user typed, else what the environment (or `.env`) says.

    A key from the environment goes only to the address the environment names with it: with another
    address typed, the key is left out (a user's own key, typed, goes where they say)."""
    values = {
        f.name: typed.get(f.name, "").strip() or environment.get(f.env, f.default) for f in record.fields
    }
    address = next((f for f in record.fields if f.name == "base_url"), None)
    if address is None:
        return values
    configured = environment.get(address.env, address.default)
    if _same_address(values["base_url"], configured):
        return values
    for f in record.fields:
        if f.secret and not typed.get(f.name, "").strip():
            values[f.name] = ""
    return values


def _same_address(one: str, other: str) -> bool:
    return one.strip().rstrip("/").lower() == other.strip().rstrip("/").lower()


def check_address(config: ProviderConfig) -> None:
    """Raise ProviderMisconfigured if a user's typed address may not be reached (`public_only`)."""
    if not config.public_only or not config.base_url:
        return
    from controller import fetch
    from errors import FetchFailed

    try:
        fetch.check_public(config.base_url)
    except FetchFailed as refusal:
        raise ProviderMisconfigured(
            f"{refusal} Servers on this machine or its private network are for the admin to configure."
        ) from None


def preload() -> None:
    """Import the agent stack (llama-index, the OpenAI client, our agent and transport): about 2 s, so the
    app does it in the background after drawing its first page, and the first reply need not wait.

    Every import of the stack goes through here, one thread at a time (utils/loading.py says why).
    """
    with IMPORTS:
        import llama_index.llms.groq
        import llama_index.llms.openai_like

        import controller.agent
        import controller.transport

        del llama_index, controller


def _openai_like(config: ProviderConfig, http_client: httpx.Client, api_key: str) -> LLM:
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        api_base=config.base_url,
        api_key=api_key,
        is_chat_model=True,
        is_function_calling_model=True,
        **_common(config, http_client),
    )


def _build_local(config: ProviderConfig, http_client: httpx.Client) -> LLM:
    return _openai_like(config, http_client, api_key="local-engine-needs-no-key")


def _build_groq(config: ProviderConfig, http_client: httpx.Client) -> LLM:
    if not config.api_key:
        raise ProviderMisconfigured(
            "Groq needs an API key: set GROQ_API_KEY in the environment or .env, or type it in the sidebar."
        )
    from llama_index.llms.groq import Groq

    return Groq(api_key=config.api_key, **_common(config, http_client))


def _build_openai_compatible(config: ProviderConfig, http_client: httpx.Client) -> LLM:
    if not config.base_url:
        raise ProviderMisconfigured(
            "Set the server's base URL (for example http://127.0.0.1:11434/v1 for Ollama) in the "
            "sidebar, or OPENAI_BASE_URL in .env."
        )
    if not config.model:
        raise ProviderMisconfigured(
            "Type the model name the server should use in the sidebar, or set BNAGPT_OPENAI_MODEL."
        )
    return _openai_like(config, http_client, api_key=config.api_key or "no-key")


PROVIDERS: list[Provider] = [
    Provider(
        LOCAL,
        "Local (offline)",
        _build_local,
        capabilities=Capabilities(json_schema=True, titles=False),
        note="Runs on this machine: no key, no network.",
    ),
    Provider(
        GROQ,
        "Groq",
        _build_groq,
        fields=(
            SettingField("model", "Groq model", "BNAGPT_GROQ_MODEL", default="llama-3.3-70b-versatile"),
            SettingField("api_key", "Groq API key", "GROQ_API_KEY"),
        ),
        context_window=32768,
        capabilities=Capabilities(tools=True, vision=True, json_schema=True, audio=True),
        chosen_when="GROQ_API_KEY",
    ),
    Provider(
        OPENAI,
        "OpenAI-compatible server",
        _build_openai_compatible,
        fields=(
            SettingField("base_url", "Base URL", "OPENAI_BASE_URL", placeholder="http://127.0.0.1:11434/v1"),
            SettingField("model", "Model", "BNAGPT_OPENAI_MODEL", placeholder="llama3.2"),
            SettingField("api_key", "API key (if the server needs one)", "OPENAI_API_KEY"),
        ),
        context_window=8192,
        capabilities=Capabilities(tools=True, vision=True, json_schema=True, audio=True, images=True),
        chosen_when="OPENAI_BASE_URL",
    ),
]


# Model names of the common vision models (Groq's Llama 4, OpenAI's GPT-4o family, LLaVA, Gemma 3, Qwen-VL,
# Pixtral); BNAGPT_VISION=1 or 0 says it for any other model.
_VISION_MODELS = re.compile(
    r"vision|llama-4|scout|maverick|llava|gpt-4o|gpt-4\.1|gpt-5|gemma-?3|qwen.*vl|pixtral", re.I
)


def sees_images(kind: str, model: str, environment: Mapping[str, str]) -> bool:
    """Whether a provider's model takes images (else it gets their text, read by OCR)."""
    if kind == LOCAL or not provider(kind).capabilities.vision:
        return False
    said = environment.get("BNAGPT_VISION", "").lower()
    if said in ("1", "true", "yes", "on", "0", "false", "no", "off"):
        return said in ("1", "true", "yes", "on")
    return bool(_VISION_MODELS.search(model))


def kinds() -> tuple[str, ...]:
    """The kinds of every registered provider."""
    return tuple(p.kind for p in PROVIDERS)


def default_kind(environment: Mapping[str, str]) -> str:
    """The provider to start on: the first whose `chosen_when` variable is set, else the local one."""
    return next((p.kind for p in PROVIDERS if p.chosen_when and environment.get(p.chosen_when)), LOCAL)


def provider(kind: str) -> Provider:
    """The provider registered under `kind`."""
    for candidate in PROVIDERS:
        if candidate.kind == kind:
            return candidate
    known = ", ".join(p.kind for p in PROVIDERS)
    raise ProviderMisconfigured(f"Unknown provider {kind!r}: use one of {known}.")


@dataclass
class Connection:
    """A built LLM with the HTTP client it owns; `stop()` ends the reply it is streaming."""

    config: ProviderConfig
    llm: LLM
    transport: StoppableTransport
    count_tokens: Callable[[str], int]

    def stop(self) -> None:
        """End the current reply."""
        self.transport.stop()

    def close(self) -> None:
        """Close its HTTP connections."""
        self.transport.close()


def connect(config: ProviderConfig, count_tokens: Callable[[str], int] | None = None) -> Connection:
    """Build the LLM for a provider configuration; `count_tokens` is the model's own tokenizer if known
    (the local engine's), else tiktoken's count with a margin."""
    check_address(config)
    preload()  # waits for the background import if it is still running
    from controller.transport import StoppableTransport

    transport = StoppableTransport()
    http_client = httpx.Client(transport=transport, timeout=config.timeout)
    llm = provider(config.kind).build(config, http_client)
    count = count_tokens or estimated_tokens
    return Connection(config=config, llm=llm, transport=transport, count_tokens=count)


# Cached: every turn counts the whole history again (controller/context.py), and it rarely changes.
@functools.lru_cache(maxsize=8192)
def estimated_tokens(text: str) -> int:
    """Remote servers offer no tokenizer: tiktoken's count with a margin for other vocabularies."""
    from llama_index.core.utils import get_tokenizer

    return math.ceil(len(get_tokenizer()(text)) * 1.15)
