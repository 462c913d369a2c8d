"""bench/movielens.py's pure pieces: the wheel loader, the two splitters, Recommenders' metrics, offerloop's
top-k lists; and bench/__main__.py running a benchmark that needs no stack without starting one."""
from __future__ import annotations

import hashlib
import json
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench import movielens

INTER_TEXT = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
              "196\t242\t3\t881250949\n"
              "186\t302\t3\t891717742\n"
              "22\t377\t1\t878887116\n")


def wheel_with(tmp_path: Path, text: str = INTER_TEXT, member: str = movielens.INTER) -> tuple[Path, str]:
    path = tmp_path / "recbole-like.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
        archive.writestr(member, text)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_loader_reads_recboles_inter_file_from_the_wheel(tmp_path):
    path, digest = wheel_with(tmp_path)

    data, inter_sha256 = movielens.read_inter(path, expected=digest)

    assert data.users.tolist() == [196, 186, 22]
    assert data.items.tolist() == [242, 302, 377]
    assert data.ratings.tolist() == [3.0, 3.0, 1.0]
    assert data.times.tolist() == [881250949.0, 891717742.0, 878887116.0]
    assert inter_sha256 == hashlib.sha256(INTER_TEXT.encode()).hexdigest()


def test_a_wheel_with_another_checksum_is_refused(tmp_path):
    path, _ = wheel_with(tmp_path)

    with pytest.raises(movielens.DataError, match="refusing"):
        movielens.read_inter(path)  # the recorded recbole 1.2.1 checksum


def test_a_wheel_without_the_file_or_with_another_header_is_refused(tmp_path):
    path, digest = wheel_with(tmp_path, member="recbole/other.inter")
    with pytest.raises(movielens.DataError, match="has no"):
        movielens.read_inter(path, expected=digest)

    other = tmp_path / "other"
    other.mkdir()
    path, digest = wheel_with(other, text="user\titem\n1\t2\n")
    with pytest.raises(movielens.DataError, match="header"):
        movielens.read_inter(path, expected=digest)


def test_the_cache_lives_under_the_state_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("OFFERLOOP_STATE_DIR", str(tmp_path))
    assert movielens.cache_dir() == tmp_path / "cache" / "movielens"


def many_users(seed: int = 3) -> np.ndarray:
    """Users with 1 to 23 ratings each (counts whose 75% is a half, like 2, 6, 10, among them), shuffled."""
    users = np.repeat(np.arange(1, 24), np.arange(1, 24))
    return np.random.default_rng(seed).permutation(users)


@pytest.mark.parametrize("splitter", [movielens.stratified_split, movielens.published_split])
def test_each_user_keeps_round_three_quarters_of_their_ratings_for_training(splitter):
    users = many_users()

    train, test = splitter(users, 0.75, 42)

    assert sorted(np.r_[train, test].tolist()) == list(range(len(users)))  # every row once
    for user in np.unique(users):
        count = int((users == user).sum())
        assert int((users[train] == user).sum()) == round(0.75 * count)  # half to even: 2 -> 2, 6 -> 4, 10 -> 8
    assert [int((users[train] == u).sum()) for u in (2, 6, 10)] == [2, 4, 8]
    # rows come by user, as Recommenders' splitters return them
    assert (np.diff(users[train]) >= 0).all() and (np.diff(users[test]) >= 0).all()


@pytest.mark.parametrize("splitter", [movielens.stratified_split, movielens.published_split])
def test_the_split_is_fixed_by_its_seed(splitter):
    users = many_users()

    first, again, other = splitter(users, 0.75, 42), splitter(users, 0.75, 42), splitter(users, 0.75, 7)

    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert set(first[1].tolist()) != set(other[1].tolist())


def test_the_current_split_orders_each_users_rows_by_a_draw_per_row():
    users = np.array([5, 5, 5, 5])  # one user: the rows in the order of RandomState(42).rand(4)
    draw = np.random.RandomState(42).rand(4)

    train, test = movielens.stratified_split(users, 0.75, 42)

    assert np.r_[train, test].tolist() == np.argsort(draw).tolist()
    assert len(train) == 3


def test_the_metrics_are_recommenders_definitions_on_a_hand_made_case():
    truth = {1: {10, 20, 30, 40}, 2: {50}, 3: {60}}  # user 3 gets no list; user 4 has no test items
    lists = {1: [10, 99, 30], 2: [98, 97, 96], 4: [60]}

    got = movielens.ranking_metrics(truth, lists, k=3)

    # users with both: 1 and 2; user 1 hits at ranks 1 and 3 of 4 relevant, user 2 misses
    assert got["precision_at_3"] == pytest.approx((2 / 3 + 0) / 2)
    assert got["recall_at_3"] == pytest.approx((2 / 4 + 0) / 2)
    assert got["map"] == pytest.approx((1 / 1 + 2 / 3) / 4 / 2)
    assert got["map_at_3"] == pytest.approx((1 / 1 + 2 / 3) / 3 / 2)
    dcg = 1 / np.log(2) + 1 / np.log(4)
    ideal = 1 / np.log(2) + 1 / np.log(3) + 1 / np.log(4)
    assert got["ndcg_at_3"] == pytest.approx(dcg / ideal / 3)  # over every user with test items


def test_a_perfect_list_scores_one_and_only_the_first_k_count():
    truth = {1: {1, 2}}
    assert movielens.ranking_metrics(truth, {1: [1, 2]}, k=2) == pytest.approx(
        {"precision_at_2": 1.0, "recall_at_2": 1.0, "ndcg_at_2": 1.0, "map": 1.0, "map_at_2": 1.0})
    assert movielens.ranking_metrics(truth, {1: [7, 8, 1, 2]}, k=2)["precision_at_2"] == 0.0


def test_scored_rows_become_lists_highest_first_ties_in_their_order():
    lists = movielens.ranked([1, 2, 1, 1], [5, 9, 6, 7], [0.5, 1.0, 0.9, 0.5])
    assert lists == {1: [6, 5, 7], 2: [9]}


def ratings(rows: list[tuple[int, int]]) -> movielens.Ratings:
    users, items = zip(*rows)
    return movielens.Ratings(np.array(users), np.array(items), np.full(len(rows), 4.0),
                             np.arange(len(rows), dtype=np.float64) + 1e9)


def test_offerloop_recommends_the_item_seen_with_the_users_items():
    # users 1-3 rated movies 100 and 200 together, users 4-5 rated 300 and 400; user 6 has only 100
    train = ratings([(1, 100), (1, 200), (2, 100), (2, 200), (3, 100), (3, 200), (4, 300), (4, 400),
                     (5, 300), (5, 400), (6, 100)])

    model = movielens.fit(train, movielens.Setting(popularity_penalty=0.5, half_life_days=30.0, weight="rating"))
    lists = movielens.recommend(model, [6, 1, 99], k=2)

    assert lists[6][0] == 200
    assert 100 not in lists[6]  # seen items are left out
    assert 99 not in lists  # an unknown user gets no list


def test_the_grid_picks_the_best_validation_ndcg():
    scored = [{"popularity_penalty": 0.3, "half_life_days": 30.0, "weight": "one", "ndcg_at_10": 0.2},
              {"popularity_penalty": 0.5, "half_life_days": 0.0, "weight": "rating", "ndcg_at_10": 0.3},
              {"popularity_penalty": 0.7, "half_life_days": 90.0, "weight": "one", "ndcg_at_10": 0.3}]
    assert movielens.best(scored) == movielens.Setting(0.5, 0.0, "rating")
    assert len(movielens.settings()) == np.prod([len(v) for v in movielens.GRID.values()])


def test_a_benchmark_that_needs_no_stack_runs_without_one(monkeypatch, tmp_path):
    from bench import __main__ as harness

    module = types.ModuleType("bench.stackless")
    module.NEEDS_STACK = False
    module.run = lambda stack: {"stack_given": str(stack), "precision": 0.3456}
    monkeypatch.setitem(sys.modules, "bench.stackless", module)
    monkeypatch.setattr(harness, "BENCHMARKS", ("stackless",))
    monkeypatch.setattr(harness, "RESULTS", tmp_path)

    def no_stack(*args, **kwargs):
        raise AssertionError("a stack was started")

    monkeypatch.setattr(harness, "Stack", no_stack)

    result = CliRunner().invoke(harness.main, ["stackless"])

    assert result.exit_code == 0, result.output
    assert "0.3456" in result.output
    written = json.loads((tmp_path / "stackless.json").read_text())
    assert written["figures"] == {"stack_given": "None", "precision": 0.3456}


def test_without_the_recommenders_virtualenv_the_comparison_says_why(monkeypatch, tmp_path):
    failing = tmp_path / "venv.sh"
    failing.write_text("echo 'pip: no network' >&2\nexit 3\n")
    monkeypatch.setattr(movielens, "SAR_SCRIPT", failing)
    data = ratings([(1, 100), (1, 200)])

    got = movielens.recommenders_sar(data, [])

    assert "exit 3" in got["unavailable"] and "pip: no network" in got["unavailable"]
    monkeypatch.setenv("BENCH_MOVIELENS_RECOMMENDERS", "0")
    assert "left out" in movielens.recommenders_sar(data, [])["unavailable"]
