"""Log in (the only page a logged-out tab gets when accounts are on)."""

from view import auth_view

auth_view.login_page()
