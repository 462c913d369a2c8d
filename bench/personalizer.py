"""Personalizer-compatible rank latency through the official client, open loop, with a learned model.

On a throwaway stack, through azure-ai-personalizer's async client (`azure.ai.personalizer.aio`,
retries off, so an error counts once and adds no backoff to the latencies):

  1. training: the host retrains the loop every 5 s (PERSONALIZER_RETRAIN_SCHEDULE, a model
     export frequency of PT5S); TRAIN_EVENTS ranks of 10 actions at TRAIN_RATE/s, each rewarded
     1 with a click probability that depends on the visitor's segment and the item's category,
     until a model is promoted (at most PROMOTION_TIMEOUT s);
  2. serving: the host restarted with no retrain scheduled and the model export frequency set to
     PT1H, so no retrain runs while measuring; then for 10 and for 50 actions, WARMUP_SECONDS of
     warm-up and BENCH_SECONDS (30) measured, both at RATE (100) rank requests/s, open loop
     (bench/load.py: latency from when each request was due).

The requests look like a Personalizer customer's: 4 context namespaces with 13 features (user,
time, device, page; strings and numbers) and actions drawn from a catalogue of CATALOGUE items with
10 features each in 2 namespaces (item, content), so with Personalizer's default `-q ::` the
model scores every context namespace crossed with every action namespace. Ranks carry no
reward during the measurement; the host ingests the ranked events meanwhile, as it would.
"""
from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from azure.ai.personalizer.aio import PersonalizerAdministrationClient, PersonalizerClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError

from bench.load import LoadResult, check_loopback, open_loop
from shared import model_store, personalizer_store, settings, storage

RATE = float(os.environ.get("BENCH_PERSONALIZER_RATE", "100"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
WARMUP_SECONDS = float(os.environ.get("BENCH_PERSONALIZER_WARMUP_SECONDS", "10"))
ACTION_COUNTS = (10, 50)
TRAIN_EVENTS = int(os.environ.get("BENCH_PERSONALIZER_TRAIN_EVENTS", "3000"))
TRAIN_RATE = 100.0
PROMOTION_TIMEOUT = 180.0
CATALOGUE = 300
POOL = 1000  # distinct request bodies per action count, cycled through
SEED = 17

TRAINING_HOST = {"PERSONALIZER_RETRAIN_SCHEDULE": "*/5 * * * * *", "MODEL_REFRESH_SECONDS": "1"}
SERVING_HOST = {"PERSONALIZER_RETRAIN_SCHEDULE": "0 0 0 1 1 *"}  # once a year: never while measuring
TRAINING_CONFIGURATION = {"rewardWaitTime": "PT2S", "defaultReward": 0.0, "rewardAggregation": "earliest",
                          "explorationPercentage": 0.2, "modelExportFrequency": "PT5S", "logRetentionDays": -1}
SERVING_CONFIGURATION = {**TRAINING_CONFIGURATION, "modelExportFrequency": "PT1H"}

SEGMENTS = ("student", "professional", "family", "retiree", "gamer", "traveller")
COUNTRIES = ("GB", "DE", "FR", "US", "ES", "IT", "NL", "SE")
LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "sv")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = ("night", "morning", "midday", "afternoon", "evening")
DEVICES = ("mobile", "desktop", "tablet")
SYSTEMS = ("ios", "android", "windows", "macos", "linux")
BROWSERS = ("safari", "chrome", "edge", "firefox")
SECTIONS = ("home", "search", "product", "cart", "article")
REFERRERS = ("direct", "search", "social", "email", "partner")
CATEGORIES = ("electronics", "books", "garden", "fashion", "toys", "sports", "kitchen", "travel")
FORMATS = ("card", "banner", "video", "carousel")
FAVOURITE = dict(zip(SEGMENTS, CATEGORIES))  # the training world: each segment's favourite category


def context(rng: random.Random) -> list[dict[str, Any]]:
    """A visitor's context features as Personalizer clients send them: one object per namespace."""
    return [
        {"user": {"segment": rng.choice(SEGMENTS), "country": rng.choice(COUNTRIES),
                  "language": rng.choice(LANGUAGES), "tenureMonths": rng.randrange(0, 61),
                  "visitsLast30Days": rng.randrange(0, 31)}},
        {"time": {"dayOfWeek": rng.choice(DAYS), "partOfDay": rng.choice(HOURS)}},
        {"device": {"kind": rng.choice(DEVICES), "os": rng.choice(SYSTEMS), "browser": rng.choice(BROWSERS),
                    "screenWidth": rng.choice((390, 414, 768, 1280, 1440, 1920))}},
        {"page": {"section": rng.choice(SECTIONS), "referrer": rng.choice(REFERRERS)}},
    ]


def catalogue(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """`count` actions, each with an item and a content namespace (10 features)."""
    items = []
    for k in range(count):
        category = CATEGORIES[k % len(CATEGORIES)]
        items.append({"id": f"item-{k:04d}", "features": [
            {"item": {"category": category, "subcategory": f"{category}-{rng.randrange(6)}",
                      "brand": f"brand-{rng.randrange(40):02d}", "priceBand": rng.choice(("low", "mid", "high")),
                      "price": round(rng.uniform(2, 400), 2), "rating": round(rng.uniform(1, 5), 1),
                      "ageDays": rng.randrange(0, 720)}},
            {"content": {"format": rng.choice(FORMATS), "lengthWords": rng.randrange(10, 400),
                         "language": rng.choice(LANGUAGES)}},
        ]})
    return items


def rank_request(rng: random.Random, items: list[dict[str, Any]], actions: int) -> dict[str, Any]:
    """A rank request of `actions` distinct actions from the catalogue, in a random order."""
    return {"contextFeatures": context(rng), "actions": rng.sample(items, actions)}


def click_probability(request: Mapping[str, Any], action_id: str) -> float:
    """The training world's truth: 0.6 when the item is of the visitor's segment's favourite category, else 0.1."""
    segment = request["contextFeatures"][0]["user"]["segment"]
    action = next(a for a in request["actions"] if a["id"] == action_id)
    return 0.6 if action["features"][0]["item"]["category"] == FAVOURITE[segment] else 0.1


def feature_count(objects: list[Mapping[str, Any]]) -> int:
    """Leaf features in a list of namespaced feature objects."""
    def leaves(value: Any) -> int:
        return sum(leaves(v) for v in value.values()) if isinstance(value, Mapping) else 1
    return sum(leaves(o) for o in objects)


def summary(result: LoadResult, prefix: str) -> dict[str, Any]:
    """bench/load.py's figures and the mean latency."""
    figures = result.summary(prefix)
    figures[f"{prefix}_mean_ms"] = statistics.fmean(result.latencies_ms) if result.latencies_ms else float("nan")
    return figures


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """These environment variables for the host started inside (the stack passes the environment on)."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _clients(api: str) -> tuple[PersonalizerClient, PersonalizerAdministrationClient]:
    check_loopback(api)
    credential = AzureKeyCredential("bench")  # the bench's host checks no key
    options = {"retry_total": 0, "connection_timeout": 10, "read_timeout": 10}
    return PersonalizerClient(api, credential, **options), PersonalizerAdministrationClient(api, credential, **options)


async def _train(api: str, registry: model_store.BlobRegistry) -> dict[str, Any]:
    rng = random.Random(SEED)
    items = catalogue(CATALOGUE, rng)
    requests = [rank_request(rng, items, ACTION_COUNTS[0]) for _ in range(TRAIN_EVENTS)]
    draws = [rng.random() for _ in range(TRAIN_EVENTS)]
    client, admin = _clients(api)
    async with client, admin:
        await admin.update_service_configuration(TRAINING_CONFIGURATION)

        async def rank_and_reward(i: int) -> bool:
            try:
                response = await client.rank(requests[i])
                if draws[i] < click_probability(requests[i], response["rewardActionId"]):
                    await client.reward(response["eventId"], {"value": 1.0})
            except AzureError:
                return False
            return True

        began = time.perf_counter()
        result = await open_loop(rank_and_reward, TRAIN_RATE, TRAIN_EVENTS / TRAIN_RATE, "training")
        pointer = None
        while pointer is None and time.perf_counter() - began < PROMOTION_TIMEOUT:
            await asyncio.sleep(1)
            pointer = registry.pointer()
    return {"train_events": result.sent, "train_errors": result.errors,
            "train_seconds_to_model": time.perf_counter() - began,
            "served_model": (pointer or {}).get("version", "none: the baseline (no model was promoted)")}


async def _measure(api: str) -> dict[str, Any]:
    rng = random.Random(SEED + 1)
    items = catalogue(CATALOGUE, rng)
    client, admin = _clients(api)
    figures: dict[str, Any] = {}
    async with client, admin:
        stored = await admin.update_service_configuration(SERVING_CONFIGURATION)
        figures["model_export_frequency"] = stored["modelExportFrequency"]
        for actions in ACTION_COUNTS:
            bodies = [rank_request(rng, items, actions) for _ in range(POOL)]

            async def rank(i: int) -> bool:
                try:
                    await client.rank(bodies[i % POOL])
                except AzureError:
                    return False
                return True

            await open_loop(rank, RATE, WARMUP_SECONDS, f"warm-up, {actions} actions")
            result = await open_loop(rank, RATE, SECONDS, f"rank, {actions} actions @ {RATE:g}/s")
            figures.update(summary(result, f"rank_{actions}actions"))
    return figures


def run(stack) -> dict:
    api = f"http://127.0.0.1:{stack.config.ports.host}/api"
    config = settings.load(stack.settings)
    registry = model_store.from_service(storage.blob_service(config.storage), prefix=personalizer_store.PREFIX)
    example = rank_request(random.Random(SEED), catalogue(CATALOGUE, random.Random(SEED)), 1)
    figures: dict[str, Any] = {"rate_per_s": RATE, "seconds": SECONDS,
                               "context_features": feature_count(example["contextFeatures"]),
                               "action_features": feature_count(example["actions"][0]["features"])}
    with environment(TRAINING_HOST):
        stack.up(["host"])
    try:
        figures.update(asyncio.run(_train(api, registry)))
    finally:
        stack.down(["host"])
    with environment(SERVING_HOST):
        stack.up(["host"])
    try:
        figures.update(asyncio.run(_measure(api)))
    finally:
        stack.down(["host"])
    return figures
