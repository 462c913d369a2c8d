"""bench/learning.py's pure pieces: Vowpal Wabbit's example text, the lift fraction, the tiled tables."""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from bench import learning
from shared.learning import dataset
from shared.learning.features import flatten

CONTEXT = {"user": {"segment": "young adult", "device": "mobile"}, "history": {"views": 3},
           "brands": {"a|b": 0.5}, "diagnostics": {"popularFrom": "cache"}}
ACTIONS = [{"offer": {"kind": "bundle", "category": "x:y"}, "baseline": {"score": 0.25},
            "history": {"shown": 2, "clicked": 1}},
           {"offer": {"kind": "free_shipping"}, "baseline": {"score": 0.5}}]


def test_names_are_escaped_so_vw_reads_each_feature_whole():
    assert learning.escape("young adult") == "young%20adult"
    assert learning.escape("a|b:c%\td") == "a%7Cb%3Ac%25%09d"
    assert learning.feature("segment=young adult", 1.0) == "segment=young%20adult"
    assert learning.feature("price", 43.25) == "price:43.25"


def test_each_side_and_namespace_gets_its_own_first_letter():
    names = learning.Namespaces()
    lines = learning.example(flatten(CONTEXT), [flatten(a) for a in ACTIONS], names)
    shared, first, second = lines

    assert shared.startswith("shared |")
    assert "diagnostics" not in shared and "popularFrom" not in shared
    assert "segment=young%20adult" in shared and "views:3" in shared and "a%7Cb:0.5" in shared
    assert "category=x%3Ay" in first and "score:0.25" in first
    spaces = [token[1:] for text in lines for token in text.split() if token.startswith("|")]
    by_letter: dict[str, set[str]] = {}
    for name in spaces:
        by_letter.setdefault(name[0], set()).add(name[1:])
    assert all(len(found) == 1 for found in by_letter.values()), by_letter
    # the context's history and the action's history are different namespaces
    assert len({n for n in spaces if n.endswith("history")}) == 2
    # the same namespace keeps its letter from one decision to the next
    assert learning.example(flatten(CONTEXT), [flatten(ACTIONS[0])], names)[1] == first


def test_the_label_goes_on_the_shown_action_only():
    lines = ["shared |Auser a", "|Boffer k=1", "|Boffer k=2"]
    out = learning.labelled(lines, 1, -1.0, 0.8)

    assert out == ["shared |Auser a", "|Boffer k=1", "0:-1:0.8 |Boffer k=2"]
    assert lines[2] == "|Boffer k=2"


def test_vw_learns_the_clicked_action_from_the_text():
    vowpalwabbit = pytest.importorskip("vowpalwabbit")
    workspace = vowpalwabbit.Workspace("--cb_explore_adf --epsilon 0.2 -l 0.5 -q :: --quiet --random_seed 7")
    lines = learning.example(flatten(CONTEXT), [flatten(a) for a in ACTIONS], learning.Namespaces())
    try:
        for _ in range(30):
            workspace.learn(learning.labelled(lines, 1, -1.0, 0.5))
            workspace.learn(learning.labelled(lines, 0, 0.0, 0.5))
        pmf = workspace.predict(lines)
    finally:
        workspace.finish()
    assert pmf[1] == pytest.approx(0.9, abs=1e-3) and pmf[0] == pytest.approx(0.1, abs=1e-3)


def test_draw_follows_the_pmf():
    rng = random.Random(1)
    draws = [learning.draw([0.1, 0.0, 0.9], rng) for _ in range(2000)]

    assert draws.count(1) == 0
    assert 0.85 < draws.count(2) / len(draws) < 0.95


def test_lift_is_zero_at_random_and_one_at_the_oracle():
    assert learning.lift(0.03, 0.03, 0.3) == 0
    assert learning.lift(0.3, 0.03, 0.3) == 1
    assert learning.lift(0.165, 0.03, 0.3) == pytest.approx(0.5)
    assert learning.lift(0.1, 0.2, 0.2) is None


def _shown(decision: str, at: datetime, user: str = "u1") -> dict:
    return {"id": decision, "type": "offerloop.offer.shown", "subject": user, "time": at.isoformat(),
            "data": {"decisionId": decision, "context": {}, "candidates": [{"offerId": "o1", "features": {}}],
                     "chosen": [{"offerId": "o1", "slot": 0, "probability": 1.0}], "modelVersion": "m",
                     "exploration": {"policy": "greedy"}}}


def _click(decision: str, at: datetime) -> dict:
    return {"id": f"c-{decision}", "type": "offerloop.offer.clicked", "subject": "u1", "time": at.isoformat(),
            "data": {"decisionId": decision, "offerId": "o1"}}


def test_tiles_are_shifted_copies_whose_rewards_follow_their_decisions(tmp_path):
    start = datetime(2026, 1, 5, tzinfo=timezone.utc)
    records = [_shown("d1", start), _click("d1", start + timedelta(seconds=10)),
               _shown("d2", start + timedelta(minutes=5)), _shown("d3", start + timedelta(hours=2))]
    events, decisions = learning.base_tables(*dataset.tables(records), count=2)

    assert decisions.column("decisionId").to_pylist() == ["d1", "d2"]
    assert "d3" not in events.column("id").to_pylist()  # after the last kept decision's reward wait
    written = learning.write_tiled(events, decisions, 5, tmp_path)
    assert written["decisions"] == 5 and written["copies"] == 3
    read_events, read_decisions = learning.read_for_training(tmp_path, full=False)
    ids = read_decisions.column("decisionId").to_pylist()
    assert ids == ["d1", "d2", "d1~1", "d2~1", "d1~2"]
    times = read_decisions.column("time").to_pylist()
    assert times == sorted(times) and times[2] - times[0] == times[4] - times[2] > timedelta(hours=1)
    clicked = {d for t, d in zip(read_events.column("type").to_pylist(), read_events.column("decisionId").to_pylist())
               if t == "offerloop.offer.clicked"}
    assert clicked == {"d1", "d1~1", "d1~2"}
    # the training columns only; train asks for the candidates of the decisions it scores
    assert read_decisions.column_names == list(dataset.TRAINING_COLUMNS)
    candidates_of = learning.candidates_reader(tmp_path / "decisions.parquet")
    def parsed(texts):
        return {d: json.loads(t) for d, t in texts.items()}

    assert parsed(candidates_of(["d2~1", "d1~2", "d9"], times[3])) == {"d2~1": [{"offerId": "o1", "features": {}}],
                                                                         "d1~2": [{"offerId": "o1", "features": {}}]}
    assert parsed(candidates_of(["d1"], times[0])) == {"d1": [{"offerId": "o1", "features": {}}]}
    full = learning.read_for_training(tmp_path, full=True)[1]
    assert full.column("candidates").null_count == 0


def test_the_policy_after_the_run_is_valued_apart_from_the_run():
    from types import SimpleNamespace

    # four one-slot decisions in the run, then two served by the final policy
    decided = [learning.Decided([0.1], 0.1, [0.5], 0.2), learning.Decided([0.2], 0.1, [0.5], 0.3),
               learning.Decided([0.3], 0.1, [0.5], 0.4), learning.Decided([0.4], 0.1, [0.5], 0.5),
               learning.Decided([0.5], 0.1, [0.5], 0.46, final=True),
               learning.Decided([0.5], 0.2, [0.6], 0.6, final=True)]
    clicks = [0, 1, 0, 1, 1, 1]
    point = SimpleNamespace(impressions=4, ctr=0.5, expected=0.25, random=0.1, oracle=0.5)
    later = SimpleNamespace(impressions=6, ctr=1.0, expected=0.5, random=0.15, oracle=0.55)
    result = SimpleNamespace(sequence=[("u", "o", c) for c in clicks], curve=[point, later],
                             tally=SimpleNamespace(impressions=6))

    out = learning.figures(result, decided, last=2)
    assert out["impressions"] == 4 and out["clicks"] == 2 and len(out["curve"]) == 1
    assert out["last"]["impressions"] == 2 and out["last"]["greedy"] == pytest.approx(0.45)
    final = out["final"]
    assert (final["decisions"], final["impressions"], final["ctr"]) == (2, 2, 1.0)
    assert final["greedy"] == pytest.approx(0.53) and final["greedyRandom"] == pytest.approx(0.15)
    assert final["liftGreedy"] == pytest.approx((0.53 - 0.15) / (0.55 - 0.15))
    with pytest.raises(AssertionError):  # the final policy's decisions must come last
        learning.figures(result, decided[4:] + decided[:4], last=2)
