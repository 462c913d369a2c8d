"""The Personalizer-compatible API through the official Python client (azure-ai-personalizer) on the
local stack: rank, reward, multi-slot, deferred activation, the service configuration and policy,
errors as the client raises them, and the API key.

The client is pointed at `http://127.0.0.1:<port>/api` and appends /personalizer/..., as it would
to an Azure endpoint. Deferred activation is also checked where it matters, in the archive the
loop retrains from: the activated events are archived, and the retrain's join of decisions with
rewards learns from an activated deferred decision and leaves out one never activated.
"""
from __future__ import annotations

import math
import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from azure.ai.personalizer import PersonalizerAdministrationClient, PersonalizerClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from shared import archive, events as ev, parquet_archive, settings
from shared.learning import dataset
from tests.waiting import wait_for

from .conftest import restarted_host

pytestmark = pytest.mark.timeout(300)

KEY = "e2e-personalizer-key"


def _status(pipeline_response, deserialized, headers):
    """The client's `cls` hook: the HTTP status and the body, instead of the body alone."""
    return pipeline_response.http_response.status_code, deserialized


@pytest.fixture(scope="module")
def client(api) -> PersonalizerClient:
    with PersonalizerClient(api, AzureKeyCredential("any key: the suite's host checks none")) as personalizer:
        yield personalizer


@pytest.fixture(scope="module")
def admin(api) -> PersonalizerAdministrationClient:
    with PersonalizerAdministrationClient(api, AzureKeyCredential("any key")) as administration:
        yield administration


@pytest.fixture(scope="module")
def exploring(admin) -> float:
    """The loop at a known exploration (20%, Personalizer's default) for this module; then as it was."""
    before = admin.get_service_configuration()
    fields = ("rewardWaitTime", "defaultReward", "rewardAggregation", "explorationPercentage",
              "modelExportFrequency", "logRetentionDays")
    admin.update_service_configuration({**{k: before[k] for k in fields}, "explorationPercentage": 0.2})
    yield 0.2
    admin.update_service_configuration({k: before[k] for k in fields})


def context(rng: random.Random) -> list[dict]:
    """Context features as Personalizer clients send them: a list of namespaced objects."""
    return [{"user": {"type": rng.choice(["student", "professional", "retiree"]), "visits": rng.randrange(1, 40)}},
            {"time": {"timeOfDay": rng.choice(["morning", "afternoon", "evening", "night"])}},
            {"device": {"kind": rng.choice(["mobile", "desktop"]), "os": rng.choice(["ios", "android", "windows"])}}]


def actions(n: int) -> list[dict]:
    return [{"id": f"article-{i}", "features": [{"topic": {"category": ["news", "sports", "tech", "food"][i % 4]}},
                                                {"editorial": {"length": 200 + 50 * i, "_internalId": i}}]}
            for i in range(n)]


def assert_ranking(response: dict, ids: list[str], excluded: set[str]) -> None:
    ranking = response["ranking"]
    assert sorted(r["id"] for r in ranking) == sorted(ids)  # every action, once
    assert response["rewardActionId"] in set(ids) - excluded
    assert response["eventId"]
    assert math.isclose(sum(r["probability"] for r in ranking), 1.0, abs_tol=1e-9)
    assert all(r["probability"] == 0 for r in ranking if r["id"] in excluded)
    assert all(r["probability"] > 0 for r in ranking if r["id"] not in excluded)  # epsilon explores every one


def test_rank_reward_and_rank_again(client, exploring):
    rng = random.Random(1)
    listed = actions(6)
    ids = [a["id"] for a in listed]
    excluded = {"article-2", "article-4"}
    status, first = client.rank({"contextFeatures": context(rng), "actions": listed,
                                 "excludedActions": sorted(excluded)}, cls=_status)
    assert status == 201
    assert_ranking(first, ids, excluded)
    assert first["ranking"][0]["id"] == first["rewardActionId"]

    status, _ = client.reward(first["eventId"], {"value": 1.0}, cls=_status)
    assert status == 204

    event_id = f"e2e-{uuid.uuid4()}"
    second = client.rank({"contextFeatures": context(rng), "actions": listed, "eventId": event_id})
    assert second["eventId"] == event_id and second["eventId"] != first["eventId"]
    assert_ranking(second, ids, set())
    assert client.reward(event_id, {"value": 0.5}) is None
    # Exploration is seeded by the eventId, as in Personalizer: the same event ranks the same.
    again = client.rank({"contextFeatures": context(random.Random(1)), "actions": listed, "eventId": event_id})
    assert again == client.rank({"contextFeatures": context(random.Random(1)), "actions": listed,
                                 "eventId": event_id})


def test_multi_slot_rank_honours_each_slots_exclusions_and_fills_no_action_twice(client, exploring):
    rng = random.Random(2)
    listed = actions(8)
    ids = {a["id"] for a in listed}
    slots = [{"id": "hero", "baselineAction": "article-0", "features": [{"size": {"kind": "large"}}]},
             {"id": "sidebar", "baselineAction": "article-1", "features": [{"size": {"kind": "small"}}],
              "excludedActions": ["article-0", "article-2", "article-3", "article-4", "article-5"]},
             {"id": "footer", "baselineAction": "article-6", "excludedActions": ["article-7"]}]
    chosen = set()
    for _ in range(30):  # 20% exploration: slots get other actions than their baseline too
        status, response = client.rank_multi_slot({"contextFeatures": context(rng), "actions": listed,
                                                   "slots": slots}, cls=_status)
        assert status == 201 and response["eventId"]
        assert [s["id"] for s in response["slots"]] == ["hero", "sidebar", "footer"]
        picked = [s["rewardActionId"] for s in response["slots"]]
        assert len(set(picked)) == 3 and set(picked) <= ids
        for slot, action in zip(slots, picked):
            assert action not in slot.get("excludedActions", [])
        assert picked[1] in {"article-1", "article-6", "article-7"} - {picked[0]}
        chosen.update(picked)
        status, _ = client.reward_multi_slot(response["eventId"], {"reward": [
            {"slotId": "hero", "value": 1.0}, {"slotId": "sidebar", "value": 0.0}]}, cls=_status)
        assert status == 204
    assert len(chosen) > 3  # not only the baselines


def _archived(store: archive.BlobArchive, decision_ids: set[str]) -> dict[str, dict[str, dict]]:
    """{event type: {decisionId: event}} of the personalizer events of these decisions in the raw archive."""
    found: dict[str, dict[str, dict]] = {}
    for _, records in store.read_all(store.list_batches()):
        for record in records:
            event = record["event"]
            decision = (event.get("data") or {}).get("decisionId")
            if event["type"] in ev.PERSONALIZER_TYPES and decision in decision_ids:
                found.setdefault(event["type"], {})[decision] = event
    return found


def test_deferred_activation_is_archived_and_only_activated_decisions_are_learned_from(client, stack):
    rng = random.Random(3)
    listed = actions(5)
    single = client.rank({"contextFeatures": context(rng), "actions": listed, "deferActivation": True})
    never = client.rank({"contextFeatures": context(rng), "actions": listed, "deferActivation": True})
    eager = client.rank({"contextFeatures": context(rng), "actions": listed})
    multi = client.rank_multi_slot({"contextFeatures": context(rng), "actions": listed, "deferActivation": True,
                                    "slots": [{"id": "top", "baselineAction": "article-0"},
                                              {"id": "bottom", "baselineAction": "article-1"}]})
    status, _ = client.activate(single["eventId"], cls=_status)
    assert status == 204
    status, _ = client.activate_multi_slot(multi["eventId"], cls=_status)
    assert status == 204
    for response in (single, never, eager):
        client.reward(response["eventId"], {"value": 1.0})
    client.reward_multi_slot(multi["eventId"], {"reward": [{"slotId": "top", "value": 1.0}]})
    ids = {r["eventId"] for r in (single, never, eager, multi)}

    # the raw archive (Blob storage, as ingest wrote it): the decisions, their rewards, two activations
    config = settings.load(stack.settings)
    store = archive.from_settings(config)
    found = wait_for(lambda: (lambda f: f if len(f.get(ev.PERSONALIZER_RANKED, {})) == 4
                              and len(f.get(ev.PERSONALIZER_REWARDED, {})) == 4
                              and len(f.get(ev.PERSONALIZER_ACTIVATED, {})) == 2 else None)(_archived(store, ids)),
                     60, "the personalizer events in the archive", interval=0.5)
    assert set(found[ev.PERSONALIZER_ACTIVATED]) == {single["eventId"], multi["eventId"]}
    ranked = found[ev.PERSONALIZER_RANKED]
    assert [ranked[r["eventId"]]["data"]["deferred"] for r in (single, never, eager, multi)] == [
        True, True, False, True]
    assert ranked[single["eventId"]]["data"]["chosen"][0]["offerId"] == single["rewardActionId"]
    assert {c["slotId"] for c in ranked[multi["eventId"]]["data"]["chosen"]} == {"top", "bottom"}

    # what a retrain learns from: the join the retrain job makes of the archive's decisions and rewards
    now = datetime.now(timezone.utc)
    events, decisions = parquet_archive.from_settings(config).load(now - timedelta(hours=1), now + timedelta(minutes=5))
    decisions = dataset.for_loop(dataset.dedupe(decisions), dataset.PERSONALIZER)
    learned = dataset.examples(decisions, dataset.reward_events(events), dataset.RewardRules(wait_seconds=60),
                               now + timedelta(minutes=2), dataset.activations(events))
    rows = {d: r for d, r in zip(learned.decision_ids, learned.rewards) if d in ids}
    assert set(rows) == {single["eventId"], eager["eventId"], multi["eventId"]}
    assert rows[single["eventId"]] == 1.0 and rows[eager["eventId"]] == 1.0


def test_the_service_configuration_and_the_policy_round_trip(admin):
    before = admin.get_service_configuration()
    wanted = {"rewardWaitTime": "PT5S", "defaultReward": -0.5, "rewardAggregation": "sum",
              "explorationPercentage": 0.05, "modelExportFrequency": "PT10S", "logRetentionDays": -1}
    try:
        status, updated = admin.update_service_configuration(wanted, cls=_status)
        assert status == 200
        stored = admin.get_service_configuration()
        for response in (updated, stored):
            assert {k: response[k] for k in wanted} == wanted
        assert stored["lastConfigurationEditDate"] > before["lastConfigurationEditDate"]

        policy = admin.get_policy()
        assert "--epsilon 0.05" in policy["arguments"]  # the exploration percentage is the policy's --epsilon
        mine = {"name": "e2e policy", "arguments": "--cb_explore_adf --epsilon 0.1 --power_t 0 -l 0.001 -q :: --l2 1"}
        assert admin.update_policy(mine) == mine
        assert admin.get_policy() == mine
        assert admin.get_service_configuration()["explorationPercentage"] == 0.1
        reset = admin.reset_policy()
        assert reset == admin.get_policy() and reset["name"] != mine["name"]
        assert "--cb_explore_adf" in reset["arguments"] and "-q ::" in reset["arguments"]
    finally:
        admin.update_service_configuration({k: before[k] for k in wanted})
    assert admin.get_service_configuration()["explorationPercentage"] == before["explorationPercentage"]


@pytest.mark.parametrize("call, field, text", [
    (lambda c: c.rank({"actions": actions(51)}), "actions", "between 1 and 50"),
    (lambda c: c.rank({"actions": [{"features": [{"a": {"b": 1}}]}]}), "actions[0].id", "required"),
    (lambda c: c.reward("some-event", {"value": "x"}), "value", "number"),
    (lambda c: c.reward("some-event", {"value": 2}), "value", "between -1 and 1"),
    (lambda c: c.rank_multi_slot({"actions": actions(3), "slots": [
        {"id": "s", "baselineAction": "no-such-action"}]}), "slots[0].baselineAction", "BaselineAction"),
])
def test_a_bad_request_is_an_http_response_error_with_personalizers_code_and_message(client, call, field, text):
    with pytest.raises(HttpResponseError) as raised:
        call(client)
    error = raised.value
    assert error.status_code == 400
    assert error.error.code == "BadRequest"
    # Personalizer's specific code is in "innerError" (its casing; azure-core reads "innererror")
    assert error.response.json()["error"]["innerError"]["code"] in ("InvalidRankRequest", "InvalidRewardRequest")
    assert text in error.error.message and field in error.error.message
    assert any(d.target == field for d in error.error.details)
    assert error.error.message in str(error)


@pytest.fixture
def keyed_api(stack, api):
    """The host restarted with PERSONALIZER_API_KEY set; afterwards the suite's host again."""
    with restarted_host(stack, {"PERSONALIZER_API_KEY": KEY}):
        yield api


def test_with_an_api_key_set_a_wrong_key_is_401_and_the_right_one_works(keyed_api):
    request = {"contextFeatures": context(random.Random(4)), "actions": actions(3)}
    for wrong in ("not-the-key", KEY + "x"):
        with PersonalizerClient(keyed_api, AzureKeyCredential(wrong)) as personalizer:
            with pytest.raises(ClientAuthenticationError) as raised:
                personalizer.rank(request)
        assert raised.value.status_code == 401
        assert raised.value.error.code == "401" and "subscription key" in raised.value.error.message
    with PersonalizerAdministrationClient(keyed_api, AzureKeyCredential("wrong")) as administration:
        with pytest.raises(ClientAuthenticationError):
            administration.get_policy()

    with PersonalizerClient(keyed_api, AzureKeyCredential(KEY)) as personalizer:
        response = personalizer.rank(request)
        assert response["rewardActionId"] in {a["id"] for a in request["actions"]}
        assert personalizer.reward(response["eventId"], {"value": 1}) is None
    with PersonalizerAdministrationClient(keyed_api, AzureKeyCredential(KEY)) as administration:
        assert "--cb_explore_adf" in administration.get_policy()["arguments"]
