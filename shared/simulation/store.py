"""Simulation runs in Redis: which run is current, each run's configuration and its counters.

Keys (each run's expire RUN_TTL_SECONDS after its last update):
  offerloop:sim:current               the running run's id (absent when none runs)
  offerloop:sim:last                  the latest run's id (for its status after it stopped)
  offerloop:sim:run:<id>              the run's configuration (JSON)
  offerloop:sim:run:<id>:totals       hash of counters (actions, impressions, clicks, sessions,
                                      expected, random, oracle)
  offerloop:sim:run:<id>:s:<epoch s>  actions in that second (kept two minutes)
  offerloop:sim:run:<id>:m:<epoch m>  hash of that minute's counters (the CTR curve)
Counters are Redis increments, so concurrent actions on any number of hosts add up exactly.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable, Optional

import redis

from .run import CURVE_MINUTES, RATE_WINDOW_SECONDS, AlreadyRunning, RunConfig
from .shopper import Tally

PREFIX = "offerloop:sim:"
CURRENT = PREFIX + "current"
LAST = PREFIX + "last"
RUN_TTL_SECONDS = 7 * 24 * 3600
SECOND_TTL_SECONDS = 120
INTEGERS = ("actions", "impressions", "clicks", "sessions")
FLOATS = ("expected", "random", "oracle")
ACTIVE_CACHE_SECONDS = 1.0  # how long a step trusts its last look at the current run


def _run_key(run_id: str) -> str:
    return f"{PREFIX}run:{run_id}"


def _tally(values: dict) -> Tally:
    return Tally(**{k: int(values.get(k) or 0) for k in INTEGERS}, **{k: float(values.get(k) or 0) for k in FLOATS})


class RunStore:
    def __init__(self, client: Callable[[], redis.Redis], monotonic: Callable[[], float] = time.monotonic):
        self._client = client
        self._monotonic = monotonic
        self._active: tuple[float, Optional[RunConfig]] = (float("-inf"), None)

    def begin(self, config: RunConfig) -> None:
        """Make `config` the current run; AlreadyRunning when another one is."""
        r = self._client()
        if not r.set(CURRENT, config.runId, nx=True):
            raise AlreadyRunning(r.get(CURRENT) or "?")
        pipe = r.pipeline()
        pipe.set(_run_key(config.runId), config.model_dump_json(), ex=RUN_TTL_SECONDS)
        pipe.set(LAST, config.runId)
        pipe.execute()
        self._active = (self._monotonic(), config)

    def current(self) -> Optional[RunConfig]:
        """The running run, or None."""
        r = self._client()
        run_id = r.get(CURRENT)
        return self._config(r, run_id) if run_id else None

    def latest(self) -> Optional[RunConfig]:
        """The running run, else the last one that ran."""
        r = self._client()
        run_id = r.get(CURRENT) or r.get(LAST)
        return self._config(r, run_id) if run_id else None

    def _config(self, r: redis.Redis, run_id: str) -> Optional[RunConfig]:
        raw = r.get(_run_key(run_id))
        return RunConfig.model_validate_json(raw) if raw else None

    def end(self, config: RunConfig) -> None:
        """Record the run as stopped and clear the current run (if it is still this one)."""
        r = self._client()
        r.set(_run_key(config.runId), config.model_dump_json(), ex=RUN_TTL_SECONDS)
        # Compare-and-delete: a run started meanwhile stays current.
        r.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0",
               1, CURRENT, config.runId)
        self._active = (float("-inf"), None)

    def active(self, run_id: str) -> Optional[RunConfig]:
        """The run's configuration while it is the current run, else None. Redis is asked which
        run is current at most every ACTIVE_CACHE_SECONDS, and for a configuration only when
        the current run changed."""
        seen_at, config = self._active
        if self._monotonic() - seen_at > ACTIVE_CACHE_SECONDS:
            r = self._client()
            current = r.get(CURRENT)
            if config is None or config.runId != current:
                config = self._config(r, current) if current else None
            self._active = (self._monotonic(), config)
        return config if config is not None and config.runId == run_id else None

    def record(self, run_id: str, tally: Tally, now: datetime) -> None:
        """Add one action's counters to the run's totals, its second and its minute."""
        epoch = int(now.timestamp())
        base = _run_key(run_id)
        pipe = self._client().pipeline(transaction=False)
        for key, ttl in ((f"{base}:totals", RUN_TTL_SECONDS), (f"{base}:m:{epoch // 60}", RUN_TTL_SECONDS)):
            for name in INTEGERS:
                value = getattr(tally, name)
                if value:
                    pipe.hincrby(key, name, value)
            for name in FLOATS:
                value = getattr(tally, name)
                if value:
                    pipe.hincrbyfloat(key, name, value)
            pipe.expire(key, ttl)
        if tally.actions:
            pipe.incrby(f"{base}:s:{epoch}", tally.actions)
            pipe.expire(f"{base}:s:{epoch}", SECOND_TTL_SECONDS)
        pipe.execute()

    def counters(self, config: RunConfig, now: datetime) -> tuple[Tally, int, list[tuple[str, Tally]]]:
        """(totals, actions in the last complete seconds of the rate window, the per-minute curve)."""
        base = _run_key(config.runId)
        epoch = int(now.timestamp())
        started = int(datetime.fromisoformat(config.startedAt.replace("Z", "+00:00")).timestamp())
        ended = int(datetime.fromisoformat(config.stoppedAt.replace("Z", "+00:00")).timestamp()) \
            if config.stoppedAt else epoch
        minutes = list(range(max(started // 60, ended // 60 - CURVE_MINUTES + 1), ended // 60 + 1))
        seconds = range(epoch - RATE_WINDOW_SECONDS + 1, epoch)
        pipe = self._client().pipeline(transaction=False)
        pipe.hgetall(f"{base}:totals")
        pipe.mget([f"{base}:s:{s}" for s in seconds])
        for minute in minutes:
            pipe.hgetall(f"{base}:m:{minute}")
        totals, recent, *per_minute = pipe.execute()
        curve = [(datetime.fromtimestamp(m * 60, timezone.utc).isoformat().replace("+00:00", "Z"), _tally(v))
                 for m, v in zip(minutes, per_minute)]
        return _tally(totals), sum(int(v or 0) for v in recent), curve
