"""The library: import and export chats, archived chats, the trash, and backups."""

import streamlit as st

from errors import BnaGPTError
from view import library_view, session

st.header("Library")
session.show_flashes()
try:
    summaries = session.chat().store.list()
except BnaGPTError as error:
    session.show_error(error)
    st.stop()
library_view.import_section()
library_view.export_section()
library_view.archive_section(summaries)
library_view.trash_section(summaries)
library_view.backups_section()
