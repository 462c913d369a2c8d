"""The retrain job: fit a candidate on logged decisions, evaluate it offline, promote it only if not worse.

`run` is what the timer and `POST /api/admin/retrain` call:

  1. compact closed hours of the raw archive into Parquet (the `compact` port);
  2. load the training window's events and decisions (Parquet, plus the raw archive's hours
     not compacted yet);
  3. unless forced, stop when fewer than `retrain_every` decisions arrived since the last
     retrain (the report says so);
  4. `train`: join decisions with their rewards, split them by time (the newest `holdout`
     share is held out), fit the candidate on the rest, and on the held-out decisions estimate
     the candidate's and the current policy's value (IPS, SNIPS, DR with bootstrap intervals;
     the current policy is the served model, or the baseline when there is none);
  5. write `models/<version>/` (model, feature configuration, metrics, data range, report) and
     move the current-model pointer only when the candidate is not worse: "worse" is a 95%
     bootstrap interval of the doubly robust difference (candidate minus current, on the same
     resampled events) that lies entirely below 0. The report says why either way.
"""
from __future__ import annotations

import gc
import json
import logging
import os
import random
import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Protocol

import joblib
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from scipy import sparse

from . import columnar, dataset, evaluation
from .dataset import RewardRules
from .explore import Exploration, greedy_index
from .features import Encoder, FeatureSpace, rows_of
from .model import FitOptions, LinearModel, ModelError, fit_prepared, prepare

log = logging.getLogger(__name__)
MIN_EXAMPLES = 50  # fewer settled examples than this: nothing worth fitting
EVAL_CHUNK = 1000  # held-out decisions scored per batch
FEATURE_CHUNK = 20_000  # training rows featurized per batch
PARALLEL_CHUNKS = 4  # fewer chunks than this are featurized in this process
MAX_PROCESSES = 4


@dataclass(frozen=True)
class LearningConfig:
    exploration: Exploration = Exploration()
    rewards: RewardRules = RewardRules()
    window_days: float = 14.0  # the training window
    retrain_every: int = 1000  # new decisions a scheduled retrain waits for (a forced one does not)
    holdout: float = 0.2  # the newest share of settled decisions, for offline evaluation
    min_heldout: int = 100  # fewer held-out events: no promotion (too little evidence)
    max_eval_decisions: int = 5_000  # held-out decisions scored (a seeded sample of them beyond this)
    bootstrap_rounds: int = 500
    apprentice: bool = False  # serve the baseline until the learner agrees with it often enough
    apprentice_agreement: float = 0.9
    fit: FitOptions = FitOptions()
    reward_model: FitOptions = FitOptions(c=0.1)  # doubly robust evaluation's reward model
    space: FeatureSpace = FeatureSpace()
    processes: int = 0  # featurizing processes; 0: one per core for big retrains (retrain._processes)

    def __post_init__(self) -> None:
        if not 0 < self.holdout < 1:
            raise ValueError("the held-out share must be between 0 and 1")
        if not 0 <= self.apprentice_agreement <= 1:
            raise ValueError("the apprentice agreement must be from 0 to 1")
        if self.retrain_every < 0 or self.window_days <= 0:
            raise ValueError("retrain_every must be >= 0 and the window positive")


class PromotionConflict(Exception):
    """The current-model pointer changed while the retrain ran (another retrain promoted meanwhile)."""


class Registry(Protocol):
    """Where models, their reports and the current-model pointer live (Blob in the app)."""

    def pointer(self) -> Optional[dict]: ...
    def load(self, version: str) -> LinearModel: ...
    def save(self, version: str, files: dict[str, bytes]) -> None: ...
    def promote(self, pointer: dict) -> None: ...
    def latest_report(self) -> Optional[dict]: ...
    def keep_report(self, report: dict) -> None: ...


class MemoryRegistry:
    """A registry in a dict: the headless learning loop, tests and benchmarks."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self._pointer: Optional[dict] = None
        self._latest: Optional[dict] = None

    def pointer(self) -> Optional[dict]:
        return self._pointer

    def load(self, version: str) -> LinearModel:
        data = self.files.get(f"{version}/model.npz")
        if data is None:
            raise ModelError(f"model {version} not found")
        return LinearModel.from_bytes(data)

    def save(self, version: str, files: dict[str, bytes]) -> None:
        self.files.update({f"{version}/{name}": data for name, data in files.items()})

    def promote(self, pointer: dict) -> None:
        self._pointer = dict(pointer)

    def latest_report(self) -> Optional[dict]:
        return self._latest

    def keep_report(self, report: dict) -> None:
        self._latest = report


def new_version(now: datetime) -> str:
    return f"m{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def _iso(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]").item().replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class Trained:
    model: Optional[LinearModel]
    report: dict[str, Any]
    promoted: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def _split(examples: dataset.Examples, holdout: float) -> int:
    """The first held-out row: a decision's rows stay on one side."""
    cut = int(len(examples) * (1 - holdout))
    while 0 < cut < len(examples) and examples.owner[cut] == examples.owner[cut - 1]:
        cut += 1
    return cut


def _fit_rows(examples: dataset.Examples, stop: int, space: FeatureSpace, encoder: Encoder,
              processes: int = 0) -> sparse.csr_matrix:
    """The rows of the first `stop` examples, FEATURE_CHUNK at a time: only the sparse rows are
    kept, never every decision's parsed JSON at once. Parsing and flattening is Python work, so
    with enough chunks it is spread over worker processes (`_processes`)."""
    chunks = [(begin, min(begin + FEATURE_CHUNK, stop)) for begin in range(0, stop, FEATURE_CHUNK)]
    workers = _processes(len(chunks), processes)
    if workers <= 1:
        parts = [_featurize(space, examples.logged(begin, end), encoder) for begin, end in chunks]
    else:
        # joblib's loky workers: they do not re-run the caller's main module, and stay up for the next retrain
        with joblib.Parallel(n_jobs=workers, return_as="generator", pre_dispatch="2*n_jobs") as parallel:
            parts = list(parallel(joblib.delayed(_featurize)(space, examples.logged(begin, end))
                                  for begin, end in chunks))
    return sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix((0, space.width), dtype=np.float32)


def _processes(chunks: int, configured: int) -> int:
    """Worker processes for featurizing: as configured, or (0) one per available core when there are
    at least PARALLEL_CHUNKS chunks (below that, starting processes costs more than it saves)."""
    if configured:
        return configured
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(cores, MAX_PROCESSES) if chunks >= PARALLEL_CHUNKS else 1


_ENCODERS: dict[FeatureSpace, Encoder] = {}  # a worker process's encoders (their name -> column caches)


def _featurize(space: FeatureSpace, logged: dataset.Logged, encoder: Optional[Encoder] = None) -> sparse.csr_matrix:
    """Rows of logged decisions (in a worker or here): column by column (`columnar`), or, for JSON
    whose shape that does not cover, parsed, flattened by Personalizer's rules and hashed row by row."""
    if encoder is None:
        encoder = _ENCODERS.get(space) or _ENCODERS.setdefault(space, Encoder(space))
    return _rows_from_texts(encoder, logged.contexts, logged.chosen_features, logged.local, logged.positions)


def _rows_from_texts(encoder: Encoder, contexts: pa.Array, lists: pa.Array, local: np.ndarray,
                     positions: np.ndarray, field: Optional[str] = None) -> sparse.csr_matrix:
    """Rows from logged JSON text (see columnar.rows): column by column, or, for JSON whose shape
    that does not cover, parsed and built row by row (features.rows_of)."""
    try:
        return columnar.rows(encoder, contexts, lists, local, positions, field)
    except columnar.Unsupported as error:
        log.info("featurizing %d rows row by row: %s", len(local), error)
    parsed_contexts, actions = dataset.parse_logged(contexts, lists, local, positions, field)
    return rows_of(encoder, parsed_contexts, actions, local)


@dataclass
class _Held:
    logged: evaluation.Logged
    candidate: evaluation.Target
    current: evaluation.Target
    agreement: float
    events: int


# (decision ids, earliest time) -> each decision's candidates as JSON text ([{offerId, features}])
Candidates = Callable[[list[str], datetime], dict[str, str]]


def _held_out(examples: dataset.Examples, start: int, candidates_of: Candidates, candidate: LinearModel,
              current: Optional[LinearModel], config: LearningConfig, reward_model: LinearModel) -> _Held:
    """Score every candidate of the held-out decisions with both policies; one evaluation event per slot."""
    rows = np.arange(start, len(examples))
    ids = list(dict.fromkeys(examples.decision_ids[i] for i in rows))
    if len(ids) > config.max_eval_decisions:
        order = {d: i for i, d in enumerate(ids)}
        ids = sorted(random.Random(config.fit.seed).sample(ids, config.max_eval_decisions), key=order.__getitem__)
    wanted = set(ids)
    rows = [i for i in rows if examples.decision_ids[i] in wanted]
    earliest = examples.times[start].astype("datetime64[us]").item().replace(tzinfo=timezone.utc)
    texts = candidates_of(ids, earliest)
    rewards, probabilities, r_logged, r_choice, m_candidate, m_current, agree = [], [], [], [], [], [], []
    by_decision: dict[str, list[int]] = {}
    for i in rows:
        by_decision.setdefault(examples.decision_ids[i], []).append(i)
    for begin in range(0, len(ids), EVAL_CHUNK):
        parsed = {d: orjson.loads(texts[d]) for d in ids[begin:begin + EVAL_CHUNK] if texts.get(d)}
        chunk = [d for d, cands in parsed.items() if cands]
        lists = [parsed[d] for d in chunk]
        held = _Decisions(examples.context_texts([examples.owner[by_decision[d][0]] for d in chunk]),
                          pa.array([texts[d] for d in chunk], type=pa.large_string()), lists)
        rows = _rows(candidate, held)
        ours, estimated = _split_scores(candidate.predict(rows), lists), _split_scores(reward_model.predict(rows), lists)
        if current is None:
            theirs = None
        elif current.space == candidate.space:
            theirs = _split_scores(current.predict(rows), lists)
        else:
            theirs = _split_scores(current.predict(_rows(current, held)), lists)
        for k, decision in enumerate(chunk):
            offer_ids = [c.get("offerId") for c in lists[k]]
            excluded: list[int] = []
            for i in sorted(by_decision[decision], key=lambda i: examples.slots[i]):
                if examples.offer_ids[i] not in offer_ids:
                    break
                logged = offer_ids.index(examples.offer_ids[i])
                pick = greedy_index(ours[k], excluded)
                baseline = next(j for j in range(len(offer_ids)) if j not in excluded)
                other = greedy_index(theirs[k], excluded) if theirs is not None else baseline
                rewards.append(examples.rewards[i])
                probabilities.append(examples.probabilities[i])
                r_logged.append(estimated[k][logged])
                r_choice.append((estimated[k][pick], estimated[k][other]))
                m_candidate.append(pick == logged)
                m_current.append(other == logged)
                agree.append(pick == baseline)
                excluded.append(logged)
    r_choice_arr = np.array(r_choice, dtype=np.float64).reshape(-1, 2)
    logged_arrays = evaluation.Logged(np.array(rewards, dtype=np.float64), np.array(probabilities, dtype=np.float64),
                                      np.array(r_logged, dtype=np.float64))
    return _Held(logged_arrays, evaluation.Target(np.array(m_candidate, dtype=bool), r_choice_arr[:, 0]),
                 evaluation.Target(np.array(m_current, dtype=bool), r_choice_arr[:, 1]),
                 float(np.mean(agree)) if agree else 0.0, len(rewards))


@dataclass
class _Decisions:
    """Some held-out decisions: their contexts' and candidates' JSON text, and the candidates parsed
    (for their offer ids)."""

    contexts: pa.Array
    candidates: pa.Array
    lists: list[list[dict]]


def _rows(model: LinearModel, held: _Decisions) -> sparse.csr_matrix:
    """The rows of every candidate of these decisions, in the model's feature space (column by
    column; the row path when the JSON's shape needs it)."""
    counts = np.fromiter(map(len, held.lists), dtype=np.int64, count=len(held.lists))
    owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    positions = np.arange(len(owner), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return _rows_from_texts(model.encoder, held.contexts, held.candidates, owner, positions, field="features")


def _split_scores(scores: np.ndarray, lists: list[list[dict]]) -> list[np.ndarray]:
    out, at = [], 0
    for cands in lists:
        out.append(scores[at:at + len(cands)])
        at += len(cands)
    return out


@dataclass
class Assessment:
    """A candidate's offline evaluation against the current policy, and the gate's verdict."""

    metrics: dict[str, Any]
    promoted: bool
    reason: str


def fit_candidate(examples: dataset.Examples, stop: int, config: LearningConfig, version: str,
                  meta: Optional[dict[str, Any]] = None) -> tuple[LinearModel, LinearModel]:
    """Fit the ranker on the first `stop` examples, and on the same rows the reward model that
    doubly robust evaluation uses (less regularized, so its probabilities are calibrated)."""
    encoder = Encoder(config.space)
    rows = _fit_rows(examples, stop, config.space, encoder, config.processes)
    rewards = examples.rewards[:stop]
    prepared = prepare(rows)  # the used columns, scaled: once for both fits
    del rows
    options = (config.fit, config.reward_model)
    if _processes(-(-stop // FEATURE_CHUNK), config.processes) > 1:
        # a big retrain: the two fits in two worker processes (in threads they would mostly take turns
        # holding the GIL); joblib hands the rows over as memory-mapped arrays
        with joblib.Parallel(n_jobs=2) as parallel:
            fitted = parallel(joblib.delayed(fit_prepared)(prepared, rewards, o) for o in options)
    else:
        fitted = [fit_prepared(prepared, rewards, o) for o in options]
    (weights, intercept), (reward_weights, reward_intercept) = fitted
    ranker = LinearModel(version, config.space, weights, intercept, dict(meta or {}), encoder)
    return ranker, LinearModel(f"{version}-reward-model", config.space, reward_weights, reward_intercept, {}, encoder)


def from_table(decisions: pa.Table) -> Candidates:
    """Candidates read from a decisions table that has the `candidates` column."""
    return lambda ids, earliest: dataset.candidate_texts(decisions, ids)


def assess(examples: dataset.Examples, start: int, candidates_of: Candidates, candidate: LinearModel,
           current: Optional[LinearModel], config: LearningConfig, current_label: str,
           reward_model: LinearModel) -> Assessment:
    """Evaluate the candidate and the current policy on the examples from `start` on; apply the gate."""
    held = _held_out(examples, start, candidates_of, candidate, current, config, reward_model)
    comparison = evaluation.compare(held.logged, held.candidate, held.current, config.bootstrap_rounds)
    metrics = {"heldOutEvents": held.events, "agreementWithBaseline": round(held.agreement, 4),
               **{side: {k: v.to_dict() for k, v in comparison.get(side, {}).items()}
                  for side in ("candidate", "current", "difference")}}
    promoted, reason = _gate(comparison, held, config, current_label)
    return Assessment(metrics, promoted, reason)


@contextmanager
def _no_cyclic_gc():
    """Parsing millions of small dicts triggers collection after collection though none is garbage;
    the collector is off while a retrain builds them (plain reference counting still frees memory)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def train(events: pa.Table, decisions: pa.Table, config: LearningConfig, now: datetime, version: str,
          current: Optional[LinearModel] = None, current_label: Optional[str] = None,
          candidates_of: Optional[Candidates] = None) -> Trained:
    """Fit a candidate on the settled decisions and evaluate it against the current policy (see the module doc).

    `decisions` needs dataset.TRAINING_COLUMNS; the held-out decisions' candidates come from
    `candidates_of` (default: the table's own `candidates` column)."""
    with _no_cyclic_gc():
        return _train(events, decisions, config, now, version, current, current_label, candidates_of)


def _train(events: pa.Table, decisions: pa.Table, config: LearningConfig, now: datetime, version: str,
           current: Optional[LinearModel], current_label: Optional[str],
           candidates_of: Optional[Candidates]) -> Trained:
    timings: dict[str, float] = {}
    began = time.perf_counter()
    decisions = dataset.dedupe(decisions)
    examples = dataset.examples(decisions, dataset.reward_events(events), config.rewards, now,
                                dataset.activations(events))
    timings["joinSeconds"] = time.perf_counter() - began
    current_label = current_label or (current.version if current is not None else "baseline-1")
    data = {"decisions": decisions.num_rows, "pendingDecisions": examples.pending, "examples": len(examples),
            "rewardedExamples": examples.rewarded,
            "from": _iso(examples.times[0]) if len(examples) else None,
            "to": _iso(examples.times[-1]) if len(examples) else None,
            "meanReward": float(examples.rewards.mean()) if len(examples) else None}
    report: dict[str, Any] = {"version": version, "trainedAt": _iso(now), "current": current_label, "data": data,
                              "featureSpace": config.space.to_dict(), "fit": config.fit.to_dict(),
                              "rewardModelFit": config.reward_model.to_dict(),
                              "rewardRules": {"waitSeconds": config.rewards.wait_seconds,
                                              "defaultReward": config.rewards.default,
                                              "aggregation": config.rewards.aggregation}}
    if len(examples) < MIN_EXAMPLES:
        report.update(promoted=False, reason=f"only {len(examples)} settled examples; at least {MIN_EXAMPLES} are "
                                             f"needed to fit a model")
        return Trained(None, report, timings=timings)
    cut = _split(examples, config.holdout)
    mark = time.perf_counter()
    meta = {"trainedAt": report["trainedAt"], "examples": cut,
            "dataRange": {"from": data["from"], "to": _iso(examples.times[cut - 1])}}
    model, reward_model = fit_candidate(examples, cut, config, version, meta)
    timings["fitSeconds"] = time.perf_counter() - mark
    data.update(trainExamples=cut, heldOutExamples=len(examples) - cut,
                nonzeroWeights=int(np.count_nonzero(model.weights)))
    mark = time.perf_counter()
    verdict = assess(examples, cut, candidates_of or from_table(decisions), model, current, config, current_label,
                     reward_model)
    timings["evaluateSeconds"] = time.perf_counter() - mark
    report["evaluation"] = verdict.metrics
    report.update(promoted=verdict.promoted, reason=verdict.reason)
    timings["totalSeconds"] = time.perf_counter() - began
    report["timings"] = {k: round(v, 3) for k, v in timings.items()}
    return Trained(model, report, verdict.promoted, timings)


def _gate(comparison: dict[str, Any], held: _Held, config: LearningConfig, current: str) -> tuple[bool, str]:
    if held.events < config.min_heldout:
        return False, (f"only {held.events} held-out events; at least {config.min_heldout} are needed to "
                       f"evaluate a candidate")
    ours, theirs, diff = comparison["candidate"]["dr"], comparison["current"]["dr"], comparison["difference"]["dr"]
    figures = (f"doubly robust estimate {ours.estimate:.4f} [{ours.low:.4f}, {ours.high:.4f}] against "
               f"{current}'s {theirs.estimate:.4f} [{theirs.low:.4f}, {theirs.high:.4f}], difference "
               f"{diff.estimate:+.4f} [{diff.low:+.4f}, {diff.high:+.4f}] over {held.events} held-out events")
    if diff.high < 0:
        return False, f"not promoted: the candidate is worse than {current}: {figures}"
    return True, f"promoted: the candidate is not worse than {current}: {figures}"


def model_files(trained: Trained) -> dict[str, bytes]:
    """models/<version>/: the model, its feature configuration, metrics, data range and report."""
    report = trained.report

    def dump(value: Any) -> bytes:
        return json.dumps(value, indent=2).encode("utf-8")

    files = {"report.json": dump(report), "data.json": dump(report["data"]),
             "metrics.json": dump(report.get("evaluation", {})), "features.json": dump(report["featureSpace"])}
    if trained.model is not None:
        files["model.npz"] = trained.model.to_bytes()
    return files


@dataclass
class JobPorts:
    # (start, end, event columns, decision columns[, decision_ids=only these]) -> (events, decisions);
    # None: every column
    load: Callable[..., tuple[pa.Table, pa.Table]]
    registry: Registry
    compact: Callable[[datetime], dict] = lambda now: {}
    clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def run(ports: JobPorts, config: LearningConfig, force: bool = False, loop: str = dataset.OFFERS) -> dict[str, Any]:
    """The retrain job of one loop's decisions (see the module doc); returns the report."""
    now = ports.clock()
    began = time.perf_counter()
    compaction = ports.compact(now)
    start = now - timedelta(days=config.window_days)
    events, decisions = ports.load(start, now, dataset.REWARD_COLUMNS, dataset.TRAINING_COLUMNS + dataset.LOOP_COLUMNS)
    decisions = dataset.for_loop(decisions, loop)
    latest = ports.registry.latest_report()
    since = (latest or {}).get("data", {}).get("through")
    fresh = decisions.num_rows
    if since:
        cut = pa.scalar(datetime.fromisoformat(since.replace("Z", "+00:00")), type=dataset.DECISIONS_SCHEMA.field("time").type)
        fresh = int(pc.sum(pc.greater(decisions.column("time"), cut)).as_py() or 0)
    if not force and fresh < config.retrain_every:
        return {"promoted": False, "skipped": True, "compaction": compaction, "newDecisions": fresh,
                "reason": f"{fresh} new decisions since the last retrain; a scheduled retrain waits for "
                          f"{config.retrain_every} (RETRAIN_EVERY_IMPRESSIONS)"}
    pointer = ports.registry.pointer()
    current, label = None, None
    if pointer:
        try:
            current = ports.registry.load(pointer["version"])
        except ModelError as error:
            label = f"baseline-1 (the current model {pointer['version']} is unreadable: {error})"
    version = new_version(now)

    def candidates_of(ids: list[str], earliest: datetime) -> dict[str, str]:
        # only the scored decisions' candidates are kept (the biggest column by far), as files are decoded
        return dataset.candidate_texts(ports.load(earliest, now, (), dataset.CANDIDATE_COLUMNS, decision_ids=ids)[1],
                                       ids)

    trained = train(events, decisions, config, now, version, current, label, candidates_of)
    report = trained.report
    report["data"]["through"] = _iso(decisions.column("time").to_numpy().max()) if decisions.num_rows else since
    report["newDecisions"] = fresh
    report["compaction"] = compaction
    report["skipped"] = False
    if trained.model is not None:
        ports.registry.save(version, model_files(trained))
    if trained.promoted:
        previous = bool((pointer or {}).get("apprentice", {}).get("graduated"))
        agreement = report["evaluation"]["agreementWithBaseline"]
        try:
            ports.registry.promote({"version": version, "promotedAt": _iso(now),
                                    "previous": (pointer or {}).get("version"),
                                    "apprentice": {"graduated": previous or agreement >= config.apprentice_agreement,
                                                   "agreement": agreement, "required": config.apprentice_agreement}})
        except PromotionConflict as error:
            report.update(promoted=False, reason=f"not promoted: {error}")
    report["jobSeconds"] = round(time.perf_counter() - began, 3)
    ports.registry.keep_report(report)
    log.info("retrain %s: %s", version, report["reason"])
    return report
