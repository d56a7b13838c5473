"""Run as a program by tests/test_process.py: the app loaded as `streamlit run app.py` loads it (the frame
and every page, through Streamlit's own script runner), then OCR, speech recognition, embeddings and speech
in that same process; what each gave is printed as one JSON line.

A process of its own because that is what a user runs: pytest's process has imported modules in its own
order, which once hid a thread limit that made Whisper hear nothing.
"""

from __future__ import annotations

import io
import json
import math
import re
import sys
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

PROJECT = Path(__file__).resolve().parent.parent
PAGES = ("pages/chat_page.py", "pages/assistants_page.py", "pages/library_page.py", "pages/settings_page.py")
ENGLISH = [
    "The lighthouse keeper feeds his cat every morning at seven.",
    "Please send the quarterly report to the finance team before Friday.",
]


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def main() -> None:
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=180).run()
    failures = [str(e.value) for e in at.exception]
    for page in PAGES:
        at.switch_page(page).run()
        failures += [f"{page}: {e.value}" for e in at.exception]
    # Loaded the way the pages load them (the admin and login pages need accounts to be drawn).
    import view.admin_view
    import view.auth_view

    del view
    import jiwer

    from controller import embeddings, images, transcripts
    from controller.voices import Voices
    from tests import make_files

    out = io.BytesIO()
    make_files.text_image(["PADARIA LUTZ", "TOTAL 47,90"]).save(out, "PNG")
    ocr = images.ocr(out.getvalue())
    heard = [transcripts.transcribe(f"{n}.wav", make_files.speech(s, "en-us")) for n, s in enumerate(ENGLISH)]
    wer = jiwer.wer([_words(s) for s in ENGLISH], [_words(h.text) for h in heard])
    model = embeddings.embedder()
    cat, kitten, tax = (
        model.get_query_embedding(t)
        for t in ("a cat sleeps on the sofa", "a kitten naps on the couch", "quarterly tax filing deadline")
    )
    voices = Voices(Path(tempfile.mkdtemp()))
    said = "The lighthouse keeper feeds his cat every morning."
    audio, _ = voices.speak(said, voices.choose("", said))
    spoken_back = transcripts.transcribe("spoken.wav", audio)
    print(
        json.dumps(
            {
                "page_errors": failures,
                "ocr": ocr,
                "transcripts": [h.text for h in heard],
                "languages": [h.language for h in heard],
                "wer": wer,
                "similar": _cosine(cat, kitten),
                "unrelated": _cosine(cat, tax),
                "spoken_back": spoken_back.text,
                "spoken_wer": jiwer.wer(_words(said), _words(spoken_back.text)),
            }
        ),
        flush=True,
    )
    if "--linger" in sys.argv:
        time.sleep(float(sys.argv[sys.argv.index("--linger") + 1]))


if __name__ == "__main__":
    main()
