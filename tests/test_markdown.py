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
        (":material/home: :smile:", "&#58;material/home&#58; &#58;smile&#58;"),
        ("a -- b -> c >= d", "a \\-\u2060\\- b \\-\u2060\\> c \\>\u2060= d"),
        ("$x$ & &#58;", r"\$x\$ \& \&\#58;"),
        ("<b>x</b>", r"\<b\>x\</b\>"),
        ("plain words", "plain words"),
    ],
)
def test_escape(name, escaped):
    """A name used as a label shows as typed, not as Markdown, an icon or HTML."""
    assert escape(name) == escaped
