"""The retrain job: a candidate is fitted, evaluated against the current policy, and promoted only if not worse."""
import copy
import dataclasses
from datetime import datetime

import numpy as np
import pytest

from shared.learning import compaction, dataset, retrain
from shared.learning.features import Encoder, rows_for
from shared.learning.model import LinearModel, ModelError
from shared.learning.retrain import JobPorts, LearningConfig, MemoryRegistry
from shared.learning.serving import ModelCache, ModelUnavailable, NO_MODEL

from .learning_fakes import exploring_logs

CONFIG = LearningConfig(bootstrap_rounds=300, max_eval_decisions=2000)


def _ports(logs, registry):
    def load(start, end, event_columns=None, decision_columns=None, decision_ids=None):
        decisions = compaction.keep_only(logs.decisions, compaction.id_array(decision_ids))
        return dataset.select(logs.events, event_columns or None), dataset.select(decisions, decision_columns)

    return JobPorts(load=load, registry=registry, clock=lambda: logs.end)


@pytest.fixture(scope="module")
def first():
    """The first retrain on the exploring baseline's logs: the candidate against the baseline."""
    logs = exploring_logs()
    registry = MemoryRegistry()
    report = retrain.run(_ports(logs, registry), CONFIG, force=True)
    return logs, registry, report


def test_the_first_model_beats_the_baseline_offline_and_is_promoted_with_its_files(first):
    logs, registry, report = first
    assert report["promoted"] is True, report["reason"]
    assert report["current"] == "baseline-1" and report["reason"].startswith("promoted")
    evaluation = report["evaluation"]
    assert evaluation["heldOutEvents"] >= CONFIG.min_heldout
    assert evaluation["difference"]["dr"]["high"] >= 0  # not worse
    assert {"low", "high", "estimate"} <= set(evaluation["difference"]["ips"])
    version = report["version"]
    assert registry.pointer()["version"] == version
    assert {f"{version}/{n}" for n in ("model.npz", "features.json", "metrics.json", "data.json", "report.json")} \
        <= set(registry.files)
    assert report["data"]["examples"] == report["data"]["trainExamples"] + report["data"]["heldOutExamples"]
    assert registry.load(version).version == version


def test_a_candidate_trained_on_shuffled_rewards_is_not_promoted_and_the_report_says_why(first):
    logs, registry, _ = first
    current = registry.load(registry.pointer()["version"])
    examples = dataset.examples(dataset.dedupe(logs.decisions), dataset.reward_events(logs.events),
                                CONFIG.rewards, logs.end)
    cut = retrain._split(examples, CONFIG.holdout)
    shuffled = copy.copy(examples)
    shuffled.rewards = np.random.default_rng(3).permutation(examples.rewards)
    worse, _ = retrain.fit_candidate(shuffled, cut, CONFIG, "shuffled")
    _, reward_model = retrain.fit_candidate(examples, cut, CONFIG, "fair")  # DR's reward model sees the real rewards
    verdict = retrain.assess(examples, cut, retrain.from_table(logs.decisions), worse, current, CONFIG, current.version, reward_model)
    assert verdict.promoted is False
    assert "not promoted" in verdict.reason and "worse than " + current.version in verdict.reason
    difference = verdict.metrics["difference"]["dr"]
    assert difference["high"] < 0  # significantly worse, by the doubly robust estimate


def test_a_scheduled_retrain_waits_for_enough_new_decisions(first):
    logs, registry, report = first
    registry.keep_report(report)
    ports = _ports(logs, registry)
    skipped = retrain.run(ports, LearningConfig(retrain_every=100), force=False)
    assert skipped["skipped"] is True and skipped["newDecisions"] == 0 and "waits for 100" in skipped["reason"]


def test_the_job_reads_candidates_only_for_the_held_out_decisions_it_scores(first):
    logs, _, _ = first
    asked = []
    ports = _ports(logs, MemoryRegistry())
    load = ports.load

    def recording(start, end, event_columns=None, decision_columns=None, decision_ids=None):
        asked.append((decision_columns, None if decision_ids is None else list(decision_ids)))
        return load(start, end, event_columns, decision_columns, decision_ids)

    config = LearningConfig(bootstrap_rounds=50, max_eval_decisions=300)
    report = retrain.run(JobPorts(load=recording, registry=ports.registry, clock=ports.clock), config, force=True)
    reads = [ids for columns, ids in asked if "candidates" in (columns or ())]
    assert len(reads) == 1 and reads[0] is not None
    assert len(set(reads[0])) == len(reads[0]) == 300  # the sample of held-out decisions, nothing else
    trained_to = datetime.fromisoformat(ports.registry.load(report["version"]).meta["dataRange"]["to"].replace("Z", "+00:00"))
    held_out = {d for d, t in zip(logs.decisions.column("decisionId").to_pylist(),
                                  logs.decisions.column("time").to_pylist()) if t >= trained_to}
    assert set(reads[0]) <= held_out
    assert report["evaluation"]["heldOutEvents"] >= 300


def test_too_few_examples_fit_nothing():
    logs = exploring_logs()
    few = logs.decisions.slice(0, 20)
    trained = retrain.train(logs.events, few, CONFIG, logs.end, "v-few")
    assert trained.model is None and trained.promoted is False and "settled examples" in trained.report["reason"]


def test_the_stored_model_scores_exactly_like_the_fitted_one(first):
    _, registry, report = first
    model = registry.load(report["version"])
    again = LinearModel.from_bytes(model.to_bytes())
    context = {"user": {"segment": "student", "device": "mobile"}, "interest": {"books": 0.5}}
    actions = [{"offer": {"kind": "bundle", "category": "books"}}, {"offer": {"kind": "free_shipping"}}]
    assert np.allclose(model.score(context, actions), again.score(context, actions))


@pytest.mark.parametrize("blob", [b"", b"not a zip", b"PK\x03\x04broken"])
def test_a_corrupt_model_blob_is_a_model_error(blob):
    with pytest.raises(ModelError):
        LinearModel.from_bytes(blob)


def test_a_corrupt_or_missing_model_serves_the_baseline_and_says_so(first):
    _, registry, report = first
    version = report["version"]
    cache = ModelCache(registry, refresh_seconds=0)
    assert cache.serving().model.version == version and cache.check() == version
    broken = MemoryRegistry()
    broken.files = dict(registry.files)
    broken.promote(registry.pointer())
    broken.files[f"{version}/model.npz"] = b"garbage"
    serving = ModelCache(broken, refresh_seconds=0).serving()
    assert serving.model is None and "cannot be loaded" in serving.status
    del broken.files[f"{version}/model.npz"]
    with pytest.raises(ModelUnavailable, match="not found"):
        ModelCache(broken, refresh_seconds=0).check()
    with pytest.raises(ModelUnavailable, match=NO_MODEL):
        ModelCache(MemoryRegistry(), refresh_seconds=0).check()


def test_apprentice_mode_keeps_the_baseline_until_the_learner_agrees_often_enough(first):
    logs, _, _ = first
    strict = LearningConfig(bootstrap_rounds=100, max_eval_decisions=1000, apprentice=True, apprentice_agreement=1.0)
    registry = MemoryRegistry()
    report = retrain.run(_ports(logs, registry), strict, force=True)
    assert report["promoted"] and registry.pointer()["apprentice"]["graduated"] is False
    assert ModelCache(registry, refresh_seconds=0, apprentice=True).serving().apprentice is True
    lenient = LearningConfig(bootstrap_rounds=100, max_eval_decisions=1000, apprentice=True, apprentice_agreement=0.0)
    registry = MemoryRegistry()
    retrain.run(_ports(logs, registry), lenient, force=True)
    assert registry.pointer()["apprentice"]["graduated"] is True
    assert ModelCache(registry, refresh_seconds=0, apprentice=True).serving().apprentice is False


def test_worker_processes_build_the_same_training_rows_as_this_process(first, monkeypatch):
    logs, _, _ = first
    examples = dataset.examples(dataset.dedupe(logs.decisions), dataset.reward_events(logs.events),
                                CONFIG.rewards, logs.end)
    monkeypatch.setattr(retrain, "FEATURE_CHUNK", 700)  # several chunks, so the rows are stitched together
    stop = len(examples) - 123
    here = retrain._fit_rows(examples, stop, CONFIG.space, Encoder(CONFIG.space), processes=1)
    spread = retrain._fit_rows(examples, stop, CONFIG.space, Encoder(CONFIG.space), processes=2)
    assert here.shape == (stop, CONFIG.space.width) and here.nnz > 20 * stop
    assert (here != spread).nnz == 0
    # and row by row as serving builds them (one decision, its own context)
    contexts = examples.contexts(examples.owner[:5])
    logged = examples.logged(0, 5)
    _, actions = logged.parsed()
    for i in range(5):
        one = rows_for(CONFIG.space, Encoder(CONFIG.space), contexts[i], [actions[i]])
        assert (one != here[i]).nnz == 0


def test_prepared_rows_are_the_used_columns_scaled_as_max_abs_scaler_scales_them():
    from scipy import sparse
    from sklearn.preprocessing import MaxAbsScaler

    from shared.learning.model import prepare

    rng = np.random.default_rng(4)
    rows = sparse.random(500, 3000, density=0.004, format="csr", dtype=np.float32, random_state=rng)
    rows.data = (rows.data - 0.5) * 40
    edited = rows.tolil()
    edited[:, 7] = 0  # an unused column and a used one
    edited[3, 11] = -2.0
    rows = edited.tocsr()
    rows.eliminate_zeros()
    prepared = prepare(rows)
    used = np.unique(rows.indices)
    scaler = MaxAbsScaler().fit(rows[:, used])
    expected = scaler.transform(rows[:, used])
    assert np.array_equal(prepared.used, used) and 7 not in used and prepared.width == 3000
    assert prepared.scaled.shape == expected.shape and prepared.scaled.dtype == np.float32
    assert (prepared.scaled != expected).nnz == 0
    np.testing.assert_array_equal(prepared.scale, scaler.scale_)


def test_a_big_retrain_fits_in_worker_processes_the_same_models(first, monkeypatch):
    logs, _, _ = first
    examples = dataset.examples(dataset.dedupe(logs.decisions), dataset.reward_events(logs.events),
                                CONFIG.rewards, logs.end)
    monkeypatch.setattr(retrain, "FEATURE_CHUNK", 1000)  # enough chunks to count as big
    stop = len(examples) - 500
    here = retrain.fit_candidate(examples, stop, dataclasses.replace(CONFIG, processes=1), "here")
    spread = retrain.fit_candidate(examples, stop, dataclasses.replace(CONFIG, processes=2), "spread")
    for ours, theirs in zip(here, spread):
        assert np.count_nonzero(ours.weights) > 100
        np.testing.assert_allclose(theirs.weights, ours.weights, rtol=1e-5, atol=1e-7)
        assert theirs.intercept == pytest.approx(ours.intercept, rel=1e-6)
