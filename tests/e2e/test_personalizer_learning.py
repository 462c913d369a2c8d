"""The Personalizer-compatible loop learns, driven only as a Personalizer customer drives it: the
official client's rank and reward, and its service configuration (5% exploration, rewards
waited for 3 s, a new model every 10 s). The host runs the loop's retrain timer every 5 s.

The world: a visitor is a user type, a time of day and a device (namespaced context features, as
Personalizer clients send them), the actions are 8 products (a category and a brand each, and a
price tier), listed in a random order (so the baseline, the first action, is no better than
random). The true click probability is 0.7 for the product of the user type's favourite category
in the time of day's brand, 0.25 for the favourite category in the other brand, 0.15 for the
brand alone and 0.05 otherwise; the device means nothing. A click is a reward of 1; no click sends
no reward, so the loop's default reward (0) counts. The achieved CTR (clicks / ranks) over the
last LAST of EVENTS events (12,000 by default; E2E_PERSONALIZER_EVENTS) has to close FRACTION of
the gap between random (the mean click probability of the actions) and the oracle (the best one's),
both from the world itself. At ~50 events/s here the last 2,000 follow three or more promotions.
"""
from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pytest
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient
from azure.core.credentials import AzureKeyCredential

from shared import personalizer_store, resources, settings, storage

from .conftest import restarted_host

pytestmark = pytest.mark.timeout(900)

EVENTS = int(os.environ.get("E2E_PERSONALIZER_EVENTS", "12000"))
LAST = 2000  # events the acceptance figure is measured over
FRACTION = 0.75  # of the way from random to the oracle
WORKERS = 8
SEED = 29
LEARNING_SETTINGS = {"PERSONALIZER_RETRAIN_SCHEDULE": "*/5 * * * * *", "MODEL_REFRESH_SECONDS": "1"}
CONFIGURATION = {"explorationPercentage": 0.05, "rewardWaitTime": "PT3S", "modelExportFrequency": "PT10S",
                 "rewardAggregation": "earliest", "defaultReward": 0.0, "logRetentionDays": -1}

USER_TYPES = {"student": "games", "professional": "tech", "retiree": "garden"}  # -> favourite category
TIMES_OF_DAY = {"morning": "value", "afternoon": "value", "evening": "premium", "night": "premium"}  # -> brand
DEVICES = ("mobile", "desktop")
CATEGORIES = ("games", "tech", "garden", "books")
BRANDS = ("value", "premium")


@dataclass(frozen=True)
class Visitor:
    user_type: str
    time_of_day: str
    device: str

    def features(self) -> list[dict]:
        return [{"user": {"type": self.user_type}}, {"time": {"timeOfDay": self.time_of_day}},
                {"device": {"kind": self.device}}]


@dataclass(frozen=True)
class Product:
    id: str
    category: str
    brand: str

    def action(self) -> dict:
        tier = 1 + CATEGORIES.index(self.category) % 2 + 2 * BRANDS.index(self.brand)
        return {"id": self.id, "features": [{"product": {"category": self.category, "brand": self.brand}},
                                            {"price": {"tier": tier}}]}


PRODUCTS = [Product(f"{c}-{b}", c, b) for c, b in itertools.product(CATEGORIES, BRANDS)]
VISITORS = [Visitor(*v) for v in itertools.product(USER_TYPES, TIMES_OF_DAY, DEVICES)]


def click_probability(visitor: Visitor, product: Product) -> float:
    category = product.category == USER_TYPES[visitor.user_type]
    brand = product.brand == TIMES_OF_DAY[visitor.time_of_day]
    return 0.05 + 0.20 * category + 0.10 * brand + 0.35 * (category and brand)


@pytest.fixture(scope="module")
def learning_api(stack, api):
    """The host restarted with the loop's retrain timer every 5 s and the loop new (no personalizer
    model, reports or settings); afterwards the loop new again, and the suite's host."""
    models = storage.blob_service(settings.load(stack.settings).storage).get_container_client(resources.MODELS)

    def forget_the_loop() -> None:
        for name in models.list_blob_names(name_starts_with=personalizer_store.PREFIX):
            models.delete_blob(name)

    forget_the_loop()
    with restarted_host(stack, LEARNING_SETTINGS):
        yield api
    forget_the_loop()  # before the suite's host first reads the loop's settings or model


class Visits:
    """Visitors drawn from the world; each visit a rank, and a reward of 1 when the visitor clicks."""

    def __init__(self, client: PersonalizerClient):
        self.client = client
        self.lock = threading.Lock()
        # (when, clicked, its click probability, the best probability, the mean over the actions)
        self.outcomes: list[tuple[float, float, float, float, float]] = []

    def visit(self, rng: random.Random) -> None:
        visitor = rng.choice(VISITORS)
        listed = rng.sample(PRODUCTS, len(PRODUCTS))
        response = self.client.rank({"contextFeatures": visitor.features(), "actions": [p.action() for p in listed]})
        chosen = next(p for p in listed if p.id == response["rewardActionId"])
        truth = [click_probability(visitor, p) for p in PRODUCTS]
        probability = click_probability(visitor, chosen)
        clicked = rng.random() < probability
        if clicked:
            self.client.reward(response["eventId"], {"value": 1.0})
        with self.lock:
            self.outcomes.append((time.time(), float(clicked), probability, max(truth), float(np.mean(truth))))

    def run(self, count: int) -> None:
        def worker(index: int) -> None:
            rng = random.Random(SEED * 1000 + index)
            for _ in range(count // WORKERS + (index < count % WORKERS)):
                self.visit(rng)

        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(worker, range(WORKERS)))


def retrain_reports(stack) -> list[dict]:
    models = storage.blob_service(settings.load(stack.settings).storage).get_container_client(resources.MODELS)
    prefix = personalizer_store.PREFIX + "reports/"
    return [json.loads(models.download_blob(name).readall()) for name in sorted(models.list_blob_names(
        name_starts_with=prefix))]


def promoted_at(report: dict) -> float:
    """When a retrain's model was promoted (its end), as a Unix time."""
    started = datetime.fromisoformat(report["trainedAt"].replace("Z", "+00:00"))
    return started.timestamp() + float(report.get("jobSeconds") or 0)


def test_the_loop_learns_close_to_the_oracle_through_rank_and_reward(learning_api, stack):
    credential = AzureKeyCredential("any key: the suite's host checks none")
    with PersonalizerAdministrationClient(learning_api, credential) as admin:
        stored = admin.update_service_configuration(CONFIGURATION)
        assert {k: stored[k] for k in CONFIGURATION} == CONFIGURATION
    began = time.monotonic()
    with PersonalizerClient(learning_api, credential) as client:
        visits = Visits(client)
        visits.run(EVENTS)
    elapsed = time.monotonic() - began

    when, clicked, probability, best, mean = (np.array(column) for column in zip(*visits.outcomes[-LAST:]))
    ctr, random_ctr, oracle = clicked.mean(), mean.mean(), best.mean()
    fraction = (ctr - random_ctr) / (oracle - random_ctr)
    reports = retrain_reports(stack)
    promoted = [promoted_at(r) for r in reports if r.get("promoted")]
    before = sum(at < when.min() for at in promoted)
    print(f"\npersonalizer learning: CTR {ctr:.4f} (expected {probability.mean():.4f}) over the last {LAST} of "
          f"{len(visits.outcomes)} events; random {random_ctr:.4f}, oracle {oracle:.4f}: {fraction:.3f} of the way; "
          f"{len(reports)} retrains, {len(promoted)} promoted ({before} before the last {LAST}); "
          f"{elapsed:.0f} s ({len(visits.outcomes) / elapsed:.0f} events/s)")
    assert len(visits.outcomes) == EVENTS
    assert before >= 1  # the last events were served by a learned model
    assert ctr >= random_ctr + FRACTION * (oracle - random_ctr)
