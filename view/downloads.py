"""Files handed to the browser through the page itself, never as a `/media/` address.

Streamlit serves what `st.download_button` offers at `/media/<id>` to anyone who has the address, logged in
or not, while the session lives and for a while after. A chat's or an account's export must not be readable
that way: here the button's callback makes the file, and the next run hands its bytes to a script in the
page, over the tab's own connection, which saves them as a download and then removes itself.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import streamlit as st

_PENDING = "download_pending"


def offer(
    label: str, make: Callable[[], bytes], file_name: str, mime: str, key: str, **button: object
) -> None:
    """A button that, clicked, makes the file (`make` runs then, not on every rerun) and downloads it."""
    st.button(label, key=key, on_click=_prepare, args=(make, file_name, mime), **button)


def _prepare(make: Callable[[], bytes], file_name: str, mime: str) -> None:
    st.session_state[_PENDING] = (make(), file_name, mime)


def deliver() -> None:
    """Hand a file made by a click to the browser (called once per run, by the app's frame)."""
    pending = st.session_state.pop(_PENDING, None)
    if pending is None:
        return
    data, file_name, mime = pending
    script = (
        f"const bytes = Uint8Array.from(atob({json.dumps(base64.b64encode(data).decode())}), "
        "c => c.charCodeAt(0));"
        f"const url = URL.createObjectURL(new Blob([bytes], {{type: {json.dumps(mime)}}}));"
        "const link = document.createElement('a');"
        f"link.href = url; link.download = {json.dumps(file_name)};"
        "document.body.appendChild(link); link.click(); link.remove();"
        "setTimeout(() => URL.revokeObjectURL(url), 60000);"
        "if (document.currentScript) document.currentScript.remove();"
    )
    st.html(f"<script>{script}</script>", unsafe_allow_javascript=True)
