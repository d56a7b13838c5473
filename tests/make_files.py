"""Real documents made on the spot, for tests and the documents benchmark (fpdf2, python-docx,
python-pptx, openpyxl: test-only dependencies)."""

from __future__ import annotations

import io
from collections.abc import Sequence


def pdf(pages: Sequence[str]) -> bytes:
    """A PDF with a text layer, one string a page (Latin-1 text: the core fonts' range)."""
    from fpdf import FPDF

    document = FPDF()
    document.set_font("helvetica", size=11)
    for text in pages:
        document.add_page()
        document.multi_cell(0, 6, text)
    return bytes(document.output())


def encrypted_pdf(text: str, password: str = "secret") -> bytes:
    """A PDF that opens only with a password."""
    from fpdf import FPDF

    document = FPDF()
    document.set_encryption(owner_password="owner", user_password=password)
    document.set_font("helvetica", size=11)
    document.add_page()
    document.multi_cell(0, 6, text)
    return bytes(document.output())


def scanned_pdf(pages: int = 2, lines: Sequence[str] = ()) -> bytes:
    """A PDF whose pages are pictures only, like a scan: no text layer; `lines` drawn on each picture."""
    from fpdf import FPDF

    document = FPDF()
    for _ in range(pages):
        document.add_page()
        picture = io.BytesIO()
        text_image(lines, (1240, 1754) if lines else (200, 280)).save(picture, format="PNG")
        document.image(picture, x=10, y=10, w=180)
    return bytes(document.output())


def text_image(lines: Sequence[str], size: tuple[int, int] = (900, 300), mode: str = "RGB"):
    """A picture of printed lines (black on white; on transparent with mode RGBA), for OCR."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new(mode, size, (0, 0, 0, 0) if mode == "RGBA" else "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=36)  # Pillow's own font: no system fonts needed
    for number, line in enumerate(lines):
        draw.text((30, 30 + 60 * number), line, fill="black", font=font)
    return image


def docx(paragraphs: Sequence[str]) -> bytes:
    """A Word document."""
    from docx import Document

    document = Document()
    for text in paragraphs:
        document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def pptx(slides: Sequence[str]) -> bytes:
    """A PowerPoint deck, one text box a slide."""
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for text in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[6])
        slide.shapes.add_textbox(Inches(1), Inches(1), Inches(8), Inches(5)).text_frame.text = text
    out = io.BytesIO()
    deck.save(out)
    return out.getvalue()


def xlsx(sheets: dict[str, Sequence[Sequence[object]]]) -> bytes:
    """An Excel workbook: rows by sheet name, the first row the header."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def zip_bomb(name: str = "word/document.xml", megabytes: int = 400) -> bytes:
    """A small zip (shaped like an Office file) that expands to `megabytes` of zeros."""
    import zipfile

    out = io.BytesIO()
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(name, "w", force_zip64=True) as member,
    ):
        chunk = b"\0" * 2**20
        for _ in range(megabytes):
            member.write(chunk)
    return out.getvalue()


def many_members(count: int = 5_000) -> bytes:
    """A zip with thousands of tiny parts."""
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n in range(count):
            archive.writestr(f"part{n}.xml", "<a/>")
    return out.getvalue()


def speech(text: str, voice: str = "en-us", speed: str = "150") -> bytes:
    """`text` read aloud by espeak-ng, as WAV bytes (known words, for speech recognition)."""
    import subprocess

    return subprocess.run(
        ["espeak-ng", "-v", voice, "-s", speed, "--stdout"],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout


def silence(seconds: float = 2.0, rate: int = 16_000) -> bytes:
    """A WAV of `seconds` of silence (a muted microphone)."""
    import wave

    out = io.BytesIO()
    with wave.open(out, "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(rate)
        sound.writeframes(b"\0\0" * int(seconds * rate))
    return out.getvalue()
