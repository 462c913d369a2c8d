"""The Personalizer API's administration over plain fakes: the model's export, import, properties and
reset; the logs' date range; offline evaluations on synthetic rank and reward events; and the HTTP
routes' status codes and the two API versions' evaluation shapes."""
from __future__ import annotations

import io
import json
import random
import zipfile
from datetime import datetime, timedelta, timezone
from typing import Optional

import azure.functions as func
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from functions import personalizer as api
from shared import bootstrap
from shared import events as ev
from shared.learning import dataset, retrain
from shared.learning.dataset import RewardRules
from shared.learning.model import LinearModel, ModelError
from shared.learning.retrain import LearningConfig
from shared.personalizer import admin, configuration, errors
from shared.personalizer.configuration import LoopSettings

T0 = datetime(2026, 5, 1, tzinfo=timezone.utc)
NOW = T0 + timedelta(days=2)
LINEAR = "--cb_explore_adf --epsilon 0.2"  # no interactions: cannot tell which action suits which segment
CROSSED = "--cb_explore_adf --epsilon 0.2 -q ::"


class Registry:
    """A registry in dicts, with the files() and reset() the administration needs."""

    def __init__(self) -> None:
        self.blobs: dict[str, dict[str, bytes]] = {}
        self.current: Optional[dict] = None
        self.conflict = False

    def pointer(self) -> Optional[dict]:
        return dict(self.current) if self.current else None

    def load(self, version: str) -> LinearModel:
        data = self.blobs.get(version, {}).get("model.npz")
        if data is None:
            raise ModelError(f"model {version} not found")
        return LinearModel.from_bytes(data)

    def save(self, version: str, files: dict[str, bytes]) -> None:
        self.blobs.setdefault(version, {}).update(files)

    def promote(self, pointer: dict) -> None:
        if self.conflict:
            raise retrain.PromotionConflict("the current model changed")
        self.current = dict(pointer)

    def files(self, version: str) -> dict[str, bytes]:
        return dict(self.blobs.get(version, {}))

    def reset(self) -> None:
        self.current = None


class Evaluations:
    def __init__(self) -> None:
        self.stored: dict[str, dict] = {}

    def get(self, evaluation_id):
        found = self.stored.get(evaluation_id)
        return json.loads(json.dumps(found)) if found is not None else None

    def put(self, evaluation):
        self.stored[evaluation["id"]] = json.loads(json.dumps(evaluation))

    def list(self):
        return [json.loads(json.dumps(e)) for e in self.stored.values()]

    def delete(self, evaluation_id):
        return self.stored.pop(evaluation_id, None) is not None


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def ranked(i: int, at: datetime, segment: str, chosen: str, probability: float) -> dict:
    return {"id": f"rank-{i}", "type": ev.PERSONALIZER_RANKED, "source": ev.PERSONALIZER_SOURCE,
            "subject": "personalizer", "time": _iso(at),
            "data": {"decisionId": f"d{i}", "context": {"user": {"segment": segment}},
                     "candidates": [{"offerId": a, "features": {"actionId": a}} for a in ("x", "y")],
                     "chosen": [{"offerId": chosen, "slot": 0, "probability": probability}],
                     "modelVersion": "baseline", "exploration": {"policy": "epsilon-greedy", "epsilon": 1.0}}}


def rewarded(i: int, at: datetime, value: float) -> dict:
    return {"id": f"reward-{i}", "type": ev.PERSONALIZER_REWARDED, "source": ev.PERSONALIZER_SOURCE,
            "subject": "personalizer", "time": _iso(at), "data": {"decisionId": f"d{i}", "value": value}}


def offer_shown(at: datetime) -> dict:
    return {"id": "shown-1", "type": ev.OFFER_SHOWN, "source": "/offerloop/offers", "subject": "u1", "time": _iso(at),
            "data": {"decisionId": "o1", "context": {}, "candidates": [{"offerId": "o", "features": {}}],
                     "chosen": [{"offerId": "o", "slot": 0, "probability": 1.0}], "modelVersion": "baseline",
                     "exploration": {"policy": "greedy", "epsilon": 0}}}


def logs(count: int = 400, seed: int = 3) -> list[dict]:
    """Uniformly random decisions, a minute apart: segment a is rewarded for x, segment b for y."""
    rng = random.Random(seed)
    records = []
    for i in range(count):
        at = T0 + timedelta(minutes=i)
        segment, chosen = rng.choice("ab"), rng.choice("xy")
        records.append(ranked(i, at, segment, chosen, 0.5))
        if (segment, chosen) in (("a", "x"), ("b", "y")):
            records.append(rewarded(i, at + timedelta(seconds=30), 1.0))
    return records


class Archive:
    """ParquetArchive.load over tables built from CloudEvents."""

    def __init__(self, records: list[dict]) -> None:
        self.events, self.decisions = dataset.tables(records)
        self.calls: list[tuple] = []

    def load(self, start, end, event_columns=None, decision_columns=None, decision_ids=None):
        self.calls.append((start, end, event_columns, decision_columns))
        return (self._slice(self.events, start, end, event_columns, "id", None),
                self._slice(self.decisions, start, end, decision_columns, "decisionId", decision_ids))

    @staticmethod
    def _slice(table, start, end, columns, key, ids):
        kind = table.schema.field("time").type
        kept = table.filter(pc.and_(pc.greater_equal(table.column("time"), pa.scalar(start, kind)),
                                    pc.less_equal(table.column("time"), pa.scalar(end, kind))))
        if ids is not None:
            kept = kept.filter(pc.is_in(kept.column(key), value_set=pa.array(list(ids), pa.string())))
        return dataset.select(kept, columns)


def learning_config(loop: LoopSettings) -> LearningConfig:
    return LearningConfig(exploration=loop.exploration(),
                          rewards=RewardRules(loop.reward_wait_seconds, loop.default_reward, loop.reward_aggregation),
                          window_days=30, retrain_every=1, fit=loop.fit(), space=loop.space(), bootstrap_rounds=100,
                          processes=1)


class Fake:
    def __init__(self, records: Optional[list[dict]] = None) -> None:
        self.registry, self.evaluations = Registry(), Evaluations()
        self.archive = Archive(records if records is not None else logs())
        self.settings = configuration.defaults()
        self.jobs: list = []
        self.changed = 0

    def save(self, settings):
        self.settings = settings
        return settings

    def ports(self) -> admin.Ports:
        return admin.Ports(registry=self.registry, evaluations=self.evaluations, settings=lambda: self.settings,
                           save_settings=self.save, load=self.archive.load, learning_config=learning_config,
                           run_later=self.jobs.append, models_changed=self._changed, clock=lambda: NOW)

    def _changed(self):
        self.changed += 1

    def run_jobs(self):
        while self.jobs:
            self.jobs.pop(0)()


def promote_trained(fake: Fake, arguments: str = CROSSED) -> LinearModel:
    """A model fitted on the logs, saved and promoted as a retrain would."""
    loop = configuration.LoopSettings(policy_arguments=arguments)
    trained = retrain.train(fake.archive.events, fake.archive.decisions, learning_config(loop), NOW, "m1")
    fake.registry.save("m1", retrain.model_files(trained))
    fake.registry.promote({"version": "m1", "promotedAt": _iso(NOW), "previous": None,
                           "apprentice": {"graduated": True, "agreement": 0.5, "required": 0.9}})
    return trained.model


def body(**fields) -> bytes:
    base = {"name": "nightly", "startTime": _iso(T0), "endTime": _iso(T0 + timedelta(hours=10)),
            "policies": [{"name": "linear", "arguments": LINEAR}, {"name": "crossed", "arguments": CROSSED}]}
    base.update(fields)
    return json.dumps(base).encode()


# --- the model ---------------------------------------------------------------------------------

def test_export_before_any_promotion_is_404_saying_the_baseline_serves():
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.export_model(Registry())
    assert raised.value.status == 404 and "baseline" in raised.value.message


def test_an_exported_model_imports_into_another_loop_as_a_new_promoted_version_that_scores_the_same():
    source = Fake()
    original = promote_trained(source)
    exported = admin.export_model(source.registry)
    with zipfile.ZipFile(io.BytesIO(exported)) as archive:
        names = set(archive.namelist())
        assert json.loads(archive.read("current.json"))["version"] == "m1"
    assert {"model.npz", "features.json", "report.json", "metrics.json", "data.json", "current.json"} <= names

    target = Registry()
    pointer = admin.import_model(target, exported, NOW)
    assert target.pointer() == pointer and pointer["version"] != "m1" and pointer["imported"] == {"from": "m1"}
    assert pointer["apprentice"]["graduated"] is True  # carried from the exported pointer
    served = target.load(pointer["version"])
    assert served.version == pointer["version"] and served.meta["importedFrom"] == "m1"
    context, actions = {"user": {"segment": "b"}}, [{"actionId": "x"}, {"actionId": "y"}]
    assert np.allclose(served.score(context, actions), original.score(context, actions))
    assert "current.json" not in target.files(pointer["version"])  # the pointer is not a model file


def test_a_bare_model_file_imports_too():
    model = promote_trained(Fake())
    registry = Registry()
    pointer = admin.import_model(registry, model.to_bytes(), NOW)
    assert registry.load(pointer["version"]).meta["importedFrom"] == model.version
    assert pointer["apprentice"] == {"graduated": False}


@pytest.mark.parametrize("data", [b"not a zip", b"", "zip-without-model", "zip-with-broken-model"])
def test_an_import_that_is_not_a_model_is_400_and_changes_nothing(data):
    if data == "zip-without-model":
        data = _zip({"report.json": b"{}"})
    elif data == "zip-with-broken-model":
        data = _zip({"model.npz": b"garbage"})
    registry = Registry()
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.import_model(registry, data, NOW)
    assert raised.value.status == 400 and raised.value.inner_code == "InvalidModelImportFormat"
    assert registry.pointer() is None and registry.blobs == {}


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_an_import_racing_a_promotion_is_409():
    exported = admin.export_model(_promoted_registry())
    registry = Registry()
    registry.conflict = True
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.import_model(registry, exported, NOW)
    assert raised.value.status == 409


def _promoted_registry() -> Registry:
    fake = Fake()
    promote_trained(fake)
    return fake.registry


def test_model_properties_date_the_training_and_the_promotion_and_reset_returns_to_the_baseline():
    fake = Fake()
    promote_trained(fake)
    fake.registry.current["promotedAt"] = "2026-05-03T08:00:00Z"
    properties = admin.model_properties(fake.registry)
    assert properties == {"creationTime": _iso(NOW), "lastModifiedTime": "2026-05-03T08:00:00Z"}
    admin.reset_model(fake.registry)
    assert fake.registry.pointer() is None and "m1" in fake.registry.blobs  # the version stays stored
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.model_properties(fake.registry)
    assert raised.value.status == 404


# --- the logs ----------------------------------------------------------------------------------

def test_log_properties_span_the_personalizer_decisions_only_and_read_only_small_columns():
    archive = Archive([offer_shown(T0 - timedelta(hours=1)), *logs(30)])
    properties = admin.log_properties(archive.load, NOW, 7)
    assert properties == {"dateRange": {"from": _iso(T0), "to": _iso(T0 + timedelta(minutes=29))}}
    (_, _, event_columns, decision_columns), = archive.calls
    assert event_columns == () and "context" not in decision_columns and "loop" in decision_columns
    assert admin.log_properties(Archive([offer_shown(T0)]).load, NOW, 7) == {"dateRange": {}}


def test_log_properties_look_only_within_the_window():
    archive = Archive(logs(30))
    assert admin.log_properties(archive.load, T0 + timedelta(minutes=20, days=1), 1)["dateRange"]["from"] == \
        _iso(T0 + timedelta(minutes=20))


def test_deleting_the_logs_is_refused_with_the_reason():
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.delete_log()
    assert raised.value.status == 501 and "shared with its offers loop" in raised.value.message


# --- evaluations -------------------------------------------------------------------------------

def test_an_evaluation_is_stored_pending_then_completes_with_online_baseline_and_custom_results():
    fake = Fake()
    created = admin.create_evaluation("e1", body(), fake.ports())
    assert created["status"] == "pending" and fake.evaluations.get("e1")["status"] == "pending"
    assert len(fake.jobs) == 1  # started in the background, not in the request
    fake.run_jobs()
    done = admin.get_evaluation("e1", fake.ports())
    assert done["status"] == "completed", done["description"]
    by_name = {r["name"]: r for r in done["policyResults"]}
    assert [r["policySource"] for r in done["policyResults"]] == ["Online", "Baseline", "Custom", "Custom"]
    assert by_name["Default"]["modelVersion"] == "baseline"  # no model promoted: the baseline serves
    baseline, linear, crossed = by_name["Baseline"], by_name["linear"], by_name["crossed"]
    for result in done["policyResults"]:
        total = result["totalSummary"]
        assert result["summary"] == [total]
        ratio = total["ipsEstimatorNumerator"] / total["ipsEstimatorDenominator"]
        assert total["averageReward"] == pytest.approx(ratio, abs=1e-5)
        assert total["ipsEstimatorDenominator"] == done["policyResults"][0]["totalSummary"]["ipsEstimatorDenominator"]
        low, high = total["doublyRobust"]["confidenceInterval"]
        assert low <= total["doublyRobust"]["estimate"] <= high and total["confidenceInterval"] >= 0
    # segment a wants x, b wants y: the baseline (always x) earns about half, the crossed policy about all
    assert 0.3 < baseline["totalSummary"]["averageReward"] < 0.7
    assert crossed["totalSummary"]["averageReward"] > 0.85 > linear["totalSummary"]["averageReward"]
    assert crossed["differenceFromOnline"]["dr"]["low"] > 0
    # about the newest 20% of 400 decisions were held out
    assert 60 <= baseline["totalSummary"]["ipsEstimatorDenominator"] <= 100


def test_with_a_promoted_model_the_online_result_is_that_model():
    fake = Fake()
    promote_trained(fake)
    admin.create_evaluation("e1", body(policies=[]), fake.ports())
    fake.run_jobs()
    done = fake.evaluations.get("e1")
    assert done["status"] == "completed", done["description"]
    online, baseline = done["policyResults"]
    assert online["modelVersion"] == "m1" and online["arguments"] == fake.settings.policy_arguments
    assert online["totalSummary"]["averageReward"] > 0.85 > baseline["totalSummary"]["averageReward"]


def test_the_two_api_versions_show_an_evaluation_in_their_own_shapes():
    fake = Fake()
    admin.create_evaluation("e1", body(enablePolicyOptimization=True), fake.ports())
    pending = admin.preview_json(fake.evaluations.get("e1"))
    assert pending["status"] == "Running" and "content" not in pending
    fake.run_jobs()
    done = fake.evaluations.get("e1")
    assert done["optimalPolicy"] in ("crossed", "Default")
    v1 = admin.v1_json(done)
    assert v1["status"] == "completed" and v1["evaluationType"] == "Manual" and v1["jobId"]
    assert "request" not in v1 and {"id", "name", "startTime", "endTime", "creationTime"} <= set(v1)
    preview = admin.preview_json(done)
    assert preview["status"] == "Succeeded" and "jobId" not in preview
    crossed = next(v for v in preview["content"]["value"] if v["name"] == "crossed")
    assert crossed["summary"]["expectedReward"] > 0.85 and len(crossed["summary"]["confidenceInterval"]) == 2
    assert crossed["timeseries"]["data"][0]["expectedReward"] == crossed["summary"]["expectedReward"]
    assert "content" not in admin.preview_json(done, content=False)


def test_v1_clients_name_the_optimization_flag_differently():
    fake = Fake()
    created = admin.create_evaluation(None, body(enableOfflineExperimentation=True, policies=[]), fake.ports())
    assert created["request"]["enablePolicyOptimization"] is True and len(created["id"]) == 36


@pytest.mark.parametrize("fields, target", [
    ({"endTime": _iso(T0 - timedelta(hours=1))}, "startTime"),
    ({"policies": [{"name": "bad", "arguments": "--cb_explore_adf --bag 5"}]}, "policies[0].arguments"),
    ({"policies": [{"name": "p", "arguments": LINEAR}, {"name": "p", "arguments": CROSSED}]}, "policies"),
    ({"name": ""}, "name"),
])
def test_a_bad_evaluation_request_is_400_naming_the_field_and_stores_nothing(fields, target):
    fake = Fake()
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.create_evaluation("e1", body(**fields), fake.ports())
    assert raised.value.status == 400 and target in [d.get("target") for d in raised.value.details]
    assert fake.evaluations.stored == {} and fake.jobs == []


def test_an_id_taken_already_is_409_and_a_bad_id_400():
    fake = Fake()
    admin.create_evaluation("e1", body(), fake.ports())
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.create_evaluation("e1", body(), fake.ports())
    assert raised.value.status == 409
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.create_evaluation("x" * 257, body(), fake.ports())
    assert raised.value.status == 400


def test_an_evaluation_without_enough_data_fails_saying_why():
    fake = Fake(logs(20))
    admin.create_evaluation("few", body(), fake.ports())
    admin.create_evaluation("none", body(startTime=_iso(T0 + timedelta(days=1)),
                                         endTime=_iso(T0 + timedelta(days=1, hours=1))), fake.ports())
    fake.run_jobs()
    few, none = fake.evaluations.get("few"), fake.evaluations.get("none")
    assert few["status"] == "failed" and "settled examples" in few["description"]
    assert none["status"] == "failed" and "No logs exist" in none["description"]
    assert admin.preview_json(few)["status"] == "Failed"


def test_an_evaluation_only_reads_its_date_range():
    fake = Fake()
    admin.create_evaluation("e1", body(endTime=_iso(T0 + timedelta(minutes=199)), policies=[]), fake.ports())
    fake.run_jobs()
    done = fake.evaluations.get("e1")
    held_out = done["policyResults"][0]["totalSummary"]["ipsEstimatorDenominator"]
    assert done["status"] == "completed" and 30 <= held_out <= 50  # the newest 20% of 200 decisions


def test_a_job_failure_is_stored_as_failed_and_an_evaluation_deleted_meanwhile_stays_deleted():
    fake = Fake()
    ports = fake.ports()
    admin.create_evaluation("e1", body(), ports)

    def broken(*args, **kwargs):
        raise OSError("storage down")
    ports.load = broken
    fake.run_jobs()
    failed = fake.evaluations.get("e1")
    assert failed["status"] == "failed" and "storage down" in failed["description"]
    admin.create_evaluation("e2", body(), fake.ports())
    admin.delete_evaluation("e2", fake.ports())
    fake.run_jobs()
    assert fake.evaluations.get("e2") is None


def test_list_get_and_delete_evaluations():
    fake = Fake()
    admin.create_evaluation("e1", body(), fake.ports())
    admin.create_evaluation("e2", body(), fake.ports())
    assert [e["id"] for e in admin.list_evaluations(fake.ports())] == ["e1", "e2"]
    admin.delete_evaluation("e1", fake.ports())
    for operation in (admin.get_evaluation, admin.delete_evaluation):
        with pytest.raises(errors.PersonalizerError) as raised:
            operation("e1", fake.ports())
        assert raised.value.status == 404 and raised.value.inner_code == "EvaluationNotFound"


def test_applying_an_evaluated_custom_policy_makes_it_the_loops_policy():
    fake = Fake()
    admin.create_evaluation("e1", body(), fake.ports())
    apply = json.dumps({"evaluationId": "e1", "policyName": "linear"}).encode()
    with pytest.raises(errors.PersonalizerError) as raised:
        admin.apply_from_evaluation(apply, fake.ports())
    assert raised.value.status == 400  # still pending
    fake.run_jobs()
    admin.apply_from_evaluation(apply, fake.ports())
    assert fake.settings.policy_name == "linear" and fake.settings.policy_arguments.startswith(LINEAR)
    assert fake.settings.space().interactions == ()
    for name, status in (("Baseline", 400), ("missing", 404)):
        with pytest.raises(errors.PersonalizerError) as raised:
            admin.apply_from_evaluation(json.dumps({"evaluationId": "e1", "policyName": name}).encode(), fake.ports())
        assert raised.value.status == status


# --- the routes --------------------------------------------------------------------------------

@pytest.fixture
def routed(monkeypatch):
    fake = Fake()
    monkeypatch.setattr(bootstrap, "personalizer_admin_ports", fake.ports)
    monkeypatch.delenv("PERSONALIZER_API_KEY", raising=False)
    return fake


def call(method: str, path: str, data: bytes = b"", params=None) -> func.HttpResponse:
    preview = not path.startswith("v1.")
    request = func.HttpRequest(method, f"http://localhost/api/personalizer/{path}", body=data, headers={},
                               params=params if params is not None else (
                                   {"api-version": "2022-09-01-preview"} if preview else {}),
                               route_params={"path": path})
    return api.personalizer_api(request)


def test_the_model_routes_answer_personalizers_status_codes(routed):
    assert call("GET", "model").status_code == 404
    promote_trained(routed)
    exported = call("GET", "model")
    assert exported.status_code == 200 and exported.mimetype == "application/octet-stream"
    assert call("PUT", "model", exported.get_body()).status_code == 204 and routed.changed == 1
    assert routed.registry.pointer()["imported"] == {"from": "m1"}
    properties = call("GET", "v1.0/model/properties")
    assert properties.status_code == 200 and set(json.loads(properties.get_body())) == {"creationTime",
                                                                                        "lastModifiedTime"}
    assert call("DELETE", "model").status_code == 204 and routed.registry.pointer() is None and routed.changed == 2
    assert json.loads(call("PUT", "model", b"nope").get_body())["error"]["innerError"]["code"] == \
        "InvalidModelImportFormat"


def test_the_log_routes(routed):
    properties = call("GET", "logs/properties")
    assert properties.status_code == 200 and json.loads(properties.get_body())["dateRange"]["from"] == _iso(T0)
    refused = call("DELETE", "v1.0/logs")
    assert refused.status_code == 501 and json.loads(refused.get_body())["error"]["code"] == "NotImplemented"


def test_v1_posts_an_evaluation_201_with_its_location_and_the_preview_puts_one_200(routed):
    created = call("POST", "v1.0/evaluations", body(policies=[]))
    evaluation = json.loads(created.get_body())
    assert created.status_code == 201 and evaluation["status"] == "pending"
    assert created.headers["Location"] == f"http://localhost/api/personalizer/v1.0/evaluations/{evaluation['id']}"
    put = call("PUT", "evaluations/nightly", body(policies=[]))
    assert put.status_code == 200 and json.loads(put.get_body())["status"] == "Running"
    routed.run_jobs()
    v1 = json.loads(call("GET", f"v1.0/evaluations/{evaluation['id']}").get_body())
    assert v1["status"] == "completed" and v1["policyResults"][0]["policySource"] == "Online"
    preview = json.loads(call("GET", "evaluations/nightly", params={
        "api-version": "2022-09-01-preview", "startTime": _iso(T0), "endTime": _iso(NOW)}).get_body())
    assert preview["status"] == "Succeeded" and preview["content"]["value"][1]["policySource"] == "Baseline"
    listed = call("GET", "v1.0/evaluations")
    assert [e["id"] for e in json.loads(listed.get_body())] == [evaluation["id"], "nightly"]
    paged = json.loads(call("GET", "evaluations", params={"api-version": "2022-09-01-preview", "skip": "1"})
                       .get_body())
    assert [e["id"] for e in paged["value"]] == ["nightly"] and "content" not in paged["value"][0]
    assert call("POST", "configurations/applyFromEvaluation",
                json.dumps({"evaluationId": "nightly", "policyName": "Default"}).encode()).status_code == 204
    assert call("DELETE", "evaluations/nightly").status_code == 204
    missing = call("GET", "evaluations/nightly")
    assert missing.status_code == 404 and json.loads(missing.get_body())["error"]["innerError"]["code"] == \
        "EvaluationNotFound"
