"""What the Python worker does around a call: check the signature, build arguments, encode results.

Arguments are decoded with azure-functions' own converters (the worker's code path),
from the trigger data and metadata the host sends; `str`/`bytes` annotations get the
raw value ("generic" binding). Outputs and return values are encoded the same way.
"""
from __future__ import annotations

import inspect
import threading
import typing
import uuid
from dataclasses import dataclass
from typing import Any, Optional

import azure.functions as func
from azure.functions import _abc as func_abc
from azure.functions.meta import Datum

from .loader import FunctionSpec
from .settings import HostError

REGISTRY = func.get_binding_registry()


class Out(func.Out):
    def __init__(self) -> None:
        self._value = None

    def set(self, val) -> None:
        self._value = val

    def get(self):
        return self._value


class TraceContext(func_abc.TraceContext):
    def __init__(self, invocation_id: str) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{invocation_id.replace('-', '')[:16]}-00"

    trace_parent = property(lambda self: self._parent)
    trace_state = property(lambda self: "")
    attributes = property(lambda self: {})


class RetryContext(func_abc.RetryContext):
    def __init__(self, retry_count: int = 0, max_retry_count: int = 0, exception=None) -> None:
        self._count, self._max, self._exception = retry_count, max_retry_count, exception

    retry_count = property(lambda self: self._count)
    max_retry_count = property(lambda self: self._max)
    exception = property(lambda self: self._exception)


class Context(func.Context):
    _local = threading.local()

    def __init__(self, spec: FunctionSpec, invocation_id: str, directory: str, retry: RetryContext):
        self._spec, self._id, self._dir, self._retry = spec, invocation_id, directory, retry
        self._trace = TraceContext(invocation_id)

    invocation_id = property(lambda self: self._id)
    function_name = property(lambda self: self._spec.name)
    function_directory = property(lambda self: self._dir)
    trace_context = property(lambda self: self._trace)
    retry_context = property(lambda self: self._retry)
    thread_local_storage = property(lambda self: self._local)


@dataclass
class Param:
    binding: dict
    bind_type: str  # converter registry key, or "generic"
    pytype: Optional[type]
    is_out: bool


@dataclass
class Plan:
    params: dict[str, Param]
    requires_context: bool
    return_type: Optional[str]
    return_pytype: Optional[type] = None


def _fail(spec: FunctionSpec, message: str) -> HostError:
    return HostError(f"cannot load the {spec.name} function: {message}")


def plan(spec: FunctionSpec) -> Plan:
    """Check the signature against the bindings, as the worker does when it loads a function."""
    params = dict(inspect.signature(spec.func).parameters)
    try:
        hints = typing.get_type_hints(spec.func)
    except Exception:
        hints = dict(getattr(spec.func, "__annotations__", {}))
    bound = {b["name"]: b for b in spec.bindings if b["name"] != "$return"}
    requires_context = "context" in params and "context" not in bound
    if requires_context:
        params.pop("context")
    if set(params) - set(bound):
        raise _fail(spec, f"the following parameters are declared in Python but not in the "
                          f"binding decorators: {sorted(set(params) - set(bound))}")
    if set(bound) - set(params):
        raise _fail(spec, f"the following parameters are declared in the binding decorators but "
                          f"not in Python: {sorted(set(bound) - set(params))}")
    result = {}
    for name, binding in bound.items():
        anno = hints.get(name)
        origin = typing.get_origin(anno)
        is_out = (origin or anno) is func.Out or (isinstance(origin, type) and issubclass(origin, func_abc.Out))
        pytype = typing.get_args(anno)[0] if is_out and typing.get_args(anno) else anno
        binding_out = binding["direction"] == "out"
        if binding_out and anno is not None and not is_out:
            raise _fail(spec, f"binding {name} is declared to have the \"out\" direction, but its "
                              "annotation in Python is not a subclass of azure.functions.Out")
        if not binding_out and is_out:
            raise _fail(spec, f"binding {name} is declared to have the \"in\" direction, but its "
                              "annotation is azure.functions.Out in Python")
        bind_type = "generic" if anno is not None and pytype in (str, bytes) else binding["type"]
        if anno is not None:
            converter = REGISTRY.get(bind_type) if bind_type != "generic" else None
            if bind_type == "generic":
                ok = isinstance(pytype, type) and issubclass(pytype, (str, bytes) if not is_out
                                                             else (str, bytes, bytearray))
            elif converter is None:
                ok = False
            elif is_out:
                ok = converter.check_output_type_annotation(pytype)
            else:
                ok = converter.check_input_type_annotation(pytype)
            if not ok:
                shown = getattr(pytype, "__name__", repr(pytype))
                raise _fail(spec, f"type of {name} binding \"{binding['type']}\" does not match its "
                                  f"Python annotation \"{shown}\"")
        result[name] = Param(binding, bind_type, pytype, is_out)
    ret = spec.return_binding
    return_pytype = hints.get("return") if ret else None
    if ret and return_pytype is not None:
        converter = REGISTRY.get(ret["type"])
        if not isinstance(return_pytype, type) or not converter.check_output_type_annotation(return_pytype):
            raise _fail(spec, f"Python return annotation \"{return_pytype!r}\" does not match "
                              f"binding type \"{ret['type']}\"")
    return Plan(result, requires_context, ret["type"] if ret else None, return_pytype)


def generic_decode(datum: Datum) -> Any:
    if datum.type in ("string", "bytes", "json"):
        return datum.value
    raise ValueError(f"unexpected type of data received for the \"generic\" binding: {datum.type!r}")


def encode(bind_type: str, value: Any, pytype) -> Datum:
    if bind_type == "generic":
        if isinstance(value, str):
            return Datum(value, "string")
        if isinstance(value, (bytes, bytearray)):
            return Datum(bytes(value), "bytes")
    else:
        try:
            return REGISTRY.get(bind_type).encode(value, expected_type=pytype)
        except NotImplementedError:
            pass
    raise TypeError(f"unable to encode outgoing TypedData: unsupported type \"{bind_type}\" "
                    f"for Python type \"{type(value).__name__}\"")
