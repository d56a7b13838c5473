"""Rendering a conversation and streaming a reply into it.

Replies are drawn into a placeholder rather than with `st.write_stream` so that every frame goes through the
same sanitising as stored messages (a half-streamed image must not be fetched either), and frames are
coalesced: ten a second for the opening words, then four. On a 2-core machine browser, app and engine share
the CPU, and every frame the browser draws is time the engine loses (bench/browser.py, docs/performance.md).
User messages are shown as plain text, exactly as typed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime

import streamlit as st

from controller import grounding, images, json_mode, library, providers
from controller.chat import Reply
from controller.documents import Documents
from controller.providers import provider
from controller.tools import LABELS, Running
from errors import BnaGPTError
from model import tree
from model.assistant import GENERAL, JsonMode, clean_assistant
from model.attachment import Attachment, Source
from model.conversation import MAX_FOLDER_LENGTH, Conversation
from model.file_store import FileStore
from model.media import Kind, Reading
from model.message import Context, Message, MessageStatus, Role, utc_now
from model.step import Step
from utils.markdown import escape, for_display, python_blocks
from view import downloads, navigation, session

# The opening words of a reply are drawn ten times a second, then four: every frame costs Chromium about
# 20 ms of a core (React re-rendering the page), taken from the engine that shares the 2 cores
# (bench/browser.py).
OPENING_SECONDS, OPENING_FRAMES, STEADY_SECONDS = 0.1, 5, 0.25
# Messages drawn per page of a long conversation: a rerun then costs the same at 50 or 5,000 messages, and
# the browser lays out only what is shown (measured in bench/page.py).
PAGE_SIZE = 40
CURSOR = " ▍"
_AVATARS = {"user": ":material/person:", "assistant": ":material/smart_toy:"}
# Icons from the Material Symbols font Streamlit serves itself: "⏹" has no glyph in Debian's Chromium fonts.
_STATUS_NOTES = {
    MessageStatus.STOPPED: ":material/stop_circle: Stopped",
    MessageStatus.FAILED: ":material/warning: Interrupted by an error",
    MessageStatus.INVALID: ":material/warning: Not the JSON this chat asks for (kept as written)",
}


def coalesce(
    chunks: Iterable[str], opening: float = OPENING_SECONDS, steady: float = STEADY_SECONDS
) -> Iterator[str]:
    """Join chunks into frames: the first chunk at once, the next OPENING_FRAMES at most every `opening`
    seconds, then at most every `steady` seconds."""
    buffer: list[str] = []
    last = 0.0
    frames = 0
    for chunk in chunks:
        buffer.append(chunk)
        now = time.monotonic()
        if now - last >= (opening if frames <= OPENING_FRAMES else steady):
            yield "".join(buffer)
            buffer.clear()
            last = now
            frames += 1
    if buffer:
        yield "".join(buffer)


def show_message(
    message: Message,
    json_chat: bool = False,
    conversation_id: str | None = None,
    version: tuple[int, int, list[Message]] | None = None,
) -> None:
    """One stored message, as a chat bubble; in a JSON-mode chat, replies show as JSON with a copy button.
    A reply's tool steps come first, as they happened; its Python blocks get Run buttons (the step is
    saved with it), their runs shown under them. In a saved chat, a row of actions follows: the < n/m >
    versions of the message, copy, edit or regenerate, always include or leave out."""
    role = message.role.value
    key = message.id
    left_out = message.context is Context.NEVER
    with (
        st.container(key=f"leftout_{key}") if left_out else contextlib.nullcontext(),
        st.chat_message(role, avatar=_AVATARS.get(role)),
    ):
        runs = [s for s in message.steps if s.by_user and s.tool == "run_python"]  # under their code
        if len(runs) < len(message.steps):
            show_steps([s for s in message.steps if s not in runs], f"steps_{key}")
        if message.media:
            show_media(message)
        editing = st.session_state.get(navigation.EDITING)
        if conversation_id is not None and editing == (conversation_id, message.id):
            _edit_box(message)
            return
        _show_text(message, json_chat)
        note = _STATUS_NOTES.get(message.status)
        if note:
            st.caption(note)
        if message.sources:
            show_sources(message.sources)
        if message.role == Role.ASSISTANT and conversation_id is not None and not json_chat:
            _run_buttons(message, conversation_id)
            show_steps(runs, f"runs_{key}")
        if conversation_id is not None:
            _actions(message, conversation_id, version)
        if message.role == Role.ASSISTANT and conversation_id is not None and message.content.strip():
            _listen(conversation_id, message.id)


_CONTEXT_NOTES = {
    Context.ALWAYS: ":material/keep: Always given to the model",
    Context.NEVER: ":material/visibility_off: Left out: the model is not given this message",
}


# (rule, key, (icon, help) to set it, (icon, help) to undo it)
_CONTEXT_BUTTONS = (
    (
        Context.ALWAYS,
        "pin",
        (":material/keep:", "Always give it to the model, even when the chat outgrows the model's window"),
        (":material/keep_off:", "Stop always giving it to the model"),
    ),
    (
        Context.NEVER,
        "leave",
        (":material/visibility_off:", "Leave it out of what the model is given"),
        (":material/visibility:", "Give it to the model again"),
    ),
)


def _actions(message: Message, conversation_id: str, version: tuple[int, int, list[Message]] | None) -> None:
    """The row under a message: its versions, copy, edit or regenerate, and what the model is given."""
    note = _CONTEXT_NOTES.get(message.context)
    if note:
        st.caption(note)
    with st.container(horizontal=True, gap="small", vertical_alignment="center"):
        if version is not None:
            number, total, siblings = version
            for name, step, edge in (("prev", -1, 1), ("next", 1, total)):
                st.button(
                    "",
                    icon=":material/chevron_left:" if step < 0 else ":material/chevron_right:",
                    type="tertiary",
                    key=f"{name}_{message.id}",
                    disabled=number == edge,
                    on_click=navigation.choose,
                    args=(siblings[(number - 1 + step) % total].id,),
                    help="Previous version" if step < 0 else "Next version",
                )
                if step < 0:
                    st.caption(f"{number}/{total}")
        with st.popover("", icon=":material/content_copy:", type="tertiary", help="Copy the Markdown"):
            st.code(message.content, language="markdown", wrap_lines=True)
        if message.role == Role.USER:
            st.button(
                "",
                icon=":material/edit:",
                type="tertiary",
                key=f"edit_{message.id}",
                on_click=navigation.start_edit,
                args=(conversation_id, message.id, message.content),
                help="Edit and send again (the conversation forks here; this version stays)",
            )
        elif message.parent is not None:
            _regenerate_buttons(message)
        for rule, key, (icon, help_text), (undo_icon, undo_help) in _CONTEXT_BUTTONS:
            on = message.context is rule  # pressed again, it goes back to "as the window allows"
            st.button(
                "",
                icon=undo_icon if on else icon,
                type="tertiary",
                key=f"{key}_{message.id}",
                on_click=navigation.set_context,
                args=(message.id, Context.AUTO if on else rule),
                help=undo_help if on else help_text,
            )
        if message.model and version is not None:
            st.caption(escape(message.model))
    if st.session_state.get(navigation.REGENERATING) == (conversation_id, message.id):
        _regenerate_form(message)


def _regenerate_buttons(message: Message) -> None:
    """Regenerate a reply with the chat's model at once, or open the choice of another provider and model
    (drawn for one reply at a time: a menu under every reply would slow every rerun)."""
    st.button(
        "",
        icon=":material/refresh:",
        type="tertiary",
        key=f"regen_{message.id}",
        on_click=navigation.regenerate,
        args=(message.id,),
        help="Regenerate with this chat's model (the old reply stays)",
    )
    st.button(
        "",
        icon=":material/swap_horiz:",
        type="tertiary",
        key=f"regen_with_{message.id}",
        on_click=navigation.choose_model_for,
        args=(message.id,),
        help="Regenerate with another provider or model",
    )


def _regenerate_form(message: Message) -> None:
    """Which provider and model answer again."""
    with st.form(f"regen_form_{message.id}", border=False):
        with st.container(horizontal=True, gap="small", vertical_alignment="bottom"):
            st.selectbox(
                "Provider",
                [navigation.THIS_CHAT, *providers.kinds()],
                format_func=lambda k: "This chat's" if k == navigation.THIS_CHAT else provider(k).label,
                key=f"regen_kind_{message.id}",
            )
            st.text_input(
                "Model (empty: the provider's)",
                key=f"regen_model_{message.id}",
                placeholder=message.model.split(" · ")[-1] if message.model else "",
            )
        with st.container(horizontal=True, gap="small"):
            st.form_submit_button(
                "Regenerate",
                icon=":material/refresh:",
                type="primary",
                on_click=navigation.regenerate,
                args=(message.id,),
            )
            st.form_submit_button("Cancel", on_click=navigation.choose_model_for, args=(None,))


def _edit_box(message: Message) -> None:
    """The question in a box to change; Send forks the conversation here."""
    with st.form(f"edit_form_{message.id}", border=False):
        st.text_area("Edit your message", key=f"edit_text_{message.id}", height=120)
        with st.container(horizontal=True, gap="small"):
            st.form_submit_button(
                "Send",
                icon=":material/send:",
                type="primary",
                on_click=navigation.send_edit,
                args=(message.id,),
            )
            st.form_submit_button("Cancel", on_click=navigation.cancel_edit)


def _show_text(message: Message, json_chat: bool) -> None:
    parsed = None
    if json_chat and message.role == Role.ASSISTANT:
        parsed, _ = json_mode.check(message.content, JsonMode.OBJECT, None)
    if message.role == Role.USER:
        if message.content:
            st.text(message.content)  # as typed: no Markdown, no icons, no typographic dashes
    elif parsed is not None:
        st.code(json.dumps(parsed, indent=2, ensure_ascii=False), language="json")
    elif json_chat and message.status == MessageStatus.INVALID:
        st.code(message.content, language=None, wrap_lines=True)
    elif message.sources:
        st.markdown(for_display(grounding.show_citations(message.content, message.sources)))
    else:
        st.markdown(for_display(message.content))


@st.cache_data(max_entries=256, show_spinner=False)
def _thumbnail(sha256: str, _files: FileStore) -> bytes:
    return images.thumbnail(_files.read(sha256))


def show_media(message: Message) -> None:
    """A message's images as thumbnails (with the text OCR read in them) and its sounds as players
    (with their transcripts)."""
    files = session.file_store()
    pictures = [m for m in message.media if m.kind is Kind.IMAGE]
    if pictures:
        with st.container(horizontal=True, gap="small"):
            for item in pictures:
                try:
                    st.image(_thumbnail(item.sha256, files), caption=escape(item.name), width=160)
                except FileNotFoundError:
                    st.caption(escape(f"{item.name}: no longer stored"))
                except (OSError, ValueError, SyntaxError):  # an import's bytes that are not an image
                    st.caption(escape(f"{item.name}: not an image that can be shown"))
    for item in message.media:
        if item.kind is Kind.AUDIO and files.has(item.sha256):
            st.audio(files.read(item.sha256), format=item.mime)
        if item.text and item.reading is Reading.OCR:
            with st.expander(
                escape(f"Text read with OCR in “{item.name}”"), icon=":material/document_scanner:"
            ):
                st.text(item.text)
        elif item.text and item.reading is Reading.TRANSCRIPT and item.text not in message.content:
            with st.expander(escape(f"Transcript of “{item.name}”"), icon=":material/mic:"):
                st.text(item.text)
        if item.note:
            st.caption(escape(f"{item.name}: {item.note}"))


_LISTENING = "listening"  # (conversation id, message id, whether to autoplay) whose audio is shown


def _listen(conversation_id: str, message_id: str) -> None:
    """The Listen button of a reply, and its player once asked for (autoplaying the first time)."""
    wanted = st.session_state.get(_LISTENING)
    if wanted is None or tuple(wanted[:2]) != (conversation_id, message_id):
        st.button(
            "Listen",
            icon=":material/volume_up:",
            type="tertiary",
            key=f"listen_{conversation_id}_{message_id}",
            on_click=listen,
            args=(conversation_id, message_id),
            help="Read this reply aloud (offline voices; the chat's assistant sets which).",
        )
        return
    fresh = wanted[2]
    st.session_state[_LISTENING] = (conversation_id, message_id, False)  # play by itself once, not on reruns
    try:
        with st.spinner("Voicing the reply…"):
            data, mime, note = session.chat().speech(
                conversation_id, message_id, session.provider_config(session.provider_kind())
            )
    except BnaGPTError as error:
        st.caption(escape(str(error)))
        return
    st.audio(data, format=mime, autoplay=fresh)
    st.caption(escape(note))


def listen(conversation_id: str, message_id: str) -> None:
    """Callback: read a reply aloud."""
    st.session_state[_LISTENING] = (conversation_id, message_id, True)


def _run_buttons(message: Message, conversation_id: str) -> None:
    """A Run button under each Python block of a reply: the code runs in the chat's sandboxed session."""
    blocks = python_blocks(message.content)
    if not blocks:
        return
    with st.container(horizontal=True, gap="small"):
        for number, code in enumerate(blocks, 1):
            st.button(
                "Run the code" if len(blocks) == 1 else f"Run code {number}",
                icon=":material/play_arrow:",
                type="tertiary",
                key=f"run_{conversation_id}_{message.id}_{number}",
                on_click=_run_code,
                args=(conversation_id, message.id, code),
                help="Runs in this chat's own sandbox (no network, limited time and memory); variables "
                "stay between runs.",
            )


def _run_code(conversation_id: str, message_id: str, code: str) -> None:
    try:
        step = session.chat().run_code(conversation_id, message_id, code)
    except BnaGPTError as error:
        session.flash("error", str(error))
        return
    if step.error:
        session.flash("warning", "The code did not run to its end: its step says why.")


_TOOLS_SHOWN = {
    "make_image": ("Made an image", ":material/image:"),
    "run_python": ("Ran Python", ":material/terminal:"),
    "web_search": ("Searched the web", ":material/travel_explore:"),
}


def show_steps(steps: Sequence[Step], key: str, running: Running | None = None) -> None:
    """Tool steps as collapsible boxes (the input, output and duration), with figures shown under them
    and other files offered as downloads; then the step running now, if any."""
    files = session.file_store()
    for number, step in enumerate(steps):
        title, icon = _TOOLS_SHOWN.get(step.tool, (step.tool, ":material/build:"))
        who = " · you asked" if step.by_user else ""
        state = "failed" if step.error else f"{step.seconds:.1f} s"
        with st.expander(
            escape(f"{title}: {_first_line(step.input)}{who} · {state}"),
            icon=":material/error:" if step.error else icon,
        ):
            st.code(step.input, language="python" if step.tool == "run_python" else None, wrap_lines=True)
            if step.output:
                st.caption("Output")
                st.code(step.output, language=None, wrap_lines=True)
            if step.error:
                st.caption("Did not finish" if step.tool == "run_python" else "Failed")
                st.code(step.error, language=None, wrap_lines=True)
        for file_number, file in enumerate(step.files):
            if not files.has(file.sha256):
                st.caption(escape(f"{file.name}: no longer stored"))
            elif file.is_image:
                st.image(files.read(file.sha256), caption=escape(file.name))
                st.download_button(
                    escape(f"Download {file.name}"),
                    functools.partial(files.read, file.sha256),
                    file.name,
                    "image/png" if file.name.lower().endswith(".png") else "application/octet-stream",
                    icon=":material/download:",
                    type="tertiary",
                    key=f"{key}_{number}_{file_number}",
                )
            else:
                st.download_button(
                    escape(f"{file.name} ({max(1, file.size // 1024):,} KB)"),
                    functools.partial(files.read, file.sha256),
                    file.name,
                    "application/octet-stream",  # never rendered by the browser: the code wrote it
                    icon=":material/download:",
                    type="tertiary",
                    key=f"{key}_{number}_{file_number}",
                )
    if running is not None:
        title, _ = _TOOLS_SHOWN.get(running.tool, (running.tool, ""))
        with st.status(escape(f"{title}: {_first_line(running.input)}…"), state="running"):
            st.code(
                running.input, language="python" if running.tool == "run_python" else None, wrap_lines=True
            )


def _first_line(text: str, limit: int = 60) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def show_sources(sources: Sequence[Source]) -> None:
    """The passages a reply was given: those it cites first; each opens to show its passage."""
    cited = [s for s in sources if s.cited]
    rest = [s for s in sources if not s.cited]
    for title, group in (("Sources", cited), ("Also given to the model, not cited", rest)):
        if not group:
            continue
        st.caption(title)
        with st.container(horizontal=True, gap="small"):
            for source in group:
                where = f" · {source.location}" if source.location else ""
                with st.popover(escape(f"[{source.number}] {source.name}{where}"), type="tertiary"):
                    st.caption(escape(f"{source.name}{where}"))
                    st.text(source.passage)
                    if source.url:  # http(s) only (checked when read and when found)
                        st.link_button("Open the page", source.url, icon=":material/open_in_new:")
                        st.caption(escape(source.url))


def files_panel(conversation: Conversation, window: tuple[int, int], live: bool = True) -> None:
    """The files the chat (and its assistant) can draw on, with their indexing progress; with `live`,
    redrawn every second while one is indexing, so the bar moves and the file shows ready without a
    click. Not while a reply streams: a fragment's rerun would interrupt it (the reply shows the progress)."""
    own = conversation.files
    inherited = conversation.assistant.files if conversation.assistant is not None else ()
    if not own and not inherited:
        return
    documents = session.documents()
    documents.index((*own, *inherited))  # files imported or restored without an index get one
    busy = documents.busy((*own, *inherited))
    st.fragment(_files_list, run_every=1.0 if busy and live else None)(
        conversation.id, own, inherited, window
    )


def _files_list(
    conversation_id: str, own: Sequence[Attachment], inherited: Sequence[Attachment], window: tuple[int, int]
) -> None:
    documents = session.documents()
    busy = documents.busy((*own, *inherited))
    with st.expander(f"Files ({len(own) + len(inherited)})", icon=":material/attach_file:", expanded=busy):
        for file in own:
            _file_row(conversation_id, file, documents, window, removable=True)
        for file in inherited:
            _file_row(conversation_id, file, documents, window, removable=False)
    if not busy and st.session_state.pop(f"files_busy_{conversation_id}", False):
        st.rerun()  # indexing ended: redraw the whole page (the fragment alone stops refreshing)
    if busy:
        st.session_state[f"files_busy_{conversation_id}"] = True


def _file_row(
    conversation_id: str, file: Attachment, documents: Documents, window: tuple[int, int], removable: bool
) -> None:
    status = documents.status(file.sha256)
    size = f"{file.size / 2**20:,.1f} MB" if file.size >= 2**20 else f"{max(1, file.size // 1024):,} KB"
    origin = "" if removable else " · from the assistant"
    with st.container(horizontal=True, vertical_alignment="center", key=f"file_{file.sha256[:16]}"):
        st.markdown(escape(f"{file.name} · {size} · {count(file.pages, file.unit)}{origin}"))
        if status.state == "ready":
            st.caption(":material/check_circle: Ready")
        elif status.state == "failed":
            st.caption(":material/error: Could not be indexed")
        else:
            st.progress(status.progress, text="Indexing…" if status.state == "indexing" else "Waiting…")
        if removable and status.ready:
            fits = grounding.whole_fits(file, documents, *window)
            st.toggle(
                "Whole file",
                value=file.whole and fits,
                disabled=not fits,
                key=f"whole_{conversation_id}_{file.sha256[:16]}",
                on_change=_use_whole,
                args=(conversation_id, file.sha256, not file.whole),
                help="Give the model the whole file with every question, not only the passages that match."
                if fits
                else "Too long to fit in this model's context window: the passages that match are used.",
            )
        if removable:
            st.button(
                "Remove",
                icon=":material/close:",
                type="tertiary",
                key=f"detach_{conversation_id}_{file.sha256[:16]}",
                on_click=_detach,
                args=(conversation_id, file.sha256, file.name),
            )
    if status.state == "failed":
        st.caption(escape(status.error))


def count(number: int, unit: str) -> str:
    """ "1 page", "3 pages": `unit` is the plural."""
    return f"{number:,} {unit[:-1] if number == 1 and unit.endswith('s') else unit}"


def _use_whole(conversation_id: str, sha256: str, whole: bool) -> None:
    try:
        session.chat().use_whole(conversation_id, sha256, whole)
    except BnaGPTError as error:
        session.flash("error", str(error))


def _detach(conversation_id: str, sha256: str, name: str) -> None:
    try:
        session.chat().detach(conversation_id, sha256)
    except BnaGPTError as error:
        session.flash("error", str(error))
        return
    session.forget_unused_files()
    session.flash("success", f"Removed “{name}” from this chat.")


def show_conversation(
    conversation: Conversation | None, welcome: bool = True, until: str | None = None
) -> None:
    """The open conversation as chosen at its forks (down to `until`, the question a reply being
    regenerated answers), or a welcome on an empty chat."""
    if conversation is not None and not conversation.messages:
        if welcome:
            st.caption("Ask a question about the attached files, or anything else.")
        return
    if conversation is None:
        if not welcome:
            return
        # One container: the first message of a new chat is drawn in its place at once, instead of under
        # greyed-out welcome widgets that stay until the reply ends.
        with st.container():
            st.markdown("### How can I help you today?")
            st.caption("Your chats are saved as you go. Open them again from the sidebar.")
            _assistant_picker()
        return
    json_chat = conversation.assistant is not None and conversation.assistant.json_mode != JsonMode.OFF
    messages = conversation.path()
    if until is not None:
        ids = [m.id for m in messages]
        messages = messages[: ids.index(until) + 1] if until in ids else messages
    versions = tree.versions(conversation.messages)
    if any(m.context is Context.NEVER for m in messages):
        st.html(_DIMMED)
    shown = _shown_count(conversation.id)
    hidden = max(0, len(messages) - shown)
    if hidden:
        st.button(
            f"Show {min(PAGE_SIZE, hidden)} earlier messages ({hidden} not shown)",
            icon=":material/expand_less:",
            key="show_earlier",
            type="tertiary",
            on_click=_show_more,
            args=(conversation.id,),
        )
    for message in messages[hidden:]:
        show_message(message, json_chat, conversation.id, versions.get(message.id))


# Our own rule, no message text: messages left out of what the model is given are dimmed.
_DIMMED = '<style>[class*="st-key-leftout_"] { opacity: 0.45; }</style>'


def context_bar(conversation: Conversation) -> None:
    """The context meter: how much of the model's window the next question starts with (system prompt,
    summary, messages always included, history, file passages), and what of the conversation the model
    is not given: summarised (the summary on demand), left out, or before the chat's last N messages."""
    if not conversation.messages:
        return
    assistant = conversation.assistant
    try:
        window, exact = session.chat().window(conversation, session.assistant_config(assistant))
    except BnaGPTError:
        return  # the meter is a guide: a provider not set up says so when a message is sent
    meter = window.meter
    parts = (
        ("system prompt", meter.system),
        ("summary", meter.summary),
        ("always included", meter.pinned),
        ("history", meter.history),
        ("file passages, at most", meter.attachments),
    )
    notes = []
    if window.dropped:
        notes.append(f"{count(len(window.dropped), 'earlier messages')} summarised")
    if window.left_out:
        notes.append(f"{count(window.left_out, 'messages')} left out")
    if window.beyond_last:
        notes.append(
            f"{count(window.beyond_last, 'earlier messages')} not sent (this chat sends only the last "
            f"{conversation.keep_last})"
        )
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="context_meter"):
        st.progress(
            min(1.0, meter.used / max(1, meter.window)),
            text=f"Context: {meter.used:,} of {meter.window:,} tokens before your next message"
            + ("" if exact else " (estimated)"),
            width=320,
        )
        with st.popover("", icon=":material/data_usage:", type="tertiary", help="What the model is given"):
            for label, tokens in parts:
                st.caption(f"{label.capitalize()}: {tokens:,} tokens")
            st.caption(
                "Counted by the model's own tokenizer."
                if exact
                else "Estimated: this provider's tokenizer is not available here."
            )
        if notes:
            st.caption(escape(" · ".join(notes)))
        if window.summary:
            with st.popover("Summary", icon=":material/summarize:", type="tertiary"):
                digest = window.digest
                made = f"Made by {digest.made_by}" if digest else "Sentences picked from the messages"
                st.caption(escape(f"{made}; sent ahead of the messages the model is given."))
                st.text(window.summary.split("\n", 1)[-1])


def _assistant_picker() -> None:
    """On a new chat: which assistant answers, and its starter prompts."""
    try:
        choices = session.assistants().list()
    except BnaGPTError as error:
        session.show_error(error)
        return
    by_id = {a.id: a for a in choices}
    if st.session_state.get("assistant_choice") not in by_id:
        st.session_state["assistant_choice"] = choices[0].id
    chosen = st.selectbox(
        "Assistant",
        list(by_id),
        format_func=lambda i: by_id[i].name,
        key="assistant_choice",
        help="Make your own on the Assistants page.",
    )
    assistant = by_id[chosen]
    if assistant.description:
        st.caption(escape(assistant.description))
    for number, starter in enumerate(assistant.starters):
        st.button(escape(starter), key=f"starter_{number}", on_click=navigation.send, args=(starter,))


def _shown_count(conversation_id: str) -> int:
    """How many of the newest messages this tab shows of the conversation (a page, unless asked)."""
    shown = st.session_state.get("shown_messages")
    if not shown or shown[0] != conversation_id:
        return PAGE_SIZE
    return shown[1]


def _show_more(conversation_id: str) -> None:
    st.session_state["shown_messages"] = (conversation_id, _shown_count(conversation_id) + PAGE_SIZE)


def stream_reply(reply: Reply) -> None:
    """Stream a reply with a Stop button above it.

    Pressing Stop (or sending another message) reruns the page, which interrupts this function; the
    `finally` then saves what had arrived as a stopped reply.
    """
    with st.chat_message("assistant", avatar=_AVATARS["assistant"]):
        stop_slot = st.empty()
        stop_slot.button("Stop", icon=":material/stop_circle:", key="stop_reply")
        steps = st.empty()
        drawn = [0]  # the reply's `changes` last drawn

        def draw_steps() -> None:
            if reply.changes != drawn[0]:
                drawn[0] = reply.changes
                with steps.container():
                    show_steps(reply.steps, f"live_{reply.changes}", reply.running)

        body = st.container(key="reply_body").empty()  # the key names it for the browser tests
        text = ""
        waiting = st.empty()
        try:
            with st.spinner("Thinking…", show_time=True):
                frames = coalesce(reply)
                first = next(frames, None)
                while first == "":  # nothing to show yet: files being indexed, tools, JSON being collected
                    # Drawing is also where Streamlit lets Stop interrupt the run.
                    draw_steps()
                    waiting.caption(escape(reply.waiting or _waiting_note(reply)))
                    first = next(frames, None)
            waiting.empty()
            if first is not None:
                text = first
                body.markdown(for_display(text) + CURSOR)
                for frame in frames:
                    draw_steps()
                    text += frame
                    body.markdown(for_display(text) + CURSOR)
            draw_steps()
            body.markdown(for_display(text))
        except BnaGPTError:
            pass  # kept in reply.error, shown below the bubble
        finally:
            reply.close()
            stop_slot.empty()
    if reply.notice:
        session.flash("info", reply.notice)
    if st.session_state.get("read_aloud") and reply.status == MessageStatus.COMPLETE and reply.text.strip():
        conversation = session.chat().conversation()
        shown = conversation.path() if conversation is not None else []
        if conversation is not None and shown:  # voice mode: the new reply plays by itself on the next run
            st.session_state[_LISTENING] = (conversation.id, shown[-1].id, True)
    if reply.error is not None:
        navigation.reply_failed(reply.error)


def _waiting_note(reply: Reply) -> str:
    if reply.running is not None:
        return "Running a tool…" if reply.running.tool == "run_python" else "Searching the web…"
    return "Reading the results…" if reply.steps else "Collecting the reply…"


def voice_switch() -> None:
    """The chat box's "Read replies aloud" switch (voice mode: speak a question, hear the answer)."""
    st.toggle(
        "Read replies aloud",
        key="read_aloud",
        help="Each new reply is read aloud when it ends. Speak your questions with the microphone in the "
        "chat box.",
    )


def search_switch() -> None:
    """The chat box's "Search the web" switch: each question is searched first, with any model."""
    toolbox = session.chat().toolbox
    engine = toolbox.engine().label if toolbox is not None else "no search back-end"
    st.toggle(
        "Search the web",
        key="search_web",
        help=f"Search the web for each question first and answer from the pages found, citing them. "
        f"Searching with {engine} (choose another in Settings). Pages are read as untrusted data.",
    )


# A chat changed this recently whose last reply is unfinished may still be answered by another run (this tab
# reloaded mid-reply, another tab): a streaming reply is saved at least every second (controller/chat.py).
ELSEWHERE_SECONDS = 5.0


def follow_reply_elsewhere(conversation: Conversation | None) -> bool:
    """While another run may still be writing this chat's reply, say so and redraw the page each time the
    chat changes, until it has not changed for ELSEWHERE_SECONDS; return whether it is followed."""
    if conversation is None or navigation.reply_error() is not None:
        return False
    shown = conversation.path()
    if not shown:
        return False
    last = shown[-1]
    unfinished = last.role == Role.USER or last.status == MessageStatus.FAILED
    if not unfinished or _age(conversation) > ELSEWHERE_SECONDS:
        return False
    st.caption("The reply is still being written (this page was reloaded, or another tab asked)…")
    _watch(conversation.id, conversation.updated_at)
    return True


def _age(conversation: Conversation) -> float:
    return (utc_now() - conversation.updated_at).total_seconds()


@st.fragment(run_every=1.0)
def _watch(conversation_id: str, stamp: datetime) -> None:
    try:
        current = session.chat().store.get(conversation_id)
    except BnaGPTError:
        st.rerun()
        return
    if current.updated_at != stamp or _age(current) > ELSEWHERE_SECONDS:
        st.rerun()  # the whole page, with the reply as it is now (or as it was left)


def show_reply_error() -> None:
    """The last reply's error, and the user's text if it could not be saved."""
    error = navigation.reply_error()
    if not error:
        return
    text, unsent = error
    st.error(escape(text), icon=":material/error:")
    recording = navigation.unheard_recording()
    if recording:
        st.caption("Your recording, as it was received:")
        st.audio(recording, format="audio/wav")
    if unsent:
        st.caption("Your message was not sent. Copy it from here:")
        st.code(unsent, language=None, wrap_lines=True)


def conversation_actions(conversation: Conversation) -> None:
    """A menu above the open conversation: pin, archive, folder, JSON mode, export, trash."""
    placement = conversation.placement
    assistant = conversation.assistant
    if assistant is not None and (assistant.id != GENERAL.id or assistant.json_mode != JsonMode.OFF):
        mode = "" if assistant.json_mode == JsonMode.OFF else f" · JSON: {assistant.json_mode.label}"
        st.caption(escape(f"{assistant.name}, version {assistant.version}{mode}"))
    with st.popover("Conversation", icon=":material/more_horiz:"):
        pin_label = "Unpin" if placement.pinned else "Pin to the top"
        st.button(
            pin_label,
            icon=":material/keep:",
            key="action_pin",
            on_click=_place,
            args=(conversation.id,),
            kwargs={"pinned": not placement.pinned},
        )
        archive_label = "Unarchive" if placement.archived else "Archive (hide from the list)"
        st.button(
            archive_label,
            icon=":material/inventory_2:",
            key="action_archive",
            on_click=_place,
            args=(conversation.id,),
            kwargs={"archived": not placement.archived},
        )
        with st.form("folder_form", border=False):
            folder = st.text_input(
                "Folder",
                value=placement.folder,
                max_chars=MAX_FOLDER_LENGTH,
                placeholder="No folder",
                key=f"folder_input_{conversation.id}",
            )
            if st.form_submit_button("Move to folder"):
                _place(conversation.id, folder=folder)
                st.rerun()
        _json_mode_form(conversation)
        _keep_last_form(conversation)
        _tools_menu(conversation)
        for kind, label in (("json", "JSON"), ("markdown", "Markdown")):
            # Made when clicked, not on every rerun: a JSON export carries the chat's files.
            name, mime = library.export_name([conversation], kind)
            downloads.offer(
                f"Export as {label}",
                functools.partial(_export, conversation, kind, session.file_store()),
                name,
                mime,
                key=f"export_{kind}",
                icon=":material/download:",
            )
        st.button(
            "Move to the trash",
            icon=":material/delete:",
            key="action_trash",
            on_click=navigation.trash_chat,
            args=(conversation.id, conversation.name),
        )


def _keep_last_form(conversation: Conversation) -> None:
    """How many of the newest messages this chat gives the model (0: as many as fit)."""
    with st.form(f"keep_last_form_{conversation.id}", border=False):
        last = st.number_input(
            "Give the model only the last N messages (0: as many as fit)",
            min_value=0,
            max_value=10_000,
            value=conversation.keep_last,
            step=1,
            key=f"keep_last_{conversation.id}",
            help="Older messages are not sent (nor summarised); those you always include still are.",
        )
        if st.form_submit_button("Apply the limit"):
            try:
                session.chat().store.set_keep_last(conversation.id, int(last))
            except BnaGPTError as error:
                session.show_error(error)
            else:
                session.flash("success", f"This chat gives the model {_last_n(int(last))}.")
                st.rerun()


def _last_n(number: int) -> str:
    return "as many messages as fit" if number == 0 else f"only the last {count(number, 'messages')}"


def _tools_menu(conversation: Conversation) -> None:
    """The tools this chat's model may call (its copy of the assistant), and its Python session."""
    current = conversation.assistant or GENERAL
    toolbox = session.chat().toolbox
    st.caption("Tools the model may call")
    for name, label in LABELS.items():
        problem = toolbox.problem(name) if toolbox is not None else "Not available in this app."
        st.checkbox(
            label,
            value=name in current.tools and not problem,
            disabled=bool(problem),
            help=problem,
            key=f"tool_{conversation.id}_{name}_{name in current.tools}",
            on_change=_switch_tool,
            args=(conversation.id, name),
        )
    if not provider(session.provider_kind()).capabilities.tools:
        st.caption(
            "This provider's model does not call tools by itself: use the Run button under Python code "
            "and the Search the web switch by the chat box."
        )
    st.button(
        "Restart the Python session",
        icon=":material/restart_alt:",
        key="restart_python",
        on_click=_restart_python,
        args=(conversation.id,),
        help="Forget the variables of this chat's code runs.",
    )


def _switch_tool(conversation_id: str, name: str) -> None:
    chat = session.chat()
    try:
        current = chat.store.get(conversation_id).assistant or GENERAL
        tools = (
            tuple(t for t in current.tools if t != name) if name in current.tools else (*current.tools, name)
        )
        chat.store.set_assistant(conversation_id, clean_assistant(replace(current, tools=tools)))
    except BnaGPTError as error:
        session.flash("error", str(error))


def _restart_python(conversation_id: str) -> None:
    session.chat().restart_code(conversation_id)
    session.flash("success", "This chat's Python session was restarted: its variables are gone.")


def _export(conversation: Conversation, kind: str, files: FileStore) -> bytes:
    """The download's bytes, made when the button is clicked."""
    return library.export_file([conversation], kind, files=files)[0]


def json_mode_input(mode: JsonMode, key: str) -> JsonMode:
    """The JSON mode choice, as the Assistants page and a chat's menu show it."""
    return st.radio(
        "JSON mode",
        list(JsonMode),
        index=list(JsonMode).index(mode),
        format_func=lambda m: m.label,
        horizontal=True,
        key=key,
    )


def _json_mode_form(conversation: Conversation) -> None:
    """This chat's JSON mode (its copy of the assistant changes; the assistant does not)."""
    current = conversation.assistant or GENERAL
    with st.form(f"json_form_{conversation.id}", border=False):
        mode = json_mode_input(current.json_mode, f"json_mode_{conversation.id}")
        schema = st.text_area(
            "JSON Schema (for “Matching a schema”)",
            value=current.json_schema,
            height=120,
            key=f"json_schema_{conversation.id}",
        )
        if st.form_submit_button("Save JSON mode"):
            try:
                updated = clean_assistant(replace(current, json_mode=mode, json_schema=schema))
                session.chat().store.set_assistant(conversation.id, updated)
            except BnaGPTError as error:
                session.show_error(error)
            else:
                session.flash("success", f"JSON mode: {mode.label}.")
                st.rerun()


def _place(conversation_id: str, **changes: object) -> None:
    try:
        session.chat().store.place(conversation_id, **changes)
    except BnaGPTError as error:
        session.flash("error", str(error))
