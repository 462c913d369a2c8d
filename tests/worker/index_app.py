"""Index a function app the way the Azure Functions Python 3.13 worker does, and say what it found.

    .venv-worker/bin/python -P tests/worker/index_app.py APP_DIR OUT.json

Runs in .venv-worker (see local/worker-venv.sh) and drives the worker library,
azure_functions_runtime, through the same two calls the host's proxy worker makes when it
starts: `worker_init_request` (load the binding registry, import APP_DIR/function_app.py, find
the one FunctionApp, validate each function against its bindings and build its
RpcFunctionMetadata: handle_event.load_function_metadata -> index_functions ->
loader.index_function_app / loader.process_indexed_function -> Registry.add_indexed_function
and loader.get_fx_raw_bindings), then `functions_metadata_request` (the metadata the host
registers the functions from). The app dir is the working directory and is appended to
sys.path, as the proxy worker's DependencyManager does with AzureWebJobsScriptRoot.

Writes JSON to OUT.json and exits 0 if the worker reported Success, 1 if it reported Failure
(the JSON then holds the worker's exception message and stack trace).
"""
from __future__ import annotations

import asyncio
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:  # run without -P
    sys.path.pop(0)


def _load_rpc_protos():
    spec = importlib.util.spec_from_file_location("_offerloop_rpc_protos", HERE / "rpc_protos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


@dataclasses.dataclass
class WorkerRequest:  # what the proxy worker wraps each host message in
    name: str
    request: Any
    properties: dict[str, Any] | None = None


def _direction(protos, value: int) -> str:
    return protos.BindingInfo.Direction.Name(value)


def _function_report(protos, metadata, registry) -> dict[str, Any]:
    info = registry.get_function(metadata.function_id)
    raw = [json.loads(b) for b in metadata.raw_bindings]
    return {
        "function_id": metadata.function_id,
        "entry_point": metadata.entry_point,
        "script_file": metadata.script_file,
        "directory": metadata.directory,
        "language": metadata.language,
        "properties": dict(metadata.properties),
        "raw_bindings": raw,
        "binding_info": {
            name: {"type": b.type, "direction": _direction(protos, b.direction),
                   "data_type": protos.BindingInfo.DataType.Name(b.data_type)}
            for name, b in metadata.bindings.items()
        },
        "retry": (None if not metadata.HasField("retry_options") else {
            "max_retry_count": metadata.retry_options.max_retry_count,
            "strategy": protos.RpcRetryOptions.RetryStrategy.Name(
                metadata.retry_options.retry_strategy)}),
        # what the worker will do on an invocation (its FunctionInfo)
        "worker": None if info is None else {
            "python_name": info.func.__qualname__,
            "module": info.func.__module__,
            "is_async": info.is_async,
            "is_http_func": info.is_http_func,
            "requires_context": info.requires_context,
            "inputs": {k: v.binding_name for k, v in info.input_types.items()},
            "outputs": {k: v.binding_name for k, v in info.output_types.items()},
            "return": None if info.return_type is None else info.return_type.binding_name,
        },
    }


async def _index(app_dir: str) -> tuple[bool, dict[str, Any]]:
    protos = _load_rpc_protos()
    import azure_functions_runtime as worker
    from azure_functions_runtime import handle_event

    init = protos.StreamingMessage(
        request_id="offerloop-index",
        worker_init_request=protos.WorkerInitRequest(
            host_version="4.0.0-offerloop-test", function_app_directory=app_dir,
            worker_directory=str(Path(worker.__file__).parent)))
    init_response = await worker.worker_init_request(WorkerRequest(
        name="WorkerInitRequest", request=init,
        properties={"protos": protos, "host": "127.0.0.1"}))

    report: dict[str, Any] = {
        "versions": {
            "python": platform.python_version(),
            "azure-functions-runtime": importlib.metadata.version("azure-functions-runtime"),
            "azure-functions": importlib.metadata.version("azure-functions"),
        },
        "init_status": protos.StatusResult.Status.Name(init_response.result.status),
    }
    if init_response.result.status != protos.StatusResult.Success:
        report["error"] = init_response.result.exception.message
        report["stack_trace"] = init_response.result.exception.stack_trace
        return False, report

    metadata_request = protos.StreamingMessage(
        request_id="offerloop-index",
        functions_metadata_request=protos.FunctionsMetadataRequest(function_app_directory=app_dir))
    metadata_response = await worker.functions_metadata_request(WorkerRequest(
        name="WorkerMetadataRequest", request=metadata_request))
    report["metadata_status"] = protos.StatusResult.Status.Name(metadata_response.result.status)
    report["use_default_metadata_indexing"] = metadata_response.use_default_metadata_indexing
    report["functions"] = {
        m.name: _function_report(protos, m, handle_event._functions)
        for m in metadata_response.function_metadata_results
    }
    ok = (metadata_response.result.status == protos.StatusResult.Success
          and not metadata_response.use_default_metadata_indexing)
    return ok, report


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    app_dir, out = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    os.environ["AzureWebJobsScriptRoot"] = app_dir
    os.environ.setdefault("FUNCTIONS_WORKER_RUNTIME", "python")
    os.chdir(app_dir)
    if app_dir not in sys.path:
        sys.path.append(app_dir)
    ok, report = asyncio.run(_index(app_dir))
    report["ok"] = ok
    Path(out).write_text(json.dumps(report, indent=2, sort_keys=True))
    if not ok:
        print(f"worker indexing failed: {report.get('error', report)}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
