"""A whole local stack on free ports in a temporary folder, for tests.

Free ports let the suite run beside a developer's `make up` and prove that every
port really is configurable.
"""
from __future__ import annotations

import socket
from contextlib import ExitStack
from pathlib import Path

from local.config import Ports, StackConfig
from local.stack import Stack


def free_ports(count: int) -> list[int]:
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def make_stack_config(state_dir: Path, **overrides) -> StackConfig:
    host, blob, queue, table, cosmos, eventhubs, redis = free_ports(7)
    ports = Ports(host=host, blob=blob, queue=queue, table=table, cosmos=cosmos,
                  eventhubs=eventhubs, redis=redis)
    return StackConfig(ports=ports, state_dir=state_dir, persistent=False, **overrides)


def quiet_stack(config: StackConfig) -> Stack:
    return Stack(config, say=lambda line: None)
