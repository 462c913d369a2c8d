"""The Personalizer-compatible API's domain: request validation, errors, features, ranking, settings."""
import json
import random
from collections import Counter
from datetime import datetime, timezone

import pytest
from azure.core.exceptions import HttpResponseError, ODataV4Format

from shared.learning.explore import SOFTMAX, Exploration
from shared.personalizer import configuration as conf
from shared.personalizer import errors
from shared.personalizer.features import action_features, merge
from shared.personalizer.ranking import new_event_id, rank, rank_multislot
from shared.personalizer.requests import (EvaluationRequest, MultiSlotRankRequest, MultiSlotRewardRequest,
                                          PolicyContract, RankRequest, RewardRequest)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def body(value) -> bytes:
    return json.dumps(value).encode()


def refused(model, value) -> errors.PersonalizerError:
    with pytest.raises(errors.PersonalizerError) as caught:
        errors.parse(model, value if isinstance(value, bytes) else body(value))
    assert caught.value.status == 400 and caught.value.code == "BadRequest"
    return caught.value


def actions(*ids, **features):
    return [{"id": i, "features": [features[i]] if i in features else []} for i in ids]


def scorer(scores, version="model-1"):
    calls = []

    def score(context, features):
        calls.append((context, features))
        return (None if scores is None else [scores[f["actionId"]] for f in features]), version
    score.calls = calls
    return score


# --- errors ---------------------------------------------------------------------------------------

def test_more_than_50_actions_is_a_bad_rank_request_naming_the_field():
    error = refused(RankRequest, {"actions": actions(*[f"a{i}" for i in range(51)])})
    assert error.inner_code == "InvalidRankRequest"
    assert error.details == [{"code": "ActionCountOutOfBounds", "target": "actions",
                              "message": "Action count should be between 1 and 50; got 51"}]
    assert "between 1 and 50" in error.message


def test_no_actions_is_refused_too():
    assert refused(RankRequest, {"actions": []}).details[0]["code"] == "ActionCountOutOfBounds"
    assert refused(RankRequest, {"contextFeatures": []}).details[0] == {
        "code": "Missing", "message": "Field required", "target": "actions"}


def test_duplicate_action_ids_are_refused():
    error = refused(RankRequest, {"actions": actions("a", "b", "a")})
    assert error.details[0]["code"] == "DuplicateActionId" and "a" in error.details[0]["message"]


def test_excluding_every_action_is_refused():
    error = refused(RankRequest, {"actions": actions("a", "b"), "excludedActions": ["b", "a"]})
    assert error.details[0]["code"] == "AllActionsExcluded" and error.details[0]["target"] == "excludedActions"


def test_malformed_json_is_a_400_saying_so():
    error = refused(RankRequest, b'{"actions": [')
    assert error.details[0]["code"] == "InvalidJson" and "not valid JSON" in error.message
    assert refused(RankRequest, b"").details[0]["code"] == "EmptyBody"


def test_wrong_types_are_named_by_their_path():
    error = refused(RankRequest, {"actions": [{"id": 7}, {"id": "b", "features": ["x"]}, {"id": ""}],
                                  "deferActivation": "yes", "eventId": ""})
    targets = {d["target"]: d["code"] for d in error.details}
    assert targets == {"actions[0].id": "StringType", "actions[1].features": "FeaturesNotInKeyValueFormat",
                       "actions[2].id": "EmptyId", "deferActivation": "BoolType", "eventId": "EmptyEventId"}
    assert "actions[0].id" in error.message


def test_unknown_fields_are_ignored_and_nulls_are_empty():
    request = errors.parse(RankRequest, body({"actions": [{"id": "a", "features": None, "x": 1}], "extra": True,
                                              "contextFeatures": None, "excludedActions": None,
                                              "eventId": None, "deferActivation": None}))
    assert request.candidates()[0].id == "a" and request.contextFeatures == [] and request.deferActivation is False


def test_event_ids_longer_than_256_characters_are_refused():
    assert refused(RankRequest, {"actions": actions("a"), "eventId": "e" * 257}).details[0]["target"] == "eventId"


def test_rewards_outside_minus_one_to_one_and_non_numbers_are_refused():
    assert errors.parse(RewardRequest, b'{"value": -1}').value == -1.0
    assert refused(RewardRequest, {"value": 1.5}).details[0]["code"] == "RewardOutOfRange"
    assert refused(RewardRequest, {"value": "1"}).inner_code == "InvalidRewardRequest"
    assert refused(RewardRequest, b'{"value": NaN}').details[0]["target"] == "value"
    slots = errors.parse(MultiSlotRewardRequest, body({"reward": [{"slotId": "s", "value": 0.5}]}))
    assert slots.reward[0].slotId == "s"
    assert refused(MultiSlotRewardRequest, {"reward": [{"slotId": "s", "value": 2}]}).details[0]["target"] \
        == "reward[0].value"


def test_evaluation_requests_check_times_and_policy_names():
    ok = errors.parse(EvaluationRequest, body({"name": "e", "startTime": "2024-01-01T00:00:00",
                                               "endTime": "2024-01-02T00:00:00Z",
                                               "policies": [{"name": "p", "arguments": "--cb_explore_adf"}]}))
    assert ok.startTime.tzinfo is not None and ok.enablePolicyOptimization is False
    error = refused(EvaluationRequest, {"name": "e", "startTime": "2024-01-02T00:00:00Z",
                                        "endTime": "2024-01-01T00:00:00Z",
                                        "policies": [{"name": "p", "arguments": ""}, {"name": "p", "arguments": ""}]})
    assert error.inner_code == "InvalidEvaluationContract"
    assert [d["code"] for d in error.details] == ["InvalidDateTimesInEvaluationContract", "DuplicateCustomPolicyNames"]


class _Response:
    """What HttpResponseError reads of a response."""

    def __init__(self, status, payload):
        self.status_code, self.reason, self._text = status, "Bad Request", json.dumps(payload)

    def text(self):
        return self._text


def test_the_error_body_is_readable_by_azure_core():
    error = refused(RankRequest, {"actions": actions("a", "a")})
    parsed = ODataV4Format(error.body())
    assert parsed.code == "BadRequest" and parsed.message == error.message
    assert parsed.target == "actions" and parsed.details[0].code == "DuplicateActionId"
    raised = HttpResponseError(response=_Response(400, error.body()))
    assert raised.error.code == "BadRequest" and raised.status_code == 400
    assert raised.error.message == error.message and error.message in str(raised)
    assert error.body()["error"]["innerError"] == {"code": "InvalidRankRequest", "message": error.message}


def test_error_helpers_have_cognitive_services_codes():
    assert errors.not_found("Evaluation not found.").body() == {
        "error": {"code": "ResourceNotFound", "message": "Evaluation not found."}}
    unauthorized = errors.unauthorized()
    assert unauthorized.status == 401 and ODataV4Format(unauthorized.body()).code == "401"
    assert "subscription key" in unauthorized.message


# --- features -------------------------------------------------------------------------------------

def test_the_same_namespace_in_two_objects_merges_and_later_scalars_win():
    merged = merge([{"user": {"age": 30, "tier": "gold"}, "device": "phone"},
                    {"user": {"tier": "silver", "_id": "u1"}, "device": "tablet"}])
    assert merged == {"user": {"age": 30, "tier": "silver", "_id": "u1"}, "device": "tablet"}


def test_merging_does_not_change_the_request_objects():
    first = {"user": {"a": 1}}
    merge([first, {"user": {"b": 2}}])
    assert first == {"user": {"a": 1}}


def test_a_feature_item_that_is_not_an_object_is_a_400():
    with pytest.raises(errors.PersonalizerError) as caught:
        merge([{"a": 1}, ["b"]], "contextFeatures")
    assert caught.value.status == 400 and caught.value.details[0]["target"] == "contextFeatures[1]"


def test_action_features_carry_the_action_id():
    request = errors.parse(RankRequest, body({"actions": actions("a", "b", b={"offer": {"price": 3}})}))
    assert [action_features(a) for a in request.actions] == [
        {"actionId": "a"}, {"offer": {"price": 3}, "actionId": "b"}]


# --- ranking --------------------------------------------------------------------------------------

def _rank_request(**extra):
    return errors.parse(RankRequest, body({"contextFeatures": [{"user": {"tier": "gold"}}],
                                           "actions": actions("a", "b", "c", "d"), **extra}))


def test_epsilon_greedy_probabilities_sum_to_one_and_excluded_come_last_with_zero():
    ranked = rank(_rank_request(excludedActions=["c"]), scorer({"a": 0.1, "b": 0.9, "d": 0.5}),
                  Exploration(epsilon=0.2), random.Random(3), "ev-1")
    ranking = ranked.response["ranking"]
    probability = {r["id"]: r["probability"] for r in ranking}
    assert probability["b"] == pytest.approx(1 - 0.2 + 0.2 / 3)
    assert probability["a"] == probability["d"] == pytest.approx(0.2 / 3)
    assert probability["c"] == 0 and ranking[-1]["id"] == "c"
    assert sum(probability.values()) == pytest.approx(1)
    assert ranking[0]["id"] == ranked.response["rewardActionId"]
    assert ranked.response["eventId"] == "ev-1"


def test_the_reward_action_comes_first_then_the_rest_by_score():
    seen = Counter()
    for seed in range(200):
        ranked = rank(_rank_request(), scorer({"a": 0.1, "b": 0.9, "c": 0.5, "d": 0.3}),
                      Exploration(epsilon=0.5), random.Random(seed), "ev")
        ids = [r["id"] for r in ranked.response["ranking"]]
        rest = [i for i in ["b", "c", "d", "a"] if i != ids[0]]
        assert ids[1:] == rest
        seen[ids[0]] += 1
    assert seen["b"] > 100 and all(seen[i] > 0 for i in "acd")  # 62.5% best, 12.5% each other


def test_a_rank_logs_what_the_ranked_event_needs():
    ranked = rank(_rank_request(excludedActions=["d"], deferActivation=True), scorer({"a": 1, "b": 0, "c": 0}),
                  Exploration(epsilon=0.0), random.Random(0), "ev-2")
    data = ranked.data
    assert data["decisionId"] == "ev-2" and data["context"] == {"user": {"tier": "gold"}}
    assert [c["offerId"] for c in data["candidates"]] == ["a", "b", "c"]
    assert data["candidates"][0]["features"] == {"actionId": "a"}
    assert data["chosen"] == [{"offerId": "a", "slot": 0, "probability": 1.0}]
    assert data["modelVersion"] == "model-1" and data["exploration"] == {"policy": "epsilon-greedy", "epsilon": 0.0}
    assert data["deferred"] is True and data["excluded"] == ["d"]


def test_without_a_model_the_baseline_is_the_first_action_not_excluded():
    ranked = rank(_rank_request(excludedActions=["a"]), scorer(None, "baseline"), Exploration(epsilon=0.0),
                  random.Random(0), "ev")
    assert ranked.response["rewardActionId"] == "b"
    assert [r["id"] for r in ranked.response["ranking"]] == ["b", "c", "d", "a"]
    assert ranked.data["modelVersion"] == "baseline"


@pytest.mark.parametrize("mode, policy", [("Apprentice", "apprentice"), ("LoggingOnly", "logging-only")])
def test_apprentice_and_logging_only_return_the_baseline_with_probability_one(mode, policy):
    for seed in range(20):
        ranked = rank(_rank_request(), scorer({"a": 0, "b": 1, "c": 0, "d": 0}), Exploration(epsilon=1.0),
                      random.Random(seed), "ev", mode=mode)
        assert ranked.response["rewardActionId"] == "a"
        assert ranked.response["ranking"][0] == {"id": "a", "probability": 1.0}
        assert ranked.data["exploration"] == {"policy": policy, "epsilon": 0.0}


def test_softmax_probabilities_follow_the_scores():
    ranked = rank(_rank_request(), scorer({"a": 0.0, "b": 1.0, "c": 0.0, "d": 0.0}),
                  Exploration(policy=SOFTMAX, softmax_lambda=1.0), random.Random(5), "ev")
    probability = {r["id"]: r["probability"] for r in ranked.response["ranking"]}
    assert probability["b"] / probability["a"] == pytest.approx(2.718281828)
    assert sum(probability.values()) == pytest.approx(1)
    assert ranked.data["exploration"]["policy"] == SOFTMAX


def test_a_scorer_returning_the_wrong_number_of_scores_is_a_bug():
    with pytest.raises(ValueError):
        rank(_rank_request(), lambda context, features: ([1.0], "v"), Exploration(), random.Random(0), "ev")


def test_event_ids_are_new_uuid_hex():
    first, second = new_event_id(), new_event_id()
    assert first != second and len(first) == 32 and int(first, 16) >= 0


# --- multi-slot -----------------------------------------------------------------------------------

def _slots_request(slots, ids=("a", "b", "c", "d")):
    return errors.parse(MultiSlotRankRequest, body({"contextFeatures": [{"page": {"kind": "home"}}],
                                                    "actions": actions(*ids), "slots": slots}))


def test_multislot_never_shows_an_action_twice_and_honours_slot_exclusions():
    request = _slots_request([{"id": "top", "baselineAction": "a"},
                              {"id": "side", "baselineAction": "b", "excludedActions": ["c"]},
                              {"id": "foot", "baselineAction": "c", "features": [{"size": {"w": 2}}]}])
    score = scorer({"a": 0.2, "b": 0.3, "c": 0.9, "d": 0.1})
    for seed in range(100):
        ranked = rank_multislot(request, score, Exploration(epsilon=0.6), random.Random(seed), "ev")
        chosen = [s["rewardActionId"] for s in ranked.response["slots"]]
        assert len(set(chosen)) == 3 and chosen[1] != "c"
        assert [s["id"] for s in ranked.response["slots"]] == ["top", "side", "foot"]
    assert len(score.calls) == 100 and len(score.calls[0][1]) == 4  # scored once per request, every action
    assert ranked.data["slots"][2] == {"id": "foot", "features": {"size": {"w": 2}}, "baselineAction": "c",
                                       "excludedActions": []}
    assert [c["slotId"] for c in ranked.data["chosen"]] == ["top", "side", "foot"]
    assert [c["slot"] for c in ranked.data["chosen"]] == [0, 1, 2]


def test_multislot_probabilities_are_conditional_on_earlier_slots():
    request = _slots_request([{"id": "s1", "baselineAction": "a"}, {"id": "s2", "baselineAction": "b"}],
                             ids=("a", "b", "c"))
    ranked = rank_multislot(request, scorer({"a": 0.9, "b": 0.5, "c": 0.1}), Exploration(epsilon=0.0),
                            random.Random(1), "ev")
    assert ranked.response == {"slots": [{"id": "s1", "rewardActionId": "a"}, {"id": "s2", "rewardActionId": "b"}],
                               "eventId": "ev"}
    assert [c["probability"] for c in ranked.data["chosen"]] == [1.0, 1.0]
    explored = rank_multislot(request, scorer({"a": 0.9, "b": 0.5, "c": 0.1}), Exploration(epsilon=0.3),
                              random.Random(1), "ev")
    second = explored.data["chosen"][1]
    assert second["probability"] in (pytest.approx(0.7 + 0.15), pytest.approx(0.15))  # two actions left


def test_multislot_apprentice_uses_each_slots_baseline_action():
    request = _slots_request([{"id": "s1", "baselineAction": "c"}, {"id": "s2", "baselineAction": "a"}])
    ranked = rank_multislot(request, scorer({"a": 0, "b": 1, "c": 0, "d": 0}), Exploration(epsilon=1.0),
                            random.Random(0), "ev", mode="Apprentice")
    assert [s["rewardActionId"] for s in ranked.response["slots"]] == ["c", "a"]
    assert [c["probability"] for c in ranked.data["chosen"]] == [1.0, 1.0]


def test_multislot_without_a_model_ranks_by_baseline_action():
    request = _slots_request([{"id": "s1", "baselineAction": "d"}, {"id": "s2", "baselineAction": "c"}])
    ranked = rank_multislot(request, scorer(None), Exploration(epsilon=0.0), random.Random(0), "ev")
    assert [s["rewardActionId"] for s in ranked.response["slots"]] == ["d", "c"]


def test_multislot_requests_are_checked_against_the_actions():
    error = refused(MultiSlotRankRequest, {"actions": actions("a", "b"), "slots": [
        {"id": "s", "baselineAction": "a", "excludedActions": ["a", "zz"]},
        {"id": "s", "baselineAction": "q"}]})
    codes = {(d["code"], d["target"]) for d in error.details}
    assert codes == {("MultiSlotInvalidSlotIds", "slots"), ("ExcludedBaselineAction", "slots[0].excludedActions"),
                     ("MultiSlotInvalidExcludedActions", "slots[0].excludedActions"),
                     ("InvalidBaselineActionId", "slots[1].baselineAction")}
    more = refused(MultiSlotRankRequest, {"actions": actions("a"), "slots": [
        {"id": "s1", "baselineAction": "a"}, {"id": "s2", "baselineAction": "a"}]})
    assert "MultiSlotsCountOutOfBounds" in {d["code"] for d in more.details}


# --- configuration --------------------------------------------------------------------------------

def test_defaults_are_personalizers():
    s = conf.defaults(now=NOW)
    assert conf.service_json(s) == {
        "rewardWaitTime": "PT10M", "defaultReward": 0.0, "rewardAggregation": "earliest",
        "explorationPercentage": 0.2, "modelExportFrequency": "PT5M", "logMirrorEnabled": False,
        "logRetentionDays": -1, "modelRetrainDays": 0, "lastConfigurationEditDate": "2024-05-01T12:00:00Z",
        "learningMode": "Online", "isAutoOptimizationEnabled": False}
    assert conf.policy_json(s)["arguments"] == conf.DEFAULT_POLICY_ARGUMENTS
    assert s.exploration() == Exploration(epsilon=0.2)
    space = s.space()
    assert (space.bits, space.interactions, space.derived) == (18, (("*", "*"),), False)
    assert s.fit().c == 0.1


def test_defaults_can_start_from_the_deployments_learning_settings():
    class Learning:
        exploration_policy, exploration_percentage, reward_wait_seconds = "softmax", 10.0, 30.0
        default_reward, reward_aggregation, apprentice_mode = -0.5, "sum", True
    s = conf.defaults(Learning(), now=NOW)
    assert (s.exploration_percentage, s.reward_wait_seconds, s.default_reward, s.reward_aggregation,
            s.learning_mode) == (0.1, 30.0, -0.5, "sum", "Apprentice")
    assert s.exploration().policy == SOFTMAX and "--epsilon 0.1" in s.policy_arguments


def test_settings_round_trip_through_json():
    s = conf.apply_policy(conf.defaults(now=NOW), body({"name": "mine", "arguments":
                                                        "--cb_explore_adf --epsilon 0.3 -b 20 --softmax"}), NOW)
    stored = json.loads(json.dumps(s.to_dict()))
    assert conf.LoopSettings.from_dict(stored) == s
    with pytest.raises(ValueError):
        conf.LoopSettings.from_dict({**stored, "exploration_percentage": 3})


@pytest.mark.parametrize("seconds, text", [(600, "PT10M"), (86400, "P1D"), (0.5, "PT0.5S"), (93784.25, "P1DT2H3M4.25S"),
                                           (0, "PT0S")])
def test_durations_are_iso_8601(seconds, text):
    assert conf.iso_duration(seconds) == text


def _service(s, **changes):
    return body({**conf.service_json(s), **changes})


def test_updating_the_service_configuration():
    s = conf.defaults(now=NOW)
    later = datetime(2024, 6, 1, tzinfo=timezone.utc)
    updated = conf.apply_service(s, _service(s, rewardWaitTime="PT30S", modelExportFrequency="P1D",
                                             defaultReward=-1, rewardAggregation="sum", logRetentionDays=7), later)
    assert (updated.reward_wait_seconds, updated.model_export_seconds, updated.default_reward,
            updated.reward_aggregation, updated.log_retention_days, updated.last_edit) == \
        (30.0, 86400.0, -1.0, "sum", 7, later)
    assert conf.service_json(updated)["modelExportFrequency"] == "P1D"


@pytest.mark.parametrize("changes, target", [
    ({"rewardWaitTime": "PT0.5S"}, "rewardWaitTime"),
    ({"rewardWaitTime": "P3D"}, "rewardWaitTime"),
    ({"modelExportFrequency": "PT0S"}, "modelExportFrequency"),
    ({"defaultReward": 2}, "defaultReward"),
    ({"explorationPercentage": 20}, "explorationPercentage"),
    ({"rewardAggregation": "average"}, "rewardAggregation"),
    ({"learningMode": "Offline"}, "learningMode"),
    ({"logRetentionDays": 1, "rewardWaitTime": "P1D"}, "logRetentionDays"),
    ({"logMirrorEnabled": True, "logMirrorSasUri": "https://x/c?sig=1"}, "logMirrorEnabled"),
    ({"rewardWaitTime": 600}, "rewardWaitTime"),
])
def test_bad_service_configuration_values_are_400_naming_the_field(changes, target):
    s = conf.defaults(now=NOW)
    with pytest.raises(errors.PersonalizerError) as caught:
        conf.apply_service(s, _service(s, **changes), NOW)
    assert caught.value.status == 400 and caught.value.inner_code == "InvalidServiceConfiguration"
    assert target in [d.get("target") for d in caught.value.details]


def test_log_mirroring_is_refused_as_unsupported():
    s = conf.defaults(now=NOW)
    with pytest.raises(errors.PersonalizerError) as caught:
        conf.apply_service(s, _service(s, logMirrorEnabled=True), NOW)
    assert "not supported" in caught.value.message


def test_changing_learning_mode_with_reward_settings_is_refused_as_personalizer_does():
    s = conf.defaults(now=NOW)
    with pytest.raises(errors.PersonalizerError) as caught:
        conf.apply_service(s, _service(s, learningMode="Apprentice", defaultReward=0.5), NOW)
    assert caught.value.inner_code == "InvalidLearningModeServiceConfiguration"
    assert conf.apply_service(s, _service(s, learningMode="apprentice"), NOW).learning_mode == "Apprentice"


def test_exploration_percentage_and_epsilon_are_one_setting():
    s = conf.defaults(now=NOW)
    more = conf.apply_service(s, _service(s, explorationPercentage=0.5), NOW)
    assert "--epsilon 0.5" in conf.policy_json(more)["arguments"] and more.exploration().epsilon == 0.5
    policy = conf.apply_policy(more, body({"name": "p", "arguments": "--cb_explore_adf --epsilon=0.05 -q ::"}), NOW)
    assert conf.service_json(policy)["explorationPercentage"] == 0.05 and policy.exploration().epsilon == 0.05
    kept = conf.apply_policy(more, body({"name": "p", "arguments": "--cb_explore_adf -q ::"}), NOW)
    assert kept.exploration_percentage == 0.5 and kept.policy_arguments.endswith("--epsilon 0.5")
    reset = conf.reset_policy(policy, NOW)
    assert reset.policy_name == conf.DEFAULT_POLICY_NAME and "--epsilon 0.05" in reset.policy_arguments


def test_policy_flags_set_bits_interactions_softmax_and_regularization():
    s = conf.apply_policy(conf.defaults(now=NOW), body({"name": "p", "arguments":
                          "--cb_explore_adf --quiet -b 20 --softmax --lambda -10 --l2 0.5 --power_t 0 "
                          "-l 0.001 --cb_type mtr --dsjson"}), NOW)
    assert s.space().bits == 20 and s.space().interactions == ()
    assert s.exploration() == Exploration(policy=SOFTMAX, epsilon=0.2, softmax_lambda=10.0)
    assert s.fit().c == 2.0
    with_pairs = conf.apply_policy(s, body({"name": "p", "arguments": "--cb_explore_adf -q:: -b18"}), NOW)
    assert with_pairs.space().interactions == (("*", "*"),) and with_pairs.space().bits == 18


@pytest.mark.parametrize("arguments, code, words", [
    ("--cb_explore_adf --frobnicate", "UnknownPolicyFlag", "--frobnicate"),
    ("--cb_explore_adf -q UA", "UnsupportedInteractions", "-q ::"),
    ("--cb_explore_adf --bag 5", "UnsupportedPolicyFlag", "epsilon-greedy"),
    ("--cb_explore_adf -b 30", "InvalidPolicyConfiguration", "8 to 26"),
    ("--cb_explore_adf --epsilon 1.5", "InvalidPolicyConfiguration", "0 to 1"),
    ("--epsilon 0.2", "MissingLearningPolicyAlgorithm", "--cb_explore_adf"),
])
def test_bad_policies_are_400_naming_the_flag(arguments, code, words):
    with pytest.raises(errors.PersonalizerError) as caught:
        conf.apply_policy(conf.defaults(now=NOW), body({"name": "p", "arguments": arguments}), NOW)
    assert caught.value.status == 400 and caught.value.inner_code == "InvalidPolicyConfiguration"
    assert caught.value.details[0]["code"] == code and words in caught.value.message


def test_a_policy_body_without_arguments_is_refused():
    error = refused(PolicyContract, {"name": "p"})
    assert error.inner_code == "InvalidPolicyContract" and error.details[0]["target"] == "arguments"
