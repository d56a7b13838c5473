"""Assistants: instructions, model settings, JSON mode and starter prompts, saved under a name."""

from view import assistants_view, session

session.show_flashes()
assistants_view.assistant_list()
