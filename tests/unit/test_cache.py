"""Which Redis sign-in the URL selects: as-is locally, Microsoft Entra ID in Azure (no network)."""
import time

import jwt
import pytest
import redis
from azure.core.credentials import AccessToken
from redis_entraid.cred_provider import EntraIdCredentialsProvider

from shared import cache, settings


def _kwargs(client: redis.Redis) -> dict:
    return client.connection_pool.connection_kwargs


def test_a_local_url_is_used_as_it_is_without_a_credential_provider():
    client = cache.redis_client("redis://127.0.0.1:6390/2")
    kwargs = _kwargs(client)
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("127.0.0.1", 6390, 2)
    assert kwargs.get("credential_provider") is None
    assert client.connection_pool.connection_class is redis.Connection


def test_a_tls_url_with_a_password_keeps_its_password():
    assert not cache.uses_entra("rediss://:s3cret@cache.example:6380/0")
    kwargs = _kwargs(cache.redis_client("rediss://:s3cret@cache.example:6380/0"))
    assert kwargs["password"] == "s3cret" and kwargs.get("credential_provider") is None


@pytest.mark.parametrize("url, expected", [
    ("rediss://amr-x.westeurope.redis.azure.net:10000", True),
    ("rediss://amr-x.westeurope.redis.azure.net", True),
    ("redis://localhost:6379/0", False),
    ("rediss://user:pw@host:10000", False),
    ("unix:///tmp/redis.sock", False),
])
def test_only_a_tls_url_without_a_password_means_entra(url, expected):
    assert cache.uses_entra(url) is expected


def test_a_tls_url_without_a_password_signs_in_with_an_entra_credential_provider():
    client = cache.redis_client("rediss://amr-x.westeurope.redis.azure.net:10000", "client-id-1")
    kwargs = _kwargs(client)
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("amr-x.westeurope.redis.azure.net", 10000, 0)
    assert isinstance(kwargs["credential_provider"], EntraIdCredentialsProvider)
    assert client.connection_pool.connection_class is redis.SSLConnection
    assert kwargs["socket_timeout"] == cache.TIMEOUT_SECONDS


def test_the_port_defaults_to_azure_managed_redis():
    kwargs = _kwargs(cache.redis_client("rediss://amr-y.westeurope.redis.azure.net"))
    assert kwargs["port"] == cache.AZURE_MANAGED_REDIS_PORT == 10000


@pytest.mark.parametrize("client_id, app_kwargs", [("cid-7", {"managed_identity_client_id": "cid-7"}),
                                                    (None, {})])
def test_the_token_is_for_redis_and_for_the_configured_identity(monkeypatch, client_id, app_kwargs):
    calls = []
    monkeypatch.setattr("redis_entraid.cred_provider.create_from_default_azure_credential",
                        lambda scopes, **kw: calls.append((scopes, kw)) or "provider")
    assert cache.entra_credentials(client_id) == "provider"
    assert calls == [(("https://redis.azure.com/.default",), {"app_kwargs": app_kwargs})]


def test_the_username_is_the_principals_object_id_and_the_password_its_token(monkeypatch):
    token = jwt.encode({"oid": "object-id-42", "exp": int(time.time()) + 3600}, "k" * 32, algorithm="HS256")
    asked = []

    class FakeCredential:  # stands in for DefaultAzureCredential: no Entra round trip
        def __init__(self, **kwargs):
            asked.append(kwargs)

        def get_token(self, *scopes, **kwargs):
            asked.append(scopes)
            return AccessToken(token, int(time.time()) + 3600)

    monkeypatch.setattr("redis_entraid.identity_provider.DefaultAzureCredential", FakeCredential)
    provider = cache.entra_credentials("cid-9")
    assert provider.get_credentials() == ("object-id-42", token)
    assert asked[0]["managed_identity_client_id"] == "cid-9"
    assert asked[1] == ("https://redis.azure.com/.default",)


def test_settings_pass_the_redis_client_id_through():
    loaded = settings.load({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                            "EventHubConnection": "Endpoint=sb://x;SharedAccessKeyName=a;SharedAccessKey=b",
                            "CosmosDBConnection": "AccountEndpoint=http://x/;AccountKey=a;",
                            "REDIS_URL": "rediss://amr-z.redis.azure.net:10000", "REDIS_CLIENT_ID": "cid-3"})
    client = cache.from_settings(loaded)
    assert client is cache.redis_client("rediss://amr-z.redis.azure.net:10000", "cid-3")
    assert isinstance(_kwargs(client)["credential_provider"], EntraIdCredentialsProvider)
