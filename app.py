"""bnaGPT's entrypoint: page config, session defaults, the shared sidebar, navigation."""

import streamlit as st

from view import session, sidebar

st.set_page_config(page_title="bnaGPT", page_icon=":material/chat:", layout="centered")
session.init()
page = st.navigation(
    [
        st.Page("pages/chat.py", title="Chat", icon=":material/chat:", default=True),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
)
sidebar.render()
page.run()
