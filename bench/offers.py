"""GET /api/offers latency at fixed arrival rates, and end-to-end ingest throughput.

On a throwaway stack with the default seeded catalog (1,000 products, 100 offers,
10,000 users): first EVENTS product views of 1,000 users of their own (`bench-…`) posted
to `/api/events` in requests of 500, timed from the first post until every one of them is
archived and every profile counts them (posted → archived and projected); then
`/api/offers` at 50, 100 and 200 requests/s for BENCH_SECONDS (30) each, open loop. The
host runs every function meanwhile, so ingest also projects each offer.shown.
"""
from __future__ import annotations

import json
import os
import random
import time
import urllib.request
import uuid

from tqdm import tqdm

from bench import seed_catalog
from bench.load import constant_rate
from shared import archive, catalog, cosmos, resources, settings

RATES = (50, 100, 200)
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
EVENTS = int(os.environ.get("BENCH_INGEST_EVENTS", "20000"))
USERS = 1000
PER_REQUEST = 500


def _latency(api: str) -> dict:
    rng = random.Random(7)
    users = [f"u{rng.randrange(10_000):05d}" for _ in range(50_000)]
    constant_rate(lambda i: f"{api}/offers?userId={users[i]}&n=3", 50, 5, "warm-up")
    figures = {}
    for rate in RATES:
        result = constant_rate(lambda i: f"{api}/offers?userId={users[i % len(users)]}&n=3", rate, SECONDS,
                               f"offers @ {rate}/s")
        figures.update(result.summary(f"offers_{rate}rps"))
    return figures


def _views(count: int) -> list[dict]:
    products = catalog.generate_products(catalog.CatalogSpec())
    rng = random.Random(11)
    events = []
    for i in range(count):
        product = rng.choice(products)
        events.append({"specversion": "1.0", "id": str(uuid.uuid4()), "source": "/bench", "type":
                       "offerloop.product.viewed", "subject": f"bench-{i % USERS:05d}",
                       "data": {"productId": product["id"], "category": product["category"]}})
    return events


def _post(api: str, body: list[dict]) -> None:
    request = urllib.request.Request(f"{api}/events", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202, response.status


def _ingest(stack, api: str) -> dict:
    config = settings.load(stack.settings)
    store = archive.from_settings(config)
    profiles = cosmos.database(config.cosmos, config.cosmos_database).get_container_client(resources.PROFILES)
    events = _views(EVENTS)
    # Sorted by user, so each request carries the events of about 25 users, as a relay would.
    events.sort(key=lambda e: e["subject"])
    ids = {e["id"] for e in events}
    seen: set[str] = set()
    archived = 0
    began = time.perf_counter()
    with tqdm(total=EVENTS, desc="post", unit="ev") as bar:
        for start in range(0, EVENTS, PER_REQUEST):
            _post(api, events[start:start + PER_REQUEST])
            bar.update(PER_REQUEST)
    posted = time.perf_counter() - began
    with tqdm(total=EVENTS, desc="archived", unit="ev") as bar:
        while archived < EVENTS and time.perf_counter() - began < 600:
            new = [b for b in store.list_batches() if b.name not in seen]
            for batch, records in store.read_all(new):
                seen.add(batch.name)
                ours = sum(1 for r in records if r["event"]["id"] in ids)
                archived += ours
                bar.update(ours)
            time.sleep(0.2)
    archived_at = time.perf_counter() - began
    projected = 0
    while projected < EVENTS and time.perf_counter() - began < 600:
        projected = sum(d["eventCount"] for d in profiles.query_items(
            "SELECT c.userId, c.eventCount FROM c", enable_cross_partition_query=True)
            if d["userId"].startswith("bench-"))
        time.sleep(0.2)
    done = time.perf_counter() - began
    return {"ingest_events": EVENTS, "ingest_post_s": posted, "ingest_archived_s": archived_at,
            "ingest_projected_s": done, "ingest_events_archived": archived, "ingest_events_projected": projected,
            "ingest_events_per_s": EVENTS / done}


def run(stack) -> dict:
    seed_catalog(stack)
    stack.up(["host"])
    api = f"http://127.0.0.1:{stack.config.ports.host}/api"
    try:
        return {**_ingest(stack, api), **_latency(api)}
    finally:
        stack.down(["host"])
