"""Sanitising untrusted text before Streamlit renders it as Markdown."""

import pytest

from utils.markdown import escape, for_display


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("look ![x](http://198.51.100.7/p.png)", "look [image: x](http://198.51.100.7/p.png)"),
        ("![a][ref]\n\n[ref]: http://h/p.png", "[image: a][ref]\n\n[ref]: http://h/p.png"),
        ("`![code](u)` stays", "`![code](u)` stays"),
        ("```md\n![in a block](u)\n```", "```md\n![in a block](u)\n```"),
        ("roses are red\nviolets are blue", "roses are red  \nviolets are blue"),
        ("para one\n\npara two", "para one\n\npara two"),
        ("```\nline 1\nline 2\n```", "```\nline 1\nline 2\n```"),
    ],
)
def test_for_display(text, shown):
    """Images become links, line breaks are kept, code is left exactly as written."""
    assert for_display(text) == shown


@pytest.mark.parametrize(
    ("name", "escaped"),
    [
        ("**bold**", r"\*\*bold\*\*"),
        (":material/home: :smile:", "&#58;\u2060material/home&#58;\u2060 &#58;\u2060smile&#58;\u2060"),
        (":material_home:", "&#58;\u2060material\\_home&#58;\u2060"),
        (
            "see https://example.com or www.example.com, a@b.co",
            "see https&#58;\u2060//example\\.com or www\u2060\\.example\\.com, a@\u2060b\\.co",
        ),
        ("a -- b -> c >= d", "a \\-\u2060\\- b \\-\u2060\\> c \\>\u2060= d"),
        ("$x$ & &#58;", r"\$x\$ \& \&\#58;"),
        ("<b>x</b>", r"\<b\>x\</b\>"),
        ("plain words", "plain words"),
    ],
)
def test_escape(name, escaped):
    """A name used as a label shows as typed, not as Markdown, an icon or HTML."""
    assert escape(name) == escaped


# Images hidden in the forms that fooled the old pattern, and more edge cases of what is code: escaped
# backticks, backtick runs of other lengths, indented and unclosed fences, tables, quotes, lists, HTML.
PAYLOADS = [
    "![a](http://203.0.113.9/x.png)",
    '![a](<http://203.0.113.9/x.png> "title")',
    "[![a](http://203.0.113.9/x.png)](http://203.0.113.9/)",
    "![a][pixel]\n\n[pixel]: http://203.0.113.9/x.png",
    "![a]",
]
WRAPPERS = [
    "{p}",
    "see \\`{p}` here",
    "\\``{p}`",
    "`a\\`{p}`",
    "``{p}``",
    "`` ` {p} ``",
    "```{p}```",
    "    ```\n    {p}\n    ```",
    "    {p}",
    "```\n{p}\n```",
    "~~~md\n{p}\n~~~",
    "```\n{p}",
    "  ```\n  {p}\n  ```",
    "> `{p}`",
    "> {p}",
    "- `code` {p}",
    "1. {p}\n2. `{p}`",
    "| a | b |\n|---|---|\n| `x` | {p} |",
    "| a |\n|---|\n| `{p}` |",
    "<span>`</span>{p}",
    "*{p}*",
    "**`**{p}**`**",
    "$`$ {p} $`$",
    "<`{p}`>",
    "# `{p}`\n{p}",
    "line one\n{p}\nline three",
    "[ref]: http://h/\n{p}",
    "\\\\`{p}`",
]
CORPUS = [w.format(p=p) for w in WRAPPERS for p in PAYLOADS]


def _tokens(text: str):
    from markdown_it import MarkdownIt

    for token in MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text):
        yield token
        yield from token.children or ()


@pytest.mark.parametrize("text", CORPUS)
def test_no_image_is_left_and_code_is_kept_as_written(text):
    """A Markdown parser finds no image in what is shown, and every code span and block shows as written."""
    shown = for_display(text)
    assert [t for t in _tokens(shown) if t.type == "image"] == []

    def code(markdown: str) -> list[str]:
        return [t.content for t in _tokens(markdown) if t.type in ("code_inline", "code_block", "fence")]

    assert code(shown) == code(text)


def test_the_corpus_holds_images_and_code_the_old_pattern_misread():
    """The corpus is worth its name: the parser sees images in it where a pattern saw code."""
    with_images = [t for t in CORPUS if any(tok.type == "image" for tok in _tokens(t))]
    assert len(with_images) > 40
    assert any(tok.type == "image" for tok in _tokens("see \\`![a](http://203.0.113.9/x.png)` here"))
