"""python -m local.host --app-dir . --port 7071 [--host 127.0.0.1]"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Optional

import click

from .runtime import Host
from .settings import HostError, local_http_port

log = logging.getLogger("Host")


def _configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    # The Azure SDKs log every request at INFO; keep their warnings and errors only.
    for noisy in ("azure", "uamqp", "pyamqp", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def _serve(host: Host) -> int:
    stop, hurry = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: not waiting for running invocations", signal.Signals(signum).name)
            hurry.set()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await host.start()
    except BaseException:
        await host.stop(hurry)
        raise
    await stop.wait()
    return 0 if await host.stop(hurry) else 2


@click.command()
@click.option("--app-dir", default=".", show_default=True, type=click.Path(exists=True, file_okay=False),
              help="Folder of the function app (function_app.py, host.json, local.settings.json).")
@click.option("--port", default=None, type=int,
              help="HTTP port [default: local.settings.json Host.LocalHttpPort, else 7071].")
@click.option("--host", "bind", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--shutdown-timeout", default=10.0, show_default=True, type=float,
              help="Seconds to let running invocations finish on SIGTERM/SIGINT.")
def main(app_dir: str, port: Optional[int], bind: str, shutdown_timeout: float) -> None:
    """Run an Azure Functions (Python v2 model) app locally, like `func start`."""
    _configure_logging()
    port = port or local_http_port(Path(app_dir)) or 7071
    host = Host(Path(app_dir), bind, port, shutdown_timeout)
    try:
        code = asyncio.run(_serve(host))
    except HostError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    except OSError as error:  # e.g. the port is taken
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    sys.stdout.flush()
    sys.stderr.flush()
    if code:
        os._exit(0)  # sync invocations still running in threads: do not wait for them at exit
    sys.exit(0)


if __name__ == "__main__":
    main()
