"""The controller: agent, providers, documents, media, tools, accounts (no streamlit below view/).

Every program that uses it (the app, `python -m bench`, `python -m utils.migrate`, the tests) keeps its
libraries offline: the switches are applied here, before any controller module can load a library that
reads them (utils/offline.py says why they are process-wide).
"""

from utils import offline

offline.apply()
