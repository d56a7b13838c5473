"""Making untrusted text safe to hand to Streamlit's Markdown renderer.

Streamlit already escapes raw HTML. What is left: an image in a model's reply (`![](https://host/pixel)`)
would make the browser fetch an arbitrary URL, so images become plain links the user may choose to follow;
and a conversation name used as a button label must show as typed, not as Markdown or an icon directive.
"""

from __future__ import annotations

import re

# Fenced blocks and inline code are left alone: what is inside them is shown verbatim anyway.
_CODE = re.compile(r"(```.*?(?:```|$)|~~~.*?(?:~~~|$)|`[^`\n]*`)", re.DOTALL)
_IMAGE = re.compile(r"!\[")
_LINE_BREAK = re.compile(r"(?<!\n)\n(?!\n)")
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&])")
# Streamlit turns -- -> <- >= <= ~= into typographic symbols even when escaped; a word joiner (zero width,
# invisible) between the two characters keeps them as typed.
_TYPOGRAPHIC = re.compile(r"(?<=[-<>~])(?=[->=])")
WORD_JOINER = "\u2060"


def for_display(text: str) -> str:
    """The Markdown with images turned into links (nothing is fetched without a click) and every line
    break kept, as chat users expect (poems, addresses), outside code."""
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):  # even indexes are outside code
        parts[i] = _LINE_BREAK.sub("  \n", _IMAGE.sub("[image: ", parts[i]))
    return "".join(parts)


def escape(text: str) -> str:
    """Text that Markdown shows literally (for labels made from user data): no formatting, HTML, LaTeX,
    typographic dashes and arrows, emoji or icon codes (a colon is written as `&#58;`, which Streamlit's
    icon and emoji codes do not match, where a backslash does not stop them)."""
    text = _TYPOGRAPHIC.sub(WORD_JOINER, text)
    return _SPECIAL.sub(r"\\\1", text).replace(":", "&#58;")


_PYTHON_INFO = {"python", "py", "python3", "py3"}


def python_blocks(text: str) -> list[str]:
    """The code of each fenced Python block of a Markdown reply (``` or ~~~, closed or not), in order."""
    blocks: list[str] = []
    fence: str | None = None  # the opening fence while inside a block
    python = False
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if fence is None:
            if stripped[:3] in ("```", "~~~"):
                char = stripped[0]
                run = len(stripped) - len(stripped.lstrip(char))
                info = stripped[run:].split()
                fence, lines = char * run, []
                python = bool(info) and info[0].lower() in _PYTHON_INFO
            continue
        if stripped.startswith(fence) and not stripped.strip(fence[0]):
            if python:
                blocks.append("\n".join(lines))
            fence = None
            continue
        lines.append(line)
    if fence is not None and python:
        blocks.append("\n".join(lines))  # a reply cut short inside a block
    return [b for b in blocks if b.strip()]
