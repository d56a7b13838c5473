"""bnaGPT's entrypoint: page config, session defaults, the shared sidebar, navigation."""

from utils import offline

offline.apply()  # before any library that could phone home is loaded

import streamlit as st  # noqa: E402

from view import downloads, session, sidebar  # noqa: E402

st.set_page_config(page_title="bnaGPT", page_icon=session.FAVICON)
session.protect_page()
session.init()
if session.logged_out():
    # Accounts are on and nobody is logged in: every address gets the login page and nothing else.
    st.navigation([st.Page("pages/login_page.py", title="Log in", url_path="login", default=True)]).run()
    session.write_cookie()
    st.stop()
# The URL paths differ from the file names on purpose: Streamlit still maps a `pages/` folder the old
# way until st.navigation has run once, and a request for /settings must reach this frame, not the bare
# page script.
chat = st.Page("pages/chat_page.py", title="Chat", icon=":material/chat:", url_path="home", default=True)
pages = [
    chat,
    # The default page is served at the root only: /chat (a bookmark, a typed address) leads there too.
    st.Page(
        lambda: st.switch_page(chat, query_params=st.query_params.to_dict()),
        title="Chat",
        url_path="chat",
        visibility="hidden",
    ),
    st.Page(
        "pages/assistants_page.py", title="Assistants", icon=":material/smart_toy:", url_path="assistants"
    ),
    st.Page("pages/library_page.py", title="Library", icon=":material/folder_open:", url_path="library"),
    st.Page("pages/settings_page.py", title="Settings", icon=":material/settings:", url_path="settings"),
]
if session.account() is not None and session.is_admin():
    pages.append(st.Page("pages/admin_page.py", title="Admin", icon=":material/group:", url_path="admin"))
page = st.navigation(pages)
sidebar.render()
page.run()
downloads.deliver()
session.write_cookie()
session.after_page()
