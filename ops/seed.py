"""`python -m ops seed`: write the synthetic catalog to Cosmos DB and the cold-start lists to Redis.

Idempotent: documents already there unchanged are not written again, so a second run
writes nothing. The offers' validity windows are placed around the start of today (UTC).
"""
from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

import click
from tqdm import tqdm

from shared import cache, catalog, catalog_store, coldstart, cosmos, resources, settings
from shared.catalog import Catalog, CatalogSpec, Offer

from . import app_settings

log = logging.getLogger(__name__)


def write_catalog(config: settings.Settings, docs: Catalog,
                  on_written: Callable[[int], None] = lambda count: None) -> dict[str, int]:
    """Upsert what differs, offers first (so the offers API works soonest), users last."""
    db = cosmos.database(config.cosmos, config.cosmos_database)
    written = {}
    for name, items in ((resources.OFFERS, docs.offers), (resources.PRODUCTS, docs.products),
                        (resources.USERS, docs.users)):
        written[name] = catalog_store.upsert_all(db.get_container_client(name), items, on_written=on_written)
    return written


def write_coldstart(config: settings.Settings, docs: Catalog, now: datetime) -> Optional[dict]:
    """The cold-start lists for the seeded users and offers (and any statistics there are) into Redis."""
    db = cosmos.database(config.cosmos, config.cosmos_database)
    totals = catalog_store.offer_totals(db.get_container_client(resources.OFFER_STATS),
                                        now - timedelta(hours=coldstart.STATS_LOOKBACK_HOURS))
    segments = Counter(u["segment"] for u in docs.users if u.get("segment"))
    offers = [Offer.from_doc(d) for d in docs.offers]
    return coldstart.run(offers, segments, totals, cache.from_settings(config).mset, now)


def products_exist(config: settings.Settings) -> bool:
    db = cosmos.database(config.cosmos, config.cosmos_database)
    return not catalog_store.is_empty(db.get_container_client(resources.PRODUCTS))


@click.command()
@click.option("--seed", "seed_value", default=CatalogSpec.seed, show_default=True, help="Random seed.")
@click.option("--products", default=CatalogSpec.products, show_default=True, type=click.IntRange(1))
@click.option("--offers", default=CatalogSpec.offers, show_default=True, type=click.IntRange(1))
@click.option("--users", default=CatalogSpec.users, show_default=True, type=click.IntRange(0))
@click.option("--categories", default=CatalogSpec.categories, show_default=True, type=click.IntRange(1))
@click.option("--if-empty", is_flag=True, help="Do nothing when the products container holds documents.")
def seed(seed_value: int, products: int, offers: int, users: int, categories: int, if_empty: bool) -> None:
    """Seed the synthetic retail catalog (products, offers, users) and the cold-start lists."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = app_settings()
    if if_empty and products_exist(config):
        click.echo("catalog already seeded (the products container is not empty); nothing to do")
        return
    began = time.monotonic()
    now = datetime.now(timezone.utc)
    spec = CatalogSpec(seed=seed_value, products=products, offers=offers, users=users, categories=categories)
    docs = catalog.generate(spec, catalog.seeding_anchor(now))
    total = len(docs.products) + len(docs.offers) + len(docs.users)
    with tqdm(total=total, desc="seeding", unit="doc", disable=None) as bar:
        written = write_catalog(config, docs, bar.update)
    try:
        write_coldstart(config, docs, now)
        lists = "cold-start lists written to Redis"
    except Exception as error:  # the offers API falls back to in-process lists; the hourly job retries
        lists = f"cold-start lists NOT written ({type(error).__name__}: {error})"
    click.echo(f"seeded {len(docs.products)} products, {len(docs.offers)} offers, {len(docs.users)} users "
               f"({sum(written.values())} documents written) in {time.monotonic() - began:.1f} s; {lists}")
