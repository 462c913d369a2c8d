"""The personalizer loop's stored settings: Personalizer's service configuration and learning policy.

`LoopSettings` holds both, stored as JSON (`to_dict`/`from_dict`) and shown through the API in
Personalizer's shapes (`service_json`, `policy_json`; ISO 8601 durations such as "PT10M").
Updates are validated as Personalizer validates them and answer 400 naming the field
(`apply_service`, `apply_policy`).

The policy's arguments are Vowpal Wabbit's command line, as in Personalizer. Offerloop trains
its own model (shared/learning), so only some flags mean something here: --epsilon (the
exploration percentage: the two are one setting, changing either changes both), --softmax and
--lambda (softmax exploration), -b/--bit_precision (hashed feature bits), -q/--quadratic ::
and --interactions :: (every context namespace crossed with every action namespace) and --l2
(the fit's inverse regularization C = 1 / l2). Other flags Personalizer's policies use are
accepted and kept in the stored arguments without effect; unknown flags, and exploration
algorithms or namespace pairs offerloop cannot honour, are refused.
"""
from __future__ import annotations

import math
import re
import shlex
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar, Mapping, Optional

from pydantic import field_validator
from pydantic_core import PydanticCustomError

from shared.learning.explore import EPSILON_GREEDY, SOFTMAX, Exploration
from shared.learning.features import FeatureSpace
from shared.learning.model import FitOptions

from .errors import PersonalizerError, bad_request, detail, parse
from .ranking import APPRENTICE, LEARNING_MODES, ONLINE
from .requests import PolicyContract, _Body

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
DEFAULT_POLICY_NAME = "Default"
# Personalizer's default learning settings
DEFAULT_POLICY_ARGUMENTS = "--cb_explore_adf --quiet --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"
DEFAULT_BITS = 18  # Vowpal Wabbit's default -b
DEFAULT_C = 0.1  # the fit's inverse L2 strength when the policy has no --l2
REWARD_AGGREGATIONS = ("earliest", "sum")  # Personalizer's: the earliest reward, or their sum
MIN_WAIT = timedelta(seconds=1)
MAX_WAIT = timedelta(days=2)  # "should be two days or less"
MIN_EXPORT = timedelta(seconds=1)

# Vowpal Wabbit flags: canonical name -> takes a value; short names -> canonical
_MEANINGFUL = {"epsilon": True, "softmax": False, "lambda": True, "bit_precision": True, "quadratic": True,
               "interactions": True, "l2": True}
_KEPT = {
    "cb_explore_adf": False, "ccb_explore_adf": False, "cb_adf": False, "quiet": False, "dsjson": False,
    "noconstant": False, "adaptive": False, "normalized": False, "invariant": False, "sgd": False, "coin": False,
    "leave_duplicate_interactions": False, "save_resume": False, "preserve_performance_counters": False,
    "nounif": False, "first_only": False, "no_stdin": False, "power_t": True, "learning_rate": True,
    "cb_type": True, "l1": True, "initial_t": True, "decay_learning_rate": True, "random_seed": True,
    "loss_function": True, "ignore": True, "ignore_linear": True, "keep": True, "id": True, "holdout_off": False,
}
_REFUSED = {
    **{k: "offerloop explores by epsilon-greedy (--epsilon) or softmax (--softmax --lambda) only"
       for k in ("bag", "cover", "first", "squarecb", "synthcover", "regcb", "regcbopt", "rnd", "cb_explore",
                 "cb", "cats", "slates")},
    "cubic": "offerloop learns pairwise interactions only (-q ::)",
}
_SHORT = {"b": "bit_precision", "q": "quadratic", "l": "learning_rate"}
_ALGORITHMS = ("cb_explore_adf", "ccb_explore_adf")
ALL_NAMESPACES = "::"


@dataclass(frozen=True)
class Policy:
    """What offerloop takes from a policy's arguments."""

    epsilon: Optional[float] = None
    softmax: bool = False
    softmax_lambda: Optional[float] = None
    bits: int = DEFAULT_BITS
    interactions: bool = False
    l2: Optional[float] = None


def _policy_error(message: str, code: str = "InvalidPolicyConfiguration") -> PersonalizerError:
    return bad_request(f"Invalid policy configuration: {message}", "InvalidPolicyConfiguration",
                       [detail(code, message, "arguments")])


def _tokens(arguments: str) -> list[tuple[str, Optional[str], str]]:
    """(canonical flag, value) pairs; a flag that takes a value takes the next token or its "=" part."""
    try:
        words = shlex.split(arguments)
    except ValueError as e:
        raise _policy_error(f"the arguments cannot be split into words ({e})") from None
    pairs: list[tuple[str, Optional[str], str]] = []
    i = 0
    while i < len(words):
        word, value = words[i], None
        i += 1
        if word.startswith("--"):
            name, eq, attached = word[2:].partition("=")
            value = attached if eq else None
        elif word.startswith("-") and len(word) > 1:
            name, attached = word[1], word[2:]
            name = _SHORT.get(name, name)
            value = attached or None
        else:
            raise _policy_error(f"{word!r} is not a flag (flags start with - or --)")
        if name in _REFUSED:
            raise _policy_error(f"--{name} is not supported: {_REFUSED[name]}", "UnsupportedPolicyFlag")
        takes = _MEANINGFUL.get(name, _KEPT.get(name))
        if takes is None:
            raise _policy_error(f"unknown flag {word.split('=')[0]!r}", "UnknownPolicyFlag")
        if takes and value is None:
            if i >= len(words):
                raise _policy_error(f"--{name} needs a value")
            value = words[i]
            i += 1
        elif not takes and value is not None:
            raise _policy_error(f"--{name} takes no value")
        pairs.append((name, value, word.split("=")[0]))
    return pairs


def _number(name: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):
        raise _policy_error(f"--{name} needs a number, got {value!r}")
    return number


def parse_policy(arguments: str) -> Policy:
    """The meaningful flags of a policy's arguments; PersonalizerError 400 for a policy offerloop cannot run."""
    pairs = _tokens(arguments)
    names = [n for n, _, _ in pairs]
    if not any(a in names for a in _ALGORITHMS):
        raise _policy_error("the learning policy must contain --cb_explore_adf (or --ccb_explore_adf)",
                            "MissingLearningPolicyAlgorithm")
    for name in ("epsilon", "lambda", "bit_precision", "l2"):
        if names.count(name) > 1:
            raise _policy_error(f"--{name} is given more than once")
    values: dict[str, Any] = {}
    interactions = False
    for name, value, spelled in pairs:
        if name in ("quadratic", "interactions"):
            if value != ALL_NAMESPACES:
                raise _policy_error(f"{spelled} {value}: offerloop crosses every context namespace with every action "
                                    f"namespace (-q ::) only; pairs of namespaces are not supported",
                                    "UnsupportedInteractions")
            interactions = True
        elif name == "epsilon":
            values["epsilon"] = _number(name, value)
            if not 0 <= values["epsilon"] <= 1:
                raise _policy_error(f"--epsilon must be from 0 to 1, got {value}")
        elif name == "lambda":
            lam = abs(_number(name, value))  # VW's softmax lambda is negative (it ranks costs)
            if lam == 0:
                raise _policy_error("--lambda must not be 0")
            values["softmax_lambda"] = lam
        elif name == "bit_precision":
            if not re.fullmatch(r"\d+", value or "") or not 8 <= int(value) <= 26:
                raise _policy_error(f"-b/--bit_precision must be an integer from 8 to 26, got {value}")
            values["bits"] = int(value)
        elif name == "l2":
            values["l2"] = _number(name, value)
            if values["l2"] < 0:
                raise _policy_error(f"--l2 must not be negative, got {value}")
        elif name == "softmax":
            values["softmax"] = True
    return Policy(interactions=interactions, **values)


def _epsilon_text(epsilon: float) -> str:
    return f"{epsilon:.10g}"


def with_epsilon(arguments: str, epsilon: float) -> str:
    """The arguments with --epsilon set to `epsilon` (replaced where it is, else appended)."""
    text = _epsilon_text(epsilon)
    pattern = re.compile(r"(--epsilon(?:=|\s+))(\S+)")
    if pattern.search(arguments):
        return pattern.sub(lambda m: m.group(1) + text, arguments, count=1)
    return f"{arguments.rstrip()} --epsilon {text}".lstrip()


def iso_duration(seconds: float) -> str:
    """Seconds as an ISO 8601 duration: 600 -> "PT10M", 86400 -> "P1D", 0.5 -> "PT0.5S"."""
    micros = round(abs(seconds) * 1_000_000)
    days, micros = divmod(micros, 86_400_000_000)
    hours, micros = divmod(micros, 3_600_000_000)
    minutes, micros = divmod(micros, 60_000_000)
    secs = f"{micros / 1_000_000:.6f}".rstrip("0").rstrip(".")
    time = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if micros else "")
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    if text == "P":
        text = "PT0S"
    return ("-" if seconds < 0 else "") + text


def iso_datetime(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


@dataclass(frozen=True)
class LoopSettings:
    """The personalizer loop's service configuration and learning policy (Personalizer's names in brackets)."""

    reward_wait_seconds: float = 600.0  # [rewardWaitTime]
    default_reward: float = 0.0  # [defaultReward]
    reward_aggregation: str = "earliest"  # [rewardAggregation]: "earliest" or "sum"
    exploration_percentage: float = 0.2  # [explorationPercentage], a fraction; the policy's --epsilon
    model_export_seconds: float = 300.0  # [modelExportFrequency]: the retrain cadence
    log_retention_days: int = -1  # [logRetentionDays]: -1 keeps logs forever
    learning_mode: str = ONLINE  # [learningMode]: Online, Apprentice or LoggingOnly
    policy_name: str = DEFAULT_POLICY_NAME  # [policy name]
    policy_arguments: str = DEFAULT_POLICY_ARGUMENTS  # [policy arguments]
    last_edit: datetime = EPOCH  # [lastConfigurationEditDate]
    model_retrain_days: int = 0  # [modelRetrainDays]: 0 is the service's default window
    _policy: Policy = field(default=Policy(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.exploration_percentage <= 1:
            raise ValueError(f"exploration_percentage must be from 0 to 1, got {self.exploration_percentage}")
        if not -1 <= self.default_reward <= 1:
            raise ValueError(f"default_reward must be from -1 to 1, got {self.default_reward}")
        if self.reward_aggregation not in REWARD_AGGREGATIONS:
            raise ValueError(f"reward_aggregation must be one of {REWARD_AGGREGATIONS}, got {self.reward_aggregation!r}")
        if self.learning_mode not in LEARNING_MODES:
            raise ValueError(f"learning_mode must be one of {LEARNING_MODES}, got {self.learning_mode!r}")
        if not self.reward_wait_seconds > 0 or not self.model_export_seconds > 0:
            raise ValueError("reward_wait_seconds and model_export_seconds must be positive")
        if self.log_retention_days < -1 or self.model_retrain_days < 0:
            raise ValueError("log_retention_days must be -1 or more, model_retrain_days 0 or more")
        object.__setattr__(self, "last_edit", _utc(self.last_edit))
        # --epsilon and explorationPercentage are one setting: the stored arguments always agree
        object.__setattr__(self, "policy_arguments", with_epsilon(self.policy_arguments, self.exploration_percentage))
        try:
            object.__setattr__(self, "_policy", parse_policy(self.policy_arguments))
        except PersonalizerError as e:
            raise ValueError(e.message) from None

    def exploration(self) -> Exploration:
        """Epsilon-greedy at the exploration percentage, or softmax when the policy says --softmax."""
        policy = self._policy
        if policy.softmax:
            lam = policy.softmax_lambda if policy.softmax_lambda is not None else Exploration().softmax_lambda
            return Exploration(SOFTMAX, epsilon=self.exploration_percentage, softmax_lambda=lam)
        return Exploration(EPSILON_GREEDY, epsilon=self.exploration_percentage)

    def space(self) -> FeatureSpace:
        """-b bits; with -q :: every context namespace times every action namespace; no derived features."""
        interactions = (("*", "*"),) if self._policy.interactions else ()
        return FeatureSpace(bits=self._policy.bits, interactions=interactions, derived=False)

    def fit(self) -> FitOptions:
        """C = 1 / --l2; without --l2 (or --l2 0, VW's default) offerloop's C of 0.1."""
        l2 = self._policy.l2
        return FitOptions(c=1.0 / l2 if l2 else DEFAULT_C)

    def to_dict(self) -> dict[str, Any]:
        raw = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        raw["last_edit"] = iso_datetime(self.last_edit)
        return raw

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "LoopSettings":
        """Stored settings; missing keys take the defaults; ValueError when they are not valid."""
        names = {f.name for f in fields(cls) if f.init}
        values = {k: v for k, v in raw.items() if k in names}
        if isinstance(values.get("last_edit"), str):
            values["last_edit"] = datetime.fromisoformat(values["last_edit"].replace("Z", "+00:00"))
        return cls(**values)


def defaults(base: Optional[Any] = None, now: Optional[datetime] = None) -> LoopSettings:
    """Personalizer's defaults: rewards wait 10 minutes (default reward 0, the earliest counts),
    20% exploration, a new model every 5 minutes, logs kept, Online, the default learning policy.

    `base`, when given, is the deployment's `shared.settings.Learning`: its reward wait, default
    reward, aggregation, exploration percentage (0-100) and policy (softmax or not) seed the loop.
    """
    settings = LoopSettings(last_edit=now or EPOCH)
    if base is None:
        return settings
    arguments = DEFAULT_POLICY_ARGUMENTS
    if getattr(base, "exploration_policy", EPSILON_GREEDY) == SOFTMAX:
        arguments += " --softmax"
    return replace(settings, reward_wait_seconds=float(base.reward_wait_seconds),
                   default_reward=float(base.default_reward), reward_aggregation=base.reward_aggregation,
                   exploration_percentage=float(base.exploration_percentage) / 100, policy_arguments=arguments,
                   learning_mode=APPRENTICE if getattr(base, "apprentice_mode", False) else ONLINE)


def service_json(s: LoopSettings) -> dict[str, Any]:
    """GET /configurations/service."""
    return {
        "rewardWaitTime": iso_duration(s.reward_wait_seconds),
        "defaultReward": s.default_reward,
        "rewardAggregation": s.reward_aggregation,
        "explorationPercentage": s.exploration_percentage,
        "modelExportFrequency": iso_duration(s.model_export_seconds),
        "logMirrorEnabled": False,
        "logRetentionDays": s.log_retention_days,
        "modelRetrainDays": s.model_retrain_days,
        "lastConfigurationEditDate": iso_datetime(s.last_edit),
        "learningMode": s.learning_mode,
        "isAutoOptimizationEnabled": False,
    }


def _range(low: float, high: float, what: str):
    def check(value: float) -> float:
        if not low <= value <= high:
            raise PydanticCustomError("ValueOutOfRange", "{what} must be from {low} to {high}; got {value}",
                                      {"what": what, "low": low, "high": high, "value": value})
        return value
    return check


class ServiceConfiguration(_Body):
    """PUT /configurations/service: Personalizer's required fields, and the optional ones offerloop reads."""

    error_code: ClassVar[str] = "InvalidServiceConfiguration"

    rewardWaitTime: timedelta
    defaultReward: float
    rewardAggregation: str
    explorationPercentage: float
    modelExportFrequency: timedelta
    logRetentionDays: int
    modelRetrainDays: Optional[int] = None
    learningMode: Optional[str] = None
    logMirrorEnabled: Optional[bool] = None
    logMirrorSasUri: Optional[str] = None
    isAutoOptimizationEnabled: Optional[bool] = None

    _reward = field_validator("defaultReward")(_range(-1, 1, "defaultReward"))
    _exploration = field_validator("explorationPercentage")(_range(0, 1, "explorationPercentage (a fraction)"))

    @field_validator("rewardWaitTime")
    @classmethod
    def _wait(cls, value: timedelta) -> timedelta:
        if not MIN_WAIT <= value <= MAX_WAIT:
            raise PydanticCustomError("InvalidRewardWaitTime",
                                      "rewardWaitTime must be from 1 second (PT1S) to 2 days (P2D); got {got}",
                                      {"got": iso_duration(value.total_seconds())})
        return value

    @field_validator("modelExportFrequency")
    @classmethod
    def _export(cls, value: timedelta) -> timedelta:
        if value < MIN_EXPORT:
            raise PydanticCustomError("InvalidModelExportFrequency",
                                      "modelExportFrequency must be at least 1 second (PT1S); got {got}",
                                      {"got": iso_duration(value.total_seconds())})
        return value

    @field_validator("rewardAggregation")
    @classmethod
    def _aggregation(cls, value: str) -> str:
        if value.lower() not in REWARD_AGGREGATIONS:
            raise PydanticCustomError("InvalidRewardAggregation",
                                      "rewardAggregation must be \"earliest\" or \"sum\"; got {got!r}", {"got": value})
        return value.lower()

    @field_validator("learningMode")
    @classmethod
    def _mode(cls, value: Optional[str]) -> Optional[str]:
        if value is None:
            return value
        known = {m.lower(): m for m in LEARNING_MODES}
        if value.lower() not in known:
            raise PydanticCustomError("InvalidLearningMode",
                                      "learningMode must be Online, Apprentice or LoggingOnly; got {got!r}", {"got": value})
        return known[value.lower()]

    def problems(self) -> list[dict[str, Any]]:
        found = []
        if self.logMirrorEnabled:
            found.append(detail("LogMirrorNotSupported", "Log mirroring is not supported: offerloop keeps its "
                                "decision and reward logs in its own event archive", "logMirrorEnabled"))
        if self.isAutoOptimizationEnabled:
            found.append(detail("AutoOptimizationNotSupported", "Auto-optimization is not supported: run an offline "
                                "evaluation and apply its policy instead", "isAutoOptimizationEnabled"))
        wait_days = self.rewardWaitTime.total_seconds() / 86400
        least = math.ceil(wait_days) + 1
        if self.logRetentionDays != -1 and self.logRetentionDays < least:
            found.append(detail("InvalidLogRetentionDays", "Log Retention Days must be -1 to store indefinitely or "
                                f"must be at least reward wait time plus 1 day (rounded up): {least}; "
                                f"got {self.logRetentionDays}", "logRetentionDays"))
        retrain = self.modelRetrainDays
        if retrain is not None and (retrain < 0 or (self.logRetentionDays != -1 and retrain > self.logRetentionDays)):
            found.append(detail("InvalidModelRetrainDays", "Model retrain days must be between 0 and the number of "
                                f"log retention days; got {retrain}", "modelRetrainDays"))
        return found


def apply_service(s: LoopSettings, body: bytes, now: datetime) -> LoopSettings:
    """The settings after PUT /configurations/service; PersonalizerError 400 naming each bad field."""
    c = parse(ServiceConfiguration, body)
    mode = c.learningMode or s.learning_mode
    wait = c.rewardWaitTime.total_seconds()
    if mode != s.learning_mode:
        changed = [name for name, before, after in (
            ("defaultReward", s.default_reward, c.defaultReward),
            ("rewardWaitTime", s.reward_wait_seconds, wait),
            ("rewardAggregation", s.reward_aggregation, c.rewardAggregation)) if before != after]
        if changed:
            raise bad_request(
                "Updating defaultReward, rewardWaitTime and rewardAggregation when changing learning mode is not "
                "allowed. Make the mode change and then change the additional settings with an additional API call.",
                "InvalidLearningModeServiceConfiguration",
                [detail("InvalidLearningModeServiceConfiguration", f"{name} changed with learningMode", name)
                 for name in changed])
    return replace(s, reward_wait_seconds=wait, default_reward=c.defaultReward,
                   reward_aggregation=c.rewardAggregation, exploration_percentage=c.explorationPercentage,
                   model_export_seconds=c.modelExportFrequency.total_seconds(), log_retention_days=c.logRetentionDays,
                   model_retrain_days=s.model_retrain_days if c.modelRetrainDays is None else c.modelRetrainDays,
                   learning_mode=mode, last_edit=now)


def policy_json(s: LoopSettings) -> dict[str, str]:
    """GET /configurations/policy."""
    return {"name": s.policy_name, "arguments": s.policy_arguments}


def apply_policy(s: LoopSettings, body: bytes, now: datetime) -> LoopSettings:
    """The settings after PUT /configurations/policy: its --epsilon becomes the exploration percentage
    (a policy without --epsilon keeps the current one, written into its arguments)."""
    contract = parse(PolicyContract, body)
    policy = parse_policy(contract.arguments)
    epsilon = s.exploration_percentage if policy.epsilon is None else policy.epsilon
    return replace(s, policy_name=contract.name, policy_arguments=contract.arguments.strip(),
                   exploration_percentage=epsilon, last_edit=now)


def reset_policy(s: LoopSettings, now: datetime) -> LoopSettings:
    """DELETE /configurations/policy: the default learning policy, at the current exploration percentage."""
    return replace(s, policy_name=DEFAULT_POLICY_NAME, policy_arguments=DEFAULT_POLICY_ARGUMENTS, last_edit=now)

