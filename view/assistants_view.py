"""The Assistants page: make, edit, duplicate and delete assistants, and start a chat with one."""

from __future__ import annotations

import uuid
from dataclasses import replace

import streamlit as st

from controller import assistants
from controller.tools import LABELS
from errors import BnaGPTError
from model.assistant import Assistant
from utils.markdown import escape
from view import navigation, session
from view.chat_view import count, json_mode_input

NEW = "new"
SIDEBAR_CHOICE = "The one chosen in the sidebar"


def _provider_labels() -> dict[str, str]:
    """Provider choices for an assistant, by kind ("": whatever the sidebar has)."""
    return {"": SIDEBAR_CHOICE} | {p.kind: p.label for p in session.allowed_providers()}


def assistant_list() -> None:
    """Every assistant, with what can be done to it."""
    store = session.assistants()
    try:
        assistants = store.list()
    except BnaGPTError as error:
        session.show_error(error)
        return
    for notice in store.notices:
        st.warning(escape(notice))
    store.notices.clear()
    st.button(
        "New assistant",
        icon=":material/add:",
        type="primary",
        key="assistant_new",
        on_click=_edit,
        args=(NEW,),
    )
    editing = st.session_state.get("editing_assistant")
    if editing == NEW:
        _form(st.session_state.setdefault("new_assistant", Assistant(name="")))
    for assistant in assistants:
        if editing == assistant.id and not assistant.builtin:
            _form(assistant)
            continue
        with st.container(border=True):
            badge = " · built in" if assistant.builtin else f" · version {assistant.version}"
            st.markdown(f"**{escape(assistant.name)}**{badge}")
            if assistant.description:
                st.caption(escape(assistant.description))
            details = [f"JSON: {assistant.json_mode.label}"]
            if assistant.provider:
                details.append(f"provider: {_provider_labels().get(assistant.provider, assistant.provider)}")
            if assistant.model:
                details.append(f"model: {assistant.model}")
            st.caption(escape(" · ".join(details)))
            columns = st.columns(4)
            if columns[0].button("Start a chat", key=f"start_{assistant.id}"):
                _start_chat(assistant)
            columns[1].button(
                "Duplicate", key=f"duplicate_{assistant.id}", on_click=_duplicate, args=(assistant,)
            )
            if not assistant.builtin:
                columns[2].button("Edit", key=f"edit_{assistant.id}", on_click=_edit, args=(assistant.id,))
                columns[3].button(
                    "Delete", key=f"delete_assistant_{assistant.id}", on_click=_delete, args=(assistant,)
                )
                _knowledge(assistant)


def _knowledge(assistant: Assistant) -> None:
    """The assistant's files: every chat started with it can draw on them."""
    documents = session.documents()
    title = f"Knowledge ({len(assistant.files)} files)" if assistant.files else "Knowledge: add files"
    with st.expander(title, icon=":material/menu_book:"):
        for file in assistant.files:
            status = documents.status(file.sha256)
            state = {"ready": "ready", "failed": "could not be indexed"}.get(status.state, "indexing…")
            left, right = st.columns([5, 1], vertical_alignment="center")
            left.markdown(escape(f"{file.name} · {count(file.pages, file.unit)} · {state}"))
            right.button(
                "Remove",
                key=f"knowledge_remove_{assistant.id}_{file.sha256[:16]}",
                type="tertiary",
                on_click=_remove_knowledge,
                args=(assistant, file.sha256, file.name),
            )
        uploads = st.file_uploader(
            "Add files",
            accept_multiple_files=True,
            key=f"knowledge_upload_{assistant.id}_{st.session_state.get('knowledge_round', 0)}",
            max_upload_size=session.settings().max_file_mb,
            help="PDF, Word, PowerPoint, Excel, CSV, text, Markdown, HTML, JSON or code. New chats with this "
            "assistant answer from them and cite them.",
        )
        if uploads and st.button("Add to the knowledge", key=f"knowledge_add_{assistant.id}", type="primary"):
            try:
                stored, failed = assistants.add_knowledge(
                    session.assistants(), documents, assistant, [(u.name, u.getvalue()) for u in uploads]
                )
            except BnaGPTError as error:
                session.show_error(error)
                return
            for error in failed:
                session.flash("error", str(error))
            added = len(stored.files) - len(assistant.files)
            if added:
                session.flash("success", f"Added {added} file(s) to “{stored.name}”; indexing now.")
            # A new key empties the uploader (its value cannot be set).
            st.session_state["knowledge_round"] = st.session_state.get("knowledge_round", 0) + 1
            st.rerun()


def _remove_knowledge(assistant: Assistant, sha256: str, name: str) -> None:
    try:
        assistants.remove_knowledge(session.assistants(), assistant, sha256)
    except BnaGPTError as error:
        session.flash("error", str(error))
        return
    session.forget_unused_files()
    session.flash("success", f"Removed “{name}” from “{assistant.name}”. Chats started before keep it.")


_LANGUAGES = {"": "Detect it", "en": "English", "pt": "Português"}


def _voice_inputs(assistant: Assistant) -> tuple[str, str]:
    """The language users speak to the assistant in, and the voice that reads its replies."""
    left, right = st.columns(2)
    languages = dict(_LANGUAGES)
    languages.setdefault(assistant.language, assistant.language)
    language = left.selectbox(
        "Language spoken",
        list(languages),
        index=list(languages).index(assistant.language),
        format_func=languages.get,
        key=f"assistant_language_{assistant.id}",
        help="What speech is transcribed as, and which voice reads replies when none is chosen.",
    )
    voices_here = session.chat().voices
    choices = {"": "The best for each reply's language"}
    choices |= {v.id: v.label for v in (voices_here.available() if voices_here is not None else [])}
    choices.setdefault(assistant.voice, assistant.voice)
    voice = right.selectbox(
        "Voice",
        list(choices),
        index=list(choices).index(assistant.voice),
        format_func=choices.get,
        key=f"assistant_voice_{assistant.id}",
        help="Reads replies aloud (the Listen button, and Read replies aloud by the chat box).",
    )
    return language, voice


def _form(assistant: Assistant) -> None:
    with st.form(f"assistant_form_{assistant.id}"):
        name = st.text_input("Name", value=assistant.name, max_chars=60, key=f"assistant_name_{assistant.id}")
        description = st.text_input(
            "Description", value=assistant.description, key=f"assistant_description_{assistant.id}"
        )
        instructions = st.text_area(
            "Instructions (the system prompt)",
            value=assistant.instructions,
            height=150,
            key=f"assistant_instructions_{assistant.id}",
        )
        labels = _provider_labels()
        kinds = list(labels)
        provider = st.selectbox(
            "Provider",
            kinds,
            index=kinds.index(assistant.provider) if assistant.provider in kinds else 0,
            format_func=lambda kind: labels.get(kind, kind),
            key=f"assistant_provider_{assistant.id}",
        )
        model = st.text_input(
            "Model (empty: the provider's)", value=assistant.model, key=f"assistant_model_{assistant.id}"
        )
        left, right = st.columns(2)
        temperature = left.number_input(
            "Temperature",
            0.0,
            2.0,
            value=assistant.temperature,
            step=0.1,
            placeholder="default",
            key=f"assistant_temperature_{assistant.id}",
        )
        max_tokens = right.number_input(
            "Longest reply (tokens)",
            1,
            32768,
            value=assistant.max_tokens,
            step=64,
            placeholder="default",
            key=f"assistant_max_tokens_{assistant.id}",
        )
        mode = json_mode_input(assistant.json_mode, f"assistant_json_mode_{assistant.id}")
        schema = st.text_area(
            "JSON Schema", value=assistant.json_schema, height=150, key=f"assistant_schema_{assistant.id}"
        )
        starters = st.text_area(
            "Starter prompts, one per line",
            value="\n".join(assistant.starters),
            key=f"assistant_starters_{assistant.id}",
        )
        tools = st.multiselect(
            "Tools the model may call",
            list(LABELS),
            default=list(assistant.tools),
            format_func=LABELS.get,
            key=f"assistant_tools_{assistant.id}",
            help="With a provider whose models call tools (Groq, OpenAI-compatible). With any model, "
            "replies' Python code gets a Run button and the chat box a Search the web switch.",
        )
        language, voice = _voice_inputs(assistant)
        save, cancel = st.columns(2)
        saved = save.form_submit_button("Save", type="primary")
        cancelled = cancel.form_submit_button("Cancel")
    if cancelled:
        st.session_state.pop("editing_assistant", None)
        st.session_state.pop("new_assistant", None)
        st.rerun()
    if saved:
        edited = replace(
            assistant,
            name=name,
            description=description,
            instructions=instructions,
            provider=provider,
            model=model,
            temperature=temperature,
            max_tokens=max_tokens,
            json_mode=mode,
            json_schema=schema,
            starters=tuple(starters.splitlines()),
            tools=tuple(tools),
            language=language,
            voice=voice,
        )
        try:
            stored = session.assistants().save(edited)
        except BnaGPTError as error:
            session.show_error(error)
            return
        st.session_state.pop("editing_assistant", None)
        st.session_state.pop("new_assistant", None)
        session.flash("success", f"Saved “{stored.name}” (version {stored.version}).")
        st.rerun()


def _edit(assistant_id: str) -> None:
    st.session_state["editing_assistant"] = assistant_id


def _duplicate(assistant: Assistant) -> None:
    copy = replace(
        assistant, id=uuid.uuid4().hex, name=f"{assistant.name} (copy)"[:60], builtin=False, version=1
    )
    try:
        stored = session.assistants().save(copy)
    except BnaGPTError as error:
        session.flash("error", str(error))
        return
    st.session_state["editing_assistant"] = stored.id


def _delete(assistant: Assistant) -> None:
    try:
        session.assistants().delete(assistant.id)
    except BnaGPTError as error:
        session.flash("error", str(error))
        return
    session.forget_unused_files()
    session.flash("success", f"Deleted “{assistant.name}”. Chats started with it keep answering as before.")


def _start_chat(assistant: Assistant) -> None:
    navigation.new_chat(assistant)
    st.switch_page("pages/chat_page.py")
