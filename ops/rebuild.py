"""`python -m ops rebuild`: recompute every profile, offer statistic and traffic document from the raw archive.

Reads the whole archive in (partition, sequence number) order, reads each hub message once
(a batch redelivered with other boundaries can leave the same message in two blobs), runs
the live path's own projection functions over it (shared.projections.replay, where an
event id seen again in a later message is ignored by the same rule as live) and makes
Cosmos DB hold exactly the result: changed documents are replaced, missing ones created,
ones the archive does not explain deleted. Documents already equal are not written.

`--dry-run` (or `--compare`) writes nothing and reports the differences; its exit code is
1 when there are any. Run it while ingest is stopped, or the live path may race the writes.
"""
from __future__ import annotations

import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Optional

import click
from tqdm import tqdm

from shared import archive, events, projection_store, projections, resources
from shared.projections import Delivered



@dataclass
class Loaded:
    deliveries: list[Delivered]
    batches: int = 0
    duplicate_messages: int = 0  # the same (partition, sequence) found in more than one blob


def load(store: archive.BlobArchive, progress: Callable[[int], None] = lambda n: None) -> Loaded:
    """Every archived hub message once, in (partition, sequence) order."""
    batches = store.list_batches()
    seen: dict[tuple[str, int], Delivered] = {}
    duplicates = 0
    for batch, records in store.read_all(batches):
        for record in records:
            place = (record["partition"], record["sequence"])
            if place in seen:
                duplicates += 1
                continue
            enqueued = record.get("enqueuedTime")
            seen[place] = Delivered(record["partition"], record["sequence"], events.parse(record["event"]),
                                    projections.parse_time(enqueued) if enqueued else None)
        progress(1)
    ordered = [seen[k] for k in sorted(seen, key=lambda k: (int(k[0]) if k[0].isdigit() else k[0], k[1]))]
    return Loaded(ordered, len(batches), duplicates)


@dataclass
class Difference:
    container: str
    changed: dict[str, str] = field(default_factory=dict)  # id -> the first field that differs
    missing: list[str] = field(default_factory=list)  # rebuilt, not stored
    orphans: list[str] = field(default_factory=list)  # stored, not explained by the archive
    same: int = 0

    @property
    def count(self) -> int:
        return len(self.changed) + len(self.missing) + len(self.orphans)

    def describe(self, limit: int = 5) -> str:
        text = (f"{self.container}: {self.same} equal, {len(self.changed)} differ, {len(self.missing)} missing, "
                f"{len(self.orphans)} not in the archive")
        for doc_id, where in list(self.changed.items())[:limit]:
            text += f"\n  differs  {doc_id}: {where}"
        for doc_id in self.missing[:limit]:
            text += f"\n  missing  {doc_id}"
        for doc_id in self.orphans[:limit]:
            text += f"\n  orphan   {doc_id}"
        return text


def first_difference(stored: dict, rebuilt: dict) -> Optional[str]:
    for key in sorted(set(stored) | set(rebuilt)):
        if stored.get(key) != rebuilt.get(key):
            return f"{key}: stored {_short(stored.get(key))}, archive says {_short(rebuilt.get(key))}"
    return None


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def compare(container: str, stored: dict[str, dict], rebuilt: dict[str, dict]) -> Difference:
    """How the stored documents (system fields removed) differ from the rebuilt ones, by id."""
    difference = Difference(container)
    for doc_id, document in rebuilt.items():
        if doc_id not in stored:
            difference.missing.append(doc_id)
        elif (where := first_difference(stored[doc_id], document)) is not None:
            difference.changed[doc_id] = where
        else:
            difference.same += 1
    difference.orphans = [doc_id for doc_id in stored if doc_id not in rebuilt]
    return difference


def apply(store: projection_store.DocumentStore, difference: Difference, rebuilt: dict[str, dict],
          stored: dict[str, dict], partition_key: str, progress: Callable[[int], None] = lambda n: None) -> None:
    """Make the store hold the rebuilt documents: write what differs or is missing, delete orphans."""
    writes = [lambda d=doc_id: store.put(rebuilt[d]) for doc_id in [*difference.changed, *difference.missing]]
    deletes = [lambda d=doc_id: store.delete(d, stored[d][partition_key]) for doc_id in difference.orphans]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="rebuild") as pool:
        for _ in pool.map(lambda work: work(), writes + deletes):
            progress(1)


def rebuild_all(config, dry_run: bool, say: Callable[[str], None] = click.echo,
                bars: bool = True) -> list[Difference]:
    began = time.monotonic()
    store = archive.from_settings(config)
    targets = ((resources.PROFILES, projection_store.profiles(config), "userId"),
               (resources.OFFER_STATS, projection_store.offer_stats(config), "offerId"),
               (resources.TRAFFIC_STATS, projection_store.traffic_stats(config), "hour"))
    with tqdm(desc="reading the archive", unit="blob", disable=not bars or None) as bar:
        loaded = load(store, bar.update)
    replayed = projections.replay(loaded.deliveries, config.affinity_half_life_hours)
    say(f"{len(loaded.deliveries)} archived events in {loaded.batches} blobs "
        f"({loaded.duplicate_messages} messages stored twice, read once) -> {len(replayed.profiles)} profiles, "
        f"{len(replayed.offer_stats)} offer statistics, {len(replayed.traffic_stats)} traffic statistics")
    differences = []
    for (name, documents, key), rebuilt in zip(targets, replayed):
        stored = {v.document["id"]: v.document for v in documents.read_all()}
        difference = compare(name, stored, rebuilt)
        differences.append(difference)
        say(difference.describe())
        if not dry_run and difference.count:
            with tqdm(total=difference.count, desc=f"writing {name}", unit="doc", disable=not bars or None) as bar:
                apply(documents, difference, rebuilt, stored, key, bar.update)
    say(f"{'compared' if dry_run else 'rebuilt'} in {time.monotonic() - began:.1f} s")
    return differences


@click.command()
@click.option("--dry-run", "--compare", "dry_run", is_flag=True,
              help="Write nothing; report how the stored documents differ from the archive (exit 1 if they do).")
def rebuild(dry_run: bool) -> None:
    """Recompute profiles, offer statistics and traffic from the raw event archive and replace the stored ones."""
    from . import app_settings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    differences = rebuild_all(app_settings(), dry_run)
    if dry_run and any(d.count for d in differences):
        sys.exit(1)

