"""Whose key goes where: a key from the environment only to the address the environment names with it;
with accounts, users reach only the servers the admin configured, or public ones if allowed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from controller.diagnostics import check_connection
from controller.providers import OPENAI, ProviderConfig, field_values, provider
from errors import ProviderMisconfigured
from tests.conftest import _chunk, chat_texts
from tests.test_accounts import PASSWORD, tab

ADMIN_KEY = "sk-admin-secret-0042"


class Listener:
    """A loopback server that answers like an OpenAI-compatible one and notes what each request carried."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (path, Authorization header)
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                listener.seen.append((self.path, self.headers.get("Authorization", "")))
                length = int(self.headers.get("content-length", 0))
                request = json.loads(self.rfile.read(length) or b"{}")
                if request.get("stream"):
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(_chunk("Hello from the server.") + b"data: [DONE]\n\n")
                    return
                body = {"object": "list", "data": [{"id": "m", "object": "model"}]}
                if self.command == "POST":
                    body = {
                        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "Hello from the server."}}],
                    }  # fmt: skip
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    @property
    def keys(self) -> set[str]:
        return {auth for _, auth in self.seen}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[tuple[Listener, Listener]]:
    """The admin's server (named in the environment) and a user's logging server."""
    admin, logger = Listener(), Listener()
    yield admin, logger
    admin.close()
    logger.close()


def test_an_environment_key_stays_with_the_environment_address():
    record = provider(OPENAI)
    environment = {"OPENAI_BASE_URL": "http://10.1.1.1:8000/v1", "OPENAI_API_KEY": ADMIN_KEY}
    assert field_values(record, {}, environment)["api_key"] == ADMIN_KEY
    same = field_values(record, {"base_url": "http://10.1.1.1:8000/v1/"}, environment)
    assert same["api_key"] == ADMIN_KEY
    other = field_values(record, {"base_url": "https://logs.example.net/v1"}, environment)
    assert other["base_url"] == "https://logs.example.net/v1" and other["api_key"] == ""
    own = field_values(record, {"base_url": "https://logs.example.net/v1", "api_key": "sk-mine"}, environment)
    assert own["api_key"] == "sk-mine"
    # Groq's address is not a setting: its key goes to Groq.
    assert field_values(provider("groq"), {}, {"GROQ_API_KEY": "gsk"})["api_key"] == "gsk"


def test_a_typed_address_gets_no_key_of_the_admins_in_the_chat_and_the_connection_test(servers, monkeypatch):
    admin, logger = servers
    monkeypatch.setenv("BNAGPT_PROVIDER", OPENAI)
    monkeypatch.setenv("OPENAI_BASE_URL", admin.url)
    monkeypatch.setenv("OPENAI_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("BNAGPT_OPENAI_MODEL", "m")
    at = tab()
    at.sidebar.text_input(key="openai_base_url").set_value(logger.url).run()
    at.chat_input(key="chat_prompt").set_value("Hi").run()
    assert "Hello from the server." in " ".join(text for _, text in chat_texts(at))
    at.switch_page("pages/settings_page.py").run()
    at.button(key="test_connection").click().run()
    assert logger.seen and all(ADMIN_KEY not in key for key in logger.keys)
    assert admin.seen == []


def _accounts_with_a_user(monkeypatch, admin_url: str) -> str:
    from controller.accounts import Accounts
    from settings import load_settings

    monkeypatch.setenv("BNAGPT_ACCOUNTS", "local")
    monkeypatch.setenv("BNAGPT_PROVIDER", OPENAI)
    monkeypatch.setenv("OPENAI_BASE_URL", admin_url)
    monkeypatch.setenv("OPENAI_API_KEY", ADMIN_KEY)
    monkeypatch.setenv("BNAGPT_OPENAI_MODEL", "m")
    keeper = Accounts(load_settings().shared_dir)
    ana = keeper.sign_up("ana", "Ana", PASSWORD)
    keeper.sign_up("bia", "Bia", PASSWORD, invite=keeper.invite(ana))
    return keeper.log_in("bia", PASSWORD)[1]


def test_with_accounts_a_user_answers_through_the_admins_server_only(servers, monkeypatch):
    admin, logger = servers
    bia = _accounts_with_a_user(monkeypatch, admin.url)
    at = tab(bia)
    assert not [t for t in at.sidebar.text_input if t.key == "openai_base_url"]  # no address to type
    at.session_state["openai_base_url"] = logger.url  # typed anyway, by a crafted request
    at.chat_input(key="chat_prompt").set_value("Hi").run()
    assert "Hello from the server." in " ".join(text for _, text in chat_texts(at))
    assert logger.seen == [] and admin.keys == {f"Bearer {ADMIN_KEY}"}


def test_with_accounts_a_users_own_address_must_be_public(servers, monkeypatch):
    admin, logger = servers
    bia = _accounts_with_a_user(monkeypatch, admin.url)
    monkeypatch.setenv("BNAGPT_USER_ENDPOINTS", "1")
    at = tab(bia)
    at.sidebar.text_input(key="openai_base_url").set_value(logger.url).run()
    at.chat_input(key="chat_prompt").set_value("Hi").run()
    assert "private or local address" in " ".join(e.value for e in at.error)
    at.switch_page("pages/settings_page.py").run()
    at.button(key="test_connection").click().run()
    assert "private or local address" in " ".join(e.value for e in at.error)
    assert logger.seen == [] and admin.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5432/v1",
        "http://169.254.169.254/latest",
        "http://[::1]:8080/v1",
        "http://10.0.0.5/v1",
    ],
)
def test_the_connection_test_refuses_private_addresses_typed_by_a_user(url):
    config = ProviderConfig(kind=OPENAI, model="m", base_url=url, public_only=True)
    with pytest.raises(ProviderMisconfigured, match="private or local"):
        check_connection(config)
