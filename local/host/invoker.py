"""Run invocations: the thread pool or event loop, output writers, retries, one log line each.

Sync functions run in a thread pool sized by PYTHON_THREADPOOL_THREAD_COUNT (Python's
default when unset, as in the worker), `async def` functions on the event loop. After a
successful call, output bindings are encoded and handed to their writers; a failure
there fails the invocation, as in the host.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional

from azure.functions.meta import Datum

from .loader import FunctionSpec
from .worker import REGISTRY, Context, Out, Plan, RetryContext, encode, generic_decode, plan

log = logging.getLogger("Host.Invoker")


@dataclass
class Result:
    invocation_id: str
    succeeded: bool
    error: Optional[BaseException] = None
    return_datum: Optional[Datum] = None
    duration_ms: float = 0.0
    outputs: dict = field(default_factory=dict)


def _in_thread(invocation_id: str, function, args: dict):
    """Run a sync function in a pool thread, with the invocation id in thread-local storage (as the worker)."""
    Context._local.invocation_id = invocation_id
    try:
        return function(**args)
    finally:
        Context._local.invocation_id = None


_HOST_DIR = os.path.dirname(os.path.abspath(__file__))


def _user_frames(tb):
    """Drop the host's own frames (and the thread pool's) from the top of a traceback."""
    while tb is not None and tb.tb_next is not None and (
            tb.tb_frame.f_code.co_filename.startswith(_HOST_DIR)
            or "concurrent" + os.sep + "futures" in tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return tb


OutputWriter = Callable[[FunctionSpec, dict, Datum], Awaitable[None]]


class Invoker:
    def __init__(self, app_dir: str, writers: dict[str, OutputWriter]):
        count = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT", "").strip()
        workers = None
        if count:
            if not count.isdigit() or int(count) < 1:
                log.warning("PYTHON_THREADPOOL_THREAD_COUNT must be an integer >= 1; using the default")
            else:
                workers = int(count)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="func")
        self.app_dir = app_dir
        self.writers = writers
        self.plans: dict[str, Plan] = {}
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def load(self, spec: FunctionSpec) -> None:
        self.plans[spec.name] = plan(spec)

    async def invoke(self, spec: FunctionSpec, datum: Datum, metadata: dict[str, Datum], *,
                     retry: Optional[RetryContext] = None) -> Result:
        invocation_id = str(uuid.uuid4())
        self.active += 1
        self._idle.clear()
        started = time.monotonic()
        result = Result(invocation_id, False)
        try:
            result.return_datum = await self._call(spec, datum, metadata, invocation_id, retry)
            result.succeeded = True
        except Exception as error:  # the user's exception, or a binding error
            result.error = error
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()
        result.duration_ms = (time.monotonic() - started) * 1000
        outcome = "Succeeded" if result.succeeded else f"Failed: {type(result.error).__name__}"
        logger = logging.getLogger(f"Function.{spec.name}")
        logger.info("Executed 'Functions.%s' (%s, Id=%s, Duration=%dms, Trigger=%s)",
                    spec.name, outcome, invocation_id, result.duration_ms, spec.trigger_type)
        if result.error is not None:
            logger.error("Function '%s' (Id=%s) failed", spec.name, invocation_id,
                         exc_info=(type(result.error), result.error, _user_frames(result.error.__traceback__)))
        return result

    async def _call(self, spec, datum, metadata, invocation_id, retry) -> Optional[Datum]:
        plan_ = self.plans[spec.name]
        if isinstance(datum, BaseException):  # the trigger data could not be bound
            raise datum
        args: dict[str, Any] = {}
        for name, param in plan_.params.items():
            if param.is_out or param.binding["direction"] == "out":
                args[name] = Out()
            elif param.bind_type == "generic":
                args[name] = generic_decode(datum)
            else:
                args[name] = REGISTRY.get(param.bind_type).decode(datum, trigger_metadata=metadata)
        if plan_.requires_context:
            args["context"] = Context(spec, invocation_id, self.app_dir, retry or RetryContext())
        if spec.is_async:
            value = await spec.func(**args)
        else:
            loop = asyncio.get_running_loop()
            value = await loop.run_in_executor(self.pool, functools.partial(_in_thread, invocation_id,
                                                                             spec.func, args))
        if value is not None and plan_.return_type is None:
            raise RuntimeError(f"function {spec.name!r} without a $return binding returned a non-None value")
        outputs = []
        for name, param in plan_.params.items():
            if param.binding["direction"] == "out" and args[name].get() is not None:
                outputs.append((param.binding, encode(param.bind_type, args[name].get(), param.pytype)))
        returned = encode(plan_.return_type, value, plan_.return_pytype) if plan_.return_type else None
        for binding, out_datum in outputs:
            await self.writers[binding["type"]](spec, binding, out_datum)
        return returned

    async def drain(self, timeout: float) -> bool:
        """Wait until no invocation runs (True) or `timeout` seconds pass (False)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False


async def invoke_with_retries(invoker: Invoker, spec: FunctionSpec, make_input, *,
                              forever_backoff: Optional[tuple[float, float]] = None,
                              stopping: Optional[asyncio.Event] = None) -> Result:
    """Invoke, retrying failures per the function's retry policy.

    `make_input()` returns (datum, metadata) for each attempt. Without a policy,
    `forever_backoff=(first, max)` retries until success with exponential backoff
    (the Event Hubs trigger's "never skip a batch" mode); otherwise one attempt.
    Returns the last result; stops early (returning it) once `stopping` is set.
    """
    policy = spec.retry
    attempt = 0
    while True:
        datum, metadata = make_input()
        limit = policy.max_retry_count if policy else -1
        result = await invoker.invoke(spec, datum, metadata,
                                      retry=RetryContext(attempt, limit, None))
        if result.succeeded:
            return result
        attempt += 1
        if policy:
            if 0 <= policy.max_retry_count < attempt:
                return result
            delay = policy.delay_for(attempt)
        elif forever_backoff:
            first, most = forever_backoff
            delay = min(most, first * 2 ** (attempt - 1))
        else:
            return result
        logging.getLogger(f"Function.{spec.name}").warning(
            "Function '%s' failed; retry %d in %.1f s", spec.name, attempt, delay)
        if stopping is not None:
            try:
                await asyncio.wait_for(stopping.wait(), delay)
                return result
            except asyncio.TimeoutError:
                pass
        else:
            await asyncio.sleep(delay)
