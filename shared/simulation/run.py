"""A queue-driven simulation run: its configuration (from POST /api/simulation/start) and its status.

A run is what `start` validated plus what it derived: the think and return times that make
`users` shoppers take about `rate` actions per second (`rate` 0: no waiting at all), and the
world's parameters. Counters (`Tally`) are added up per run, per second (for actions/s) and
per minute (for the CTR curve); `status` turns them into the answer of GET /api/simulation/status.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from functools import cached_property
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .shopper import Behaviour, Tally, Timing
from .world import WorldParams

MAX_USERS = 10_000
MAX_RATE = 5_000.0
DEFAULT_RATE = 10.0
RATE_WINDOW_SECONDS = 10  # actions/s is averaged over the last complete seconds of this window
CURVE_MINUTES = 120  # the status's CTR curve covers at most this many minutes


class InvalidStart(Exception):
    """The start request is not valid; `errors` names each bad field."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))


class AlreadyRunning(Exception):
    def __init__(self, run_id: str):
        super().__init__(f"simulation {run_id} is running; stop it first")
        self.run_id = run_id


class StartRequest(BaseModel):
    """The body of POST /api/simulation/start."""

    model_config = ConfigDict(extra="forbid", strict=True)

    users: int = Field(ge=1, le=MAX_USERS)
    rate: float = Field(default=DEFAULT_RATE, ge=0, le=MAX_RATE)  # actions/s; 0 = as fast as possible
    seed: Optional[int] = Field(default=None, ge=0, le=2 ** 31 - 1)
    slots: int = Field(default=1, ge=1, le=10)  # offers asked for on each page
    world: dict[str, Any] = Field(default_factory=dict)  # WorldParams overrides (its seed defaults to the run's)

    @field_validator("rate", mode="before")
    @classmethod
    def _int_rate(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


class RunConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    runId: str
    users: int
    rate: float
    seed: int
    slots: int
    world: dict[str, Any]
    thinkSeconds: float
    returnSeconds: float
    startedAt: str
    stoppedAt: Optional[str] = None
    state: Literal["running", "stopped"] = "running"

    @property
    def behaviour(self) -> Behaviour:
        return Behaviour(slots=self.slots)

    @property
    def timing(self) -> Timing:
        return Timing(self.thinkSeconds, self.returnSeconds)

    @cached_property
    def params(self) -> WorldParams:  # once per configuration: steps ask for it every time
        return WorldParams.from_dict(self.world)


def _iso(now: datetime) -> str:
    return now.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def configure(body: Any, now: datetime, default_seed: int) -> RunConfig:
    """A new run from a start request body (a decoded JSON value); raises InvalidStart."""
    if not isinstance(body, dict):
        raise InvalidStart([{"field": "", "message": "the body must be a JSON object like {\"users\": 100}"}])
    try:
        request = StartRequest.model_validate(body)
    except ValidationError as error:
        raise InvalidStart([{"field": ".".join(map(str, e["loc"])) or "", "message": e["msg"]}
                            for e in error.errors()]) from None
    seed = request.seed if request.seed is not None else default_seed
    try:
        params = WorldParams.from_dict({"seed": seed, **request.world})
    except (TypeError, ValueError) as error:
        raise InvalidStart([{"field": "world", "message": str(error)}]) from None
    behaviour = Behaviour(slots=request.slots)
    timing = Timing.for_rate(request.users, request.rate, behaviour)
    return RunConfig(runId=uuid.uuid4().hex[:12], users=request.users, rate=request.rate, seed=seed,
                     slots=request.slots, world=params.to_dict(), thinkSeconds=round(timing.think_seconds, 3),
                     returnSeconds=round(timing.return_seconds, 3), startedAt=_iso(now))


def stopped(config: RunConfig, now: datetime) -> RunConfig:
    return config.model_copy(update={"state": "stopped", "stoppedAt": _iso(now)})


def _ratio(numerator: float, denominator: float) -> Optional[float]:
    return numerator / denominator if denominator else None


def rates(tally: Tally) -> dict[str, Optional[float]]:
    """Achieved CTR, and for the same impressions the expected CTR of what was shown, of a
    uniformly random choice and of the oracle; liftFraction = (ctr - random) / (oracle - random)."""
    ctr = _ratio(tally.clicks, tally.impressions)
    random_ctr, oracle_ctr = _ratio(tally.random, tally.impressions), _ratio(tally.oracle, tally.impressions)
    lift = None
    if ctr is not None and random_ctr is not None and oracle_ctr is not None and oracle_ctr > random_ctr:
        lift = (ctr - random_ctr) / (oracle_ctr - random_ctr)
    return {"ctr": ctr, "expectedCtr": _ratio(tally.expected, tally.impressions), "randomCtr": random_ctr,
            "oracleCtr": oracle_ctr, "liftFraction": lift}


def status(config: Optional[RunConfig], totals: Tally, recent_actions: int,
           curve: list[tuple[str, Tally]]) -> dict[str, Any]:
    """The GET /api/simulation/status answer."""
    if config is None:
        return {"state": "idle", "runId": None}
    body: dict[str, Any] = {"state": config.state, **config.model_dump(exclude={"state"})}
    body.update({"actions": totals.actions, "actionsPerSecond": recent_actions / (RATE_WINDOW_SECONDS - 1),
                 "sessions": totals.sessions, "impressions": totals.impressions, "clicks": totals.clicks})
    body.update(rates(totals))
    body["curve"] = [{"minute": minute, "impressions": t.impressions, "clicks": t.clicks, **rates(t)}
                     for minute, t in curve if t.impressions]
    return body

