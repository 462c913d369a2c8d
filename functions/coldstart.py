"""Hourly: recompute the cold-start offer lists (per segment and global) into Redis."""
from __future__ import annotations

import logging

import azure.functions as func

from shared import bootstrap

bp = func.Blueprint()
log = logging.getLogger(__name__)


# Minute 5 of every hour: offer statistics of the hour just ended have had time to land.
@bp.timer_trigger(schedule="0 5 * * * *", arg_name="timer", run_on_startup=False)
def refresh_coldstart(timer: func.TimerRequest) -> None:
    summary = bootstrap.refresh_coldstart()
    log.info("cold-start lists refreshed%s: %s", " (past due)" if timer.past_due else "", summary)
