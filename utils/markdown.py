"""Making untrusted text safe to hand to Streamlit's Markdown renderer.

Streamlit already escapes raw HTML. What is left: an image in a model's reply (`![](https://host/pixel)`)
would make the browser fetch an arbitrary URL, so images become plain links the user may choose to follow;
and a conversation name used as a button label must show as typed, not as Markdown or an icon directive.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~<>$&])")
# Streamlit turns -- -> <- >= <= ~= into typographic symbols even when escaped; a word joiner (zero width,
# invisible) between the two characters keeps them as typed.
_TYPOGRAPHIC = re.compile(r"(?<=[-<>~])(?=[->=])")
# Addresses GitHub-flavoured Markdown makes links of even when escaped: www. and e-mail (scheme:// is kept
# apart by the joiner every colon gets).
_AUTOLINK = re.compile(r"(?<=www)(?=\.)|(?<=@)(?=\w)", re.I)
WORD_JOINER = "\u2060"
IMAGE = "!["
_AS_LINK = "[image: "  # an image outside code becomes a link the user may follow
# The parser Streamlit's renderer follows: CommonMark with GitHub's tables and strikethrough.
_PARSER = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_MARK = re.compile("\ue000(\\d+)\ue001")


def for_display(text: str) -> str:
    """The Markdown with no image left in it (nothing is fetched without a click) and every line break
    kept, as chat users expect (poems, addresses), outside code.

    What is code is decided by a Markdown parser, not by a pattern: each `![` is marked, the text parsed,
    and a mark found in a code span or block is put back as it was (code shows as written), any other
    becomes a link. Should Streamlit's renderer read some text otherwise, the page's Content-Security-Policy
    (view/session.py) still lets no image load from anywhere but the app."""
    if IMAGE not in text and "\n" not in text:
        return text
    pieces = text.split(IMAGE)
    marked = "".join(f"{piece}\ue000{n}\ue001" for n, piece in enumerate(pieces[:-1])) + pieces[-1]
    in_code: set[int] = set()
    breaks: set[int] = set()  # lines outside code blocks (0-based), where a single line break is kept
    for token in _PARSER.parse(marked):
        if token.type in ("code_block", "fence"):
            in_code.update(int(n) for n in _MARK.findall(token.content))
        elif token.type == "inline":
            if token.map:
                breaks.update(range(token.map[0], token.map[1]))
            for child in token.children or ():
                if child.type == "code_inline":
                    in_code.update(int(n) for n in _MARK.findall(child.content))
    lines = [_MARK.sub(lambda m: IMAGE if int(m[1]) in in_code else _AS_LINK, x) for x in marked.split("\n")]
    out = []
    for number, line in enumerate(lines):
        out.append(line)
        if number == len(lines) - 1:
            break
        joined = number in breaks and number + 1 in breaks and line.strip() and lines[number + 1].strip()
        out.append("  \n" if joined and not line.endswith("  ") else "\n")
    return "".join(out)


def escape(text: str) -> str:
    """Text that Markdown shows literally (for labels made from user data): no formatting, HTML, LaTeX,
    typographic dashes and arrows, emoji or icon codes (a colon is written as `&#58;` and an invisible
    joiner, which Streamlit's icon and emoji codes do not match, where a backslash does not stop them), or
    addresses made into links."""
    text = _AUTOLINK.sub(WORD_JOINER, _TYPOGRAPHIC.sub(WORD_JOINER, text))
    # `&#58;` alone stopped `:material/home:` but not `:material_home:`; a joiner after it stops any code.
    return _SPECIAL.sub(r"\\\1", text).replace(":", "&#58;" + WORD_JOINER)


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
