"""The product-affinity step of the retrain job: related products and cold-start lists from the archive.

It reads the training window's product views, cart additions and purchases (four columns of
the events), fits the item-item similarity and the shoppers' decayed affinities
(`shared/affinity.py`), and then writes:

  - the related-products table (each product's top neighbours, and the cold-start lists)
    as one blob, which the offers function loads into memory (`affinity_store.py`);
  - the cold-start product lists, per user segment and overall, to Redis, where the offers
    function reads a new shopper's segment list (`offerloop:affinity:segment:<segment>`,
    `offerloop:affinity:global`: JSON [[productId, share], ...], best first).

The blob is written first: it is what the offers function falls back to when Redis does not answer.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import affinity, coldstart, events
from .affinity import AffinityParams, Related

log = logging.getLogger(__name__)

EVENT_COLUMNS = ("id", "type", "userId", "productId", "time")
KINDS = {events.PRODUCT_VIEWED: affinity.VIEW, events.CART_ADDED: affinity.CART,
         events.PRODUCT_PURCHASED: affinity.PURCHASE}


def interactions(table: pa.Table, weights: Mapping[str, float] = affinity.DEFAULT_WEIGHTS) -> affinity.Interactions:
    """The product events of an events table (any others, and events without a user or product, left out)."""
    kind = table.column("type")
    keep = pc.and_(pc.and_(pc.is_in(kind, value_set=pa.array(list(KINDS))), pc.is_valid(table.column("userId"))),
                   pc.is_valid(table.column("productId")))
    table = table.filter(keep)
    weight_of = {t: weights[k] for t, k in KINDS.items()}
    kinds = table.column("type").to_pylist()
    times = pc.cast(table.column("time"), pa.int64()).to_numpy(zero_copy_only=False) / 1e6  # µs -> s
    return affinity.Interactions(np.array(table.column("userId").to_pylist(), dtype=object),
                                 np.array(table.column("productId").to_pylist(), dtype=object),
                                 np.array([weight_of[k] for k in kinds], dtype=np.float64), times.astype(np.float64))


@dataclass
class Ports:
    # (start, end, event columns, decision columns) -> (events, decisions), as ParquetArchive.load
    load: Callable[..., tuple[pa.Table, pa.Table]]
    segments: Callable[[], Mapping[str, str]]  # userId -> segment (the catalog's users)
    save: Callable[[Related], None]  # the table, durable (blob)
    publish: Callable[[dict[str, str]], Any]  # the cold-start lists (Redis MSET)


def run(ports: Ports, now: datetime, window_days: float, params: AffinityParams = AffinityParams(),
        version: Optional[str] = None) -> dict[str, Any]:
    """Fit and write (see the module doc); the report says what was written, or why nothing was."""
    began = time.perf_counter()
    table, _ = ports.load(now - timedelta(days=window_days), now, EVENT_COLUMNS, ())
    found = interactions(table, affinity.DEFAULT_WEIGHTS)
    report: dict[str, Any] = {"productEvents": len(found.items), "params": params.to_dict()}
    if not len(found.items):
        report["written"] = False
        report["reason"] = "no product views, cart additions or purchases in the training window"
        return report
    fitted = affinity.fit(found, params, now=now.timestamp())
    related = fitted.related(ports.segments(), version or now.strftime("%Y%m%dT%H%M%SZ"))
    fitted_at = time.perf_counter()
    ports.save(related)
    published: Optional[str] = None
    try:
        ports.publish(coldstart.redis_values(related.coldstart, affinity.KEY_PREFIX))
    except Exception as error:  # Redis down: the offers function falls back to the blob's lists
        published = f"{type(error).__name__}: {error}"
        log.warning("cold-start product lists not written to Redis (the blob has them): %s", published)
    with_neighbours = int(np.count_nonzero(np.diff(related.indptr)))
    report.update(written=True, version=related.version, users=len(fitted.users), products=len(related.items),
                  productsWithRelated=with_neighbours, segments=sorted(s for s in related.coldstart if s),
                  redis="ok" if published is None else published,
                  fitSeconds=round(fitted_at - began, 3), seconds=round(time.perf_counter() - began, 3))
    log.info("product affinity %s: %s products (%s with related products) from %s events of %s users",
             related.version, len(related.items), with_neighbours, len(found.items), len(fitted.users))
    return report
