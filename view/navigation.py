"""Which chat a tab shows, and the actions that change it.

The only module that writes the `?c=` address parameter and the session keys of the open chat: the
reply waiting to stream, and the last reply's error (with any text that could not be saved). Actions are
widget callbacks, so they run before the page script and the page drawn next already shows their result.
"""

from __future__ import annotations

import streamlit as st

from controller import media
from controller.chat import Reply
from controller.tools import make_image
from errors import BnaGPTError, ConversationNotFound
from model.assistant import Assistant
from model.conversation import TRASH_DAYS, Conversation
from model.media import Media
from model.message import Context
from view import session

_PARAMETER = "c"
_PENDING = "pending_reply"
_ERROR = "reply_error"
_UNHEARD = "unheard_recording"  # a recording in which nothing was heard, kept until the next message


def current() -> Conversation | None:
    """The conversation the address names (opened if this tab had another), or None for a new chat.

    A chat that is gone is reported and the tab starts a new one; a data file that cannot be used at all
    (from a newer bnaGPT, say) raises its StoreError."""
    chat = session.chat()
    wanted = st.query_params.get(_PARAMETER)
    if wanted and wanted != chat.conversation_id:
        try:
            chat.open(wanted)
        except ConversationNotFound as error:
            session.flash("warning", str(error))
            _show(None)
    try:
        return chat.conversation()
    except ConversationNotFound as error:
        session.flash("warning", str(error))
        chat.new()
        _show(None)
        return None


def current_id() -> str | None:
    """The open conversation's id as the address has it (the page follows the address)."""
    return st.query_params.get(_PARAMETER) or session.chat().conversation_id


def open_chat(conversation_id: str) -> None:
    """Callback: open a saved conversation."""
    try:
        session.chat().open(conversation_id)
    except BnaGPTError as error:
        session.flash("error", str(error))
        return
    _show(conversation_id)


def new_chat(assistant: Assistant | None = None) -> None:
    """Callback: start a new chat (with `assistant` chosen in its picker)."""
    session.chat().new()
    _show(None)
    if assistant is not None:
        st.session_state["assistant_choice"] = assistant.id


def saved_as(conversation: Conversation) -> None:
    """Show the copy Save as… just made (the chat controller already switched to it)."""
    _show(conversation.id)


def trash_chat(conversation_id: str, name: str) -> None:
    """Callback: move a conversation to the trash; if it was open, start a new chat."""
    chat = session.chat()
    try:
        chat.trash(conversation_id)
    except BnaGPTError as error:
        session.flash("error", str(error))
        return
    if chat.conversation_id is None:
        _show(None)
    session.flash(
        "success", f"Moved “{name}” to the trash. Restore it from the Library page within {TRASH_DAYS} days."
    )


def new_chat_assistant() -> Assistant | None:
    """The assistant picked for a new chat (None: the general one)."""
    chosen = st.session_state.get("assistant_choice")
    if not chosen:
        return None
    try:
        return session.assistants().get(chosen)
    except BnaGPTError:
        return None


IMAGE_COMMAND = "/image"


def _open_chat_assistant() -> Assistant | None:
    """The open chat's copy of its assistant, or the one picked for a new chat."""
    conversation = session.chat().conversation()
    return conversation.assistant if conversation is not None else new_chat_assistant()


def send_typed() -> None:
    """Callback of the chat box: attach its documents, read its images and sounds (a recording is
    transcribed into the message), then send it (spaces alone send nothing); `/image …` makes a picture."""
    value = st.session_state.get("chat_prompt")
    text = getattr(value, "text", value) or ""
    files = list(getattr(value, "files", None) or [])
    recording = getattr(value, "audio", None)
    if text.strip().lower().startswith(IMAGE_COMMAND) and not files and recording is None:
        picture(text.strip()[len(IMAGE_COMMAND) :].strip(), text)
        return
    documents = [f for f in files if not media.is_media(f.name)]
    if documents and not attach(documents, text) and text.strip():
        # No file could be read: the question is kept to send again, not answered without them.
        reply_failed("Your message was not sent because its files could not be attached.", unsent=text)
        return
    uploads = [(f.name, f.getvalue()) for f in files if media.is_media(f.name)]
    found = read_media(uploads) if uploads else []
    heard = read_media([("recording.wav", recording.getvalue())]) if recording is not None else []
    if recording is not None and not heard:
        # Nothing heard (or the sound unreadable, flashed by read_media): nothing is sent; the recording
        # stays on the page to listen to, and anything typed with it is kept.
        reply_failed("Your recording was not sent.", unsent=text.strip() or None)
        st.session_state[_UNHEARD] = recording.getvalue()
        return
    spoken = [m.text for m in heard if m.text]
    if spoken:  # what was said is the message (after anything typed); the recording stays with it
        text = " ".join([text.strip(), *spoken]).strip()
    if text.strip() or found or heard:
        send(text, [*found, *heard])


def read_media(uploads: list[tuple[str, bytes]]) -> list[Media]:
    """Images and sounds of the next message, read once (OCR, transcripts); failures flashed by name."""
    chat = session.chat()
    try:
        assistant = _open_chat_assistant()
        config = session.assistant_config(assistant)
        with st.spinner("Reading the images and sounds…"):
            found, failed, notices = chat.read_media(
                uploads, config, assistant.language if assistant else "", session.settings().environment
            )
    except BnaGPTError as failure:
        session.flash("error", str(failure))
        return []
    for error in failed:
        session.flash("error", str(error))
    for notice in notices:
        session.flash("warning", notice)
    return found


def picture(prompt: str, typed: str) -> None:
    """The /image command: a picture made by the configured image server, saved as a reply."""
    chat = session.chat()
    _clear_error()
    if not prompt:
        reply_failed("Describe the picture after /image, for example: /image a lighthouse at dawn.", typed)
        return
    if chat.toolbox is not None and chat.toolbox.draws_chart(prompt):
        send(make_image.chart_request(prompt), run_code=True)
        return
    try:
        assistant = _open_chat_assistant()
        with st.spinner("Making the image…"):
            chat.make_image(prompt, assistant)
    except BnaGPTError as failure:
        reply_failed(failure, unsent=typed)
        return
    _show(chat.conversation_id)


def attach(uploads: list, message: str = "") -> bool:
    """Attach uploaded files to the open chat (making one if needed); report each that fails by name.
    Return whether any was attached."""
    chat = session.chat()
    _clear_error()
    try:
        assistant = _open_chat_assistant()
        added, failed = chat.attach([(u.name, u.getvalue()) for u in uploads], assistant, message)
    except BnaGPTError as failure:
        session.flash("error", str(failure))
        return False
    for error in failed:
        session.flash("error", str(error))
    if added:
        names = ", ".join(f"“{f.name}”" for f in added)
        later = "" if message.strip() else ": indexing now; ask about it once it shows ready"
        session.flash("success", f"Attached {names}{later}.")
        _show(chat.conversation_id)
    return bool(added)


def send(text: str, found: list[Media] | None = None, run_code: bool = False) -> None:
    """Callback: save the user's message and leave its reply for the chat page to stream.

    Runs before the page script, so the sidebar drawn next already lists a new chat and the address
    names it: a reload while the first reply streams reopens the chat."""
    chat = session.chat()
    _clear_error()
    try:
        assistant = _open_chat_assistant()
        config = session.assistant_config(assistant)
        reply = chat.send(
            text,
            config,
            assistant,
            search_first=st.session_state.get("search_web", False),
            media=found or (),
            run_code=run_code,
        )
    except BnaGPTError as failure:
        reply_failed(failure, unsent=text)
        return
    st.session_state[_PENDING] = reply
    _show(chat.conversation_id)


def retry() -> None:
    """Callback of Retry: answer the last message again."""
    chat = session.chat()
    _clear_error()
    try:
        conversation = chat.conversation()
        assistant = conversation.assistant if conversation is not None else None
        st.session_state[_PENDING] = chat.retry(
            session.assistant_config(assistant),
            search_first=st.session_state.get("search_web", False),
        )
    except BnaGPTError as failure:
        reply_failed(failure)


EDITING = "editing_message"  # (conversation id, message id) of the question being edited


def start_edit(conversation_id: str, message_id: str, text: str) -> None:
    """Callback of Edit: show the question in a box to change and send again."""
    st.session_state[EDITING] = (conversation_id, message_id)
    st.session_state[f"edit_text_{message_id}"] = text


def cancel_edit() -> None:
    """Callback of Cancel: the question stays as it was."""
    st.session_state.pop(EDITING, None)


def send_edit(message_id: str) -> None:
    """Callback of the edit box's Send: a new version of the question, answered; the old one stays."""
    chat = session.chat()
    _clear_error()
    text = st.session_state.get(f"edit_text_{message_id}", "")
    try:
        assistant = _open_chat_assistant()
        config = session.assistant_config(assistant)
        reply = chat.edit(message_id, text, config, search_first=st.session_state.get("search_web", False))
    except BnaGPTError as failure:
        reply_failed(failure, unsent=text)  # the edited text is kept to copy
        return
    st.session_state.pop(EDITING, None)
    st.session_state[_PENDING] = reply


THIS_CHAT = "this chat's"  # the regenerate menu's choice of the chat's own provider
REGENERATING = "regenerating"  # (conversation id, reply id) whose choice of provider and model is open


def choose_model_for(message_id: str | None) -> None:
    """Callback: open (or, with None, close) the choice of another provider and model for a reply."""
    st.session_state[REGENERATING] = (session.chat().conversation_id, message_id)


def regenerate(message_id: str) -> None:
    """Callback of Regenerate: answer the question again, as a new version of the reply; with the
    provider (and model) chosen in its menu, if any."""
    chat = session.chat()
    _clear_error()
    st.session_state.pop(REGENERATING, None)
    kind = st.session_state.get(f"regen_kind_{message_id}", THIS_CHAT)
    model = (st.session_state.get(f"regen_model_{message_id}") or "").strip()
    try:
        assistant = _open_chat_assistant()
        if kind == THIS_CHAT:
            kind = assistant.provider if assistant else ""
        config = session.provider_config(kind)
        st.session_state[_PENDING] = chat.regenerate(
            message_id, config, model, search_first=st.session_state.get("search_web", False)
        )
    except BnaGPTError as failure:
        reply_failed(failure)


def choose(message_id: str) -> None:
    """Callback of the < > arrows: show this version of a message."""
    try:
        session.chat().choose(message_id)
    except BnaGPTError as error:
        session.flash("error", str(error))


def set_context(message_id: str, rule: Context) -> None:
    """Callback of Always include / Leave out: what the model is given of this message."""
    try:
        session.chat().set_context(message_id, rule)
    except BnaGPTError as error:
        session.flash("error", str(error))


def reply_pending() -> bool:
    """Whether a reply will stream in this run (nothing may rerun the page meanwhile)."""
    return _PENDING in st.session_state


def take_pending_reply() -> Reply | None:
    """The reply a callback asked for, once."""
    return st.session_state.pop(_PENDING, None)


def reply_failed(error: BaseException, unsent: str | None = None) -> None:
    """Remember why the last reply failed (and any text that could not be saved) across reruns."""
    st.session_state[_ERROR] = (str(error), unsent)


def reply_error() -> tuple[str, str | None] | None:
    """(why the last reply failed, the user's text if it could not be saved), or None."""
    return st.session_state.get(_ERROR)


def unheard_recording() -> bytes | None:
    """The last recording, if nothing was heard in it (kept for the user to listen to)."""
    return st.session_state.get(_UNHEARD)


def _clear_error() -> None:
    st.session_state.pop(_ERROR, None)
    st.session_state.pop(_UNHEARD, None)


def _show(conversation_id: str | None) -> None:
    """Name the open conversation in the address (none: a new chat) and forget the old one's error."""
    if conversation_id is None:
        st.query_params.pop(_PARAMETER, None)
    else:
        st.query_params[_PARAMETER] = conversation_id
    _clear_error()
