"""The chat: the open conversation, a box to type in, replies streamed from the chosen provider."""

import streamlit as st

from errors import BnaGPTError, ConversationNotFound
from view import chat_view, session

chat = session.chat()
wanted = st.query_params.get("c")
if wanted and wanted != chat.conversation_id:
    try:
        chat.open(wanted)
    except ConversationNotFound as error:
        session.flash("warning", str(error))
        st.query_params.pop("c", None)

try:
    conversation = chat.conversation()
except ConversationNotFound as error:
    session.flash("warning", str(error))
    chat.new()
    st.query_params.pop("c", None)
    conversation = None
except BnaGPTError as error:  # the data file cannot be used at all (written by a newer bnaGPT, say)
    session.show_error(error)
    st.stop()

new_chat_assistant = chat_view.chosen_assistant() if conversation is None else None
prompt = st.chat_input("Message bnaGPT")
if prompt is not None and not prompt.strip():
    prompt = None  # nothing to send
prompt = prompt or st.session_state.pop("starter_prompt", None)
session.show_flashes()
if conversation is not None:
    chat_view.conversation_actions(conversation)
chat_view.show_conversation(conversation, welcome=not prompt)

retry = False
if not prompt:
    chat_view.show_reply_error()
    if chat.needs_reply(conversation):
        retry = st.button("Retry", icon=":material/refresh:", key="retry")

if prompt or retry:
    chat_view.clear_reply_error()
    assistant = conversation.assistant if conversation is not None else new_chat_assistant
    config = session.provider_config(assistant.provider if assistant else "")
    try:
        reply = chat.send(prompt, config, new_chat_assistant) if prompt else chat.retry(config)
    except BnaGPTError as failure:
        chat_view.set_reply_error(failure, unsent=prompt)
    else:
        if prompt:
            chat_view.show_user_prompt(prompt)
        chat_view.stream_reply(reply)
    if chat.conversation_id:
        st.query_params["c"] = chat.conversation_id
    st.rerun()
