"""Simulated shopper actions per second through the two Storage queues on the local stack.

On a throwaway stack with the default seeded catalog, the host runs every function while a
simulation of USERS shoppers (200, then 500) goes as fast as it can (rate 0: no think or
return time, so every user always has a step queued). After a warm-up of WARMUP (20) s, the
`actions` counter of GET /api/simulation/status is read at both ends of a window of SECONDS
(60) s: actions/s = its increase over the window's length. Also reported: the mean of the
status's own `actionsPerSecond` sampled during the window, the run's CTR against the
expected random and oracle CTRs (lift = (ctr - random) / (oracle - random)), and the share of
one CPU core each stack process used during the window (from /proc/<pid>/stat, the process
and its children). The run is stopped (and its queues cleared) before the next one. The
issue's aim is 300 actions/s. BENCH_SIM_USERS, BENCH_SIM_SECONDS and BENCH_SIM_WARMUP change
the user counts and the times.
"""
from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from tqdm import tqdm

from bench import seed_catalog
from ops import demo

USERS = tuple(int(u) for u in os.environ.get("BENCH_SIM_USERS", "200,500").split(",") if u.strip())
SECONDS = float(os.environ.get("BENCH_SIM_SECONDS", "60"))
WARMUP = float(os.environ.get("BENCH_SIM_WARMUP", "20"))
SEED = 7
SAMPLE_SECONDS = 5.0


def _call(api: str, method: str, path: str, body: Any = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{api}/{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _status(api: str) -> dict:
    code, body = _call(api, "GET", "simulation/status")
    assert code == 200, (code, body)
    return body


def _start(api: str, users: int) -> dict:
    code, body = demo.start(api, {"users": users, "rate": 0, "seed": SEED})
    if code != 202:
        raise RuntimeError(f"starting the simulation failed: HTTP {code} {json.dumps(body)}")
    return body


# -- CPU of the stack's processes -----------------------------------------------------------
TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> Optional[tuple[int, int]]:
    """(parent pid, utime + stime in ticks) of a live process."""
    try:
        after = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(after[1]), int(after[11]) + int(after[12])


def _tree_ticks(root: int) -> dict[int, int]:
    """CPU ticks of `root` and of its descendants, by pid."""
    stats = {int(p.name): s for p in Path("/proc").iterdir() if p.name.isdigit() and (s := _stat(int(p.name)))}
    tree, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        if pid in stats:
            tree[pid] = stats[pid][1]
            frontier += [child for child, (parent, _) in stats.items() if parent == pid]
    return tree


def _cpu_sample(stack) -> dict[str, dict[int, int]]:
    return {name: _tree_ticks(record.pid) for name, record in stack.status().items() if record is not None}


def _cpu_share(before: dict, after: dict, seconds: float) -> dict[str, float]:
    """Per stack process: % of one core used between the samples (processes present in both)."""
    return {name: 100 * sum(ticks - before[name].get(pid, ticks) for pid, ticks in pids.items()) / TICKS / seconds
            for name, pids in after.items() if name in before}


# -- one run ----------------------------------------------------------------------------------
def _measure(stack, api: str, users: int) -> dict:
    config = _start(api, users)
    prefix = f"users{users}"
    try:
        with tqdm(total=int(WARMUP + SECONDS), desc=f"{users} users", unit="s",
                  bar_format="{desc}: {bar} {n_fmt}/{total_fmt} s{postfix}") as bar:
            began = time.monotonic()
            while (elapsed := time.monotonic() - began) < WARMUP:
                time.sleep(min(1.0, WARMUP - elapsed))
                bar.set_postfix_str(f"warm-up, {_status(api)['actions']:,} actions")
                bar.update(int(time.monotonic() - began) - bar.n)
            first, cpu_before, t0 = _status(api), _cpu_sample(stack), time.monotonic()
            samples = []
            while (elapsed := time.monotonic() - t0) < SECONDS:
                time.sleep(min(SAMPLE_SECONDS, SECONDS - elapsed))
                current = _status(api)
                samples.append(current["actionsPerSecond"])
                rate = (current["actions"] - first["actions"]) / (time.monotonic() - t0)
                bar.set_postfix_str(f"{rate:,.1f} actions/s")
                bar.update(int(time.monotonic() - began) - bar.n)
            last, cpu_after, t1 = _status(api), _cpu_sample(stack), time.monotonic()
    finally:
        code, stopped = _call(api, "POST", "simulation/stop")
    window = t1 - t0
    assert last["runId"] == config["runId"] and last["state"] == "running", last
    figures: dict[str, Any] = {
        f"{prefix}_actions_per_s": (last["actions"] - first["actions"]) / window,
        f"{prefix}_status_actions_per_s": sum(samples) / len(samples) if samples else 0.0,
        f"{prefix}_impressions_per_s": (last["impressions"] - first["impressions"]) / window,
        f"{prefix}_window_s": window,
        f"{prefix}_actions": last["actions"],
        f"{prefix}_impressions": last["impressions"],
        f"{prefix}_ctr_pct": 100 * (last["ctr"] or 0.0),
        f"{prefix}_random_ctr_pct": 100 * (last["randomCtr"] or 0.0),
        f"{prefix}_oracle_ctr_pct": 100 * (last["oracleCtr"] or 0.0),
        f"{prefix}_lift_pct": None if last["liftFraction"] is None else 100 * last["liftFraction"],
    }
    for name, share in _cpu_share(cpu_before, cpu_after, window).items():
        figures[f"{prefix}_cpu_{name}_pct_of_core"] = share
    figures[f"{prefix}_load_average_1m"] = os.getloadavg()[0]  # other work on the machine shows here
    figures[f"{prefix}_state_after_stop"] = stopped.get("state") if code == 200 else f"HTTP {code}"
    figures[f"{prefix}_status"] = {k: v for k, v in last.items() if k != "curve"}
    return figures


def run(stack) -> dict:
    seed_catalog(stack)
    stack.up(["host"])
    api = f"http://127.0.0.1:{stack.config.ports.host}/api"
    figures: dict[str, Any] = {"warmup_s": WARMUP, "rate": 0, "seed": SEED}
    try:
        for users in USERS:
            figures.update(_measure(stack, api, users))
        return figures
    finally:
        stack.down(["host"])
