"""Settings: test the chosen provider, see the local engine and where conversations are kept."""

from view import auth_view, session, settings_view

session.show_flashes()

settings_view.provider_section()
settings_view.engine_section()
settings_view.tools_section()
settings_view.media_section()
settings_view.data_section()
auth_view.account_section()
