"""Seeding against the local Cosmos DB server and Redis: idempotent, complete, and readable back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from local.provision import provision
from ops import seed as seeding
from shared import cache, catalog, catalog_store, coldstart, cosmos, resources, settings

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
DATABASE = "seedtest"  # its own database, so the e2e tests' catalog does not mix in
SPEC = catalog.CatalogSpec(seed=3, products=60, offers=20, users=40, categories=5)
ANCHOR = datetime(2026, 11, 22, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def env(stack):
    values = {**stack.settings, "COSMOS_DATABASE": DATABASE}
    provision(values)
    return values


@pytest.fixture(scope="module")
def config(env):
    return settings.load(env)


def container(config, name):
    return cosmos.database(config.cosmos, config.cosmos_database).get_container_client(name)


def test_seeding_twice_writes_the_same_documents_once(config):
    docs = catalog.generate(SPEC, ANCHOR)
    first = seeding.write_catalog(config, docs)
    second = seeding.write_catalog(config, docs)
    assert first == {resources.OFFERS: 20, resources.PRODUCTS: 60, resources.USERS: 40}
    assert second == {resources.OFFERS: 0, resources.PRODUCTS: 0, resources.USERS: 0}
    for name, expected in ((resources.PRODUCTS, docs.products), (resources.OFFERS, docs.offers),
                           (resources.USERS, docs.users)):
        stored = sorted(catalog_store.load_all(container(config, name)), key=lambda d: d["id"])
        assert stored == sorted(expected, key=lambda d: d["id"])


def test_a_changed_document_is_written_again_and_only_it(config):
    docs = catalog.generate(SPEC, ANCHOR)
    seeding.write_catalog(config, docs)
    products = [dict(p) for p in docs.products]
    products[0]["price"] += 1
    assert catalog_store.upsert_all(container(config, resources.PRODUCTS), products) == 1
    assert catalog_store.upsert_all(container(config, resources.PRODUCTS), docs.products) == 1  # and back


def test_a_profile_is_one_point_read_and_a_missing_one_is_none(config):
    profiles = container(config, resources.PROFILES)
    profiles.upsert_item({"id": "u-read", "userId": "u-read", "recentViews": []})
    assert catalog_store.read_profile(profiles, "u-read")["userId"] == "u-read"
    assert catalog_store.read_profile(profiles, "u-nobody") is None


def test_offer_statistics_are_summed_per_offer_over_the_hours_asked_for(config):
    stats = container(config, resources.OFFER_STATS)
    for hour, impressions, clicks in (("2026-11-22T05:00:00Z", 10, 1), ("2026-11-22T06:00:00Z", 5, 2),
                                      ("2026-11-10T06:00:00Z", 100, 50)):
        stats.upsert_item({"id": f"o-stat:{hour[:13]}", "offerId": "o-stat", "hour": hour,
                           "impressions": impressions, "clicks": clicks})
    totals = catalog_store.offer_totals(stats, datetime(2026, 11, 22, 0, tzinfo=timezone.utc))
    assert totals["o-stat"] == (15, 3)


def run_ops(env, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ops", "seed", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_the_seed_command_writes_the_catalog_and_the_cold_start_lists_and_then_nothing(env, config):
    redis = cache.redis_client(config.redis_url)
    redis.delete(coldstart.GLOBAL_KEY)
    sizes = ["--seed", "5", "--products", "30", "--offers", "12", "--users", "25", "--categories", "4"]
    first = run_ops(env, *sizes)
    assert first.returncode == 0, first.stderr
    assert "30 products, 12 offers, 25 users" in first.stdout and "cold-start lists written" in first.stdout
    assert json.loads(redis.get(coldstart.GLOBAL_KEY))  # a non-empty list, best first
    again = run_ops(env, *sizes)
    assert again.returncode == 0 and "(0 documents written)" in again.stdout
    if_empty = run_ops(env, "--if-empty")
    assert if_empty.returncode == 0 and "nothing to do" in if_empty.stdout

