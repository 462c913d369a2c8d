"""Helpers for tests that run their own stack (see local.config.ephemeral_config)."""
from __future__ import annotations

from local.config import StackConfig, ephemeral_config as make_stack_config  # noqa: F401
from local.stack import Stack


def quiet_stack(config: StackConfig) -> Stack:
    return Stack(config, say=lambda line: None)
