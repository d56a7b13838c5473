"""bnaGPT's entrypoint: page config, session defaults, the shared sidebar, navigation."""

import streamlit as st

from view import session, sidebar

st.set_page_config(page_title="bnaGPT", page_icon=session.FAVICON)
session.init()
# The URL paths differ from the file names on purpose: Streamlit still maps a `pages/` folder the old
# way until st.navigation has run once, and a request for /settings must reach this frame, not the bare
# page script.
page = st.navigation(
    [
        st.Page("pages/chat_page.py", title="Chat", icon=":material/chat:", url_path="chat", default=True),
        st.Page(
            "pages/assistants_page.py", title="Assistants", icon=":material/smart_toy:", url_path="assistants"
        ),
        st.Page("pages/library_page.py", title="Library", icon=":material/folder_open:", url_path="library"),
        st.Page("pages/settings_page.py", title="Settings", icon=":material/settings:", url_path="settings"),
    ]
)
sidebar.render()
page.run()
session.after_page()
