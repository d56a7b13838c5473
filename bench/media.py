"""Images and voice: OCR, speech to text and text to speech on this machine's CPU.

Run: .venv/bin/python -m bench.media
- OCR: seconds per page image (an A4 page at 150 dpi of printed lines, Tesseract eng+por), and the share
  of its words read right.
- Speech to text: Whisper base (int8, faster-whisper) on sentences spoken by espeak-ng in English and in
  Portuguese: real-time factor (seconds of work per second of sound) and word error rate, with the language
  given and detected.
- Text to speech: real-time factor of Piper (English) and espeak-ng (Portuguese).
"""

from __future__ import annotations

import io
import re
import tempfile
import time
import wave
from pathlib import Path

import jiwer
from PIL import Image, ImageDraw, ImageFont

from bench.stats import Figure, summarise
from controller import images, transcripts
from controller.voices import ESPEAK_VOICES, PIPER_VOICES, Voices
from tests import make_files

SECTION = "11 images and voice"
ENGLISH = [
    "The lighthouse keeper feeds his cat every morning at seven.",
    "Please send the quarterly report to the finance team before Friday.",
    "It will rain tomorrow in the north of the country.",
    "Our train leaves from platform nine at half past four.",
    "She bought three loaves of bread and a jar of honey.",
]
PORTUGUESE = [
    "O faroleiro alimenta o seu gato todas as manhãs às sete horas.",
    "Por favor envie o relatório trimestral para a equipe financeira até sexta-feira.",
    "Amanhã vai chover no norte do país.",
    "O nosso comboio parte da plataforma nove às quatro e meia.",
    "Ela comprou três pães e um frasco de mel.",
]
REPLY = (
    "Here is a short answer to your question. The report is ready, and the figures for the third quarter "
    "are better than expected. Let me know if you need anything else."
)
RESPOSTA = (
    "Aqui está uma resposta curta para a sua pergunta. O relatório está pronto, e os números do terceiro "
    "trimestre estão melhores do que o esperado."
)


def words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def page_image() -> tuple[bytes, str]:
    """An A4 page at 150 dpi with 30 lines of printed text, and that text."""
    lines = [f"Line {n}: {ENGLISH[n % 5]} {PORTUGUESE[n % 5]}"[:80] for n in range(30)]
    image = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=26)
    for n, line in enumerate(lines):
        draw.text((60, 60 + 54 * n), line, fill="black", font=font)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue(), "\n".join(lines)


def ocr_figures(repeats: int) -> list[Figure]:
    data, truth = page_image()
    clean = images.clean("page.png", data).data
    seconds, errors = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        text = images.ocr(clean)
        seconds.append(time.perf_counter() - started)
        errors.append(jiwer.wer(words(truth), words(text)) * 100)
    return [
        summarise(SECTION, "OCR: A4 page at 150 dpi, 30 lines (Tesseract eng+por)", "s/page", seconds),
        summarise(SECTION, "OCR: word error rate on that page", "%", errors),
    ]


def stt_figures(sentences: int) -> list[Figure]:
    figures = []
    transcripts.transcribe("warm.wav", make_files.speech("warm up", "en-us", "150"), "en")  # loads the model
    for label, voice, speed, language, texts in (
        ("English", "en-us", "150", "en", ENGLISH),
        ("Portuguese", "pt", "130", "pt", PORTUGUESE),
    ):
        for given in (language, ""):
            factors, heard = [], []
            for text in texts[:sentences]:
                audio = make_files.speech(text, voice, speed)
                started = time.perf_counter()
                result = transcripts.transcribe("s.wav", audio, given)
                factors.append((time.perf_counter() - started) / result.seconds)
                heard.append(words(result.text))
            truth = [words(t) for t in texts[:sentences]]
            how = "language given" if given else "language detected"
            figures.append(summarise(SECTION, f"STT: {label} ({how}), real-time factor", "×", factors))
            wer = jiwer.wer(truth, heard) * 100
            figures.append(summarise(SECTION, f"STT: {label} ({how}), word error rate", "%", [wer]))
    return figures


def tts_figures(repeats: int) -> list[Figure]:
    figures = []
    for label, voice, text in (
        ("Piper, English", PIPER_VOICES[0], REPLY),
        ("espeak-ng, Portuguese", ESPEAK_VOICES[1], RESPOSTA),
    ):
        factors = []
        for n in range(repeats):
            with tempfile.TemporaryDirectory() as folder:  # a fresh cache: every repeat is voiced
                speaker = Voices(Path(folder))
                if n == 0:
                    speaker.speak("warm up", voice)
                started = time.perf_counter()
                data, _ = speaker.speak(text, voice)
                spent = time.perf_counter() - started
            with wave.open(io.BytesIO(data)) as sound:
                length = sound.getnframes() / sound.getframerate()
            factors.append(spent / length)
        figures.append(summarise(SECTION, f"TTS: {label}, real-time factor", "×", factors))
    return figures


def run(quick: bool = False, smoke: bool = False) -> list[Figure]:
    repeats = 1 if smoke else 2 if quick else 5
    return ocr_figures(repeats) + stt_figures(repeats) + tts_figures(repeats)


if __name__ == "__main__":
    for figure in run():
        print(f"{figure.name:<66} median {figure.median:9.3f} {figure.unit:<6} p95 {figure.p95:9.3f}")
