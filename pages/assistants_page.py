"""Assistants: instructions, model settings, JSON mode and starter prompts, saved under a name."""

import streamlit as st

from view import assistants_view, session

st.header("Assistants")
st.caption("Instructions, model settings, a JSON mode and starter prompts, saved under a name.")
session.show_flashes()
assistants_view.assistant_list()
