"""The Personalizer-compatible loop's state in Azurite: its settings (stored, cached, conditional reads),
its offline evaluations, and its model registry under `personalizer/` (save, promote, files, reset),
with a model exported and imported through the administration."""
from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone

import numpy as np
import pytest

from shared import model_store
from shared.learning.features import FeatureSpace
from shared.learning.model import LinearModel
from shared.learning.retrain import PromotionConflict
from shared.personalizer import admin, configuration
from shared.personalizer_store import PREFIX, EvaluationStore, SettingsCache, SettingsStore

pytestmark = pytest.mark.timeout(60)

NOW = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)


def model(version: str) -> LinearModel:
    space = FeatureSpace(bits=10, interactions=(("*", "*"),), derived=False)
    weights = np.zeros(space.width, dtype=np.float32)
    weights[[3, 70, 500]] = [0.5, -1.25, 2.0]
    return LinearModel(version, space, weights, -0.5, {"trainedAt": "2026-05-01T11:00:00Z"})


def test_settings_are_stored_and_read_back_only_when_they_changed(container):
    store = SettingsStore(container)
    assert store.load() == (None, None)  # none stored yet
    settings = configuration.defaults(now=NOW)
    etag = store.save(settings.to_dict())
    document, read_etag = store.load()
    assert configuration.LoopSettings.from_dict(document) == settings and read_etag == etag
    assert store.load(etag) == (None, etag)  # unchanged: not downloaded again
    store.save({**settings.to_dict(), "exploration_percentage": 0.5})
    changed, newer = store.load(etag)
    assert changed["exploration_percentage"] == 0.5 and newer != etag


def test_the_settings_cache_serves_defaults_then_a_put_at_once_and_other_instances_after_the_refresh(container):
    clock = [0.0]
    store = SettingsStore(container)
    writer = SettingsCache(store, configuration.defaults, refresh_seconds=10, monotonic=lambda: clock[0])
    reader = SettingsCache(SettingsStore(container), configuration.defaults, refresh_seconds=10,
                           monotonic=lambda: clock[0])
    assert writer.get() == configuration.defaults() and reader.get() == configuration.defaults()
    changed = configuration.LoopSettings(exploration_percentage=0.05, last_edit=NOW)
    writer.put(changed)
    assert writer.get() == changed  # the instance that took the PUT serves it at once
    assert reader.get() == configuration.defaults()  # the other one within its refresh
    clock[0] = 10
    assert reader.get() == changed
    container.upload_blob(store.name, b'{"exploration_percentage": 7}', overwrite=True)
    clock[0] = 20
    assert reader.get() == changed  # invalid stored settings: the last good ones stay
    container.delete_blob(store.name)
    clock[0] = 30
    assert reader.get() == configuration.defaults()


def test_evaluations_round_trip_by_id(container):
    store = EvaluationStore(container)
    assert store.get("e1") is None and store.list() == []
    store.put({"id": "e1", "status": "pending"})
    store.put({"id": "e2", "status": "completed", "policyResults": [{"name": "Baseline"}]})
    store.put({"id": "e1", "status": "failed"})
    assert store.get("e1") == {"id": "e1", "status": "failed"}
    assert sorted(e["id"] for e in store.list()) == ["e1", "e2"]
    assert store.delete("e1") is True and store.delete("e1") is False
    assert [e["id"] for e in store.list()] == ["e2"]
    assert all(b.name.startswith(PREFIX + "evaluations/") for b in container.list_blobs())


def test_the_registry_keeps_the_personalizer_models_under_its_prefix_and_reset_removes_the_pointer(container):
    registry = model_store.BlobRegistry(container, PREFIX)
    assert registry.pointer() is None
    registry.save("m1", {"model.npz": model("m1").to_bytes(), "report.json": b'{"version": "m1"}'})
    registry.promote({"version": "m1", "promotedAt": "2026-05-01T11:30:00Z"})
    assert registry.pointer()["version"] == "m1" and registry.load("m1").intercept == -0.5
    assert set(registry.files("m1")) == {"model.npz", "report.json"} and registry.files("m2") == {}
    assert {b.name for b in container.list_blobs()} == {"personalizer/current.json", "personalizer/m1/model.npz",
                                                        "personalizer/m1/report.json"}
    assert model_store.BlobRegistry(container).pointer() is None  # the offers loop's registry is apart

    stale = model_store.BlobRegistry(container, PREFIX)
    stale.pointer()
    registry.reset()
    registry.reset()  # nothing to remove: fine
    assert registry.pointer() is None and "m1" in {b.name.split("/")[1] for b in container.list_blobs()}
    with pytest.raises(PromotionConflict):
        stale.promote({"version": "m0"})  # it read a pointer that is gone now
    registry.promote({"version": "m1", "promotedAt": "2026-05-01T12:00:00Z"})  # after reset: created anew
    assert registry.pointer()["promotedAt"] == "2026-05-01T12:00:00Z"


def test_a_model_exported_from_one_loop_imports_into_another(container):
    source = model_store.BlobRegistry(container, PREFIX)
    source.save("m1", {"model.npz": model("m1").to_bytes(), "features.json": b"{}"})
    source.pointer()
    source.promote({"version": "m1", "promotedAt": "2026-05-01T11:30:00Z"})
    exported = admin.export_model(source)
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        assert json.loads(archive.read("current.json"))["version"] == "m1"
    assert admin.model_properties(source) == {"creationTime": "2026-05-01T11:00:00Z",
                                              "lastModifiedTime": "2026-05-01T11:30:00Z"}

    target = model_store.BlobRegistry(container, "personalizer-copy/")
    pointer = admin.import_model(target, exported, NOW)
    fresh = model_store.BlobRegistry(container, "personalizer-copy/")
    assert fresh.pointer() == pointer
    imported = fresh.load(pointer["version"])
    assert imported.version == pointer["version"] and np.array_equal(imported.weights, model("m1").weights)
    assert {"model.npz", "features.json", "import.json"} <= set(fresh.files(pointer["version"]))
