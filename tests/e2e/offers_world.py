"""A small seeded catalog on the test stack, and helpers to call the offers API and read the hub."""
from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from typing import Callable, Optional

import pytest
from azure.eventhub import EventHubConsumerClient

from ops import seed as seeding
from shared import catalog, catalog_store, cosmos, policy, resources, settings
from shared.catalog import CatalogSpec, Offer, User

SPEC = CatalogSpec(seed=11, products=60, offers=30, users=40, categories=5)


@pytest.fixture(scope="session")
def seeded(stack, api) -> catalog.Catalog:
    """The small catalog in the stack's Cosmos DB and its cold-start lists in Redis, served by the host."""
    config = settings.load(stack.settings)
    now = datetime.now(timezone.utc)
    docs = catalog.generate(SPEC, catalog.seeding_anchor(now))
    seeding.write_catalog(config, docs)
    seeding.write_coldstart(config, docs, now)
    # The host loads the catalog on its first offers request and, while it is empty, every 2 s.
    deadline = time.monotonic() + 30
    while not get_offers(api, {"userId": "probe"})[1].get("offers") and time.monotonic() < deadline:
        time.sleep(0.5)
    return docs


def get_offers(api: str, params: dict) -> tuple[int, dict, str]:
    """(status, JSON body, content type) of GET /api/offers."""
    url = f"{api}/offers?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, json.loads(response.read()), response.headers["Content-Type"]
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}"), error.headers["Content-Type"]


def profiles(stack):
    config = settings.load(stack.settings)
    return cosmos.database(config.cosmos, config.cosmos_database).get_container_client(resources.PROFILES)


def forget_profile(stack, user_id: str) -> None:
    container = profiles(stack)
    if catalog_store.read_profile(container, user_id) is not None:
        container.delete_item(user_id, partition_key=user_id)


def favourite_category(docs: catalog.Catalog, user_id: str, avoid: set[str]) -> str:
    """A category with a category discount this user may get now, preferably not in `avoid`."""
    user = User.from_doc(next(u for u in docs.users if u["id"] == user_id))
    context = policy.Context(user=user, now=datetime.now(timezone.utc))
    open_to_all = [o for o in map(Offer.from_doc, docs.offers)
                   if o.kind == catalog.CATEGORY_DISCOUNT and policy.why_not(o, context) is None]
    choices = sorted({o.category for o in open_to_all} - avoid) or sorted({o.category for o in open_to_all})
    return choices[0]


def read_hub(stack, since: datetime, wanted: Callable[[dict], bool], count: int,
             timeout: float = 30.0) -> list[dict]:
    """Events enqueued since `since` that `wanted` accepts, read with the `analytics` consumer group."""
    values = stack.settings
    client = EventHubConsumerClient.from_connection_string(
        values["EventHubConnection"], consumer_group="analytics", eventhub_name=values.get("EVENTHUB_NAME", "activity"))
    found: list[dict] = []
    done = threading.Event()

    def on_event(partition_context, event) -> None:
        if event is None:
            return
        body = json.loads(event.body_as_str())
        if wanted(body):
            found.append(body)
            if len(found) >= count:
                done.set()

    worker = threading.Thread(target=client.receive, kwargs={
        "on_event": on_event, "starting_position": since, "max_wait_time": 1}, daemon=True)
    worker.start()
    done.wait(timeout)
    client.close()
    worker.join(10)
    return found


def profile_document(user_id: str, category: str, product_id: str, views: int = 3,
                     now: Optional[datetime] = None) -> dict:
    """A profile as the ingest projection writes it, after `views` views in one category."""
    now = now or datetime.now(timezone.utc)
    stamp = catalog.format_time(now)
    return {"id": user_id, "userId": user_id, "schemaVersion": 1,
            "recentViews": [{"productId": product_id, "category": category, "time": stamp}] * views,
            "categoryAffinity": {category: float(views)}, "affinityAsOf": stamp,
            "offersShown": {}, "offersClicked": {}, "carts": 0, "purchases": 0, "eventCount": views,
            "watermark": {"partition": "0", "sequence": views}}
