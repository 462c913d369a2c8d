"""The app's settings, read from the environment in one place.

Locally every connection is an emulator connection string. In Azure the same names
are prefixes of identity-based settings (`<name>__blobServiceUri`,
`<name>__fullyQualifiedNamespace`, `<name>__accountEndpoint`, `<name>__clientId`),
exactly as the Functions bindings read them, so one code path serves both. Redis follows
the same idea: a `rediss://` URL without a password means Microsoft Entra ID (see
shared/cache.py), signed in as REDIS_CLIENT_ID's managed identity in Azure and as the
developer's `az login` locally.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping, Optional

STORAGE = "AzureWebJobsStorage"
EVENTHUB = "EventHubConnection"
COSMOS = "CosmosDBConnection"

# Every setting the app reads, with its local value in local.settings.sample.json.
NAMES = (STORAGE, EVENTHUB, "EVENTHUB_NAME", COSMOS, "COSMOS_DATABASE", "REDIS_URL", "REDIS_CLIENT_ID",
         "CATALOG_REFRESH_SECONDS", "AFFINITY_HALF_LIFE_HOURS", "APPLICATIONINSIGHTS_CONNECTION_STRING",
         "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
         # the learning loop (shared/learning/); RETRAIN_SCHEDULE is read by the host (the timer's %setting%)
         "EXPLORATION_POLICY", "EXPLORATION_PERCENTAGE", "REWARD_WAIT_SECONDS", "DEFAULT_REWARD",
         "REWARD_AGGREGATION", "RETRAIN_SCHEDULE", "RETRAIN_EVERY_IMPRESSIONS", "TRAINING_WINDOW_DAYS",
         "MODEL_REFRESH_SECONDS", "APPRENTICE_MODE", "APPRENTICE_AGREEMENT",
         # the Personalizer-compatible API (functions/personalizer.py); its loop's learning settings are
         # its stored service configuration and policy, set through the API
         "PERSONALIZER_API_KEY", "PERSONALIZER_RETRAIN_SCHEDULE")

LEARNING_DEFAULTS = {"EXPLORATION_POLICY": "epsilon-greedy", "EXPLORATION_PERCENTAGE": "20",
                     "REWARD_WAIT_SECONDS": "600", "DEFAULT_REWARD": "0", "REWARD_AGGREGATION": "earliest",
                     "RETRAIN_SCHEDULE": "0 */5 * * * *", "RETRAIN_EVERY_IMPRESSIONS": "1000",
                     "TRAINING_WINDOW_DAYS": "14", "MODEL_REFRESH_SECONDS": "30", "APPRENTICE_MODE": "false",
                     "APPRENTICE_AGREEMENT": "0.9"}


class SettingsError(Exception):
    """A required setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Connection:
    """One service connection: a connection string locally, an endpoint + identity in Azure."""

    name: str
    connection_string: Optional[str] = None
    endpoint: Optional[str] = None  # blob/queue service URI, namespace or account endpoint
    queue_endpoint: Optional[str] = None  # storage only: the queue service URI
    client_id: Optional[str] = None  # a user-assigned managed identity


@dataclass(frozen=True)
class Settings:
    storage: Connection
    eventhub: Connection
    eventhub_name: str
    cosmos: Connection
    cosmos_database: str
    redis_url: str
    redis_client_id: Optional[str] = None  # the managed identity that signs in to Redis with Entra ID
    catalog_refresh_seconds: float = 60.0  # how often the offers function reloads the catalog
    affinity_half_life_hours: float = 72.0  # category affinity halves in this time
    appinsights_connection_string: Optional[str] = None  # metrics go to Application Insights when set
    # "Authorization=AAD;ClientId=<id>": send metrics with that identity's Entra token (no local auth)
    appinsights_authentication: Optional[str] = None
    learning: Learning = field(default_factory=lambda: Learning())


@dataclass(frozen=True)
class Learning:
    """The learning loop's settings (Personalizer's names in brackets)."""

    exploration_policy: str = "epsilon-greedy"  # or "softmax"
    exploration_percentage: float = 20.0  # [explorationPercentage]
    reward_wait_seconds: float = 600.0  # [rewardWaitTime]
    default_reward: float = 0.0  # [defaultReward]
    reward_aggregation: str = "earliest"  # or "sum" [rewardAggregation]
    retrain_every: int = 1000  # new decisions a scheduled retrain waits for
    training_window_days: float = 14.0
    model_refresh_seconds: float = 30.0  # how often the offers function looks for a new current model
    apprentice_mode: bool = False  # serve the baseline until the learner agrees with it often enough
    apprentice_agreement: float = 0.9


def _connection(env: Mapping[str, str], prefix: str, endpoint_key: str,
                queue_key: Optional[str] = None) -> Connection:
    connection_string = env.get(prefix) or None
    endpoint = env.get(f"{prefix}__{endpoint_key}") or None
    if not connection_string and not endpoint:
        raise SettingsError(f"{prefix} is not set (a connection string, or {prefix}__{endpoint_key} "
                            f"with a managed identity)")
    return Connection(
        name=prefix,
        connection_string=connection_string,
        endpoint=endpoint,
        queue_endpoint=env.get(f"{prefix}__{queue_key}") if queue_key else None,
        client_id=env.get(f"{prefix}__clientId") or None,
    )


def load(env: Mapping[str, str] = os.environ) -> Settings:
    return Settings(
        storage=_connection(env, STORAGE, "blobServiceUri", "queueServiceUri"),
        eventhub=_connection(env, EVENTHUB, "fullyQualifiedNamespace"),
        eventhub_name=env.get("EVENTHUB_NAME") or "activity",
        cosmos=_connection(env, COSMOS, "accountEndpoint"),
        cosmos_database=env.get("COSMOS_DATABASE") or "offerloop",
        redis_url=env.get("REDIS_URL") or "redis://localhost:6379/0",
        redis_client_id=env.get("REDIS_CLIENT_ID") or None,
        catalog_refresh_seconds=_positive(env, "CATALOG_REFRESH_SECONDS", 60.0),
        affinity_half_life_hours=_positive(env, "AFFINITY_HALF_LIFE_HOURS", 72.0),
        appinsights_connection_string=env.get("APPLICATIONINSIGHTS_CONNECTION_STRING") or None,
        appinsights_authentication=env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING") or None,
        learning=_learning(env),
    )


def _learning(env: Mapping[str, str]) -> Learning:
    def raw(name: str) -> str:
        return (env.get(name) or "").strip() or LEARNING_DEFAULTS[name]

    def number(name: str, low: float, high: float) -> float:
        try:
            value = float(raw(name))
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise SettingsError(f"{name}={raw(name)!r} is not a number from {low:g} to {high:g}")
        return value

    def choice(name: str, allowed: tuple[str, ...]) -> str:
        value = raw(name).lower()
        if value not in allowed:
            raise SettingsError(f"{name}={raw(name)!r} is not one of {', '.join(allowed)}")
        return value

    return Learning(
        exploration_policy=choice("EXPLORATION_POLICY", ("epsilon-greedy", "softmax")),
        exploration_percentage=number("EXPLORATION_PERCENTAGE", 0, 100),
        reward_wait_seconds=number("REWARD_WAIT_SECONDS", 1, 7 * 86400),
        default_reward=number("DEFAULT_REWARD", -1, 1),
        reward_aggregation=choice("REWARD_AGGREGATION", ("earliest", "sum")),
        retrain_every=int(number("RETRAIN_EVERY_IMPRESSIONS", 0, 10**9)),
        training_window_days=number("TRAINING_WINDOW_DAYS", 0.01, 3650),
        model_refresh_seconds=number("MODEL_REFRESH_SECONDS", 0.1, 86400),
        apprentice_mode=choice("APPRENTICE_MODE", ("true", "false", "1", "0")) in ("true", "1"),
        apprentice_agreement=number("APPRENTICE_AGREEMENT", 0, 1),
    )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SettingsError(f"{name}={raw!r} is not a positive number")
    return value
