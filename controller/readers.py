"""Reading attached files into text with where each piece came from, by well-kept readers.

pypdf for PDF, docx2txt for DOCX, python-pptx for PPTX, openpyxl for XLSX, the csv module, BeautifulSoup
for HTML (script and style dropped), charset-normalizer for text in an unknown encoding. Every failure is
an UnreadableFile naming the file and saying what to do; the file is then not attached.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PIL import Image

from errors import MediaUnavailable, UnreadableFile
from model.attachment import extension

if TYPE_CHECKING:
    from pypdf import PdfReader

# Office files are zip archives: refuse ones that expand past this or hold more parts (zip bombs).
MAX_EXPANDED_BYTES = 300 * 1024 * 1024
MAX_ZIP_MEMBERS = 2_000
MAX_TEXT_CHARS = 20_000_000  # about 5,000 pages: more is refused rather than indexed for an hour
CODE = {
    "py", "js", "ts", "tsx", "jsx", "java", "c", "h", "cpp", "hpp", "cc", "cs", "go", "rs", "rb", "php",
    "swift", "kt", "scala", "sh", "bash", "sql", "r", "m", "lua", "pl", "yaml", "yml", "toml", "ini",
    "cfg", "xml", "css", "scss", "tex", "ipynb", "dockerfile", "makefile", "gradle", "vue", "svelte",
}  # fmt: skip
TEXT = {"txt", "md", "markdown", "rst", "log", "text"}
_LATIN = {
    "cp1250", "cp1257", "cp1258", "iso8859_2", "iso8859_4", "iso8859_10", "iso8859_13", "iso8859_15",
    "iso8859_16", "latin_1", "hp_roman8", "mac_latin2", "mac_roman", "cp850", "cp852",
}  # fmt: skip
KINDS = {"pdf", "docx", "pptx", "xlsx", "csv", "tsv", "html", "htm", "json"} | TEXT | CODE


@dataclass(frozen=True, slots=True)
class Section:
    """A piece of a file: a page, a slide, a row or a line. Rows and lines have a `number`, so that
    neighbours can be joined into one passage ("rows 2–9")."""

    text: str
    location: str  # "page 3", "slide 2", "Sheet1", "" (a file without parts)
    number: int | None = None  # row or line number, within `location`


@dataclass(frozen=True, slots=True)
class Reading:
    """What a file holds: its sections, and how many pages (slides, rows, lines) it has."""

    sections: list[Section]
    pages: int
    unit: str


def read(name: str, data: bytes) -> Reading:
    """The text of a file; raise UnreadableFile naming it."""
    kind = extension(name)
    if kind not in KINDS:
        raise UnreadableFile(
            f"“{name}” is not a kind of file bnaGPT reads. Attach PDF, Word (.docx), PowerPoint (.pptx), "
            "Excel (.xlsx), CSV, text, Markdown, HTML, JSON or source code."
        )
    try:
        if kind == "pdf":
            reading = _pdf(name, data)
        elif kind in ("docx", "pptx", "xlsx"):
            _check_zip(name, data)
            reading = {"docx": _docx, "pptx": _pptx, "xlsx": _xlsx}[kind](data)
        elif kind in ("csv", "tsv"):
            reading = _table(_decode(name, data), "\t" if kind == "tsv" else None)
        elif kind in ("html", "htm"):
            reading = _html(data)
        elif kind == "json":
            reading = _json(name, _decode(name, data))
        else:
            reading = _lines(_decode(name, data))
    except UnreadableFile:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, TypeError, AttributeError) as error:
        raise UnreadableFile(
            f"“{name}” could not be read: it looks damaged or is not really a {kind.upper()} file "
            f"({type(error).__name__}). Open it in the program that made it and save it again."
        ) from None
    text_size = sum(len(s.text) for s in reading.sections)
    if text_size > MAX_TEXT_CHARS:
        raise UnreadableFile(
            f"“{name}” holds {text_size:,} characters of text, more than the {MAX_TEXT_CHARS:,} bnaGPT "
            "indexes in one file. Split it and attach the parts you need."
        )
    if not any(s.text.strip() for s in reading.sections):
        raise UnreadableFile(f"“{name}” has no text that can be read: it is empty, or its content is images.")
    return reading


def _pdf(name: str, data: bytes) -> Reading:
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # a damaged file is reported to the user instead
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile(
                f"“{name}” is protected with a password. Save a copy without the password and attach that."
            )
        pages = [
            Section(_unwrap(page.extract_text() or ""), f"page {n}") for n, page in enumerate(reader.pages, 1)
        ]
    except UnreadableFile:
        raise
    except (PyPdfError, NotImplementedError) as error:
        if "decrypt" in str(error).lower() or "encrypt" in str(error).lower():
            raise UnreadableFile(
                f"“{name}” is encrypted in a way that cannot be opened here. Save a copy without "
                "protection and attach that."
            ) from None
        raise UnreadableFile(
            f"“{name}” is not a readable PDF ({error}). Open it in a PDF viewer and save or print it to PDF "
            "again."
        ) from None
    if pages and not any(p.text.strip() for p in pages):
        pages = _scanned(name, reader)
    return Reading(pages, len(pages), "pages")


MAX_OCR_PAGES = 60  # a scan is read by OCR at about a second a page (bench/media.py), while the user waits


def _scanned(name: str, reader: PdfReader) -> list[Section]:
    """A PDF of pictures of pages (a scan): each page's pictures read by OCR."""
    from controller import images

    problem = images.ocr_problem()
    if problem:
        raise UnreadableFile(
            f"“{name}” has no text layer: it looks like a scan (pages as pictures). {problem}"
        )
    if len(reader.pages) > MAX_OCR_PAGES:
        raise UnreadableFile(
            f"“{name}” is a scan of {len(reader.pages):,} pages; bnaGPT reads scans of up to "
            f"{MAX_OCR_PAGES} pages by OCR. Attach the pages you need, or a PDF with selectable text."
        )
    pages = []
    for number, page in enumerate(reader.pages, 1):
        texts = []
        for picture in page.images:
            try:
                texts.append(images.ocr_image(picture.image))
            except MediaUnavailable as error:
                raise UnreadableFile(f"“{name}”, page {number}: {error}") from None
            except (OSError, ValueError, Image.DecompressionBombError):
                continue  # a damaged or enormous picture: the page's other pictures may still read
        pages.append(Section(_unwrap("\n\n".join(t for t in texts if t)), f"page {number} (read with OCR)"))
    if not any(p.text.strip() for p in pages):
        raise UnreadableFile(f"“{name}” is a scan in which OCR found no text.")
    return pages


def _unwrap(text: str) -> str:
    """A PDF page's text with its visual line breaks joined (paragraph breaks kept): passages then read
    as sentences, for the embedding model and for the user."""
    paragraphs = re.split(r"\n\s*\n", text)
    return "\n\n".join(" ".join(p.split()) for p in paragraphs if p.strip())


def _check_zip(name: str, data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = archive.infolist()
        if len(members) > MAX_ZIP_MEMBERS:
            raise UnreadableFile(
                f"“{name}” holds {len(members):,} parts, more than an office document should "
                f"({MAX_ZIP_MEMBERS:,}); it was not opened. Save it again from its program."
            )
        expanded = sum(m.file_size for m in members)
        if expanded > MAX_EXPANDED_BYTES:
            raise UnreadableFile(
                f"“{name}” would expand to {expanded / 2**20:,.0f} MB (a zip bomb, or a very large "
                "document); it was not opened."
            )


def _docx(data: bytes) -> Reading:
    import docx2txt

    text = docx2txt.process(io.BytesIO(data)) or ""
    paragraphs = [p for p in text.split("\n") if p.strip()]
    return Reading([Section("\n".join(paragraphs), "")], max(1, len(paragraphs)), "paragraphs")


def _pptx(data: bytes) -> Reading:
    from pptx import Presentation

    slides = []
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, 1):
        parts = []
        for shape in slide.shapes:
            if shape.has_text_frame:
                parts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                parts += [" | ".join(c.text for c in row.cells) for row in shape.table.rows]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            parts.append(slide.notes_slide.notes_text_frame.text)
        slides.append(Section("\n".join(p for p in parts if p.strip()), f"slide {number}"))
    return Reading(slides, len(slides), "slides")


def _xlsx(data: bytes) -> Reading:
    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sections: list[Section] = []
    try:
        for sheet in book.worksheets:
            sections += _rows(sheet.title, sheet.iter_rows(values_only=True))
    finally:
        book.close()
    return Reading(sections, len(sections), "rows")


def _table(text: str, delimiter: str | None) -> Reading:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    sections = _rows("", csv.reader(io.StringIO(text), delimiter=delimiter))
    return Reading(sections, len(sections), "rows")


def _rows(sheet: str, rows: Iterator) -> list[Section]:
    """Each row as "header: value" pairs, so a row read alone still says what its numbers are."""
    header: list[str] | None = None
    sections = []
    for number, row in enumerate(rows, 1):
        cells = ["" if v is None else str(v).strip() for v in row]
        if not any(cells):
            continue
        if header is None:
            header = [c or f"column {i}" for i, c in enumerate(cells, 1)]
            continue
        pairs = [
            f"{header[i] if i < len(header) else f'column {i + 1}'}: {c}" for i, c in enumerate(cells) if c
        ]
        sections.append(Section("; ".join(pairs), sheet, number))
    if header is not None and not sections:
        sections.append(Section("; ".join(header), sheet, 1))
    return sections


def _html(data: bytes) -> Reading:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "lxml")
    for tag in soup(["script", "style", "noscript", "template", "iframe", "object", "svg"]):
        tag.decompose()
    text = soup.get_text("\n")
    return _lines("\n".join(line.strip() for line in text.splitlines() if line.strip()))


def _json(name: str, text: str) -> Reading:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise UnreadableFile(
            f"“{name}” is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}."
        ) from None
    except RecursionError:
        raise UnreadableFile(f"“{name}” is JSON nested too deeply to read.") from None
    return _lines(json.dumps(document, indent=1, ensure_ascii=False))


def _lines(text: str) -> Reading:
    lines = [Section(line, "", n) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    return Reading(lines, len(text.splitlines()), "lines")


def _decode(name: str, data: bytes) -> str:
    """Text in UTF-8 (with or without a byte order mark), UTF-16, or whatever charset-normalizer finds."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data[:8192]:
        raise UnreadableFile(f"“{name}” is not text (it holds binary data); check that it is the right file.")
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is not None and (best.encoding in _LATIN or any(m.encoding == "cp1252" for m in results)):
        # Short texts fit several Latin code pages equally well; Western European (Windows-1252, a superset
        # of Latin-1) is the likely one for English and Portuguese text.
        with contextlib.suppress(UnicodeDecodeError):
            return data.decode("cp1252")
    if best is None:
        raise UnreadableFile(
            f"“{name}” is not in a text encoding that could be recognised. Save it as UTF-8 and "
            "attach it again."
        )
    return str(best)
