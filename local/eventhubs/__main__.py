"""Command line: ``python -m local.eventhubs --config ... --host ... --port ... --data-dir ...``."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import List, Optional

from .amqp.connection import ConnectionOptions
from .config import ConfigError, load_config
from .server import EmulatorServer

DEFAULT_CONFIG = Path(__file__).resolve().parent / "Config.json"


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.eventhubs",
                                     description="Local Azure Event Hubs emulator (AMQP 1.0, no TLS).")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="Config.json (Microsoft emulator format)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5672, help="TCP port; 0 picks a free one (default 5672)")
    parser.add_argument("--data-dir", type=Path, default=Path(".local/data/eventhubs"),
                        help="where partition logs are kept (default .local/data/eventhubs)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--idle-timeout", type=float, default=240.0,
                        help="close connections silent for this many seconds; 0 disables (default 240)")
    parser.add_argument("--max-frame-size", type=int, default=1024 * 1024,
                        help="largest AMQP frame accepted, in bytes (default 1048576)")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    options = ConnectionOptions(max_frame_size=max(512, args.max_frame_size), idle_timeout=args.idle_timeout)
    server = EmulatorServer(config, args.data_dir, args.host, args.port, options)
    port = await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    hubs = ", ".join(f"{h.name}({h.partition_count})" for h in config.hubs)
    logging.getLogger("local.eventhubs").info("event hubs: %s; data in %s", hubs, args.data_dir)
    print(f"eventhubs emulator listening on {args.host}:{port}", flush=True)
    await stop.wait()
    logging.getLogger("local.eventhubs").info("shutting down")
    await server.stop()
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run(args))
    except ConfigError as exc:
        print(f"eventhubs emulator: invalid config: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"eventhubs emulator: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
