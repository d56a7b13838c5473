"""Images a user attaches: checked, cleaned and made ready to send; their text read by OCR.

Every image is decoded by Pillow from a short list of formats (never EPS or other formats that run
programs), refused above MAX_PIXELS (a decompression bomb), turned upright by its EXIF orientation, its
first frame taken, transparency laid on white (black text on a transparent background would otherwise
read as black on black), made at most MAX_SIDE pixels on a side, and encoded again: what is stored and
sent carries no EXIF (no GPS position, no camera serial).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from errors import MediaUnavailable, UnreadableFile
from model.attachment import clean_file_name, extension
from model.media import IMAGE_TYPES

MAX_PIXELS = 50_000_000  # decoded size refused above this (an 8,000 × 6,000 photo is 48 M)
MAX_SIDE = 2048  # longest side sent to a model or read by OCR (vision APIs scale down to about this)
FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
OCR_LANGUAGES = "eng+por"
OCR_SECONDS = 60
INSTALL_OCR = "sudo apt-get install tesseract-ocr tesseract-ocr-eng tesseract-ocr-por"
# Tesseract's OpenMP threads fight each other and the engine on 2 cores: one thread reads a page in 2.1 s,
# its default took 20 s (bench/media.py). The limit goes to Tesseract's own process only: in the app's
# environment it also capped CTranslate2, and Whisper then heard nothing.
OCR_ENVIRONMENT = {"OMP_THREAD_LIMIT": "1"}


@dataclass(frozen=True, slots=True)
class CleanImage:
    """An image ready to store and send."""

    data: bytes
    mime: str
    width: int
    height: int
    note: str  # what was changed, for the user ("" if nothing worth saying)


def is_image(name: str) -> bool:
    """Whether a file's name says it is an image bnaGPT reads."""
    return extension(name) in IMAGE_TYPES


def clean(name: str, data: bytes) -> CleanImage:
    """The image, checked and re-encoded (see the module's docstring); raise UnreadableFile naming it."""
    name = clean_file_name(name)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # explicit: Pillow's default could change under us
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            image.seek(0)  # an animated GIF or WebP: its first frame
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableFile(
            f"“{name}” would take more than {MAX_PIXELS // 1_000_000} million pixels when opened (a "
            "decompression bomb, or an enormous image); it was not opened. Attach a smaller copy."
        ) from None
    except UnidentifiedImageError:
        raise UnreadableFile(
            f"“{name}” is not a PNG, JPEG, WebP or GIF image, whatever its name says; check that it is "
            "the right file."
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise UnreadableFile(f"“{name}” is a damaged image ({error}); open and save it again.") from None
    notes = []
    original = image.size
    image = ImageOps.exif_transpose(image) or image
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, "white")
        flat.paste(rgba, mask=rgba.getchannel("A"))
        image = flat
    elif image.mode != "RGB":
        image = image.convert("RGB")
    if max(image.size) > MAX_SIDE:
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        notes.append(f"made smaller from {original[0]:,} × {original[1]:,}")
    out = io.BytesIO()
    if extension(name) in ("jpg", "jpeg"):
        image.save(out, "JPEG", quality=90)  # no `exif=`: the metadata stays behind
        mime = "image/jpeg"
    else:
        image.save(out, "PNG", optimize=False)
        mime = "image/png"
    return CleanImage(out.getvalue(), mime, image.width, image.height, "; ".join(notes))


def thumbnail(data: bytes, side: int = 320) -> bytes:
    """A small JPEG of a stored (already cleaned) image, for the chat to show."""
    image = Image.open(io.BytesIO(data), formats=FORMATS)
    image.thumbnail((side, side))
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=80)
    return out.getvalue()


def ocr_problem() -> str | None:
    """Why text in images cannot be read here, with what to install; None if it can."""
    program = shutil.which("tesseract")
    if program is None:
        return f"Reading text in images needs Tesseract, which is not installed: {INSTALL_OCR}"
    return _languages_problem(program)


@functools.cache
def _languages_problem(program: str) -> str | None:
    """What a Tesseract lacks of OCR_LANGUAGES (asked once per program: about 50 ms each time)."""
    try:
        found = subprocess.run(
            [program, "--list-langs"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as error:
        return f"Tesseract did not start ({error}): reinstall it with {INSTALL_OCR}"
    missing = [lang for lang in OCR_LANGUAGES.split("+") if lang not in found]
    if missing:
        return f"Tesseract lacks the {' and '.join(missing)} language data: {INSTALL_OCR}"
    return None


def ocr(data: bytes) -> str:
    """The text Tesseract reads in an image (English and Portuguese); raise MediaUnavailable if it
    cannot run."""
    image = Image.open(io.BytesIO(data), formats=FORMATS)
    image.load()
    return ocr_image(image)


def ocr_image(image: Image.Image) -> str:
    """`ocr` of a decoded image (a scanned PDF's page)."""
    problem = ocr_problem()
    if problem:
        raise MediaUnavailable(problem)
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    page = io.BytesIO()
    image.save(page, "PNG", compress_level=1)
    try:
        done = subprocess.run(
            [shutil.which("tesseract") or "tesseract", "stdin", "stdout", "-l", OCR_LANGUAGES],
            input=page.getvalue(),
            capture_output=True,
            timeout=OCR_SECONDS,
            env=os.environ | OCR_ENVIRONMENT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise MediaUnavailable(f"Reading the image's text took over {OCR_SECONDS} s: stopped.") from None
    except OSError as error:
        raise MediaUnavailable(
            f"Tesseract did not start ({error}): reinstall it with {INSTALL_OCR}"
        ) from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise MediaUnavailable(f"Tesseract could not read the image: {said[-1] if said else done.returncode}")
    lines = [" ".join(line.split()) for line in done.stdout.decode("utf-8", "replace").splitlines()]
    return "\n".join(line for line in lines if line).strip()
