"""MovieLens 100k: offerloop's item-item affinity (shared.affinity) against Microsoft Recommenders' SAR.

The protocol of Recommenders' SAR quick start (examples/00_quick_start/sar_movielens.ipynb), whose
published figures are precision@10 0.330753, recall@10 0.176385, nDCG@10 0.382461 and MAP 0.110591:

  data     MovieLens 100k (943 users, 1,682 movies, 100,000 ratings of 1 to 5) as RecBole ships it
           in its wheel (recbole==1.2.1 on PyPI, recbole/dataset_example/ml-100k/ml-100k.inter: the
           GroupLens u.data rows, in the same order). The wheel is fetched once with `pip download`
           into OFFERLOOP_STATE_DIR/cache/movielens (default .local/cache/movielens) and refused
           unless its sha256 is WHEEL_SHA256. Nothing else is fetched.
  splits   python_stratified_split(ratio=0.75, seed=42): each user's first round(0.75 x count)
           ratings (half to even) in a random order for training, the rest for the test. Its
           random order changed with Recommenders 1.0, so there are two, both reimplemented here
           and both run:
           "current"   (`stratified_split`) Recommenders 1.2's: a uniform draw per row in file
                       order (numpy's legacy generator seeded 42), each user's rows ordered by it;
                       the issue's split, its figures are the top-level ones;
           "published" (`published_split`) reco_utils' (Recommenders before 1.0), which made the
                       published figures: each user's rows shuffled by a generator seeded 42 afresh.
  metrics  Recommenders' python_evaluation ranking metrics at k = 10 with binary relevance,
           reimplemented (`ranking_metrics`): precision and recall averaged over the users with
           both test items and recommendations, nDCG (natural-log discounts) over every test user,
           and MAP two ways: `map`, each user's sum of precision-at-hit divided by their number of
           test items (the published MAP; named map_at_k until 2023, as in the notebook), and
           `map_at_10`, divided by min(test items, 10) (Spark's MAP@k, Recommenders 1.2's map_at_k).

offerloop: `affinity.fit` on the training rows (the rating or 1 as each event's weight, the
ratings' timestamps as their times, decayed to the newest training rating), then each test user's
top 10 unseen items. Its popularity penalty, half-life and weight are chosen, for each split, on
validation splits of that split's training rows only (`stratified_split`, one a seed of
VALIDATION_SEEDS), by the mean nDCG@10 over them, among GRID; the chosen setting is fitted on all
the training rows and scored once on the test rows. The fit and recommend seconds are medians of REPEATS runs.

Recommenders: bench/recommenders_sar.py runs in a virtualenv of its own (.venv-recommenders,
made by bench/recommenders-venv.sh from bench/requirements-recommenders.txt) on our exact splits
(the rows are passed to it): it checks each split against Recommenders' own code, fits SAR with
the quick-start settings, and scores SAR's top-10 lists and offerloop's with python_evaluation;
SAR's lists are scored here too, so both reimplementations are checked against the original
(`metrics_equal_recommenders`), and SAR on the published split must give the published figures
(`published_figures_reproduced`). Without that virtualenv (no network, say) offerloop's figures
are still written and the JSON says why the comparison is missing.

The aims: aim_beat_published_* (offerloop on the current split against the published figures),
aim_beat_published_same_split_* (offerloop on the published figures' own split against them) and
aim_beat_recommenders_sar_* (offerloop against SAR on the current split, both scored by
Recommenders' python_evaluation).

Environment: BENCH_MOVIELENS_WHEEL (a local copy of the wheel to read instead; its checksum is
still checked), BENCH_MOVIELENS_RECOMMENDERS (1; 0: leave Recommenders out).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np
from tqdm import tqdm

from shared import affinity

NEEDS_STACK = False  # bench/__main__.py starts no local stack for this one

ROOT = Path(__file__).resolve().parent.parent
WHEEL_REQUIREMENT = "recbole==1.2.1"
WHEEL = "recbole-1.2.1-py3-none-any.whl"
WHEEL_SHA256 = "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"
INTER = "recbole/dataset_example/ml-100k/ml-100k.inter"
HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")

K = 10
RATIO = 0.75
SEED = 42  # the quick start's split
VALIDATION_SEEDS = (7, 8, 9, 10, 11)  # the validation splits of the training rows the grid is scored on
REPEATS = 5
GRID = {"popularity_penalty": (0.2, 0.3, 0.4, 0.5, 0.6, 0.7), "half_life_days": (30.0, 90.0, 0.0),
        "weight": ("rating", "one")}
PUBLISHED = {"precision_at_10": 0.330753, "recall_at_10": 0.176385, "ndcg_at_10": 0.382461, "map": 0.110591}
PUBLISHED_SOURCE = ("Microsoft Recommenders, examples/00_quick_start/sar_movielens.ipynb (2020, reco_utils): SAR "
                    "(jaccard, time_decay_coefficient=30, timedecay_formula=True, normalize=True) on MovieLens 100k "
                    "split by python_stratified_split(ratio=0.75, seed=42), top 10 with seen items removed")
MAP_DEFINITION = ("each user's sum of precision at the ranks of their hits divided by their number of test items "
                  "(Recommenders 1.2: python_evaluation.map; named map_at_k before 2023, as in the notebook)")
METRICS = (f"precision_at_{K}", f"recall_at_{K}", f"ndcg_at_{K}", "map", f"map_at_{K}")
AIMED = tuple(PUBLISHED)  # the four
AGREEMENT = 1e-9  # largest difference between our metric and Recommenders' that counts as equal
SAR_VENV = ROOT / ".venv-recommenders"
SAR_SCRIPT = ROOT / "bench" / "recommenders-venv.sh"
SAR_HELPER = ROOT / "bench" / "recommenders_sar.py"
SAR_TIMEOUT = 900.0


class DataError(RuntimeError):
    """The data set cannot be had or read as it should be."""


# -- the data ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ratings:
    """Rows of the ratings file, in its order."""

    users: np.ndarray  # int64 ids
    items: np.ndarray  # int64 ids
    ratings: np.ndarray  # float64
    times: np.ndarray  # float64 seconds since the epoch

    def __len__(self) -> int:
        return len(self.users)

    def take(self, rows: np.ndarray) -> "Ratings":
        return Ratings(self.users[rows], self.items[rows], self.ratings[rows], self.times[rows])


def sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def check_wheel(path: Path, expected: str = WHEEL_SHA256) -> None:
    """Raise DataError unless the file's sha256 is the one recorded here."""
    found = sha256(path)
    if found != expected:
        raise DataError(f"{path} has sha256 {found}, not the {expected} of {WHEEL_REQUIREMENT}'s {WHEEL}; "
                        "refusing to read MovieLens from it")


def parse_inter(text: str) -> Ratings:
    """RecBole's atomic .inter file: a tab-separated header of typed fields, then one rating a line."""
    lines = text.splitlines()
    if not lines or tuple(lines[0].split("\t")) != HEADER:
        raise DataError(f"unexpected header {lines[0][:200] if lines else ''!r}; expected {chr(9).join(HEADER)!r}")
    rows = [line.split("\t") for line in lines[1:] if line.strip()]
    bad = next((n for n, row in enumerate(rows, 2) if len(row) != len(HEADER)), None)
    if bad is not None:
        raise DataError(f"line {bad} has not {len(HEADER)} tab-separated fields")
    if not rows:
        return Ratings(*(np.zeros(0, dtype) for dtype in (np.int64, np.int64, np.float64, np.float64)))
    users, items, ratings, times = zip(*rows)
    try:
        return Ratings(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64),
                       np.array(ratings, dtype=np.float64), np.array(times, dtype=np.float64))
    except ValueError as error:
        raise DataError(f"unreadable ratings: {error}") from error


def read_inter(wheel: Path, expected: str = WHEEL_SHA256, member: str = INTER) -> tuple[Ratings, str]:
    """The ratings in the (checked) wheel and the sha256 of the .inter file itself."""
    check_wheel(wheel, expected)
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(member)
    except KeyError as error:
        raise DataError(f"{wheel} has no {member}") from error
    except zipfile.BadZipFile as error:
        raise DataError(f"{wheel} is not a zip archive: {error}") from error
    return parse_inter(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()


def cache_dir() -> Path:
    state = os.environ.get("OFFERLOOP_STATE_DIR", "") or ROOT / ".local"
    return Path(state) / "cache" / "movielens"


def fetch_wheel(cache: Optional[Path] = None, say: Callable[[str], None] = print) -> Path:
    """The recbole wheel: the cached copy, or `pip download` it once (checked either way)."""
    override = os.environ.get("BENCH_MOVIELENS_WHEEL", "")
    if override:
        return Path(override)
    cache = cache or cache_dir()
    target = cache / WHEEL
    if target.exists():
        if sha256(target) == WHEEL_SHA256:
            return target
        say(f"{target} does not match its recorded checksum; fetching it again")
        target.unlink()
    cache.mkdir(parents=True, exist_ok=True)
    say(f"downloading {WHEEL_REQUIREMENT}'s wheel from PyPI for the MovieLens 100k it ships (once, ~2 MB)…")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "-qq", "--disable-pip-version-check",
                               "--no-deps", "--only-binary=:all:", "-d", tmp, WHEEL_REQUIREMENT],
                              capture_output=True, text=True)
        fetched = Path(tmp) / WHEEL
        if done.returncode != 0 or not fetched.exists():
            raise DataError(f"pip download {WHEEL_REQUIREMENT} failed (exit {done.returncode}): "
                            f"{done.stderr.strip()[-1000:] or sorted(p.name for p in Path(tmp).iterdir())}")
        check_wheel(fetched)
        os.replace(fetched, target)
    return target


# -- the splits and the metrics (Recommenders' definitions) --------------------------------------
def stratified_split(users: np.ndarray, ratio: float = RATIO, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of (train, test) as Recommenders 1.2's python_stratified_split(ratio, seed) makes
    them, each in the order it returns its rows: by user, then by the random draw."""
    users = np.asarray(users)
    n = len(users)
    draw = np.random.RandomState(seed).rand(n)  # = np.random.seed(seed); np.random.rand(n)
    order = np.lexsort((draw, users))
    ordered = users[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if n else np.zeros(0, np.int64)
    counts = np.diff(np.r_[starts, n])
    rank = np.arange(n) - np.repeat(starts, counts) + 1
    train = rank <= np.repeat(np.round(ratio * counts), counts)  # numpy rounds half to even, as pandas does
    return order[train], order[~train]


def published_split(users: np.ndarray, ratio: float = RATIO, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers of (train, test) as the python_stratified_split of reco_utils (Recommenders before
    1.0, which made the published figures) made them: each user's rows, in file order, shuffled
    with a generator seeded `seed` afresh for every user (pandas' sample(frac=1, random_state=seed)),
    the first round(ratio x count) for training; by user, then in the shuffled order."""
    users = np.asarray(users)
    order = np.argsort(users, kind="stable")
    ordered = users[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]]) if len(users) else np.zeros(0, np.int64)
    train, test = [], []
    for start, stop in zip(starts.tolist(), np.r_[starts[1:], len(users)].tolist()):
        rows = order[start:stop][np.random.RandomState(seed).permutation(stop - start)]
        cut = round(ratio * (stop - start))
        train.append(rows[:cut])
        test.append(rows[cut:])
    empty = np.zeros(0, np.int64)
    return np.concatenate(train) if train else empty, np.concatenate(test) if test else empty


SPLITS: dict[str, tuple[str, Callable[..., tuple[np.ndarray, np.ndarray]]]] = {
    "current": ("Recommenders 1.2's python_stratified_split(ratio=0.75, seed=42)", stratified_split),
    "published": ("reco_utils' python_stratified_split(ratio=0.75, seed=42), the split of the published figures",
                  published_split)}


def truth_of(data: Ratings) -> dict[int, set[int]]:
    """Each user's test items."""
    truth: dict[int, set[int]] = {}
    for user, item in zip(data.users.tolist(), data.items.tolist()):
        truth.setdefault(user, set()).add(item)
    return truth


def ranked(users: Sequence[int], items: Sequence[int], scores: Sequence[float]) -> dict[int, list[int]]:
    """Scored (user, item) rows as each user's list, highest first (ties keep their order, as pandas'
    sort does in Recommenders' get_top_k_items)."""
    users, items, scores = np.asarray(users), np.asarray(items), np.asarray(scores, dtype=np.float64)
    lists: dict[int, list[int]] = {}
    for at in np.lexsort((-scores, users)):
        lists.setdefault(int(users[at]), []).append(int(items[at]))
    return lists


def ranking_metrics(truth: Mapping[int, set], recommended: Mapping[int, Sequence[int]], k: int = K) -> dict[str, float]:
    """precision@k, recall@k, nDCG@k (binary), MAP and MAP@k as Recommenders' python_evaluation has them."""
    common = [user for user in recommended if user in truth]
    precision = recall = ndcg = average = average_k = 0.0
    for user in common:
        relevant = truth[user]
        hits = [rank for rank, item in enumerate(list(recommended[user])[:k], 1) if item in relevant]
        if not hits:
            continue
        actual = len(relevant)
        precision += len(hits) / k
        recall += len(hits) / actual
        precision_at_hits = sum(n / rank for n, rank in enumerate(hits, 1))
        average += precision_at_hits / actual
        average_k += precision_at_hits / min(actual, k)
        ideal = sum(1 / np.log(1 + rank) for rank in range(1, min(actual, k) + 1))
        ndcg += sum(1 / np.log(1 + rank) for rank in hits) / ideal
    users = len(common) or 1
    return {f"precision_at_{k}": precision / users, f"recall_at_{k}": recall / users,
            f"ndcg_at_{k}": ndcg / (len(truth) or 1), "map": average / users, f"map_at_{k}": average_k / users}


# -- offerloop -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One point of the grid: shared.affinity's parameters and the event weight."""

    popularity_penalty: float
    half_life_days: float
    weight: str  # "rating": the rating; "one": every rating counts 1

    def params(self) -> affinity.AffinityParams:
        return affinity.AffinityParams(half_life_days=self.half_life_days, popularity_penalty=self.popularity_penalty)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        decay = f"half-life {self.half_life_days:g} days" if self.half_life_days else "no time decay"
        return f"popularity penalty {self.popularity_penalty:g}, {decay}, weight {self.weight}"


def settings(grid: Mapping[str, Sequence] = GRID) -> list[Setting]:
    return [Setting(*values) for values in itertools.product(grid["popularity_penalty"], grid["half_life_days"],
                                                              grid["weight"])]


def interactions(data: Ratings, weight: str) -> affinity.Interactions:
    weights = data.ratings if weight == "rating" else np.ones(len(data))
    return affinity.Interactions(data.users.astype(str), data.items.astype(str), weights, data.times)


def fit(train: Ratings, setting: Setting) -> affinity.Affinity:
    return affinity.fit(interactions(train, setting.weight), setting.params())


def recommend(model: affinity.Affinity, users: Iterable[int], k: int = K) -> dict[int, list[int]]:
    """Each known user's top k unseen items, best first."""
    index = model.user_index()
    known = [user for user in users if str(user) in index]
    top, scores = model.recommend([index[str(user)] for user in known], k, exclude_seen=True)
    labels = model.items
    return {user: [int(labels[j]) for j, score in zip(row, row_scores) if np.isfinite(score)]
            for user, row, row_scores in zip(known, top.tolist(), scores)}


def timed(function: Callable[[], Any], repeats: int = REPEATS) -> tuple[Any, float]:
    """The last result and the median seconds of `repeats` calls."""
    seconds, result = [], None
    for _ in range(repeats):
        began = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - began)
    return result, statistics.median(seconds)


def validate(train: Ratings, grid: Sequence[Setting], seeds: Sequence[int] = VALIDATION_SEEDS,
             progress: Optional[Callable[[], None]] = None) -> list[dict[str, Any]]:
    """Each setting's metrics averaged over validation splits of the training rows (one a seed: fitted
    on the split's training part, scored on its held-out part), with its nDCG@K on each."""
    by_seed: list[list[dict[str, float]]] = []
    for seed in seeds:
        fit_rows, held_rows = stratified_split(train.users, RATIO, seed)
        inner, truth = train.take(fit_rows), truth_of(train.take(held_rows))
        row = []
        for setting in grid:
            row.append(ranking_metrics(truth, recommend(fit(inner, setting), sorted(truth))))
            if progress:
                progress()
        by_seed.append(row)
    return [{**setting.to_dict(), **{m: float(np.mean([row[at][m] for row in by_seed])) for m in METRICS},
             f"ndcg_at_{K}_by_seed": [row[at][f"ndcg_at_{K}"] for row in by_seed]}
            for at, setting in enumerate(grid)]


def best(scored: Sequence[dict[str, Any]], by: str = f"ndcg_at_{K}") -> Setting:
    """The setting with the highest `by` (the first in the grid's order on a tie)."""
    top = max(scored, key=lambda row: row[by])
    return Setting(top["popularity_penalty"], top["half_life_days"], top["weight"])


@dataclass
class Evaluated:
    """offerloop on one split: the grid's validation scores, the chosen setting, its test figures."""

    split: str
    train_rows: np.ndarray
    test_rows: np.ndarray
    scored: list[dict[str, Any]]
    chosen: Setting
    lists: dict[int, list[int]]  # each test user's top K
    metrics: dict[str, float]
    fit_s: float
    recommend_s: float


def evaluate(data: Ratings, split: str, grid: Sequence[Setting]) -> Evaluated:
    """Choose the setting on the split's training rows, fit it on all of them, score it on the test rows."""
    train_rows, test_rows = SPLITS[split][1](data.users, RATIO, SEED)
    train, truth = data.take(train_rows), truth_of(data.take(test_rows))
    print(f"{split} split: scoring offerloop's {len(grid)} settings on {len(VALIDATION_SEEDS)} validation splits "
          f"of its {len(train):,} training ratings…", flush=True)
    with tqdm(total=len(grid) * len(VALIDATION_SEEDS), desc=f"{split} split", unit="fit", leave=False,
              disable=None) as bar:  # no bar when the output is no terminal
        scored = validate(train, grid, progress=bar.update)
    chosen = best(scored)
    model, fit_s = timed(lambda: fit(train, chosen))
    lists, recommend_s = timed(lambda: recommend(model, sorted(truth)))
    return Evaluated(split, train_rows, test_rows, scored, chosen, lists, ranking_metrics(truth, lists), fit_s,
                     recommend_s)


# -- Recommenders' SAR ---------------------------------------------------------------------------
def write_inputs(folder: Path, data: Ratings, runs: Sequence[Evaluated]) -> None:
    """What bench/recommenders_sar.py reads (see its doc)."""
    with open(folder / "ratings.tsv", "w") as out:
        out.write("userID\titemID\trating\ttimestamp\n")
        out.writelines(f"{u}\t{i}\t{r:g}\t{t:.0f}\n" for u, i, r, t in
                       zip(data.users.tolist(), data.items.tolist(), data.ratings.tolist(), data.times.tolist()))
    for evaluated in runs:
        part = folder / evaluated.split
        part.mkdir()
        np.savetxt(part / "train.txt", evaluated.train_rows, fmt="%d")
        np.savetxt(part / "test.txt", evaluated.test_rows, fmt="%d")
        with open(part / "offerloop.tsv", "w") as out:
            out.write("userID\titemID\tprediction\n")
            out.writelines(f"{user}\t{item}\t{len(items) - at}\n" for user, items in evaluated.lists.items()
                           for at, item in enumerate(items))
    (folder / "settings.json").write_text(json.dumps({"k": K, "ratio": RATIO, "seed": SEED, "repeats": REPEATS,
                                                      "splits": [e.split for e in runs]}))


def recommenders_sar(data: Ratings, runs: Sequence[Evaluated], say: Callable[[str], None] = print) -> dict[str, Any]:
    """Recommenders' run on our splits (see bench/recommenders_sar.py), or {"unavailable": why}."""
    if os.environ.get("BENCH_MOVIELENS_RECOMMENDERS", "1") == "0":
        return {"unavailable": "left out (BENCH_MOVIELENS_RECOMMENDERS=0)"}
    env = {**os.environ, "PYTHON": os.environ.get("PYTHON") or sys.executable}
    made = subprocess.run(["bash", str(SAR_SCRIPT)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    if made.returncode != 0:
        return {"unavailable": f"{SAR_VENV.name} could not be made (bash {os.path.relpath(SAR_SCRIPT, ROOT)}: "
                               f"exit {made.returncode}): {made.stderr.strip()[-1500:]}"}
    say("running Recommenders' SAR on the same splits…")
    with tempfile.TemporaryDirectory(prefix="offerloop-bench-movielens-") as tmp:
        write_inputs(Path(tmp), data, runs)
        try:
            done = subprocess.run([str(SAR_VENV / "bin" / "python"), str(SAR_HELPER), tmp], cwd=ROOT,
                                  capture_output=True, text=True, timeout=SAR_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {"unavailable": f"{SAR_HELPER.name} did not finish in {SAR_TIMEOUT:.0f} s"}
    if done.returncode != 0:
        return {"unavailable": f"{SAR_HELPER.name} failed (exit {done.returncode}): {done.stderr.strip()[-1500:]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def largest_difference(ours: Mapping[str, float], theirs: Mapping[str, float]) -> float:
    return max(abs(ours[m] - theirs[m]) for m in METRICS)


# -- the benchmark -------------------------------------------------------------------------------
def _met(ok: bool) -> str:
    return "met" if ok else "not met"


def _comparison(title: str, columns: Mapping[str, Mapping[str, float]]) -> str:
    names = list(columns)
    head = f"{'metric':<16}" + "".join(f"{n:>18}" for n in names)
    lines = [title, head, "-" * len(head)]
    for metric in METRICS:
        cells = [columns[n].get(metric) for n in names]
        lines.append(f"{metric:<16}" + "".join(f"{'':>18}" if c is None else f"{c:>18.6f}" for c in cells))
    return "\n".join(lines)


def _grid_table(evaluated: Evaluated, top: int = 6) -> str:
    rows = sorted(evaluated.scored, key=lambda r: -r[f"ndcg_at_{K}"])[:top]
    lines = [f"{evaluated.split} split: {len(evaluated.scored)} settings, each scored on {len(VALIDATION_SEEDS)} "
             f"validation splits of the training ratings (the best {len(rows)} by mean nDCG@{K}):",
             f"  {'β':>5} {'half-life':>10} {'weight':>7} {'P@10':>8} {'R@10':>8} {'nDCG@10':>8} {'MAP':>8}"]
    for r in rows:
        mark = "  ← chosen" if Setting(r["popularity_penalty"], r["half_life_days"], r["weight"]) == evaluated.chosen \
            else ""
        lines.append(f"  {r['popularity_penalty']:>5} {r['half_life_days'] or 'none':>10} {r['weight']:>7} "
                     f"{r[f'precision_at_{K}']:>8.4f} {r[f'recall_at_{K}']:>8.4f} {r[f'ndcg_at_{K}']:>8.4f} "
                     f"{r['map']:>8.4f}{mark}")
    return "\n".join(lines)


def _split_figures(data: Ratings, evaluated: Evaluated) -> dict[str, Any]:
    train, test = data.take(evaluated.train_rows), data.take(evaluated.test_rows)
    return {"split": SPLITS[evaluated.split][0], "train_rows": len(train), "test_rows": len(test),
            "train_users": len(np.unique(train.users)), "test_users": len(np.unique(test.users)),
            "train_items": len(np.unique(train.items)), "test_items": len(np.unique(test.items)),
            "offerloop": {**evaluated.metrics, "params": evaluated.chosen.to_dict(), "fit_s": evaluated.fit_s,
                          "recommend_s": evaluated.recommend_s},
            "validation": {"seeds": list(VALIDATION_SEEDS), "grid": evaluated.scored}}


def run(stack=None) -> dict:
    """The comparison on both splits; the harness writes the figures to bench/results/movielens.json."""
    data, inter_sha256 = read_inter(fetch_wheel())
    print(f"MovieLens 100k: {len(data):,} ratings, {len(np.unique(data.users)):,} users, "
          f"{len(np.unique(data.items)):,} items")
    grid = settings()
    runs = [evaluate(data, split, grid) for split in SPLITS]
    for evaluated in runs:
        print(_grid_table(evaluated))
    current, published = runs
    out: dict[str, Any] = {
        "data": f"MovieLens 100k from {WHEEL_REQUIREMENT}'s {INTER}", "data_wheel_sha256": WHEEL_SHA256,
        "data_sha256": inter_sha256, "ratings": len(data), "users": len(np.unique(data.users)),
        "items": len(np.unique(data.items)), "train_rows": len(current.train_rows),
        "test_rows": len(current.test_rows), "k": K}
    out.update({f"offerloop_{m}": v for m, v in current.metrics.items()})
    out.update(offerloop_fit_s=current.fit_s, offerloop_recommend_s=current.recommend_s,
               offerloop_chosen=str(current.chosen), offerloop_params=current.chosen.to_dict())
    out.update({f"published_split_offerloop_{m}": v for m, v in published.metrics.items()})
    out["published_split_offerloop_chosen"] = str(published.chosen)
    out["published_split_offerloop_params"] = published.chosen.to_dict()

    sar = recommenders_sar(data, runs)
    tables = {e.split: {"offerloop": e.metrics} for e in runs}
    if "unavailable" in sar:
        print(f"Recommenders' SAR: unavailable: {sar['unavailable']}")
        out["recommenders_sar_unavailable"] = sar["unavailable"]
    else:
        differences = []
        for evaluated in runs:
            theirs = sar["splits"][evaluated.split]
            truth = truth_of(data.take(evaluated.test_rows))
            sar_by_us = ranking_metrics(truth, ranked(*zip(*theirs["sar"].pop("recommendations"))))
            differences += [largest_difference(evaluated.metrics, theirs["offerloop"]),
                            largest_difference(sar_by_us, theirs["sar"])]
            theirs["sar_scored_by_offerloop"] = sar_by_us
            tables[evaluated.split]["Recommenders SAR"] = theirs["sar"]
        now, then = sar["splits"]["current"], sar["splits"]["published"]
        out.update({f"recommenders_sar_{m}": now["sar"][m] for m in METRICS})
        out.update(recommenders_sar_fit_s=now["sar"]["fit_s"], recommenders_sar_recommend_s=now["sar"]["recommend_s"])
        out.update({f"published_split_recommenders_sar_{m}": then["sar"][m] for m in METRICS})
        out["split_equals_recommenders"] = "yes" if now["split"]["same_rows"] and now["split"]["same_order"] else "no"
        out["published_split_equals_reco_utils"] = ("yes" if then["split"]["same_rows"] and then["split"]["same_order"]
                                                    else "no")
        out["published_figures_reproduced"] = "yes" if all(round(then["sar"][m], 6) == PUBLISHED[m]
                                                           for m in PUBLISHED) else "no"
        out["metrics_equal_recommenders"] = "yes" if max(differences) <= AGREEMENT else "no"
        out["metrics_largest_difference"] = max(differences)
        for metric in AIMED:  # both as Recommenders' own python_evaluation scores them
            out[f"aim_beat_recommenders_sar_{metric}"] = _met(now["offerloop"][metric] > now["sar"][metric])
        out["recommenders"] = sar
    for metric in AIMED:
        out[f"aim_beat_published_{metric}"] = _met(current.metrics[metric] > PUBLISHED[metric])
    for metric in AIMED:
        out[f"aim_beat_published_same_split_{metric}"] = _met(published.metrics[metric] > PUBLISHED[metric])
    out["published"] = {"source": PUBLISHED_SOURCE, **PUBLISHED, "map_definition": MAP_DEFINITION}
    out["splits"] = {e.split: _split_figures(data, e) for e in runs}

    tables["published"]["published SAR"] = PUBLISHED
    for evaluated in runs:
        print(_comparison(f"\n{SPLITS[evaluated.split][0]}:", tables[evaluated.split]))
    print(f"\nofferloop fit {current.fit_s:.3f} s, recommend {current.recommend_s:.3f} s (median of {REPEATS})" +
          ("" if "unavailable" in sar else f"; Recommenders' SAR fit {out['recommenders_sar_fit_s']:.3f} s, "
                                           f"recommend {out['recommenders_sar_recommend_s']:.3f} s"))
    return out


if __name__ == "__main__":
    print(json.dumps(run(None), indent=2, default=str))
