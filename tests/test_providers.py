"""The provider registry: a provider is one record, and the pages show whatever records there are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller import providers
from controller.chat import ChatSession
from controller.providers import Capabilities, Provider, ProviderConfig, SettingField
from errors import NothingToAnswer
from model.message import Message, Role
from tests.conftest import SCRIPTED, build_scripted, click, new_app, stored_messages

ECHO = Provider(
    "echo",
    "Echo Cloud",
    build_scripted,
    fields=(
        SettingField("base_url", "Echo endpoint", "ECHO_URL", placeholder="https://echo.example/v1"),
        SettingField("model", "Echo model", "ECHO_MODEL", default="echo-1"),
        SettingField("api_key", "Echo key", "ECHO_API_KEY"),
    ),
    context_window=16384,
    capabilities=Capabilities(vision=True),
)


@pytest.fixture
def registered(request: pytest.FixtureRequest) -> Iterator[Provider]:
    """A provider added to the registry for one test, as a developer would add one: a record."""
    record = getattr(request, "param", ECHO)
    providers.PROVIDERS.append(record)
    try:
        yield record
    finally:
        providers.PROVIDERS.remove(record)


def test_a_provider_added_as_one_record_shows_on_every_page(registered, monkeypatch):
    """The sidebar offers it with its fields, Settings describes it, Assistants can pick it."""
    monkeypatch.setenv("ECHO_API_KEY", "echo-secret-key")
    at = new_app()
    choice = at.sidebar.selectbox(key="provider_label")
    assert "Echo Cloud" in choice.options
    choice.set_value("Echo Cloud").run()
    assert not at.exception
    labels = [t.label for t in at.sidebar.text_input]
    assert "Echo endpoint" in labels and "Echo model" in labels
    assert "Echo key" not in labels  # configured in the environment: used, never shown
    assert at.sidebar.text_input(key="echo_model").value == "echo-1"

    at.switch_page("pages/settings_page.py").run()
    assert not at.exception
    page = " ".join(md.value for md in at.markdown)
    assert "Echo Cloud" in page and "echo\\-1" in page and "from the environment" in page
    assert "echo-secret-key" not in repr(at)

    at.switch_page("pages/assistants_page.py").run()
    click(at, "New assistant")
    (provider_choice,) = [s for s in at.selectbox if s.label == "Provider"]
    assert "Echo Cloud" in provider_choice.options


def _broken_build(config: ProviderConfig, http_client):
    return {}["no such key"]  # a bug of ours, not a provider failing


@pytest.mark.parametrize("registered", [Provider("broken", "Broken", _broken_build)], indirect=True)
def test_a_bug_in_our_code_surfaces_instead_of_a_provider_message(registered, monkeypatch, data_file):
    """Only provider and HTTP errors become messages; our own bug reaches the page as an exception, and
    the user's message is kept."""
    monkeypatch.setenv("BNAGPT_PROVIDER", "broken")
    at = new_app()
    at.chat_input[0].set_value("Are you there?").run()
    assert at.exception
    assert "KeyError" in at.exception[0].message or "no such key" in at.exception[0].message
    assert stored_messages(data_file) == [("user", "Are you there?", "complete")]


def test_an_answered_chat_has_nothing_to_answer(store):
    """Asking for another reply when the last message is already answered says so plainly."""
    chat = ChatSession(store)
    conversation = store.create("Done", [Message(Role.ASSISTANT, "Hello!")])
    chat.open(conversation.id)
    config = ProviderConfig(kind=SCRIPTED, model="m")
    with pytest.raises(NothingToAnswer, match="no message to answer"):
        list(chat.retry(config))
