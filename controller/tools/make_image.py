"""The `make_image` tool: a picture from a description, by a server speaking OpenAI's images API
(`/v1/images/generations`: OpenAI, LocalAI, a Stable Diffusion server with that API).

Configured by BNAGPT_IMAGES_URL (the server's base URL), BNAGPT_IMAGES_MODEL and BNAGPT_IMAGES_API_KEY.
What comes back is an image from outside like any other: decoded from PNG/JPEG/WebP only, size-checked and
encoded again before it is stored and shown.
"""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import ClassVar

from controller import images
from controller.tools import Outcome, Tool
from errors import UnreadableFile
from model.file_store import FileStore
from model.step import Step, StepFile, clip

DEFAULT_MODEL = "dall-e-3"
SIZE = "1024x1024"
TIMEOUT = 180.0  # a CPU Stable Diffusion server takes minutes
WHAT_TO_CONFIGURE = (
    "No image generator is configured: set BNAGPT_IMAGES_URL to a server with the OpenAI images API "
    "(OpenAI's, or LocalAI or a Stable Diffusion server on your network), with BNAGPT_IMAGES_MODEL and, if "
    "it needs one, BNAGPT_IMAGES_API_KEY. Charts and plots need none of this: /image a bar chart of … is "
    "drawn by code in the sandbox."
)


_CHART = re.compile(
    r"\b(chart|plot|graph|diagram|histogram|pie|scatter|bar|bars|curve|gr[aá]fico|diagrama|histograma|"
    r"curva|barras|pizza)\b",
    re.I,
)


def is_chart(prompt: str) -> bool:
    """Whether a picture asked for is a chart or plot (drawn by code in the sandbox, not generated)."""
    return bool(_CHART.search(prompt))


def chart_request(prompt: str) -> str:
    """What the model is asked when a chart is drawn offline: code for the sandbox to run."""
    return (
        f"Draw {prompt}. Write the Python code (matplotlib, numpy if needed) that draws it, in one ```python "
        "block, with the data in the code; it is run for you and the chart shown."
    )


def configured(environment: Mapping[str, str]) -> bool:
    """Whether an image generator is set up."""
    return bool(environment.get("BNAGPT_IMAGES_URL"))


class MakeImage(Tool):
    """A picture from a description."""

    name = "make_image"
    description = (
        "Make a picture (illustration, photo-like image, logo) from a detailed description, and show it to "
        "the user. Not for charts or plots of data: run Python with matplotlib for those."
    )
    parameters: ClassVar[dict[str, str]] = {"prompt": "A detailed description of the picture, in English."}

    def __init__(self, environment: Mapping[str, str], store: FileStore, by_user: bool = False) -> None:
        self._url = environment.get("BNAGPT_IMAGES_URL", "")
        self._model = environment.get("BNAGPT_IMAGES_MODEL", DEFAULT_MODEL)
        self._key = environment.get("BNAGPT_IMAGES_API_KEY", "")
        self._store = store
        self._by_user = by_user

    def run(self, **arguments: str) -> Outcome:
        prompt = arguments.get("prompt", "").strip()
        started = time.monotonic()
        try:
            file = self._make(prompt)
        except (UnreadableFile, _Failed) as error:
            step = Step(self.name, clip(prompt), error=str(error), by_user=self._by_user)
            step = _timed(step, started)
            return Outcome(f"No image was made: {error}", step)
        step = _timed(Step(self.name, clip(prompt), files=(file,), by_user=self._by_user), started)
        return Outcome("The image was made and is shown to the user under your reply.", step)

    def _make(self, prompt: str) -> StepFile:
        if not self._url:
            raise _Failed(WHAT_TO_CONFIGURE)
        import openai

        client = openai.OpenAI(
            base_url=self._url, api_key=self._key or "no-key", max_retries=0, timeout=TIMEOUT
        )
        try:
            result = client.images.generate(
                model=self._model, prompt=prompt, n=1, size=SIZE, response_format="b64_json"
            )
        except openai.OpenAIError as error:
            raise _Failed(f"the image server at {self._url} failed: {error}") from None
        finally:
            client.close()
        encoded = result.data[0].b64_json if result.data else None
        if not encoded:
            raise _Failed("the image server sent no image back")
        try:
            data = base64.b64decode(encoded, validate=True)
        except ValueError:
            raise _Failed("the image server sent something that is not an image") from None
        image = images.clean("made.png", data)
        return StepFile("made.png", self._store.put(image.data), len(image.data))


class _Failed(Exception):
    """Why no image came (said to the model and shown in the step)."""


def _timed(step: Step, started: float) -> Step:
    return replace(step, seconds=time.monotonic() - started)
