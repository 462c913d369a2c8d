"""The Functions host <-> language worker gRPC messages that worker indexing touches.

Runs inside .venv-worker (protobuf 5.29). In the host, the Python 3.13 proxy worker compiles
FunctionRpc.proto (package AzureFunctionsRpcMessages) with grpcio-tools and hands the
resulting module to azure_functions_runtime as `request.properties["protos"]`; that .proto is
not on PyPI, so this module declares the subset used on the indexing path (WorkerInitRequest
-> WorkerInitResponse, FunctionsMetadataRequest -> FunctionMetadataResponse of
RpcFunctionMetadata with BindingInfo, raw_bindings and RpcRetryOptions) with the same message,
field and enum names and types, and builds real protobuf classes from it. Being real messages,
they reject what the real ones would: an unknown field, a wrong type, an unknown enum label.
Nothing is serialized, so the field numbers play no part.
"""
from __future__ import annotations

import types

from google.protobuf import descriptor_pb2, descriptor_pool, duration_pb2, message_factory

PACKAGE = "AzureFunctionsRpcMessages"
F = descriptor_pb2.FieldDescriptorProto

# message -> [(field, type, number, label)] ; type: a scalar name, "msg:Name", "enum:Name",
# or "map:<value type>" (map<string, value>).
MESSAGES: dict[str, list[tuple[str, str, int, str]]] = {
    "StreamingMessage": [
        ("request_id", "string", 1, "optional"),
        ("worker_init_request", "msg:WorkerInitRequest", 17, "oneof"),
        ("worker_init_response", "msg:WorkerInitResponse", 16, "oneof"),
        ("functions_metadata_request", "msg:FunctionsMetadataRequest", 29, "oneof"),
        ("function_metadata_response", "msg:FunctionMetadataResponse", 30, "oneof"),
    ],
    "WorkerInitRequest": [
        ("host_version", "string", 1, "optional"),
        ("capabilities", "map:string", 2, "repeated"),
        ("worker_directory", "string", 4, "optional"),
        ("function_app_directory", "string", 5, "optional"),
    ],
    "WorkerInitResponse": [
        ("worker_version", "string", 1, "optional"),
        ("capabilities", "map:string", 2, "repeated"),
        ("result", "msg:StatusResult", 3, "optional"),
        ("worker_metadata", "msg:WorkerMetadata", 4, "optional"),
    ],
    "WorkerMetadata": [
        ("runtime_name", "string", 1, "optional"),
        ("runtime_version", "string", 2, "optional"),
        ("worker_version", "string", 3, "optional"),
        ("worker_bitness", "string", 4, "optional"),
        ("custom_properties", "map:string", 5, "repeated"),
    ],
    "StatusResult": [
        ("status", "enum:StatusResult.Status", 4, "optional"),
        ("result", "string", 1, "optional"),
        ("exception", "msg:RpcException", 2, "optional"),
    ],
    "RpcException": [
        ("source", "string", 3, "optional"),
        ("stack_trace", "string", 1, "optional"),
        ("message", "string", 2, "optional"),
        ("is_user_exception", "bool", 4, "optional"),
        ("type", "string", 5, "optional"),
    ],
    "FunctionsMetadataRequest": [
        ("function_app_directory", "string", 1, "optional"),
    ],
    "FunctionMetadataResponse": [
        ("function_metadata_results", "msg:RpcFunctionMetadata", 1, "repeated"),
        ("result", "msg:StatusResult", 2, "optional"),
        ("use_default_metadata_indexing", "bool", 3, "optional"),
    ],
    "RpcFunctionMetadata": [
        ("name", "string", 4, "optional"),
        ("directory", "string", 1, "optional"),
        ("script_file", "string", 2, "optional"),
        ("entry_point", "string", 3, "optional"),
        ("bindings", "map:msg:BindingInfo", 6, "repeated"),
        ("is_proxy", "bool", 7, "optional"),
        ("status", "msg:StatusResult", 8, "optional"),
        ("language", "string", 9, "optional"),
        ("raw_bindings", "string", 10, "repeated"),
        ("function_id", "string", 13, "optional"),
        ("managed_dependency_enabled", "bool", 14, "optional"),
        ("retry_options", "msg:RpcRetryOptions", 15, "optional"),
        ("properties", "map:string", 16, "repeated"),
    ],
    "BindingInfo": [
        ("type", "string", 2, "optional"),
        ("direction", "enum:BindingInfo.Direction", 3, "optional"),
        ("data_type", "enum:BindingInfo.DataType", 4, "optional"),
        ("properties", "map:string", 5, "repeated"),
    ],
    "RpcRetryOptions": [
        ("max_retry_count", "int32", 2, "optional"),
        ("delay_interval", "msg:.google.protobuf.Duration", 3, "optional"),
        ("minimum_interval", "msg:.google.protobuf.Duration", 4, "optional"),
        ("maximum_interval", "msg:.google.protobuf.Duration", 5, "optional"),
        ("retry_strategy", "enum:RpcRetryOptions.RetryStrategy", 6, "optional"),
    ],
}

ENUMS: dict[str, list[str]] = {  # values numbered from 0 in this order
    "StatusResult.Status": ["Failure", "Success", "Cancelled"],
    "BindingInfo.Direction": ["in", "out", "inout"],
    "BindingInfo.DataType": ["undefined", "string", "binary", "stream"],
    "RpcRetryOptions.RetryStrategy": ["exponential_backoff", "fixed_delay"],
}

SCALARS = {"string": F.TYPE_STRING, "bool": F.TYPE_BOOL, "int32": F.TYPE_INT32}


def _type_name(ref: str) -> str:
    return ref if ref.startswith(".") else f".{PACKAGE}.{ref}"


def _set_type(field: descriptor_pb2.FieldDescriptorProto, kind: str) -> None:
    if kind in SCALARS:
        field.type = SCALARS[kind]
    elif kind.startswith("msg:"):
        field.type, field.type_name = F.TYPE_MESSAGE, _type_name(kind[4:])
    elif kind.startswith("enum:"):
        field.type, field.type_name = F.TYPE_ENUM, _type_name(kind[5:])
    else:
        raise ValueError(kind)


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(
        name="offerloop_tests/FunctionRpc_subset.proto", package=PACKAGE, syntax="proto3",
        dependency=["google/protobuf/duration.proto"])
    for name, fields in MESSAGES.items():
        msg = fd.message_type.add(name=name)
        for enum_name, values in ENUMS.items():
            owner, _, short = enum_name.partition(".")
            if owner == name:
                enum = msg.enum_type.add(name=short)
                for number, value in enumerate(values):
                    enum.value.add(name=value, number=number)
        for field_name, kind, number, label in fields:
            field = msg.field.add(name=field_name, number=number, json_name=field_name)
            if kind.startswith("map:"):  # map<string, V>: a repeated nested *Entry message
                entry_name = "".join(p.capitalize() for p in field_name.split("_")) + "Entry"
                entry = msg.nested_type.add(name=entry_name)
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
                _set_type(entry.field.add(name="value", number=2, label=F.LABEL_OPTIONAL), kind[4:])
                field.type, field.type_name = F.TYPE_MESSAGE, _type_name(f"{name}.{entry_name}")
                field.label = F.LABEL_REPEATED
                continue
            _set_type(field, kind)
            field.label = F.LABEL_REPEATED if label == "repeated" else F.LABEL_OPTIONAL
            if label == "oneof":
                if not msg.oneof_decl:
                    msg.oneof_decl.add(name="content")
                field.oneof_index = 0
    return fd


def build() -> types.ModuleType:
    """A module shaped like the proxy worker's `protos`: one attribute per message class."""
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(duration_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(_file())
    module = types.ModuleType("protos")
    for name in MESSAGES:
        descriptor = pool.FindMessageTypeByName(f"{PACKAGE}.{name}")
        setattr(module, name, message_factory.GetMessageClass(descriptor))
    return module
