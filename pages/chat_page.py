"""The chat: the open conversation, a box to type in, replies streamed from the chosen provider.

A message is saved by the chat box's callback, before this script runs, so the sidebar lists a new chat
and the address names it while its first reply streams: a reload then reopens it instead of a new chat.
"""

import streamlit as st

from errors import BnaGPTError
from view import chat_view, navigation, session

try:
    conversation = navigation.current()
except BnaGPTError as error:  # the data file cannot be used at all (written by a newer bnaGPT, say)
    session.show_error(error)
    st.stop()

with st.bottom:
    with st.container(horizontal=True, gap="medium"):
        chat_view.search_switch()
        chat_view.voice_switch()
    st.chat_input(
        "Message bnaGPT, attach files or images, speak (/image … makes a picture)",
        key="chat_prompt",
        on_submit=navigation.send_typed,
        accept_file="multiple",
        accept_audio=True,
        max_upload_size=session.settings().max_file_mb,
    )
reply = navigation.take_pending_reply()
session.show_flashes()
if conversation is not None:
    chat_view.conversation_actions(conversation)
    chat_view.context_bar(conversation)
    chat_view.files_panel(conversation, session.context_window(conversation), live=reply is None)
chat_view.show_conversation(conversation, welcome=reply is None, until=reply.question if reply else None)

if reply is not None:
    chat_view.stream_reply(reply)
    st.rerun()
chat_view.show_reply_error()
followed = chat_view.follow_reply_elsewhere(conversation)
if not followed and session.chat().needs_reply(conversation):
    st.button("Retry", icon=":material/refresh:", key="retry", on_click=navigation.retry)
