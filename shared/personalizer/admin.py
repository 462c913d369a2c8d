"""The Personalizer-compatible API's administration: the loop's model, its logs and offline evaluations.

  model        GET /model exports the current model as a zip (its files from the registry and the
               pointer as current.json); PUT /model imports such a zip (or a bare model.npz) as a
               new version and promotes it; DELETE /model removes the pointer, so the loop serves
               the baseline again until a retrain promotes; GET /model/properties dates it
  logs         GET /logs/properties: the first and last personalizer decision in the archive's
               window; DELETE /logs is refused (the archive is shared with the offers loop);
               feature importances are refused too (none are computed)
  evaluations  created pending, run in the background (`Ports.run_later`) on the date range's
               personalizer decisions with the retrain job's estimators (`retrain.train`: each
               custom policy is fitted on the first 80% by time and evaluated on the rest, against
               the online model and the baseline, the first action), stored with the results
  apply        POST /configurations/applyFromEvaluation makes an evaluated custom policy the loop's
               policy (the next retrain fits with it)

An evaluation is stored in one neutral shape and shown in the API version's: v1.0 and
v1.1-preview ({status: "completed", policyResults: [{summary, totalSummary}]}) or
2022-09-01-preview ({status: "Succeeded", content: {value: [{summary, timeseries}]}}). Personalizer's
estimator fields are filled from offerloop's estimates of the held-out events: averageReward is
the IPS estimate (ipsEstimatorNumerator / ipsEstimatorDenominator, the held-out events),
confidenceInterval the half width of its 95% bootstrap interval, snipsEstimatorDenominator the sum
of importance weights (derived from SNIPS, so left out when SNIPS is 0); sumOfSquares and
nonZeroProbability are not computed and left out. Each summary adds offerloop's own figures: the
SNIPS and doubly robust estimates with their bootstrap intervals.
"""
from __future__ import annotations

import io
import json
import logging
import re
import uuid
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, ClassVar, Optional, Protocol

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from ..learning import dataset, retrain
from ..learning.model import LinearModel, ModelError
from ..learning.retrain import LearningConfig, PromotionConflict
from . import configuration, errors
from .configuration import LoopSettings, iso_datetime, iso_duration
from .requests import EvaluationRequest, _Body

log = logging.getLogger(__name__)

POINTER = "current.json"  # the pointer's name inside an exported zip
MODEL = "model.npz"
NO_MODEL = "No model was promoted yet: the loop serves the baseline (the first action)."
MAX_IMPORT_BYTES = 256 * 1024 * 1024  # uncompressed, over every file of an imported zip
MAX_ID_LENGTH = 256
_ID = re.compile(r"[^\x00-\x1f/\\?#]+")
PENDING, COMPLETED, FAILED = "pending", "completed", "failed"
PREVIEW_STATUS = {PENDING: "Running", COMPLETED: "Succeeded", FAILED: "Failed"}
ONLINE, BASELINE, CUSTOM = "Online", "Baseline", "Custom"


class Registry(Protocol):
    """The loop's models (shared/model_store.BlobRegistry under `personalizer/`)."""

    def pointer(self) -> Optional[dict]: ...
    def load(self, version: str) -> LinearModel: ...
    def save(self, version: str, files: dict[str, bytes]) -> None: ...
    def promote(self, pointer: dict) -> None: ...
    def files(self, version: str) -> dict[str, bytes]: ...
    def reset(self) -> None: ...


class Evaluations(Protocol):
    """Stored evaluations by id (shared/personalizer_store.EvaluationStore)."""

    def get(self, evaluation_id: str) -> Optional[dict]: ...
    def put(self, evaluation: dict[str, Any]) -> None: ...
    def list(self) -> list[dict]: ...
    def delete(self, evaluation_id: str) -> bool: ...


@dataclass
class Ports:
    registry: Registry  # one per request: it remembers the pointer's etag its promotion checks
    evaluations: Evaluations
    settings: Callable[[], LoopSettings]
    save_settings: Callable[[LoopSettings], LoopSettings]
    # (start, end, event columns, decision columns[, decision_ids]) -> (events, decisions): the archive
    load: Callable[..., tuple[pa.Table, pa.Table]]
    learning_config: Callable[[LoopSettings], LearningConfig]  # the retrain job's config of a policy
    run_later: Callable[[Callable[[], None]], None] = lambda job: job()  # the evaluation job
    models_changed: Callable[[], None] = lambda: None  # the served model changed (import, reset)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(timezone.utc))


def _iso(value: datetime) -> str:
    return iso_datetime(value)


def _parse_time(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --- the model ---------------------------------------------------------------------------------

def _current(registry: Registry) -> dict:
    pointer = registry.pointer()
    if not pointer or not pointer.get("version"):
        raise errors.not_found(NO_MODEL)
    return pointer


def export_model(registry: Registry) -> bytes:
    """The current model's files and its pointer (current.json) as a zip; 404 before the first promotion."""
    pointer = _current(registry)
    files = registry.files(str(pointer["version"]))
    if MODEL not in files:
        raise errors.not_found(f"The current model {pointer['version']} has no {MODEL} in the registry.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(files):
            # the model is compressed already
            archive.writestr(name, files[name], zipfile.ZIP_STORED if name == MODEL else zipfile.ZIP_DEFLATED)
        archive.writestr(POINTER, json.dumps(pointer, indent=2), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def model_properties(registry: Registry) -> dict[str, str]:
    """creationTime: when the current model was trained; lastModifiedTime: when it was promoted."""
    pointer = _current(registry)
    promoted = pointer.get("promotedAt")
    try:
        trained = registry.load(str(pointer["version"])).meta.get("trainedAt")
    except ModelError as error:
        raise errors.not_found(f"The current model {pointer['version']} cannot be read: {error}") from None
    created = trained or promoted
    return {"creationTime": created, "lastModifiedTime": promoted or created}


def _invalid_import(message: str) -> errors.PersonalizerError:
    return errors.bad_request(f"The model cannot be imported: {message}", "InvalidModelImportFormat",
                              [errors.detail("InvalidModelImportFormat", message)])


def read_archive(data: bytes) -> tuple[LinearModel, dict[str, bytes], Optional[dict]]:
    """(the model, the archive's files but current.json, the exported pointer) of a zip made by
    `export_model`, or of a bare model.npz (itself a zip of .npy arrays); 400 when it is neither."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = [i for i in archive.infolist() if not i.is_dir()]
        if sum(i.file_size for i in entries) > MAX_IMPORT_BYTES:
            raise _invalid_import(f"the archive unpacks to more than {MAX_IMPORT_BYTES} bytes")
        names = {i.filename for i in entries}
        if MODEL in names:
            files = {i.filename: archive.read(i) for i in entries if "/" not in i.filename}
        elif "header.npy" in names:
            files = {MODEL: data}
        else:
            raise _invalid_import(f"the zip has no {MODEL} (export one with GET /model)")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise _invalid_import(f"not a zip archive ({error})") from None
    try:
        model = LinearModel.from_bytes(files[MODEL])
    except ModelError as error:
        raise _invalid_import(str(error)) from None
    exported = None
    if POINTER in files:
        try:
            exported = json.loads(files.pop(POINTER))
        except ValueError as error:
            raise _invalid_import(f"{POINTER} is not JSON ({error})") from None
        if not isinstance(exported, dict):
            raise _invalid_import(f"{POINTER} is not a JSON object")
    return model, files, exported


def import_model(registry: Registry, data: bytes, now: datetime) -> dict:
    """Save the archive's model as a new version and promote it; returns the new pointer."""
    if not data:
        raise _invalid_import("the body is empty; send the zip GET /model returned")
    model, files, exported = read_archive(data)
    version = retrain.new_version(now)
    imported = replace(model, version=version,
                       meta={**model.meta, "importedFrom": model.version, "importedAt": _iso(now)})
    previous = registry.pointer()  # also the pointer the promotion must still find
    files = {**files, MODEL: imported.to_bytes(),
             "features.json": json.dumps(model.space.to_dict(), indent=2).encode("utf-8"),
             "import.json": json.dumps({"importedAt": _iso(now), "importedFrom": model.version,
                                        "exportedPointer": exported}, indent=2).encode("utf-8")}
    registry.save(version, files)
    pointer = {"version": version, "promotedAt": _iso(now), "previous": (previous or {}).get("version"),
               "imported": {"from": model.version},
               "apprentice": (exported or {}).get("apprentice") or {"graduated": False}}
    try:
        registry.promote(pointer)
    except PromotionConflict as error:
        raise errors.PersonalizerError(409, "Conflict", f"The model was not imported: {error}; try again.") from None
    return pointer


def reset_model(registry: Registry) -> None:
    """The loop serves the baseline again; the next retrain fits a new model (the old versions stay stored)."""
    registry.reset()


# --- the logs ----------------------------------------------------------------------------------

def log_properties(load: Callable[..., tuple[pa.Table, pa.Table]], now: datetime, window_days: float) -> dict:
    """{"dateRange": {"from", "to"}}: the first and last personalizer decision within the window
    ({} when there is none)."""
    _, decisions = load(now - timedelta(days=window_days), now, (), ("decisionId", "time") + dataset.LOOP_COLUMNS)
    decisions = dataset.for_loop(decisions, dataset.PERSONALIZER)
    if not decisions.num_rows:
        return {"dateRange": {}}
    bounds = pc.min_max(decisions.column("time"))
    return {"dateRange": {"from": _iso(bounds["min"].as_py()), "to": _iso(bounds["max"].as_py())}}


def delete_log() -> None:
    """Refused: the decisions live in offerloop's event archive, shared with its offers loop."""
    raise errors.PersonalizerError(
        501, "NotImplemented",
        "Deleting the logs is not supported: offerloop keeps rank and reward events in its event archive (the "
        "raw and parquet containers), shared with its offers loop. Use logRetentionDays "
        "(PUT /configurations/service) to bound the window the loop learns from.", "OperationNotAllowed")


def feature_importances() -> None:
    """Refused: offerloop computes no feature importances."""
    raise errors.PersonalizerError(
        501, "NotImplemented", "Feature importances are not supported by offerloop's Personalizer-compatible API.",
        "OperationNotAllowed")


# --- evaluations -------------------------------------------------------------------------------

class EvaluationContract(EvaluationRequest):
    """Create Offline Evaluation, in the 2022-09-01-preview (enablePolicyOptimization) and v1.0
    (enableOfflineExperimentation) spellings."""

    enableOfflineExperimentation: Optional[bool] = None


class PolicyReference(_Body):
    """POST /configurations/applyFromEvaluation."""

    error_code: ClassVar[str] = "InvalidRequest"

    evaluationId: str = Field(min_length=1)
    policyName: str = Field(min_length=1)


class _Failed(Exception):
    """The evaluation cannot be computed (too little data); the message says why."""


def not_found(evaluation_id: str) -> errors.PersonalizerError:
    return errors.PersonalizerError(404, "ResourceNotFound", f"Evaluation {evaluation_id!r} does not exist.",
                                    "EvaluationNotFound")


def _checked_id(evaluation_id: str) -> str:
    if not 0 < len(evaluation_id) <= MAX_ID_LENGTH or not _ID.fullmatch(evaluation_id):
        raise errors.bad_request(f"The evaluation id must be 1 to {MAX_ID_LENGTH} characters, without control "
                                 "characters, '/', '\\', '?' or '#'.", "InvalidEvaluationContract")
    return evaluation_id


def _policy_settings(settings: LoopSettings, policy: dict[str, str], now: datetime) -> LoopSettings:
    """The loop's settings with this policy, as PUT /configurations/policy would set them."""
    return configuration.apply_policy(settings, json.dumps(policy).encode("utf-8"), now)


def _checked_policies(settings: LoopSettings, policies: list[dict[str, str]], now: datetime) -> None:
    for i, policy in enumerate(policies):
        try:
            _policy_settings(settings, policy, now)
        except errors.PersonalizerError as error:
            for d in error.details:
                d["target"] = f"policies[{i}].{d.get('target') or 'arguments'}"
            error.message = f"policies[{i}] ({policy['name']}): {error.message}"
            error.inner_code = "InvalidEvaluationContract"
            raise


def create_evaluation(evaluation_id: Optional[str], body: bytes, ports: Ports) -> dict[str, Any]:
    """Validate and store a pending evaluation (a new id when none is given), and start it; returns it."""
    request = errors.parse(EvaluationContract, body)
    evaluation_id = _checked_id(evaluation_id) if evaluation_id is not None else str(uuid.uuid4())
    now = ports.clock()
    policies = [{"name": p.name, "arguments": p.arguments} for p in request.policies]
    _checked_policies(ports.settings(), policies, now)
    if ports.evaluations.get(evaluation_id) is not None:
        raise errors.PersonalizerError(409, "Conflict", f"Evaluation {evaluation_id!r} exists already; delete it "
                                       "first or use another id.", "InvalidEvaluationContract")
    evaluation = {"id": evaluation_id, "name": request.name, "startTime": _iso(request.startTime),
                  "endTime": _iso(request.endTime), "creationTime": _iso(now), "evaluationType": "Manual",
                  "jobId": str(uuid.uuid4()), "status": PENDING, "policyResults": [],
                  "description": "The evaluation is running.",
                  "request": {"policies": policies, "enablePolicyOptimization": bool(
                      request.enablePolicyOptimization or request.enableOfflineExperimentation)}}
    ports.evaluations.put(evaluation)
    ports.run_later(lambda: run_evaluation(evaluation_id, ports))
    return evaluation


def get_evaluation(evaluation_id: str, ports: Ports) -> dict[str, Any]:
    evaluation = ports.evaluations.get(evaluation_id)
    if evaluation is None:
        raise not_found(evaluation_id)
    return evaluation


def list_evaluations(ports: Ports) -> list[dict[str, Any]]:
    """Every stored evaluation, the oldest first."""
    return sorted(ports.evaluations.list(), key=lambda e: (e.get("creationTime") or "", e.get("id") or ""))


def delete_evaluation(evaluation_id: str, ports: Ports) -> None:
    if not ports.evaluations.delete(evaluation_id):
        raise not_found(evaluation_id)


def run_evaluation(evaluation_id: str, ports: Ports) -> Optional[dict[str, Any]]:
    """Compute a stored evaluation and store its results (or why it failed); returns it, or None
    when it was deleted meanwhile."""
    evaluation = ports.evaluations.get(evaluation_id)
    if evaluation is None:
        return None
    try:
        results, description, optimal = _evaluate(evaluation, ports)
        evaluation.update(status=COMPLETED, policyResults=results, description=description)
        if optimal:
            evaluation["optimalPolicy"] = optimal
    except _Failed as reason:
        evaluation.update(status=FAILED, description=str(reason))
    except errors.PersonalizerError as error:
        evaluation.update(status=FAILED, description=error.message)
    except Exception as error:  # the job's own failure: stored, so GET says so instead of "running" forever
        log.exception("personalizer evaluation %s failed", evaluation_id)
        evaluation.update(status=FAILED, description=f"The evaluation failed: {type(error).__name__}: {error}")
    if ports.evaluations.get(evaluation_id) is None:
        return None  # deleted while it ran
    ports.evaluations.put(evaluation)
    return evaluation


def _online(registry: Registry) -> tuple[Optional[LinearModel], str]:
    """The served model and its label (the baseline before the first promotion)."""
    pointer = registry.pointer()
    if not pointer:
        return None, "baseline"
    try:
        model = registry.load(str(pointer["version"]))
    except ModelError as error:
        log.warning("evaluation: the current model cannot be read, the baseline stands for it: %s", error)
        return None, "baseline"
    return model, model.version


def _evaluate(evaluation: dict[str, Any], ports: Ports) -> tuple[list[dict], str, Optional[str]]:
    settings, now = ports.settings(), ports.clock()
    start, end = _parse_time(evaluation["startTime"]), _parse_time(evaluation["endTime"])
    # rewards may come up to the reward wait time after the range's last decision
    as_of = min(now, end + timedelta(seconds=settings.reward_wait_seconds))
    if as_of <= start:
        raise _Failed("The evaluation's date range has not started yet.")
    events, decisions = ports.load(start, as_of, dataset.REWARD_COLUMNS,
                                   dataset.TRAINING_COLUMNS + dataset.LOOP_COLUMNS)
    decisions = dataset.for_loop(decisions, dataset.PERSONALIZER)
    decisions = decisions.filter(pc.less_equal(decisions.column("time"),
                                               pa.scalar(end, type=decisions.schema.field("time").type)))
    if not decisions.num_rows:
        raise _Failed(f"No logs exist in the date range: no rank was logged from {_iso(start)} to {_iso(end)}.")

    def candidates_of(ids: list[str], earliest: datetime) -> dict[str, str]:
        return dataset.candidate_texts(ports.load(earliest, as_of, (), dataset.CANDIDATE_COLUMNS, decision_ids=ids)[1],
                                       ids)

    online, online_version = _online(ports.registry)
    requested = evaluation.get("request", {}).get("policies", [])
    custom = [(p, _policy_settings(settings, p, now)) for p in requested]

    def trained(loop: LoopSettings, current: Optional[LinearModel], label: str, tag: str) -> retrain.Trained:
        fitted = retrain.train(events, decisions, ports.learning_config(loop), as_of,
                               f"evaluation-{evaluation['id']}-{tag}", current, label, candidates_of)
        figures = fitted.report.get("evaluation")
        if not figures or not figures.get("heldOutEvents"):
            reason = fitted.report.get("reason") or "no held-out events"
            raise _Failed(f"The evaluation needs more data: {reason}.")
        return fitted

    # the first fit also evaluates the online model; without custom policies, the loop's own
    # policy is fitted only for that (and for its reward model, which doubly robust needs)
    first_settings = custom[0][1] if custom else settings
    first = trained(first_settings, online, ONLINE, "0")
    span = _span(first)
    online_figures = first.report["evaluation"]["current"]
    baseline_figures = (online_figures if online is None
                        else trained(first_settings, None, BASELINE, "baseline").report["evaluation"]["current"])
    events_count = first.report["evaluation"]["heldOutEvents"]
    results = [_result(settings.policy_name, settings.policy_arguments, ONLINE, online_figures, events_count, span,
                       {"modelVersion": online_version}),
               _result("Baseline", "", BASELINE, baseline_figures, events_count, span, {})]
    for i, (policy, loop) in enumerate(custom):
        figures = (first if i == 0 else trained(loop, online, ONLINE, str(i))).report["evaluation"]
        results.append(_result(policy["name"], policy["arguments"], CUSTOM, figures["candidate"],
                               figures["heldOutEvents"], span, {"differenceFromOnline": figures["difference"]}))
    data = first.report["data"]
    description = (f"Evaluated on {events_count} held-out events ({_iso(span[0])} to {_iso(span[1])}), the newest "
                   f"{ports.learning_config(settings).holdout:.0%} of {data['examples']} settled examples; custom "
                   f"policies were fitted on the {data.get('trainExamples')} before them. averageReward is the IPS "
                   "estimate; offerloop's doubly robust estimate is beside it.")
    optimal = None
    if evaluation.get("request", {}).get("enablePolicyOptimization"):
        # no search over policies: the best of the evaluated ones by the doubly robust estimate
        ranked = [r for r in results if r["policySource"] in (ONLINE, CUSTOM)]
        optimal = max(ranked, key=lambda r: r["totalSummary"]["doublyRobust"]["estimate"])["name"]
        description += f" The best evaluated policy by the doubly robust estimate: {optimal}."
    return results, description, optimal


def _span(trained: retrain.Trained) -> tuple[datetime, datetime]:
    """The held-out events' time range: from the last training example's time to the last example's."""
    last = _parse_time(trained.report["data"]["to"])
    fitted_to = ((trained.model.meta if trained.model is not None else {}).get("dataRange") or {}).get("to")
    return (_parse_time(fitted_to) if fitted_to else _parse_time(trained.report["data"]["from"])), last


def _summary(figures: dict[str, dict[str, float]], events: int, span: tuple[datetime, datetime]) -> dict[str, Any]:
    """Personalizer's PolicyResultSummary from offerloop's estimates (see the module doc)."""
    ips, snips, dr = figures.get("ips", {}), figures.get("snips", {}), figures.get("dr", {})
    numerator = ips.get("estimate", 0.0) * events
    summary: dict[str, Any] = {
        "timeStamp": _iso(span[1]), "aggregateTimeWindow": iso_duration((span[1] - span[0]).total_seconds()),
        "ipsEstimatorNumerator": round(numerator, 6), "ipsEstimatorDenominator": events,
        "averageReward": ips.get("estimate"),
        "confidenceInterval": round((ips.get("high", 0.0) - ips.get("low", 0.0)) / 2, 6),
    }
    if snips.get("estimate"):
        summary["snipsEstimatorDenominator"] = round(numerator / snips["estimate"], 3)  # from rounded figures
    for name, interval in (("ips", ips), ("snips", snips), ("doublyRobust", dr)):
        if interval:
            summary[name] = {"estimate": interval["estimate"],
                             "confidenceInterval": [interval["low"], interval["high"]]}
    return summary


def _result(name: str, arguments: str, source: str, figures: dict, events: int, span: tuple[datetime, datetime],
            extra: dict[str, Any]) -> dict[str, Any]:
    summary = _summary(figures, events, span)
    return {"name": name, "arguments": arguments, "policySource": source, "summary": [summary],
            "totalSummary": summary, **extra}


def v1_json(evaluation: dict[str, Any]) -> dict[str, Any]:
    """An evaluation in v1.0's and v1.1-preview's shape."""
    keys = ("id", "name", "startTime", "endTime", "jobId", "status", "policyResults", "evaluationType",
            "optimalPolicy", "creationTime", "description")
    return {k: evaluation[k] for k in keys if evaluation.get(k) is not None}


def preview_json(evaluation: dict[str, Any], content: bool = True) -> dict[str, Any]:
    """An evaluation in 2022-09-01-preview's shape (a list shows it without `content`)."""
    out = {k: evaluation[k] for k in ("id", "name", "startTime", "endTime", "creationTime", "evaluationType",
                                      "description", "optimalPolicy") if evaluation.get(k) is not None}
    out["status"] = PREVIEW_STATUS.get(evaluation.get("status"), "NotSubmitted")
    if content and evaluation.get("status") == COMPLETED:
        out["content"] = {"startTime": evaluation["startTime"], "endTime": evaluation["endTime"],
                          "value": [_preview_result(r) for r in evaluation.get("policyResults", [])]}
    return out


def _preview_result(result: dict[str, Any]) -> dict[str, Any]:
    total = result["totalSummary"]
    interval = total.get("ips", {}).get("confidenceInterval") or []
    point = {"timeStamp": total["timeStamp"], "expectedReward": total["averageReward"], "confidenceInterval": interval}
    extra = {k: total[k] for k in ("ips", "snips", "doublyRobust") if k in total}
    return {"name": result["name"], "arguments": result["arguments"], "policySource": result["policySource"],
            "slotId": "",
            "summary": {"expectedReward": total["averageReward"], "confidenceInterval": interval, **extra},
            "timeseries": {"data": [point]}}


def apply_from_evaluation(body: bytes, ports: Ports) -> LoopSettings:
    """The evaluated policy becomes the loop's (a custom one; the online one is kept as it is)."""
    reference = errors.parse(PolicyReference, body)
    evaluation = get_evaluation(reference.evaluationId, ports)
    if evaluation.get("status") != COMPLETED:
        raise errors.bad_request(f"Evaluation {reference.evaluationId!r} has not completed (it is "
                                 f"{evaluation.get('status')}).", "OperationNotAllowed")
    found = [r for r in evaluation.get("policyResults", []) if r.get("name") == reference.policyName]
    if not found:
        raise errors.PersonalizerError(404, "ResourceNotFound", f"Evaluation {reference.evaluationId!r} has no "
                                       f"policy named {reference.policyName!r}.", "LearningSettingsNotFound")
    result = found[0]
    settings = ports.settings()
    if result["policySource"] == BASELINE:
        raise errors.bad_request("The baseline is not a learning policy; apply a custom or the online one.",
                                 "OperationNotAllowed")
    if result["policySource"] == ONLINE:
        return settings
    updated = _policy_settings(settings, {"name": result["name"], "arguments": result["arguments"]}, ports.clock())
    return ports.save_settings(updated)
