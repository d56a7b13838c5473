"""The Settings page's connection test."""

import pytest

from controller.diagnostics import check_connection
from errors import AuthenticationFailed, ModelNotFound, ProviderMisconfigured
from tests.conftest import Scripted

MODELS = {"object": "list", "data": [{"id": "m", "object": "model"}, {"id": "other", "object": "model"}]}


def test_lists_the_servers_models(scripted_server, scripted_config):
    """A reachable server with the chosen model reports its models."""
    scripted_server.script = Scripted(200, MODELS)
    report = check_connection(scripted_config)
    assert report.models == ["m", "other"]
    assert report.base_url == scripted_server.url


def test_names_the_models_when_the_chosen_one_is_missing(scripted_server, scripted_config):
    """A model the server does not offer is named, with what it does offer."""
    scripted_server.script = Scripted(200, MODELS)
    with pytest.raises(ModelNotFound, match="It offers: m, other"):
        check_connection(scripted_config.with_changes(model="gpt-9"))


def test_refused_key(scripted_server, scripted_config):
    """A refused key says so and does not echo it."""
    scripted_server.script = Scripted(401, {"error": {"message": "bad key"}})
    with pytest.raises(AuthenticationFailed) as raised:
        check_connection(scripted_config)
    assert "sk-test-secret" not in str(raised.value)


def test_missing_base_url(scripted_config):
    """An OpenAI-compatible provider without a URL says where to set it."""
    with pytest.raises(ProviderMisconfigured, match="base URL"):
        check_connection(scripted_config.with_changes(base_url=""))


@pytest.mark.engine
def test_local_engine(engine, local_config):
    """The local engine answers and offers its model."""
    assert check_connection(local_config, engine).models == ["local"]
