"""Settings: test the chosen provider, see the local engine and where conversations are kept."""

from view import settings_view

settings_view.provider_section()
settings_view.engine_section()
settings_view.data_section()
