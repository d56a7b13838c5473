"""Admin: the accounts, invites, and the providers users may use."""

import streamlit as st

from errors import BnaGPTError
from view import admin_view, session

st.header("Admin")
session.show_flashes()
if not session.is_admin():
    st.error("Only an admin can see this page.")
    st.stop()
try:
    admin_view.accounts_section()
    admin_view.invite_section()
    admin_view.providers_section()
except BnaGPTError as error:
    session.show_error(error)
