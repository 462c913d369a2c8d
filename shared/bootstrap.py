"""Composition: wires the real adapters to the domain's ports for the function app."""
from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Callable, Optional

from . import (activity, affinity, affinity_store, archive, cache, catalog_store, coldstart, cosmos,
               eventhubs, ingest, model_store, offers, personalizer_store, projection_store, publisher, resources,
               settings, stats, stats_store, storage, telemetry)
from .personalizer import admin as personalizer_admin
from .personalizer import configuration as personalizer_configuration
from .personalizer import service as personalizer_service
from .learning import retrain as retrain_job
from .learning.dataset import RewardRules
from .learning.explore import Exploration, LearnedChooser
from .learning.serving import ModelCache
from .catalog_cache import CatalogCache, Snapshot, build_snapshot
from .simulation import service as simulation_service
from .simulation import store as simulation_store
from .simulation.shopper import Shown

log = logging.getLogger(__name__)


@lru_cache(maxsize=1)
def app_settings() -> settings.Settings:
    return settings.load()


def health_probes(config: settings.Settings) -> dict[str, Callable[[], object]]:
    """One real call per dependency, each within what the app's identity may do."""
    return {
        "blob": lambda: storage.blob_service(config.storage)
        .get_container_client(resources.RAW_ARCHIVE).get_container_properties(),
        "queue": lambda: next(iter(storage.queue_service(config.storage)
                                   .list_queues(results_per_page=1).by_page()), None),
        "cosmos": lambda: cosmos.database(config.cosmos, config.cosmos_database).read(),
        "eventhubs": lambda: eventhubs.producer(config.eventhub, config.eventhub_name)
        .get_eventhub_properties(),
        "redis": lambda: cache.from_settings(config).ping(),
        "model": lambda: model_cache().check(),
    }


@lru_cache(maxsize=1)
def learning_config() -> retrain_job.LearningConfig:
    """The learning loop's configuration from the app settings (shared/settings.py, Learning)."""
    learning = app_settings().learning
    return retrain_job.LearningConfig(
        exploration=Exploration(learning.exploration_policy, learning.exploration_percentage / 100),
        rewards=RewardRules(learning.reward_wait_seconds, learning.default_reward, learning.reward_aggregation),
        window_days=learning.training_window_days, retrain_every=learning.retrain_every,
        apprentice=learning.apprentice_mode, apprentice_agreement=learning.apprentice_agreement)


def model_registry() -> model_store.BlobRegistry:
    """A registry over container `models` (one per use: it remembers the pointer's etag it read)."""
    return model_store.from_service(storage.blob_service(app_settings().storage))


@lru_cache(maxsize=1)
def model_cache() -> ModelCache:
    """The offers function's current model, refreshed from the registry every MODEL_REFRESH_SECONDS."""
    learning = app_settings().learning
    return ModelCache(model_registry(), learning.model_refresh_seconds, learning.apprentice_mode)


_retrain_lock = threading.Lock()


def retrain(force: bool = False) -> dict:
    """The retrain job (timer and POST /api/admin/retrain): compact the archive, train, evaluate, maybe promote."""
    from . import parquet_archive  # pyarrow is loaded by the job, not by every function

    config, learning = app_settings(), learning_config()
    parquet = parquet_archive.from_settings(config)
    window = timedelta(days=learning.window_days)
    with _retrain_lock:  # one retrain at a time in this process; the pointer's etag guards across instances
        ports = retrain_job.JobPorts(load=parquet.load, registry=model_registry(),
                                     compact=lambda now: parquet.compact(now, since=now - window))
        report = retrain_job.run(ports, learning, force=force)
        if not report.get("skipped"):
            report["affinity"] = _refresh_affinity(parquet, learning.window_days)
    if report.get("promoted"):
        model_cache().refresh_soon()
    return report


def _refresh_affinity(parquet, window_days: float) -> dict:
    """The retrain job's product-affinity step (shared/affinity_job.py), then the cold-start offer lists;
    a failure here is reported, and leaves the model's retrain as it was."""
    from . import affinity_job  # pyarrow, like the model's retrain

    config = app_settings()
    try:
        users = catalog_cache().get().users
        ports = affinity_job.Ports(load=parquet.load, segments=lambda: {u.id: u.segment for u in users.values()
                                                                         if u.segment},
                                   save=related_store().save, publish=cache.from_settings(config).mset)
        report = affinity_job.run(ports, datetime.now(timezone.utc), window_days)
    except Exception as error:  # storage or the catalog unreachable: the next retrain tries again
        log.exception("product affinity not refreshed")
        return {"written": False, "reason": f"{type(error).__name__}: {error}"}
    related_cache().refresh_soon()
    try:
        report["coldstartOffers"] = refresh_coldstart()
    except Exception as error:  # Redis or Cosmos down: the hourly job writes them later
        report["coldstartOffers"] = f"{type(error).__name__}: {error}"
    return report


def related_store() -> affinity_store.RelatedStore:
    return affinity_store.RelatedStore(storage.blob_service(app_settings().storage).get_container_client(resources.MODELS))


@lru_cache(maxsize=1)
def related_cache() -> affinity_store.RelatedCache:
    """The related-products table in memory, looked for every MODEL_REFRESH_SECONDS."""
    return affinity_store.RelatedCache(related_store(), app_settings().learning.model_refresh_seconds)


# The first requests arrive together; one of them builds the offers' ports, the others wait.
_offers_lock = threading.RLock()


def catalog_cache() -> CatalogCache:
    """The process's in-memory catalog, loaded on first use and refreshed in the background."""
    with _offers_lock:
        return _catalog_cache()


@lru_cache(maxsize=1)
def _catalog_cache() -> CatalogCache:
    config = app_settings()
    db = cosmos.database(config.cosmos, config.cosmos_database)

    def load() -> Snapshot:
        return build_snapshot(*(catalog_store.load_all(db.get_container_client(name))
                                for name in (resources.PRODUCTS, resources.OFFERS, resources.USERS)))

    return CatalogCache(load, config.catalog_refresh_seconds)


def offer_ports() -> offers.Ports:
    """The offers service's ports: the profile point read, the cached catalog, cold-start lists
    from Redis (falling back to in-process lists), and offer.shown sent in the background."""
    with _offers_lock:
        return _offer_ports()


@lru_cache(maxsize=1)
def _offer_ports() -> offers.Ports:
    config = app_settings()
    metrics = telemetry.configure(config.appinsights_connection_string, config.appinsights_authentication)
    profiles = cosmos.database(config.cosmos, config.cosmos_database).get_container_client(resources.PROFILES)
    cache_ = catalog_cache()
    popular = coldstart.PopularityLists(lambda keys: cache.from_settings(config).mget(keys),
                                        lambda segment: cache_.get().fallback(segment))
    related = related_cache()
    # without Redis, the table's own copy of the cold-start product lists
    liked = coldstart.PopularityLists(lambda keys: cache.from_settings(config).mget(keys),
                                      lambda segment: affinity.coldstart_list(related.get(), segment),
                                      prefix=affinity.KEY_PREFIX, name="cold-start product lists")
    send = publisher.for_settings(config)
    return offers.Ports(
        read_profile=lambda user_id: catalog_store.read_profile(profiles, user_id),
        catalog=cache_.get,
        popular=popular.get,
        publish=offers.BackgroundPublisher(send, on_drop=metrics.dropped_events.add),
        record=metrics.record_decision,
        half_life_hours=config.affinity_half_life_hours,
        choose=LearnedChooser(model_cache().serving, lambda: learning_config().exploration),
        related=related.get,
        liked=liked.get,
    )


def refresh_coldstart(now: Optional[datetime] = None) -> dict:
    """The cold-start job: popularity from the cached catalog and a week of offer statistics, into Redis."""
    config = app_settings()
    now = now or datetime.now(timezone.utc)
    snapshot = catalog_cache().get()
    stats = cosmos.database(config.cosmos, config.cosmos_database).get_container_client(resources.OFFER_STATS)
    totals = catalog_store.offer_totals(stats, now - timedelta(hours=coldstart.STATS_LOOKBACK_HOURS))
    segments = Counter(u.segment for u in snapshot.users.values() if u.segment)
    lists = coldstart.run(snapshot.offers, segments, totals, cache.from_settings(config).mset, now)
    return {"segments": len(lists) - 1, "offers": len(lists[None]), "offersWithStatistics": len(totals)}


@lru_cache(maxsize=1)
def ingest_ports() -> ingest.Ports:
    """The ingest service's archive and document stores, created once per process."""
    config = app_settings()
    return ingest.Ports(archive=archive.from_settings(config), profiles=projection_store.profiles(config),
                        offer_stats=projection_store.offer_stats(config),
                        traffic_stats=projection_store.traffic_stats(config),
                        half_life_hours=config.affinity_half_life_hours)


@lru_cache(maxsize=1)
def simulation_ports() -> simulation_service.Ports:
    """The simulation's ports: runs in Redis, steps on the actions queue, offers from the offers
    service, website events through the events path (validated, then onto the activity hub)."""
    config = app_settings()
    actions = storage.queue_client(config.storage, simulation_service.ACTIONS_QUEUE)
    post = publisher.for_settings(config)

    def enqueue(step, delay: float) -> None:
        actions.send_message(step.model_dump_json(), visibility_timeout=simulation_service.queue_delay(delay))

    def clear() -> None:
        for name in simulation_service.QUEUES:
            storage.queue_client(config.storage, name).clear_messages()

    return simulation_service.Ports(
        runs=simulation_store.RunStore(lambda: cache.from_settings(config)),
        enqueue=enqueue, clear=clear, catalog=catalog_cache().get,
        decide=lambda user_id, product_id, n: Shown.of(offers.decide(user_id, product_id, n, offer_ports())),
        post=lambda batch: activity.accept(json.dumps(batch).encode("utf-8"), post),
    )


@lru_cache(maxsize=1)
def stats_answers() -> stats.Answers:
    """GET /api/stats: answers kept a couple of seconds, from the offer statistics and traffic in
    Cosmos DB, the cached catalog, the offers loop's retrain reports and the simulation's status."""
    config = app_settings()
    db = cosmos.database(config.cosmos, config.cosmos_database)
    reports = stats_store.ReportReader(_models_container())
    return stats.Answers(stats.Ports(
        offer_stats=stats_store.hours_reader(db.get_container_client(resources.OFFER_STATS),
                                             stats_store.OFFER_STATS_QUERY),
        traffic=stats_store.hours_reader(db.get_container_client(resources.TRAFFIC_STATS), stats_store.TRAFFIC_QUERY),
        offers=lambda: catalog_cache().get().offers,
        reports=stats_store.guard("retrain reports (Blob storage)", reports.newest),
        simulation=stats_store.guard("simulation status (Redis)",
                                     lambda: simulation_service.status(simulation_ports()))))


# The Personalizer-compatible API's loop (functions/personalizer.py, shared/personalizer/).

def personalizer_registry() -> model_store.BlobRegistry:
    """The personalizer loop's models: container `models`, under `personalizer/`."""
    return model_store.from_service(storage.blob_service(app_settings().storage), prefix=personalizer_store.PREFIX)


def _models_container():
    return storage.blob_service(app_settings().storage).get_container_client(resources.MODELS)


@lru_cache(maxsize=1)
def personalizer_settings() -> personalizer_store.SettingsCache:
    """The loop's stored service configuration and policy, looked at every MODEL_REFRESH_SECONDS."""
    return personalizer_store.SettingsCache(personalizer_store.SettingsStore(_models_container()),
                                            personalizer_configuration.defaults,
                                            app_settings().learning.model_refresh_seconds)


@lru_cache(maxsize=1)
def personalizer_models() -> ModelCache:
    """The loop's current model; apprentice until its model graduates (used when learningMode is Apprentice)."""
    return ModelCache(personalizer_registry(), app_settings().learning.model_refresh_seconds, apprentice=True)


def personalizer_evaluations() -> personalizer_store.EvaluationStore:
    return personalizer_store.EvaluationStore(_models_container())


@lru_cache(maxsize=1)
def personalizer_ports() -> personalizer_service.Ports:
    config = app_settings()
    metrics = telemetry.configure(config.appinsights_connection_string, config.appinsights_authentication)
    send = publisher.for_settings(config, keyed=False)  # a decision's events need no order among them
    return personalizer_service.Ports(
        settings=personalizer_settings().get, save_settings=personalizer_settings().put,
        serving=personalizer_models().serving,
        publish=offers.BackgroundPublisher(send, on_drop=metrics.dropped_events.add, name="personalizer.ranked"),
        send=send)


def personalizer_learning_config(loop: personalizer_configuration.LoopSettings) -> retrain_job.LearningConfig:
    """The retrain job's configuration from the loop's stored settings: exploration, reward rules, the
    feature space and fit of its policy; the window is TRAINING_WINDOW_DAYS, or the log retention or
    modelRetrainDays when shorter."""
    window = app_settings().learning.training_window_days
    for days in (loop.log_retention_days, loop.model_retrain_days):
        if days > 0:
            window = min(window, float(days))
    return retrain_job.LearningConfig(
        exploration=loop.exploration(),
        rewards=RewardRules(loop.reward_wait_seconds, loop.default_reward, loop.reward_aggregation),
        window_days=window, retrain_every=1, apprentice=loop.learning_mode == "Apprentice",
        fit=loop.fit(), space=loop.space())


_personalizer_attempt = {"at": None}


def personalizer_retrain(force: bool = False, now: Optional[datetime] = None) -> dict:
    """The loop's retrain: when its model export frequency has passed since the last one (or forced)."""
    from . import parquet_archive
    from .learning import dataset

    now = now or datetime.now(timezone.utc)
    loop = personalizer_settings().get()
    registry = personalizer_registry()
    if not force:
        last = [t for t in (_personalizer_attempt["at"],
                            _parse_time((registry.latest_report() or {}).get("trainedAt"))) if t is not None]
        due = max(last) + timedelta(seconds=loop.model_export_seconds) if last else now
        if now < due:
            return {"promoted": False, "skipped": True,
                    "reason": f"the next retrain is due at {due.isoformat()} (modelExportFrequency)"}
    _personalizer_attempt["at"] = now
    learning = personalizer_learning_config(loop)
    parquet = parquet_archive.from_settings(app_settings())
    window = timedelta(days=learning.window_days)
    with _retrain_lock:
        ports = retrain_job.JobPorts(load=parquet.load, registry=registry,
                                     compact=lambda at: parquet.compact(at, since=at - window))
        report = retrain_job.run(ports, learning, force=force, loop=dataset.PERSONALIZER)
    if report.get("promoted"):
        personalizer_models().refresh_soon()
    return report


def _parse_time(text: Optional[str]) -> Optional[datetime]:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def personalizer_admin_ports() -> personalizer_admin.Ports:
    """The Personalizer API's administration (model, logs, evaluations); one per request, as its registry
    remembers the pointer's etag an import's promotion checks."""
    from . import parquet_archive

    settings_cache = personalizer_settings()
    return personalizer_admin.Ports(
        registry=personalizer_registry(), evaluations=personalizer_evaluations(),
        settings=settings_cache.get, save_settings=settings_cache.put,
        load=parquet_archive.from_settings(app_settings()).load,
        learning_config=personalizer_learning_config, run_later=_personalizer_job,
        models_changed=personalizer_models().refresh_soon)


def _personalizer_job(job: Callable[[], None]) -> None:
    """An offline evaluation in a background thread, one heavy job at a time with the retrains."""
    def run() -> None:
        with _retrain_lock:
            job()
    threading.Thread(target=run, name="personalizer-evaluation", daemon=True).start()
